//! Readers of a branch file opened while no handle wrote it. Such a reader
//! reads the archived content through the shared read-ahead, which is a
//! snapshot; once a writer opens the same inode, the reader must see what that
//! writer writes (POSIX: one inode, one content), and after the writer closes,
//! what it left. A writer's open hands its write state to every reader
//! registered here; the reader keeps it (the state's base is the persisted
//! content after the last close) until another writer's state replaces it.
//!
//! Without this, a reader opened first read stale bytes whenever the kernel
//! asked the daemon rather than its page cache: an `O_DIRECT` reader, pages
//! evicted under memory pressure, or a writer writing around the page cache.

use super::write::WriteState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What one open reader of an inode follows: the inode's latest write state,
/// once a writer has opened it.
#[derive(Default)]
pub struct FollowCell {
    /// Set once `ws` holds a state: until then a read costs one atomic load.
    set: AtomicBool,
    ws: Mutex<Option<Arc<Mutex<WriteState>>>>,
}

impl FollowCell {
    /// The write state to read through, or None: the snapshot is current.
    pub fn current(&self) -> Option<Arc<Mutex<WriteState>>> {
        if !self.set.load(Ordering::Acquire) {
            return None;
        }
        self.ws.lock().ok()?.clone()
    }

    fn follow(&self, ws: &Arc<Mutex<WriteState>>) {
        if let Ok(mut slot) = self.ws.lock() {
            *slot = Some(ws.clone());
            self.set.store(true, Ordering::Release);
        }
    }
}

/// The open readers' cells, by inode: one cell for all readers of an inode,
/// kept while any of them is open.
#[derive(Default)]
pub struct Followers {
    by_ino: Mutex<HashMap<u64, (usize, Arc<FollowCell>)>>,
}

impl Followers {
    /// A reader of `ino` opens. Called with the write-state map locked and no
    /// state for `ino` in it, so no writer's open can fall between the two.
    pub fn join(&self, ino: u64) -> Option<Arc<FollowCell>> {
        let mut m = self.by_ino.lock().ok()?;
        let e = m.entry(ino).or_insert_with(|| (0, Arc::new(FollowCell::default())));
        e.0 += 1;
        Some(e.1.clone())
    }

    /// A reader of `ino` closes.
    pub fn leave(&self, ino: u64) {
        if let Ok(mut m) = self.by_ino.lock() {
            if let Some(e) = m.get_mut(&ino) {
                e.0 = e.0.saturating_sub(1);
                if e.0 == 0 {
                    m.remove(&ino);
                }
            }
        }
    }

    /// A writer's state for `ino` was made: the inode's readers read through it
    /// from now on. Called with the write-state map locked.
    pub fn writer_opened(&self, ino: u64, ws: &Arc<Mutex<WriteState>>) {
        if let Some(cell) = self.by_ino.lock().ok().and_then(|m| m.get(&ino).map(|e| e.1.clone())) {
            cell.follow(ws);
        }
    }

    #[cfg(test)]
    pub fn inodes(&self) -> usize {
        self.by_ino.lock().map(|m| m.len()).unwrap_or(0)
    }
}
