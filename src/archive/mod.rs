//! The on-disk archive: packs of content-addressed records, a SQLite catalog that
//! indexes them, and the objects (blobs, trees, commits, refs) that give bytes names.
//!
//! The packs are the source of truth; the catalog is an index that can be rebuilt
//! from them (`check --rebuild-catalog`). Every write follows one rule: pack bytes
//! are fsynced before the catalog rows that point into them are committed, so a
//! crash leaves at worst an unreferenced pack that the next writer removes.

pub mod background;
pub mod blob_hash;
pub mod block_copy;
pub mod catalog;
pub mod check;
pub mod chunk_buffers;
pub mod claims;
pub mod config;
pub mod content_hash;
pub mod dest;
pub mod diff;
pub mod error;
pub mod gc;
pub mod ingest;
pub mod lock;
pub mod merge;
pub mod objects;
pub mod open_packs;
pub mod outboard;
pub mod pack;
pub mod pack_direct;
pub mod pack_file;
pub mod pack_store;
pub mod pack_store_mem;
pub mod pack_writer;
pub mod perms;
pub mod progress;
pub mod proxies;
pub mod read;
pub mod read_at;
pub mod read_pool;
pub mod readahead;
pub mod repo;
pub mod restore;
pub mod staging;
pub mod store;
pub mod synth;
pub mod tcfacts;
#[cfg(test)]
pub(crate) mod test_support;
pub mod verify;
pub mod written;
pub mod xattrs;

pub use error::{ArchiveError, Result};
pub use objects::{EntryKind, Hash};
pub use read::BlobReader;
pub use repo::Archive;
