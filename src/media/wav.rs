//! BWF/WAV slices: a virtual WAV whose header is new (fmt and bext copied, bext
//! time_reference moved to the in point) and whose data chunk is a byte range
//! of the original, read in place.

use super::qt::{self, ReadAt, Segment, VirtualFile};
use crate::timecode::{FrameRate, Timecode};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct WavLayout {
    pub fmt: Vec<u8>,
    pub bext: Option<Vec<u8>>,
    pub data_offset: u64,
    pub data_len: u64,
    pub block_align: u64,
    pub sample_rate: u32,
    /// The iXML chunk (sound recorders' metadata: timecode rate, scene, take), if any.
    pub ixml: Option<Vec<u8>>,
}

/// Offset of TimeReferenceLow in the bext chunk (EBU Tech 3285): Description 256,
/// Originator 32, OriginatorReference 32, OriginationDate 10, OriginationTime 8.
const BEXT_TIME_REFERENCE: usize = 338;

fn read_exact(src: &dyn ReadAt, off: u64, len: usize) -> Result<Vec<u8>, String> {
    if off + len as u64 > src.len() {
        return Err(format!("WAV truncated: needs bytes {off}..{} but the file has {}", off + len as u64, src.len()));
    }
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = src.read_at(off + done as u64, &mut buf[done..]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("WAV truncated".into());
        }
        done += n;
    }
    Ok(buf)
}

pub fn parse(src: &dyn ReadAt) -> Result<WavLayout, String> {
    let hdr = read_exact(src, 0, 12)?;
    if &hdr[0..4] != b"RIFF" || &hdr[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let (mut fmt, mut bext, mut data, mut ixml) = (None, None, None, None);
    let mut pos = 12u64;
    // Chunk sizes come from the file: bound every read by the file length.
    while pos + 8 <= src.len() {
        let ch = read_exact(src, pos, 8)?;
        let size = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]) as u64;
        let body = pos + 8;
        match &ch[0..4] {
            b"fmt " if size <= 1 << 16 => fmt = Some(read_exact(src, body, size as usize)?),
            b"bext" if size <= 1 << 20 => bext = Some(read_exact(src, body, size as usize)?),
            // Recorders write iXML before or after the audio; an unreadable one is
            // ignored (it only refines the timecode rate), never a reason to refuse.
            b"iXML" if size <= 1 << 20 => ixml = read_exact(src, body, size as usize).ok(),
            b"data" if data.is_none() => {
                data = Some((body, size.min(src.len().saturating_sub(body))));
            }
            _ => {}
        }
        pos = body + size + (size & 1);
    }
    let fmt = fmt.ok_or("WAV has no fmt chunk")?;
    if fmt.len() < 16 {
        return Err("WAV fmt chunk too short".into());
    }
    let (data_offset, data_len) = data.ok_or("WAV has no data chunk")?;
    let sample_rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let block_align = u16::from_le_bytes([fmt[12], fmt[13]]) as u64;
    if block_align == 0 || sample_rate == 0 {
        return Err("WAV fmt has a zero block align or sample rate".into());
    }
    Ok(WavLayout { fmt, bext, data_offset, data_len, block_align, sample_rate, ixml })
}

/// The timecode rate an iXML chunk declares, as sound recorders write it:
/// `<SPEED><TIMECODE_RATE>24000/1001</TIMECODE_RATE><TIMECODE_FLAG>NDF</TIMECODE_FLAG>`.
/// Returns (numerator, denominator, drop frame); `None` when absent or not a ratio.
pub fn ixml_timecode_rate(xml: &[u8]) -> Option<(u32, u32, bool)> {
    let text = String::from_utf8_lossy(xml);
    let field = |tag: &str| -> Option<String> {
        let open = format!("<{tag}>");
        let at = text.find(&open)? + open.len();
        let end = text[at..].find('<')? + at;
        Some(text[at..end].trim().to_string())
    };
    let rate = field("TIMECODE_RATE")?;
    let (n, d) = match rate.split_once('/') {
        Some((n, d)) => (n.trim().parse().ok()?, d.trim().parse().ok()?),
        None => (rate.parse().ok()?, 1),
    };
    if n == 0 || d == 0 {
        return None;
    }
    let df = field("TIMECODE_FLAG").is_some_and(|f| f.eq_ignore_ascii_case("DF"));
    Some((n, d, df))
}

impl WavLayout {
    pub fn samples(&self) -> u64 {
        self.data_len / self.block_align
    }
    pub fn time_reference(&self) -> Option<u64> {
        let b = self.bext.as_ref()?;
        let lo = u32::from_le_bytes(b.get(BEXT_TIME_REFERENCE..BEXT_TIME_REFERENCE + 4)?.try_into().ok()?) as u64;
        let hi = u32::from_le_bytes(b.get(BEXT_TIME_REFERENCE + 4..BEXT_TIME_REFERENCE + 8)?.try_into().ok()?) as u64;
        Some(hi << 32 | lo)
    }

    /// The virtual WAV for samples [s0, s1) of the original.
    pub fn slice(&self, s0: u64, s1: u64) -> VirtualFile {
        self.slice_at(s0, s1, None)
    }

    /// Like [`WavLayout::slice`], with the bext `time_reference` of the slice given
    /// (samples since midnight of its first sample: a start timecode the user recorded)
    /// instead of the original's moved to the in point.
    pub fn slice_at(&self, s0: u64, s1: u64, time_reference: Option<u64>) -> VirtualFile {
        let data_len = (s1 - s0) * self.block_align;
        let mut chunks = Vec::new();
        let push = |out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]| {
            out.extend_from_slice(id);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(body);
            if body.len() % 2 == 1 {
                out.push(0);
            }
        };
        push(&mut chunks, b"fmt ", &self.fmt);
        if let Some(b) = &self.bext {
            let mut b = b.clone();
            if b.len() >= BEXT_TIME_REFERENCE + 8 {
                let tr = time_reference.unwrap_or_else(|| self.time_reference().unwrap_or(0) + s0);
                b[BEXT_TIME_REFERENCE..BEXT_TIME_REFERENCE + 4].copy_from_slice(&(tr as u32).to_le_bytes());
                b[BEXT_TIME_REFERENCE + 4..BEXT_TIME_REFERENCE + 8].copy_from_slice(&((tr >> 32) as u32).to_le_bytes());
            }
            push(&mut chunks, b"bext", &b);
        }
        chunks.extend_from_slice(b"data");
        chunks.extend_from_slice(&(data_len.min(u32::MAX as u64) as u32).to_le_bytes());
        let riff_size = 4 + chunks.len() as u64 + data_len + (data_len & 1);
        let mut head = Vec::with_capacity(12 + chunks.len());
        head.extend_from_slice(b"RIFF");
        head.extend_from_slice(&(riff_size.min(u32::MAX as u64) as u32).to_le_bytes());
        head.extend_from_slice(b"WAVE");
        head.extend_from_slice(&chunks);
        let mut segments = vec![
            Segment::Inline(Arc::from(head.into_boxed_slice())),
            Segment::Source { offset: self.data_offset + s0 * self.block_align, len: data_len },
        ];
        if data_len & 1 == 1 {
            segments.push(Segment::Inline(Arc::from(vec![0u8].into_boxed_slice())));
        }
        let len = segments.iter().map(|s| s.len()).sum();
        VirtualFile { segments, len }
    }
}

/// Frames in 24 hours of timecode labels at `rate`.
fn frames_per_day(rate: FrameRate) -> i64 {
    qt::frames_per_day(rate.nominal_fps() as u8, rate.is_drop_frame()) as i64
}

/// A BWF `time_reference` (samples since midnight) as a timecode at `rate`, wrapped at
/// 24 hours as every NLE does: recorders that run past midnight, or write garbage, must
/// still give a time of day, not `4270079646:41:31:07`.
pub fn bwf_timecode(time_reference: u64, sample_rate: u64, rate: FrameRate) -> Timecode {
    let (n, d) = rate.num_den();
    let frames = time_reference as u128 * u128::from(n) / (u128::from(sample_rate.max(1)) * u128::from(d));
    Timecode::from_frames((frames % frames_per_day(rate) as u128) as i64, rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(samples: u32, tr: u64) -> Vec<u8> {
        let mut fmt = vec![];
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&2u16.to_le_bytes());
        fmt.extend_from_slice(&48000u32.to_le_bytes());
        fmt.extend_from_slice(&(48000u32 * 6).to_le_bytes());
        fmt.extend_from_slice(&6u16.to_le_bytes());
        fmt.extend_from_slice(&24u16.to_le_bytes());
        let mut bext = vec![0u8; 602];
        bext[338..342].copy_from_slice(&(tr as u32).to_le_bytes());
        let data: Vec<u8> = (0..samples * 6).map(|i| i as u8).collect();
        let mut body = b"WAVE".to_vec();
        for (id, b) in [(b"fmt ", &fmt), (b"bext", &bext), (b"data", &data)] {
            body.extend_from_slice(id);
            body.extend_from_slice(&(b.len() as u32).to_le_bytes());
            body.extend_from_slice(b);
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn slice_moves_time_reference_and_keeps_samples() {
        let src = wav(1000, 172_800_000);
        let l = parse(&src).unwrap();
        assert_eq!(l.samples(), 1000);
        assert_eq!(l.time_reference(), Some(172_800_000));
        let vf = l.slice(100, 300);
        let mut out = vec![0u8; vf.len as usize];
        vf.read_at(&src, 0, &mut out).unwrap();
        let l2 = parse(&out).unwrap();
        assert_eq!(l2.samples(), 200);
        assert_eq!(l2.time_reference(), Some(172_800_100));
        let d = l2.data_offset as usize;
        assert_eq!(&out[d..d + 1200], &src[l.data_offset as usize + 600..l.data_offset as usize + 1800]);
    }

    #[test]
    fn ixml_rate_as_recorders_write_it() {
        let x = b"<?xml version=\"1.0\"?><BWFXML><SPEED><MASTER_SPEED>24000/1001</MASTER_SPEED>\
<TIMECODE_RATE>24000/1001</TIMECODE_RATE><TIMECODE_FLAG>NDF</TIMECODE_FLAG></SPEED></BWFXML>";
        assert_eq!(ixml_timecode_rate(x), Some((24000, 1001, false)));
        let x = b"<BWFXML><SPEED><TIMECODE_RATE>30000/1001</TIMECODE_RATE><TIMECODE_FLAG>DF</TIMECODE_FLAG></SPEED></BWFXML>";
        assert_eq!(ixml_timecode_rate(x), Some((30000, 1001, true)));
        assert_eq!(ixml_timecode_rate(b"<TIMECODE_RATE>25</TIMECODE_RATE>"), Some((25, 1, false)));
        assert_eq!(ixml_timecode_rate(b"<TIMECODE_RATE>0/0</TIMECODE_RATE>"), None);
        assert_eq!(ixml_timecode_rate(b"<BWFXML></BWFXML>"), None);
        assert_eq!(ixml_timecode_rate(b"\xff\xfe<TIMECODE_RATE>"), None);
    }

    #[test]
    fn ixml_chunk_after_the_audio_is_found() {
        let mut w = wav(10, 0);
        let x = b"<TIMECODE_RATE>48/1</TIMECODE_RATE>";
        w.extend_from_slice(b"iXML");
        w.extend_from_slice(&(x.len() as u32).to_le_bytes());
        w.extend_from_slice(x);
        let l = parse(&w).unwrap();
        assert_eq!(l.samples(), 10);
        assert_eq!(ixml_timecode_rate(l.ixml.as_deref().unwrap()), Some((48, 1, false)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(&b"RIFF\x04\x00\x00\x00WAVE".to_vec()).is_err());
        assert!(parse(&b"hello".to_vec()).is_err());
        let mut w = wav(10, 0);
        w.truncate(50);
        assert!(parse(&w).is_err());
    }
}
