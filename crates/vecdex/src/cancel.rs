//! Cooperative cancellation: long operations check a stop flag between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A shared flag; `stop()` from any thread makes the operation return [`Error::Aborted`] at its
/// next check, with no partial effect.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that never fires, for callers with nothing to cancel.
    pub fn never() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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
