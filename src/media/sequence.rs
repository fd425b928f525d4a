//! Image sequences (DPX, EXR, TIFF): one file per frame, named
//! `<prefix><frame number>.<ext>` (`A001.0086400.dpx`). A folder's files are
//! grouped by prefix and extension; two or more frames make a sequence, which
//! gets one proxy (not one per frame).
//!
//! A sequence has no single content hash, so its proxies are keyed by a
//! *sequence key*: the BLAKE3 of its ordered (frame number, content hash) list.
//! Copying or branching the folder keeps the key (no re-render); changing,
//! adding or removing any frame changes it (the proxy would be stale).
//!
//! The frame rate and start timecode come from the first frame's header: DPX
//! (SMPTE 268M) film header frame rate at byte 1724, television header time
//! code at 1920 and frame rate at 1940; EXR `timeCode` and `framesPerSecond`
//! attributes. FFmpeg 5.1's decoders read neither.

use crate::archive::Hash;

/// File extensions read as image-sequence frames (lower case).
pub const FRAME_EXTS: [&str; 4] = ["dpx", "exr", "tif", "tiff"];

/// `(prefix, number, ext)` when `name` looks like a sequence frame.
pub fn frame_name(name: &str) -> Option<(&str, u64, &str)> {
    let dot = name.rfind('.')?;
    let (base, ext) = (&name[..dot], &name[dot + 1..]);
    if !FRAME_EXTS.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
        return None;
    }
    let digits = base.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let (prefix, num) = base.split_at(base.len() - digits);
    Some((prefix, num.parse().ok()?, ext))
}

/// One image sequence in a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence<T> {
    pub prefix: String,
    pub ext: String,
    /// Zero padding of the numbers (0: not padded), for the `%0Nd` pattern.
    pub pad: usize,
    /// (frame number, file name, item), ascending by number.
    pub frames: Vec<(u64, String, T)>,
}

impl<T> Sequence<T> {
    pub fn first(&self) -> u64 {
        self.frames.first().map(|f| f.0).unwrap_or(0)
    }
    pub fn last(&self) -> u64 {
        self.frames.last().map(|f| f.0).unwrap_or(0)
    }
    /// Frames the numbering spans (gaps included).
    pub fn span(&self) -> u64 {
        self.last() - self.first() + 1
    }
    /// The name proxies get: the prefix without its trailing separator
    /// (`A001.` -> `A001`), or `sequence` for bare numbers.
    pub fn stem(&self) -> String {
        let s = self.prefix.trim_end_matches(['.', '_', '-', ' ']);
        if s.is_empty() {
            "sequence".to_string()
        } else {
            s.to_string()
        }
    }
    /// The FFmpeg-style pattern, e.g. `A001.%07d.dpx`.
    pub fn pattern(&self) -> String {
        let n = if self.pad > 0 { format!("%0{}d", self.pad) } else { "%d".to_string() };
        format!("{}{n}.{}", self.prefix, self.ext)
    }
    /// Numbers missing between the first and the last frame, as ranges.
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for w in self.frames.windows(2) {
            if w[1].0 > w[0].0 + 1 {
                out.push((w[0].0 + 1, w[1].0 - 1));
            }
        }
        out
    }
}

impl<T> Sequence<T> {
    /// The key the sequence's proxies are stored under, from each frame's
    /// content hash.
    pub fn key_by(&self, hash_of: impl Fn(&T) -> Hash) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"reelfs image sequence v1\n");
        h.update(self.ext.to_ascii_lowercase().as_bytes());
        for (n, _, item) in &self.frames {
            h.update(&n.to_le_bytes());
            h.update(&hash_of(item).0);
        }
        Hash(*h.finalize().as_bytes())
    }
}

impl Sequence<Hash> {
    pub fn key(&self) -> Hash {
        self.key_by(|h| *h)
    }
}

/// Group a folder's files into sequences (two frames or more), each sorted by
/// frame number; files that are not part of one are left out.
pub fn group<T: Clone>(files: impl IntoIterator<Item = (String, T)>) -> Vec<Sequence<T>> {
    let mut by: std::collections::BTreeMap<(String, String), (Sequence<T>, usize, usize)> = Default::default();
    for (name, item) in files {
        let Some((prefix, n, ext)) = frame_name(&name) else { continue };
        let digits = name.len() - prefix.len() - ext.len() - 1;
        let (s, lo, hi) = by
            .entry((prefix.to_string(), ext.to_ascii_lowercase()))
            .or_insert_with(|| (Sequence { prefix: prefix.to_string(), ext: ext.to_string(), pad: 0, frames: Vec::new() }, usize::MAX, 0));
        (*lo, *hi) = ((*lo).min(digits), (*hi).max(digits));
        s.frames.push((n, name, item));
    }
    by.into_values()
        .filter(|(s, _, _)| s.frames.len() >= 2)
        .map(|(mut s, lo, hi)| {
            // Every number written with the same count of digits: zero-padded
            // to that width (`%04d` for 0998..1003 and for 1001..1006 alike).
            s.pad = if lo == hi && lo > 1 { lo } else { 0 };
            s.frames.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            // Two names for one number (A.01.dpx, A.001.dpx): keep the first.
            s.frames.dedup_by_key(|f| f.0);
            s
        })
        .collect()
}

/// What a frame's header says about the sequence.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FrameHeader {
    /// `HH:MM:SS:FF` (`;` before the frames when drop-frame).
    pub timecode: Option<String>,
    /// Frames per second as (numerator, denominator).
    pub rate: Option<(i32, i32)>,
}

/// Standard rates a header's float rate snaps to (23.976 -> 24000/1001).
const RATES: [(i32, i32); 11] =
    [(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48000, 1001), (48, 1), (50, 1), (60000, 1001), (60, 1), (120, 1)];

fn rate_from_f32(v: f32) -> Option<(i32, i32)> {
    if !v.is_finite() {
        return None;
    }
    let v = v as f64;
    // A header value outside any real frame rate is garbage, not a rate.
    if !(1.0..=300.0).contains(&v) {
        return None;
    }
    for (n, d) in RATES {
        if (n as f64 / d as f64 - v).abs() < 0.005 {
            return Some((n, d));
        }
    }
    Some(((v * 1000.0).round() as i32, 1000))
}

/// A SMPTE 12M BCD time value (`0xHHMMSSFF`, drop-frame flag in bit 6 of the
/// frames byte) as a label; None when undefined or not valid BCD.
fn bcd_timecode(v: u32) -> Option<String> {
    if v == 0xFFFF_FFFF {
        return None;
    }
    let bcd = |b: u32, mask: u32| -> Option<u32> {
        let b = b & mask;
        let (t, u) = (b >> 4, b & 0xF);
        (u <= 9 && t <= 9).then_some(t * 10 + u)
    };
    let (hh, mm, ss) = (bcd(v >> 24, 0x3F)?, bcd(v >> 16, 0x7F)?, bcd(v >> 8, 0x7F)?);
    let ff = bcd(v, 0x3F)?;
    let drop = v & 0x40 != 0;
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(format!("{hh:02}:{mm:02}:{ss:02}{}{ff:02}", if drop { ';' } else { ':' }))
}

/// Read the header facts of one frame file (its first bytes suffice: 2 KiB for
/// DPX, the attribute header for EXR). Unknown formats give nothing.
pub fn frame_header(ext: &str, bytes: &[u8]) -> FrameHeader {
    match ext.to_ascii_lowercase().as_str() {
        "dpx" => dpx_header(bytes),
        "exr" => exr_header(bytes),
        _ => FrameHeader::default(),
    }
}

fn dpx_header(b: &[u8]) -> FrameHeader {
    let mut out = FrameHeader::default();
    let big = match b.get(0..4) {
        Some(b"SDPX") => true,
        Some(b"XPDS") => false,
        _ => return out,
    };
    let u32_at = |o: usize| -> Option<u32> {
        let a: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if big { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    };
    let f32_at = |o: usize| u32_at(o).filter(|v| *v != 0xFFFF_FFFF).map(f32::from_bits);
    // The industry headers exist only when the image data starts after them:
    // writers that omit them (FFmpeg's) put pixels at these offsets.
    let data_offset = u32_at(4).unwrap_or(0) as usize;
    let (film, tv) = (data_offset >= 1920, data_offset >= 2048);
    if tv {
        out.timecode = u32_at(1920).and_then(bcd_timecode);
    }
    // The television header's temporal rate, else the film header's.
    out.rate =
        tv.then(|| f32_at(1940).and_then(rate_from_f32)).flatten().or_else(|| film.then(|| f32_at(1724).and_then(rate_from_f32)).flatten());
    out
}

fn exr_header(b: &[u8]) -> FrameHeader {
    let mut out = FrameHeader::default();
    if b.get(0..4) != Some(&[0x76, 0x2f, 0x31, 0x01][..]) {
        return out;
    }
    let mut p = 8; // magic + version/flags
    let cstr = |p: &mut usize| -> Option<String> {
        let end = b.get(*p..)?.iter().position(|&c| c == 0)?;
        let s = String::from_utf8_lossy(&b[*p..*p + end]).to_string();
        *p += end + 1;
        Some(s)
    };
    loop {
        let Some(name) = cstr(&mut p) else { return out };
        if name.is_empty() {
            return out; // end of header
        }
        let Some(ty) = cstr(&mut p) else { return out };
        let Some(size) = b.get(p..p + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes) else { return out };
        p += 4;
        let Some(data) = b.get(p..p + size as usize) else { return out };
        p += size as usize;
        match (name.as_str(), ty.as_str()) {
            ("timeCode", "timecode") if data.len() >= 4 => {
                out.timecode = bcd_timecode(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
            }
            ("framesPerSecond", "rational") if data.len() >= 8 => {
                let n = i32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                let d = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
                if n > 0 && d > 0 && d <= i32::MAX as u32 {
                    out.rate = Some((n, d as i32));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_names_split_into_prefix_number_ext() {
        assert_eq!(frame_name("A001.0086400.dpx"), Some(("A001.", 86400, "dpx")));
        assert_eq!(frame_name("shot_v2_1001.EXR"), Some(("shot_v2_", 1001, "EXR")));
        assert_eq!(frame_name("0001.tif"), Some(("", 1, "tif")));
        assert_eq!(frame_name("clip.mov"), None);
        assert_eq!(frame_name("notes.dpx"), None);
    }

    #[test]
    fn grouping_keeps_sequences_of_two_or_more() {
        let files = ["A.0001.dpx", "A.0003.dpx", "A.0002.dpx", "B_10.exr", "clip.mov", "C.0001.dpx", "C.0002.exr"];
        let seqs = group(files.iter().map(|f| (f.to_string(), ())));
        assert_eq!(seqs.len(), 1);
        let s = &seqs[0];
        assert_eq!((s.first(), s.last(), s.span()), (1, 3, 3));
        assert_eq!(s.stem(), "A");
        assert_eq!(s.pattern(), "A.%04d.dpx");
        assert!(s.gaps().is_empty());
        let gap = group(["x_001.dpx", "x_002.dpx", "x_006.dpx"].iter().map(|f| (f.to_string(), ())));
        assert_eq!(gap[0].gaps(), vec![(3, 5)]);
        assert_eq!(gap[0].pattern(), "x_%03d.dpx");
        let wide = group(["S.1001.dpx", "S.1002.dpx"].iter().map(|f| (f.to_string(), ())));
        assert_eq!(wide[0].pattern(), "S.%04d.dpx");
        let unpadded = group(["f9.tif", "f10.tif", "f11.tif"].iter().map(|f| (f.to_string(), ())));
        assert_eq!(unpadded[0].pattern(), "f%d.tif");
        assert_eq!(gap[0].stem(), "x");
    }

    #[test]
    fn key_follows_content_and_numbering() {
        let mk = |names: &[(&str, u8)]| group(names.iter().map(|(n, b)| (n.to_string(), Hash([*b; 32]))))[0].key();
        let a = mk(&[("A.1.dpx", 1), ("A.2.dpx", 2)]);
        assert_eq!(a, mk(&[("A.2.dpx", 2), ("A.1.dpx", 1)]));
        assert_ne!(a, mk(&[("A.1.dpx", 1), ("A.2.dpx", 3)]));
        assert_ne!(a, mk(&[("A.1.dpx", 1), ("A.3.dpx", 2)]));
    }

    #[test]
    fn bcd_timecodes() {
        assert_eq!(bcd_timecode(0x0100_0000).as_deref(), Some("01:00:00:00"));
        assert_eq!(bcd_timecode(0x2359_5923).as_deref(), Some("23:59:59:23"));
        assert_eq!(bcd_timecode(0x0009_5942).as_deref(), Some("00:09:59;02"));
        assert_eq!(bcd_timecode(0xFFFF_FFFF), None);
        assert_eq!(bcd_timecode(0x0A00_0000), None);
    }

    #[test]
    fn dpx_header_both_byte_orders() {
        for big in [true, false] {
            let mut b = vec![0xFFu8; 2048];
            b[0..4].copy_from_slice(if big { b"SDPX" } else { b"XPDS" });
            let put = |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&if big { v.to_be_bytes() } else { v.to_le_bytes() });
            put(&mut b, 4, 2048); // image data after the industry headers
            put(&mut b, 1920, 0x0100_0012);
            put(&mut b, 1940, 23.976f32.to_bits());
            let h = frame_header("dpx", &b);
            assert_eq!(h.timecode.as_deref(), Some("01:00:00:12"));
            assert_eq!(h.rate, Some((24000, 1001)));
            // Only the film header's rate.
            put(&mut b, 1940, 0xFFFF_FFFF);
            put(&mut b, 1724, 25.0f32.to_bits());
            assert_eq!(frame_header("dpx", &b).rate, Some((25, 1)));
        }
        // No industry header (image data at 1664, as FFmpeg writes it): the
        // bytes at 1920/1940 are pixels, never a timecode or a rate.
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(b"XPDS");
        b[4..8].copy_from_slice(&1664u32.to_le_bytes());
        b[1920..1924].copy_from_slice(&0x0100_0000u32.to_le_bytes());
        b[1940..1944].copy_from_slice(&25.0f32.to_bits().to_le_bytes());
        assert_eq!(frame_header("dpx", &b), FrameHeader::default());
        assert_eq!(frame_header("dpx", b"nope"), FrameHeader::default());
        assert_eq!(frame_header("dpx", b"SDPX"), FrameHeader::default());
    }

    #[test]
    fn exr_header_attributes() {
        let mut b = vec![0x76, 0x2f, 0x31, 0x01, 2, 0, 0, 0];
        let mut attr = |name: &str, ty: &str, data: &[u8]| {
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(ty.as_bytes());
            b.push(0);
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
        };
        attr("compression", "compression", &[0]);
        let mut tc = 0x0200_0003u32.to_le_bytes().to_vec();
        tc.extend_from_slice(&[0; 4]);
        attr("timeCode", "timecode", &tc);
        let mut fps = 25i32.to_le_bytes().to_vec();
        fps.extend_from_slice(&1u32.to_le_bytes());
        attr("framesPerSecond", "rational", &fps);
        b.push(0);
        let h = frame_header("exr", &b);
        assert_eq!(h.timecode.as_deref(), Some("02:00:00:03"));
        assert_eq!(h.rate, Some((25, 1)));
        // Truncated in the middle of an attribute: what was read so far.
        assert_eq!(frame_header("exr", &b[..40]).timecode, None);
    }
}
