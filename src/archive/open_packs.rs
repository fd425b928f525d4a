//! The packs a chunk store holds open, bounded by the process's descriptor
//! limit.
//!
//! A pack stays open after its first read, so the next read of it skips the
//! path lookup (a cold `open` took 0.7-1.1 ms here). Kept without a bound, a
//! mount or server that reads across a large archive (200,000 packs of
//! 512 MiB at 100 TB) would run out of descriptors, and every `open` after
//! that (packs, catalog connections, client sockets) would fail with EMFILE.
//! So at most half the soft `RLIMIT_NOFILE` stays open; past it, the pack
//! used least recently is closed (a reader still holding it keeps its
//! descriptor until it is done).

use super::read_at::ReadAt;
use std::collections::HashMap;
use std::sync::Arc;

pub struct OpenPacks {
    packs: HashMap<i64, (Arc<dyn ReadAt>, u64)>,
    /// Bumped on every use: a pack's number is when it was used last.
    clock: u64,
    cap: usize,
}

impl OpenPacks {
    pub fn new(cap: usize) -> OpenPacks {
        OpenPacks { packs: HashMap::new(), clock: 0, cap: cap.max(1) }
    }

    /// Bounded by this process's descriptor limit (`descriptor_limit`).
    pub fn for_this_process() -> OpenPacks {
        OpenPacks::new((descriptor_limit() / 2).max(MIN_OPEN))
    }

    pub fn get(&mut self, pack: i64) -> Option<Arc<dyn ReadAt>> {
        self.clock += 1;
        let now = self.clock;
        self.packs.get_mut(&pack).map(|(f, used)| {
            *used = now;
            f.clone()
        })
    }

    pub fn insert(&mut self, pack: i64, file: Arc<dyn ReadAt>) {
        if self.packs.len() >= self.cap && !self.packs.contains_key(&pack) {
            if let Some(oldest) = self.packs.iter().min_by_key(|(_, (_, used))| *used).map(|(id, _)| *id) {
                self.packs.remove(&oldest);
            }
        }
        self.clock += 1;
        self.packs.insert(pack, (file, self.clock));
    }

    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.packs.keys().copied()
    }

    pub fn close(&mut self, gone: &[i64]) {
        self.packs.retain(|id, _| !gone.contains(id));
    }

    pub fn len(&self) -> usize {
        self.packs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

/// Fewest packs kept open, whatever the limit says.
const MIN_OPEN: usize = 16;

/// The soft limit on this process's open descriptors (1,024 if unknown).
pub fn descriptor_limit() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(b: u8) -> Arc<dyn ReadAt> {
        Arc::new(vec![b; 4])
    }

    #[test]
    fn past_the_cap_the_pack_used_least_recently_is_closed() {
        let mut open = OpenPacks::new(3);
        for id in 1..=3 {
            open.insert(id, file(id as u8));
        }
        assert!(open.get(1).is_some(), "pack 1 used again: 2 is now the oldest");
        open.insert(4, file(4));
        assert_eq!(open.len(), 3);
        assert!(open.get(2).is_none(), "the least recently used pack was closed");
        for id in [1, 3, 4] {
            assert!(open.get(id).is_some(), "pack {id}");
        }
        // Opening one that is open already closes nothing.
        open.insert(4, file(9));
        assert_eq!(open.len(), 3);
        open.close(&[1, 3]);
        assert_eq!(open.ids().collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn the_bound_is_half_the_descriptor_limit() {
        let open = OpenPacks::for_this_process();
        assert_eq!(open.cap(), (descriptor_limit() / 2).max(MIN_OPEN));
        assert!(open.is_empty());
    }
}
