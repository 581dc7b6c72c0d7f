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
    vecdex::catch_panic(f).map_err(to_napi)
}

pub fn invalid(message: impl Into<String>) -> napi::Error {
    to_napi(vecdex::Error::invalid(message))
}
