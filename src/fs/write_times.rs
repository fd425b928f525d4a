//! A folder's times when names in it change: POSIX marks the parent's mtime
//! and ctime for update on every create, remove and rename of an entry in it
//! (pjdfstest checks it; `make` and backup tools rely on it).

use super::{Branches, Entry, WriteHost};
use crate::archive::objects;
use crate::archive::staging::Staged;
use crate::fs::error::FsResult;

impl<H: WriteHost> Branches<'_, H> {
    /// Stage folder `dir` of `branch` with mtime now (ctime shows as mtime),
    /// keeping everything else it is. A branch root has no entry to keep a
    /// time in: its mtime is its head commit's, as before.
    pub(super) fn touch_dir(&self, branch: &str, dir: &str) -> FsResult<()> {
        if dir.is_empty() {
            return Ok(());
        }
        let Some(Entry::Dir { tree, mode, owner, extra, .. }) = self.branch_entry(branch, dir)? else { return Ok(()) };
        let s = Staged::Dir { mode, mtime_ns: objects::now_ns(), tree, owner, extra };
        self.with_writer(|a| a.staging().stage(branch, dir, &s))
    }
}
