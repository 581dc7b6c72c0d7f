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
        deferred.resolve(move |env| match outcome {
            Ok(value) => to_js(env, value).map_err(|error| error.into_rejection(env)),
            Err(error) => Err(NativeError::from(error).into_rejection(env)),
        })
    })?;
    Ok(promise)
}
