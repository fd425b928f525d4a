//! `reelfs serve ARCHIVE`: the archive over HTTP (src/serve), until stopped.

use super::Result;
pub use crate::serve::ServeOptions;
use std::net::SocketAddr;
use std::path::Path;

/// Serve until SIGINT/SIGTERM; `on_ready` gets the bound address.
pub fn serve(archive: &Path, opts: &ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> Result<()> {
    crate::serve::run(archive, opts, on_ready).map_err(|e| super::CommandError::invalid(e.to_string()))
}
