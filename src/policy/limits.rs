//! Requests per minute, tokens per minute and concurrent requests, per key
//! and per tenant.
//!
//! The minute is a fixed window of 60 seconds that opens with the first
//! request after the previous one closed (not a sliding window): counts
//! start from zero when it opens. A request is admitted only if every
//! limit of its key and of its tenant has room, and is then charged to
//! all of them at once, under their locks: concurrent requests cannot
//! overshoot. Tokens are reserved at admission (prompt + max_tokens) and
//! settled with the real count when the request ends, which gives back
//! what it did not use, in the same window.

use dashmap::DashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(60);

/// The limits of a key or a tenant; None is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Caps {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub concurrent: Option<u64>,
}

#[derive(Default)]
struct State {
    /// When the current window opened, and its number.
    window: Option<(Instant, u64)>,
    opened: u64,
    requests: u64,
    tokens: u64,
    concurrent: u64,
}

impl State {
    fn roll(&mut self, now: Instant) {
        if self
            .window
            .is_none_or(|(start, _)| now.duration_since(start) >= WINDOW)
        {
            self.opened += 1;
            self.window = Some((now, self.opened));
            self.requests = 0;
            self.tokens = 0;
        }
    }

    fn reset_in(&self, now: Instant) -> Duration {
        self.window.map_or(Duration::ZERO, |(start, _)| {
            (start + WINDOW).saturating_duration_since(now)
        })
    }

    fn check(&self, caps: Caps, tokens: u64, now: Instant) -> Result<(), Limited> {
        let window = |what, limit| Limited {
            what,
            limit,
            retry_after: self.reset_in(now),
            never: false,
        };
        if let Some(c) = caps.concurrent.filter(|&c| self.concurrent >= c) {
            return Err(Limited {
                what: What::Concurrent,
                limit: c,
                retry_after: Duration::from_secs(1),
                never: false,
            });
        }
        if let Some(r) = caps.rpm.filter(|&r| self.requests >= r) {
            return Err(window(What::Requests, r));
        }
        if let Some(t) = caps.tpm {
            if tokens > t {
                return Err(Limited {
                    never: true,
                    ..window(What::Tokens, t)
                });
            }
            if self.tokens + tokens > t {
                return Err(window(What::Tokens, t));
            }
        }
        Ok(())
    }

    fn info(&self, caps: Caps, now: Instant) -> RateInfo {
        let reset = self.reset_in(now);
        RateInfo {
            requests: caps.rpm.map(|l| (l, l.saturating_sub(self.requests))),
            tokens: caps.tpm.map(|l| (l, l.saturating_sub(self.tokens))),
            reset,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Requests,
    Tokens,
    Concurrent,
}

impl What {
    pub const ALL: [What; 3] = [What::Requests, What::Tokens, What::Concurrent];

    /// A metric label: requests, tokens or concurrent.
    pub fn label(self) -> &'static str {
        match self {
            What::Requests => "requests",
            What::Tokens => "tokens",
            What::Concurrent => "concurrent",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            What::Requests => "requests per minute",
            What::Tokens => "tokens per minute",
            What::Concurrent => "concurrent requests",
        }
    }
}

/// A limit that refused a request.
#[derive(Clone, Debug)]
pub struct Limited {
    pub what: What,
    pub limit: u64,
    pub retry_after: Duration,
    /// The request alone is larger than the limit: waiting will not help.
    pub never: bool,
}

/// The key's standing after admission, for the `x-ratelimit-*` headers:
/// (limit, remaining) of each limited quantity and when the window closes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateInfo {
    pub requests: Option<(u64, u64)>,
    pub tokens: Option<(u64, u64)>,
    pub reset: Duration,
}

#[derive(Default)]
pub struct Counter {
    state: Mutex<State>,
}

impl Counter {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
pub struct Limits {
    keys: DashMap<String, Arc<Counter>>,
    tenants: DashMap<String, Arc<Counter>>,
}

/// Whose limit refused a request.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub tenant: bool,
    pub limited: Limited,
    /// The key's standing, for the headers of the 429.
    pub info: RateInfo,
}

impl Limits {
    /// Admits one request that reserves `tokens`, or says which limit
    /// refuses it. Nothing is charged on a refusal.
    pub fn admit(
        &self,
        key: (&str, Caps),
        tenant: Option<(&str, Caps)>,
        tokens: u64,
    ) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        let counter = |map: &DashMap<String, Arc<Counter>>, id: &str| {
            map.entry(id.to_owned()).or_default().value().clone()
        };
        let key_counter = counter(&self.keys, key.0);
        let tenant_counter = tenant.map(|(t, caps)| (counter(&self.tenants, t), caps));
        // Always key before tenant: one lock order, no deadlock.
        let mut k = key_counter.lock();
        k.roll(now);
        let mut t = tenant_counter.as_ref().map(|(c, caps)| (c.lock(), *caps));
        if let Some((t, _)) = t.as_mut() {
            t.roll(now);
        }
        let refuse = |limited: Limited, tenant: bool, k: &State| Refusal {
            tenant,
            limited,
            info: k.info(key.1, now),
        };
        k.check(key.1, tokens, now)
            .map_err(|l| refuse(l, false, &k))?;
        if let Some((t, caps)) = &t {
            t.check(*caps, tokens, now)
                .map_err(|l| refuse(l, true, &k))?;
        }
        let mut charged = Vec::with_capacity(2);
        let mut charge = |s: &mut State, c: &Arc<Counter>| {
            s.requests += 1;
            s.tokens += tokens;
            s.concurrent += 1;
            charged.push((c.clone(), s.window.map_or(0, |w| w.1)));
        };
        charge(&mut k, &key_counter);
        if let (Some((t, _)), Some((c, _))) = (t.as_mut(), &tenant_counter) {
            charge(t, c);
        }
        let info = k.info(key.1, now);
        Ok(Ticket {
            charged,
            reserved: tokens,
            info,
        })
    }
}

/// An admitted request's hold on its counters.
pub struct Ticket {
    charged: Vec<(Arc<Counter>, u64)>,
    reserved: u64,
    pub info: RateInfo,
}

impl Ticket {
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// The request ended having used `tokens`: its concurrency slot is
    /// given back, and its reservation replaced by what it used if the
    /// window it was charged to is still open.
    pub fn settle(self, tokens: u64) {
        for (counter, window) in &self.charged {
            let mut s = counter.lock();
            s.concurrent = s.concurrent.saturating_sub(1);
            if s.window.is_some_and(|w| w.1 == *window) {
                s.tokens = s.tokens.saturating_sub(self.reserved) + tokens;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Caps = Caps {
        rpm: Some(50),
        tpm: None,
        concurrent: None,
    };

    #[test]
    fn exactly_the_requests_per_minute_are_admitted_from_many_threads() {
        let limits = Arc::new(Limits::default());
        let admitted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        if let Ok(t) = limits.admit(("k", KEY), None, 10) {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            t.settle(10);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 50);
        let refused = limits.admit(("k", KEY), None, 1).err().unwrap();
        assert_eq!(refused.limited.what, What::Requests);
        assert!(refused.limited.retry_after <= WINDOW && !refused.tenant);
        assert_eq!(refused.info.requests, Some((50, 0)));
    }

    #[test]
    fn reservations_hold_tokens_until_settled_with_what_was_used() {
        let caps = Caps {
            tpm: Some(100),
            ..Caps::default()
        };
        let limits = Limits::default();
        let a = limits.admit(("k", caps), None, 60).unwrap();
        assert_eq!(a.info.tokens, Some((100, 40)));
        let refused = limits.admit(("k", caps), None, 60).err().unwrap();
        assert_eq!(refused.limited.what, What::Tokens);
        assert!(!refused.limited.never);
        a.settle(20);
        let b = limits.admit(("k", caps), None, 60).unwrap();
        assert_eq!(b.info.tokens, Some((100, 20)));
        assert!(
            limits
                .admit(("k", caps), None, 101)
                .err()
                .unwrap()
                .limited
                .never
        );
    }

    #[test]
    fn a_tenant_limit_binds_all_its_keys_and_a_refusal_charges_nothing() {
        let tenant = Caps {
            concurrent: Some(2),
            ..Caps::default()
        };
        let open = Caps::default();
        let limits = Limits::default();
        let a = limits.admit(("a", open), Some(("t", tenant)), 1).unwrap();
        let b = limits.admit(("b", open), Some(("t", tenant)), 1).unwrap();
        let refused = limits
            .admit(("c", open), Some(("t", tenant)), 1)
            .err()
            .unwrap();
        assert!(refused.tenant);
        assert_eq!(refused.limited.what, What::Concurrent);
        // Key `c` was not charged: alone, it is admitted.
        let c = limits.admit(("c", open), None, 1).unwrap();
        a.settle(1);
        let d = limits.admit(("d", open), Some(("t", tenant)), 1).unwrap();
        for t in [b, c, d] {
            t.settle(1);
        }
    }
}
