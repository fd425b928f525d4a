//! `reelfs tc set|clear`: record (or clear) a clip's start timecode as a commit on
//! its branch, after checking it against the clip (see archive/tcfacts.rs).

use super::{CommandError, Result};
use crate::archive::tcfacts::{self, TcFact};
use crate::archive::{Archive, EntryKind};
use crate::timecode::FrameRate;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TcReport {
    pub path: String,
    /// The timecode recorded; None when it was cleared.
    pub timecode: Option<String>,
    pub reel: Option<String>,
    pub rate: Option<String>,
    /// The commit that records the change (hex).
    pub commit: String,
}

/// What `tc` is asked to do with a clip's recorded timecode.
pub enum TcChange {
    Set { tc: String, reel: Option<String>, rate: Option<String> },
    Clear,
}

pub fn tc(archive: &Path, path: &str, change: TcChange) -> Result<TcReport> {
    let mut a = Archive::open_writer(archive)?;
    let r = a.resolve(path)?;
    if r.entry.kind != EntryKind::File || r.path.is_empty() {
        return Err(CommandError::invalid(format!("{path} is a folder; give BRANCH/PATH of a clip")));
    }
    if r.branch.is_empty() || path.split('/').next().is_some_and(|b| b.contains('@')) {
        return Err(CommandError::invalid(format!(
            "{path}: a timecode is recorded on a branch head, not on an old commit; give BRANCH/PATH"
        )));
    }
    let fact = match change {
        TcChange::Clear => {
            if tcfacts::fact_at(&a, r.commit.as_ref(), &r.path, &r.entry.hash)?.is_none() {
                return Err(CommandError::invalid(format!("{path} has no timecode set by `reelfs tc set`; nothing to clear")));
            }
            None
        }
        TcChange::Set { tc, reel, rate } => {
            let facts = crate::media::facts::stored(&a, &r.entry.hash)?.and_then(|(f, _)| f);
            let Some(facts) = facts else {
                return Err(CommandError::invalid(format!(
                    "{path} is not a probed media file (see `reelfs info`); a timecode can be set only on a clip"
                )));
            };
            let rate = match &rate {
                Some(s) => Some(s.parse::<FrameRate>()?),
                None => None,
            };
            let clip_rate = match rate {
                Some(rt) => rt,
                None => crate::media::slice::clip_timing(path, &facts.to_value())
                    .map(|t| t.0)
                    .map_err(|e| CommandError::invalid(format!("{e}; give the rate with --rate")))?,
            };
            let label = crate::media::tcfact::validate(&tc, clip_rate)?;
            if let Some(rl) = &reel {
                if rl.trim().is_empty() || rl.chars().any(|c| c.is_control()) {
                    return Err(CommandError::invalid(format!("--reel {rl:?}: a reel name must be printable and not empty")));
                }
            }
            Some(TcFact { timecode: label, reel, rate: rate.map(|r| r.to_string()) })
        }
    };
    let id = tcfacts::record(&mut a, &r.branch, &r.path, &r.entry.hash, fact.as_ref())?;
    Ok(TcReport {
        path: path.to_string(),
        timecode: fact.as_ref().map(|f| f.timecode.clone()),
        reel: fact.as_ref().and_then(|f| f.reel.clone()),
        rate: fact.and_then(|f| f.rate),
        commit: id.to_hex(),
    })
}
