//! Foreground and background engines. Every engine shares one compute
//! pool; a background engine (a shadow version, whose answers nobody
//! waits for) steps only while no foreground engine has work, so that
//! mirrored traffic never slows the clients' own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Foreground engines with requests running or waiting.
static FOREGROUND_BUSY: AtomicUsize = AtomicUsize::new(0);

/// How long a background engine waits before looking again. A foreground
/// engine going idle has no one to wake; a millisecond is well below one
/// engine step.
const YIELD: Duration = Duration::from_millis(1);

/// One engine's standing, kept by its thread.
pub(crate) struct Standing {
    background: Arc<AtomicBool>,
    /// Whether this engine is counted in FOREGROUND_BUSY.
    counted: bool,
}

impl Standing {
    pub fn new(background: Arc<AtomicBool>) -> Self {
        Standing {
            background,
            counted: false,
        }
    }

    /// Before a step: a foreground engine counts itself busy; a background
    /// one first waits until no foreground engine is.
    pub fn before_step(&mut self) {
        if self.background.load(Ordering::Acquire) {
            self.idle();
            while FOREGROUND_BUSY.load(Ordering::Acquire) > 0
                && self.background.load(Ordering::Acquire)
            {
                std::thread::sleep(YIELD);
            }
        } else if !self.counted {
            FOREGROUND_BUSY.fetch_add(1, Ordering::AcqRel);
            self.counted = true;
        }
    }

    /// No work left: stop counting as busy.
    pub fn idle(&mut self) {
        if self.counted {
            FOREGROUND_BUSY.fetch_sub(1, Ordering::AcqRel);
            self.counted = false;
        }
    }
}

impl Drop for Standing {
    fn drop(&mut self) {
        self.idle();
    }
}
