//! Running a long command from Python: on a worker thread, the GIL released,
//! progress handed to a Python callback, Ctrl-C turned into the command's own
//! interrupt flag.
//!
//! Why a worker thread: Python runs signal handlers only on the main thread and
//! only while it holds the GIL, so the calling thread waits for the worker in
//! short steps, takes the GIL between them and asks Python for pending signals.
//! A KeyboardInterrupt (or an exception raised by the progress callback) sets
//! the flag every long command checks at its safe points (between chunks, files,
//! packs), waits for the command to stop there, then raises.

use crate::archive::progress::{ProgressHandle, ProgressState, StateCallback};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the waiting thread looks for Ctrl-C: short enough to feel immediate.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

pub struct Job {
    pub interrupt: Arc<AtomicBool>,
    pub progress: ProgressHandle,
    /// The first exception of the callback (or the signal handler): raised at the end.
    pending: Arc<Mutex<Option<PyErr>>>,
}

fn state_dict<'py>(py: Python<'py>, s: &ProgressState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("phase", &s.phase)?;
    let unit = s.unit.map(|u| match u {
        crate::archive::progress::Unit::Bytes => "bytes",
        crate::archive::progress::Unit::Frames => "frames",
        crate::archive::progress::Unit::Items => "items",
    });
    d.set_item("unit", unit)?;
    d.set_item("done", s.done)?;
    d.set_item("total", s.total)?;
    d.set_item("files_done", s.files_done)?;
    d.set_item("files_total", s.files_total)?;
    d.set_item("message", &s.message)?;
    d.set_item("finished", s.finished)?;
    Ok(d)
}

impl Job {
    /// A job reporting to `callback` (called with one dict per progress event).
    pub fn new(callback: Option<PyObject>) -> Job {
        let interrupt = Arc::new(AtomicBool::new(false));
        let pending: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
        let progress = match callback {
            None => ProgressHandle::none(),
            Some(cb) => {
                let (stop, failed) = (interrupt.clone(), pending.clone());
                ProgressHandle::new(StateCallback::new(move |s: &ProgressState| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    Python::with_gil(|py| {
                        let res = state_dict(py, s).and_then(|d| cb.call1(py, (d,)).map(drop));
                        if let Err(e) = res {
                            stop.store(true, Ordering::Relaxed);
                            let mut slot = failed.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(e);
                        }
                    });
                }))
            }
        };
        Job { interrupt, progress, pending }
    }

    /// Run `work` on a worker thread with the GIL released; see the module comment.
    /// An exception from the callback or a signal handler wins over the result.
    pub fn run<T: Send>(&self, py: Python<'_>, work: impl FnOnce() -> T + Send) -> PyResult<T> {
        let (tx, rx) = crossbeam_channel::bounded::<std::thread::Result<T>>(1);
        let out = std::thread::scope(|scope| {
            scope.spawn(move || {
                // A panic is a bug in reelfs; it reaches Python as an exception
                // instead of tearing down the interpreter.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                let _ = tx.send(r);
            });
            loop {
                match py.allow_threads(|| rx.recv_timeout(SIGNAL_POLL)) {
                    Ok(r) => return r,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        return Err(Box::new("the worker thread ended without a result") as Box<dyn std::any::Any + Send>)
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                }
                if let Err(e) = py.check_signals() {
                    self.interrupt.store(true, Ordering::Relaxed);
                    let mut slot = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                }
            }
        });
        if let Some(e) = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        out.map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            super::errors::Error::new_err(format!("internal error in reelfs (please report it): {what}"))
        })
    }
}
