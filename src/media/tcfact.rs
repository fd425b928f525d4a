//! Where a clip's timecode comes from, as every reader shows it: the file's own
//! (`file`), one a user recorded with `reelfs tc set` (`user`, see archive/tcfacts.rs),
//! or none, in which case slices count from 00:00:00:00 (`assumed`) and every listing
//! says so rather than showing a timecode the file does not have.

use crate::archive::tcfacts::{self, TcFact};
use crate::archive::{Archive, Hash};
use crate::timecode::{FrameRate, Timecode, TimecodeError};
use serde_json::{json, Value};

/// What `info`, `ls -l` and the `user.reelfs.timecode_note` attribute say for a clip
/// with no timecode.
pub const ASSUMED_NOTE: &str = "no timecode (00:00:00:00 assumed)";

/// The probed facts with the user's fact laid over them, and `timecode_source` set.
/// With a user fact the file's own timecode and reel are kept as `file_timecode` and
/// `file_reel`, so nothing the probe found is hidden.
pub fn overlay(facts: &Value, user: Option<&TcFact>) -> Value {
    let mut f = facts.clone();
    if !f.is_object() {
        return f;
    }
    match user {
        Some(u) => {
            f["file_timecode"] = facts["timecode"].clone();
            f["file_reel"] = facts["reel"].clone();
            f["timecode"] = json!(u.timecode);
            f["timecode_source"] = json!("user");
            if let Some(r) = &u.reel {
                f["reel"] = json!(r);
            }
            if let Some(rate) = u.rate.as_deref().and_then(|r| r.parse::<FrameRate>().ok()) {
                let (n, d) = rate.num_den();
                f["timecode_rate"] = json!(format!("{n}/{d}"));
                f["drop_frame"] = json!(rate.is_drop_frame());
            } else {
                f["drop_frame"] = json!(u.timecode.contains(';') || facts["drop_frame"].as_bool().unwrap_or(false));
            }
        }
        None => {
            let has = !facts["timecode"].is_null();
            f["timecode_source"] = json!(if has { "file" } else { "assumed" });
        }
    }
    f
}

/// Facts of the clip at `path` (inside its branch) at `commit`, with any user fact.
/// A history that cannot be read leaves the probe's facts as they are: a timecode fact
/// must never make a clip unreadable.
pub fn facts_at(a: &Archive, commit: Option<&Hash>, path: &str, blob: &Hash, facts: &Value) -> Value {
    let user = match tcfacts::fact_at(a, commit, path, blob) {
        Ok(u) => u,
        Err(e) => {
            log::warn!("{path}: cannot read its timecode facts: {e}");
            None
        }
    };
    overlay(facts, user.as_ref())
}

/// The timecode line of `info`: `01:00:00:00 (non-drop)`, `01:00:00:00 (set by user;
/// file has none)`, or the assumed note. `None` for files without timecode at all
/// (stills, audio-only files other than BWF).
pub fn describe(f: &Value) -> Option<String> {
    let df = f["drop_frame"].as_bool().unwrap_or(false);
    let counting = if df { "drop-frame" } else { "non-drop" };
    match (f["timecode_source"].as_str(), f["timecode"].as_str()) {
        (Some("user"), Some(tc)) => {
            let file = match f["file_timecode"].as_str() {
                Some(t) => format!("file has {t}"),
                None => "file has none".to_string(),
            };
            Some(format!("{tc} (set by user; {file}; {counting})"))
        }
        (_, Some(tc)) => Some(format!("{tc} ({counting})")),
        (_, None) if has_timeline(f) => Some(ASSUMED_NOTE.to_string()),
        _ => None,
    }
}

/// Media that slices can cut: video with a rate, or audio (a WAV counts at 25 fps).
fn has_timeline(f: &Value) -> bool {
    !f["frame_rate"].is_null() || f["container"].as_str().is_some_and(|c| c.starts_with("wav"))
}

/// Checks a timecode a user wants to record: valid at `rate` (the one given with
/// `--rate`, else the clip's), returned in canonical form.
pub fn validate(label: &str, rate: FrameRate) -> Result<String, TimecodeError> {
    let tc = Timecode::parse_for_media(label, rate)?;
    if tc.frames() < 0 {
        return Err(TimecodeError::Syntax {
            input: label.to_string(),
            reason: "a start timecode cannot be negative".into(),
        });
    }
    Ok(tc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_descriptions() {
        let none = json!({"frame_rate": "25/1", "timecode": null, "duration_frames": 10});
        let f = overlay(&none, None);
        assert_eq!(f["timecode_source"], "assumed");
        assert_eq!(describe(&f).unwrap(), ASSUMED_NOTE);
        let user = TcFact { timecode: "01:00:00:00".into(), reel: Some("A001".into()), rate: Some("23.976".into()) };
        let f = overlay(&none, Some(&user));
        assert_eq!(f["timecode_source"], "user");
        assert_eq!(f["timecode_rate"], "24000/1001");
        assert_eq!(f["reel"], "A001");
        assert_eq!(describe(&f).unwrap(), "01:00:00:00 (set by user; file has none; non-drop)");
        let own = json!({"frame_rate": "25/1", "timecode": "00:00:00:00", "drop_frame": false});
        assert_eq!(overlay(&own, None)["timecode_source"], "file");
        let f = overlay(&own, Some(&TcFact { timecode: "10:00:00:00".into(), reel: None, rate: None }));
        assert_eq!(describe(&f).unwrap(), "10:00:00:00 (set by user; file has 00:00:00:00; non-drop)");
        assert!(describe(&overlay(&json!({"container": "png_pipe"}), None)).is_none());
    }

    #[test]
    fn validation_names_the_reason() {
        let e = validate("01:00:00:25", FrameRate::Fps25).unwrap_err().to_string();
        assert!(e.contains("frame 25 does not exist"), "{e}");
        let e = validate("00:01:00;00", FrameRate::Fps29_97Df).unwrap_err().to_string();
        assert!(e.contains("does not exist in 29.97 drop-frame"), "{e}");
        assert_eq!(validate("01.00.00.00", FrameRate::Fps24).unwrap(), "01:00:00:00");
        assert!(validate("-00:00:01:00", FrameRate::Fps24).unwrap_err().to_string().contains("negative"));
    }
}
