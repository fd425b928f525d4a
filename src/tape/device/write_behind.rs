//! The emulated cartridge's record files, written behind the caller.
//!
//! Each record is its own file (`FileCartridge`), so writing one is a
//! create, a write and a close, one after another. Done in the caller's
//! thread they were most of `tape write --device`'s writer thread (strace,
//! 2 GiB: 1.98 s in `openat`, 3.68 s in `write`, 0.8 s in `rename` and
//! `close` out of about 8 s), one record on the disk at a time, with the
//! hashing of the next block waiting behind them. Here a few threads write
//! the records while the caller goes on, several at once, as a drive's write
//! buffer lets the host go on.
//!
//! Like a drive's buffer, an error is deferred: it is reported by the next
//! call that waits for the queue (`settle`), which every operation but an
//! append does, and which the LTFS writer does before it lists a file in an
//! index, so no file is indexed with a record that failed.

use super::super::blocks::{Block, Pool};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::path::PathBuf;
use std::thread::JoinHandle;

/// Threads writing records: enough that the disk sees several writes at
/// once while one thread waits in a create.
const WRITERS: usize = 3;
/// Records queued beyond those being written: the copy of the caller's
/// bytes this bounds is all the memory the queue takes (4 MiB each at most).
const QUEUED: usize = 8;

struct Job {
    block: u64,
    path: PathBuf,
    data: Block,
}

/// A record that failed: its block, its file and why.
pub struct Failed {
    pub block: u64,
    pub path: PathBuf,
    pub error: std::io::Error,
}

pub struct WriteBehind {
    jobs: Option<Sender<Job>>,
    done: Receiver<(u64, PathBuf, std::io::Result<()>)>,
    pool: Pool,
    in_flight: usize,
    /// Blocks queued and not yet known written, in the order queued (each
    /// with whether it has been written): the written prefix is `written_to`.
    queued: std::collections::VecDeque<(u64, bool)>,
    /// Every block queued below this one is written, and none failed.
    written_to: Option<u64>,
    /// The lowest block whose write failed since the last `settle`.
    failed: Option<Failed>,
    /// The first block queued since the last `settle`.
    first: Option<(u64, PathBuf)>,
    threads: Vec<JoinHandle<()>>,
    record_max: usize,
}

impl WriteBehind {
    /// Threads that write with `write` (a record's path and bytes), records
    /// of at most `record_max` bytes. `None` when no thread could be started:
    /// the caller then writes in its own thread, as before.
    pub fn start(record_max: usize, write: fn(&std::path::Path, &[u8]) -> std::io::Result<()>) -> Option<WriteBehind> {
        let (jobs, rx) = bounded::<Job>(QUEUED);
        let (done_tx, done) = unbounded();
        let mut threads = Vec::new();
        for i in 0..WRITERS {
            let rx = rx.clone();
            let done_tx = done_tx.clone();
            let spawned = std::thread::Builder::new().name(format!("tape-record-{i}")).spawn(move || {
                for job in rx {
                    let result = write(&job.path, job.data.bytes());
                    drop(job.data);
                    if done_tx.send((job.block, job.path, result)).is_err() {
                        return;
                    }
                }
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    log::warn!("could not start a record writer thread ({e}): the cartridge's records are written one at a time");
                    break;
                }
            }
        }
        if threads.is_empty() {
            return None;
        }
        Some(WriteBehind {
            jobs: Some(jobs),
            done,
            pool: Pool::new(record_max, QUEUED + WRITERS + 1),
            in_flight: 0,
            queued: std::collections::VecDeque::new(),
            written_to: None,
            failed: None,
            first: None,
            threads,
            record_max,
        })
    }

    /// Queue `data` as the record file `path` at `block` (a copy: the caller's
    /// buffer is theirs again at once). Waits only while the queue is full.
    /// `Err(data)` back when the queue cannot take it (a record larger than
    /// the queue's buffers, or the threads are gone): the caller writes it.
    pub fn push<'a>(&mut self, block: u64, path: PathBuf, data: &'a [u8]) -> std::result::Result<(), &'a [u8]> {
        if data.len() > self.record_max {
            return Err(data);
        }
        let Some(jobs) = &self.jobs else { return Err(data) };
        self.first.get_or_insert_with(|| (block, path.clone()));
        let mut b = self.pool.take();
        b.space()[..data.len()].copy_from_slice(data);
        b.set_len(data.len());
        if jobs.send(Job { block, path, data: b }).is_err() {
            return Err(data);
        }
        self.in_flight += 1;
        self.queued.push_back((block, false));
        while let Ok(d) = self.done.try_recv() {
            self.finished(d);
        }
        Ok(())
    }

    fn finished(&mut self, (block, path, result): (u64, PathBuf, std::io::Result<()>)) {
        self.in_flight -= 1;
        match result {
            Err(error) => {
                if self.failed.as_ref().is_none_or(|f| block < f.block) {
                    self.failed = Some(Failed { block, path, error });
                }
            }
            Ok(()) => {
                if let Some(q) = self.queued.iter_mut().find(|(b, _)| *b == block) {
                    q.1 = true;
                }
            }
        }
        if self.failed.is_none() {
            while let Some(&(b, true)) = self.queued.front() {
                self.queued.pop_front();
                self.written_to = Some(b + 1);
            }
        }
    }

    /// The block below which every queued record is written (none failed),
    /// as far as the threads have reported: where the end-of-data mark may
    /// stand now without a record past it that a crash could lose.
    pub fn written_to(&mut self) -> Option<u64> {
        while let Ok(d) = self.done.try_recv() {
            self.finished(d);
        }
        self.written_to
    }

    /// Wait for every queued record; the lowest one that failed, if any.
    pub fn settle(&mut self) -> Option<Failed> {
        while self.in_flight > 0 {
            match self.done.recv() {
                Ok(d) => self.finished(d),
                // Every writer thread is gone (none panics on its own): what
                // they had not reported is not known to be written.
                Err(_) => {
                    self.in_flight = 0;
                    let (block, path) = self.first.clone().unwrap_or_default();
                    let error = std::io::Error::other("the record writer threads stopped");
                    self.failed = Some(Failed { block, path, error });
                }
            }
        }
        self.first = None;
        self.queued.clear();
        self.written_to = None;
        self.failed.take()
    }

    /// A record failed before `settle` was asked: true when one did.
    pub fn has_failed(&mut self) -> bool {
        while let Ok(d) = self.done.try_recv() {
            self.finished(d);
        }
        self.failed.is_some()
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        // Closing the queue ends the threads once they have written what it
        // held (a cartridge dropped without `flush` still gets its records).
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
