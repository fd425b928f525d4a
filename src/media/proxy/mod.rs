//! The proxy ladder: one decode of the source feeds every rung.
//!
//! Each decoded picture is scaled once per rung (or passed through untouched when
//! the rung wants the source's size and pixel format) and encoded:
//!
//! - thumb: a JPEG poster frame 320 px wide, a third of the way in (the first
//!   frame from there on that is not black);
//! - preview: H.264 in fragmented MP4 (`frag_keyframe+empty_moov+default_base_moof`,
//!   so it plays from its first bytes), fitting 960x540 with the source's aspect,
//!   a keyframe every ~2 s and nothing else (fixed GOP: a later HLS cut needs no
//!   re-encode), AAC stereo from the first audio track;
//! - preview-low / preview-high: the same preview (same 2 s keyframes, so
//!   the three cut into segments at the same frames and an HLS player can
//!   switch between them at any segment) fitting 640x360 under 1 Mb/s and
//!   1920x1080 at up to ~8 Mb/s; the low rung is a default profile (a plain
//!   `reelfs proxy` makes a two-rung ladder with the preview), the high one is
//!   rendered when asked for, and only for HD and larger sources;
//! - preview-low-vp9: the low rung again as VP9 (libvpx, realtime speed) in
//!   fragmented MP4 with the same 2 s keyframes and AAC, rendered when asked
//!   for: for a reviewer whose browser cannot decode H.264 (some Chromium
//!   builds, Firefox on some Linux distributions); the HLS master offers it
//!   beside the H.264 rungs and the player keeps the codec it can decode;
//! - editorial: ProRes 422 Proxy in MOV (the `prores` encoder, prores_aw: several
//!   times faster than prores_ks here), at most 1920 wide, the source's rate and
//!   frame count, its start timecode and reel in a tmcd track, colour tags, and
//!   every audio track as PCM at the source's rate and depth (PCM is copied
//!   packet for packet; compressed audio is decoded to 24-bit PCM).
//!
//! Frame N of a video proxy is frame N of the source: output timestamps are the
//! frame's index, never the source's timestamps. A picture that does not decode
//! holds the last good one and keeps every later frame in its place (`damage`);
//! only a source cut short gives shorter proxies (partial). A variable-rate
//! source is conformed to the nearest standard rate by timestamp, and the
//! choice is noted.
//!
//! The source is read once, through the archive's `BlobReader` (custom AVIO),
//! never copied to a temporary file. Outputs go to a folder the caller gives.

mod boxscale;
mod damage;
mod encode;
mod movie;
pub mod run;
mod seq;
mod sinks;
mod waveform;

pub use sinks::sheet_picks;

use super::facts::MediaFacts;
use crate::archive::proxies::RenderedProxy;
use crate::archive::BlobReader;
use ffmpeg_next as ff;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// The rungs of the ladder (the user calls them profiles). The settings
/// version is part of a proxy's key: bump it when a rung's output changes, and
/// only that rung renders again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rung {
    Thumb,
    Sheet,
    Preview,
    Editorial,
    EditorialDnxhr,
    // Appended (not next to Preview): the derived order sorts a render's files
    // and the existing profiles keep their places.
    PreviewLow,
    PreviewHigh,
    PreviewLowVp9,
}

impl Rung {
    pub const ALL: [Rung; 8] = [
        Rung::Thumb,
        Rung::Sheet,
        Rung::Preview,
        Rung::Editorial,
        Rung::EditorialDnxhr,
        Rung::PreviewLow,
        Rung::PreviewHigh,
        Rung::PreviewLowVp9,
    ];
    /// What `reelfs proxy` renders when no `--profiles` is given.
    pub const DEFAULT: [Rung; 5] = [Rung::Thumb, Rung::Sheet, Rung::Preview, Rung::Editorial, Rung::PreviewLow];

    pub fn name(self) -> &'static str {
        match self {
            Rung::Thumb => "thumb",
            Rung::Sheet => "sheet",
            Rung::Preview => "preview",
            Rung::Editorial => "editorial",
            Rung::EditorialDnxhr => "editorial-dnxhr",
            Rung::PreviewLow => "preview-low",
            Rung::PreviewHigh => "preview-high",
            Rung::PreviewLowVp9 => "preview-low-vp9",
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Rung::Thumb | Rung::Sheet => "jpg",
            Rung::Preview | Rung::PreviewLow | Rung::PreviewHigh | Rung::PreviewLowVp9 => "mp4",
            Rung::Editorial | Rung::EditorialDnxhr => "mov",
        }
    }
    pub fn settings_version(self) -> i64 {
        match self {
            Rung::Thumb => 1,
            Rung::Sheet => 1,
            // 2: closed GOPs (each fragment decodes on its own: HLS segments).
            Rung::Preview => 2,
            // 2: sources with alpha get ProRes 4444 (was 422 Proxy).
            Rung::Editorial => 2,
            Rung::EditorialDnxhr => 1,
            Rung::PreviewLow => 1,
            Rung::PreviewHigh => 1,
            Rung::PreviewLowVp9 => 1,
        }
    }
    /// The fragmented-MP4 rungs an HLS ladder is made of (H.264, and the
    /// low rung's VP9 twin for players that cannot decode H.264).
    pub fn is_preview(self) -> bool {
        matches!(self, Rung::Preview | Rung::PreviewLow | Rung::PreviewHigh | Rung::PreviewLowVp9)
    }
    /// Why this rung is not made for a source of this picture size (None: it
    /// is). The high rung exists to be sharper than the 540p preview: below HD
    /// it would only repeat the preview at a higher bit rate.
    pub fn not_for_size(self, width: u32, height: u32) -> Option<String> {
        (self == Rung::PreviewHigh && width < 1280 && height < 720)
            .then(|| format!("preview-high is made for HD and larger sources (this one is {width}x{height})"))
    }
    /// The profiles `reelfs proxy` renders by default, as `--profiles` takes them.
    pub fn default_profiles() -> String {
        Rung::DEFAULT.map(|r| r.name()).join(",")
    }
    pub fn is_editorial(self) -> bool {
        matches!(self, Rung::Editorial | Rung::EditorialDnxhr)
    }
    pub fn parse(s: &str) -> Option<Rung> {
        Rung::ALL.into_iter().find(|r| r.name() == s.trim())
    }
    /// Every profile name, for messages.
    pub fn names() -> String {
        Rung::ALL.map(|r| r.name()).join(", ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Not something a proxy can be made of (not media, no video, a still).
    #[error("{0}")]
    Skip(String),
    #[error("{0}")]
    Failed(String),
    /// The disk the render folder is on is full: the run stops (every other
    /// file would fail the same way) and resumes when space is freed.
    #[error("{0}")]
    DiskFull(String),
    #[error("interrupted")]
    Interrupted,
}

fn fail(what: &str) -> impl Fn(ff::Error) -> ProxyError + '_ {
    move |e| match e {
        ff::Error::Other { errno } if errno == libc::ENOSPC => ProxyError::DiskFull(format!("{what}: {e}")),
        e => ProxyError::Failed(format!("{what}: {e}")),
    }
}

/// A file the render writes itself (JPEGs).
fn write_file(path: &Path, data: &[u8]) -> Result<(), ProxyError> {
    std::fs::write(path, data).map_err(|e| {
        let msg = format!("{}: {e}", path.display());
        if e.raw_os_error() == Some(libc::ENOSPC) {
            ProxyError::DiskFull(msg)
        } else {
            ProxyError::Failed(msg)
        }
    })
}

pub struct RenderOptions {
    pub rungs: Vec<Rung>,
    /// Codec threads (0: FFmpeg's choice, all cores).
    pub threads: usize,
    pub interrupt: Arc<AtomicBool>,
    /// Counts frames rendered, for a progress bar.
    pub frames_done: Arc<AtomicU64>,
}

pub enum Source {
    Path(PathBuf),
    Blob(Arc<BlobReader>),
    /// An image sequence: its frames in order, each an archived blob.
    Sequence(SequenceSource),
}

pub struct SequenceSource {
    pub ext: String,
    /// (frame number, the frame's file).
    pub frames: Vec<(u64, FrameFile)>,
}

pub enum FrameFile {
    Path(PathBuf),
    Blob(Arc<BlobReader>),
}

impl FrameFile {
    /// The whole file (a frame is one picture: tens of MB, a few hundred for
    /// 8K float EXR). A file far bigger is not a frame, whatever its name says,
    /// and is refused rather than loaded into memory.
    pub fn read_all(&self) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    /// The whole file into `buf`, reusing its allocation: a 4K DPX frame is
    /// ~35 MB, and a fresh buffer per frame costs page faults and zeroing
    /// comparable to the read itself.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<(), String> {
        const MAX_FRAME_BYTES: u64 = 2 << 30;
        let size = match self {
            FrameFile::Path(p) => std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?.len(),
            FrameFile::Blob(b) => b.size,
        };
        if size > MAX_FRAME_BYTES {
            return Err(format!("{size} bytes is too large for one image-sequence frame"));
        }
        buf.resize(size as usize, 0);
        let mut got = 0;
        match self {
            FrameFile::Path(p) => {
                use std::io::Read;
                let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                while got < buf.len() {
                    match f.read(&mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(format!("{}: {e}", p.display())),
                    }
                }
            }
            FrameFile::Blob(b) => {
                while got < buf.len() {
                    let n = b.read_at(got as u64, &mut buf[got..]).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
            }
        }
        buf.truncate(got);
        Ok(())
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct RenderStats {
    pub frames: u64,
    pub seconds: f64,
    pub partial_at: Option<i64>,
    pub notes: Vec<String>,
    /// Frames holding the last good picture because the source's were damaged.
    pub damaged: Vec<crate::archive::objects::DamagedRange>,
}

/// Why a file gets no proxy, from its probed facts (None: it can have one).
pub fn skip_reason(facts: Option<&MediaFacts>, probe_error: Option<&str>) -> Option<String> {
    if let Some(e) = probe_error {
        return Some(format!("not decodable media: {e}"));
    }
    let Some(f) = facts else { return Some("not media".into()) };
    if f.width.is_none() {
        return Some("no video stream (audio only)".into());
    }
    if f.is_still() || f.frame_rate.is_none() {
        return Some("a still image (not part of an image sequence)".into());
    }
    None
}

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// `Read + Seek` over an archived blob, for FFmpeg's custom I/O.
struct BlobStream {
    r: Arc<BlobReader>,
    pos: u64,
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read_at(self.pos, buf).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobStream {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
            SeekFrom::End(d) => self.r.size as i128 + d as i128,
        };
        if p < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}

fn open_input(src: &Source) -> Result<ff::format::context::Input, ProxyError> {
    init();
    let r = match src {
        Source::Sequence(_) => return Err(ProxyError::Failed("internal: an image sequence is not one input".into())),
        Source::Path(p) => ff::format::input(p),
        Source::Blob(b) => {
            let io = ff::format::context::StreamIo::from_read_seek_with_capacity(BlobStream { r: b.clone(), pos: 0 }, 1 << 20)
                .map_err(fail("custom I/O"))?;
            ff::format::input_from_stream(io, None, None)
        }
    };
    r.map_err(|e| ProxyError::Skip(format!("FFmpeg cannot open it: {e}")))
}

/// Render the requested rungs of one source (a movie file or an image
/// sequence) into `out_dir`: one decode, every rung on its own thread.
pub fn render(
    src: &Source,
    facts: &MediaFacts,
    out_dir: &Path,
    opts: &RenderOptions,
) -> Result<(Vec<RenderedProxy>, RenderStats), ProxyError> {
    init();
    match src {
        Source::Sequence(seq) => seq::render(seq, out_dir, opts),
        _ => movie::render(src, facts, out_dir, opts),
    }
}

/// The stored form of a finished render.
fn finish_render(
    files: Vec<(Rung, PathBuf)>,
    frames: u64,
    t0: std::time::Instant,
    partial_at: Option<i64>,
    notes: Vec<String>,
) -> (Vec<RenderedProxy>, RenderStats) {
    let note = notes.join("; ");
    let mut files = files;
    files.sort_by_key(|f| f.0);
    let out = files
        .into_iter()
        .map(|(r, path)| RenderedProxy {
            profile: r.name().into(),
            settings_version: r.settings_version(),
            path,
            partial_at,
            note: note.clone(),
            damaged: Vec::new(),
        })
        .collect();
    (out, RenderStats { frames, seconds: t0.elapsed().as_secs_f64(), partial_at, notes, damaged: Vec::new() })
}

fn ratio(r: ff::Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        r.numerator() as f64 / r.denominator() as f64
    }
}

const STANDARD_RATES: [(i32, i32); 9] = [(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001), (60, 1)];

/// (rate, note): the source's rate, or for a variable-rate source the standard
/// rate nearest its average, which the proxy is conformed to.
fn pick_rate(st: &ff::format::stream::Stream, vfr: bool) -> (ff::Rational, Option<String>) {
    let avg = st.avg_frame_rate();
    let r = st.rate();
    let base = if ratio(avg) > 0.0 { avg } else { r };
    if !vfr {
        let base = if ratio(base) > 0.0 { base } else { ff::Rational(25, 1) };
        return (base, None);
    }
    let a = ratio(base).max(1.0);
    let (n, d) = STANDARD_RATES
        .into_iter()
        .min_by(|x, y| {
            let dx = ((x.0 as f64 / x.1 as f64) / a).ln().abs();
            let dy = ((y.0 as f64 / y.1 as f64) / a).ln().abs();
            dx.total_cmp(&dy)
        })
        .unwrap_or((25, 1));
    (ff::Rational(n, d), Some(format!("variable frame rate (average {a:.3} fps) conformed to {n}/{d} by timestamp")))
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// The editorial size: the source's, or half of it for UHD/4K/DCI, at most 1920 wide.
fn editorial_size(w: u32, h: u32) -> (u32, u32) {
    if w <= 1920 {
        return (w - w % 2, h - h % 2);
    }
    let s = if w / 2 <= 1920 { 0.5 } else { 1920.0 / w as f64 };
    (even(w as f64 * s), even(h as f64 * s))
}

/// Fit (display aspect) inside a box, never upscaling.
fn fit(w: u32, h: u32, sar: ff::Rational, bw: u32, bh: u32) -> (u32, u32) {
    let sar = if ratio(sar) > 0.0 { ratio(sar) } else { 1.0 };
    let dw = w as f64 * sar;
    let s = (bw as f64 / dw).min(bh as f64 / h as f64).min(1.0);
    (even(dw * s), even(h as f64 * s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_parse_and_name_their_files() {
        assert_eq!(Rung::parse("editorial"), Some(Rung::Editorial));
        assert_eq!(Rung::parse(" thumb "), Some(Rung::Thumb));
        assert_eq!(Rung::parse("poster"), None);
        assert_eq!(Rung::parse("editorial-dnxhr").map(Rung::ext), Some("mov"));
        assert_eq!(Rung::parse("sheet").map(Rung::ext), Some("jpg"));
        assert_eq!(crate::archive::proxies::proxy_file_name("A001C003.mov", "jpg"), "A001C003.jpg");
        assert_eq!(crate::archive::proxies::proxy_file_name("clip.v2.mxf", "mov"), "clip.v2.mov");
        assert_eq!(crate::archive::proxies::proxy_file_name(".hidden", "mp4"), ".hidden.mp4");
    }

    #[test]
    fn default_profiles_make_a_two_rung_ladder_and_high_is_only_for_hd() {
        // The CLI's `--profiles` default (src/cli.rs, and `ingest --proxies` in
        // main.rs) spells this list out: keep them the same.
        assert_eq!(Rung::default_profiles(), "thumb,sheet,preview,editorial,preview-low");
        assert_eq!(Rung::parse("preview-high").map(Rung::ext), Some("mp4"));
        assert!(Rung::PreviewLow.is_preview() && !Rung::Editorial.is_preview());
        assert!(Rung::PreviewHigh.not_for_size(640, 360).unwrap().contains("640x360"));
        assert_eq!(Rung::PreviewHigh.not_for_size(1280, 720), None);
        assert_eq!(Rung::PreviewHigh.not_for_size(2048, 858), None);
        assert_eq!(Rung::PreviewLow.not_for_size(320, 240), None);
        // The VP9 twin of the low rung: an HLS rung, asked for only.
        assert_eq!(Rung::parse("preview-low-vp9").map(|r| (r.ext(), r.is_preview())), Some(("mp4", true)));
        assert!(!Rung::default_profiles().contains("vp9"));
    }

    #[test]
    fn editorial_is_at_most_1920_wide_and_half_for_uhd() {
        assert_eq!(editorial_size(1920, 1080), (1920, 1080));
        assert_eq!(editorial_size(640, 360), (640, 360));
        assert_eq!(editorial_size(3840, 2160), (1920, 1080));
        assert_eq!(editorial_size(4096, 2160), (1920, 1012));
        assert_eq!(editorial_size(2048, 1080), (1024, 540));
        assert_eq!(editorial_size(8192, 4320), (1920, 1012));
    }

    #[test]
    fn preview_and_thumb_fit_keeping_aspect() {
        let sq = ff::Rational(1, 1);
        assert_eq!(fit(1920, 1080, sq, 960, 540), (960, 540));
        assert_eq!(fit(1280, 720, sq, 960, 540), (960, 540));
        assert_eq!(fit(640, 360, sq, 960, 540), (640, 360));
        assert_eq!(fit(4096, 1716, sq, 960, 540), (960, 402));
        assert_eq!(fit(1920, 1080, sq, 320, 100_000), (320, 180));
        // Anamorphic 2x: display aspect 32:9 squeezed into 16:9 storage.
        assert_eq!(fit(1920, 1080, ff::Rational(2, 1), 960, 540), (960, 270));
    }

    #[test]
    fn skip_reasons_from_facts() {
        let facts = |v: serde_json::Value| MediaFacts::from_value(&v).expect("facts");
        let v = facts(serde_json::json!({"container": "mov,mp4,m4a,3gp,3g2,mj2", "width": 1920, "frame_rate": "24/1"}));
        assert_eq!(skip_reason(Some(&v), None), None);
        assert!(skip_reason(None, None).unwrap().contains("not media"));
        assert!(skip_reason(None, Some("moov atom not found")).unwrap().contains("moov"));
        let wav = facts(serde_json::json!({"container": "wav", "width": null}));
        assert!(skip_reason(Some(&wav), None).unwrap().contains("audio only"));
        let dpx = facts(serde_json::json!({"container": "image2", "width": 640, "frame_rate": null}));
        assert!(skip_reason(Some(&dpx), None).unwrap().contains("still"));
    }
}
