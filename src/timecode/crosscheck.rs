//! Cross-check against an independent implementation, the `smpte-timecode` crate (a
//! dev-dependency only). Its positions live within one 24-hour day, so the comparison is
//! over a day; beyond it, `label.rs`'s label-enumeration test and round trips carry the
//! weight. If this dev-dependency is ever dropped, delete this file and its `mod` line.

use proptest::prelude::*;
use smpte_timecode as other;

use super::{audio_sample_index, FrameRate, Timecode, TimecodeError};

fn theirs(rate: FrameRate) -> other::FrameRate {
    match rate {
        FrameRate::Fps23_976 => other::FrameRate::FPS_23_976,
        FrameRate::Fps24 => other::FrameRate::FPS_24,
        FrameRate::Fps25 => other::FrameRate::FPS_25,
        FrameRate::Fps29_97Df => other::FrameRate::FPS_29_97_DF,
        FrameRate::Fps29_97Ndf => other::FrameRate::FPS_29_97,
        FrameRate::Fps30 => other::FrameRate::FPS_30,
        FrameRate::Fps48 => other::FrameRate::FPS_48,
        FrameRate::Fps50 => other::FrameRate::FPS_50,
        FrameRate::Fps59_94Df => other::FrameRate::FPS_59_94_DF,
        FrameRate::Fps59_94Ndf => other::FrameRate::FPS_59_94,
        FrameRate::Fps60 => other::FrameRate::FPS_60,
    }
}

fn rate_and_frame() -> impl Strategy<Value = (FrameRate, u32)> {
    proptest::sample::select(FrameRate::ALL.to_vec()).prop_flat_map(|r| {
        let day = theirs(r).frames_per_day();
        (Just(r), 0..day)
    })
}

#[test]
fn same_rates() {
    for r in FrameRate::ALL {
        let t = theirs(r);
        assert_eq!(u32::from(t.nominal()), r.nominal_fps(), "{r}");
        assert_eq!(t.is_drop_frame(), r.is_drop_frame(), "{r}");
        let fps = t.frames_per_second();
        let (n, d) = r.num_den();
        assert_eq!(fps.numer() * u64::from(d), fps.denom() * u64::from(n), "{r}");
    }
}

#[test]
fn day_boundaries() {
    for r in FrameRate::ALL {
        let last = theirs(r).frames_per_day() - 1;
        for f in [0, 1, last - 1, last] {
            let ours = Timecode::from_frames(i64::from(f), r).to_string();
            let t = other::Timecode::from_frames(f, theirs(r)).map(|t| t.to_string());
            assert_eq!(Ok(ours), t, "{r} frame {f}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn labels_agree((rate, frames) in rate_and_frame()) {
        let ours = Timecode::from_frames(i64::from(frames), rate);
        let t = other::Timecode::from_frames(frames, theirs(rate));
        prop_assert!(t.is_ok());
        let t = t.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let label = ours.to_string();
        prop_assert_eq!(&label, &t.to_string());
        let back = other::Timecode::parse(&label, theirs(rate)).map(|t| t.frames());
        prop_assert_eq!(back, Ok(frames));
        // Seconds, reduced on both sides.
        let (n, d) = ours.seconds();
        let s = t.to_seconds();
        prop_assert_eq!((n as u64, d as u64), (s.numer(), s.denom()));
        // First audio sample, floor, at both common rates.
        for sr in [48_000u64, 96_000] {
            let theirs_sample = t
                .to_samples(other::Ratio::from_integer(sr), other::Rounding::Down)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(audio_sample_index(i64::from(frames), rate, sr as u32) as u64, theirs_sample);
        }
    }

    #[test]
    fn validity_agrees(
        rate in proptest::sample::select(FrameRate::ALL.to_vec()),
        h in 0u32..24, m in 0u32..60, s in 0u32..3, f in 0u32..60,
    ) {
        let f = f % rate.nominal_fps();
        let sep = if rate.is_drop_frame() { ';' } else { ':' };
        let label = format!("{h:02}:{m:02}:{s:02}{sep}{f:02}");
        let ours = Timecode::parse(&label, rate);
        let t = other::Timecode::parse(&label, theirs(rate));
        match (&ours, &t) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.frames(), i64::from(b.frames())),
            (Err(TimecodeError::DroppedLabel { .. }), Err(other::TimecodeError::DroppedLabel)) => {}
            _ => prop_assert!(false, "{}: ours {:?}, theirs {:?}", label, ours, t),
        }
    }
}
