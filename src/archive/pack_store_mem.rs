//! `MemPackStore`: packs held in memory, with faults a test can inject. For
//! tests: it proves the `PackStore` seam (an archive runs on it unchanged) and
//! makes failures that are awkward to cause on a real disk happen on demand —
//! a seal that fails (a full disk at fsync, an object store refusing to
//! complete an upload), a pack whose reads end early, a pack that is gone.
//!
//! Like an object store's multipart upload, an unsealed pack is invisible:
//! it is neither listed nor readable until its seal succeeds.

use super::error::{ArchiveError, Result};
use super::pack_store::{PackStore, PackUpload};
use super::read_at::ReadAt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    sealed: BTreeMap<String, Arc<Vec<u8>>>,
    /// Seals still to succeed before every later one fails; `None`: all succeed.
    seals_left: Option<usize>,
    /// Packs whose reads see only their first this-many bytes.
    cut: HashMap<String, u64>,
    /// Largest read answered at once (a network store answers in pieces).
    max_read: Option<usize>,
    /// Uploads begun, sealed, aborted: what a test asserts about the seam.
    begun: usize,
    aborted: usize,
    /// Sealed packs deleted (gc, or a writer giving up packs it sealed for a
    /// file that then failed).
    deleted: usize,
}

#[derive(Default, Clone)]
pub struct MemPackStore {
    state: Arc<Mutex<State>>,
}

fn gone(name: &str) -> ArchiveError {
    ArchiveError::Io { path: format!("mem:{name}").into(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such pack") }
}

impl MemPackStore {
    pub fn new() -> MemPackStore {
        MemPackStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Let `n` more seals succeed, then fail every later one.
    pub fn fail_seals_after(&self, n: usize) {
        self.state().seals_left = Some(n);
    }

    /// Seals succeed again.
    pub fn heal_seals(&self) {
        self.state().seals_left = None;
    }

    /// Reads of `name` see only its first `len` bytes, as a pack cut short.
    pub fn cut_reads(&self, name: &str, len: u64) {
        self.state().cut.insert(name.to_string(), len);
    }

    /// Answer every read with at most `n` bytes.
    pub fn limit_reads(&self, n: usize) {
        self.state().max_read = Some(n.max(1));
    }

    /// Lose a pack, as a disk might.
    pub fn lose(&self, name: &str) {
        self.state().sealed.remove(name);
    }

    /// A sealed pack's bytes.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.state().sealed.get(name).map(|b| b.to_vec())
    }

    /// Replace a sealed pack's bytes (to damage it).
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.state().sealed.insert(name.to_string(), Arc::new(bytes));
    }

    /// (uploads begun, uploads aborted) so far.
    pub fn uploads(&self) -> (usize, usize) {
        let s = self.state();
        (s.begun, s.aborted)
    }

    /// Sealed packs deleted so far.
    pub fn deletes(&self) -> usize {
        self.state().deleted
    }
}

impl PackStore for MemPackStore {
    fn begin(&self, name: &str) -> Result<Box<dyn PackUpload>> {
        let mut s = self.state();
        if s.sealed.contains_key(name) {
            return Err(ArchiveError::Io {
                path: format!("mem:{name}").into(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "pack exists"),
            });
        }
        s.begun += 1;
        Ok(Box::new(MemUpload { store: self.clone(), name: name.to_string(), bytes: Vec::new(), done: false }))
    }

    fn open(&self, name: &str) -> Result<Arc<dyn ReadAt>> {
        let s = self.state();
        let bytes = s.sealed.get(name).cloned().ok_or_else(|| gone(name))?;
        let visible = s.cut.get(name).map_or(bytes.len() as u64, |c| (*c).min(bytes.len() as u64));
        Ok(Arc::new(MemPack { bytes, visible, max_read: s.max_read }))
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.state().sealed.get(name).map(|b| b.len() as u64))
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.state().sealed.keys().cloned().collect())
    }

    fn delete(&self, name: &str) -> Result<()> {
        let mut s = self.state();
        if s.sealed.remove(name).is_some() {
            s.deleted += 1;
        }
        Ok(())
    }

    fn locate(&self, name: &str) -> String {
        format!("mem:{name}")
    }
}

struct MemUpload {
    store: MemPackStore,
    name: String,
    bytes: Vec<u8>,
    done: bool,
}

impl PackUpload for MemUpload {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(b);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn seal(mut self: Box<Self>) -> Result<u64> {
        self.done = true;
        let mut s = self.store.state();
        match &mut s.seals_left {
            Some(0) => {
                s.aborted += 1;
                return Err(ArchiveError::Io {
                    path: format!("mem:{}", self.name).into(),
                    source: std::io::Error::other("injected fault: the pack could not be sealed"),
                });
            }
            Some(n) => *n -= 1,
            None => {}
        }
        let len = self.bytes.len() as u64;
        s.sealed.insert(self.name.clone(), Arc::new(std::mem::take(&mut self.bytes)));
        Ok(len)
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.done = true;
        self.store.state().aborted += 1;
        Ok(())
    }
}

impl Drop for MemUpload {
    fn drop(&mut self) {
        if !self.done {
            self.store.state().aborted += 1;
        }
    }
}

struct MemPack {
    bytes: Arc<Vec<u8>>,
    visible: u64,
    max_read: Option<usize>,
}

impl ReadAt for MemPack {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.max_read.map_or(buf.len(), |m| buf.len().min(m));
        if offset >= self.visible {
            return Ok(0);
        }
        let n = n.min((self.visible - offset) as usize);
        self.bytes.as_slice().read_at(offset, &mut buf[..n])
    }
    /// The full size: a pack cut short still claims its length, as a file
    /// whose tail cannot be read does; reads past the cut end early.
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}
