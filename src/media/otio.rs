//! OpenTimelineIO timelines (`.otio` JSON) read for a pull: every Clip, the media it
//! names and the range of that media it uses.
//!
//! Read the way the OpenTimelineIO library reads them: a clip without a `source_range`
//! uses its media reference's `available_range`, and the non-finite numbers the library
//! writes (`Inf`, `-Infinity`, `NaN`) are valid input. A file that is not OTIO at all
//! is an error; a clip whose range cannot be used is reported with the reason, and the
//! other clips are still read.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OtioError {
    #[error("not OTIO JSON: {0}; an .otio file is the JSON that OpenTimelineIO writes")]
    Json(String),
    #[error(
        "not an OTIO timeline: the top level is {0}, not an object with an \"OTIO_SCHEMA\" \
         (a timeline starts {{\"OTIO_SCHEMA\": \"Timeline.1\", ...}})"
    )]
    NotOtio(&'static str),
    #[error("no clips in the timeline: nothing to pull (is it empty, or only gaps and generators?)")]
    NoClips,
}

/// A time range in one rate: `start` and `duration` in frames at `rate` frames/second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OtioRange {
    pub start: f64,
    pub duration: f64,
    pub rate: f64,
}

impl OtioRange {
    /// Start and end (exclusive) as whole frames at `fps` (the media's rate), when
    /// the timeline counts at another rate.
    pub fn frames_at(&self, fps: f64) -> (i64, i64) {
        // 23.976 written for 24000/1001 is the same rate, not a 0.0001 % retime.
        let scale = if (fps - self.rate).abs() < 0.01 { 1.0 } else { fps / self.rate };
        let start = (self.start * scale).round() as i64;
        let end = ((self.start + self.duration) * scale).round() as i64;
        (start, end)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OtioClip {
    pub name: String,
    /// The active media reference's `target_url`, if it has one.
    pub target_url: Option<String>,
    /// The media range the clip uses, or why it has none usable.
    pub range: Result<OtioRange, String>,
    /// True when `range` came from the media reference's `available_range`
    /// (the clip's `source_range` was null).
    pub whole_media: bool,
    /// The media reference is a generator (black, bars): there is no media to pull.
    pub generator: Option<String>,
}

/// Reads every Clip of `text`, in document order.
pub fn parse_otio(text: &str) -> Result<Vec<OtioClip>, OtioError> {
    let relaxed = non_finite_to_null(text);
    let v: Value = serde_json::from_str(&relaxed).map_err(|e| OtioError::Json(e.to_string()))?;
    let kind = match &v {
        Value::Object(m) if m.get("OTIO_SCHEMA").is_some_and(Value::is_string) => None,
        Value::Object(_) => Some("an object without \"OTIO_SCHEMA\""),
        Value::Array(_) => Some("an array"),
        Value::String(_) => Some("a string"),
        Value::Number(_) => Some("a number"),
        Value::Bool(_) => Some("a boolean"),
        Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        return Err(OtioError::NotOtio(kind));
    }
    let mut found = Vec::new();
    collect_clips(&v, &mut found);
    if found.is_empty() {
        return Err(OtioError::NoClips);
    }
    Ok(found.into_iter().map(read_clip).collect())
}

fn read_clip(c: &Value) -> OtioClip {
    let name = c["name"].as_str().unwrap_or("").to_string();
    // OTIO < 0.15 (Clip.1): media_reference; Clip.2: media_references[active key].
    let key = c["active_media_reference_key"].as_str().unwrap_or("DEFAULT_MEDIA");
    let media = if c["media_reference"].is_object() { &c["media_reference"] } else { &c["media_references"][key] };
    let target_url = media["target_url"].as_str().filter(|u| !u.is_empty()).map(String::from);
    let (range, whole_media) = match &c["source_range"] {
        Value::Null => match &media["available_range"] {
            Value::Null => (Err("the clip has no source_range and its media reference no available_range".to_string()), true),
            r => (time_range(r).map_err(|e| format!("media reference available_range: {e}")), true),
        },
        r => (time_range(r).map_err(|e| format!("source_range: {e}")), false),
    };
    let generator = media["OTIO_SCHEMA"]
        .as_str()
        .is_some_and(|s| s.starts_with("GeneratorReference."))
        .then(|| media["generator_kind"].as_str().unwrap_or("generator").to_string());
    OtioClip { name, target_url, range, whole_media, generator }
}

fn time_range(r: &Value) -> Result<OtioRange, String> {
    let (start, start_rate) = rational_time(&r["start_time"]).map_err(|e| format!("start_time {e}"))?;
    let (duration, dur_rate) = rational_time(&r["duration"]).map_err(|e| format!("duration {e}"))?;
    if start < 0.0 {
        return Err(format!("start_time {start} is before the start of the media"));
    }
    if duration <= 0.0 {
        return Err(format!("duration {duration} is not a positive length"));
    }
    // OTIO allows the two to count at different rates; bring the duration to the start's.
    Ok(OtioRange { start, duration: duration * start_rate / dur_rate, rate: start_rate })
}

/// A RationalTime's (value, rate), refusing rates and values no media has.
fn rational_time(t: &Value) -> Result<(f64, f64), String> {
    let (Some(value), Some(rate)) = (t["value"].as_f64(), t["rate"].as_f64()) else {
        return Err(match (&t["value"], &t["rate"]) {
            (Value::Null, _) | (_, Value::Null) if t.is_object() => {
                "has a value or rate that is missing or not finite (NaN, Inf)".to_string()
            }
            _ => "is not a RationalTime {\"value\": N, \"rate\": R}".to_string(),
        });
    };
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("has rate {rate}; a rate is a positive number of frames per second"));
    }
    if !value.is_finite() {
        return Err(format!("has value {value}, which is not a number of frames"));
    }
    Ok((value, rate))
}

fn collect_clips<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.get("OTIO_SCHEMA").and_then(|s| s.as_str()).is_some_and(|s| s.starts_with("Clip.")) {
                out.push(v);
                return;
            }
            for x in m.values() {
                collect_clips(x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                collect_clips(x, out);
            }
        }
        _ => {}
    }
}

/// The JSON text with the non-finite literals OpenTimelineIO writes (`Inf`, `-Inf`,
/// `Infinity`, `-Infinity`, `NaN`) outside strings replaced by `null`, which serde_json
/// reads. Those values only appear in metadata or in ranges nothing can be pulled from.
fn non_finite_to_null(text: &str) -> std::borrow::Cow<'_, str> {
    const WORDS: &[&str] = &["-Infinity", "Infinity", "-Inf", "Inf", "NaN"];
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let word = WORDS
            .iter()
            .find(|w| b[i..].starts_with(w.as_bytes()) && !b.get(i + w.len()).is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_'));
        if let Some(w) = word {
            let s = out.get_or_insert_with(String::new);
            s.push_str(&text[copied..i]);
            s.push_str("null");
            i += w.len();
            copied = i;
            continue;
        }
        i += 1;
    }
    match out {
        Some(mut s) => {
            s.push_str(&text[copied..]);
            std::borrow::Cow::Owned(s)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(source_range: &str, media: &str) -> String {
        format!(
            r#"{{"OTIO_SCHEMA": "Timeline.1", "name": "t", "tracks": {{"OTIO_SCHEMA": "Stack.1",
            "children": [{{"OTIO_SCHEMA": "Track.1", "children": [
              {{"OTIO_SCHEMA": "Gap.1", "source_range": null}},
              {{"OTIO_SCHEMA": "Clip.1", "name": "shot_010", "source_range": {source_range},
                "media_reference": {media}}}]}}]}}}}"#
        )
    }

    const EXTERNAL: &str = r#"{"OTIO_SCHEMA": "ExternalReference.1",
        "target_url": "file:///media/A001C003.mov",
        "available_range": {"OTIO_SCHEMA": "TimeRange.1",
          "start_time": {"OTIO_SCHEMA": "RationalTime.1", "value": 86400.0, "rate": 24.0},
          "duration": {"OTIO_SCHEMA": "RationalTime.1", "value": 48.0, "rate": 24.0}}}"#;

    fn range(start: f64, dur: f64, rate: f64) -> String {
        format!(
            r#"{{"OTIO_SCHEMA": "TimeRange.1",
              "start_time": {{"OTIO_SCHEMA": "RationalTime.1", "value": {start}, "rate": {rate}}},
              "duration": {{"OTIO_SCHEMA": "RationalTime.1", "value": {dur}, "rate": {rate}}}}}"#
        )
    }

    #[test]
    fn clip_with_source_range() {
        let clips = parse_otio(&clip(&range(86410.0, 12.0, 24.0), EXTERNAL)).unwrap();
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].name, "shot_010");
        assert_eq!(clips[0].target_url.as_deref(), Some("file:///media/A001C003.mov"));
        let r = clips[0].range.clone().unwrap();
        assert_eq!(r.frames_at(24.0), (86410, 86422));
        assert!(!clips[0].whole_media);
    }

    #[test]
    fn null_source_range_uses_available_range() {
        let clips = parse_otio(&clip("null", EXTERNAL)).unwrap();
        let r = clips[0].range.clone().unwrap();
        assert_eq!(r.frames_at(24.0), (86400, 86448));
        assert!(clips[0].whole_media);
        let none = parse_otio(&clip("null", r#"{"OTIO_SCHEMA": "MissingReference.1"}"#)).unwrap();
        assert!(none[0].range.as_ref().unwrap_err().contains("available_range"));
    }

    #[test]
    fn inf_and_nan_literals_are_read() {
        let text = clip(&range(86410.0, 12.0, 24.0), EXTERNAL).replace(
            r#""name": "t","#,
            r#""name": "t", "metadata": {"a": Inf, "b": -Infinity, "c": NaN, "d": "Inf NaN", "e": [Infinity, -Inf]},"#,
        );
        let clips = parse_otio(&text).unwrap();
        assert_eq!(clips[0].range.clone().unwrap().frames_at(24.0), (86410, 86422));
        // A non-finite number where a range needs a number spoils that clip only.
        let bad = clip(&range(86410.0, 12.0, 24.0).replacen("86410", "NaN", 1), EXTERNAL);
        let clips = parse_otio(&bad).unwrap();
        assert!(clips[0].range.as_ref().unwrap_err().contains("not finite"), "{:?}", clips[0].range);
        // Words inside strings are left alone.
        assert_eq!(non_finite_to_null(r#"{"x": "NaN", "Inf": 1}"#), r#"{"x": "NaN", "Inf": 1}"#);
    }

    #[test]
    fn generator_references_are_marked() {
        let gen = r#"{"OTIO_SCHEMA": "GeneratorReference.1", "generator_kind": "SMPTEBars", "parameters": {}}"#;
        let clips = parse_otio(&clip(&range(0.0, 24.0, 24.0), gen)).unwrap();
        assert_eq!(clips[0].generator.as_deref(), Some("SMPTEBars"));
        assert_eq!(parse_otio(&clip(&range(0.0, 24.0, 24.0), EXTERNAL)).unwrap()[0].generator, None);
    }

    #[test]
    fn malformed_files_are_errors_with_the_reason() {
        assert!(matches!(parse_otio("{not json"), Err(OtioError::Json(_))));
        assert!(matches!(parse_otio(&"\u{1}\u{2}garbage".repeat(10)), Err(OtioError::Json(_))));
        assert_eq!(parse_otio("[]"), Err(OtioError::NotOtio("an array")));
        assert_eq!(parse_otio("{}"), Err(OtioError::NotOtio("an object without \"OTIO_SCHEMA\"")));
        let empty = r#"{"OTIO_SCHEMA": "Timeline.1", "tracks": {"OTIO_SCHEMA": "Stack.1", "children": []}}"#;
        assert_eq!(parse_otio(empty), Err(OtioError::NoClips));
    }

    #[test]
    fn zero_or_negative_rate_is_refused_per_clip() {
        for rate in ["0", "-24", "0.0"] {
            let text = clip(&range(86410.0, 12.0, 24.0).replacen("24", rate, 1), EXTERNAL);
            let clips = parse_otio(&text).unwrap();
            let e = clips[0].range.as_ref().unwrap_err();
            assert!(e.contains("positive number of frames per second"), "{rate}: {e}");
        }
        let neg = parse_otio(&clip(&range(86410.0, -5.0, 24.0), EXTERNAL)).unwrap();
        assert!(neg[0].range.as_ref().unwrap_err().contains("not a positive length"));
    }

    #[test]
    fn rates_of_start_and_duration_may_differ() {
        let r = range(86410.0, 12.0, 24.0).replacen(r#""value": 12, "rate": 24"#, r#""value": 0.5, "rate": 1"#, 1);
        let clips = parse_otio(&clip(&r, EXTERNAL)).unwrap();
        assert_eq!(clips[0].range.clone().unwrap().frames_at(24.0), (86410, 86422));
        // A 25 fps timeline range on 25 fps media, and on 50 fps media.
        let clips = parse_otio(&clip(&range(100.0, 25.0, 25.0), EXTERNAL)).unwrap();
        assert_eq!(clips[0].range.clone().unwrap().frames_at(50.0), (200, 250));
    }
}
