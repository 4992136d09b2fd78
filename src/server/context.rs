//! What the server knows of the request being handled, carried through
//! its task: who is calling (and under which policy), the
//! `x-switchyard-user` header a canary split sticks to, and, filled in on
//! the way, the version that answered and the rate-limit standing an
//! admission recorded. The router reads the last two back for the
//! metrics and the response headers, whatever the answer. And the
//! connection the request came on.

use crate::policy::{Caller, Policy, RateInfo};
use crate::registry::ServedModel;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the router knows of a request's connection.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    /// The client presented a certificate the configured authorities
    /// signed (mTLS).
    pub client_cert: bool,
}

pub struct RequestContext {
    pub policy: Arc<Policy>,
    pub caller: Caller,
    /// The `x-switchyard-user` header.
    pub user: Option<String>,
    served_by: RefCell<Option<Arc<ServedModel>>>,
    rate: RefCell<Option<RateInfo>>,
}

/// What the request left behind: the version that answered it and its
/// key's rate-limit standing.
#[derive(Default)]
pub struct Outcome {
    pub served_by: Option<Arc<ServedModel>>,
    pub rate: Option<RateInfo>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

impl RequestContext {
    pub fn new(policy: Arc<Policy>, caller: Caller, user: Option<String>) -> Self {
        RequestContext {
            policy,
            caller,
            user,
            served_by: RefCell::new(None),
            rate: RefCell::new(None),
        }
    }
}

/// Runs `f` as the request of `ctx`; returns its answer and what it left.
pub async fn scope<F: Future>(ctx: RequestContext, f: F) -> (F::Output, Outcome) {
    CONTEXT
        .scope(ctx, async {
            let out = f.await;
            let outcome = CONTEXT.with(|c| Outcome {
                served_by: c.served_by.borrow_mut().take(),
                rate: c.rate.borrow_mut().take(),
            });
            (out, outcome)
        })
        .await
}

/// The caller of the current request (None: open mode, or not a request,
/// such as a shadow copy).
pub fn caller() -> Caller {
    CONTEXT.try_with(|c| c.caller.clone()).ok().flatten()
}

/// The policy and caller of the current request; None outside one (a
/// shadow copy, which no key is charged for).
pub fn policy_and_caller() -> Option<(Arc<Policy>, Caller)> {
    CONTEXT
        .try_with(|c| (c.policy.clone(), c.caller.clone()))
        .ok()
}

/// The current request's `x-switchyard-user` header.
pub fn user_header() -> Option<String> {
    CONTEXT.try_with(|c| c.user.clone()).ok().flatten()
}

/// Records the version that answers the current request.
pub fn served_by(model: &Arc<ServedModel>) {
    let _ = CONTEXT.try_with(|c| *c.served_by.borrow_mut() = Some(model.clone()));
}

/// Records the rate-limit standing the current request's admission saw.
pub fn rate(info: &RateInfo) {
    let _ = CONTEXT.try_with(|c| *c.rate.borrow_mut() = Some(info.clone()));
}
