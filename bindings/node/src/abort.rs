//! A native stop flag the TS layer trips from an AbortSignal's `abort` event.

use napi_derive::napi;
use vecdex::StopFlag;

/// Cancels the async operations it was passed to, at their next check between batches.
#[napi]
pub struct NativeAbortHandle {
    pub(crate) flag: StopFlag,
}

#[napi]
impl NativeAbortHandle {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeAbortHandle {
            flag: StopFlag::new(),
        }
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
