//! The native half of the `reelfs` Python package (`reelfs._reelfs`), built by
//! maturin from pyproject.toml with the `python` feature.
//!
//! It is a thin layer over `crate::commands`: each method calls the command the
//! CLI calls and hands back the same `Serialize` result as JSON text, which the
//! Python half (python/reelfs/) turns into typed objects whose `to_dict()` is
//! what `reelfs … --json` prints. Keeping the typed classes in Python keeps one
//! definition of each result (the Rust struct) and makes the CLI/Python
//! equality hold by construction.
//!
//! Long calls (ingest, restore, check, proxy, extract, gc) run on a worker
//! thread with the GIL released (see `run.rs`): Python threads keep running,
//! progress reaches a Python callback, and Ctrl-C stops the work at the
//! command's own safe point.

mod archive;
mod errors;
mod mount;
mod reader;
mod run;
mod serve;
mod tape;
mod timecode;

use pyo3::prelude::*;

#[pymodule]
fn _reelfs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<archive::NativeArchive>()?;
    m.add_class::<reader::NativeReader>()?;
    m.add_class::<timecode::Timecode>()?;
    m.add_class::<mount::NativeMount>()?;
    m.add_class::<serve::NativeServer>()?;
    m.add_function(wrap_pyfunction!(serve::share, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_plan, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_write, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_verify, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_ls, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_where, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_export, m)?)?;
    errors::register(m)?;
    Ok(())
}
