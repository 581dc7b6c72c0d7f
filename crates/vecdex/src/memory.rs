//! Returning freed heap memory to the operating system.
//!
//! glibc's malloc keeps freed memory in its arenas (one per thread that allocated, up to 8 per
//! core) rather than giving it back, and after a large buffer is freed it raises its mmap
//! threshold, so the next buffers of that size come from the arenas too. A save encodes the
//! whole file in buffers on a task thread; in a long-running server each save would then leave
//! its size resident for good. `malloc_trim(0)` releases the free pages of every arena
//! (madvise), which keeps the resident size at what the process holds.

/// Gives freed heap pages back to the operating system where the allocator keeps them (glibc);
/// a no-op elsewhere (musl, macOS and Windows return large blocks on free).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists; it takes no
    // pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Least time between two trims by [`release_freed_memory_now_and_then`].
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// [`release_freed_memory`], at most once per second across the process: for writes, which
/// allocate on one thread and free on another (so each thread's arena keeps free memory the
/// others cannot reuse) and come too often to trim after each.
pub fn release_freed_memory_now_and_then() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    static LAST_TRIM_MS: AtomicU64 = AtomicU64::new(0);
    let now = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + TRIM_INTERVAL.as_millis() as u64;
    let last = LAST_TRIM_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= TRIM_INTERVAL.as_millis() as u64
        && LAST_TRIM_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        release_freed_memory();
    }
}
