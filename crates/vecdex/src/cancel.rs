//! Cooperative cancellation: long operations check a stop flag between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A shared flag; `stop()` from any thread makes the operation return [`Error::Aborted`] at its
/// next check, with no partial effect.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<FlagState>);

#[derive(Debug, Default)]
struct FlagState {
    stopped: AtomicBool,
    /// Counted by the test hook [`trace`], which may also stop it.
    traced: bool,
}

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that never fires, for callers with nothing to cancel.
    pub fn never() -> Self {
        Self::default()
    }

    /// A flag whose checks the test hook [`trace`] counts (and which it stops at the check it
    /// was set to); otherwise like [`new`](Self::new).
    pub fn traced() -> Self {
        StopFlag(Arc::new(FlagState {
            stopped: AtomicBool::new(false),
            traced: true,
        }))
    }

    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        if self.0.traced && trace::count_check() {
            self.stop();
        }
        self.0.stopped.load(Ordering::Relaxed)
    }

    /// `Err(Aborted)` once stopped.
    pub fn check(&self) -> Result<()> {
        if self.is_stopped() {
            Err(Error::Aborted)
        } else {
            Ok(())
        }
    }
}

/// Test hook: proves that an aborted operation stopped its work early, by work done rather than
/// time taken. Every check of a [`StopFlag::traced`] flag (one look between two pieces of work)
/// adds one to a process-wide count, and once the count reaches the check set by [`reset`]
/// every traced flag reads as stopped. A test runs an operation unaborted to count its checks,
/// then again stopped at an early check, and compares how many checks each made. Costs nothing
/// for flags that are not traced.
pub mod trace {
    use std::sync::atomic::{AtomicU64, Ordering};

    static CHECKS: AtomicU64 = AtomicU64::new(0);
    static STOP_AT: AtomicU64 = AtomicU64::new(u64::MAX);

    /// Sets the count to 0; traced flags stop at check number `stop_at` (1-based) and at every
    /// later one, or never when `None`.
    pub fn reset(stop_at: Option<u64>) {
        STOP_AT.store(stop_at.unwrap_or(u64::MAX), Ordering::SeqCst);
        CHECKS.store(0, Ordering::SeqCst);
    }

    /// Checks of traced flags since the last [`reset`].
    pub fn checks() -> u64 {
        CHECKS.load(Ordering::SeqCst)
    }

    /// Counts one check; true when traced flags must read as stopped from now on.
    pub(super) fn count_check() -> bool {
        let made = CHECKS.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        made >= STOP_AT.load(Ordering::SeqCst)
    }
}
