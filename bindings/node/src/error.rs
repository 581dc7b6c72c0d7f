//! Maps vecdex errors to JS errors. The message starts with the stable code
//! (`ERR_CLOSED: the index is closed`); the TS layer turns that into `VecdexError.code`, the
//! same way for sync throws and async rejections.

pub fn to_napi(error: vecdex::Error) -> napi::Error {
    napi::Error::new(
        napi::Status::GenericFailure,
        format!("{}: {}", error.code(), error),
    )
}

/// Runs `f` with panics caught, mapping every failure to a JS error.
pub fn guarded<T>(f: impl FnOnce() -> vecdex::Result<T>) -> napi::Result<T> {
    vecdex::catch_panic(|| {
        panic_if_armed();
        f()
    })
    .map_err(to_napi)
}

/// Set by the test hook `debugArmPanic`: the next guarded native call (sync or async) panics
/// inside its guard, so tests can show every entry point turns a panic into ERR_INTERNAL.
static PANIC_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn arm_panic(armed: bool) {
    PANIC_ARMED.store(armed, std::sync::atomic::Ordering::SeqCst);
}

/// Panics once if the test hook armed it.
pub fn panic_if_armed() {
    if PANIC_ARMED.swap(false, std::sync::atomic::Ordering::SeqCst) {
        panic!("deliberate panic (armed by debugArmPanic)");
    }
}

pub fn invalid(message: impl Into<String>) -> napi::Error {
    to_napi(vecdex::Error::invalid(message))
}
