//! Multipart uploads in flight, written down locally (`ARCHIVE/uploads/`) so
//! that an upload a killed writer left open can be aborted later: S3 keeps the
//! parts of an unfinished upload (and bills for them) until someone aborts it.
//!
//! An entry is made (and fsynced) as soon as the store hands out the upload
//! id, and removed once the upload is completed or aborted. What remains is
//! aborted by the next writer (under the writer lock) and by `gc`.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Journal {
    dir: PathBuf,
}

/// One unfinished upload: the object it was for and the id the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub pack: String,
    pub upload_id: String,
    file: PathBuf,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Journal {
        Journal { dir }
    }

    fn file(&self, pack: &str) -> PathBuf {
        self.dir.join(format!("{}.upload", pack.replace('/', "_")))
    }

    pub fn record(&self, pack: &str, upload_id: &str) -> std::io::Result<Pending> {
        std::fs::create_dir_all(&self.dir)?;
        let file = self.file(pack);
        let mut f = std::fs::File::create(&file)?;
        writeln!(f, "{pack}\n{upload_id}")?;
        f.sync_all()?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(Pending { pack: pack.into(), upload_id: upload_id.into(), file })
    }

    pub fn done(&self, p: &Pending) {
        let _ = std::fs::remove_file(&p.file);
    }

    /// The upload completed: the pack exists. Written down (one line in
    /// `sealed.log`) so that, if the catalog never came to point at it, this
    /// folder's next writer knows the pack is its own to remove, while a pack
    /// of another host sharing the bucket is left alone.
    pub fn sealed(&self, p: &Pending) -> std::io::Result<()> {
        let log = self.dir.join("sealed.log");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        writeln!(f, "{}", p.pack)?;
        f.sync_data()?;
        self.done(p);
        Ok(())
    }

    /// Packs this folder's writers sealed.
    pub fn written(&self) -> std::collections::HashSet<String> {
        std::fs::read_to_string(self.dir.join("sealed.log")).unwrap_or_default().lines().map(|l| l.trim().to_string()).collect()
    }

    /// Every upload written down and not finished.
    pub fn pending(&self) -> Vec<Pending> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let file = e.path();
            if file.extension().is_none_or(|x| x != "upload") {
                continue;
            }
            match parse(&file) {
                Some((pack, upload_id)) => out.push(Pending { pack, upload_id, file }),
                // A torn entry (killed while writing it): the upload it was
                // for never got a part, so there is nothing to abort.
                None => {
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        out.sort_by(|a, b| a.pack.cmp(&b.pack));
        out
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn parse(file: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut lines = text.lines();
    let pack = lines.next()?.trim().to_string();
    let id = lines.next()?.trim().to_string();
    (!pack.is_empty() && !id.is_empty()).then_some((pack, id))
}
