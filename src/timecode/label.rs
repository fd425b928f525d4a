//! `Timecode` (a frame count at a rate), its labels, its arithmetic, and audio sample mapping.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use super::{FrameRate, TimecodeError};

/// A position: a frame count since `00:00:00:00` at a frame rate.
///
/// Frames are `i64` and may be negative (QuickTime's tmcd has a "negative allowed" flag, and
/// subtracting handles from an in point near zero must not wrap). Hours never wrap at 24:
/// an archive holds recordings longer than a day and a 24-hour wrap would silently alias
/// them, so `25:00:00:00` is simply a later frame. Labels of negative positions are written
/// with a leading `-` and the label of the absolute frame count. Parsing takes up to six
/// hour digits (114 years at 24 fps); positions beyond that format but do not parse back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timecode {
    frames: i64,
    rate: FrameRate,
}

/// The fields of a label. Hours are unbounded (see [`Timecode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcFields {
    pub negative: bool,
    pub hours: u64,
    pub minutes: u32,
    pub seconds: u32,
    pub frames: u32,
}

/// What to do when a label says drop-frame (`;`) and the rate says non-drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DfPolicy {
    /// The label wins where the rate has a drop-frame twin (29.97, 59.94).
    FollowLabel,
    /// The media's counting is known; a disagreeing label is an error.
    MediaWins,
}

/// A lexed label before it meets a rate.
struct RawLabel {
    negative: bool,
    hours: u64,
    minutes: u32,
    seconds: u32,
    frames: u32,
    drop_sep: bool,
    /// The separator the user typed between hours and minutes, reused in suggestions.
    style_sep: char,
}

/// Label separators, in the order of their fields: `.` stands for `:` because Windows and
/// SMB shares cannot carry `:` in a file name; `,` before the frames is a drop-frame mark
/// some tools use where `;` is awkward.
fn is_sep(b: u8) -> bool {
    matches!(b, b':' | b'.' | b';' | b',')
}

/// The length in bytes of a timecode-shaped prefix of `s` (`H+ sep MM sep SS sep FF`, hours
/// 1 to 6 digits), or 0. Used to decide whether a file name is a slice request before
/// committing to reading it as one.
pub(super) fn label_shape_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut pos = 0;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos == 0 || pos > 6 {
        return 0;
    }
    for _ in 0..3 {
        let ok = b.len() >= pos + 3 && is_sep(b[pos]) && b[pos + 1].is_ascii_digit() && b[pos + 2].is_ascii_digit();
        if !ok {
            return 0;
        }
        pos += 3;
    }
    pos
}

fn lex(input: &str) -> Result<RawLabel, TimecodeError> {
    let label = input.trim();
    let err = |reason: String| TimecodeError::Syntax { input: label.to_string(), reason };
    let (negative, body) = match label.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, label),
    };
    let bytes = body.as_bytes();
    let mut values = [0u64; 4];
    let mut seps = [b':'; 3];
    let mut pos = 0;
    for (i, value) in values.iter_mut().enumerate() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits = &body[start..pos];
        if digits.is_empty() {
            return Err(err(match body[pos..].chars().next() {
                None => "it has fewer than four fields".to_string(),
                Some(c) => format!("unexpected {c:?}"),
            }));
        }
        if i == 0 && digits.len() > 6 {
            return Err(err("hours have more than 6 digits".to_string()));
        }
        if i > 0 && digits.len() != 2 {
            return Err(err("minutes, seconds and frames take two digits each".to_string()));
        }
        *value = digits.parse().map_err(|_| err("a field is not a number".to_string()))?;
        if i < 3 {
            match bytes.get(pos) {
                Some(&c) if is_sep(c) => seps[i] = c,
                Some(_) => {
                    let c = body[pos..].chars().next().unwrap_or('?');
                    return Err(err(format!("unexpected {c:?} after a field")));
                }
                None => return Err(err("it has fewer than four fields".to_string())),
            }
            pos += 1;
        }
    }
    if pos != bytes.len() {
        return Err(err("there is text after the frames".to_string()));
    }
    if seps[..2].contains(&b',') {
        return Err(err("',' may only stand before the frames".to_string()));
    }
    let drop_sep = matches!(seps[2], b';' | b',');
    // Premiere writes drop-frame as 00;00;00;00, so `;` elsewhere is fine when the frames
    // agree; `;` early with `:` before the frames is a typo we should not guess about.
    if seps[..2].contains(&b';') && !drop_sep {
        return Err(err("';' marks drop-frame but the frames are not separated by ';'".to_string()));
    }
    Ok(RawLabel {
        negative,
        hours: values[0],
        // Two digits each: these fit in u32.
        minutes: values[1] as u32,
        seconds: values[2] as u32,
        frames: values[3] as u32,
        drop_sep,
        style_sep: if seps[0] == b'.' { '.' } else { ':' },
    })
}

fn resolve(input: &str, rate: FrameRate, policy: DfPolicy) -> Result<Timecode, TimecodeError> {
    let raw = lex(input)?;
    let label = input.trim().to_string();
    let rate = if raw.drop_sep && !rate.is_drop_frame() {
        match (policy, rate.with_drop_frame(true)) {
            (DfPolicy::FollowLabel, Some(df)) => df,
            (DfPolicy::MediaWins, Some(_)) => return Err(TimecodeError::DropFrameLabelForNonDropMedia { label, rate }),
            (_, None) => return Err(TimecodeError::DropFrameLabelAtNonDropRate { label, rate }),
        }
    } else {
        // A `:` label at a drop-frame rate is read as drop-frame: people type `:` out of
        // habit and the media's counting is not in doubt.
        rate
    };
    let fields = TcFields { negative: raw.negative, hours: raw.hours, minutes: raw.minutes, seconds: raw.seconds, frames: raw.frames };
    check_fields(&fields, rate, &label, raw.style_sep)?;
    Ok(Timecode { frames: frames_from_fields(&fields, rate), rate })
}

fn check_fields(f: &TcFields, rate: FrameRate, label: &str, style_sep: char) -> Result<(), TimecodeError> {
    for (field, value) in [("minutes", f.minutes), ("seconds", f.seconds)] {
        if value >= 60 {
            return Err(TimecodeError::FieldOutOfRange { label: label.to_string(), field, value });
        }
    }
    if f.frames >= rate.nominal_fps() {
        return Err(TimecodeError::FrameOutOfRange { label: label.to_string(), value: f.frames, rate });
    }
    if f.hours > 999_999 {
        return Err(TimecodeError::Overflow { what: "an hours field above 999999" });
    }
    let dropped = rate.dropped_per_minute();
    if f.seconds == 0 && !f.minutes.is_multiple_of(10) && f.frames < dropped {
        let s = style_sep;
        return Err(TimecodeError::DroppedLabel {
            label: label.to_string(),
            rate,
            first_valid: format!(
                "{sign}{h:02}{s}{m:02}{s}00;{d:02}",
                sign = if f.negative { "-" } else { "" },
                h = f.hours,
                m = f.minutes,
                d = dropped
            ),
        });
    }
    Ok(())
}

/// Label fields to a frame count; the fields must already be valid at `rate`.
///
/// Drop-frame skips `dropped` labels in every minute except each tenth, so the count is the
/// plain label count less the skipped labels of the minutes already begun.
fn frames_from_fields(f: &TcFields, rate: FrameRate) -> i64 {
    let n = i64::from(rate.nominal_fps());
    let d = i64::from(rate.dropped_per_minute());
    // hours <= 999_999 (checked), so every product here stays far below i64::MAX.
    let total_minutes = f.hours as i64 * 60 + i64::from(f.minutes);
    let labels = (total_minutes * 60 + i64::from(f.seconds)) * n + i64::from(f.frames);
    let count = labels - d * (total_minutes - total_minutes / 10);
    if f.negative {
        -count
    } else {
        count
    }
}

/// A frame count to label fields: the inverse of [`frames_from_fields`] by the usual
/// 10-minute-block decomposition (17982 frames per block at 29.97 DF).
fn fields_from_frames(frames: i64, rate: FrameRate) -> TcFields {
    let n = u64::from(rate.nominal_fps());
    let d = u64::from(rate.dropped_per_minute());
    let mut x = frames.unsigned_abs();
    // Equivalent mutant (scripts/mutants): `>=` for `>` changes nothing, because with
    // d == 0 (no drop frame) the block below adds 9 * 0 * tens and 0 * (...) to x.
    if d > 0 {
        let per_ten = 600 * n - 9 * d;
        let per_dropped_minute = 60 * n - d;
        let tens = x / per_ten;
        let rem = x % per_ten;
        // Adding back the skipped labels: at most ~0.1% of x, so no overflow even at 2^63.
        x += 9 * d * tens;
        // Equivalent mutant (scripts/mutants): `>` for `>=` changes nothing, because at
        // rem == d the term added below is d * 0.
        if rem >= d {
            x += d * ((rem - d) / per_dropped_minute);
        }
    }
    let total_seconds = x / n;
    TcFields {
        negative: frames < 0,
        hours: total_seconds / 3600,
        minutes: ((total_seconds / 60) % 60) as u32,
        seconds: (total_seconds % 60) as u32,
        frames: (x % n) as u32,
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

// Equivalent mutant (scripts/mutants): `<=` for `<` changes nothing, because 0 always fits.
fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

impl Timecode {
    pub const fn from_frames(frames: i64, rate: FrameRate) -> Timecode {
        Timecode { frames, rate }
    }

    pub const fn frames(&self) -> i64 {
        self.frames
    }

    pub const fn rate(&self) -> FrameRate {
        self.rate
    }

    /// Reads a label at `rate`.
    ///
    /// Accepts `HH:MM:SS:FF`, `HH:MM:SS;FF` / `HH:MM:SS,FF` (drop-frame), `.` in place of any
    /// `:` (`01.00.10.00`, `01.00.10;00`), Premiere's `00;00;00;00`, a leading `-`, and 1 to 6
    /// hour digits. A `:` label at a drop-frame rate is read as drop-frame. A `;` label at
    /// 29.97 or 59.94 non-drop switches to the drop-frame twin (the result's [`rate`]
    /// tells), because a label with `;` can only mean drop-frame and the frame rate is the
    /// same; at a rate with no drop-frame form (24, 25, ...) it is an error. Use
    /// [`Timecode::parse_for_media`] where the media's counting is known and must win.
    ///
    /// Nothing is rounded: a label drop-frame skips (`00:01:00;00` at 29.97 DF) is an error.
    ///
    /// [`rate`]: Timecode::rate
    pub fn parse(s: &str, rate: FrameRate) -> Result<Timecode, TimecodeError> {
        resolve(s, rate, DfPolicy::FollowLabel)
    }

    /// Reads a label for media whose counting is known: the result is always at `rate`. A
    /// `:` label at a drop-frame rate is read as drop-frame (people type `:` by habit); a
    /// `;` label at a non-drop rate is an error rather than a silent re-count, since the same
    /// label names a different frame in the other counting.
    pub fn parse_for_media(s: &str, rate: FrameRate) -> Result<Timecode, TimecodeError> {
        resolve(s, rate, DfPolicy::MediaWins)
    }

    /// Builds a position from label fields, with the same checks as [`Timecode::parse`].
    pub fn from_fields(fields: TcFields, rate: FrameRate) -> Result<Timecode, TimecodeError> {
        let label = Timecode::format_fields(&fields, rate, ':');
        check_fields(&fields, rate, &label, ':')?;
        Ok(Timecode { frames: frames_from_fields(&fields, rate), rate })
    }

    pub fn fields(&self) -> TcFields {
        fields_from_frames(self.frames, self.rate)
    }

    /// The label with `sep` between hours, minutes and seconds, and between seconds and
    /// frames for non-drop; drop-frame always keeps `;` before the frames so the counting
    /// survives the round trip (`01.00.10;00` is a valid Windows file name).
    pub fn to_string_with_sep(&self, sep: char) -> String {
        Timecode::format_fields(&self.fields(), self.rate, sep)
    }

    fn format_fields(f: &TcFields, rate: FrameRate, sep: char) -> String {
        let fsep = if rate.is_drop_frame() { ';' } else { sep };
        format!("{}{:02}{sep}{:02}{sep}{:02}{fsep}{:02}", if f.negative { "-" } else { "" }, f.hours, f.minutes, f.seconds, f.frames)
    }

    /// The same frame counted the other way (29.97 DF <-> NDF), if the rate has a twin.
    pub fn with_drop_frame(&self, drop_frame: bool) -> Option<Timecode> {
        Some(Timecode { frames: self.frames, rate: self.rate.with_drop_frame(drop_frame)? })
    }

    /// Seconds since frame zero as an exact reduced fraction `(num, den)`, `den > 0`.
    /// Exact for any frame count an archive will meet; saturates beyond ~9e15 frames.
    pub fn seconds(&self) -> (i64, i64) {
        let (n, d) = self.rate.num_den();
        let num = i128::from(self.frames) * i128::from(d);
        let den = i128::from(n);
        let g = gcd(num, den).max(1);
        (saturate(num / g), saturate(den / g))
    }

    /// The frame showing at `num / den` seconds: floor, so a time inside a frame names it.
    pub fn from_seconds_floor(num: i64, den: i64, rate: FrameRate) -> Result<Timecode, TimecodeError> {
        if den == 0 {
            return Err(TimecodeError::ZeroDenominator);
        }
        let (rn, rd) = rate.num_den();
        let (mut top, mut bottom) = (i128::from(num) * i128::from(rn), i128::from(den) * i128::from(rd));
        // Equivalent mutant (scripts/mutants): `<=` for `<` changes nothing, because
        // `bottom` is never 0 here (den is not, and no rate has a zero denominator).
        if bottom < 0 {
            top = -top;
            bottom = -bottom;
        }
        let frames = i64::try_from(top.div_euclid(bottom)).map_err(|_| TimecodeError::Overflow { what: "the frame count of that time" })?;
        Ok(Timecode { frames, rate })
    }

    /// See [`audio_sample_index`].
    pub fn audio_sample_index(&self, sample_rate: u32) -> i64 {
        audio_sample_index(self.frames, self.rate, sample_rate)
    }

    pub fn checked_add(&self, frames: i64) -> Option<Timecode> {
        Some(Timecode { frames: self.frames.checked_add(frames)?, rate: self.rate })
    }

    /// `self - earlier` in frames. DF and NDF twins count the same real frames, so they
    /// may be mixed; other rates may not.
    pub fn frames_since(&self, earlier: &Timecode) -> Result<i64, TimecodeError> {
        if self.rate.num_den() != earlier.rate.num_den() {
            return Err(TimecodeError::RateMismatch { left: self.rate, right: earlier.rate });
        }
        self.frames.checked_sub(earlier.frames).ok_or(TimecodeError::Overflow { what: "the distance between those timecodes" })
    }
}

/// Writes `HH:MM:SS:FF`, or `HH:MM:SS;FF` for drop-frame rates.
impl fmt::Display for Timecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_with_sep(':'))
    }
}

/// Ordered only against the same rate: a frame number means a different instant at
/// another rate, and DF/NDF twins compare unequal under `==`, so they are unordered too.
impl PartialOrd for Timecode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self.rate == other.rate).then(|| self.frames.cmp(&other.frames))
    }
}

/// Moves by `rhs` frames (panics on i64 overflow like integer addition in debug builds).
impl Add<i64> for Timecode {
    type Output = Timecode;
    fn add(self, rhs: i64) -> Timecode {
        Timecode { frames: self.frames + rhs, rate: self.rate }
    }
}

impl AddAssign<i64> for Timecode {
    fn add_assign(&mut self, rhs: i64) {
        self.frames += rhs;
    }
}

impl Sub<i64> for Timecode {
    type Output = Timecode;
    fn sub(self, rhs: i64) -> Timecode {
        Timecode { frames: self.frames - rhs, rate: self.rate }
    }
}

impl SubAssign<i64> for Timecode {
    fn sub_assign(&mut self, rhs: i64) {
        self.frames -= rhs;
    }
}

/// Frames from `rhs` to `self`.
///
/// # Panics
/// If the two rates are different real rates (29.97 DF and NDF may be mixed): that is a
/// programming error, not an input error. Use [`Timecode::frames_since`] for a `Result`.
impl Sub<Timecode> for Timecode {
    type Output = i64;
    fn sub(self, rhs: Timecode) -> i64 {
        assert!(self.rate.num_den() == rhs.rate.num_den(), "subtracting a timecode at {} from one at {}", rhs.rate, self.rate);
        self.frames - rhs.frames
    }
}

/// The first audio sample of frame `frames`: `floor(frames * sample_rate * den / num)`,
/// exact in i128.
///
/// Floor rather than round because a slice must include every sample that sounds during its
/// first frame: at 29.97 and 48 kHz frame 1 starts at sample 1601.6, so sample 1601, which
/// straddles the boundary, belongs to the slice. The same rule is in DESIGN.md. Saturates
/// at the ends of i64 rather than wrapping.
pub fn audio_sample_index(frames: i64, rate: FrameRate, sample_rate: u32) -> i64 {
    let (n, d) = rate.num_den();
    let v = i128::from(frames) * i128::from(sample_rate) * i128::from(d);
    saturate(v.div_euclid(i128::from(n)))
}

/// The frame during which sample `sample` starts: `floor(sample * num / (sample_rate * den))`.
///
/// Not an exact inverse of [`audio_sample_index`] at NTSC rates: the boundary-straddling
/// sample `audio_sample_index(f)` starts a fraction of a sample before frame `f`, so it maps
/// to `f - 1`; `audio_sample_index(f) + 1` always maps to `f`. At integer rates with a whole
/// number of samples per frame the two are exact inverses. A `sample_rate` of 0 has no
/// samples and returns 0.
pub fn frame_of_sample(sample: i64, rate: FrameRate, sample_rate: u32) -> i64 {
    if sample_rate == 0 {
        return 0;
    }
    let (n, d) = rate.num_den();
    let v = i128::from(sample) * i128::from(n);
    saturate(v.div_euclid(i128::from(sample_rate) * i128::from(d)))
}

/// A span of frames, out point exclusive as CMX3600 record times are: `01:00:00:00` to
/// `01:00:01:00` at 24 fps is 24 frames.
///
/// Empty ranges are allowed (an EDL's outgoing dissolve side often has in == out); callers
/// that need a non-empty one (slices) check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcRange {
    pub start: Timecode,
    pub end: Timecode,
}

impl TcRange {
    /// Both ends must be at the same rate and `end >= start`.
    pub fn new(start: Timecode, end: Timecode) -> Result<TcRange, TimecodeError> {
        if start.rate != end.rate {
            return Err(TimecodeError::RateMismatch { left: start.rate, right: end.rate });
        }
        if end.frames < start.frames {
            return Err(TimecodeError::OutNotAfterIn { in_label: start.to_string(), out_label: end.to_string() });
        }
        Ok(TcRange { start, end })
    }

    pub fn len_frames(&self) -> i64 {
        self.end.frames - self.start.frames
    }

    pub fn is_empty(&self) -> bool {
        self.len_frames() <= 0
    }

    pub fn rate(&self) -> FrameRate {
        self.start.rate
    }

    pub fn contains(&self, tc: Timecode) -> bool {
        tc.rate == self.start.rate && tc.frames >= self.start.frames && tc.frames < self.end.frames
    }

    /// The range widened by `before` frames at the head and `after` at the tail. Not clamped:
    /// only the media layer knows where the media starts and ends.
    pub fn widened(&self, before: i64, after: i64) -> TcRange {
        TcRange { start: self.start - before, end: self.end + after }
    }

    /// The sample range `[first, end)` covering the range at `sample_rate`.
    pub fn audio_samples(&self, sample_rate: u32) -> (i64, i64) {
        (self.start.audio_sample_index(sample_rate), self.end.audio_sample_index(sample_rate))
    }
}

impl fmt::Display for TcRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DF2997: FrameRate = FrameRate::Fps29_97Df;
    const DF5994: FrameRate = FrameRate::Fps59_94Df;

    fn p(s: &str, r: FrameRate) -> i64 {
        match Timecode::parse(s, r) {
            Ok(tc) => tc.frames(),
            Err(e) => panic!("{s} at {r}: {e}"),
        }
    }

    #[test]
    fn known_drop_frame_values_2997() {
        let table: &[(&str, i64)] = &[
            ("00:00:00;00", 0),
            ("00:00:59;29", 1799),
            ("00:01:00;02", 1800),
            ("00:01:59;29", 3597),
            ("00:02:00;02", 3598),
            ("00:09:59;29", 17981),
            ("00:10:00;00", 17982),
            ("00:10:00;01", 17983),
            ("00:11:00;02", 17982 + 1800),
            ("01:00:00;00", 107_892),
            ("23:59:59;29", 2_589_407),
        ];
        for &(label, frames) in table {
            assert_eq!(p(label, DF2997), frames, "{label}");
            assert_eq!(Timecode::from_frames(frames, DF2997).to_string(), label);
        }
    }

    #[test]
    fn known_drop_frame_values_5994() {
        let table: &[(&str, i64)] = &[("00:00:59;59", 3599), ("00:01:00;04", 3600), ("00:10:00;00", 35_964), ("01:00:00;00", 215_784)];
        for &(label, frames) in table {
            assert_eq!(p(label, DF5994), frames, "{label}");
            assert_eq!(Timecode::from_frames(frames, DF5994).to_string(), label);
        }
    }

    #[test]
    fn rejects_skipped_labels() {
        for (label, rate) in [
            ("00:01:00;00", DF2997),
            ("00:01:00;01", DF2997),
            ("00:01:00;03", DF5994),
            ("00:01:00;00", DF5994),
            ("00:59:00;01", DF2997),
            ("00:01:00:00", DF2997), // ':' at a DF rate is still DF
            ("00.01.00;00", DF2997),
        ] {
            match Timecode::parse(label, rate) {
                Err(TimecodeError::DroppedLabel { .. }) => {}
                other => panic!("{label} at {rate}: {other:?}"),
            }
        }
        assert_eq!(p("00:10:00;00", DF2997), 17982);
        assert_eq!(p("00:10:00;00", DF5994), 35964);
        assert_eq!(p("00:01:00;04", DF5994), 3600);
        // Non-drop has no skipped labels.
        assert_eq!(p("00:01:00:00", FrameRate::Fps29_97Ndf), 1800);
    }

    #[test]
    fn dropped_label_message() {
        let e = Timecode::parse("00:01:00;00", DF2997).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "00:01:00;00 does not exist in 29.97 drop-frame: frames 00 and 01 are skipped \
                 at the start of each minute not divisible by 10"
            ),
            "{e}"
        );
        assert!(e.contains("00:01:00;02"), "{e}");
        let e = Timecode::parse("00.21.00;03", DF5994).unwrap_err().to_string();
        assert!(e.contains("59.94 drop-frame: frames 00 to 03"), "{e}");
        assert!(e.contains("00.21.00;04"), "{e}");
    }

    #[test]
    fn field_errors() {
        let r = FrameRate::Fps25;
        assert!(matches!(Timecode::parse("00:00:00:25", r), Err(TimecodeError::FrameOutOfRange { value: 25, .. })));
        assert!(matches!(Timecode::parse("00:00:60:00", r), Err(TimecodeError::FieldOutOfRange { field: "seconds", .. })));
        assert!(matches!(Timecode::parse("00:60:00:00", r), Err(TimecodeError::FieldOutOfRange { field: "minutes", .. })));
        let e = Timecode::parse("00:00:00:30", DF2997).unwrap_err().to_string();
        assert!(e.contains("frames run 00 to 29"), "{e}");
        for bad in [
            "",
            "1",
            "01:00:00",
            "01:00:00:00:00",
            "01:00:00:0",
            "01:0:00:00",
            "aa:00:00:00",
            "01:00:00:00x",
            "01-00-00-00",
            "1234567:00:00:00",
            "01;00:00:00",
            "01,00,00,00",
            " : : : ",
            "01:00:00;",
            "+01:00:00:00",
            "01:00:00:٣٣",
        ] {
            assert!(matches!(Timecode::parse(bad, r), Err(TimecodeError::Syntax { .. })), "{bad:?}: {:?}", Timecode::parse(bad, r));
        }
    }

    #[test]
    fn separators_and_counting() {
        let r = FrameRate::Fps24;
        assert_eq!(p("01.00.10.00", r), p("01:00:10:00", r));
        assert_eq!(p("01:00.10:00", r), p("01:00:10:00", r));
        assert_eq!(p("1:00:00:00", r), 86_400);
        assert_eq!(p("  01:00:00:00\t", r), 86_400);
        assert_eq!(p("-00:00:01:00", r), -24);
        assert_eq!(p("25:00:00:00", r), 25 * 86_400);
        assert_eq!(p("01.00.10;00", DF2997), p("01:00:10;00", DF2997));
        assert_eq!(p("01;00;10;00", DF2997), p("01:00:10;00", DF2997));
        assert_eq!(p("01:00:10,00", DF2997), p("01:00:10;00", DF2997));
        // ';' at 29.97 NDF switches to DF (lenient) ...
        let tc = Timecode::parse("00:01:00;02", FrameRate::Fps29_97Ndf).unwrap();
        assert_eq!((tc.frames(), tc.rate()), (1800, DF2997));
        // ... but not when the media's counting is known.
        assert!(matches!(
            Timecode::parse_for_media("00:01:00;02", FrameRate::Fps29_97Ndf),
            Err(TimecodeError::DropFrameLabelForNonDropMedia { .. })
        ));
        // ':' at DF media is DF.
        let tc = Timecode::parse_for_media("01:00:00:00", DF2997).unwrap();
        assert_eq!((tc.frames(), tc.rate()), (107_892, DF2997));
        // ';' at a rate with no DF form.
        for r in [FrameRate::Fps24, FrameRate::Fps25, FrameRate::Fps23_976] {
            assert!(matches!(Timecode::parse("01:00:00;00", r), Err(TimecodeError::DropFrameLabelAtNonDropRate { .. })));
        }
    }

    #[test]
    fn display_forms() {
        let tc = Timecode::parse("01:00:10:00", FrameRate::Fps25).unwrap();
        assert_eq!(tc.to_string(), "01:00:10:00");
        assert_eq!(tc.to_string_with_sep('.'), "01.00.10.00");
        let tc = Timecode::parse("01:00:10;00", DF2997).unwrap();
        assert_eq!(tc.to_string_with_sep('.'), "01.00.10;00");
        assert_eq!(Timecode::from_frames(-1, FrameRate::Fps24).to_string(), "-00:00:00:01");
        assert_eq!(Timecode::from_frames(100 * 86_400, FrameRate::Fps24).to_string(), "100:00:00:00");
        // The extremes format without overflow.
        let _ = Timecode::from_frames(i64::MIN, DF2997).to_string();
        let _ = Timecode::from_frames(i64::MAX, DF5994).to_string();
    }

    #[test]
    fn arithmetic() {
        let a = Timecode::parse("00:00:59;29", DF2997).unwrap();
        let b = a + 1;
        assert_eq!(b.to_string(), "00:01:00;02");
        assert_eq!(b - a, 1);
        assert_eq!((b - 1), a);
        let mut c = b;
        c -= 3;
        c += 2;
        assert_eq!(c, a);
        assert!(a < b);
        let ndf = Timecode::from_frames(5, FrameRate::Fps29_97Ndf);
        assert_eq!(ndf.frames_since(&a), Ok(5 - 1799));
        assert_eq!(a.partial_cmp(&ndf), None);
        let other = Timecode::from_frames(5, FrameRate::Fps25);
        assert!(matches!(other.frames_since(&a), Err(TimecodeError::RateMismatch { .. })));
        assert_eq!(a.with_drop_frame(false).map(|t| t.to_string()), Some("00:00:59:29".into()));
        assert_eq!(Timecode::from_frames(i64::MAX, DF2997).checked_add(1), None);
    }

    #[test]
    fn seconds_exact() {
        let tc = Timecode::parse("01:00:00;00", DF2997).unwrap();
        // 107892 * 1001 / 30000 = 3599.9964 s
        assert_eq!(tc.seconds(), (107_892 * 1001 / 12, 30000 / 12));
        assert_eq!(Timecode::from_frames(48, FrameRate::Fps24).seconds(), (2, 1));
        assert_eq!(Timecode::from_frames(0, FrameRate::Fps24).seconds(), (0, 1));
        assert_eq!(Timecode::from_frames(-12, FrameRate::Fps24).seconds(), (-1, 2));
        let back = Timecode::from_seconds_floor(107_892 * 1001, 30000, DF2997).unwrap();
        assert_eq!(back.frames(), 107_892);
        // Just before a frame boundary floors to the previous frame.
        assert_eq!(Timecode::from_seconds_floor(107_892 * 1001 - 1, 30000, DF2997).unwrap().frames(), 107_891);
        assert_eq!(Timecode::from_seconds_floor(-1, 48, FrameRate::Fps24).unwrap().frames(), -1);
        assert_eq!(Timecode::from_seconds_floor(1, -48, FrameRate::Fps24).unwrap().frames(), -1);
        assert_eq!(Timecode::from_seconds_floor(1, 0, FrameRate::Fps24), Err(TimecodeError::ZeroDenominator));
    }

    #[test]
    fn audio_known_values() {
        // 01:00:00;00 at 29.97 DF is 172 799 827.2 samples at 48 kHz.
        assert_eq!(audio_sample_index(107_892, DF2997, 48_000), 172_799_827);
        assert_eq!(audio_sample_index(107_892, DF2997, 96_000), 345_599_654);
        assert_eq!(audio_sample_index(1, DF2997, 48_000), 1601);
        assert_eq!(frame_of_sample(1601, DF2997, 48_000), 0);
        assert_eq!(frame_of_sample(1602, DF2997, 48_000), 1);
        assert_eq!(audio_sample_index(1, FrameRate::Fps24, 48_000), 2000);
        assert_eq!(audio_sample_index(-1, FrameRate::Fps23_976, 48_000), -2002);
        assert_eq!(audio_sample_index(-1, DF2997, 48_000), -1602);
        assert_eq!(frame_of_sample(5, DF2997, 0), 0);
        let r = TcRange::new(Timecode::from_frames(0, FrameRate::Fps25), Timecode::from_frames(25, FrameRate::Fps25)).unwrap();
        assert_eq!(r.audio_samples(48_000), (0, 48_000));
        let _ = audio_sample_index(i64::MAX, FrameRate::Fps23_976, u32::MAX);
    }

    #[test]
    fn ranges() {
        let r = FrameRate::Fps24;
        let a = Timecode::parse("01:00:00:00", r).unwrap();
        let b = Timecode::parse("01:00:01:00", r).unwrap();
        let range = TcRange::new(a, b).unwrap();
        assert_eq!(range.len_frames(), 24);
        assert!(range.contains(a) && !range.contains(b));
        assert_eq!(range.widened(24, 24).len_frames(), 72);
        assert!(TcRange::new(a, a).unwrap().is_empty());
        assert!(TcRange::new(b, a).is_err());
        assert!(TcRange::new(a, Timecode::from_frames(1, FrameRate::Fps25)).is_err());
        assert_eq!(range.to_string(), "01:00:00:00-01:00:01:00");
    }

    /// An independently written reference: walk every label in order, skipping the ones
    /// drop-frame drops, and number the survivors. Shares no arithmetic with the
    /// 17982-block formula above.
    fn enumerate_labels(rate: FrameRate, hours: u64) -> Vec<(String, i64)> {
        let n = rate.nominal_fps();
        let skip = rate.dropped_per_minute();
        let sep = if rate.is_drop_frame() { ';' } else { ':' };
        let mut out = Vec::new();
        let mut count = 0i64;
        for h in 0..hours {
            for m in 0..60u32 {
                for s in 0..60u32 {
                    for f in 0..n {
                        if s == 0 && m % 10 != 0 && f < skip {
                            continue;
                        }
                        out.push((format!("{h:02}:{m:02}:{s:02}{sep}{f:02}"), count));
                        count += 1;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn formula_matches_label_enumeration() {
        for rate in FrameRate::ALL {
            let hours = if rate.is_drop_frame() { 2 } else { 1 };
            for (label, frames) in enumerate_labels(rate, hours) {
                let tc = Timecode::from_frames(frames, rate);
                assert_eq!(tc.to_string(), label, "{rate} frame {frames}");
                assert_eq!(p(&label, rate), frames, "{rate} {label}");
            }
        }
        // The enumeration also pins the per-hour totals.
        assert_eq!(enumerate_labels(DF2997, 1).len(), 107_892);
        assert_eq!(enumerate_labels(DF5994, 1).len(), 215_784);
    }

    // Killed by scripts/mutants: label_shape_len's digit-count bounds (1 to 6 hour digits)
    // and the two digit checks after each separator.
    #[test]
    fn label_shape_is_digits_then_three_separated_pairs() {
        assert_eq!(label_shape_len("01:00:00:00"), 11);
        assert_eq!(label_shape_len("01:00:00:00-rest"), 11);
        assert_eq!(label_shape_len("123456:00:00:00"), 15);
        assert_eq!(label_shape_len("1234567:00:00:00"), 0);
        assert_eq!(label_shape_len(":00:00:00"), 0);
        assert_eq!(label_shape_len("01:x0:00:00"), 0);
        assert_eq!(label_shape_len("01:0x:00:00"), 0);
        assert_eq!(label_shape_len("01:00:00:0"), 0);
    }

    // Killed by scripts/mutants: the 999999-hour limit of check_fields is inclusive.
    #[test]
    fn hours_run_to_999999() {
        let f = |hours| TcFields { negative: false, hours, minutes: 0, seconds: 0, frames: 0 };
        assert!(Timecode::from_fields(f(999_999), FrameRate::Fps25).is_ok());
        assert!(matches!(Timecode::from_fields(f(1_000_000), FrameRate::Fps25), Err(TimecodeError::Overflow { .. })));
    }

    // Killed by scripts/mutants: saturate's sign test (`<` -> `==`, `>`).
    #[test]
    fn saturate_clamps_to_the_sign() {
        assert_eq!(saturate(i128::MAX), i64::MAX);
        assert_eq!(saturate(i128::MIN), i64::MIN);
        assert_eq!(saturate(-5), -5);
    }

    // Killed by scripts/mutants: checked_add -> None, and Sub -> 1 / `-` -> `/`.
    #[test]
    fn checked_add_and_sub_count_frames() {
        let r = FrameRate::Fps25;
        let tc = Timecode::from_frames(100, r);
        assert_eq!(tc.checked_add(-40), Some(Timecode::from_frames(60, r)));
        assert_eq!(Timecode::from_frames(i64::MAX, r).checked_add(1), None);
        assert_eq!(tc - Timecode::from_frames(40, r), 60);
        assert_eq!(Timecode::from_frames(40, r) - tc, -60);
    }

    // Killed by scripts/mutants: TcRange::is_empty -> true.
    #[test]
    fn range_emptiness() {
        let at = |f| Timecode::from_frames(f, FrameRate::Fps24);
        assert!(!TcRange::new(at(10), at(11)).unwrap().is_empty());
        assert!(TcRange::new(at(10), at(10)).unwrap().is_empty());
    }

    fn any_rate() -> impl Strategy<Value = FrameRate> {
        proptest::sample::select(FrameRate::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn frames_label_frames(rate in any_rate(), frames in -20_000_000_000i64..20_000_000_000i64) {
            let tc = Timecode::from_frames(frames, rate);
            for sep in [':', '.'] {
                let label = tc.to_string_with_sep(sep);
                let back = Timecode::parse(&label, rate);
                prop_assert_eq!(back, Ok(tc), "{}", label);
                prop_assert_eq!(Timecode::parse_for_media(&label, rate), Ok(tc));
            }
            let f = tc.fields();
            prop_assert_eq!(Timecode::from_fields(f, rate), Ok(tc));
        }

        #[test]
        fn label_frames_label(rate in any_rate(), h in 0u64..100, m in 0u32..60, s in 0u32..60, f in 0u32..60) {
            let f = f % rate.nominal_fps();
            let sep = if rate.is_drop_frame() { ';' } else { ':' };
            let label = format!("{h:02}:{m:02}:{s:02}{sep}{f:02}");
            let skipped = s == 0 && m % 10 != 0 && f < rate.dropped_per_minute();
            match Timecode::parse(&label, rate) {
                Ok(tc) => {
                    prop_assert!(!skipped);
                    prop_assert_eq!(tc.to_string(), label);
                }
                Err(e) => {
                    prop_assert!(skipped, "{}: {}", label, e);
                    let is_dropped = matches!(e, TimecodeError::DroppedLabel { .. });
                    prop_assert!(is_dropped);
                }
            }
        }

        #[test]
        fn successive_frames_are_successive_labels(rate in any_rate(), frames in 0i64..10_000_000) {
            let a = Timecode::from_frames(frames, rate).fields();
            let b = Timecode::from_frames(frames + 1, rate).fields();
            let key = |f: &TcFields| (f.hours, f.minutes, f.seconds, f.frames);
            prop_assert!(key(&a) < key(&b));
        }

        #[test]
        fn seconds_round_trip(rate in any_rate(), frames in -1_000_000_000i64..1_000_000_000) {
            let tc = Timecode::from_frames(frames, rate);
            let (n, d) = tc.seconds();
            prop_assert!(d > 0);
            prop_assert_eq!(Timecode::from_seconds_floor(n, d, rate), Ok(tc));
        }

        #[test]
        fn audio_monotonic_and_exact(
            rate in any_rate(),
            sr in proptest::sample::select(vec![48_000u32, 96_000]),
            frames in -100_000_000i64..100_000_000,
        ) {
            let (n, d) = rate.num_den();
            let a = audio_sample_index(frames, rate, sr);
            let b = audio_sample_index(frames + 1, rate, sr);
            prop_assert!(a < b);
            // Samples per frame is sr*d/n, between 800 and 4004 here.
            let spf_floor = i64::from(sr) * i64::from(d) / i64::from(n);
            prop_assert!(b - a == spf_floor || b - a == spf_floor + 1);
            // Exactness: a is the floor, i.e. a*n <= frames*sr*d < (a+1)*n.
            let exact = i128::from(frames) * i128::from(sr) * i128::from(d);
            prop_assert!(i128::from(a) * i128::from(n) <= exact);
            prop_assert!(exact < (i128::from(a) + 1) * i128::from(n));
            // Inverse: the sample after the straddling one lies in the frame.
            prop_assert_eq!(frame_of_sample(a + 1, rate, sr), frames);
            prop_assert_eq!(frame_of_sample(b - 1, rate, sr), frames);
            let back = frame_of_sample(a, rate, sr);
            prop_assert!(back == frames || back == frames - 1);
            if d == 1 {
                prop_assert_eq!(back, frames);
            }
        }
    }
}
