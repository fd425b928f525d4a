//! `reelfs merge`: three-way merge of one version into a branch.

use super::Result;
use crate::archive::merge::{self, MergeOptions, MergeReport};
use crate::archive::Archive;
use std::path::Path;

/// Merge `src` (`BRANCH[@COMMIT]`) into the branch `into`; conflicts are reported
/// and nothing is written unless `opts` resolves each.
pub fn merge(archive: &Path, src: &str, into: &str, opts: &MergeOptions) -> Result<MergeReport> {
    let mut a = Archive::open_writer(archive)?;
    Ok(merge::merge(&mut a, src, into, opts)?)
}
