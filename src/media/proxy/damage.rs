//! Which frames of a movie proxy hold the last good picture, and how to say so.
//!
//! A damaged sample inside a clip must not end its proxies: an NLE relinks a
//! proxy only when it has the source's frame count, and the frames after the
//! damage are as good as ever. So the decode loop places every picture by its
//! timestamp among the timestamps of the packets the demuxer gave (frame N is
//! the Nth packet in display order, as `ffprobe -count_frames` counts a clean
//! file), never by counting decoded pictures: a picture the decoder drops or
//! flags leaves its place to be filled with the last good picture, and every
//! later picture keeps its number.
//!
//! Long-GOP: a damaged reference breaks every picture decoded from it until the
//! next keyframe, without the decoder flagging them, and B-frames decoded after
//! it are *shown before* it. So a frame is held when its packet comes after a
//! damaged packet in decode order with no keyframe between, or when it is a
//! leading picture (shown before, decoded after) of the first keyframe after
//! the damage (open GOP). For intra-only codecs every packet is a keyframe and
//! only the damaged frame itself is held.

use crate::archive::objects::DamagedRange;
use crate::timecode::{FrameRate, Timecode};
use std::collections::{BTreeMap, BTreeSet};

/// What the demuxer and decoder said about each frame, by presentation timestamp.
#[derive(Default)]
pub(super) struct DamageMap {
    /// Timestamp -> decode-order index of its packet.
    packet_of: BTreeMap<i64, u64>,
    /// Decode-order index -> timestamp, of keyframe packets.
    keys: BTreeMap<u64, i64>,
    next_packet: u64,
    /// Decode-order indices of packets known damaged.
    bad_packets: BTreeSet<u64>,
    /// Timestamps of frames known damaged.
    bad: BTreeSet<i64>,
    /// The latest timestamp of an intact packet: where the readable source ends.
    max_intact: Option<i64>,
}

impl DamageMap {
    /// A video packet as the demuxer gave it, in decode order. A repeated
    /// timestamp is one frame.
    pub fn packet(&mut self, pts: i64, key: bool, intact: bool) {
        if self.packet_of.contains_key(&pts) {
            return;
        }
        let i = self.next_packet;
        self.next_packet += 1;
        self.packet_of.insert(pts, i);
        if key {
            self.keys.insert(i, pts);
        }
        if intact {
            self.max_intact = Some(self.max_intact.map_or(pts, |m| m.max(pts)));
        } else {
            self.mark(pts);
        }
    }

    /// Frames (packets) the source has.
    pub fn frames(&self) -> u64 {
        self.packet_of.len() as u64
    }

    /// Frames up to the last intact packet in display order.
    pub fn readable_frames(&self) -> u64 {
        self.max_intact.map_or(0, |m| self.packet_of.range(..=m).count() as u64)
    }

    /// The latest timestamp any packet had.
    pub fn max_pts(&self) -> Option<i64> {
        self.packet_of.last_key_value().map(|(t, _)| *t)
    }

    /// Timestamps of the packets shown after `after` (None: from the start)
    /// and before `before` (None: to the end).
    pub fn between(&self, after: Option<i64>, before: Option<i64>) -> Vec<i64> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lo = after.map_or(Unbounded, Excluded);
        let hi = before.map_or(Unbounded, Excluded);
        self.packet_of.range((lo, hi)).map(|(t, _)| *t).collect()
    }

    /// The frame's picture is damaged (flagged by the decoder, or never came).
    pub fn mark(&mut self, pts: i64) {
        self.bad.insert(pts);
        if let Some(&p) = self.packet_of.get(&pts) {
            self.bad_packets.insert(p);
        }
    }

    /// Whether the frame must show the last good picture instead of its own.
    pub fn is_held(&self, pts: i64) -> bool {
        if self.bad.contains(&pts) {
            return true;
        }
        let Some(&p) = self.packet_of.get(&pts) else { return false };
        // Only damage since the keyframe before the last one can reach this
        // packet (a leading picture references the GOP before its keyframe).
        let mut ks = self.keys.range(..=p).rev().map(|(k, _)| *k);
        let from = match (ks.next(), ks.next()) {
            (_, Some(k0)) => k0,
            _ => 0,
        };
        self.bad_packets.range(from..p).any(|&d| match self.keys.range(d + 1..).next() {
            None => true,
            Some((&k, &kpts)) => k > p || pts < kpts,
        })
    }
}

/// Inclusive runs of consecutive frame numbers (`held` ascending).
pub(super) fn ranges(held: &[u64], start_tc: Option<&str>, rate: (i32, i32)) -> Vec<DamagedRange> {
    let start = start_tc.and_then(|tc| {
        let fr = FrameRate::from_rational(u32::try_from(rate.0).ok()?, u32::try_from(rate.1).ok()?, tc.contains(';'))?;
        Timecode::parse_for_media(tc, fr).ok()
    });
    let label = |n: u64| start.as_ref().and_then(|s| s.checked_add(i64::try_from(n).ok()?)).map(|t| t.to_string());
    let mut out: Vec<DamagedRange> = Vec::new();
    for &n in held {
        match out.last_mut() {
            Some(r) if r.last_frame + 1 == n => r.last_frame = n,
            _ => out.push(DamagedRange { first_frame: n, last_frame: n, timecode_first: None, timecode_last: None }),
        }
    }
    for r in out.iter_mut() {
        r.timecode_first = label(r.first_frame);
        r.timecode_last = label(r.last_frame);
    }
    out
}

/// The proxy note's sentence about held frames.
pub(super) fn describe(ranges: &[DamagedRange]) -> String {
    let list: Vec<String> = ranges
        .iter()
        .map(|r| {
            let frames =
                if r.first_frame == r.last_frame { format!("{}", r.first_frame) } else { format!("{}-{}", r.first_frame, r.last_frame) };
            match (&r.timecode_first, &r.timecode_last) {
                (Some(a), Some(b)) if a == b => format!("{frames} ({a})"),
                (Some(a), Some(b)) => format!("{frames} ({a}-{b})"),
                _ => frames,
            }
        })
        .collect();
    let n: u64 = ranges.iter().map(|r| r.last_frame - r.first_frame + 1).sum();
    format!(
        "damaged: source frame{} {} {} damaged or predicted from a damaged frame, so the proxy holds the last good picture there",
        if n == 1 { "" } else { "s" },
        list.join(", "),
        if n == 1 { "is" } else { "are" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode order of a GOP-6 stream with 2 B-frames: I0 P3 B1 B2 P5 B4 I6 P9 B7 B8 ...
    fn long_gop() -> DamageMap {
        let mut m = DamageMap::default();
        for (pts, key) in [
            (0, true),
            (3, false),
            (1, false),
            (2, false),
            (5, false),
            (4, false),
            (6, true),
            (9, false),
            (7, false),
            (8, false),
            (11, false),
            (10, false),
            (12, true),
        ] {
            m.packet(pts, key, true);
        }
        m
    }

    #[test]
    fn a_damaged_reference_holds_its_gop_from_where_it_is_decoded() {
        let mut m = long_gop();
        m.mark(3);
        let held: Vec<i64> = (0..13).filter(|&s| m.is_held(s)).collect();
        // P3 and everything decoded after it until I6: B1 and B2 are shown before it.
        assert_eq!(held, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_damaged_keyframe_holds_its_whole_gop_and_nothing_after() {
        let mut m = long_gop();
        m.mark(6);
        let held: Vec<i64> = (0..13).filter(|&s| m.is_held(s)).collect();
        assert_eq!(held, [6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn open_gop_leading_pictures_of_the_next_keyframe_are_held() {
        // I0 P3 B1 B2 I6 B4 B5 (B4, B5 lead I6 and reference P3).
        let mut m = DamageMap::default();
        for (pts, key) in
            [(0, true), (3, false), (1, false), (2, false), (6, true), (4, false), (5, false), (9, false), (7, false), (8, false)]
        {
            m.packet(pts, key, true);
        }
        m.mark(3);
        let held: Vec<i64> = (0..10).filter(|&s| m.is_held(s)).collect();
        assert_eq!(held, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn intra_only_holds_just_the_damaged_frame() {
        let mut m = DamageMap::default();
        for s in 0..10 {
            m.packet(s, true, s != 7);
        }
        assert_eq!(m.readable_frames(), 10);
        m.mark(4);
        let held: Vec<i64> = (0..10).filter(|&s| m.is_held(s)).collect();
        assert_eq!(held, [4, 7]);
    }

    #[test]
    fn frames_are_counted_in_display_order() {
        let mut m = long_gop();
        assert_eq!((m.frames(), m.readable_frames(), m.max_pts()), (13, 13, Some(12)));
        assert_eq!(m.between(Some(2), Some(6)), [3, 4, 5]);
        assert_eq!(m.between(Some(10), None), [11, 12]);
        // Cut short: the last packets are not intact.
        m.packet(14, false, false);
        m.packet(13, false, false);
        assert_eq!((m.frames(), m.readable_frames()), (15, 13));
        assert!(m.is_held(13) && m.is_held(14));
    }

    #[test]
    fn ranges_carry_timecodes_and_the_note_names_them() {
        let r = ranges(&[20, 34, 35, 36], Some("01:00:00:00"), (24000, 1001));
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].first_frame, r[0].last_frame, r[0].timecode_first.as_deref()), (20, 20, Some("01:00:00:20")));
        assert_eq!((r[1].timecode_first.as_deref(), r[1].timecode_last.as_deref()), (Some("01:00:01:10"), Some("01:00:01:12")));
        let d = describe(&r);
        assert!(d.contains("20 (01:00:00:20)") && d.contains("34-36 (01:00:01:10-01:00:01:12)"), "{d}");
        // Drop-frame labels keep their `;`; no timecode: frame numbers only.
        let df = ranges(&[30], Some("00:00:59;00"), (30000, 1001));
        assert_eq!(df[0].timecode_first.as_deref(), Some("00:01:00;02"));
        assert_eq!(ranges(&[3], None, (25, 1))[0].timecode_first, None);
    }
}
