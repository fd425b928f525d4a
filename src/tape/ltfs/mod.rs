//! LTFS 2.4 (SNIA LTFS Format Specification 2.4, ISO/IEC 20919): the
//! on-tape format that lets any stock LTFS driver read a cartridge reelfs
//! wrote through `--device`, with no reelfs.
//!
//! A volume has two partitions: `a` (index partition, physical 0) and `b`
//! (data partition, physical 1). Each starts with a VOL1 label, a filemark,
//! the LTFS label (XML), a filemark, then index constructs (filemark, index
//! XML, filemark). File data goes on `b` as records of the volume's block
//! size, each file starting a new record; an index is written on `b` at
//! intervals and at the end, and the final index also on `a`. The cartridge
//! memory's coherency attributes point at the newest index so a reader finds
//! it without scanning.
//!
//! - `label`: VOL1 and the LTFS label.
//! - `index`: the index model, its XML writer and its parser.
//! - `xml`: a small element tree over quick-xml that both parsers share.
//! - `mam`: the volume coherency attributes.
//! - `time`: the spec's time stamps.
//! - `format`: make a new, empty volume (`reelfs tape format`).
//! - `writer` / `reader`: `LtfsVolumeWriter` and `LtfsVolumeReader`, the
//!   `--device` side of `tape::volume`.

pub mod format;
pub mod index;
pub mod label;
pub mod mam;
pub mod reader;
pub mod time;
pub mod writer;
pub mod xml;

pub use format::{format_volume, FormatOptions, FormatReport};
pub use reader::LtfsVolumeReader;
pub use writer::LtfsVolumeWriter;

use crate::tape::device::DeviceError;

/// The index partition and the data partition as LTFS names them.
pub const INDEX_PARTITION: char = 'a';
pub const DATA_PARTITION: char = 'b';
/// Block size of volumes reelfs formats: the reference implementation's
/// default, and what LTO drives stream best.
pub const DEFAULT_BLOCK_SIZE: usize = 512 * 1024;
/// Where the first index sits on each partition: VOL1 (0), FM (1), label (2),
/// FM (3), FM (4), index (5), FM (6).
pub const FIRST_INDEX_BLOCK: u64 = 5;
/// The name reelfs writes as the creator of labels and indexes.
pub const CREATOR: &str = concat!("reelfs ", env!("CARGO_PKG_VERSION"), " - Linux");

/// Errors of the LTFS layer.
#[derive(Debug, thiserror::Error)]
pub enum LtfsError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{0}")]
    Format(String),
    #[error("invalid barcode {0:?}: an LTO barcode starts with six characters 0-9 or A-Z (A00001L8)")]
    Barcode(String),
}

pub type Result<T> = std::result::Result<T, LtfsError>;

pub(crate) fn format_err(message: impl Into<String>) -> LtfsError {
    LtfsError::Format(message.into())
}

/// Physical partition number of an LTFS partition letter.
pub fn partition_number(id: char) -> Result<u8> {
    match id {
        INDEX_PARTITION => Ok(0),
        DATA_PARTITION => Ok(1),
        other => Err(format_err(format!("partition {other:?} is not one this volume has (a or b)"))),
    }
}

/// The LTFS volume serial of a barcode: its first six characters, each
/// 0-9 or A-Z, as the reference `mkltfs -s` requires.
pub fn volume_serial(barcode: &str) -> Result<String> {
    let serial: String = barcode.chars().take(6).collect();
    if serial.chars().count() != 6 || !serial.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) {
        return Err(LtfsError::Barcode(barcode.to_string()));
    }
    Ok(serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_serial_is_the_first_six_of_the_barcode() {
        assert_eq!(volume_serial("A00001L8").unwrap(), "A00001");
        assert!(volume_serial("a00001L8").is_err());
        assert!(volume_serial("A0001").is_err());
        assert!(volume_serial("A0-001L8").is_err());
    }
}
