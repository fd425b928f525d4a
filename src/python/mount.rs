//! `reelfs.mount(archive, dir)`: the archive mounted by this Python process,
//! served by FUSE threads of its own (they never take the GIL), for as long as
//! the `with` block runs.

use super::errors::{Failure, Kind};
use crate::commands::mount::{self as cmd, MountRequest};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;

type Served = JoinHandle<crate::commands::Result<()>>;

/// A running mount; `stop()` unmounts it and waits for its threads.
#[pyclass(module = "reelfs._reelfs", frozen)]
pub struct NativeMount {
    #[pyo3(get)]
    mountpoint: PathBuf,
    served: Mutex<Option<Served>>,
}

fn failure(e: &crate::commands::CommandError, path: &str) -> PyErr {
    Python::with_gil(|py| Failure::from(e).at(path).into_py(py))
}

#[pymethods]
impl NativeMount {
    /// Mount `archive` at `mountpoint` and return once the kernel answers on it.
    #[staticmethod]
    #[pyo3(signature = (archive, mountpoint, read_only, allow_other, cache_size, threads))]
    fn start(
        py: Python<'_>,
        archive: PathBuf,
        mountpoint: PathBuf,
        read_only: bool,
        allow_other: bool,
        cache_size: u64,
        threads: usize,
    ) -> PyResult<NativeMount> {
        let mp = mountpoint.display().to_string();
        cmd::preflight(&archive, &mountpoint).map_err(|e| failure(&e, &mp))?;
        let req = MountRequest { allow_other, read_only, cache_size, threads, autocommit_secs: None, remux_cache_limit: None };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(1);
        let (a, m) = (archive.clone(), mountpoint.clone());
        let served = std::thread::Builder::new()
            .name("reelfs-mount".into())
            .spawn(move || {
                cmd::mount(&a, &m, &req, || {
                    let _ = ready_tx.send(());
                })
            })
            .map_err(|e| Failure::new(Kind::Other, format!("cannot start the mount thread: {e}")).at(&mp).into_py(py))?;
        // Either the mount answers (ready) or its thread ends with the reason.
        match py.allow_threads(|| ready_rx.recv()) {
            Ok(()) => Ok(NativeMount { mountpoint, served: Mutex::new(Some(served)) }),
            Err(_) => {
                let res = served.join();
                Err(match res {
                    Ok(Err(e)) => failure(&e, &mp),
                    _ => Failure::new(Kind::Other, format!("{mp}: the mount ended before it was ready")).into_py(py),
                })
            }
        }
    }

    /// Unmount and wait for the mount's threads; a second call does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let mp = self.mountpoint.display().to_string();
        let mut slot = self.served.lock().unwrap_or_else(|p| p.into_inner());
        let Some(served) = slot.take() else { return Ok(()) };
        if let Err(e) = cmd::unmount(&self.mountpoint) {
            // Still mounted (a file open on it): keep the handle so stop() can be retried.
            *slot = Some(served);
            return Err(failure(&e, &mp));
        }
        match py.allow_threads(|| served.join()) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failure(&e, &mp)),
            Err(_) => Err(Failure::new(Kind::Other, format!("{mp}: the mount thread panicked")).into_py(py)),
        }
    }

    #[getter]
    fn mounted(&self) -> bool {
        self.served.lock().map(|s| s.is_some()).unwrap_or(false)
    }
}
