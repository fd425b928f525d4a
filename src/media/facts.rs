//! Media facts as a type: what the probe found in a file (media/probe.rs), stored
//! as JSON per content hash in the catalog, read back here.
//!
//! The JSON shape is the stored one and stays byte-for-byte what archives already
//! hold: every key the probe writes is a field whose `None` is written as `null`;
//! keys added later (`timecode_source`, `file_timecode`, `file_reel`) are left out
//! when absent; any key this version does not know is kept in `extra`, so reading
//! and writing facts never drops one. `info --json`'s `media` is this value.

use crate::archive::tcfacts::{self, TcFact};
use crate::archive::{Archive, Hash};
use crate::timecode::FrameRate;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// What `info`, `ls -l` and the `user.reelfs.timecode_note` attribute say for a clip
/// with no timecode.
pub const ASSUMED_NOTE: &str = "no timecode (00:00:00:00 assumed)";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaFacts {
    /// FFmpeg's demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "mxf", "wav", "image2", ...).
    #[serde(default)]
    pub container: String,
    #[serde(default)]
    pub container_long: Option<String>,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    /// The video codec, or the audio codec of an audio-only file.
    #[serde(default)]
    pub codec: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub width: Option<i64>,
    #[serde(default)]
    pub height: Option<i64>,
    /// Exact rational, "24000/1001"; None for stills and audio.
    #[serde(default)]
    pub frame_rate: Option<String>,
    #[serde(default)]
    pub frame_rate_fps: Option<f64>,
    #[serde(default)]
    pub variable_frame_rate: bool,
    #[serde(default)]
    pub duration_frames: Option<u64>,
    /// Start timecode as a label; the one in force when `timecode_source` is set.
    #[serde(default)]
    pub timecode: Option<String>,
    #[serde(default)]
    pub drop_frame: bool,
    /// BWF: samples since midnight.
    #[serde(default)]
    pub time_reference_samples: Option<u64>,
    /// The rate a timecode counts at when the file says so apart from its video
    /// (a WAV's iXML), or a user gave one with `tc set --rate`: "25/1".
    #[serde(default)]
    pub timecode_rate: Option<String>,
    #[serde(default)]
    pub timecode_rate_source: Option<String>,
    /// Where a QuickTime timecode track jumps inside the clip.
    #[serde(default)]
    pub timecode_breaks: Option<Vec<TimecodeBreak>>,
    #[serde(default)]
    pub reel: Option<String>,
    #[serde(default)]
    pub audio_tracks: u64,
    #[serde(default)]
    pub audio_channels: u64,
    #[serde(default)]
    pub color_primaries: Option<String>,
    #[serde(default)]
    pub color_transfer: Option<String>,
    #[serde(default)]
    pub color_matrix: Option<String>,
    #[serde(default)]
    pub streams: Vec<StreamFacts>,
    #[serde(default)]
    pub format_tags: BTreeMap<String, String>,
    /// "file", "user" (`reelfs tc set`) or "assumed": set by [`MediaFacts::with_user_fact`],
    /// never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timecode_source: Option<String>,
    /// With a user fact: the file's own timecode and reel (null when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub file_timecode: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub file_reel: Option<Option<String>>,
    /// Keys this version does not know, kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A key that is there (even as null) is `Some`; a missing one is `None` (by `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimecodeBreak {
    /// Frame of the clip where the new run starts.
    pub frame: u64,
    pub timecode: String,
}

/// One stream of the file. Video and audio streams carry their own keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamFacts {
    #[serde(default)]
    pub index: u64,
    /// "video", "audio", "data", "subtitle" or "other".
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub codec: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(flatten)]
    pub video: Option<VideoStreamFacts>,
    #[serde(flatten)]
    pub audio: Option<AudioStreamFacts>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoStreamFacts {
    pub width: i64,
    #[serde(default)]
    pub height: i64,
    #[serde(default)]
    pub frame_rate: Option<String>,
    #[serde(default)]
    pub frame_rate_fps: Option<f64>,
    #[serde(default)]
    pub variable_frame_rate: bool,
    #[serde(default)]
    pub duration_frames: i64,
    #[serde(default)]
    pub pix_fmt: Option<String>,
    #[serde(default)]
    pub color_primaries: Option<String>,
    #[serde(default)]
    pub color_transfer: Option<String>,
    #[serde(default)]
    pub color_matrix: Option<String>,
    #[serde(default)]
    pub color_range: Option<String>,
    #[serde(default)]
    pub field_order: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioStreamFacts {
    pub sample_rate: i64,
    #[serde(default)]
    pub channels: u64,
    #[serde(default)]
    pub bits_per_sample: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_samples: Option<i64>,
}

impl MediaFacts {
    /// Facts from their stored JSON. Facts that do not fit the type (which the
    /// probe never writes) read as absent, as a failed probe would, rather than
    /// making the file unreadable.
    pub fn from_json(text: &str) -> Option<MediaFacts> {
        match serde_json::from_str(text) {
            Ok(f) => Some(f),
            Err(e) => {
                log::warn!("stored media facts do not parse ({e}); the file is shown without them");
                None
            }
        }
    }

    pub fn from_value(v: &serde_json::Value) -> Option<MediaFacts> {
        serde_json::from_value(v.clone()).ok()
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The first audio stream and its audio facts.
    pub fn first_audio(&self) -> Option<(&StreamFacts, &AudioStreamFacts)> {
        self.streams.iter().filter(|s| s.kind == "audio").find_map(|s| s.audio.as_ref().map(|a| (s, a)))
    }

    pub fn has_video_stream(&self) -> bool {
        self.streams.iter().any(|s| s.kind == "video")
    }

    /// Audio without pictures: a WAV, a sound roll.
    pub fn is_audio_only(&self) -> bool {
        self.width.is_none() && self.audio_tracks > 0
    }

    /// A WAV/BWF (FFmpeg names the demuxer "wav").
    pub fn is_wav(&self) -> bool {
        self.container == "wav" || self.container.starts_with("wav")
    }

    /// One image of a sequence (DPX, EXR, TIFF...), not a movie.
    pub fn is_still(&self) -> bool {
        self.container == "image2" || self.container.ends_with("_pipe")
    }

    pub fn timecode_set_by_user(&self) -> bool {
        self.timecode_source.as_deref() == Some("user")
    }

    /// Media that slices can cut: video with a rate, or audio (a WAV counts at 25 fps).
    pub fn has_timeline(&self) -> bool {
        self.frame_rate.is_some() || self.is_wav()
    }

    /// These facts with the user's recorded timecode laid over them, and
    /// `timecode_source` set. With a user fact the file's own timecode and reel are
    /// kept as `file_timecode` and `file_reel`, so nothing the probe found is hidden.
    pub fn with_user_fact(&self, user: Option<&TcFact>) -> MediaFacts {
        let mut f = self.clone();
        match user {
            Some(u) => {
                f.file_timecode = Some(self.timecode.clone());
                f.file_reel = Some(self.reel.clone());
                f.timecode = Some(u.timecode.clone());
                f.timecode_source = Some("user".into());
                if let Some(r) = &u.reel {
                    f.reel = Some(r.clone());
                }
                if let Some(rate) = u.rate.as_deref().and_then(|r| r.parse::<FrameRate>().ok()) {
                    let (n, d) = rate.num_den();
                    f.timecode_rate = Some(format!("{n}/{d}"));
                    f.drop_frame = rate.is_drop_frame();
                } else {
                    f.drop_frame = u.timecode.contains(';') || self.drop_frame;
                }
            }
            None => {
                f.timecode_source = Some(if self.timecode.is_some() { "file" } else { "assumed" }.into());
            }
        }
        f
    }

    /// The timecode line of `info`: `01:00:00:00 (non-drop)`, `01:00:00:00 (set by user;
    /// file has none; non-drop)`, or the assumed note. `None` for files without
    /// timecode at all (stills, audio-only files other than BWF).
    pub fn describe_timecode(&self) -> Option<String> {
        let counting = if self.drop_frame { "drop-frame" } else { "non-drop" };
        match (self.timecode_source.as_deref(), self.timecode.as_deref()) {
            (Some("user"), Some(tc)) => {
                let file = match self.file_timecode.as_ref().and_then(|t| t.as_deref()) {
                    Some(t) => format!("file has {t}"),
                    None => "file has none".to_string(),
                };
                Some(format!("{tc} (set by user; {file}; {counting})"))
            }
            (_, Some(tc)) => Some(format!("{tc} ({counting})")),
            (_, None) if self.has_timeline() => Some(ASSUMED_NOTE.to_string()),
            _ => None,
        }
    }
}

impl MediaFacts {
    /// The probed facts a tool may want without decoding, as the mount's
    /// `user.reelfs.*` attributes (name without the prefix, value). Numbers read as
    /// in the stored JSON (`25.0`, not `25`), so the attributes are what they were.
    pub fn xattrs(&self) -> Vec<(&'static str, String)> {
        let fps = self.frame_rate_fps.and_then(serde_json::Number::from_f64).map(|n| n.to_string());
        let fields = [
            ("timecode", self.timecode.clone()),
            ("rate", self.frame_rate.clone()),
            ("fps", fps),
            ("drop_frame", Some(self.drop_frame.to_string())),
            ("reel", self.reel.clone()),
            ("duration_frames", self.duration_frames.map(|d| d.to_string())),
            ("codec", self.codec.clone()),
            ("container", Some(self.container.clone())),
        ];
        fields.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
    }
}

/// The stored facts of a content hash: None when it was never probed (not media);
/// otherwise the facts (None if the probe failed) and the probe's error.
pub fn stored(a: &Archive, blob: &Hash) -> crate::archive::Result<Option<(Option<MediaFacts>, Option<String>)>> {
    Ok(a.catalog.media(blob)?.map(|(f, e)| (f.as_deref().and_then(MediaFacts::from_json), e)))
}

/// The facts in force for the clip at `path` (inside its branch) at `commit`: the
/// stored ones with any timecode recorded by `reelfs tc set`. A history that cannot
/// be read leaves the probe's facts as they are: a timecode fact must never make a
/// clip unreadable.
pub fn in_force(a: &Archive, commit: Option<&Hash>, path: &str, blob: &Hash, facts: &MediaFacts) -> MediaFacts {
    let user = match tcfacts::fact_at(a, commit, path, blob) {
        Ok(u) => u,
        Err(e) => {
            log::warn!("{path}: cannot read its timecode facts: {e}");
            None
        }
    };
    facts.with_user_fact(user.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    /// What media/probe.rs writes for a ProRes clip with one audio track, a timecode
    /// track and a key this version does not know.
    fn probed() -> serde_json::Value {
        serde_json::from_str(
            r#"{
            "container": "mov,mp4,m4a,3gp,3g2,mj2", "container_long": "QuickTime / MOV", "duration_seconds": 2.0,
            "codec": "prores", "profile": "Proxy", "width": 640, "height": 360, "frame_rate": "24000/1001",
            "frame_rate_fps": 23.976, "variable_frame_rate": false, "duration_frames": 48,
            "timecode": "01:00:00:00", "drop_frame": false, "time_reference_samples": null,
            "timecode_rate": null, "timecode_rate_source": null, "timecode_breaks": null, "reel": "A001",
            "audio_tracks": 1, "audio_channels": 2, "color_primaries": "bt709", "color_transfer": "bt709",
            "color_matrix": "bt709",
            "streams": [
                {"index": 0, "kind": "video", "codec": "prores", "tags": {"timecode": "01:00:00:00"}, "profile": "Proxy",
                 "width": 640, "height": 360, "frame_rate": "24000/1001", "frame_rate_fps": 23.976,
                 "variable_frame_rate": false, "duration_frames": 48, "pix_fmt": "yuv422p10le",
                 "color_primaries": "bt709", "color_transfer": "bt709", "color_matrix": "bt709",
                 "color_range": null, "field_order": "progressive"},
                {"index": 1, "kind": "audio", "codec": "pcm_s24le", "tags": {}, "sample_rate": 48000,
                 "channels": 2, "bits_per_sample": 24, "duration_samples": 96096},
                {"index": 2, "kind": "data", "codec": "none", "tags": {"reel_name": "A001"}}
            ],
            "format_tags": {"major_brand": "qt  "},
            "a_later_key": {"kept": true}
        }"#,
        )
        .expect("valid JSON")
    }

    #[test]
    fn stored_facts_read_and_write_back_unchanged() {
        let v = probed();
        let f = MediaFacts::from_json(&v.to_string()).expect("probe output parses");
        assert_eq!(f.duration_frames, Some(48));
        assert_eq!(f.first_audio().map(|(_, a)| a.sample_rate), Some(48000));
        assert_eq!(f.streams[0].video.as_ref().map(|v| v.pix_fmt.as_deref()), Some(Some("yuv422p10le")));
        assert!(f.streams[2].video.is_none() && f.streams[2].audio.is_none());
        assert_eq!(f.to_value(), v, "the JSON written back is the JSON stored");
    }

    #[test]
    fn a_user_fact_keeps_the_files_own_timecode_beside_it() {
        let f = MediaFacts::from_value(&probed()).unwrap();
        let user = TcFact { timecode: "02:00:00:00".into(), reel: Some("B002".into()), rate: Some("23.976".into()) };
        let u = f.with_user_fact(Some(&user));
        let v = u.to_value();
        assert_eq!(v["timecode"], "02:00:00:00");
        assert_eq!(v["timecode_source"], "user");
        assert_eq!(v["file_timecode"], "01:00:00:00");
        assert_eq!(v["file_reel"], "A001");
        assert_eq!(v["timecode_rate"], "24000/1001");
        assert_eq!(u.describe_timecode().as_deref(), Some("02:00:00:00 (set by user; file has 01:00:00:00; non-drop)"));
        // A file without timecode: file_timecode is there, as null.
        let mut none = f.clone();
        none.timecode = None;
        let v = none.with_user_fact(Some(&user)).to_value();
        assert!(v.as_object().unwrap().contains_key("file_timecode") && v["file_timecode"].is_null());
        assert_eq!(MediaFacts::from_value(&v).unwrap().to_value(), v);
        let plain = f.with_user_fact(None).to_value();
        assert_eq!(plain["timecode_source"], "file");
        assert!(!plain.as_object().unwrap().contains_key("file_timecode"));
    }
}
