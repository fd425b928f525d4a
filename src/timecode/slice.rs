//! Slice names: `clip.mov@01:00:10:00-01:00:20:00+24`, resolved by the mount on lookup.

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
    TimecodeError::MalformedSlice {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Reads `+24`, `+24f`, `+2s`, `+1.5s` (after the `+`), returning the handles and the rest.
fn parse_handles<'a>(name: &str, s: &'a str) -> Result<(Handles, &'a str), TimecodeError> {
    let digits_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits_len == 0 {
        return Err(malformed(
            name,
            "'+' is not followed by a number of handle frames or seconds",
        ));
    }
    let too_big = || malformed(name, "the handles are too long");
    let whole: u32 = s[..digits_len].parse().map_err(|_| too_big())?;
    let rest = &s[digits_len..];
    if let Some(frac_and_rest) = rest.strip_prefix('.') {
        let frac_len = frac_and_rest.bytes().take_while(u8::is_ascii_digit).count();
        if frac_len > 0 {
            let Some(after) = frac_and_rest[frac_len..].strip_prefix('s') else {
                return Err(malformed(
                    name,
                    "fractional handles must be seconds, like +1.5s",
                ));
            };
            if frac_len > 3 {
                return Err(malformed(name, "handles take at most three decimals"));
            }
            let frac: u32 = frac_and_rest[..frac_len].parse().map_err(|_| too_big())?;
            let scale = 10u32.pow(3 - frac_len as u32);
            let ms = whole
                .checked_mul(1000)
                .and_then(|w| w.checked_add(frac * scale))
                .ok_or_else(too_big)?;
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
        let in_len = label_shape_len(rest);
        if in_len == 0 || !rest[in_len..].starts_with('-') {
            return None;
        }
        Some(SliceSpec::parse_after_shape(
            name,
            base,
            &rest[..in_len],
            &rest[in_len + 1..],
        ))
    }

    fn parse_after_shape(
        name: &str,
        base: &str,
        in_label: &str,
        after_dash: &str,
    ) -> Result<SliceSpec, TimecodeError> {
        if base.is_empty() {
            return Err(malformed(name, "there is no file name before '@'"));
        }
        let out_len = label_shape_len(after_dash);
        if out_len == 0 {
            return Err(malformed(name, "there is no out-point timecode after '-'"));
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
                _ => {
                    return Err(malformed(
                        name,
                        format!("it ends in '.{ext}', which is not the extension of {base:?}"),
                    ))
                }
            }
        }
        if !tail.is_empty() {
            return Err(malformed(name, format!("{tail:?} follows the out point")));
        }
        // Catch label typos now (`01,00:00:00`), even though frames need the clip's rate.
        for label in [in_label, out_label] {
            if let Err(TimecodeError::Syntax { reason, .. }) =
                Timecode::parse(label, FrameRate::Fps60)
            {
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

    /// Turns the labels into frames at the clip's rate.
    ///
    /// The clip's counting wins: `01:00:00:00` on a 29.97 DF clip is read as drop-frame (a
    /// user cannot be expected to type `;`), while `;` on a 29.97 non-drop clip is an error,
    /// because the same label names a different frame in the other counting and guessing
    /// would cut the wrong frames.
    pub fn resolve(&self, rate: FrameRate) -> Result<ResolvedSlice, TimecodeError> {
        let start = Timecode::parse_for_media(&self.in_label, rate)?;
        let end = Timecode::parse_for_media(&self.out_label, rate)?;
        if end.frames() <= start.frames() {
            return Err(TimecodeError::OutNotAfterIn {
                in_label: self.in_label.clone(),
                out_label: self.out_label.clone(),
            });
        }
        Ok(ResolvedSlice {
            range: TcRange { start, end },
            handle_frames: self.handles.frames(rate),
        })
    }

    /// The slice name for `base` and `range`, with `sep` (`:` or `.`) in the labels.
    pub fn name_for(base: &str, range: &TcRange, handles: Handles, sep: char) -> String {
        format!(
            "{base}@{}-{}{handles}",
            range.start.to_string_with_sep(sep),
            range.end.to_string_with_sep(sep)
        )
    }
}

/// The name this spec was read from, in canonical form.
impl fmt::Display for SliceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}-{}{}",
            self.base_name, self.in_label, self.out_label, self.handles
        )?;
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
        assert_eq!(
            spec("c.mov@01:00:10:00-01:00:20:00+24f").handles,
            Handles::Frames(24)
        );
        assert_eq!(
            spec("c.mov@01:00:10:00-01:00:20:00+0").handles,
            Handles::Frames(0)
        );
    }

    #[test]
    fn dotted_with_second_handles() {
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+2s");
        assert_eq!(s.in_label, "01.00.10.00");
        assert_eq!(s.handles, Handles::Seconds(2));
        assert_eq!(s.resolve(FrameRate::Fps24).unwrap().handle_frames, 48);
        assert_eq!(s.resolve(FrameRate::Fps23_976).unwrap().handle_frames, 48);
        assert_eq!(s.resolve(FrameRate::Fps29_97Df).unwrap().handle_frames, 60);
        assert_eq!(
            s.resolve(FrameRate::Fps59_94Ndf).unwrap().handle_frames,
            120
        );
        assert_eq!(Handles::Seconds(33).frames(FrameRate::Fps29_97Ndf), 990);
        assert_eq!(Handles::Seconds(34).frames(FrameRate::Fps29_97Ndf), 1019); // 1018.98
        assert_eq!(Handles::Seconds(34).frames(FrameRate::Fps30), 1020);
        let s = spec("clip.mov@01.00.10.00-01.00.20.00+1.5s");
        assert_eq!(s.handles, Handles::Millis(1500));
        assert_eq!(s.resolve(FrameRate::Fps24).unwrap().handle_frames, 36);
        assert_eq!(s.resolve(FrameRate::Fps29_97Ndf).unwrap().handle_frames, 45);
        assert_eq!(s.to_string(), "clip.mov@01.00.10.00-01.00.20.00+1.5s");
        assert_eq!(
            spec("c.mov@01:00:10:00-01:00:20:00+0.25s").handles,
            Handles::Millis(250)
        );
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
        assert!(
            matches!(e, TimecodeError::DropFrameLabelForNonDropMedia { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("non-drop"), "{e}");
        // ';' on a 25 fps clip.
        assert!(matches!(
            s.resolve(FrameRate::Fps25),
            Err(TimecodeError::DropFrameLabelAtNonDropRate { .. })
        ));
        // ':' labels on a DF clip are read as DF.
        let r = spec("clip.mov@01:00:00:00-01:00:00:10")
            .resolve(FrameRate::Fps29_97Df)
            .unwrap();
        assert_eq!(r.range.start.frames(), 107_892);
        assert_eq!(r.range.start.to_string(), "01:00:00;00");
        // A skipped label in a slice.
        let e = spec("clip.mov@00:01:00;00-00:01:01;00").resolve(FrameRate::Fps29_97Df);
        assert!(matches!(e, Err(TimecodeError::DroppedLabel { .. })));
        // Dotted drop-frame form.
        let r = spec("clip.mov@01.00.10;00-01.00.20;00")
            .resolve(FrameRate::Fps29_97Df)
            .unwrap();
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
        assert!(matches!(
            s.resolve(FrameRate::Fps24),
            Err(TimecodeError::OutNotAfterIn { .. })
        ));
        let s = spec("clip.mov@01:00:20:00-01:00:20:00");
        let e = s.resolve(FrameRate::Fps24).unwrap_err();
        assert!(e.to_string().contains("exclusive"), "{e}");
        // Field errors surface at resolve time, when the rate is known.
        let s = spec("clip.mov@01:00:20:24-01:00:30:00");
        assert!(matches!(
            s.resolve(FrameRate::Fps24),
            Err(TimecodeError::FrameOutOfRange { .. })
        ));
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

    #[test]
    fn name_round_trip() {
        let rate = FrameRate::Fps29_97Df;
        let range = TcRange::new(
            Timecode::from_frames(1798, rate),
            Timecode::from_frames(1802, rate),
        )
        .unwrap();
        for sep in [':', '.'] {
            let name = SliceSpec::name_for("clip.mov", &range, Handles::Seconds(2), sep);
            let r = spec(&name).resolve(rate).unwrap();
            assert_eq!(r.range, range, "{name}");
            assert_eq!(r.handle_frames, 60);
        }
        assert_eq!(
            SliceSpec::name_for("clip.mov", &range, Handles::None, '.'),
            "clip.mov@00.00.59;28-00.01.00;04"
        );
    }
}
