//! Buffers for the long runs a sequential writer builds, recycled.
//!
//! A file written through the mount collects its bytes in runs of up to 64 MiB
//! (`write::FLUSH_BYTES`) that the flusher stores and then drops. Each new run
//! was a fresh allocation that grew by doubling: its memory came from new
//! mappings, so the kernel faulted in and zeroed every page the FUSE threads
//! then copied into (`clear_page_erms`, page faults and memcg charging were
//! ~30% of the mount's CPU during a 4 GiB `cp`), and every doubling copied the
//! run so far. Now a run that grows past `POOLED_FROM` moves to a buffer
//! sized for a whole segment, taken from here when the flusher has given one
//! back (its pages still resident) and made at that size otherwise.
//!
//! One pool per process, at most `KEPT` buffers idle; emptied when the mount
//! has no file open for writing, so an idle mount holds none.

use std::sync::Mutex;

/// A run reaching this size moves to a whole-segment buffer: smaller runs
/// (a header rewrite, a random writer's pieces) keep small allocations.
pub const POOLED_FROM: usize = 1 << 20;

/// Idle buffers kept: one being filled, one being prepared and one being
/// stored is a sequential writer's steady state, and each comes back here
/// as the next is needed, so two idle ones are never short.
const KEPT: usize = 2;

/// A bounded pool of idle whole-segment buffers.
pub struct RunBuffers {
    idle: Mutex<Vec<Vec<u8>>>,
}

/// The process's pool, shared by every file written through the mount.
static SHARED: RunBuffers = RunBuffers::new();

impl Default for RunBuffers {
    fn default() -> RunBuffers {
        RunBuffers::new()
    }
}

impl RunBuffers {
    pub const fn new() -> RunBuffers {
        RunBuffers { idle: Mutex::new(Vec::new()) }
    }

    /// An empty buffer of at least `capacity` bytes: an idle one when one is
    /// that large, else a new one of `capacity`.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let idle = self.idle.lock().ok().and_then(|mut idle| {
            let i = idle.iter().position(|v| v.capacity() >= capacity)?;
            Some(idle.swap_remove(i))
        });
        match idle {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// A run the flusher is done with: kept for the next run if it is a
    /// whole-segment buffer and fewer than `KEPT` are idle; freed otherwise.
    pub fn give(&self, v: Vec<u8>, segment_capacity: usize) {
        if v.capacity() < segment_capacity {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < KEPT {
                idle.push(v);
            }
        }
    }

    /// Free every idle buffer.
    pub fn trim(&self) {
        let freed = self.idle.lock().map(|mut idle| std::mem::take(&mut *idle)).unwrap_or_default();
        drop(freed);
    }

    /// How many buffers are idle.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }
}

/// `RunBuffers::take` of the process's pool.
pub fn take(capacity: usize) -> Vec<u8> {
    SHARED.take(capacity)
}

/// `RunBuffers::give` to the process's pool.
pub fn give(v: Vec<u8>, segment_capacity: usize) {
    SHARED.give(v, segment_capacity)
}

/// Free the process's idle buffers (the mount's last write handle was closed).
pub fn trim() {
    SHARED.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_segment_buffer_is_taken_again_with_its_memory_and_trim_frees_it() {
        let pool = RunBuffers::new();
        let mut v = pool.take(1 << 20);
        assert!(v.capacity() >= 1 << 20);
        v.extend_from_slice(&[7u8; 1000]);
        let at = v.as_ptr();
        pool.give(v, 1 << 20);
        assert_eq!(pool.idle(), 1);
        let again = pool.take(1 << 20);
        assert_eq!(again.as_ptr(), at, "the same allocation came back");
        assert!(again.is_empty(), "it comes back empty");
        assert_eq!(pool.idle(), 0);
        // Smaller than a segment (a short run): freed, not kept.
        pool.give(vec![0u8; 4096], 1 << 20);
        assert_eq!(pool.idle(), 0);
        // At most KEPT idle.
        for _ in 0..KEPT + 2 {
            pool.give(Vec::with_capacity(1 << 20), 1 << 20);
        }
        assert_eq!(pool.idle(), KEPT);
        // A buffer too small for what is asked is not handed out.
        assert!(pool.take(2 << 20).capacity() >= 2 << 20);
        assert_eq!(pool.idle(), KEPT);
        pool.trim();
        assert_eq!(pool.idle(), 0);
    }
}
