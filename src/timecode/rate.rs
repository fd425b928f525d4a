//! The frame rates reelfs knows, as exact rationals.

use std::fmt;
use std::str::FromStr;

use super::TimecodeError;

/// One of the production frame rates, including how its timecode counts (drop-frame or not).
///
/// Drop-frame-ness is part of the rate rather than a flag on each timecode because a clip's
/// tmcd track, an EDL's FCM line and a camera's settings all declare it once for the media;
/// two timecodes at the same rate can never disagree about how they are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameRate {
    Fps23_976,
    Fps24,
    Fps25,
    Fps29_97Df,
    Fps29_97Ndf,
    Fps30,
    Fps48,
    Fps50,
    Fps59_94Df,
    Fps59_94Ndf,
    Fps60,
}

impl FrameRate {
    /// Every rate, in ascending speed, drop-frame before non-drop.
    pub const ALL: [FrameRate; 11] = [
        FrameRate::Fps23_976,
        FrameRate::Fps24,
        FrameRate::Fps25,
        FrameRate::Fps29_97Df,
        FrameRate::Fps29_97Ndf,
        FrameRate::Fps30,
        FrameRate::Fps48,
        FrameRate::Fps50,
        FrameRate::Fps59_94Df,
        FrameRate::Fps59_94Ndf,
        FrameRate::Fps60,
    ];

    /// Frames per second as an exact fraction: `num / den` frames per second, so one frame
    /// lasts `den / num` seconds. This is also a QuickTime (timescale, frame duration) pair.
    pub const fn num_den(&self) -> (u32, u32) {
        match self {
            FrameRate::Fps23_976 => (24000, 1001),
            FrameRate::Fps24 => (24, 1),
            FrameRate::Fps25 => (25, 1),
            FrameRate::Fps29_97Df | FrameRate::Fps29_97Ndf => (30000, 1001),
            FrameRate::Fps30 => (30, 1),
            FrameRate::Fps48 => (48, 1),
            FrameRate::Fps50 => (50, 1),
            FrameRate::Fps59_94Df | FrameRate::Fps59_94Ndf => (60000, 1001),
            FrameRate::Fps60 => (60, 1),
        }
    }

    /// Frame labels per timecode second (24 for 23.976, 30 for 29.97): the count the FF field
    /// runs through, and the "number of frames" of a tmcd sample entry.
    pub const fn nominal_fps(&self) -> u32 {
        match self {
            FrameRate::Fps23_976 | FrameRate::Fps24 => 24,
            FrameRate::Fps25 => 25,
            FrameRate::Fps29_97Df | FrameRate::Fps29_97Ndf | FrameRate::Fps30 => 30,
            FrameRate::Fps48 => 48,
            FrameRate::Fps50 => 50,
            FrameRate::Fps59_94Df | FrameRate::Fps59_94Ndf | FrameRate::Fps60 => 60,
        }
    }

    pub const fn is_drop_frame(&self) -> bool {
        matches!(self, FrameRate::Fps29_97Df | FrameRate::Fps59_94Df)
    }

    /// True for the 1000/1001 ("NTSC") rates, whose timecode drifts from the wall clock.
    pub const fn is_ntsc(&self) -> bool {
        self.num_den().1 == 1001
    }

    /// Labels skipped at the start of each minute not divisible by ten (0 for non-drop).
    pub const fn dropped_per_minute(&self) -> u32 {
        match self {
            FrameRate::Fps29_97Df => 2,
            FrameRate::Fps59_94Df => 4,
            _ => 0,
        }
    }

    /// The same real rate counted the other way, if such a rate exists: 29.97 DF <-> 29.97
    /// NDF. A non-drop rate with no drop-frame twin returns itself for `false` and `None` for
    /// `true`, so callers can apply an FCM line or a `;` without special cases.
    pub const fn with_drop_frame(&self, drop_frame: bool) -> Option<FrameRate> {
        match (self, drop_frame) {
            (FrameRate::Fps29_97Df | FrameRate::Fps29_97Ndf, true) => Some(FrameRate::Fps29_97Df),
            (FrameRate::Fps29_97Df | FrameRate::Fps29_97Ndf, false) => Some(FrameRate::Fps29_97Ndf),
            (FrameRate::Fps59_94Df | FrameRate::Fps59_94Ndf, true) => Some(FrameRate::Fps59_94Df),
            (FrameRate::Fps59_94Df | FrameRate::Fps59_94Ndf, false) => Some(FrameRate::Fps59_94Ndf),
            (r, false) => Some(*r),
            (_, true) => None,
        }
    }

    /// The standard rate within 0.01 fps of `num / den`, counted drop-frame if asked.
    ///
    /// The tolerance is what probes need: containers store 23.976 as 2997/125, 24000/1001,
    /// 23976/1000 or a float-derived ratio, and all must land on the same rate. The nearest
    /// standard rates are 0.024 fps apart (23.976 vs 24), so 0.01 can never match two.
    /// `drop_frame` for a rate with no drop-frame form (24, 25, ...) gives `None`.
    pub fn from_rational(num: u32, den: u32, drop_frame: bool) -> Option<FrameRate> {
        // Equivalent mutant (scripts/mutants): `||` -> `&&` here changes nothing, because with
        // a zero `num` or `den` no standard rate passes the tolerance test below either; the
        // early return states the refusal instead of leaving it to the arithmetic.
        if den == 0 || num == 0 {
            return None;
        }
        let (n, d) = (i128::from(num), i128::from(den));
        let base = Self::ALL.iter().copied().filter(|r| !r.is_drop_frame()).find(|r| {
            let (sn, sd) = r.num_den();
            let (sn, sd) = (i128::from(sn), i128::from(sd));
            // |n/d - sn/sd| <= 1/100, cross-multiplied so it is exact.
            (n * sd - sn * d).abs() * 100 <= d * sd
        })?;
        base.with_drop_frame(drop_frame)
    }

    /// Like [`FrameRate::from_rational`] for a rate already in floating point (ffprobe's
    /// `r_frame_rate` as a float, a user's `--fps 29.97`).
    pub fn from_f64(fps: f64, drop_frame: bool) -> Option<FrameRate> {
        // Equivalent mutant (scripts/mutants): `||` -> `&&` here changes nothing, because a
        // NaN, infinite, zero or negative `fps` is more than 0.01 from every standard rate in
        // the test below (NaN compares false); the guard says so instead of the arithmetic.
        if !fps.is_finite() || fps <= 0.0 {
            return None;
        }
        let base = Self::ALL.iter().copied().filter(|r| !r.is_drop_frame()).find(|r| {
            let (sn, sd) = r.num_den();
            // The 1e-9 keeps 23.966 (exactly 0.01 away) in, as from_rational does.
            (fps - f64::from(sn) / f64::from(sd)).abs() <= 0.01 + 1e-9
        })?;
        base.with_drop_frame(drop_frame)
    }

    pub fn as_f64(&self) -> f64 {
        let (n, d) = self.num_den();
        f64::from(n) / f64::from(d)
    }

    /// The rate as a number without the counting ("29.97"), for messages that say
    /// "drop-frame" in words.
    pub const fn decimal_name(&self) -> &'static str {
        match self {
            FrameRate::Fps23_976 => "23.976",
            FrameRate::Fps24 => "24",
            FrameRate::Fps25 => "25",
            FrameRate::Fps29_97Df | FrameRate::Fps29_97Ndf => "29.97",
            FrameRate::Fps30 => "30",
            FrameRate::Fps48 => "48",
            FrameRate::Fps50 => "50",
            FrameRate::Fps59_94Df | FrameRate::Fps59_94Ndf => "59.94",
            FrameRate::Fps60 => "60",
        }
    }

    /// "00 and 01" / "00 to 03": which frame labels drop-frame skips, for error messages.
    pub(super) fn skipped_frames_phrase(&self) -> String {
        match self.dropped_per_minute() {
            0 => "none".to_string(),
            1 => "00".to_string(),
            2 => "00 and 01".to_string(),
            n => format!("00 to {:02}", n - 1),
        }
    }
}

/// "23.976", "29.97 DF", "29.97", "59.94 DF", ... A bare NTSC rate means non-drop, matching
/// how NLE project settings show it; drop-frame is the one that gets a suffix.
impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.decimal_name())?;
        if self.is_drop_frame() {
            f.write_str(" DF")?;
        }
        Ok(())
    }
}

/// Accepts what people and tools write: "23.976", "23.98", "24000/1001", "2997", "29.97df",
/// "29.97 DF", "29.97 NDF", "59.94-df", "25fps". A bare number is non-drop. Integers above
/// 120 are read as hundredths or thousandths ("2997", "23976"), the way some tools name
/// rates without a decimal point.
impl FromStr for FrameRate {
    type Err = TimecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || TimecodeError::UnknownFrameRate { input: s.to_string() };
        let lower = s.trim().to_ascii_lowercase();
        let mut body = lower.as_str();
        let mut drop_frame = false;
        for (suffix, df) in [
            ("non-drop frame", false),
            ("non drop frame", false),
            ("nondrop frame", false),
            ("drop frame", true),
            ("nondrop", false),
            ("non-drop", false),
            ("ndf", false),
            ("drop", true),
            ("df", true),
        ] {
            if let Some(rest) = body.strip_suffix(suffix) {
                body = rest;
                drop_frame = df;
                break;
            }
        }
        let body = body.trim_end_matches([' ', '_', '-']);
        let body = body.strip_suffix("fps").unwrap_or(body).trim();
        if body.is_empty() {
            return Err(unknown());
        }
        if let Some((n, d)) = body.split_once('/') {
            let n: u32 = n.trim().parse().map_err(|_| unknown())?;
            let d: u32 = d.trim().parse().map_err(|_| unknown())?;
            return FrameRate::from_rational(n, d, drop_frame).ok_or_else(unknown);
        }
        if !body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(unknown());
        }
        if !body.contains('.') {
            let n: u32 = body.parse().map_err(|_| unknown())?;
            // Equivalent mutant (scripts/mutants): `>=` here changes nothing, because 120
            // is no rate read either way (120 fps, 1.2 fps, 0.12 fps).
            if n > 120 {
                return FrameRate::from_rational(n, 100, drop_frame)
                    .or_else(|| FrameRate::from_rational(n, 1000, drop_frame))
                    .ok_or_else(unknown);
            }
            return FrameRate::from_rational(n, 1, drop_frame).ok_or_else(unknown);
        }
        let fps: f64 = body.parse().map_err(|_| unknown())?;
        FrameRate::from_f64(fps, drop_frame).ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_den_and_nominal() {
        for r in FrameRate::ALL {
            let (n, d) = r.num_den();
            let fps = f64::from(n) / f64::from(d);
            assert!((fps - f64::from(r.nominal_fps())).abs() < 0.1, "{r}");
        }
        assert_eq!(FrameRate::Fps23_976.num_den(), (24000, 1001));
        assert_eq!(FrameRate::Fps59_94Df.nominal_fps(), 60);
    }

    #[test]
    fn from_rational_tolerance() {
        assert_eq!(FrameRate::from_rational(24000, 1001, false), Some(FrameRate::Fps23_976));
        assert_eq!(FrameRate::from_rational(2997, 125, false), Some(FrameRate::Fps23_976));
        assert_eq!(FrameRate::from_rational(2997, 100, false), Some(FrameRate::Fps29_97Ndf));
        assert_eq!(FrameRate::from_rational(2997, 100, true), Some(FrameRate::Fps29_97Df));
        assert_eq!(FrameRate::from_rational(30000, 1001, true), Some(FrameRate::Fps29_97Df));
        assert_eq!(FrameRate::from_rational(60000, 1001, true), Some(FrameRate::Fps59_94Df));
        assert_eq!(FrameRate::from_rational(25, 1, false), Some(FrameRate::Fps25));
        assert_eq!(FrameRate::from_rational(25, 1, true), None);
        assert_eq!(FrameRate::from_rational(24, 1, true), None);
        assert_eq!(FrameRate::from_rational(2395, 100, false), None);
        assert_eq!(FrameRate::from_rational(15, 1, false), None);
        assert_eq!(FrameRate::from_rational(30, 0, false), None);
        // Just inside and just outside 0.01 of 25.
        assert_eq!(FrameRate::from_rational(2501, 100, false), Some(FrameRate::Fps25));
        assert_eq!(FrameRate::from_rational(25011, 1000, false), None);
        assert_eq!(FrameRate::from_f64(23.976, false), Some(FrameRate::Fps23_976));
        assert_eq!(FrameRate::from_f64(29.97, true), Some(FrameRate::Fps29_97Df));
        assert_eq!(FrameRate::from_f64(f64::NAN, false), None);
        assert_eq!(FrameRate::from_f64(59.94, false), Some(FrameRate::Fps59_94Ndf));
    }

    #[test]
    fn display_and_from_str_round_trip() {
        for r in FrameRate::ALL {
            assert_eq!(r.to_string().parse::<FrameRate>(), Ok(r), "{r}");
        }
        assert_eq!(FrameRate::Fps29_97Df.to_string(), "29.97 DF");
        assert_eq!(FrameRate::Fps29_97Ndf.to_string(), "29.97");
        assert_eq!(FrameRate::Fps23_976.to_string(), "23.976");
        assert_eq!(FrameRate::Fps59_94Df.to_string(), "59.94 DF");
        for (s, r) in [
            ("24000/1001", FrameRate::Fps23_976),
            ("30000/1001", FrameRate::Fps29_97Ndf),
            ("30000/1001 DF", FrameRate::Fps29_97Df),
            ("29.97df", FrameRate::Fps29_97Df),
            ("29.97 NDF", FrameRate::Fps29_97Ndf),
            ("29.97-DF", FrameRate::Fps29_97Df),
            ("2997", FrameRate::Fps29_97Ndf),
            ("2997df", FrameRate::Fps29_97Df),
            ("5994", FrameRate::Fps59_94Ndf),
            ("23976", FrameRate::Fps23_976),
            ("23.98", FrameRate::Fps23_976),
            ("25fps", FrameRate::Fps25),
            (" 24 ", FrameRate::Fps24),
            ("60", FrameRate::Fps60),
            ("29.97 Drop Frame", FrameRate::Fps29_97Df),
            ("29.97 non-drop frame", FrameRate::Fps29_97Ndf),
        ] {
            assert_eq!(s.parse::<FrameRate>(), Ok(r), "{s}");
        }
        for s in ["", "df", "abc", "24 DF", "25df", "23.976 DF", "1/0", "12", "29,97", "-24"] {
            assert!(s.parse::<FrameRate>().is_err(), "{s}");
        }
    }

    #[test]
    fn twins() {
        assert_eq!(FrameRate::Fps29_97Ndf.with_drop_frame(true), Some(FrameRate::Fps29_97Df));
        assert_eq!(FrameRate::Fps59_94Df.with_drop_frame(false), Some(FrameRate::Fps59_94Ndf));
        assert_eq!(FrameRate::Fps25.with_drop_frame(false), Some(FrameRate::Fps25));
        assert_eq!(FrameRate::Fps25.with_drop_frame(true), None);
    }

    // Killed the mutants of as_f64 (scripts/mutants): `* for /` keeps 25 at 25.
    #[test]
    fn as_f64_is_num_over_den() {
        assert_eq!(FrameRate::Fps25.as_f64(), 25.0);
        assert_eq!(FrameRate::Fps23_976.as_f64(), 24000.0 / 1001.0);
    }

    // Killed `0.01 + 1e-9` -> `0.01 - 1e-9` in from_f64 (scripts/mutants): 25.01 as an f64
    // is a hair more than 0.01 from 25, and from_rational(2501, 100) takes it, so must this.
    #[test]
    fn from_f64_takes_exactly_one_hundredth_off() {
        assert_eq!(FrameRate::from_f64(25.01, false), Some(FrameRate::Fps25));
        assert_eq!(FrameRate::from_f64(24.99, false), Some(FrameRate::Fps25));
        assert_eq!(FrameRate::from_f64(25.011, false), None);
    }

    // Killed the mutants `is_ntsc -> true` / `-> false` (scripts/mutants).
    #[test]
    fn ntsc_rates_are_the_1000_over_1001_ones() {
        let ntsc: Vec<FrameRate> = FrameRate::ALL.into_iter().filter(|r| r.is_ntsc()).collect();
        assert_eq!(
            ntsc,
            [FrameRate::Fps23_976, FrameRate::Fps29_97Df, FrameRate::Fps29_97Ndf, FrameRate::Fps59_94Df, FrameRate::Fps59_94Ndf]
        );
    }
}
