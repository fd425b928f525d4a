//! Slice names: `clip.mov@01:00:10:00-01:00:20:00+24`, resolved by the mount on lookup.
//!
//! Clips with no usable timecode (phone footage, variable frame rate) are cut by frame
//! number, `clip.mp4@f120-f240`, or by seconds, `clip.mp4@4.0s-9.5s`; both have the out
//! point exclusive and take the same handles. The in and out point must use the same
//! units. Frame numbers count the frames the clip shows from 0, in display order; a
//! seconds point names the first frame shown at or after that time.

use std::fmt;

use super::label::label_shape_len;
use super::{FrameRate, TcRange, Timecode, TimecodeError};

/// Extra material asked for on each side of a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handles {
    None,
    /// `+24` or `+24f`.
    Frames(u32),
    /// `+2s`.
    Seconds(u32),
    /// `+1.5s` (stored as 1500). Up to three decimals, so any handle a person types is exact.
    Millis(u32),
}

impl Handles {
    /// Handle length in frames at `rate`.
    ///
    /// Seconds are real seconds rounded up, `ceil(n * num / den)`: a handle is a safety
    /// margin, so it must never come out shorter than asked. At 29.97 this is 60 frames for
    /// `+2s`, and equals `n * nominal fps` for every handle under 33 s; `n * nominal fps`
    /// alone would be short by one frame per 33.4 s at NTSC rates.
    pub fn frames(&self, rate: FrameRate) -> i64 {
        let (num, den) = rate.num_den();
        let (num, den) = (i64::from(num), i64::from(den));
        let ceil_div = |a: i64, b: i64| (a + b - 1) / b;
        match *self {
            Handles::None => 0,
            Handles::Frames(n) => i64::from(n),
            Handles::Seconds(s) => ceil_div(i64::from(s) * num, den),
            Handles::Millis(ms) => ceil_div(i64::from(ms) * num, 1000 * den),
        }
    }
}

impl fmt::Display for Handles {
    /// The name suffix: empty, `+24`, `+2s`, `+1.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Handles::None => Ok(()),
            Handles::Frames(n) => write!(f, "+{n}"),
            Handles::Seconds(s) => write!(f, "+{s}s"),
            Handles::Millis(ms) => {
                let frac = format!("{:03}", ms % 1000);
                write!(f, "+{}.{}s", ms / 1000, frac.trim_end_matches('0'))
            }
        }
    }
}

/// What the in and out points of a slice name count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceUnits {
    /// `HH:MM:SS:FF` labels, resolved at the clip's rate from its start timecode.
    Timecode,
    /// `fN`: frame N of the clip, counted from 0 in display order.
    Frames,
    /// `Ns` / `N.NNNs`: presentation time from the clip's first frame.
    Seconds,
}

/// A frame point `f120` -> 120; anything else `None`.
fn frame_point(label: &str) -> Option<u64> {
    let digits = label.strip_prefix('f')?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A seconds point `4.5s` -> 4500 (milliseconds); up to three decimals, so any time a
/// person types is exact.
fn millis_point(label: &str) -> Option<u64> {
    let body = label.strip_suffix('s')?;
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || frac.len() > 3 || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    if body.contains('.') && frac.is_empty() {
        return None;
    }
    let w: u64 = whole.parse().ok()?;
    let f: u64 = if frac.is_empty() { 0 } else { frac.parse::<u64>().ok()? * 10u64.pow(3 - frac.len() as u32) };
    Some(w * 1000 + f)
}

/// Length of a frame (`f120`) or seconds (`4.0s`) point at the start of `s`, 0 if none.
fn point_shape_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first() == Some(&b'f') {
        let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        return if n > 0 { n + 1 } else { 0 };
    }
    let whole = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if whole == 0 {
        return 0;
    }
    let mut pos = whole;
    if b.get(pos) == Some(&b'.') {
        let frac = b[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return 0;
        }
        pos += 1 + frac;
    }
    if b.get(pos) == Some(&b's') {
        pos + 1
    } else {
        0
    }
}

/// A parsed slice name. Labels are kept as typed because they can only be turned into frames
/// once the clip's rate is known (from its probe), which the name parser does not have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SliceSpec {
    pub base_name: String,
    pub in_label: String,
    pub out_label: String,
    pub handles: Handles,
    /// `clip.mov@01.00.10.00-01.00.20.00.mov`: a repeat of the base name's extension at the
    /// end, accepted so a slice can keep an extension that Finder, Explorer and NLEs
    /// recognise (with `.` labels the name would otherwise end in `.00`).
    pub trailing_ext: Option<String>,
}

/// A slice resolved at its clip's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolvedSlice {
    /// In to out, out exclusive, without handles.
    pub range: TcRange,
    /// Frames of handle on each side.
    pub handle_frames: i64,
}

impl ResolvedSlice {
    /// The range including handles. Not clamped to the media: the media layer knows where
    /// the clip starts and ends, and a conform wants to be told a handle was short.
    pub fn with_handles(&self) -> TcRange {
        self.range.widened(self.handle_frames, self.handle_frames)
    }
}

fn malformed(name: &str, reason: impl Into<String>) -> TimecodeError {
    TimecodeError::MalformedSlice { name: name.to_string(), reason: reason.into() }
}

/// Reads `+24`, `+24f`, `+2s`, `+1.5s` (after the `+`), returning the handles and the rest.
fn parse_handles<'a>(name: &str, s: &'a str) -> Result<(Handles, &'a str), TimecodeError> {
    let digits_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits_len == 0 {
        return Err(malformed(name, "'+' is not followed by a number of handle frames or seconds"));
    }
    let too_big = || malformed(name, "the handles are too long");
    let whole: u32 = s[..digits_len].parse().map_err(|_| too_big())?;
    let rest = &s[digits_len..];
    if let Some(frac_and_rest) = rest.strip_prefix('.') {
        let frac_len = frac_and_rest.bytes().take_while(u8::is_ascii_digit).count();
        if frac_len > 0 {
            let Some(after) = frac_and_rest[frac_len..].strip_prefix('s') else {
                return Err(malformed(name, "fractional handles must be seconds, like +1.5s"));
            };
            if frac_len > 3 {
                return Err(malformed(name, "handles take at most three decimals"));
            }
            let frac: u32 = frac_and_rest[..frac_len].parse().map_err(|_| too_big())?;
            let scale = 10u32.pow(3 - frac_len as u32);
            let ms = whole.checked_mul(1000).and_then(|w| w.checked_add(frac * scale)).ok_or_else(too_big)?;
            return Ok((Handles::Millis(ms), after));
        }
    }
    if let Some(after) = rest.strip_prefix('s') {
        return Ok((Handles::Seconds(whole), after));
    }
    let after = rest.strip_prefix('f').unwrap_or(rest);
    Ok((Handles::Frames(whole), after))
}

fn extension(name: &str) -> Option<&str> {
    let dot = name.rfind('.')?;
    let ext = &name[dot + 1..];
    (dot > 0 && !ext.is_empty()).then_some(ext)
}

impl SliceSpec {
    /// Reads a directory entry name as a slice request.
    ///
    /// `None` means "not a slice, look the name up normally": that is the answer unless the
    /// text after the *last* `@` starts with a timecode followed by `-`, so `foo@bar.mov`,
    /// `mail@host.txt` and `shot@01.02.03.04.exr` stay ordinary files. Once a name has that
    /// shape it is a slice request, and anything wrong with it is `Some(Err)` so the user is
    /// told why rather than getting a bare "no such file".
    pub fn parse_name(name: &str) -> Option<Result<SliceSpec, TimecodeError>> {
        let at = name.rfind('@')?;
        let base = &name[..at];
        let rest = &name[at + 1..];
        let mut in_len = label_shape_len(rest);
        if in_len == 0 {
            in_len = point_shape_len(rest);
        }
        if in_len == 0 || !rest[in_len..].starts_with('-') {
            return None;
        }
        Some(SliceSpec::parse_after_shape(name, base, &rest[..in_len], &rest[in_len + 1..]))
    }

    fn parse_after_shape(name: &str, base: &str, in_label: &str, after_dash: &str) -> Result<SliceSpec, TimecodeError> {
        if base.is_empty() {
            return Err(malformed(name, "there is no file name before '@'"));
        }
        let in_is_point = label_shape_len(in_label) == 0;
        let out_len = if in_is_point { point_shape_len(after_dash) } else { label_shape_len(after_dash) };
        if out_len == 0 {
            let reason = if in_is_point {
                "there is no out point of the same kind after '-' (fN-fN for frames, N.Ns-N.Ns for seconds)"
            } else {
                "there is no out-point timecode after '-'"
            };
            return Err(malformed(name, reason));
        }
        let out_label = &after_dash[..out_len];
        let mut tail = &after_dash[out_len..];
        let mut handles = Handles::None;
        if let Some(h) = tail.strip_prefix('+') {
            let (parsed, after) = parse_handles(name, h)?;
            handles = parsed;
            tail = after;
        }
        let mut trailing_ext = None;
        if let Some(ext) = tail.strip_prefix('.') {
            match extension(base) {
                Some(base_ext) if base_ext.eq_ignore_ascii_case(ext) => {
                    trailing_ext = Some(ext.to_string());
                    tail = "";
                }
                _ => return Err(malformed(name, format!("it ends in '.{ext}', which is not the extension of {base:?}"))),
            }
        }
        if !tail.is_empty() {
            return Err(malformed(name, format!("{tail:?} follows the out point")));
        }
        if in_is_point {
            let units = |l: &str| match (frame_point(l), millis_point(l)) {
                (Some(_), _) => Some(SliceUnits::Frames),
                (_, Some(_)) => Some(SliceUnits::Seconds),
                _ => None,
            };
            match (units(in_label), units(out_label)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(_), Some(_)) => return Err(malformed(name, "the in and out point use different units; write fN-fN or N.Ns-N.Ns")),
                _ => return Err(malformed(name, "a frame number or time is too long, or a time has more than three decimals")),
            }
        }
        // Catch label typos now (`01,00:00:00`), even though frames need the clip's rate.
        for label in [in_label, out_label].into_iter().filter(|_| !in_is_point) {
            if let Err(TimecodeError::Syntax { reason, .. }) = Timecode::parse(label, FrameRate::Fps60) {
                return Err(malformed(name, format!("{label}: {reason}")));
            }
        }
        Ok(SliceSpec {
            base_name: base.to_string(),
            in_label: in_label.to_string(),
            out_label: out_label.to_string(),
            handles,
            trailing_ext,
        })
    }

    /// What the in and out points count in.
    pub fn units(&self) -> SliceUnits {
        if frame_point(&self.in_label).is_some() {
            SliceUnits::Frames
        } else if millis_point(&self.in_label).is_some() {
            SliceUnits::Seconds
        } else {
            SliceUnits::Timecode
        }
    }

    /// `fIN-fOUT` as frame numbers (out exclusive), checked in < out.
    pub fn frame_points(&self) -> Option<Result<(u64, u64), TimecodeError>> {
        let (a, b) = (frame_point(&self.in_label)?, frame_point(&self.out_label)?);
        Some(self.ordered(a, b))
    }

    /// `IN s-OUT s` in milliseconds (out exclusive), checked in < out.
    pub fn millis_points(&self) -> Option<Result<(u64, u64), TimecodeError>> {
        let (a, b) = (millis_point(&self.in_label)?, millis_point(&self.out_label)?);
        Some(self.ordered(a, b))
    }

    fn ordered(&self, a: u64, b: u64) -> Result<(u64, u64), TimecodeError> {
        if b <= a {
            return Err(TimecodeError::OutNotAfterIn { in_label: self.in_label.clone(), out_label: self.out_label.clone() });
        }
        Ok((a, b))
    }

    /// Turns the labels into frames at the clip's rate.
    ///
    /// The clip's counting wins: `01:00:00:00` on a 29.97 DF clip is read as drop-frame (a
    /// user cannot be expected to type `;`), while `;` on a 29.97 non-drop clip is an error,
    /// because the same label names a different frame in the other counting and guessing
    /// would cut the wrong frames.
    pub fn resolve(&self, rate: FrameRate) -> Result<ResolvedSlice, TimecodeError> {
        if self.units() != SliceUnits::Timecode {
            return Err(malformed(&self.to_string(), "frame and seconds points are resolved against the clip itself, not a rate"));
        }
        let start = Timecode::parse_for_media(&self.in_label, rate)?;
        let end = Timecode::parse_for_media(&self.out_label, rate)?;
        if end.frames() <= start.frames() {
            return Err(TimecodeError::OutNotAfterIn { in_label: self.in_label.clone(), out_label: self.out_label.clone() });
        }
        Ok(ResolvedSlice { range: TcRange { start, end }, handle_frames: self.handles.frames(rate) })
    }

    /// The slice name for `base` and `range`, with `sep` (`:` or `.`) in the labels.
    pub fn name_for(base: &str, range: &TcRange, handles: Handles, sep: char) -> String {
        format!("{base}@{}-{}{handles}", range.start.to_string_with_sep(sep), range.end.to_string_with_sep(sep))
    }
}

/// The name this spec was read from, in canonical form.
impl fmt::Display for SliceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}-{}{}", self.base_name, self.in_label, self.out_label, self.handles)?;
        if let Some(ext) = &self.trailing_ext {
            write!(f, ".{ext}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> SliceSpec {
        match SliceSpec::parse_name(name) {
            Some(Ok(s)) => s,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn err(name: &str) -> String {
        match SliceSpec::parse_name(name) {
            Some(Err(e)) => e.to_string(),
            other => panic!("{name}: expected a malformed slice, got {other:?}"),
        }
    }

    #[test]
    fn plain_range() {
        let s = spec("clip.mov@01:00:10:00-01:00:20:00");
        assert_eq!(s.base_name, "clip.mov");
        assert_eq!(s.in_label, "01:00:10:00");
        assert_eq!(s.out_label, "01:00:20:00");
        assert_eq!(s.handles, Handles::None);
        let r = s.resolve(FrameRate::Fps24).unwrap();
        assert_eq!(r.range.len_frames(), 240);
        assert_eq!(r.range.start.frames(), 86_400 + 240);
        assert_eq!(r.handle_frames, 0);
        assert_eq!(s.to_string(), "clip.mov@01:00:10:00-01:00:20:00");
    }

    #[test]
    fn frame_handles() {
        let s = spec("clip.mov@01:00:10:00-01:00:20:00+24");
        assert_eq!(s.handles, Handles::Frames(24));
        let r = s.resolve(FrameRate::Fps25).unwrap();
        assert_eq!(r.handle_frames, 24);
        assert_eq!(r.with_handles().len_frames(), 250 + 48);
        assert_eq!(spec("c.mov@01:00:10:00-01:00:20:00+24f").handles, Handles::Frames(24));
        assert_eq!(spec("c.mov@01:00:10:00-01:00:20:00+0").handles, Handles::Frames(0));
    }

    #[test]
    fn dotted_with_second_handles() {
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+2s");
        assert_eq!(s.in_label, "01.00.10.00");
        assert_eq!(s.handles, Handles::Seconds(2));
        assert_eq!(s.resolve(FrameRate::Fps24).unwrap().handle_frames, 48);
        assert_eq!(s.resolve(FrameRate::Fps23_976).unwrap().handle_frames, 48);
        assert_eq!(s.resolve(FrameRate::Fps29_97Df).unwrap().handle_frames, 60);
        assert_eq!(s.resolve(FrameRate::Fps59_94Ndf).unwrap().handle_frames, 120);
        assert_eq!(Handles::Seconds(33).frames(FrameRate::Fps29_97Ndf), 990);
        assert_eq!(Handles::Seconds(34).frames(FrameRate::Fps29_97Ndf), 1019); // 1018.98
        assert_eq!(Handles::Seconds(34).frames(FrameRate::Fps30), 1020);
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+1.5s");
        assert_eq!(s.handles, Handles::Millis(1500));
        assert_eq!(s.resolve(FrameRate::Fps24).unwrap().handle_frames, 36);
        assert_eq!(s.resolve(FrameRate::Fps29_97Ndf).unwrap().handle_frames, 45);
        assert_eq!(s.to_string(), "clip.mov@01.00.10.00-01.00.20.00+1.5s");
        assert_eq!(spec("c.mov@01:00:10:00-01:00:20:00+0.25s").handles, Handles::Millis(250));
        assert_eq!(Handles::Millis(250).to_string(), "+0.25s");
    }

    #[test]
    fn drop_frame_slice() {
        let s = spec("clip.mov@00:00:59;28-00:01:00;04");
        let r = s.resolve(FrameRate::Fps29_97Df).unwrap();
        assert_eq!(r.range.start.frames(), 1798);
        assert_eq!(r.range.end.frames(), 1802);
        assert_eq!(r.range.len_frames(), 4);
        // ';' on a non-drop 29.97 clip is refused, with a reason.
        let e = s.resolve(FrameRate::Fps29_97Ndf).unwrap_err();
        assert!(matches!(e, TimecodeError::DropFrameLabelForNonDropMedia { .. }), "{e}");
        assert!(e.to_string().contains("non-drop"), "{e}");
        // ';' on a 25 fps clip.
        assert!(matches!(s.resolve(FrameRate::Fps25), Err(TimecodeError::DropFrameLabelAtNonDropRate { .. })));
        // ':' labels on a DF clip are read as DF.
        let r = spec("clip.mov@01:00:00:00-01:00:00:10").resolve(FrameRate::Fps29_97Df).unwrap();
        assert_eq!(r.range.start.frames(), 107_892);
        assert_eq!(r.range.start.to_string(), "01:00:00;00");
        // A skipped label in a slice.
        let e = spec("clip.mov@00:01:00;00-00:01:01;00").resolve(FrameRate::Fps29_97Df);
        assert!(matches!(e, Err(TimecodeError::DroppedLabel { .. })));
        // Dotted drop-frame form.
        let r = spec("clip.mov@01.00.10;00-01.00.20;00").resolve(FrameRate::Fps29_97Df).unwrap();
        assert_eq!(r.range.start.to_string(), "01:00:10;00");
    }

    #[test]
    fn not_slices() {
        for name in [
            "foo@bar.mov",
            "mail@host.txt",
            "photo@2x.png",
            "shot@01.02.03.04.exr",
            "take@01:00:00:00",
            "plain.mov",
            "a@b@c",
            "x@",
            "@",
            "clip.mov@01:00:00-01:00:01",
            "clip.mov@v2-01:00:00:00-01:00:01:00",
            "render@2024.01.05-final.mov",
        ] {
            assert!(SliceSpec::parse_name(name).is_none(), "{name}");
        }
        // The last '@' decides.
        let s = spec("me@host clip.mov@01:00:00:00-01:00:01:00");
        assert_eq!(s.base_name, "me@host clip.mov");
        assert!(SliceSpec::parse_name("clip.mov@01:00:00:00-01:00:01:00@x").is_none());
    }

    #[test]
    fn malformed() {
        assert!(err("clip.mov@01:00:00:00-").contains("no out-point"));
        assert!(err("clip.mov@01:00:00:00-01:00").contains("no out-point"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00+").contains("'+'"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00+x").contains("'+'"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00+1.5").contains("seconds"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00+1.2345s").contains("three decimals"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00+99999999999").contains("too long"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00junk").contains("junk"));
        assert!(err("clip.mov@01:00:00:00-01:00:01:00.mp4").contains("extension"));
        assert!(err("@01:00:00:00-01:00:01:00").contains("no file name"));
        assert!(err("clip.mov@01,00:00:00-01:00:01:00").contains("',' may only"));
        // Every error names the slice grammar.
        assert!(err("clip.mov@01:00:00:00-").contains("NAME@HH:MM:SS:FF-HH:MM:SS:FF"));
    }

    #[test]
    fn out_not_after_in() {
        let s = spec("clip.mov@01:00:20:00-01:00:10:00");
        assert!(matches!(s.resolve(FrameRate::Fps24), Err(TimecodeError::OutNotAfterIn { .. })));
        let s = spec("clip.mov@01:00:20:00-01:00:20:00");
        let e = s.resolve(FrameRate::Fps24).unwrap_err();
        assert!(e.to_string().contains("exclusive"), "{e}");
        // Field errors surface at resolve time, when the rate is known.
        let s = spec("clip.mov@01:00:20:24-01:00:30:00");
        assert!(matches!(s.resolve(FrameRate::Fps24), Err(TimecodeError::FrameOutOfRange { .. })));
        assert!(s.resolve(FrameRate::Fps25).is_ok());
    }

    #[test]
    fn trailing_extension() {
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+24.mov");
        assert_eq!(s.handles, Handles::Frames(24));
        assert_eq!(s.trailing_ext.as_deref(), Some("mov"));
        let s = spec("A001C003.MOV@01.00.10.00-01.00.20.00.mov");
        assert_eq!(s.out_label, "01.00.20.00");
        assert_eq!(s.to_string(), "A001C003.MOV@01.00.10.00-01.00.20.00.mov");
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+1.5s.mov");
        assert_eq!(s.handles, Handles::Millis(1500));
    }

    // Killed `frac_len > 3` -> `>=` (scripts/mutants): three decimals are allowed.
    #[test]
    fn handles_take_three_decimals_not_four() {
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+1.125s");
        assert_eq!(s.handles, Handles::Millis(1125));
        assert!(err("clip.mov@01.00.10.00-01.00.20.00+1.1250s").contains("at most three decimals"));
    }

    // Killed `dot > 0 && !ext.is_empty()` -> `||` / `dot >= 0` (scripts/mutants): a name
    // that only starts with a dot, or ends in one, has no extension to repeat.
    #[test]
    fn extension_of_dot_names() {
        assert_eq!(extension("clip.mov"), Some("mov"));
        assert_eq!(extension(".mov"), None);
        assert_eq!(extension("clip."), None);
        assert_eq!(extension("clip"), None);
        assert!(err(".mov@01.00.10.00-01.00.20.00.mov").contains("not the extension"));
    }

    // Killed by scripts/mutants: the bounds of frame_point and millis_point (12 frame digits,
    // 9 whole-second digits, digits only). Rust's integer parse takes a leading '+', so the
    // digit checks are what refuse `f+5`, `+1.5s` and `1.+5s`.
    #[test]
    fn point_lengths_and_digits() {
        assert_eq!(frame_point("f999999999999"), Some(999_999_999_999));
        assert_eq!(frame_point("f1000000000000"), None);
        assert_eq!(frame_point("f"), None);
        assert_eq!(frame_point("f+5"), None);
        assert_eq!(frame_point("f12a"), None);
        assert_eq!(millis_point("999999999.999s"), Some(999_999_999_999));
        assert_eq!(millis_point("1000000000s"), None);
        assert_eq!(millis_point("s"), None);
        assert_eq!(millis_point("+1.5s"), None);
        assert_eq!(millis_point("1.+5s"), None);
        assert_eq!(millis_point("1.5xs"), None);
    }

    #[test]
    fn name_round_trip() {
        let rate = FrameRate::Fps29_97Df;
        let range = TcRange::new(Timecode::from_frames(1798, rate), Timecode::from_frames(1802, rate)).unwrap();
        for sep in [':', '.'] {
            let name = SliceSpec::name_for("clip.mov", &range, Handles::Seconds(2), sep);
            let r = spec(&name).resolve(rate).unwrap();
            assert_eq!(r.range, range, "{name}");
            assert_eq!(r.handle_frames, 60);
        }
        assert_eq!(SliceSpec::name_for("clip.mov", &range, Handles::None, '.'), "clip.mov@00.00.59;28-00.01.00;04");
    }

    #[test]
    fn frame_and_seconds_points() {
        let s = spec("clip.mp4@f120-f240");
        assert_eq!(s.units(), SliceUnits::Frames);
        assert_eq!(s.frame_points().unwrap().unwrap(), (120, 240));
        assert!(s.millis_points().is_none());
        assert_eq!(s.to_string(), "clip.mp4@f120-f240");
        let s = spec("clip.mp4@f0-f1+12.mp4");
        assert_eq!(s.handles, Handles::Frames(12));
        assert_eq!(s.trailing_ext.as_deref(), Some("mp4"));
        let s = spec("clip.mp4@4.0s-9.5s");
        assert_eq!(s.units(), SliceUnits::Seconds);
        assert_eq!(s.millis_points().unwrap().unwrap(), (4000, 9500));
        let s = spec("clip.mp4@4s-9.125s+1.5s");
        assert_eq!(s.millis_points().unwrap().unwrap(), (4000, 9125));
        assert_eq!(s.handles, Handles::Millis(1500));
        // A timecode spec still resolves by rate; a frame spec does not pretend to.
        assert!(spec("clip.mp4@f1-f2").resolve(FrameRate::Fps25).is_err());
        assert_eq!(spec("c.mov@01:00:00:00-01:00:01:00").units(), SliceUnits::Timecode);
    }

    #[test]
    fn frame_and_seconds_refusals() {
        assert!(matches!(spec("clip.mp4@f240-f120").frame_points(), Some(Err(TimecodeError::OutNotAfterIn { .. }))));
        assert!(matches!(spec("clip.mp4@9.5s-9.5s").millis_points(), Some(Err(TimecodeError::OutNotAfterIn { .. }))));
        assert!(err("clip.mp4@f120-9.5s").contains("out point"), "{}", err("clip.mp4@f120-9.5s"));
        assert!(err("clip.mp4@4s-f9").contains("out point"));
        assert!(err("clip.mp4@4.1234s-5s").contains("three decimals"));
        assert!(err("clip.mp4@f1-f2x").contains("follows the out point"));
        // Ordinary names stay ordinary.
        for name in ["take@5x-final.mov", "a@f-b.mov", "b@fx1-2.mov", "c@4.s-5s.mov", "mail@f.txt"] {
            assert!(SliceSpec::parse_name(name).is_none(), "{name}");
        }
    }

    proptest::proptest! {
        #[test]
        fn frame_points_round_trip(a in 0u64..10_000_000, len in 1u64..10_000_000) {
            let name = format!("c.mp4@f{a}-f{}", a + len);
            let s = spec(&name);
            proptest::prop_assert_eq!(s.frame_points().unwrap().unwrap(), (a, a + len));
            proptest::prop_assert_eq!(s.to_string(), name);
        }

        #[test]
        fn seconds_points_are_exact(a in 0u64..100_000_000, len in 1u64..100_000_000) {
            let fmt = |ms: u64| format!("{}.{:03}s", ms / 1000, ms % 1000);
            let s = spec(&format!("c.mp4@{}-{}", fmt(a), fmt(a + len)));
            proptest::prop_assert_eq!(s.millis_points().unwrap().unwrap(), (a, a + len));
        }
    }
}
