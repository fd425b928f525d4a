//! The two labels at the start of each partition: the 80-byte ANSI VOL1
//! label and the LTFS label (XML) that says which partition is which, the
//! block size and the volume UUID (LTFS Format 2.4, section 8).

use super::xml::{self, XmlOut};
use super::{format_err, Result};

pub const VOL1_LEN: usize = 80;

/// The VOL1 label: `VOL1`, the six-character volume serial, `L` (LTFS
/// accessibility), `LTFS` as implementation identifier, label version `4`.
pub fn make_vol1(serial: &str) -> [u8; VOL1_LEN] {
    let mut label = [b' '; VOL1_LEN];
    label[..4].copy_from_slice(b"VOL1");
    let serial = serial.as_bytes();
    let n = serial.len().min(6);
    label[4..4 + n].copy_from_slice(&serial[..n]);
    label[10] = b'L';
    label[24..28].copy_from_slice(b"LTFS");
    label[VOL1_LEN - 1] = b'4';
    label
}

/// The volume serial a VOL1 label carries, or why it is not an LTFS one.
pub fn parse_vol1(record: &[u8]) -> Result<String> {
    if record.len() != VOL1_LEN || !record.starts_with(b"VOL1") {
        return Err(format_err(
            "the first record is not a VOL1 label: this cartridge is not an LTFS volume \
             (format it with `reelfs tape format`)",
        ));
    }
    if record[10] != b'L' || &record[24..28] != b"LTFS" {
        return Err(format_err("the VOL1 label is not an LTFS one (accessibility L, implementation LTFS)"));
    }
    Ok(String::from_utf8_lossy(&record[4..10]).trim_end().to_string())
}

/// The LTFS label of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub creator: String,
    pub format_time: String,
    pub volume_uuid: String,
    /// The partition this copy of the label is on.
    pub location: char,
    pub index_partition: char,
    pub data_partition: char,
    pub block_size: usize,
    pub compression: bool,
}

impl Label {
    pub fn to_xml(&self) -> Vec<u8> {
        let mut x = XmlOut::new();
        x.start("ltfslabel", &[("version", "2.4.0")]);
        x.leaf("creator", &self.creator);
        x.leaf("formattime", &self.format_time);
        x.leaf("volumeuuid", &self.volume_uuid);
        x.start("location", &[]);
        x.leaf("partition", &self.location.to_string());
        x.end("location");
        x.start("partitions", &[]);
        x.leaf("index", &self.index_partition.to_string());
        x.leaf("data", &self.data_partition.to_string());
        x.end("partitions");
        x.leaf("blocksize", &self.block_size.to_string());
        x.leaf("compression", if self.compression { "true" } else { "false" });
        x.end("ltfslabel");
        x.finish()
    }

    pub fn parse(bytes: &[u8]) -> Result<Label> {
        let bad = |why: String| format_err(format!("the LTFS label is invalid: {why}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let root = xml::parse(text).map_err(bad)?;
        if root.name != "ltfslabel" {
            return Err(bad(format!("root element is <{}>, not <ltfslabel>", root.name)));
        }
        let version = root.attr("version").unwrap_or("");
        if !version.starts_with("2.") {
            return Err(bad(format!("label version {version:?}: reelfs reads LTFS 2.x volumes")));
        }
        let field = |path: &[&str]| -> Result<String> {
            let mut el = &root;
            for name in path {
                el = el.child(name).ok_or_else(|| bad(format!("<{}> is missing", path.join("/"))))?;
            }
            Ok(el.text.trim().to_string())
        };
        let partition = |path: &[&str]| -> Result<char> {
            let s = field(path)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_lowercase() => Ok(c),
                _ => Err(bad(format!("<{}> is {s:?}, not a partition letter", path.join("/")))),
            }
        };
        let block_size: usize = field(&["blocksize"])?.parse().map_err(|_| bad("<blocksize> is not a number".into()))?;
        if !(4096..=16 * 1024 * 1024).contains(&block_size) {
            return Err(bad(format!("block size {block_size} is out of range")));
        }
        let label = Label {
            creator: field(&["creator"])?,
            format_time: field(&["formattime"])?,
            volume_uuid: field(&["volumeuuid"])?,
            location: partition(&["location", "partition"])?,
            index_partition: partition(&["partitions", "index"])?,
            data_partition: partition(&["partitions", "data"])?,
            block_size,
            compression: field(&["compression"]).map(|s| s == "true").unwrap_or(false),
        };
        if label.index_partition == label.data_partition {
            return Err(bad("index and data partition are the same".into()));
        }
        Ok(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vol1_is_the_reference_layout() {
        let l = make_vol1("ABC123");
        assert_eq!(&l[..11], b"VOL1ABC123L");
        assert_eq!(&l[24..28], b"LTFS");
        assert_eq!(l[79], b'4');
        assert_eq!(parse_vol1(&l).unwrap(), "ABC123");
        assert!(parse_vol1(b"garbage").is_err());
    }

    #[test]
    fn label_round_trips() {
        let label = Label {
            creator: "reelfs test".into(),
            format_time: "2026-11-29T23:29:22.950520164Z".into(),
            volume_uuid: "0df08c74-45b6-4fa4-936c-cee5a88df76e".into(),
            location: 'b',
            index_partition: 'a',
            data_partition: 'b',
            block_size: 524288,
            compression: false,
        };
        assert_eq!(Label::parse(&label.to_xml()).unwrap(), label);
    }
}
