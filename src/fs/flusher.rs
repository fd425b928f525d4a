//! The background write flusher: buffered writes of branch files become
//! staged chunks on this thread, not on the FUSE thread whose `write` crossed
//! the flush threshold, so a sequential writer keeps copying into the buffer
//! while the previous 64 MiB is cut, hashed, compressed, packed and fsynced.
//!
//! Two stages on two threads: one cuts, hashes and compresses a segment (CPU)
//! while the other appends the previous one to a pack and fsyncs it (page-
//! cache copy and disk). Run one after the other on one thread, a 64 MiB
//! segment took ~0.5 s on this 2-core machine and the writer waited for both
//! halves (perf + strace of `cp` into the mount: the thread was idle in one
//! half while the other ran).
//!
//! Back-pressure: the channels hand segments over without a queue, so at
//! most three segments (192 MiB) are in flight per mount: one being
//! prepared, one being stored and the one whose `write` waits to hand it
//! over, as with the one-thread flusher and its queue of one. A writer faster
//! than the disk waits in `write` instead of growing memory without bound.
//!
//! Durability is unchanged: fsync and close wait for the file's segments and
//! then stage what is left, so they still return only once everything written
//! before them is durable. A segment nobody waits for yet is only as durable
//! as an unsynced write to a plain file.

use super::write::{Segment, WriteState};
use crate::archive::config::Config;
use crate::archive::objects::Hash;
use crate::archive::written::{prepare_written, PreparedWrite};
use crate::archive::Archive;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A file and the segment of it to flush.
type Job = (Arc<Mutex<WriteState>>, Segment);

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

/// The mount's flusher: a preparing thread and a storing thread, handing
/// segments on in the order they were submitted.
pub struct Flusher {
    tx: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Flusher {
    /// Start the threads; they store through `writer`, the mount's one writer
    /// connection, and cut chunks as `config` says.
    pub fn start(writer: Arc<Mutex<Archive>>, config: Config) -> std::io::Result<Flusher> {
        let (tx, rx) = sync_channel::<Job>(0);
        let (ptx, prx) = sync_channel::<(Job, crate::archive::Result<PreparedWrite>)>(0);
        let store = std::thread::Builder::new().name("reelfs-flusher".into()).spawn(move || {
            for ((ws, seg), prepared) in prx {
                store_segment(&writer, &ws, &seg, prepared);
                recycle(seg);
            }
        })?;
        let prepare = std::thread::Builder::new().name("reelfs-prepare".into()).spawn(move || {
            for (ws, seg) in rx {
                let writes = runs(&seg);
                let prepared = prepare_written(&config, &writes);
                drop(writes);
                if ptx.send(((ws, seg), prepared)).is_err() {
                    break;
                }
            }
        });
        let prepare = match prepare {
            Ok(t) => t,
            Err(e) => {
                // The storing thread ends once its channel is gone.
                drop(tx);
                let _ = store.join();
                return Err(e);
            }
        };
        Ok(Flusher { tx: Some(tx), threads: vec![prepare, store] })
    }

    /// Hand over `seg`, the file's newest in-flight segment; blocks until the
    /// preparing thread takes it. False: the threads are gone (the caller
    /// stores the bytes itself).
    pub fn submit(&self, ws: Arc<Mutex<WriteState>>, seg: Segment) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send((ws, seg)).is_ok())
    }
}

impl Drop for Flusher {
    /// Store what was handed over, then stop (preparer first: it closes the
    /// storer's channel when it ends).
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Give a stored segment's whole-segment buffers back for the next runs
/// (`write::SEGMENT_BUFFERS`), unless a synchronous persist still holds them.
fn recycle(seg: Segment) {
    use super::write::{SEGMENT_BUFFERS, SEGMENT_CAPACITY};
    for (_, v) in Arc::into_inner(seg).into_iter().flatten() {
        if v.capacity() >= SEGMENT_CAPACITY {
            SEGMENT_BUFFERS.give(v);
        }
    }
}

/// A segment's runs as (offset, bytes).
fn runs(seg: &Segment) -> Vec<(u64, &[u8])> {
    seg.iter().map(|(o, d)| (*o, d.as_slice())).collect()
}

/// Store and stage a prepared segment, which is the file's oldest in-flight
/// one unless a synchronous persist took it back meanwhile (segments of a
/// file reach this thread in the order they were handed over, and each is
/// settled before the next). The chunks are packed with only the writer
/// connection held, so `write`, `read` and `getattr` of the file go on
/// meanwhile; the file's lock is taken (before the writer, the order every
/// other path uses) only to stage the extent list.
fn store_segment(writer: &Mutex<Archive>, ws: &Mutex<WriteState>, seg: &Segment, prepared: crate::archive::Result<PreparedWrite>) {
    let writes = runs(seg);
    let stored = prepared.and_then(|p| {
        let a = writer.lock().map_err(|_| crate::archive::ArchiveError::Inconsistent("archive lock poisoned".into()))?;
        a.store_written(&p, &writes)?;
        Ok(p.pieces)
    });
    let Ok(mut w) = ws.lock() else { return };
    // A synchronous persist (truncate, rename, ...) took the segment back
    // into the buffer and staged it itself.
    if !w.inflight.front().is_some_and(|f| Arc::ptr_eq(f, seg)) {
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
