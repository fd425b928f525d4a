//! Tape: archive a selection to LTO cartridges as LTFS volumes that a stock
//! LTFS driver reads (issue 15).
//!
//! `volume` is the seam between the workflow (plans, the tape catalog,
//! write/verify/recall) and where a cartridge's files physically go: a volume
//! already mounted by any vendor's LTFS driver, or an LTFS volume reelfs
//! writes itself through a tape device. The workflow knows nothing of LTFS
//! records; the LTFS writer knows nothing of plans.

pub mod device;
pub mod ltfs;
pub mod volume;
