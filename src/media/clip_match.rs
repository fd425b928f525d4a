//! Which archived clip a pull takes an event's (or an OTIO clip's) range from.
//!
//! A card copied twice, a clip re-ingested after a repair, a proxy folder: several clips
//! can share a reel and a timecode range. The rule, in order:
//! 1. only clips identified by the event (reel, or a name it gives) that cover the range;
//! 2. a clip the event names (FROM CLIP NAME, SOURCE FILE, an OTIO media reference) wins
//!    over clips that only share the reel; the name matching more of the path wins;
//! 3. among what is left, a clip not flagged damaged wins;
//! 4. if several are still equal, the first by path is taken and the report says so.
//!
//! Whenever more than one clip covered the range, every candidate is listed with why the
//! chosen one won, so a pull never picks silently among equals.

use super::extract::Clip;
use crate::timecode::{TcRange, TimecodeError};
use serde::Serialize;

/// What a pull asks for.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// The reel to match, or `None` when the reel says nothing (`AX`, an OTIO clip).
    pub reel: Option<String>,
    /// Names of the media, strongest first: clip names, file names or paths, URLs.
    pub names: Vec<String>,
}

/// A clip that covered the range, as the report lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Candidate {
    pub path: String,
    /// "name" (the event names it) or "reel".
    pub matched_by: String,
    /// Why the archive holds it as damaged, if it does.
    pub damaged: Option<String>,
}

#[derive(Debug)]
pub enum Choice<'a> {
    Chosen {
        clip: &'a Clip,
        range: TcRange,
        /// Empty when only one clip covered the range.
        candidates: Vec<Candidate>,
        /// Why `clip` won over the other candidates.
        why: Option<String>,
        /// The event's name for the clip settled it: nothing to warn about.
        by_name: bool,
    },
    /// The clips the event identifies cannot read its labels (frame 30 at 25 fps, ...).
    Invalid(String),
    Missing(String),
}

/// How well `name` (a clip name, a file name, a path or a `file://` URL) names the clip
/// at `path`: 0 not at all, 1 same stem, 2 same file name, +1 for each parent folder
/// that also matches.
pub fn name_score(name: &str, path: &str, stem: &str) -> usize {
    let name = name.trim();
    let name = name.strip_prefix("file://").unwrap_or(name);
    let want: Vec<&str> = name.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
    let have: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (Some(last), Some(file)) = (want.last(), have.last()) else { return 0 };
    if last.eq_ignore_ascii_case(file) {
        let parents = want.iter().rev().zip(have.iter().rev()).skip(1).take_while(|(a, b)| a.eq_ignore_ascii_case(b)).count();
        return 2 + parents;
    }
    let last_stem = std::path::Path::new(last).file_stem().map(|s| s.to_string_lossy().to_string());
    let same_stem = last.eq_ignore_ascii_case(stem) || last_stem.is_some_and(|s| s.eq_ignore_ascii_case(stem));
    usize::from(same_stem && !stem.is_empty())
}

/// Chooses the clip for `wanted`. `range_at` reads the requested range at a clip's rate;
/// `damage` says whether the archive holds a clip as damaged (asked only of candidates).
pub fn choose<'a>(
    clips: &'a [Clip],
    wanted: &Wanted,
    range_at: impl Fn(&Clip) -> Result<TcRange, TimecodeError>,
    damage: impl Fn(&Clip) -> Option<String>,
) -> Choice<'a> {
    let mut identified = 0usize;
    let mut bad_labels: Option<String> = None;
    let mut outside: Vec<String> = Vec::new();
    let mut named_outside: Vec<&str> = Vec::new();
    // (clip, range, name score)
    let mut covering: Vec<(&Clip, TcRange, usize)> = Vec::new();
    for c in clips {
        let score = wanted.names.iter().map(|n| name_score(n, &c.path, &c.stem)).max().unwrap_or(0);
        let by_reel = wanted.reel.as_deref().is_some_and(|r| c.matches_reel(r));
        if score == 0 && !by_reel {
            continue;
        }
        identified += 1;
        match range_at(c) {
            Err(e) => {
                bad_labels.get_or_insert_with(|| format!("{e} (at {}, the rate of {})", c.rate, c.path));
            }
            Ok(r) if c.contains(&r) => covering.push((c, r, score)),
            Ok(_) => {
                if score > 0 {
                    named_outside.push(&c.path);
                }
                outside.push(format!("{} ({}+{} frames)", c.path, c.start, c.frames))
            }
        }
    }
    let what = || {
        let mut parts: Vec<String> = wanted.reel.iter().map(|r| format!("reel {r}")).collect();
        parts.extend(wanted.names.iter().map(|n| format!("{n:?}")));
        parts.join(" / ")
    };
    if covering.is_empty() {
        if identified == 0 {
            return Choice::Missing(format!("no clip with {}", what()));
        }
        if outside.is_empty() {
            if let Some(e) = bad_labels {
                return Choice::Invalid(e);
            }
        }
        return Choice::Missing(format!("no clip with {} covers the range; found {}", what(), outside.join(", ")));
    }
    let best = covering.iter().map(|c| c.2).max().unwrap_or(0);
    let damaged: Vec<Option<String>> = if covering.len() > 1 { covering.iter().map(|(c, _, _)| damage(c)).collect() } else { vec![None] };
    let candidates: Vec<Candidate> = if covering.len() > 1 {
        covering
            .iter()
            .zip(&damaged)
            .map(|((c, _, s), d)| Candidate {
                path: c.path.clone(),
                matched_by: if *s > 0 { "name" } else { "reel" }.to_string(),
                damaged: d.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    // Narrow step by step, remembering the first reason that separated the winner.
    let mut pool: Vec<usize> = (0..covering.len()).filter(|&i| covering[i].2 == best).collect();
    let by_name = covering.len() > 1 && pool.len() == 1 && best > 0;
    let mut why = (covering.len() > 1 && pool.len() < covering.len()).then(|| {
        let names = wanted.names.first().cloned().unwrap_or_default();
        format!("the event names it ({names})")
    });
    let undamaged: Vec<usize> = pool.iter().copied().filter(|&i| damaged.get(i).is_some_and(Option::is_none)).collect();
    if !undamaged.is_empty() && undamaged.len() < pool.len() {
        pool = undamaged;
        why.get_or_insert_with(|| "the other candidates are flagged damaged".to_string());
    }
    if pool.len() > 1 {
        let equals: Vec<&str> = pool.iter().map(|&i| covering[i].0.path.as_str()).collect();
        why = Some(format!(
            "{} clips match equally ({}); took the first by path: name the clip in the EDL \
             (FROM CLIP NAME or SOURCE FILE) or narrow --branch to a folder to choose",
            equals.len(),
            equals.join(", ")
        ));
    } else if why.is_none() && pool.iter().any(|&i| damaged.get(i).is_some_and(Option::is_some)) {
        why = Some("every candidate is flagged damaged".to_string());
    }
    if best == 0 && !named_outside.is_empty() {
        // A tape reel holds many clips: the reel and timecode decide, but the user
        // should know the clip the event names was not the one used.
        why = Some(format!(
            "the clip the event names ({}) does not cover the range; took the reel's clip{}",
            named_outside.join(", "),
            why.map(|w| format!(" ({w})")).unwrap_or_default()
        ));
    }
    let (clip, range, _) = &covering[pool[0]];
    Choice::Chosen { clip, range: *range, candidates, why, by_name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::{FrameRate, Timecode};

    fn clip(path: &str, reel: &str, start: &str) -> Clip {
        let stem = std::path::Path::new(path).file_stem().unwrap().to_string_lossy().to_string();
        Clip {
            path: path.to_string(),
            blob: crate::archive::Hash([0; 32]),
            reel: Some(reel.to_string()),
            stem,
            rate: FrameRate::Fps24,
            start: Timecode::parse(start, FrameRate::Fps24).unwrap(),
            frames: 240,
            facts: Default::default(),
        }
    }

    fn range(c: &Clip, a: &str, b: &str) -> Result<TcRange, TimecodeError> {
        TcRange::new(Timecode::parse_for_media(a, c.rate)?, Timecode::parse_for_media(b, c.rate)?)
    }

    fn chosen(ch: &Choice) -> (String, Vec<String>, Option<String>) {
        match ch {
            Choice::Chosen { clip, candidates, why, .. } => {
                (clip.path.clone(), candidates.iter().map(|c| c.path.clone()).collect(), why.clone())
            }
            other => panic!("not chosen: {other:?}"),
        }
    }

    #[test]
    fn name_scores() {
        assert_eq!(name_score("A001C003_231124_R1AB.mov", "main/Day01/A001C003_231124_R1AB.mov", "A001C003_231124_R1AB"), 2);
        assert_eq!(name_score("/Volumes/RAID/Day01/A001/x.MOV", "main/Day01/A001/x.mov", "x"), 4);
        assert_eq!(name_score("file:///Volumes/RAID/Day01/x.mov", "main/Copy/x.mov", "x"), 2);
        assert_eq!(name_score("A001C003", "main/Day01/A001C003.mov", "A001C003"), 1);
        assert_eq!(name_score("A001C003_231124_R1AB.mov", "main/Copy/A001C003.mov", "A001C003"), 0);
        assert_eq!(name_score("", "main/Copy/A001C003.mov", "A001C003"), 0);
    }

    #[test]
    fn the_named_clip_wins_over_a_reel_match_that_sorts_first() {
        let clips = vec![
            clip("main/CardCopy/A001C003.mov", "A001C003", "01:00:00:00"),
            clip("main/Day01/A001C003_231124_R1AB.mov", "A001C003", "01:00:00:00"),
        ];
        let wanted = Wanted { reel: Some("A001C003".into()), names: vec!["A001C003_231124_R1AB.mov".into()] };
        let ch = choose(&clips, &wanted, |c| range(c, "01:00:01:00", "01:00:02:00"), |_| None);
        let (path, cands, why) = chosen(&ch);
        assert_eq!(path, "main/Day01/A001C003_231124_R1AB.mov");
        assert_eq!(cands.len(), 2);
        assert!(why.unwrap().contains("names it"));
    }

    #[test]
    fn undamaged_wins_among_equals_and_equals_are_never_silent() {
        let clips = vec![
            clip("main/A/R1.mov", "R1", "01:00:00:00"),
            clip("main/B/R1.mov", "R1", "01:00:00:00"),
            clip("main/C/R1.mov", "R1", "01:00:00:00"),
        ];
        let wanted = Wanted { reel: Some("R1".into()), names: vec![] };
        let r = |c: &Clip| range(c, "01:00:01:00", "01:00:02:00");
        let ch = choose(&clips, &wanted, r, |c| c.path.contains("/A/").then(|| "bad chunks".to_string()));
        let (path, cands, why) = chosen(&ch);
        assert_eq!(cands.len(), 3);
        // B and C are equal: the first by path, and the report says there was a tie.
        assert_eq!(path, "main/B/R1.mov");
        assert!(why.unwrap().contains("2 clips match equally"));
        let ch = choose(&clips, &wanted, r, |c| (!c.path.contains("/C/")).then(|| "bad".to_string()));
        let (path, _, why) = chosen(&ch);
        assert_eq!(path, "main/C/R1.mov");
        assert!(why.unwrap().contains("flagged damaged"));
    }

    #[test]
    fn labels_the_clip_cannot_have_are_invalid_not_missing() {
        let clips = vec![clip("main/A/R1.mov", "R1", "01:00:00:00")];
        let wanted = Wanted { reel: Some("R1".into()), names: vec![] };
        let ch = choose(&clips, &wanted, |c| range(c, "01:00:01:24", "01:00:02:00"), |_| None);
        match ch {
            Choice::Invalid(e) => assert!(e.contains("frame 24 does not exist"), "{e}"),
            other => panic!("{other:?}"),
        }
        let ch = choose(&clips, &wanted, |c| range(c, "02:00:01:00", "02:00:02:00"), |_| None);
        assert!(matches!(ch, Choice::Missing(m) if m.contains("covers")));
        let none = Wanted { reel: Some("R9".into()), names: vec![] };
        assert!(matches!(choose(&clips, &none, |c| range(c, "01:00:01:00", "01:00:02:00"), |_| None), Choice::Missing(_)));
    }

    #[test]
    fn a_named_clip_outside_the_range_is_said_when_the_reel_decides() {
        let mut short = clip("main/A/A001C003_take2.mov", "A001C003", "01:00:00:00");
        short.frames = 10;
        let clips = vec![short, clip("main/B/A001C003.mov", "A001C003", "01:00:00:00")];
        let wanted = Wanted { reel: Some("A001C003".into()), names: vec!["A001C003_take2.mov".into()] };
        let ch = choose(&clips, &wanted, |c| range(c, "01:00:01:00", "01:00:02:00"), |_| None);
        let (path, cands, why) = chosen(&ch);
        assert_eq!(path, "main/B/A001C003.mov");
        assert!(cands.is_empty());
        assert!(why.unwrap().contains("the clip the event names (main/A/A001C003_take2.mov) does not cover"));
    }

    #[test]
    fn an_aux_reel_matches_by_name_only() {
        let clips = vec![clip("main/A/ZZ100_501.mov", "ZZ100_501", "01:00:00:00")];
        let by_name = Wanted { reel: None, names: vec!["ZZ100_501.mov".into()] };
        let ch = choose(&clips, &by_name, |c| range(c, "01:00:01:00", "01:00:02:00"), |_| None);
        assert_eq!(chosen(&ch).0, "main/A/ZZ100_501.mov");
    }
}
