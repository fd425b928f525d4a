//! `reelfs.serve(archive, ...)` and `Archive.share(...)`: the HTTP server of
//! `reelfs serve` run by this Python process on a thread of its own, and the
//! signed links of `reelfs share`, both through src/serve's library functions.
//!
//! The server stops when `stop()` sends on a channel (`serve::run_until`), not
//! on a signal: Ctrl-C in the Python process belongs to Python (it raises
//! KeyboardInterrupt in the `with` block, whose exit then stops the server).

use super::errors::{py_err, Failure, Kind};
use crate::serve::{self, ServeError, ServeOptions};
use pyo3::prelude::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

impl From<&ServeError> for Failure {
    fn from(e: &ServeError) -> Failure {
        match e {
            ServeError::Archive(a) => a.into(),
            // A key file too short or unreadable, an address taken, a TLS
            // certificate or key that does not load: the caller
            // fixes the arguments (the message says how).
            ServeError::Key(_) | ServeError::Listen(..) | ServeError::Tls(_) => Failure::new(Kind::Invalid, e.to_string()),
            ServeError::Runtime(_) => Failure::new(Kind::Other, e.to_string()),
        }
    }
}

type Served = JoinHandle<Result<(), ServeError>>;

struct Running {
    served: Served,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// A running server; `stop()` ends it and waits for its thread.
#[pyclass(module = "reelfs._reelfs", frozen)]
pub struct NativeServer {
    /// The address it listens on (port 0 resolved to the port it got).
    #[pyo3(get)]
    address: String,
    running: Mutex<Option<Running>>,
}

#[pymethods]
impl NativeServer {
    /// Serve `archive` and return once connections are accepted (or raise why not).
    #[staticmethod]
    #[pyo3(signature = (archive, listen, cache_bytes, token_key, max_connections, idle_timeout))]
    fn start(
        py: Python<'_>,
        archive: PathBuf,
        listen: &str,
        cache_bytes: usize,
        token_key: Option<PathBuf>,
        max_connections: usize,
        idle_timeout: f64,
    ) -> PyResult<NativeServer> {
        let listen: SocketAddr = listen.parse().map_err(|e| {
            Failure::new(
                Kind::Invalid,
                format!("listen={listen:?} is not an address ({e}); give IP:PORT, e.g. \"127.0.0.1:0\" (port 0 picks a free one)"),
            )
            .into_py(py)
        })?;
        if !(idle_timeout.is_finite() && idle_timeout > 0.0) {
            return Err(
                Failure::new(Kind::Invalid, format!("idle_timeout={idle_timeout} must be a positive number of seconds")).into_py(py)
            );
        }
        let opts = ServeOptions {
            listen,
            cache_bytes,
            token_key,
            max_connections,
            idle_timeout: Duration::from_secs_f64(idle_timeout),
            tls: None,
        };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<SocketAddr>(1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let spec = archive.display().to_string();
        let served = std::thread::Builder::new()
            .name("reelfs-serve".into())
            .spawn(move || {
                // A dropped sender (the NativeServer gone without stop()) stops it too.
                let stop = async move {
                    let _ = stop_rx.await;
                };
                serve::run_until(
                    &archive,
                    &opts,
                    |addr| {
                        let _ = ready_tx.send(addr);
                    },
                    stop,
                )
            })
            .map_err(|e| Failure::new(Kind::Other, format!("cannot start the server thread: {e}")).at(&spec).into_py(py))?;
        // Either the server is listening or its thread ends with the reason.
        match py.allow_threads(|| ready_rx.recv()) {
            Ok(addr) => Ok(NativeServer { address: addr.to_string(), running: Mutex::new(Some(Running { served, stop: stop_tx })) }),
            Err(_) => Err(match served.join() {
                Ok(Err(e)) => Failure::from(&e).at(&spec).into_py(py),
                _ => Failure::new(Kind::Other, format!("{spec}: the server ended before it was listening")).into_py(py),
            }),
        }
    }

    /// Stop accepting, drop open connections and wait for the thread; a second call does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let Some(run) = self.running.lock().unwrap_or_else(|p| p.into_inner()).take() else { return Ok(()) };
        let _ = run.stop.send(());
        match py.allow_threads(|| run.served.join()) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::from(&e).at(&self.address).into_py(py)),
            Err(_) => Err(Failure::new(Kind::Other, format!("{}: the server thread panicked", self.address)).into_py(py)),
        }
    }

    #[getter]
    fn running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }
}

/// `reelfs share ARCHIVE PATH --json`: a signed link, as JSON.
#[pyfunction]
#[pyo3(signature = (archive, path, key_file, expires, base_url))]
pub fn share(py: Python<'_>, archive: PathBuf, path: &str, key_file: PathBuf, expires: &str, base_url: &str) -> PyResult<String> {
    let expires_in =
        serve::sign::parse_duration(expires).map_err(|e| Failure::new(Kind::Invalid, format!("expires: {e}")).at(path).into_py(py))?;
    let now = serve::conditional::now_secs();
    let req = serve::share::ShareRequest { path, key_file: &key_file, expires_in, base_url, now };
    let s = py.allow_threads(|| serve::share::share(&archive, &req)).map_err(py_err(py, path))?;
    super::archive::json(&s)
}
