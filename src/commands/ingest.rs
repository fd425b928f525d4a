//! `reelfs ingest`: files and folders in as one commit, media probed on the way.

use super::{CommandError, Result};
use crate::archive::ingest::{self, IngestReport};
use crate::archive::progress::ProgressHandle;
use crate::archive::Archive;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub struct IngestRequest {
    pub sources: Vec<PathBuf>,
    pub branch: String,
    /// Folder inside the branch ("" for its root).
    pub to: String,
    pub message: Option<String>,
    pub progress: ProgressHandle,
    /// Checked between chunks: set it to stop at a safe point.
    pub interrupt: Arc<AtomicBool>,
}

/// Ingest `req.sources` into `archive` as one commit on `req.branch`.
pub fn ingest(archive: &Path, req: &IngestRequest) -> Result<IngestReport> {
    let mut a = Archive::open_writer(archive)?;
    let opts = ingest::IngestOptions {
        branch: req.branch.clone(),
        dest: req.to.clone(),
        message: req.message.clone(),
        progress: req.progress.clone(),
        prober: Some(crate::media::probe::probe_for_ingest),
        interrupt: req.interrupt.clone(),
    };
    ingest::ingest(&mut a, &req.sources, &opts).map_err(|e| {
        if e.is_disk_full() {
            let hint = format!(
                "the disk holding {} is full; the archive is unchanged by this ingest. Free space and run it again.",
                archive.display()
            );
            CommandError::WithHint { source: e, hint }
        } else {
            e.into()
        }
    })
}

/// `BRANCH/TO/NAME` of each ingested source: what `ingest --proxies` renders.
pub fn ingested_specs(branch: &str, to: &str, sources: &[PathBuf]) -> Vec<String> {
    let dest = to.trim_matches('/');
    sources
        .iter()
        .filter_map(|s| std::fs::canonicalize(s).ok()?.file_name()?.to_str().map(String::from))
        .map(|name| if dest.is_empty() { format!("{branch}/{name}") } else { format!("{branch}/{dest}/{name}") })
        .collect()
}
