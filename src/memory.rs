//! The allocator's settings for a long-running server. glibc gives threads that allocate at
//! the same moment arenas of their own (up to eight per core) and keeps what each frees for
//! that arena, and it raises its mmap threshold after large frees so later large buffers
//! (a page of ledger rows, a burst's request bodies) stay in the heap. After a burst a server
//! then holds tens of MiB it no longer uses. Two arenas and fixed thresholds give it back.

/// Applies the settings; a no-op where the C library is not glibc.
pub fn tune_for_server() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; it is called before the server's
    // threads start and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Fixed values also turn off glibc's dynamic raising of both thresholds.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
}

/// How often memory freed by a burst is handed back to the system.
pub const GIVE_BACK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands freed heap pages back to the system: `malloc_trim` releases free pages anywhere in
/// the heap, not only at its top, which fixed thresholds alone cannot reach after a burst
/// left live allocations above them. A no-op where the C library is not glibc.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
