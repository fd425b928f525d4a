//! The archive as a filesystem. `core` is the filesystem (names, inodes, reads)
//! and knows nothing of FUSE; `fuse` is a thin adapter from `fuser` calls to it;
//! `readahead` keeps sequential readers ahead of the disk; `write` makes branch
//! folders writable (buffered writes staged in the archive until `reelfs commit`);
//! `mount` runs a session.

pub mod attr;
pub mod bdi;
pub mod core;
pub mod error;
pub mod flusher;
pub mod followers;
pub mod fuse;
pub mod inodes;
pub mod mount;
pub mod owners;
pub mod readahead;
pub mod statfs;
pub mod write;

pub use self::core::{Attr, FsCore, FsError, NodeType};
