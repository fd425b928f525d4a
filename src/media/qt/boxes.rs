//! Box (atom) header parsing over in-memory bytes and over a [`ReadAt`] source, plus
//! the small big-endian writer the `moov` builder uses.
//!
//! Every length read from the file is checked against the bytes actually present before
//! anything is sliced or allocated, so damaged input yields a [`QtError`], never a panic.

use super::{QtError, ReadAt};

/// A box located inside a byte buffer: `start..end` is the whole box, `body` starts after
/// the (8- or 16-byte) header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxRef {
    pub typ: [u8; 4],
    pub start: usize,
    pub body: usize,
    pub end: usize,
}

pub(crate) fn fourcc(t: &[u8; 4]) -> String {
    t.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' }).collect()
}

pub(crate) fn be16(d: &[u8], at: usize) -> Result<u16, QtError> {
    d.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]])).ok_or_else(|| QtError::Malformed(format!("field at {at} past end of box")))
}
pub(crate) fn be32(d: &[u8], at: usize) -> Result<u32, QtError> {
    d.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| QtError::Malformed(format!("field at {at} past end of box")))
}
pub(crate) fn be64(d: &[u8], at: usize) -> Result<u64, QtError> {
    d.get(at..at + 8)
        .map(|s| {
            let mut b = [0u8; 8];
            b.copy_from_slice(s);
            u64::from_be_bytes(b)
        })
        .ok_or_else(|| QtError::Malformed(format!("field at {at} past end of box")))
}

/// Splits `d[from..to]` into its child boxes. A child that overruns its parent is an error:
/// inside `moov` there is no legitimate reason for it.
pub(crate) fn children(d: &[u8], from: usize, to: usize) -> Result<Vec<BoxRef>, QtError> {
    let mut out = Vec::new();
    let mut off = from;
    let to = to.min(d.len());
    while off < to {
        if to - off < 8 {
            // QuickTime allows a 32-bit zero terminator at the end of some containers.
            if to - off == 4 && be32(d, off)? == 0 {
                break;
            }
            return Err(QtError::Malformed(format!("{} stray bytes at offset {off} inside a container", to - off)));
        }
        let size32 = be32(d, off)? as u64;
        let typ = [d[off + 4], d[off + 5], d[off + 6], d[off + 7]];
        let (size, hdr) = match size32 {
            1 => (be64(d, off + 8)?, 16u64),
            0 => ((to - off) as u64, 8),
            s => (s, 8),
        };
        if size < hdr || size > (to - off) as u64 {
            return Err(QtError::Malformed(format!(
                "box '{}' at offset {off} declares {size} bytes but its parent has {} left",
                fourcc(&typ),
                to - off
            )));
        }
        out.push(BoxRef { typ, start: off, body: off + hdr as usize, end: off + size as usize });
        off += size as usize;
    }
    Ok(out)
}

pub(crate) fn find<'a>(kids: &'a [BoxRef], typ: &[u8; 4]) -> Option<&'a BoxRef> {
    kids.iter().find(|b| &b.typ == typ)
}

/// Like [`find`] but a missing box is a `Malformed` error naming the parent.
pub(crate) fn need<'a>(kids: &'a [BoxRef], typ: &[u8; 4], parent: &str) -> Result<&'a BoxRef, QtError> {
    find(kids, typ).ok_or_else(|| QtError::Malformed(format!("'{parent}' has no '{}' box", fourcc(typ))))
}

/// A top-level box of the source file (not loaded in memory).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopBox {
    pub typ: [u8; 4],
    pub offset: u64,
    pub header: u64,
    /// Declared size (may exceed the file when truncated).
    pub size: u64,
}

/// Top-level types we accept as evidence that a file is QuickTime/ISO-BMFF at all. The
/// first box must be one of these; later unknown boxes are tolerated.
const KNOWN_TOP: &[&[u8; 4]] = &[
    b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid", b"junk", b"PICT", b"meta", b"moof", b"mfra", b"styp", b"sidx",
    b"prfl", b"pdin", b"udta",
];

pub(crate) fn read_exact_at(src: &dyn ReadAt, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
    crate::archive::read_at::read_exact_at(src, off, buf)
}

/// Walks the top-level boxes. Returns the boxes that were complete plus, if the walk hit
/// damage, a description of it (so callers can decide whether the damage matters).
pub(crate) fn walk_top(src: &dyn ReadAt) -> Result<(Vec<TopBox>, Option<String>), QtError> {
    let len = src.len();
    let mut out: Vec<TopBox> = Vec::new();
    if len == 0 {
        return Err(QtError::NotQuickTime("file is empty".into()));
    }
    let mut off = 0u64;
    while off < len {
        if len - off < 8 {
            let msg = format!("{} trailing bytes at offset {off} are too short for a box header (file ends at {len})", len - off);
            if out.is_empty() {
                return Err(QtError::NotQuickTime("file is shorter than one box header".into()));
            }
            return Ok((out, Some(msg)));
        }
        let mut h = [0u8; 16];
        let hl = if len - off >= 16 { 16 } else { 8 };
        read_exact_at(src, off, &mut h[..hl])?;
        let typ = [h[4], h[5], h[6], h[7]];
        if out.is_empty() && !KNOWN_TOP.iter().any(|k| **k == typ) {
            return Err(QtError::NotQuickTime(format!("first box type '{}' is not a QuickTime/MP4 box", fourcc(&typ))));
        }
        if !typ.iter().all(|b| (0x20..0x7f).contains(b) || *b == 0xa9) {
            let msg = format!("garbage box header at offset {off} (file ends at {len})");
            return Ok((out, Some(msg)));
        }
        let s32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let (size, header) = match s32 {
            1 => {
                if hl < 16 {
                    let msg = format!("box '{}' at offset {off} has a 64-bit size cut off by the end of the file at {len}", fourcc(&typ));
                    return Ok((out, Some(msg)));
                }
                (u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]), 16)
            }
            0 => (len - off, 8),
            s => (s, 8),
        };
        if size < header {
            let msg = format!("box '{}' at offset {off} declares an impossible size {size}", fourcc(&typ));
            return Ok((out, Some(msg)));
        }
        let b = TopBox { typ, offset: off, header, size };
        if size > len - off {
            let msg = format!("box '{}' at offset {off} declares {size} bytes but the file ends at {len}", fourcc(&typ));
            return Ok((out, Some(msg)));
        }
        out.push(b);
        off += size;
    }
    Ok((out, None))
}

/// Big-endian box writer. Boxes are opened with [`W::open`] and their size is patched by
/// [`W::close`], so nested builders never need to precompute lengths.
#[derive(Default)]
pub(crate) struct W {
    pub buf: Vec<u8>,
    stack: Vec<usize>,
}

impl W {
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub fn open(&mut self, typ: &[u8; 4]) -> &mut Self {
        self.stack.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(typ);
        self
    }
    /// Full box: header plus version and 24-bit flags.
    pub fn open_full(&mut self, typ: &[u8; 4], version: u8, flags: u32) -> &mut Self {
        self.open(typ);
        // Equivalent mutant (scripts/mutants): `|` -> `^` gives the same word, because the
        // version sits above bit 24 and the masked flags below it, so no bit is in both.
        self.u32(((version as u32) << 24) | (flags & 0x00ff_ffff))
    }
    pub fn close(&mut self) -> Result<(), QtError> {
        let at = self.stack.pop().ok_or_else(|| QtError::Malformed("internal: unbalanced box writer".into()))?;
        let size = self.buf.len() - at;
        let size = u32::try_from(size).map_err(|_| QtError::Unsupported(format!("a rebuilt box would be {size} bytes (over 4 GiB)")))?;
        self.buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }
}

// Killed by scripts/mutants: `children` had no test of its own; the end-to-end tests in
// tests.rs only ever walk well-formed ffmpeg output.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn spans(d: &[u8]) -> Result<Vec<(String, usize, usize, usize)>, QtError> {
        Ok(children(d, 0, d.len())?.into_iter().map(|b| (fourcc(&b.typ), b.start, b.body, b.end)).collect())
    }

    #[test]
    fn children_of_a_container() {
        let mut d = Vec::new();
        d.extend_from_slice(b"\0\0\0\x08free");
        d.extend_from_slice(b"\0\0\0\x0cskip1234");
        // A 64-bit size: size field 1, then the size (24) after the type.
        d.extend_from_slice(b"\0\0\0\x01wide\0\0\0\0\0\0\0\x18abcdefgh");
        assert_eq!(spans(&d).unwrap(), [("free".to_string(), 0, 8, 8), ("skip".to_string(), 8, 16, 20), ("wide".to_string(), 20, 36, 44)]);
        // A 32-bit zero terminator ends a container; four other bytes are an error.
        let mut t = d.clone();
        t.extend_from_slice(&[0; 4]);
        assert_eq!(spans(&t).unwrap().len(), 3);
        let mut bad = d.clone();
        bad.extend_from_slice(b"\0\0\0\x01");
        assert!(spans(&bad).is_err());
        let mut short = d.clone();
        short.extend_from_slice(&[0; 3]);
        assert!(spans(&short).is_err());
        // An empty box can end a container.
        assert_eq!(spans(b"\0\0\0\x08free").unwrap(), [("free".to_string(), 0, 8, 8)]);
        // Size 0 runs to the end of the parent; a box larger than its parent is an error.
        assert_eq!(spans(b"\0\0\0\0mdat1234").unwrap(), [("mdat".to_string(), 0, 8, 12)]);
        assert_eq!(spans(b"\0\0\0\x08free\0\0\0\0mdat1234").unwrap(), [("free".to_string(), 0, 8, 8), ("mdat".to_string(), 8, 16, 20)]);
        assert!(spans(b"\0\0\0\x10mdat1234").is_err());
        assert!(spans(b"\0\0\0\x04mdat").is_err());
        assert!(spans(b"\0\0\0\x08free\0\0\0\x10mdat1234").is_err());
        // A 64-bit size smaller than its own 16-byte header.
        assert!(spans(b"\0\0\0\x01wide\0\0\0\0\0\0\0\x08").is_err());
    }
    /// A source that hands out at most 3 bytes per read, as a network or FUSE-backed
    /// source may: callers must keep reading from where the last read stopped. It also
    /// fails the test on the 1000th read, so a walk that stops advancing fails at once
    /// instead of looping (and allocating) until a timeout.
    struct Dribble(Vec<u8>, AtomicUsize);
    impl Dribble {
        fn new(d: Vec<u8>) -> Self {
            Dribble(d, AtomicUsize::new(0))
        }
    }
    impl ReadAt for Dribble {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let reads = self.1.fetch_add(1, Ordering::Relaxed);
            assert!(reads < 1000, "the walk keeps reading: it is not advancing");
            let n = buf.len().min(3);
            self.0.read_at(offset, &mut buf[..n])
        }
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
    }

    #[test]
    fn read_exact_at_continues_after_short_reads() {
        let src = Dribble::new((0u8..20).collect());
        let mut buf = [0u8; 10];
        read_exact_at(&src, 5, &mut buf).unwrap();
        assert_eq!(buf, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        let mut past = [0u8; 4];
        let err = read_exact_at(&src, 18, &mut past).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    const FTYP: &[u8] = b"\0\0\0\x10ftypqt  \0\0\0\0";

    /// (type, offset, header, size) of each complete box, and the damage message.
    fn walk(rest: &[u8]) -> (Vec<(String, u64, u64, u64)>, Option<String>) {
        let mut file = FTYP.to_vec();
        file.extend_from_slice(rest);
        let (boxes, damage) = walk_top(&Dribble::new(file)).unwrap();
        let boxes = boxes.iter().map(|b| (fourcc(&b.typ), b.offset, b.header, b.size)).collect();
        (boxes, damage)
    }

    fn ftyp() -> (String, u64, u64, u64) {
        ("ftyp".to_string(), 0, 8, 16)
    }

    fn damage(rest: &[u8]) -> String {
        let (boxes, damage) = walk(rest);
        assert_eq!(boxes, [ftyp()], "only the ftyp box is complete");
        damage.expect("damage is reported")
    }

    // Killed by scripts/mutants: the end-to-end tests only walk files ffmpeg wrote, whose
    // boxes are never 8 bytes long at the end, size 0, or damaged after the first box.
    #[test]
    fn walk_top_boxes_and_damage_after_the_first() {
        // A box of exactly one header (8 bytes) can end the file.
        assert_eq!(walk(b"\0\0\0\x08free"), (vec![ftyp(), ("free".into(), 16, 8, 8)], None));
        // Size 0 runs to the end of the file.
        assert_eq!(walk(b"\0\0\0\0mdat12345678"), (vec![ftyp(), ("mdat".into(), 16, 8, 16)], None));
        // A 64-bit size.
        assert_eq!(walk(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x1812345678"), (vec![ftyp(), ("mdat".into(), 16, 16, 24)], None));
        // iTunes-style types start with the byte 0xa9 ('©').
        assert_eq!(walk(b"\0\0\0\x08\xa9nam"), (vec![ftyp(), ("?nam".into(), 16, 8, 8)], None));

        let m = damage(b"\0\0\0\x08");
        assert!(m.starts_with("4 trailing bytes at offset 16"), "{m}");
        let m = damage(b"\0\0\0\x08\x01abc");
        assert!(m.starts_with("garbage box header at offset 16"), "{m}");
        let m = damage(b"\0\0\0\x01mdat\0\0\0\0");
        assert!(m.contains("has a 64-bit size cut off"), "{m}");
        let m = damage(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x08");
        assert!(m.contains("declares an impossible size 8"), "{m}");
        // Declares 40 bytes where 16 are left (the file is 32 bytes long).
        let m = damage(b"\0\0\0\x28mdat12345678");
        assert!(m.contains("declares 40 bytes but the file ends at 32"), "{m}");
    }

    #[test]
    fn walk_top_rejects_what_is_not_quicktime() {
        let err = |d: &[u8]| walk_top(&Dribble::new(d.to_vec())).unwrap_err().to_string();
        assert!(err(b"").contains("file is empty"));
        assert!(err(b"\0\0\0\x08fre").contains("shorter than one box header"));
        assert!(err(b"\0\0\0\x08RIFF").contains("first box type 'RIFF'"));
    }

    #[test]
    fn writer_sizes_nested_boxes_and_packs_full_box_headers() {
        let mut w = W::default();
        w.open(b"edts");
        // Flags beyond 24 bits are dropped rather than spilling into the version byte.
        w.open_full(b"elst", 1, 0xff00_0007).u32(1).u64(5).i64(-2).i32(-1).bytes(b"xy");
        w.close().unwrap();
        w.close().unwrap();
        let mut want = b"\0\0\0\x2eedts\0\0\0\x26elst\x01\0\0\x07\0\0\0\x01".to_vec();
        want.extend_from_slice(&5u64.to_be_bytes());
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(b"xy");
        assert_eq!(w.buf, want);
        assert!(w.close().is_err(), "a close without an open is an error");
    }
}
