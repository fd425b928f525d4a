//! SMPTE timecode: frame rates, labels, exact arithmetic, audio sample mapping, the
//! `name@IN-OUT+handles` slice names the mount resolves, and CMX3600 EDLs.
//!
//! A [`Timecode`] is a frame count, not a label. Labels (`HH:MM:SS:FF`, `HH:MM:SS;FF`) are
//! only an input and output form, so all arithmetic is integer arithmetic on frames and
//! drop-frame counting matters only when a label is read or written. Nothing here rounds a
//! label: a label that drop-frame counting skips is an error, never "the nearest frame".
//!
//! Depends only on `std` and `thiserror`, and on nothing else in the crate.

#[cfg(test)]
mod crosscheck;
pub mod edl;
mod label;
mod rate;
mod slice;

pub use self::edl::{parse_edl, parse_point, EdlEvent, EdlParse, EdlWarning, Transition, M2};
pub use self::label::{audio_sample_index, frame_of_sample, TcFields, TcRange, Timecode};
pub use self::rate::FrameRate;
pub use self::slice::{Handles, ResolvedSlice, SliceSpec, SliceUnits};

/// Everything that can go wrong reading or using a timecode. Messages name the offending
/// input and say what would have been accepted, because they reach users through the CLI
/// and through mount errors logged for someone who typed a file name by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimecodeError {
    /// The text is not shaped like a timecode at all.
    #[error(
        "{input:?} is not a timecode: {reason}; write HH:MM:SS:FF, or HH:MM:SS;FF for \
         drop-frame ('.' may stand for ':')"
    )]
    Syntax { input: String, reason: String },

    /// Minutes or seconds are 60 or more.
    #[error("{label}: {field} {value:02} is out of range; {field} run 00 to 59")]
    FieldOutOfRange { label: String, field: &'static str, value: u32 },

    /// The frame field is not below the nominal frame count of the rate.
    #[error("{label}: frame {value:02} does not exist at {rate}; frames run 00 to {max:02}", max = .rate.nominal_fps() - 1)]
    FrameOutOfRange { label: String, value: u32, rate: FrameRate },

    /// A drop-frame label that drop-frame counting skips.
    #[error(
        "{label} does not exist in {} drop-frame: frames {} are skipped at the start of each \
         minute not divisible by 10 (that minute starts at {first_valid})",
        .rate.decimal_name(), .rate.skipped_frames_phrase()
    )]
    DroppedLabel { label: String, rate: FrameRate, first_valid: String },

    /// `;` (drop-frame) used with a rate that has no drop-frame counting at all.
    #[error(
        "{label} is a drop-frame label (';' before the frames) but {rate} has no drop-frame \
         counting; write it with ':' or '.' before the frames"
    )]
    DropFrameLabelAtNonDropRate { label: String, rate: FrameRate },

    /// `;` used where the media is known to count non-drop at a rate that could be either.
    #[error(
        "{label} is a drop-frame label (';' before the frames) but this media counts {rate} \
         non-drop-frame; write it with ':' or '.' before the frames"
    )]
    DropFrameLabelForNonDropMedia { label: String, rate: FrameRate },

    /// A frame-rate spelling that is not one of the supported rates.
    #[error(
        "unknown frame rate {input:?}: use 23.976, 24, 25, 29.97, 29.97 DF, 30, 48, 50, 59.94, \
         59.94 DF or 60 (a ratio such as 30000/1001 also works)"
    )]
    UnknownFrameRate { input: String },

    /// Two timecodes at different frame rates were combined.
    #[error("cannot combine a timecode at {left} with one at {right}; convert one of them first")]
    RateMismatch { left: FrameRate, right: FrameRate },

    /// A range whose out point is not after its in point.
    #[error(
        "out point {out_label} is not after in point {in_label}; the out point is exclusive, \
         so a one-frame range is IN to IN+1"
    )]
    OutNotAfterIn { in_label: String, out_label: String },

    /// A name shaped like a slice (`name@IN-OUT`) that cannot be read as one.
    #[error(
        "{name:?} looks like a timecode slice but {reason}; slices are named \
         NAME@HH:MM:SS:FF-HH:MM:SS:FF with optional +FRAMES or +SECONDSs handles"
    )]
    MalformedSlice { name: String, reason: String },

    /// A rational with a zero denominator.
    #[error("a time with denominator 0 is not a number")]
    ZeroDenominator,

    /// A value too large for the integer type that must hold it.
    #[error("{what} is too large")]
    Overflow { what: &'static str },
}
