//! The background write flusher: buffered writes of branch files become
//! staged chunks on this thread, not on the FUSE thread whose `write` crossed
//! the flush threshold, so a sequential writer keeps copying into the buffer
//! while the previous 64 MiB is cut, hashed, compressed, packed and fsynced.
//!
//! Back-pressure: the queue holds one segment beside the one being stored, so
//! a writer faster than the disk waits in `write` (at most two segments, 128
//! MiB, are in flight per mount) instead of growing memory without bound.
//!
//! Durability is unchanged: fsync and close wait for the file's segments and
//! then stage what is left, so they still return only once everything written
//! before them is durable. A segment nobody waits for yet is only as durable
//! as an unsynced write to a plain file.

use super::write::WriteState;
use crate::archive::config::Config;
use crate::archive::objects::Hash;
use crate::archive::written::prepare_written;
use crate::archive::Archive;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Segments queued beside the one being stored.
const QUEUE_DEPTH: usize = 1;

/// A counter bumped each time a file's in-flight segment is settled (staged,
/// taken back into the buffer, or dropped), so `fsync` can wait for it
/// without holding the file's lock the flusher needs.
#[derive(Default)]
pub struct Settled {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Settled {
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn bump(&self) {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.changed.notify_all();
    }

    /// Wait until the generation moves past `seen`.
    pub fn wait_past(&self, seen: u64) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        while *g == seen {
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The mount's one flusher thread and its bounded queue of files that have a
/// segment to store.
pub struct Flusher {
    tx: Option<SyncSender<Arc<Mutex<WriteState>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Start the thread; it stores through `writer`, the mount's one writer
    /// connection, and cuts chunks as `config` says.
    pub fn start(writer: Arc<Mutex<Archive>>, config: Config) -> std::io::Result<Flusher> {
        let (tx, rx) = sync_channel::<Arc<Mutex<WriteState>>>(QUEUE_DEPTH);
        let thread = std::thread::Builder::new().name("reelfs-flusher".into()).spawn(move || {
            for ws in rx {
                flush_front(&writer, &config, &ws);
            }
        })?;
        Ok(Flusher { tx: Some(tx), thread: Some(thread) })
    }

    /// Queue the file's oldest in-flight segment; blocks while the queue is
    /// full. False: the thread is gone (the caller stores the bytes itself).
    pub fn submit(&self, ws: Arc<Mutex<WriteState>>) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(ws).is_ok())
    }
}

impl Drop for Flusher {
    /// Store what is queued, then stop.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Store and stage the file's oldest in-flight segment. The chunks are made
/// and packed with only the writer connection held, so `write`, `read` and
/// `getattr` of the file go on meanwhile; the file's lock is taken (before the
/// writer, the order every other path uses) only to stage the extent list.
fn flush_front(writer: &Mutex<Archive>, config: &Config, ws: &Mutex<WriteState>) {
    let Some(seg) = ws.lock().ok().and_then(|w| w.inflight.front().cloned()) else { return };
    let writes: Vec<(u64, &[u8])> = seg.iter().map(|(o, d)| (*o, d.as_slice())).collect();
    let stored = prepare_written(config, &writes).and_then(|p| {
        let a = writer.lock().map_err(|_| crate::archive::ArchiveError::Inconsistent("archive lock poisoned".into()))?;
        a.store_written(&p)?;
        Ok(p.pieces)
    });
    let Ok(mut w) = ws.lock() else { return };
    // A synchronous persist (truncate, rename, ...) took the segment back
    // into the buffer and staged it itself.
    if !w.inflight.front().is_some_and(|f| Arc::ptr_eq(f, &seg)) {
        return;
    }
    if w.orphaned {
        w.inflight.pop_front();
        w.settled.bump();
        return;
    }
    let seg_end = seg.iter().next_back().map(|(o, d)| o + d.len() as u64).unwrap_or(0);
    // Stage no further than what is stored: after a crash the file ends where
    // its stored bytes end, not in zeros standing for bytes still buffered.
    let size = w.size.min(w.base.size.max(seg_end));
    let staged = stored.and_then(|pieces| {
        let a = writer.lock().map_err(|_| crate::archive::ArchiveError::Inconsistent("archive lock poisoned".into()))?;
        let id = a.stage_pieces(&w.branch, &w.path, &w.base_extents, &pieces, size, w.mode, w.mtime_ns, w.owner, &w.extra)?;
        let ext = a.staging().extents(id)?;
        let r = a.extents_reader(Hash([0; 32]), size, &ext)?;
        Ok((ext, r))
    });
    match staged {
        Ok((ext, r)) => {
            w.base_extents = ext;
            w.base = Arc::new(r);
            w.inflight.pop_front();
            w.links_due |= w.extra.link_group.is_some();
            w.settled.bump();
        }
        Err(e) => {
            // Keep every byte: back into the buffer, where the next fsync or
            // close stores it again and reports the error if it recurs.
            log::error!("{}/{}: cannot store written data in the background (kept, retried at fsync/close): {e:?}", w.branch, w.path);
            w.absorb_inflight();
        }
    }
}
