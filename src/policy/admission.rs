//! An admitted request's hold on its limits: given back, and its usage
//! counted, when the request ends.

use super::keyring::ApiKey;
use super::limits::Ticket;
use super::{Policy, RateInfo};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// An admitted request. Dropping it ends the request: its concurrency slot
/// is given back and its tokens settled, its usage counted.
pub struct Admission {
    policy: Arc<Policy>,
    key: Arc<ApiKey>,
    ticket: Option<Ticket>,
    prompt: AtomicU64,
    completion: AtomicU64,
    /// Tokens of the choice being generated, not yet recorded.
    in_flight: AtomicU64,
    submitted: AtomicBool,
    complete: AtomicBool,
}

impl Admission {
    pub(super) fn new(policy: Arc<Policy>, key: Arc<ApiKey>, ticket: Ticket) -> Self {
        Admission {
            policy,
            key,
            ticket: Some(ticket),
            prompt: AtomicU64::new(0),
            completion: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            submitted: AtomicBool::new(false),
            complete: AtomicBool::new(false),
        }
    }

    /// The engine has the request: from now on, tokens may be spent.
    pub fn submitted(&self) {
        self.submitted.store(true, Ordering::Relaxed);
    }

    /// One token generated (streams count as they go, so that a client
    /// that leaves mid-stream is still charged for what it got).
    pub fn token(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn info(&self) -> Option<&RateInfo> {
        self.ticket.as_ref().map(|t| &t.info)
    }

    /// Tokens a part of the request used (a choice that finished).
    pub fn record(&self, prompt: u64, completion: u64) {
        self.in_flight.store(0, Ordering::Relaxed);
        self.prompt.fetch_add(prompt, Ordering::Relaxed);
        self.completion.fetch_add(completion, Ordering::Relaxed);
    }

    /// Everything the request used has been recorded. Without this, a
    /// request that reached the engine (a client gone mid-way) keeps its
    /// whole reservation, and one that did not (refused downstream) is
    /// charged nothing but the request.
    pub fn finish(&self) {
        self.complete.store(true, Ordering::Relaxed);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let (prompt, completion) = (
            self.prompt.load(Ordering::Relaxed),
            self.completion.load(Ordering::Relaxed) + self.in_flight.load(Ordering::Relaxed),
        );
        if let Some(ticket) = self.ticket.take() {
            let used = if self.complete.load(Ordering::Relaxed)
                || !self.submitted.load(Ordering::Relaxed)
            {
                prompt + completion
            } else {
                ticket.reserved().max(prompt + completion)
            };
            ticket.settle(used);
        }
        let r = &self.key.record;
        self.policy
            .usage
            .record(&r.id, r.tenant.as_deref().unwrap_or(""), prompt, completion);
    }
}
