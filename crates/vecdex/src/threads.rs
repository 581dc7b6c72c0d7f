//! vecdex's own Rayon pool, so heavy work never runs on (or competes for) the host's threads.
//! Size: `VECDEX_THREADS` if set to a positive integer, else the number of available cores.

use std::sync::OnceLock;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: OnceLock<std::result::Result<ThreadPool, String>> = OnceLock::new();

fn configured_threads() -> usize {
    std::env::var("VECDEX_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The pool, built on first use.
pub fn pool() -> Result<&'static ThreadPool> {
    POOL.get_or_init(|| {
        ThreadPoolBuilder::new()
            .num_threads(configured_threads())
            .thread_name(|i| format!("vecdex-{i}"))
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Internal(format!("cannot start the thread pool: {e}")))
}

/// Number of threads in the pool.
pub fn thread_count() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}

/// Runs `f` on the pool (blocking the caller until done), unless the caller is already a pool
/// thread, in which case it runs in place.
pub fn run<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let pool = pool()?;
    if pool.current_thread_index().is_some() {
        f()
    } else {
        pool.install(f)
    }
}
