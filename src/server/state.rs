//! What the handlers share: the registry (which version answers which
//! model), the policy (keys and limits) and the server's own lifecycle
//! flags.

use super::prep::Prep;
use crate::policy::Policy;
use crate::registry::Registry;
pub use crate::registry::ServedModel;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct AppState {
    registry: Arc<Registry>,
    policy: Arc<Policy>,
    /// Where requests are parsed, rendered and tokenized.
    prep: Prep,
    /// mTLS: the admin API answers only connections with a verified
    /// client certificate.
    admin_client_cert: bool,
    /// `--log-requests`: generation request and response bodies go to
    /// the log.
    log_requests: AtomicBool,
    /// True until the models given at start (flags and store) are loaded.
    starting: AtomicBool,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(
        registry: Arc<Registry>,
        policy: Arc<Policy>,
        admin_client_cert: bool,
    ) -> Result<Arc<Self>, String> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Arc::new(AppState {
            registry,
            policy,
            prep: Prep::new(cores)?,
            admin_client_cert,
            log_requests: AtomicBool::new(false),
            starting: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn prep(&self) -> &Prep {
        &self.prep
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn set_log_requests(&self, on: bool) {
        self.log_requests.store(on, Ordering::Relaxed);
    }

    pub fn log_requests(&self) -> bool {
        self.log_requests.load(Ordering::Relaxed)
    }

    pub fn admin_needs_client_cert(&self) -> bool {
        self.admin_client_cert
    }

    /// The models given at start are loaded (or failed and were logged).
    pub fn started(&self) {
        self.starting.store(false, Ordering::Release);
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Ready to take traffic: started, some model routable, and not
    /// shutting down.
    pub fn is_ready(&self) -> bool {
        !self.starting.load(Ordering::Acquire)
            && !self.registry.table().is_empty()
            && !self.shutting_down.load(Ordering::Acquire)
    }

    /// Alive: no engine thread has died.
    pub fn is_healthy(&self) -> bool {
        self.registry.loaded().iter().all(|m| m.engine.is_alive())
    }
}
