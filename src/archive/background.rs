//! A long-lived helper thread that runs work readers hand off: a long file's
//! extent list (`read::BlobReader::paged`), a chunk's outboard lookup beside
//! the data read it checks (`read::ChunkStore::read_range_with_lookup`).
//!
//! Why not a thread per job: `reelfs serve` started one for every long file
//! on the request path, and a cold thread start was a major fault on the
//! binary (this disk reads 8 MiB around it), a stack mapping and a fresh
//! malloc arena, all before the first byte. The thread is started once
//! (before a server says it is ready, `start`) and kept.
//!
//! A job is a step function run again until it says it is done, each step
//! after the other jobs' waiting steps (round robin), so one 1 TiB file's
//! extent list does not hold up the next file's for its whole length. A job
//! may ask not to start before a time (a loader that must not share the disk
//! with its reader's first bytes).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What a job's step says.
pub enum Step {
    /// Run me again (after the other jobs that are due).
    Again,
    Done,
}

type StepFn = Box<dyn FnMut() -> Step + Send>;

struct Job {
    not_before: Instant,
    step: StepFn,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    cv: Condvar,
}

/// One named helper thread, started on first use (or by `start`), ended when
/// the `Worker` is dropped (jobs still queued are dropped with it).
pub struct Worker {
    name: &'static str,
    shared: Arc<Shared>,
    /// Set once the thread is running, or failed to start (false).
    started: OnceLock<bool>,
}

impl Worker {
    pub fn new(name: &'static str) -> Worker {
        Worker { name, shared: Arc::default(), started: OnceLock::new() }
    }

    /// Start the thread now and wait until it has run a first job (its code
    /// paged in, its malloc arena made): a server calls this before it is
    /// ready, so no request pays a thread's start. False: it cannot start.
    pub fn start(&self) -> bool {
        if !self.running() {
            return false;
        }
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let d = done.clone();
        let queued = self.submit_after(Duration::ZERO, move || {
            // An allocation, so the thread's arena exists before a job needs it.
            std::hint::black_box(vec![0u8; 4096]);
            if let Ok(mut g) = d.0.lock() {
                *g = true;
            }
            d.1.notify_all();
            Step::Done
        });
        if !queued {
            return false;
        }
        let Ok(mut g) = done.0.lock() else { return false };
        while !*g {
            g = match done.1.wait(g) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        true
    }

    /// Queue `step`, to run first after `delay`. False: the thread could not
    /// be started; the job was dropped and the caller does the work itself.
    pub fn submit_after(&self, delay: Duration, step: impl FnMut() -> Step + Send + 'static) -> bool {
        if !self.running() {
            return false;
        }
        let Ok(mut q) = self.shared.queue.lock() else { return false };
        q.jobs.push_back(Job { not_before: Instant::now() + delay, step: Box::new(step) });
        drop(q);
        self.shared.cv.notify_one();
        true
    }

    fn running(&self) -> bool {
        *self.started.get_or_init(|| {
            let shared = self.shared.clone();
            match std::thread::Builder::new().name(self.name.into()).spawn(move || run(&shared)) {
                Ok(_) => true,
                Err(e) => {
                    log::warn!("cannot start the {} thread ({e}); its work is done by the readers that need it", self.name);
                    false
                }
            }
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Not joined: the last owner of the store may be a job on this very thread.
        let jobs = match self.shared.queue.lock() {
            Ok(mut q) => {
                q.closed = true;
                std::mem::take(&mut q.jobs)
            }
            Err(_) => VecDeque::new(),
        };
        self.shared.cv.notify_all();
        // Outside the lock: a job's captures may end with this worker's owner.
        drop(jobs);
    }
}

fn run(shared: &Shared) {
    let Ok(mut q) = shared.queue.lock() else { return };
    loop {
        if q.closed {
            return;
        }
        let now = Instant::now();
        let Some(i) = q.jobs.iter().position(|j| j.not_before <= now) else {
            let wake = q.jobs.iter().map(|j| j.not_before).min();
            q = match wake {
                Some(at) => match shared.cv.wait_timeout(q, at.saturating_duration_since(now)) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                },
                None => match shared.cv.wait(q) {
                    Ok(g) => g,
                    Err(_) => return,
                },
            };
            continue;
        };
        let Some(mut job) = q.jobs.remove(i) else { continue };
        drop(q);
        let again = matches!((job.step)(), Step::Again);
        q = match shared.queue.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        if again && !q.closed {
            job.not_before = Instant::now();
            q.jobs.push_back(job);
        } else {
            // Dropped outside the lock: a job may own the last reference to
            // what owns this worker.
            drop(q);
            drop(job);
            q = match shared.queue.lock() {
                Ok(g) => g,
                Err(_) => return,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jobs_take_turns_and_a_delayed_one_waits_without_holding_up_the_others() {
        let w = Worker::new("test-worker");
        assert!(w.start());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        let mut a = 0;
        let t0 = Instant::now();
        // Held until every job is queued, so their order is the queue's.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        w.submit_after(Duration::ZERO, move || {
            let _ = gate.recv();
            Step::Done
        });
        // Long enough that the four quick steps below run first even on a
        // loaded machine (a test thread can wait 100 ms for a core).
        w.submit_after(Duration::from_secs(2), move || {
            l3.lock().unwrap().push(("late", t0.elapsed()));
            Step::Done
        });
        w.submit_after(Duration::ZERO, move || {
            a += 1;
            l1.lock().unwrap().push(("a", t0.elapsed()));
            if a < 3 {
                Step::Again
            } else {
                Step::Done
            }
        });
        w.submit_after(Duration::ZERO, move || {
            l2.lock().unwrap().push(("b", t0.elapsed()));
            Step::Done
        });
        open.send(()).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while log.lock().unwrap().len() < 5 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let got: Vec<&str> = log.lock().unwrap().iter().map(|(n, _)| *n).collect();
        assert_eq!(got, ["a", "b", "a", "a", "late"]);
        assert!(log.lock().unwrap()[4].1 >= Duration::from_secs(2));
    }

    #[test]
    fn a_dropped_worker_ends_its_thread_and_drops_its_jobs() {
        let ran = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(());
        {
            let w = Worker::new("test-worker");
            let (r, h) = (ran.clone(), held.clone());
            w.submit_after(Duration::from_secs(60), move || {
                let _ = &h;
                r.fetch_add(1, Ordering::SeqCst);
                Step::Done
            });
        }
        let until = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&held) > 1 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(Arc::strong_count(&held), 1, "the queued job was not dropped");
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
