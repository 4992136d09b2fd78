//! Locks by name. Admin actions on one model take turns; actions on
//! different models never wait for each other. Loads take turns per
//! version (two deploys of one version load it once), and no model's lock
//! is held while a version loads, warms up or drains: a rollback never
//! waits behind a multi-gigabyte deploy.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub(super) struct Keyed<K> {
    locks: Mutex<HashMap<K, Arc<Mutex<()>>>>,
}

impl<K> Default for Keyed<K> {
    fn default() -> Self {
        Keyed {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> Keyed<K> {
    /// The lock of `key`, made on first use (there is one per model or
    /// version ever named: few, and small).
    pub fn of(&self, key: &K) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
    }
}

/// Takes `lock`; a panic of an earlier holder left nothing half-done that
/// the lock protects (the state lives in the table and the store).
pub(super) fn hold(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_one_lock_and_keys_do_not_share() {
        let keyed = Keyed::<String>::default();
        let a = keyed.of(&"a".to_owned());
        assert!(Arc::ptr_eq(&a, &keyed.of(&"a".to_owned())));
        let b = keyed.of(&"b".to_owned());
        let _held = hold(&a);
        // Another key's lock is free while `a` is held.
        assert!(b.try_lock().is_ok());
        assert!(a.try_lock().is_err());
    }
}
