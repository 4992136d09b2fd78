//! Model versions and the routing table. A model is the name clients send;
//! its versions are immutable records in the store; its deployment names
//! the stable version (and a canary). Loaded versions each run their own
//! engine; the routing table is swapped whole through `ArcSwap`, so
//! readers never lock and a request keeps the version it started on.

mod actions;
mod drain;
mod loader;
mod names;
mod served;
mod table;
mod views;
pub mod warmup;

pub use actions::Registration;
pub use drain::map_large_buffers;
pub use loader::{LoadSettings, LoadSpec, Loader};
pub use names::BOOT_VERSION;
pub use served::ServedModel;
pub use table::{Canary, Route, RoutingTable};

use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The action does not fit the current state (unloading the stable
    /// version, promoting without a canary, a version that failed warm-up).
    #[error("{0}")]
    Conflict(String),
    #[error("the artifact cannot be used: {0}")]
    Artifact(String),
    #[error("not enough memory to load this version: {0}")]
    NoRoom(String),
    #[error("the version failed its warm-up: {0}")]
    Warmup(String),
    #[error("no model is loaded yet")]
    NotReady,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A version in memory, or on its way in or out.
#[derive(Clone)]
enum Slot {
    Loading,
    Ready(Arc<ServedModel>),
    Draining,
}

impl Slot {
    fn state(&self) -> &'static str {
        match self {
            Slot::Loading => "loading",
            Slot::Ready(_) => "ready",
            Slot::Draining => "draining",
        }
    }
}

type VersionKey = (String, String);

pub struct Registry {
    table: ArcSwap<RoutingTable>,
    /// Shared with drain threads, which remove a version once it is out.
    slots: Arc<Mutex<BTreeMap<VersionKey, Slot>>>,
    store: Arc<Store>,
    loader: Loader,
    /// One admin action at a time: two deploys of one model must not race.
    actions: Mutex<()>,
    /// Spreads canary traffic of requests that name no user.
    requests: AtomicU64,
    /// How long an unload waits for requests in flight before answering
    /// that the version is still draining.
    drain_timeout: std::time::Duration,
}

impl Registry {
    pub fn new(store: Arc<Store>, loader: Loader) -> Self {
        Registry {
            table: ArcSwap::from_pointee(RoutingTable::default()),
            slots: Arc::new(Mutex::new(BTreeMap::new())),
            store,
            loader,
            actions: Mutex::new(()),
            requests: AtomicU64::new(0),
            drain_timeout: std::time::Duration::from_secs(120),
        }
    }

    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// The routing table now; a request resolves against one snapshot.
    pub fn table(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// The version that answers a request for `name` (any model when the
    /// only one served and `name` is None), sticky by `user` under a canary.
    pub fn resolve(
        &self,
        name: Option<&str>,
        user: Option<&str>,
    ) -> Result<Arc<ServedModel>, RegistryError> {
        let table = self.table.load();
        if table.is_empty() {
            return Err(RegistryError::NotReady);
        }
        let route = match name {
            Some(n) => table.route(n),
            None => table.sole(),
        };
        let route = route.ok_or_else(|| match name {
            Some(n) => RegistryError::NotFound(format!("The model `{n}` does not exist")),
            None => {
                RegistryError::Invalid("several models are served: name one in `model`".to_owned())
            }
        })?;
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(route.pick(user, n).clone())
    }

    /// Every version in memory and ready (for health and metrics).
    pub fn loaded(&self) -> Vec<Arc<ServedModel>> {
        self.lock_slots()
            .values()
            .filter_map(|s| match s {
                Slot::Ready(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Puts a version loaded from the command-line flags in service. It
    /// is not written to the store.
    pub fn install_boot(&self, served: ServedModel) {
        let served = Arc::new(served);
        let key = (served.name().to_owned(), served.version.clone());
        self.lock_slots().insert(key, Slot::Ready(served.clone()));
        let route = Route::stable_only(served.names.clone(), served);
        self.table.rcu(|t| t.with(route.clone()));
    }

    /// What the store says `model` is deployed as.
    pub fn stored_deployment(
        &self,
        model: &str,
    ) -> Result<Option<crate::store::Deployment>, RegistryError> {
        Ok(self.store.deployment(model)?)
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<VersionKey, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, model: &str, version: &str) -> Option<Slot> {
        self.lock_slots()
            .get(&(model.to_owned(), version.to_owned()))
            .cloned()
    }
}
