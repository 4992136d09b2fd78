//! Retiring a version: once no route points at it, the requests that
//! started on it finish there; then its engine stops and its memory
//! (weights, KV cache) goes back to the machine and the KV budget.

use super::locks::hold;
use super::served::ServedModel;
use super::{Registry, RegistryError, Slot};
use crate::store::NewAudit;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Registry {
    /// Takes a version no route uses out of memory: waits for its requests
    /// in flight, stops its engine, returns its memory. The model's lock
    /// is held only to check the routes and start the drain.
    pub fn unload(&self, model: &str, version: &str, actor: &str) -> Result<Value, RegistryError> {
        self.audited(actor, "unload", model, Some(version), || {
            let lock = self.model_lock(model);
            let one = hold(&lock);
            let served = match self.slot(model, version) {
                Some(Slot::Ready(m)) => m,
                Some(Slot::Draining) => {
                    return Err(RegistryError::Conflict(format!(
                        "`{model}@{version}` is already draining"
                    )))
                }
                _ => {
                    return Err(RegistryError::NotFound(format!(
                        "`{model}@{version}` is not loaded"
                    )))
                }
            };
            if self.table().routes_to(model, version) {
                return Err(RegistryError::Conflict(format!(
                    "`{model}@{version}` still takes traffic; deploy, promote or roll back to another version first"
                )));
            }
            let drained = self.start_drain(model, version, served)?;
            drop(one);
            let outcome = match drained.recv_timeout(self.drain_timeout) {
                Ok(took) => json!({"state": "unloaded", "drain_ms": took.as_millis() as u64}),
                Err(_) => json!({"state": "draining", "drain_ms": null}),
            };
            let after = json!({"model": model, "version": version, "outcome": outcome});
            self.store.audit(&NewAudit {
                actor,
                action: "unload",
                model,
                version: Some(version),
                before: json!({"model": model, "version": version, "state": "ready"}),
                after: after.clone(),
                ok: true,
                detail: String::new(),
            })?;
            Ok(after)
        })
    }
}

impl Registry {
    /// Drains a version that was loaded for an action that did not go
    /// through, unless a route took it up meanwhile.
    pub(super) fn drain_if_unrouted(&self, model: &str, version: &str, served: Arc<ServedModel>) {
        let lock = self.model_lock(model);
        let _one = hold(&lock);
        if !self.table().routes_to(model, version) {
            let _ = self.start_drain(model, version, served);
        }
    }
}

/// How often a drain looks at the requests still holding the version. A
/// request holds an `Arc`, which has no way to wake a waiter when it drops;
/// polling a counter every few milliseconds costs nothing beside that.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `served` is held by nobody else, drops it, and waits for its
/// engine thread to free its memory.
impl Registry {
    /// Marks the version draining and drains it on a thread of its own,
    /// which takes it out of the slots when its memory is back; the
    /// receiver hears how long that took.
    pub(super) fn start_drain(
        &self,
        model: &str,
        version: &str,
        served: Arc<ServedModel>,
    ) -> Result<std::sync::mpsc::Receiver<Duration>, RegistryError> {
        let key = (model.to_owned(), version.to_owned());
        self.lock_slots().insert(key.clone(), Slot::Draining);
        let (done, drained) = std::sync::mpsc::channel();
        let slots = self.slots.clone();
        std::thread::Builder::new()
            .name("drain".into())
            .spawn(move || {
                let took = drain(served);
                slots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&key);
                let _ = done.send(took);
            })
            .map_err(|e| RegistryError::Conflict(format!("cannot start a drain: {e}")))?;
        Ok(drained)
    }
}

pub(super) fn drain(served: Arc<ServedModel>) -> Duration {
    let started = Instant::now();
    let exit = served.engine.exit_watch();
    while Arc::strong_count(&served) > 1 {
        std::thread::sleep(POLL);
    }
    drop(served);
    while !exit.has_exited() {
        std::thread::sleep(POLL);
    }
    trim_heap();
    started.elapsed()
}

/// Hands freed heap pages back to the system. Large buffers are their own
/// mappings and return at once; glibc keeps the small-allocation arenas
/// (tokenizer, templates) until asked.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes the allocator's locks and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Serves every allocation of 1 MiB or more (weights, KV planes) from its
/// own mapping, which goes back to the system the moment it is freed.
/// glibc otherwise raises its mapping threshold after the first large free
/// and serves later weights from the heap, where an unload leaves them
/// stranded. Called once at start, before any model loads.
pub fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; any value is valid
    // and it is called before the threads that allocate start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
