//! The routing table: which loaded version answers a model name. It is
//! immutable; a change builds a new table and swaps it in whole, so a
//! request sees either the old routing or the new one, never half of each.

use super::served::ServedModel;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where one model's traffic goes.
#[derive(Clone)]
pub struct Route {
    /// The names clients send for this model.
    pub names: Vec<String>,
    pub stable: Arc<ServedModel>,
    pub canary: Option<Canary>,
    /// Gets a copy of a share of the requests; its answers are discarded.
    pub shadow: Option<Canary>,
}

/// A version with a share of a route's requests: the canary's are
/// answered by it, the shadow's are copied to it.
#[derive(Clone)]
pub struct Canary {
    pub version: Arc<ServedModel>,
    /// Share of requests, 0–100.
    pub percent: f64,
}

impl Route {
    pub fn stable_only(names: Vec<String>, stable: Arc<ServedModel>) -> Self {
        Route {
            names,
            stable,
            canary: None,
            shadow: None,
        }
    }

    /// The version that answers a request. With a canary, `sticky` (the
    /// request's user) hashes to a fixed bucket so that one user always sees
    /// one version; requests without a user are spread by `fallback`.
    pub fn pick(&self, sticky: Option<&str>, fallback: u64) -> &Arc<ServedModel> {
        match &self.canary {
            Some(c) if c.percent > 0.0 => {
                let key = match sticky {
                    Some(user) => fnv1a(self.names[0].as_bytes(), user.as_bytes()),
                    None => fallback.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                };
                // Buckets of a hundredth of a percent.
                let bucket = (key % 10_000) as f64;
                if bucket < c.percent * 100.0 {
                    &c.version
                } else {
                    &self.stable
                }
            }
            _ => &self.stable,
        }
    }

    /// Every version this route may send a request (or a copy) to.
    pub fn versions(&self) -> impl Iterator<Item = &Arc<ServedModel>> {
        std::iter::once(&self.stable)
            .chain(self.canary.as_ref().map(|c| &c.version))
            .chain(self.shadow.as_ref().map(|c| &c.version))
    }
}

/// A stable 64-bit hash (FNV-1a) of the model and the user: the same on
/// every replica and every restart, unlike std's randomly keyed hasher.
fn fnv1a(model: &[u8], user: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in model.iter().chain([0u8].iter()).chain(user) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Model name to route. Cloned and changed whole, then swapped in.
#[derive(Clone, Default)]
pub struct RoutingTable {
    /// Keyed by the deployment's model name (a route's first name).
    routes: BTreeMap<String, Arc<Route>>,
}

impl RoutingTable {
    /// The route that answers to `name` (any of its names).
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.get(name).or_else(|| {
            self.routes
                .values()
                .find(|r| r.names.iter().any(|n| n == name))
        })
    }

    /// The only route, when exactly one model is served (requests may then
    /// leave `model` out).
    pub fn sole(&self) -> Option<&Arc<Route>> {
        match self.routes.len() {
            1 => self.routes.values().next(),
            _ => None,
        }
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// This table with `route` in place of the one of the same model.
    pub fn with(&self, route: Route) -> RoutingTable {
        let mut next = self.clone();
        next.routes.insert(route.names[0].clone(), Arc::new(route));
        next
    }

    /// Whether any route may still send requests to `version` of `model`.
    pub fn routes_to(&self, model: &str, version: &str) -> bool {
        self.routes.get(model).is_some_and(|r| {
            r.versions()
                .any(|v| v.version == version && v.name() == model)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn sticky_hash_is_fixed_and_spreads() {
        // Fixed across builds and processes: users keep their version over
        // restarts.
        assert_eq!(fnv1a(b"m", b"alice"), fnv1a(b"m", b"alice"));
        assert_ne!(fnv1a(b"m", b"alice"), fnv1a(b"m", b"bob"));
        let in_ten_percent = (0..10_000)
            .filter(|i| fnv1a(b"m", format!("user-{i}").as_bytes()) % 10_000 < 1_000)
            .count();
        // Binomial(10000, 0.1): sd 30; six sd either side.
        assert!((820..=1180).contains(&in_ten_percent), "{in_ten_percent}");
    }
}
