//! vecdex's own thread pools, so heavy work never runs on (or competes for) the host's threads.
//!
//! - The **compute pool** (Rayon, `VECDEX_THREADS` threads if set, else one per core, at most
//!   [`MAX_THREADS`]) runs the parallel parts of searches. Its threads never take an index lock:
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
//! - The **file task pool** ([`FILE_TASK_THREADS`] plain threads) runs async operations that
//!   open, read or write files (loads, views, saves, file inspection) up to the point where
//!   their file is open and checked. A file operation can block for as long as the operating
//!   system says (a stalled network file system, a slow disk): on their own threads, at most
//!   [`FILE_TASK_THREADS`] such waits hold up other file operations, never a search or a write
//!   of any index.
//!
//! `VECDEX_THREADS` must be a whole number from 1 to [`MAX_THREADS`] (unset or empty: one
//! thread per core, at most [`MAX_THREADS`]). Any other value makes every async call, and
//! every call with parallel work, fail with [`Error::InvalidArgument`] naming the variable,
//! rather than start thousands of threads or quietly ignore it; no pool is started. (A blocking
//! call small enough to run on the caller's thread alone still answers.)
//!
//! [`configure_threads`] sets the size from code instead (JS `configure({ threads })`), and
//! takes precedence over `VECDEX_THREADS`. The size is read once, when the first pool starts,
//! and fixed from then on: configuring it again afterwards is an error unless it asks for the
//! size already in force.

use std::sync::{mpsc, Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: OnceLock<Result<ThreadPool>> = OnceLock::new();
static BACKGROUND: OnceLock<Result<ThreadPool>> = OnceLock::new();
static TASKS: OnceLock<Result<TaskPool>> = OnceLock::new();
static FILE_TASKS: OnceLock<Result<TaskPool>> = OnceLock::new();

/// Async operations that may run (or wait for a lock) at once; more queue in order. They mostly
/// wait, so this is about concurrency, not cores.
pub const TASK_THREADS: usize = 8;

/// Async file operations that may run (or wait on the operating system) at once; more queue.
pub const FILE_TASK_THREADS: usize = 4;

/// The most threads the compute pool (and the background pool, which has as many) may have:
/// more than any machine's cores today, and few enough that a mistyped setting cannot stall
/// the machine by starting tens of thousands of threads. `VECDEX_THREADS` (and anything that
/// sets it, such as the CLI's `--threads`) above it is an [`Error::InvalidArgument`].
pub const MAX_THREADS: usize = 1024;

/// Checks a requested thread count: a whole number from 1 to [`MAX_THREADS`]. `what` names
/// the setting in the message.
pub fn check_thread_count(count: usize, what: &str) -> Result<usize> {
    if (1..=MAX_THREADS).contains(&count) {
        Ok(count)
    } else {
        Err(Error::invalid(format!(
            "{what} must be from 1 to {MAX_THREADS} threads, got {count}"
        )))
    }
}

/// The pools' size: set by [`configure_threads`] until the first pool reads it, then fixed.
struct ThreadSetting {
    /// Asked for by [`configure_threads`] (wins over `VECDEX_THREADS`).
    requested: Option<usize>,
    /// What the first pool was built from (an invalid `VECDEX_THREADS` is fixed as its error).
    fixed: Option<Result<usize>>,
}

static SETTING: Mutex<ThreadSetting> = Mutex::new(ThreadSetting {
    requested: None,
    fixed: None,
});

/// Sizes the compute and background pools at `threads` threads each (1 to [`MAX_THREADS`]),
/// as `VECDEX_THREADS` does and in its place. It must run before the first pool starts (the
/// first async call or parallel search); afterwards a different size is
/// [`Error::InvalidArgument`] (pools cannot be resized), and the size in force is accepted.
pub fn configure_threads(threads: usize) -> Result<()> {
    check_thread_count(threads, "threads")?;
    let mut setting = SETTING
        .lock()
        .map_err(|_| Error::Internal("thread setting lock poisoned".into()))?;
    match &setting.fixed {
        None => {
            setting.requested = Some(threads);
            Ok(())
        }
        Some(Ok(current)) if *current == threads => Ok(()),
        Some(Ok(current)) => Err(Error::invalid(format!(
            "threads: vecdex's thread pools already run with {current} threads and cannot be \
             resized to {threads}; configure({{ threads }}) must come before the first search or \
             async call"
        ))),
        Some(Err(error)) => Err(Error::invalid(format!(
            "threads: vecdex's thread pools could not start ({error}) and cannot be configured \
             any more"
        ))),
    }
}

/// The compute pool's size (see the module docs): from [`configure_threads`] if called, else
/// `VECDEX_THREADS`; fixed by the first call.
pub fn configured_threads() -> Result<usize> {
    let mut setting = SETTING
        .lock()
        .map_err(|_| Error::Internal("thread setting lock poisoned".into()))?;
    let requested = setting.requested;
    setting
        .fixed
        .get_or_insert_with(|| match requested {
            Some(threads) => Ok(threads),
            None => threads_from(std::env::var_os("VECDEX_THREADS").as_deref()),
        })
        .clone()
}

/// The pool size a `VECDEX_THREADS` value asks for (`None`: unset).
fn threads_from(value: Option<&std::ffi::OsStr>) -> Result<usize> {
    let cores = || {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    };
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(cores());
    };
    let text = value.to_string_lossy();
    let invalid = || {
        Error::invalid(format!(
            "VECDEX_THREADS must be a whole number from 1 to {MAX_THREADS}, got '{text}'"
        ))
    };
    let count = text.trim().parse::<u64>().map_err(|_| invalid())?;
    match usize::try_from(count) {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(invalid()),
    }
}

fn rayon_pool(name: &'static str, build: ThreadPoolBuilder) -> Result<ThreadPool> {
    build
        .num_threads(configured_threads()?)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the {name} threads: {e}")))
}

/// The pool, built on first use.
pub fn pool() -> Result<&'static ThreadPool> {
    POOL.get_or_init(|| rayon_pool("vecdex", ThreadPoolBuilder::new()))
        .as_ref()
        .map_err(Clone::clone)
}

/// The background pool (see the module docs), built on first use.
fn background_pool() -> Result<&'static ThreadPool> {
    BACKGROUND
        .get_or_init(|| {
            rayon_pool(
                "vecdex-bg",
                ThreadPoolBuilder::new().start_handler(|_| lower_this_threads_priority()),
            )
        })
        .as_ref()
        .map_err(Clone::clone)
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
    fn start(name: &str, threads: usize) -> Result<TaskPool> {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
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
                .map_err(|e| Error::Internal(format!("cannot start the {name} threads: {e}")))?;
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
        .get_or_init(|| {
            // An invalid VECDEX_THREADS fails every async call, not only those with parallel work.
            configured_threads()?;
            TaskPool::start("vecdex-task", TASK_THREADS)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The file task pool (see the module docs), started on first use.
pub fn file_task_pool() -> Result<&'static TaskPool> {
    FILE_TASKS
        .get_or_init(|| {
            configured_threads()?;
            TaskPool::start("vecdex-file", FILE_TASK_THREADS)
        })
        .as_ref()
        .map_err(Clone::clone)
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
    fn thread_counts_beyond_the_limit_or_not_numbers_are_typed_errors() {
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        let from = |v: &str| threads_from(Some(std::ffi::OsStr::new(v)));
        assert_eq!(threads_from(None), Ok(cores));
        assert_eq!(from(""), Ok(cores));
        for (value, count) in [("1", 1), ("2", 2), (" 16 ", 16), ("1024", MAX_THREADS)] {
            assert_eq!(from(value), Ok(count), "{value}");
        }
        for value in [
            "0",
            "-1",
            "1025",
            "100000",
            "18446744073709551616",
            "abc",
            "4 threads",
            "1.5",
        ] {
            assert!(
                matches!(from(value), Err(Error::InvalidArgument(ref m)) if m.contains("VECDEX_THREADS")),
                "{value}: {:?}",
                from(value)
            );
        }
        for n in [0, MAX_THREADS + 1, 100_000, usize::MAX] {
            assert!(matches!(
                check_thread_count(n, "threads"),
                Err(Error::InvalidArgument(_))
            ));
        }
        for n in [1, 8, MAX_THREADS] {
            assert_eq!(check_thread_count(n, "threads"), Ok(n));
        }
    }

    #[test]
    fn configuring_threads_after_the_pools_start_accepts_only_their_size() {
        let running = pool().expect("pool").current_num_threads();
        assert_eq!(configure_threads(running), Ok(()));
        let other = if running == 1 { 2 } else { running - 1 };
        assert!(matches!(
            configure_threads(other),
            Err(Error::InvalidArgument(ref m)) if m.contains("cannot be resized")
        ));
        for bad in [0, MAX_THREADS + 1] {
            assert!(matches!(
                configure_threads(bad),
                Err(Error::InvalidArgument(ref m)) if m.contains("threads must be from 1")
            ));
        }
        assert_eq!(thread_count(), running);
    }

    /// File operations that block (as an open of a FIFO did, or a stalled network file system
    /// does) take file task threads only: index tasks still run, however many are blocked.
    #[test]
    fn blocked_file_tasks_never_hold_up_index_tasks() {
        let files = file_task_pool().expect("file task pool");
        let tasks = task_pool().expect("task pool");
        for blocked in [1, FILE_TASK_THREADS, FILE_TASK_THREADS + TASK_THREADS + 3] {
            let (release, wait) = mpsc::channel::<()>();
            let wait = Arc::new(Mutex::new(wait));
            let (started, seen) = mpsc::channel();
            for _ in 0..blocked {
                let (wait, started) = (wait.clone(), started.clone());
                files
                    .spawn(move || {
                        let _ = started.send(());
                        let _ = wait.lock().map(|w| w.recv());
                    })
                    .expect("spawn");
            }
            seen.recv_timeout(std::time::Duration::from_secs(10))
                .expect("a file task started");
            let (tx, rx) = mpsc::channel();
            for i in 0..3 * TASK_THREADS {
                let tx = tx.clone();
                tasks
                    .spawn(move || {
                        let _ = run(|| Ok(tx.send(i)));
                    })
                    .expect("spawn");
            }
            for _ in 0..3 * TASK_THREADS {
                rx.recv_timeout(std::time::Duration::from_secs(10))
                    .expect("index tasks run while file tasks are blocked");
            }
            drop(release);
        }
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
