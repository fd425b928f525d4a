//! Cartridge-memory (MAM) attributes LTFS keeps beside the tape: the volume
//! coherency information of each partition (attribute 0x080C: volume change
//! reference, index generation, block of the newest index there, volume
//! UUID) that a reader uses to find the newest index without scanning, and
//! the application identification a drive's tools display.
//!
//! Byte layouts are the reference implementation's (tape.c,
//! `tape_set_cart_coherency`), which follow the LTFS Format Specification's
//! Annex on MAM parameters. Each attribute is stored whole: id (2 bytes),
//! format (1), length (2), value.

use crate::tape::device::{DeviceError, TapeDevice};

pub const ATTR_VCR: u16 = 0x0009;
pub const ATTR_COHERENCY: u16 = 0x080C;
const COHERENCY_LEN: u16 = 0x46;
const ATTR_APP_VENDOR: u16 = 0x0800;
const ATTR_APP_NAME: u16 = 0x0801;
const ATTR_APP_VERSION: u16 = 0x0802;
const ATTR_BARCODE: u16 = 0x0806;
const ATTR_APP_FORMAT_VERSION: u16 = 0x080B;

/// Coherency information of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coherency {
    pub volume_change_ref: u64,
    /// Generation of the newest index on this partition.
    pub generation: u64,
    /// Block of that index.
    pub block: u64,
    pub volume_uuid: String,
}

impl Coherency {
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Vec::with_capacity(5 + COHERENCY_LEN as usize);
        d.extend_from_slice(&ATTR_COHERENCY.to_be_bytes());
        d.push(0); // binary
        d.extend_from_slice(&COHERENCY_LEN.to_be_bytes());
        d.push(8); // size of the volume change reference
        d.extend_from_slice(&self.volume_change_ref.to_be_bytes());
        d.extend_from_slice(&self.generation.to_be_bytes());
        d.extend_from_slice(&self.block.to_be_bytes());
        d.extend_from_slice(&43u16.to_be_bytes()); // application client specific length
        d.extend_from_slice(b"LTFS\0");
        let mut uuid = [0u8; 37];
        let u = self.volume_uuid.as_bytes();
        let n = u.len().min(36);
        uuid[..n].copy_from_slice(&u[..n]);
        d.extend_from_slice(&uuid);
        d.push(1); // version of the LTFS MAM parameters
        d
    }

    /// `None` for anything that is not a coherency attribute LTFS wrote.
    pub fn decode(d: &[u8]) -> Option<Coherency> {
        if d.len() < 5 + COHERENCY_LEN as usize
            || u16::from_be_bytes([d[0], d[1]]) != ATTR_COHERENCY
            || u16::from_be_bytes([d[3], d[4]]) != COHERENCY_LEN
            || d[5] != 8
            || &d[32..36] != b"LTFS"
        {
            return None;
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let uuid = &d[37..73];
        let end = uuid.iter().position(|b| *b == 0).unwrap_or(uuid.len());
        Some(Coherency {
            volume_change_ref: u64_at(6),
            generation: u64_at(14),
            block: u64_at(22),
            volume_uuid: String::from_utf8_lossy(&uuid[..end]).into_owned(),
        })
    }
}

/// The drive's volume change reference; `None` when the device keeps no
/// cartridge memory or the cartridge has none yet.
pub fn volume_change_reference(dev: &mut dyn TapeDevice) -> Result<Option<u64>, DeviceError> {
    match dev.read_attribute(0, ATTR_VCR) {
        Ok(Some(a)) if a.len() >= 9 => Ok(Some(u32::from_be_bytes([a[5], a[6], a[7], a[8]]) as u64)),
        Ok(_) => Ok(None),
        Err(DeviceError::Unsupported(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn read_coherency(dev: &mut dyn TapeDevice, partition: u8) -> Result<Option<Coherency>, DeviceError> {
    match dev.read_attribute(partition, ATTR_COHERENCY) {
        Ok(Some(a)) => Ok(Coherency::decode(&a)),
        Ok(None) | Err(DeviceError::Unsupported(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Point both partitions' coherency at their newest indexes. A device
/// without cartridge memory (st) is fine: a reader then scans for them.
pub fn write_coherency(dev: &mut dyn TapeDevice, index_partition: &Coherency, data_partition: &Coherency) -> Result<(), DeviceError> {
    for (partition, coh) in [(1u8, data_partition), (0u8, index_partition)] {
        match dev.write_attribute(partition, ATTR_COHERENCY, &coh.encode()) {
            Ok(()) | Err(DeviceError::Unsupported(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn text_attr(id: u16, format: u8, len: usize, value: &str) -> Vec<u8> {
    let mut d = Vec::with_capacity(5 + len);
    d.extend_from_slice(&id.to_be_bytes());
    d.push(format);
    d.extend_from_slice(&(len as u16).to_be_bytes());
    let mut v = value.as_bytes().to_vec();
    v.resize(len, b' ');
    d.extend_from_slice(&v);
    d
}

/// Application identification and barcode, as `mkltfs` sets them.
pub fn write_identification(dev: &mut dyn TapeDevice, barcode: &str) -> Result<(), DeviceError> {
    let attrs = [
        text_attr(ATTR_APP_VENDOR, 1, 8, "REELFS"),
        text_attr(ATTR_APP_NAME, 1, 32, "reelfs"),
        text_attr(ATTR_APP_VERSION, 1, 8, env!("CARGO_PKG_VERSION")),
        text_attr(ATTR_BARCODE, 1, 32, barcode),
        text_attr(ATTR_APP_FORMAT_VERSION, 1, 16, "2.4.0"),
    ];
    for a in attrs {
        let id = u16::from_be_bytes([a[0], a[1]]);
        match dev.write_attribute(0, id, &a) {
            Ok(()) | Err(DeviceError::Unsupported(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coherency_matches_the_reference_bytes() {
        // attr_1_80c as the reference ltfs left it after an unmount
        // (volume change reference 2, generation 2, index at block 12).
        let reference = hex::decode(concat!(
            "080c0000460800000000000000020000000000000002000000000000000c002b",
            "4c5446530030646630386337342d343562362d346661342d393336632d636565",
            "3561383864663736650001"
        ))
        .unwrap();
        let c = Coherency::decode(&reference).unwrap();
        assert_eq!(
            c,
            Coherency { volume_change_ref: 2, generation: 2, block: 12, volume_uuid: "0df08c74-45b6-4fa4-936c-cee5a88df76e".into() }
        );
        assert_eq!(c.encode(), reference);
    }
}
