//! Async work on vecdex's task pools (index work and file work apart, see `vecdex::threads`): the JS thread gets a Promise at once, the work runs on a
//! task thread (never on libuv's small thread pool, which file I/O and DNS share) that takes
//! the index lock and hands the parallel part to the compute pool (see `vecdex::threads` for
//! why the two pools are separate), and the result becomes JS values back on the JS thread.
//!
//! Inputs must already be owned Rust data: callers copy JS typed arrays before spawning, since
//! JS may change a buffer while a worker reads it.

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::Env;

use crate::error::{NativeError, Result};

/// Runs `work` on the task pool (index operations: searches, writes, encodes).
pub fn spawn<'env, T, D>(
    env: &'env Env,
    work: impl FnOnce() -> vecdex::Result<T> + Send + 'static,
    to_js: impl FnOnce(Env, T) -> Result<D> + Send + 'static,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    D: ToNapiValue + 'static,
{
    spawn_on(env, vecdex::threads::task_pool(), work, to_js)
}

/// Runs `work` on the file task pool: operations that open, read or write a file (load, view,
/// save, inspect). However long the operating system keeps them waiting, they hold up only
/// other file operations, never the searches and writes of [`spawn`].
pub fn spawn_file<'env, T, D>(
    env: &'env Env,
    work: impl FnOnce() -> vecdex::Result<T> + Send + 'static,
    to_js: impl FnOnce(Env, T) -> Result<D> + Send + 'static,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    D: ToNapiValue + 'static,
{
    spawn_on(env, vecdex::threads::file_task_pool(), work, to_js)
}

fn spawn_on<'env, T, D>(
    env: &'env Env,
    pool: vecdex::Result<&'static vecdex::threads::TaskPool>,
    work: impl FnOnce() -> vecdex::Result<T> + Send + 'static,
    to_js: impl FnOnce(Env, T) -> Result<D> + Send + 'static,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    D: ToNapiValue + 'static,
{
    let (deferred, promise) = env.create_deferred()?;
    let pool = pool?;
    let work = move || {
        crate::error::panic_if_armed();
        work()
    };
    pool.spawn(move || {
        let outcome = vecdex::catch_panic(work);
        // A failure too settles on the JS thread, where its JS error (with `code`) is made.
        deferred.resolve(move |env| {
            let value = match outcome {
                Ok(value) => to_js(env, value).map_err(|error| error.into_rejection(env))?,
                Err(error) => return Err(NativeError::from(error).into_rejection(env)),
            };
            to_js_value(env, value)
        })
    })?;
    Ok(promise)
}

/// A value already made into a JS value.
struct JsValue(napi::sys::napi_value);

impl ToNapiValue for JsValue {
    unsafe fn to_napi_value(
        _env: napi::sys::napi_env,
        value: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        Ok(value.0)
    }
}

/// Makes `value` a JS value here rather than letting napi-rs do it after the resolver returns:
/// a conversion that fails with a JS exception pending (Node refusing a buffer, say) would there
/// leave the promise unsettled and the exception uncaught, which ends the process. Here the
/// exception is cleared and the promise rejects with ERR_INTERNAL.
fn to_js_value<D: ToNapiValue>(env: Env, value: D) -> napi::Result<JsValue> {
    // SAFETY: on the JS thread, inside a deferred's resolver, with its live environment.
    match unsafe { D::to_napi_value(env.raw(), value) } {
        Ok(raw) => Ok(JsValue(raw)),
        Err(error) => {
            let mut pending = false;
            // SAFETY: as above; `pending` and `exception` are valid out-pointers.
            unsafe {
                napi::sys::napi_is_exception_pending(env.raw(), &mut pending);
                if pending {
                    let mut exception = std::ptr::null_mut();
                    napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut exception);
                }
            }
            Err(NativeError::from(vecdex::Error::Internal(format!(
                "the result could not be made a JS value: {} ({})",
                error.reason, error.status
            )))
            .into_rejection(env))
        }
    }
}
