//! HLS text (RFC 8216) for a ladder of fragmented-MP4 rungs: a master
//! playlist, one media playlist per rung, and range playlists that list only
//! the segments covering an in/out range. Segments are byte ranges of the
//! rung's one file (`EXT-X-MAP` + `EXT-X-BYTERANGE`): nothing is cut or
//! re-encoded, so any static file server (or `file:`) can serve them.

use super::fragments::FragmentIndex;
use super::HlsError;
use std::fmt::Write;

/// Version 7: `EXT-X-MAP` in a media playlist that is not I-frames only
/// needs 6; fMP4 segments are described from 7 on.
const VERSION: u32 = 7;

/// One rendition of the master playlist.
#[derive(Debug, Clone)]
pub struct Variant<'a> {
    /// URI of its media playlist, as written into the master.
    pub uri: String,
    pub index: &'a FragmentIndex,
}

/// Measured bit rates of a rung's segments, in bit/s: the peak (HLS
/// `BANDWIDTH`) and the average (`AVERAGE-BANDWIDTH`). The init segment is
/// fetched once and counts in neither.
pub fn bandwidth(ix: &FragmentIndex) -> (u64, u64) {
    let mut peak = 0f64;
    let (mut bytes, mut ticks) = (0u64, 0u64);
    for f in &ix.fragments {
        bytes += f.len;
        ticks += f.duration;
        let secs = ix.seconds(f.duration);
        if secs > 0.0 {
            peak = peak.max(f.len as f64 * 8.0 / secs);
        }
    }
    let secs = ix.seconds(ticks);
    let avg = if secs > 0.0 { bytes as f64 * 8.0 / secs } else { 0.0 };
    (peak.ceil() as u64, avg.ceil() as u64)
}

/// The master playlist: every rung, lowest bandwidth first (where a player
/// that starts on the first listed rung starts cheaply).
pub fn master(variants: &[Variant]) -> String {
    let mut v: Vec<(&Variant, (u64, u64))> = variants.iter().map(|v| (v, bandwidth(v.index))).collect();
    v.sort_by_key(|(_, bw)| *bw);
    let mut s = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (var, (peak, avg)) in v {
        let ix = var.index;
        let _ = writeln!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},RESOLUTION={}x{},CODECS=\"{}\",FRAME-RATE={:.3}",
            ix.width,
            ix.height,
            ix.codecs.join(","),
            ix.frame_rate()
        );
        let _ = writeln!(s, "{}", var.uri);
    }
    s
}

/// A frame range of the rung's frames (source frame numbers: frame N of a
/// proxy is frame N of the source), end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRange {
    pub first: u64,
    pub end: u64,
}

/// The media playlist of one rung (`range`: only the segments that cover it,
/// starting playback at its first frame). `uri` is the rung's file as the
/// playlist names it.
pub fn media(ix: &FragmentIndex, uri: &str, range: Option<FrameRange>) -> Result<String, HlsError> {
    let total = ix.frames();
    let (lo, hi) = match range {
        None => (0, ix.fragments.len()),
        Some(r) => {
            if r.end <= r.first || r.first >= total {
                return Err(HlsError::Range { first: r.first, end: r.end, frames: total });
            }
            let lo = ix.fragments.iter().position(|f| f.first_frame + f.frames > r.first).unwrap_or(0);
            let hi = ix.fragments.iter().position(|f| f.first_frame >= r.end).unwrap_or(ix.fragments.len());
            (lo, hi.max(lo + 1))
        }
    };
    let segs = &ix.fragments[lo..hi];
    // EXTINF rounded to the nearest integer must not exceed the target.
    let target = segs.iter().map(|f| ix.seconds(f.duration).round() as u64).max().unwrap_or(1).max(1);
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{lo}\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    if segs.iter().all(|f| f.starts_with_sync) {
        s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    if let Some(r) = range {
        // The playlist's timeline starts at its first segment's decode time;
        // a frame is shown its composition offset after its decode slot. The
        // offset is rounded up to the microsecond so it lands inside the
        // in-point frame, never at the end of the one before.
        let first = &segs[0];
        let ticks = ((r.first - first.first_frame) as i128 * i128::from(ix.frame_duration) + i128::from(first.first_cto)).max(0) as u128;
        let micros = (ticks * 1_000_000).div_ceil(u128::from(ix.timescale.max(1)));
        let _ = writeln!(s, "#EXT-X-START:TIME-OFFSET={}.{:06},PRECISE=YES", micros / 1_000_000, micros % 1_000_000);
    }
    let _ = writeln!(s, "#EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"{}@0\"", ix.init_len);
    for f in segs {
        let _ = writeln!(s, "#EXTINF:{:.6},", ix.seconds(f.duration));
        let _ = writeln!(s, "#EXT-X-BYTERANGE:{}@{}", f.len, f.offset);
        let _ = writeln!(s, "{uri}");
    }
    s.push_str("#EXT-X-ENDLIST\n");
    Ok(s)
}
