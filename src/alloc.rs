//! The global allocator: the system allocator, except that huge blocks are reserved lazily.
//!
//! `kafka-protocol` sizes a decoded array with `Vec::with_capacity(n)` straight from the
//! wire, before checking that the frame holds `n` elements. A 20-byte request claiming four
//! billion topics would ask for hundreds of GiB and abort the process. Blocks of 1 GiB or
//! more are therefore mapped with `MAP_NORESERVE`: address space only, no memory committed
//! until touched. Decoding such a request fails on the first missing element and frees the
//! mapping, having used nothing. Real requests are capped by `socket.request.max.bytes`, so
//! nothing legitimate comes near this size.

use std::alloc::{GlobalAlloc, Layout, System};

pub struct FjordAlloc;

const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no fixed address has no preconditions.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

unsafe impl GlobalAlloc for FjordAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Fresh anonymous mappings are zero-filled.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            unsafe { libc::munmap(ptr as *mut libc::c_void, layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Keeps the buffers of produce requests and fetch responses (up to tens of MiB each) in
/// the malloc heap between requests. By default glibc serves blocks above a sliding
/// threshold with their own mmap and returns freed heap tops to the kernel, so every large
/// request or response paid for fresh pages: page faults, zeroing by the kernel and munmap
/// were ~20% of the broker's CPU while serving consumers. Freed memory up to the trim
/// threshold is now kept for reuse; RSS stays bounded by what concurrent requests need.
///
/// glibc also gives threads up to 8 arenas per core, each keeping its own freed memory.
/// Under a churn of producer and transactional ids (`scripts/soak.sh --ids`) the live heap
/// stayed at ~40 MiB while RSS climbed from 119 to 179 MiB in 4 minutes and kept rising:
/// fragmentation spread over the arenas, not state the broker keeps. One arena per core
/// (at least 2) levelled RSS at ~62 MiB. `MALLOC_ARENA_MAX` in the environment still wins.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, arena_max());
        }
    }
}

/// One malloc arena per core the process may use, at least 2.
pub fn arena_max() -> i32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.clamp(2, 64) as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn arenas_follow_the_cores() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
        assert_eq!(super::arena_max(), cores.clamp(2, 64));
    }

    #[test]
    fn a_huge_reservation_commits_nothing() {
        // 256 GiB of capacity: only address space.
        let v: Vec<u64> = Vec::with_capacity(32 << 30);
        assert!(v.capacity() >= 32 << 30);
        drop(v);
        let mut small = Vec::with_capacity(10);
        small.extend([1u8; 100]);
        assert_eq!(small.len(), 100);
    }
}
