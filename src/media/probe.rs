//! Probe media facts once per content hash, during ingest.
//!
//! The facts a post tool needs without decoding: container, streams, codec and
//! profile, resolution, frame rate (and whether it varies), start timecode and
//! drop-frame, reel, duration in frames, audio layout, colour tags. A file FFmpeg
//! cannot open is recorded as damaged with FFmpeg's reason.

use ffmpeg_next as ff;
use serde_json::{json, Map, Value};
use std::ffi::CStr;
use std::path::Path;
use std::sync::Once;

use crate::timecode::{FrameRate, Timecode};

/// Extensions worth handing to FFmpeg. Other files (sidecars, XML, random data)
/// are archived without a probe: probing arbitrary bytes is slow and meaningless.
const MEDIA_EXTENSIONS: &[&str] = &[
    "mov", "mp4", "m4v", "m4a", "mxf", "wav", "bwf", "aif", "aiff", "dpx", "exr", "mkv", "avi", "mts", "m2ts", "ts", "mpg", "mpeg", "mp3",
    "flac", "webm", "3gp", "ogg", "dnxhd", "r3d", "braw", "ari", "crm", "y4m",
];

pub fn is_media_path(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).map(|e| MEDIA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())).unwrap_or(false)
}

/// Initialise FFmpeg once per process, quietly.
pub fn init_ffmpeg() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// The `Prober` the ingest pipeline calls.
pub fn probe_for_ingest(p: &Path) -> Option<Result<Value, String>> {
    if !is_media_path(p) {
        return None;
    }
    Some(probe(p))
}

fn cstr(p: *const std::os::raw::c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: FFmpeg returns static NUL-terminated names.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

fn rational(r: ff::Rational) -> Option<String> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| format!("{}/{}", r.numerator(), r.denominator()))
}

fn ratio(r: ff::Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        r.numerator() as f64 / r.denominator() as f64
    }
}

/// A container's or stream's metadata tags. ffmpeg-next's own iterator hands the
/// bytes out as `&str` unchecked, and a camera (or a damaged file) can carry tags
/// that are not UTF-8: stored as they were, such a string made the catalog's media
/// row unreadable. Read the C strings ourselves and replace invalid bytes (U+FFFD).
fn tags(d: ff::DictionaryRef) -> Map<String, Value> {
    let mut out = Map::new();
    let mut cur: *mut ff::ffi::AVDictionaryEntry = std::ptr::null_mut();
    loop {
        // SAFETY: `d` borrows a live dictionary of an open input context; the
        // empty key with IGNORE_SUFFIX walks every entry, `cur` is the previous one.
        let entry = unsafe { ff::ffi::av_dict_get(d.as_ptr(), c"".as_ptr(), cur, ff::ffi::AV_DICT_IGNORE_SUFFIX) };
        if entry.is_null() {
            return out;
        }
        // SAFETY: a non-null entry has NUL-terminated key and value owned by the dictionary.
        let (k, v) = unsafe { (CStr::from_ptr((*entry).key), CStr::from_ptr((*entry).value)) };
        out.insert(k.to_string_lossy().into_owned(), Value::String(v.to_string_lossy().into_owned()));
        cur = entry;
    }
}

pub fn probe(path: &Path) -> Result<Value, String> {
    init_ffmpeg();
    let ictx = ff::format::input(&path).map_err(|e| format!("FFmpeg cannot open it: {e}"))?;
    let mut streams = Vec::new();
    let mut video: Option<Value> = None;
    let mut timecode: Option<String> = None;
    let mut reel: Option<String> = None;
    let mut audio_tracks = 0u64;
    let mut audio_channels = 0u64;
    let fmt_tags = tags(ictx.metadata());
    let container = ictx.format().name().to_string();
    // A still image (one DPX/EXR/TIFF of a sequence) is one frame; its demuxer's
    // frame rate (25) is a default, not a fact from the file.
    let still = container == "image2" || container.ends_with("_pipe");
    for st in ictx.streams() {
        let par = st.parameters();
        // SAFETY: the parameters belong to a stream of an open input context.
        let raw = unsafe { &*par.as_ptr() };
        let kind = match par.medium() {
            ff::media::Type::Video => "video",
            ff::media::Type::Audio => "audio",
            ff::media::Type::Data => "data",
            ff::media::Type::Subtitle => "subtitle",
            _ => "other",
        };
        let st_tags = tags(st.metadata());
        let mut s = json!({
            "index": st.index(),
            "kind": kind,
            "codec": par.id().name(),
            "tags": st_tags,
        });
        // SAFETY: plain FFmpeg name lookups on values read from the stream.
        unsafe {
            if let Some(p) = cstr(ff::ffi::avcodec_profile_name(raw.codec_id, raw.profile)) {
                s["profile"] = json!(p);
            }
        }
        if let Some(tc) = st_tags.get("timecode").and_then(|v| v.as_str()) {
            timecode.get_or_insert_with(|| tc.to_string());
        }
        if let Some(r) = st_tags.get("reel_name").and_then(|v| v.as_str()) {
            reel.get_or_insert_with(|| r.to_string());
        }
        match kind {
            "video" => {
                let r = st.rate();
                let avg = st.avg_frame_rate();
                let rate = if avg.numerator() > 0 { avg } else { r };
                // r_frame_rate is the lowest rate that represents every timestamp;
                // a difference from the average means frames are not evenly spaced.
                let vfr = ratio(r) > 0.0 && ratio(avg) > 0.0 && (ratio(r) - ratio(avg)).abs() / ratio(r) > 0.001;
                let mut frames = st.frames();
                if frames <= 0 && st.duration() > 0 {
                    let secs = st.duration() as f64 * ratio(st.time_base());
                    frames = (secs * ratio(rate)).round() as i64;
                }
                if still {
                    frames = 1;
                }
                s["width"] = json!(raw.width);
                s["height"] = json!(raw.height);
                s["frame_rate"] = json!(rational(rate).filter(|_| !still));
                s["frame_rate_fps"] = json!((!still).then(|| (ratio(rate) * 1000.0).round() / 1000.0));
                s["variable_frame_rate"] = json!(vfr);
                s["duration_frames"] = json!(frames.max(0));
                unsafe {
                    let pf: ff::ffi::AVPixelFormat = std::mem::transmute(raw.format);
                    s["pix_fmt"] = json!(cstr(ff::ffi::av_get_pix_fmt_name(pf)));
                    s["color_primaries"] = json!(cstr(ff::ffi::av_color_primaries_name(raw.color_primaries)));
                    s["color_transfer"] = json!(cstr(ff::ffi::av_color_transfer_name(raw.color_trc)));
                    s["color_matrix"] = json!(cstr(ff::ffi::av_color_space_name(raw.color_space)));
                    s["color_range"] = json!(cstr(ff::ffi::av_color_range_name(raw.color_range)));
                }
                s["field_order"] = json!(format!("{:?}", raw.field_order).to_lowercase().replace("av_field_", ""));
                if video.is_none() {
                    video = Some(s.clone());
                }
            }
            "audio" => {
                audio_tracks += 1;
                let ch = raw.ch_layout.nb_channels as u64;
                audio_channels += ch;
                s["sample_rate"] = json!(raw.sample_rate);
                s["channels"] = json!(ch);
                let bits = if raw.bits_per_raw_sample > 0 { raw.bits_per_raw_sample } else { raw.bits_per_coded_sample };
                s["bits_per_sample"] = json!(bits);
                if st.duration() > 0 {
                    s["duration_samples"] = json!((st.duration() as f64 * ratio(st.time_base()) * raw.sample_rate as f64).round() as i64);
                }
            }
            _ => {}
        }
        streams.push(s);
    }
    if let Some(tc) = fmt_tags.get("timecode").and_then(|v| v.as_str()) {
        timecode.get_or_insert_with(|| tc.to_string());
    }
    for key in ["reel_name", "reel", "material_package_name", "tape_name"] {
        if let Some(r) = fmt_tags.get(key).and_then(|v| v.as_str()) {
            reel.get_or_insert_with(|| r.to_string());
        }
    }
    // BWF: time_reference counts samples since midnight. A WAV has no frame rate of its
    // own: the recorder's iXML TIMECODE_RATE/TIMECODE_FLAG says how its timecode is
    // counted; without one it is shown at 25 fps (EBU, where BWF comes from). The count
    // wraps at 24 hours as in every NLE, and the exact sample count is kept alongside.
    let mut time_reference = None;
    let mut tc_rate: Option<(String, bool, &str)> = None;
    if let Some(tr) = fmt_tags.get("time_reference").and_then(|v| v.as_str()).and_then(|s| s.parse::<u64>().ok()) {
        time_reference = Some(tr);
        if timecode.is_none() {
            let sr = streams.iter().find_map(|s| s["sample_rate"].as_u64()).unwrap_or(48000);
            let ixml = std::fs::File::open(path).ok().and_then(|f| super::wav::parse(&f).ok()).and_then(|l| l.ixml);
            let declared = ixml.as_deref().and_then(super::wav::ixml_timecode_rate);
            let rate = declared
                .and_then(|(n, d, df)| FrameRate::from_rational(n, d, df).map(|r| (r, format!("{n}/{d}"), "ixml")))
                .unwrap_or((FrameRate::Fps25, "25/1".to_string(), "default"));
            timecode = Some(super::wav::bwf_timecode(tr, sr, rate.0).to_string());
            tc_rate = Some((rate.1, rate.0.is_drop_frame(), rate.2));
        }
    }
    // A QuickTime timecode track with several samples: the timecode breaks inside the
    // clip. FFmpeg reports only the first run, so the tmcd track is read here.
    let mut breaks = Vec::new();
    if container.contains("mov") {
        if let Ok(Some(tc)) = std::fs::File::open(path).map(|f| super::qt::read_movie(&f).ok().and_then(|m| m.timecode)) {
            let df = tc.drop_frame;
            if let (true, Some(rate)) = (tc.samples.len() > 1, FrameRate::from_rational(tc.timescale, tc.frame_duration, df)) {
                for (frame, value) in &tc.samples {
                    breaks.push(json!({"frame": frame, "timecode": Timecode::from_frames(i64::from(*value), rate).to_string()}));
                }
            }
        }
    }
    let duration_s = if ictx.duration() > 0 { Some(ictx.duration() as f64 / ff::ffi::AV_TIME_BASE as f64) } else { None };
    let drop_frame =
        timecode.as_deref().map(|t| t.contains(';') || t.contains(',')).unwrap_or(false) || tc_rate.as_ref().is_some_and(|r| r.1);
    let v = video.as_ref();
    Ok(json!({
        "container": container,
        "container_long": ictx.format().description(),
        "duration_seconds": duration_s,
        "codec": v.map(|v| v["codec"].clone()).or_else(|| streams.iter().find(|s| s["kind"] == "audio").map(|s| s["codec"].clone())),
        "profile": v.and_then(|v| v.get("profile").cloned()),
        "width": v.map(|v| v["width"].clone()),
        "height": v.map(|v| v["height"].clone()),
        "frame_rate": v.map(|v| v["frame_rate"].clone()),
        "frame_rate_fps": v.map(|v| v["frame_rate_fps"].clone()),
        "variable_frame_rate": v.map(|v| v["variable_frame_rate"].clone()).unwrap_or(json!(false)),
        "duration_frames": v.map(|v| v["duration_frames"].clone()),
        "timecode": timecode,
        "drop_frame": drop_frame,
        "time_reference_samples": time_reference,
        "timecode_rate": tc_rate.as_ref().map(|r| r.0.clone()),
        "timecode_rate_source": tc_rate.as_ref().map(|r| r.2),
        "timecode_breaks": (!breaks.is_empty()).then_some(breaks),
        "reel": reel,
        "audio_tracks": audio_tracks,
        "audio_channels": audio_channels,
        "color_primaries": v.map(|v| v["color_primaries"].clone()),
        "color_transfer": v.map(|v| v["color_transfer"].clone()),
        "color_matrix": v.map(|v| v["color_matrix"].clone()),
        "streams": streams,
        "format_tags": fmt_tags,
    }))
}

/// `probe` as typed facts (what a caller other than the ingest, which stores the
/// JSON, wants).
pub fn facts(path: &Path) -> Result<super::facts::MediaFacts, String> {
    let v = probe(path)?;
    super::facts::MediaFacts::from_value(&v).ok_or_else(|| format!("{}: the probe's facts do not fit MediaFacts", path.display()))
}
