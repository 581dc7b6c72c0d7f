//! Maps vecdex errors to JS errors that carry their stable code as data: the JS error's `code`
//! property is the vecdex code (`ERR_CLOSED`, ...) and its message is the text alone, for sync
//! throws, constructor throws and async rejections alike. The TS layer reads `err.code`; nothing
//! is parsed from a message.
//!
//! napi-rs sets a thrown error's `code` from the status of its `napi::Error<S>`, where `S` is any
//! `AsRef<str>`: here the status is the vecdex code itself. Every native function returns
//! [`Result`], whose error type [`NativeError`] wraps such an error, so that `?` converts
//! vecdex errors and napi's own failures into it (a foreign `napi::Error<S>` could not take
//! those `From` conversions). Promise rejections are made on the JS thread as JS error objects
//! with the code set ([`NativeError::into_rejection`]): a napi deferred only rejects with
//! napi's own status type.

use napi::bindgen_prelude::JsError;
use napi::{Env, Status};

/// The error of every native function: a napi error whose status is a vecdex code.
pub struct NativeError(napi::Error<&'static str>);

/// What every native function returns.
pub type Result<T> = std::result::Result<T, NativeError>;

/// The code of a sync search whose results did not fit the output buffer it was given: the TS
/// layer sizes that buffer from the index's size, which an async add may grow meanwhile, and
/// retries once with room. Internal to vecdex (never reaches a user as such), and no
/// [`vecdex::Error`] code.
pub const RESULTS_DID_NOT_FIT: &str = "ERR_RESULTS_DID_NOT_FIT";

impl NativeError {
    fn new(code: &'static str, message: impl ToString) -> Self {
        NativeError(napi::Error::new(code, message))
    }

    /// ERR_CLOSED for a closed object that is no index (a key filter, an encoder).
    pub fn closed(what: &str) -> Self {
        NativeError::new(
            vecdex::Error::Closed.code(),
            format!("the {what} is closed"),
        )
    }

    /// The dedicated signal of [`RESULTS_DID_NOT_FIT`].
    pub fn results_did_not_fit(message: impl ToString) -> Self {
        NativeError::new(RESULTS_DID_NOT_FIT, message)
    }

    /// The JS error object (with its `code`) as the error a napi deferred rejects with: napi-rs
    /// hands a rejection built from a JS value back as that very value.
    pub fn into_rejection(self, env: Env) -> napi::Error {
        napi::Error::from(JsError::from(self.0).into_unknown(env))
    }
}

impl From<vecdex::Error> for NativeError {
    fn from(error: vecdex::Error) -> Self {
        NativeError::new(error.code(), error)
    }
}

/// A failure of napi itself (a value of the wrong type, an environment tearing down).
impl From<napi::Error> for NativeError {
    fn from(error: napi::Error) -> Self {
        let code = match error.status {
            // A JS exception is already pending: napi-rs rethrows it as it is, by this status.
            Status::PendingException => "PendingException",
            Status::InvalidArg
            | Status::ObjectExpected
            | Status::StringExpected
            | Status::NameExpected
            | Status::FunctionExpected
            | Status::NumberExpected
            | Status::BooleanExpected
            | Status::ArrayExpected
            | Status::BigintExpected
            | Status::DateExpected
            | Status::ArrayBufferExpected => "ERR_INVALID_ARGUMENT",
            _ => "ERR_INTERNAL",
        };
        NativeError::new(code, format!("{} ({})", error.reason, error.status))
    }
}

/// How napi-rs throws a [`NativeError`] returned by a `#[napi]` function or constructor.
impl From<NativeError> for JsError<&'static str> {
    fn from(error: NativeError) -> Self {
        JsError::from(error.0)
    }
}

impl std::fmt::Debug for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.status, self.0.reason)
    }
}

/// Kept for the call sites that map a [`vecdex::Error`] explicitly.
pub fn to_napi(error: vecdex::Error) -> NativeError {
    error.into()
}

/// Runs `f` with panics caught, mapping every failure to a JS error.
pub fn guarded<T>(f: impl FnOnce() -> vecdex::Result<T>) -> Result<T> {
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

pub fn invalid(message: impl Into<String>) -> NativeError {
    to_napi(vecdex::Error::invalid(message))
}
