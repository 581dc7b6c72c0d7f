//! A native stop flag the TS layer trips from an AbortSignal's `abort` event.

use std::sync::atomic::{AtomicBool, Ordering};

use napi_derive::napi;
use vecdex::StopFlag;

/// Cancels the async operations it was passed to, at their next check between batches.
#[napi]
pub struct NativeAbortHandle {
    pub(crate) flag: StopFlag,
}

/// Whether new handles are traced (see [`trace_new_handles`]).
static TRACING: AtomicBool = AtomicBool::new(false);

#[napi]
impl NativeAbortHandle {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let flag = if TRACING.load(Ordering::Relaxed) {
            StopFlag::traced()
        } else {
            StopFlag::new()
        };
        NativeAbortHandle { flag }
    }

    #[napi]
    pub fn abort(&self) {
        self.flag.stop();
    }

    #[napi(getter)]
    pub fn aborted(&self) -> bool {
        self.flag.is_stopped()
    }
}

pub fn flag(handle: Option<&NativeAbortHandle>) -> StopFlag {
    handle.map_or_else(StopFlag::never, |h| h.flag.clone())
}

/// Whether the handles made from now on are traced (`vecdex::cancel::trace`; see
/// `debug::debug_trace_aborts`).
pub(crate) fn trace_new_handles(on: bool) {
    TRACING.store(on, Ordering::Relaxed);
}
