//! Where a clip's timecode comes from, as every reader shows it: the file's own
//! (`file`), one a user recorded with `reelfs tc set` (`user`, see archive/tcfacts.rs),
//! or none, in which case slices count from 00:00:00:00 (`assumed`) and every listing
//! says so rather than showing a timecode the file does not have.

use crate::archive::tcfacts::TcFact;
use crate::timecode::{FrameRate, Timecode, TimecodeError};
use serde_json::Value;

use super::facts::MediaFacts;
pub use super::facts::ASSUMED_NOTE;

/// The probed facts with the user's fact laid over them, and `timecode_source` set
/// (see `MediaFacts::with_user_fact`), for callers that still hold facts as JSON.
pub fn overlay(facts: &Value, user: Option<&TcFact>) -> Value {
    match MediaFacts::from_value(facts) {
        Some(f) => f.with_user_fact(user).to_value(),
        None => facts.clone(),
    }
}

/// The timecode line of `info` (see `MediaFacts::describe_timecode`).
pub fn describe(f: &Value) -> Option<String> {
    MediaFacts::from_value(f).and_then(|f| f.describe_timecode())
}

/// Checks a timecode a user wants to record: valid at `rate` (the one given with
/// `--rate`, else the clip's), returned in canonical form.
pub fn validate(label: &str, rate: FrameRate) -> Result<String, TimecodeError> {
    let tc = Timecode::parse_for_media(label, rate)?;
    if tc.frames() < 0 {
        return Err(TimecodeError::Syntax { input: label.to_string(), reason: "a start timecode cannot be negative".into() });
    }
    Ok(tc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
