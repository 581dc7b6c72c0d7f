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
