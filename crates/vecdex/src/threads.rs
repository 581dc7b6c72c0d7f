//! vecdex's own thread pools, so heavy work never runs on (or competes for) the host's threads.
//!
//! - The **compute pool** (Rayon, `VECDEX_THREADS` threads if set to a positive integer, else
//!   one per core) runs the parallel parts of searches. Its threads never take an index lock:
//!   a Rayon thread waiting for a lock could be the one whose work the lock holder waits for
//!   (Rayon threads pick up queued jobs while they wait), which deadlocks.
//! - The **background pool** (as many threads, at a lower scheduling priority where the system
//!   has one per thread, as on Linux) fits compression models: k-means and PCA take seconds, and
//!   on the compute pool they would hold up every search queued behind them (a Rayon worker takes
//!   a newly queued job only once its own work runs out). On their own threads, at a lower
//!   priority, searches take the cores first. Its threads never take an index lock either.
//! - The **task pool** ([`TASK_THREADS`] plain threads) runs async operations from start to end:
//!   each takes the index lock it needs and hands its parallel part to the compute pool. Its
//!   threads may block on locks; the compute pool they wait for never does, so every wait ends.
//!   They are deliberately not Rayon workers: a Rayon worker waiting on another pool runs other
//!   queued jobs of its own pool meanwhile, and such a job (say, a write waiting for the lock
//!   this very thread holds for a search) would never finish.

use std::sync::{mpsc, Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: OnceLock<std::result::Result<ThreadPool, String>> = OnceLock::new();
static BACKGROUND: OnceLock<std::result::Result<ThreadPool, String>> = OnceLock::new();
static TASKS: OnceLock<std::result::Result<TaskPool, String>> = OnceLock::new();

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

/// The background pool (see the module docs), built on first use.
fn background_pool() -> Result<&'static ThreadPool> {
    BACKGROUND
        .get_or_init(|| {
            ThreadPoolBuilder::new()
                .num_threads(configured_threads())
                .thread_name(|i| format!("vecdex-bg-{i}"))
                .start_handler(|_| lower_this_threads_priority())
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("cannot start the background threads: {e}")))
}

/// Nice 10 for the calling thread: on Linux the nice value is per thread (setpriority(2) with
/// the thread id). Elsewhere nothing: the pool still keeps its work off the compute pool.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; failure only leaves the
    // priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

type Task = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of plain threads taking tasks from one queue, in order.
pub struct TaskPool {
    queue: Mutex<mpsc::Sender<Task>>,
}

impl TaskPool {
    fn start(threads: usize) -> std::result::Result<TaskPool, String> {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("vecdex-task-{i}"))
                .spawn(move || loop {
                    // Hold the queue lock only to take one task.
                    let task = match receiver.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match task {
                        // Tasks catch their own panics; this keeps the thread alive regardless.
                        Ok(task) => {
                            drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)))
                        }
                        Err(_) => return,
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(TaskPool {
            queue: Mutex::new(sender),
        })
    }

    /// Queues `task`; it runs on the next free task thread.
    pub fn spawn(&self, task: impl FnOnce() + Send + 'static) -> Result<()> {
        let queue = self
            .queue
            .lock()
            .map_err(|_| Error::Internal("task queue lock poisoned".into()))?;
        queue
            .send(Box::new(task))
            .map_err(|_| Error::Internal("the task threads have stopped".into()))
    }
}

/// The task pool (see the module docs), started on first use.
pub fn task_pool() -> Result<&'static TaskPool> {
    TASKS
        .get_or_init(|| TaskPool::start(TASK_THREADS))
        .as_ref()
        .map_err(|e| Error::Internal(format!("cannot start the task threads: {e}")))
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

/// Runs `f` on the background pool (blocking the caller until done), for long work that
/// searches should not wait behind; in place when the caller is already a thread of either pool.
pub fn run_background<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let background = background_pool()?;
    if background.current_thread_index().is_some() || pool()?.current_thread_index().is_some() {
        f()
    } else {
        background.install(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::RwLock;

    #[test]
    fn background_work_runs_off_the_compute_pool_at_a_lower_priority() {
        let (name, on_compute) = run_background(|| {
            let name = std::thread::current().name().map(String::from);
            Ok((name, pool()?.current_thread_index().is_some()))
        })
        .expect("background run");
        assert!(name.is_some_and(|n| n.starts_with("vecdex-bg-")));
        assert!(!on_compute);
        #[cfg(target_os = "linux")]
        {
            let nice = run_background(|| {
                // SAFETY: reads the calling thread's own nice value.
                Ok(unsafe {
                    libc::getpriority(
                        libc::PRIO_PROCESS,
                        libc::syscall(libc::SYS_gettid) as libc::id_t,
                    )
                })
            })
            .expect("background run");
            assert!(nice >= 10, "nice {nice}");
        }
        // Already on either pool: in place, so nested parallel work never waits on another pool.
        let nested = run_background(|| {
            run_background(|| Ok(std::thread::current().name().map(String::from)))
        })
        .expect("nested run");
        assert!(nested.is_some_and(|n| n.starts_with("vecdex-bg-")));
        let from_compute = run(|| run_background(|| Ok(pool()?.current_thread_index().is_some())))
            .expect("run from the compute pool");
        assert!(from_compute);
    }

    #[test]
    fn task_pool_runs_every_task_and_survives_panics() {
        let pool = task_pool().expect("task pool");
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for i in 0..50 {
            let (done, tx) = (done.clone(), tx.clone());
            pool.spawn(move || {
                if i % 10 == 0 {
                    let _ = tx.send(());
                    panic!("deliberate");
                }
                done.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(());
            })
            .expect("spawn");
        }
        for _ in 0..50 {
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .expect("task ran");
        }
        assert_eq!(done.load(Ordering::SeqCst), 45);
    }

    /// A task holding a read lock while it waits for the compute pool must not be made to run a
    /// queued writer of the same lock meanwhile (the deadlock Rayon workers are prone to).
    #[test]
    fn lock_holders_waiting_on_compute_never_deadlock() {
        let pool = task_pool().expect("task pool");
        let lock = Arc::new(RwLock::new(0u64));
        let (tx, rx) = mpsc::channel();
        for round in 0..20 {
            for writer in [false, true, false, true] {
                let (lock, tx) = (lock.clone(), tx.clone());
                pool.spawn(move || {
                    if writer {
                        *lock.write().expect("write") += 1;
                    } else {
                        let guard = lock.read().expect("read");
                        let sum: u64 = run(|| {
                            use rayon::prelude::*;
                            Ok((0..100_000u64).into_par_iter().map(|x| x ^ round).sum())
                        })
                        .expect("compute");
                        std::hint::black_box((sum, *guard));
                    }
                    let _ = tx.send(());
                })
                .expect("spawn");
            }
        }
        for _ in 0..80 {
            rx.recv_timeout(std::time::Duration::from_secs(20))
                .expect("no deadlock");
        }
        assert_eq!(*lock.read().expect("read"), 40);
    }
}
