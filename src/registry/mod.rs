//! Model versions and the routing table. A model is the name clients send;
//! its versions are immutable records in the store; its deployment names
//! the stable version (and a canary). Loaded versions each run their own
//! engine; the routing table is swapped whole through `ArcSwap`, so
//! readers never lock and a request keeps the version it started on.

mod actions;
mod boot;
mod canary;
mod drain;
pub mod eval;
mod faults;
mod loader;
mod locks;
mod names;
mod register;
pub mod rollout;
mod served;
mod shadow;
mod table;
mod views;
pub mod warmup;

pub use boot::{BootModel, StartUp};
pub use drain::map_large_buffers;
pub use loader::{LoadSettings, LoadSpec, Loader};
pub use names::BOOT_VERSION;
pub use register::Registration;
pub use rollout::{AnalysisConfig, RolloutPlan, VersionWindow};
pub use served::ServedModel;
pub use table::{Canary, Route, RoutingTable};

use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
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
    /// The evaluation gate refused the version (`eval/gate.rs`).
    #[error("the evaluation gate refused it: {0}")]
    Gate(String),
    /// An evaluation could not run.
    #[error("the evaluation could not run: {0}")]
    Eval(String),
    #[error("no model is loaded yet")]
    NotReady,
    #[error("{0}")]
    Forbidden(String),
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
    /// Admin actions on one model take turns (`locks.rs`).
    models: locks::Keyed<String>,
    /// Loads of one version take turns.
    loads: locks::Keyed<VersionKey>,
    /// The canary-analysis window of every version.
    windows: rollout::Windows,
    /// Why a model's stored deployment did not come back at start, for
    /// the admin API (`start_up`).
    restore_errors: Mutex<HashMap<String, String>>,
    /// Spreads canary traffic of requests that name no user.
    requests: AtomicU64,
    /// Counts requests offered to a shadow, to copy exactly its share.
    mirrored: AtomicU64,
    /// The analysis threads of running canaries.
    controllers: rollout::Controllers,
    /// Whether versions may be told to fail (`--allow-fault-injection`).
    pub allow_faults: bool,
    /// How long an unload waits for requests in flight before answering
    /// that the version is still draining.
    drain_timeout: std::time::Duration,
}

impl Registry {
    pub fn new(store: Arc<Store>, loader: Loader, allow_faults: bool) -> Self {
        Registry {
            table: ArcSwap::from_pointee(RoutingTable::default()),
            slots: Arc::new(Mutex::new(BTreeMap::new())),
            store,
            loader,
            models: Default::default(),
            loads: Default::default(),
            windows: Default::default(),
            restore_errors: Default::default(),
            requests: AtomicU64::new(0),
            mirrored: AtomicU64::new(0),
            controllers: rollout::Controllers::default(),
            allow_faults,
            drain_timeout: std::time::Duration::from_secs(120),
        }
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

    /// The evaluation score a version was registered with.
    fn eval_score(&self, model: &str, version: &str) -> Option<f64> {
        self.store
            .version(model, version)
            .ok()
            .flatten()?
            .eval_score
    }

    /// The stable version of `model` while `canary` is its canary.
    fn canary_of(&self, model: &str, canary: &str) -> Option<String> {
        let table = self.table();
        let route = table.route(model)?;
        let c = route.canary.as_ref()?;
        (c.version.version == canary).then(|| route.stable.version.clone())
    }

    /// Sets the traffic-share and state gauges of every loaded version of
    /// `model` after its route changed.
    fn publish_route(&self, model: &str) {
        use crate::telemetry::metrics;
        let table = self.table();
        let route = table.route(model).filter(|r| r.names[0] == model);
        let share = |version: &str| -> f64 {
            let Some(r) = route else { return 0.0 };
            let canary = r.canary.as_ref().map_or(0.0, |c| c.percent / 100.0);
            if r.stable.version == version {
                1.0 - canary
            } else if r
                .canary
                .as_ref()
                .is_some_and(|c| c.version.version == version)
            {
                canary
            } else {
                0.0
            }
        };
        let versions: Vec<String> = self
            .lock_slots()
            .keys()
            .filter(|(m, _)| m == model)
            .map(|(_, v)| v.clone())
            .collect();
        for v in versions {
            metrics::rollout_traffic(model, &v, share(&v));
            if route.is_some_and(|r| r.stable.version == v) {
                let all = rollout::RolloutState::ALL.map(rollout::RolloutState::name);
                metrics::rollout_state(model, &v, "stable", all);
            }
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<VersionKey, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version in memory and ready, if it is.
    fn ready(&self, model: &str, version: &str) -> Option<Arc<ServedModel>> {
        match self.slot(model, version) {
            Some(Slot::Ready(m)) => Some(m),
            _ => None,
        }
    }

    /// The lock `model`'s admin actions take turns on; held only around
    /// a decision and its commit (table swap and store write), never
    /// through a load.
    fn model_lock(&self, model: &str) -> Arc<Mutex<()>> {
        self.models.of(&model.to_owned())
    }

    fn slot(&self, model: &str, version: &str) -> Option<Slot> {
        self.lock_slots()
            .get(&(model.to_owned(), version.to_owned()))
            .cloned()
    }
}
