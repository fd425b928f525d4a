//! What a cartridge looks like to the tape workflow: files written front to
//! back, one at a time, and an index that makes them visible.
//!
//! Two kinds of implementation: a folder mounted by an LTFS driver
//! (`--ltfs-mount DIR`), and an LTFS volume reelfs writes itself onto a tape
//! device or a file-emulated cartridge (`--device PATH`). Tape is append-only,
//! so the trait has no seek, no rewrite and no delete: a file that fails is
//! abandoned (the next index does not list it) and its space is lost, as on
//! real tape.

use std::io;
use std::time::SystemTime;

/// Errors a volume reports. End of medium is its own case because the
/// workflow answers it by closing this cartridge and going on with the next.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("end of medium on tape {barcode}: the cartridge is full")]
    EndOfMedium { barcode: String },
    #[error("tape {barcode}: {context}: {source}")]
    Io {
        barcode: String,
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("tape {barcode}: {message}")]
    Format { barcode: String, message: String },
}

/// Where a completed file sits on the cartridge, as the tape catalog records
/// it and a recall sorts by (tape order = partition, then start block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlacement {
    /// LTFS partition letter: `a` (index) or `b` (data).
    pub partition: char,
    /// First logical block of the file's data; 0 where the writer cannot know
    /// it (a volume mounted by a driver that does not expose it).
    pub start_block: u64,
    pub bytes: u64,
}

/// One cartridge being written.
pub trait VolumeWriter {
    /// The cartridge's barcode (`A00001L8`); the LTFS volume serial is its
    /// first six characters.
    fn barcode(&self) -> &str;
    /// Bytes that can still be written before the index reserve is reached.
    fn remaining(&self) -> u64;
    /// Begin a file at `path` (relative, `/`-separated; folders are created
    /// as needed). Only one file is open at a time.
    fn begin_file(&mut self, path: &str, modified: SystemTime) -> Result<(), VolumeError>;
    /// Append to the file begun last.
    fn write(&mut self, data: &[u8]) -> Result<(), VolumeError>;
    /// Complete the file begun last, with its extended attributes (the LTFS
    /// hash names, `ltfs.hash.md5sum` style). It is on the tape once the next
    /// index is written.
    fn end_file(&mut self, xattrs: &[(String, Vec<u8>)]) -> Result<FilePlacement, VolumeError>;
    /// Give up the file begun last (a write error): no index lists it.
    fn abandon_file(&mut self) -> Result<(), VolumeError>;
    /// Remove what the volume holds under `path` when the tape catalog does not
    /// record that file as complete there: what a process killed mid-file left
    /// (on a mounted LTFS volume, a truncated file under the original's name
    /// that a reader could take for the original). Returns the size of what was
    /// removed, `None` when there was nothing. On tape the space stays used; the
    /// name leaves the next index, so the file can be written again whole.
    fn remove_leftover(&mut self, path: &str) -> Result<Option<u64>, VolumeError> {
        let _ = path;
        Ok(None)
    }
    /// Whether the volume, as it will be indexed, lists a complete file at
    /// `path`; None when the writer cannot tell. A file the catalog records as
    /// written but no index lists (a process killed before the next index) is
    /// written again.
    fn lists(&self, path: &str) -> Option<bool> {
        let _ = path;
        None
    }
    /// Put every file completed so far on stable storage (the workflow calls
    /// this before the tape catalog records them as written, never less often).
    /// Volumes that only make data durable at an index do nothing here.
    fn make_durable(&mut self) -> Result<(), VolumeError> {
        Ok(())
    }
    /// Write an index now, so a crash later leaves a mountable volume holding
    /// every file completed before this call.
    fn sync_index(&mut self) -> Result<(), VolumeError>;
    /// Write the final index and close the cartridge.
    fn finish(self: Box<Self>) -> Result<(), VolumeError>;
}

/// A file as a volume's index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    pub path: String,
    pub bytes: u64,
    pub placement: FilePlacement,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// One cartridge being read back (verify, recall).
pub trait VolumeReader {
    fn barcode(&self) -> &str;
    /// Every file the volume's latest index lists.
    fn files(&mut self) -> Result<Vec<VolumeFile>, VolumeError>;
    /// A file's bytes, read front to back.
    fn open(&mut self, path: &str) -> Result<Box<dyn io::Read + '_>, VolumeError>;
    /// How the drive under the volume positioned its head so far, when it
    /// counts (`--device` on an emulated cartridge; not an LTFS mount).
    fn seeks(&self) -> Option<super::device::SeekCounts> {
        None
    }
}
