//! vecdex's own thread pools, so heavy work never runs on (or competes for) the host's threads.
//!
//! - The **compute pool** (Rayon, `VECDEX_THREADS` threads if set to a positive integer, else
//!   one per core) runs the parallel parts of searches. Its threads never take an index lock:
//!   a Rayon thread waiting for a lock could be the one whose work the lock holder waits for
//!   (Rayon threads pick up queued jobs while they wait), which deadlocks.
//! - The **task pool** ([`TASK_THREADS`] threads) runs async operations from start to end: each
//!   takes the index lock it needs and hands its parallel part to the compute pool. Its threads
//!   may block on locks; the compute pool they wait for never does, so every wait ends.

use std::sync::OnceLock;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: OnceLock<std::result::Result<ThreadPool, String>> = OnceLock::new();
static TASKS: OnceLock<std::result::Result<ThreadPool, String>> = OnceLock::new();

/// Async operations that may run (or wait for a lock) at once; more queue in order. They mostly
/// wait, so this is about concurrency, not cores.
pub const TASK_THREADS: usize = 8;

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

/// The task pool (see the module docs), built on first use.
pub fn task_pool() -> Result<&'static ThreadPool> {
    TASKS
        .get_or_init(|| {
            ThreadPoolBuilder::new()
                .num_threads(TASK_THREADS)
                .thread_name(|i| format!("vecdex-task-{i}"))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("cannot start the task pool: {e}")))
}

/// Number of threads in the compute pool.
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
