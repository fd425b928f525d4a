//! Tape: archive a selection to LTO cartridges as LTFS volumes that a stock
//! LTFS driver reads (issue 15).
//!
//! `volume` is the seam between the workflow (plans, the tape catalog,
//! write/verify/recall) and where a cartridge's files physically go: a volume
//! already mounted by any vendor's LTFS driver, or an LTFS volume reelfs
//! writes itself through a tape device. The workflow knows nothing of LTFS
//! records; the LTFS writer knows nothing of plans.
//!
//! The workflow: `plan` (pure layout arithmetic) and `planning` (a selection
//! in the archive → a stored plan), `write`, `verify`, `query` (ls, where),
//! `export`; `set_catalog` and `mhl` are what travels on every cartridge;
//! `ltfs_mount` is the volume for `--ltfs-mount DIR`.

pub mod device;
pub mod ltfs;
pub mod volume;

pub mod blocks;
pub mod changer;
pub mod error;
pub mod export;
pub mod hashes;
pub mod ltfs_mount;
mod md5_avx512;
pub mod mhl;
pub mod plan;
pub mod planning;
pub mod query;
pub mod recall;
pub mod recall_split;
pub mod release;
pub mod set_catalog;
pub mod verify;
pub mod write;

pub use error::{Result, TapeError};

#[cfg(test)]
mod fault_tests;
