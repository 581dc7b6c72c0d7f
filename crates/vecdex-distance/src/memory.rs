//! Memory hints for the large, randomly accessed buffers of graph search.

/// Asks the kernel to back `buffer`'s capacity with transparent huge pages (Linux; a no-op
/// elsewhere or when the kernel refuses). A graph walk touches vectors and link lists at random
/// across tens of megabytes: with 4 KiB pages nearly every touch also misses the TLB, with
/// 2 MiB pages almost none does. Call it after reserving and before first writing the memory,
/// so the pages are huge from their first fault.
pub fn advise_huge_pages<T>(buffer: &Vec<T>) {
    advise_huge_pages_range(
        buffer.as_ptr().cast(),
        buffer.capacity() * std::mem::size_of::<T>(),
    );
}

/// [`advise_huge_pages`] for `bytes` bytes of one allocation starting at `start` (which may
/// not be initialised yet: the hint never reads or writes it).
pub fn advise_huge_pages_range(start: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if bytes < HUGE {
            return;
        }
        let start = start as usize;
        // Whole 2 MiB-aligned runs inside the allocation: only those can become huge pages.
        let first = start.next_multiple_of(HUGE);
        let end = (start + bytes) / HUGE * HUGE;
        if end > first {
            // SAFETY: the range lies inside the caller's allocation and is page-aligned;
            // MADV_HUGEPAGE changes how pages are backed, never their contents, so no Rust
            // reference can observe it.
            let _ = unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE)
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}
