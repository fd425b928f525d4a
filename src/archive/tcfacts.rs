//! User timecode facts: a start timecode (and reel, and rate) recorded for a clip whose
//! own is missing or wrong, from a camera or sound report, without touching the original.
//!
//! Design: a fact is a versioned fact of a branch, so it hangs off a commit. `tc set`
//! makes a commit on the branch whose tree is the head's own (no file changes) and whose
//! message says what was set, and records the fact in `tc_facts` keyed by (that commit,
//! path). The fact in force at any commit is the newest one met walking back through its
//! history (first parents first). That gives, with no new machinery:
//! - it follows later commits (they descend from the one that set it);
//! - a branch made from it inherits it (same history), and a change on one branch is
//!   not seen by another;
//! - `log` shows who set or cleared what and when, and `BRANCH@COMMIT` sees the fact as
//!   it was then.
//!
//! The row also keeps the content hash it was recorded for: a different file later put
//! at the same path does not inherit a timecode meant for another clip.
//!
//! Storage: like every other catalog row, the fact is indexed from a pack record
//! (`TcFactRecord`, kind `TcFact`) written in the same pack as its commit; the pack is
//! fsynced before the catalog transaction that adds the commit, the `tc_facts` row and
//! the branch move, so a crash leaves either all of them or an unreferenced pack.
//! `check --rebuild-catalog` restores the rows from those records, and `check --deep`
//! verifies each row against its record. Rows written before facts had records (they
//! lived only in catalog.db) get their records on the next `tc set` or `tc clear`.

use super::error::Result;
use super::objects::{Hash, TcFactRecord};
use super::repo::{make_commit, Archive, NewObject};
use std::collections::{HashSet, VecDeque};

/// A fact in force for a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcFact {
    pub timecode: String,
    pub reel: Option<String>,
    /// A rate as `FrameRate` prints it ("23.976", "29.97 DF"), if one was given.
    pub rate: Option<String>,
}

/// Commits walked looking for a fact before giving up; history deeper than this with a
/// fact set long ago is still found as long as the walk reaches it first.
const MAX_WALK: usize = 100_000;

/// The fact in force for `path` (inside the branch, no leading `/`) at `commit`, for the
/// content `blob` now at that path.
pub fn fact_at(a: &Archive, commit: Option<&Hash>, path: &str, blob: &Hash) -> Result<Option<TcFact>> {
    let Some(start) = commit else { return Ok(None) };
    if !a.catalog.tc_facts_exist(path)? {
        return Ok(None);
    }
    let mut queue = VecDeque::from([*start]);
    let mut seen = HashSet::new();
    while let Some(c) = queue.pop_front() {
        if !seen.insert(c) || seen.len() > MAX_WALK {
            continue;
        }
        if let Some(row) = a.catalog.tc_fact(&c, path)? {
            return Ok(match row.timecode {
                Some(tc) if row.blob == *blob => Some(TcFact { timecode: tc, reel: row.reel, rate: row.rate }),
                _ => None,
            });
        }
        queue.extend(a.commit(&c)?.parents);
    }
    Ok(None)
}

/// Records (`Some`) or clears (`None`) the fact for `path` on `branch` with a new commit
/// on top of its head; returns the commit id. The caller holds the writer lock and has
/// checked the path names a file whose content is `blob`.
pub fn record(a: &mut Archive, branch: &str, path: &str, blob: &Hash, fact: Option<&TcFact>) -> Result<Hash> {
    a.require_writer()?;
    let head = a.resolve_ref(branch)?.1;
    let tree = a.root_tree(head.as_ref())?.ok_or_else(|| super::ArchiveError::NotFound(format!("{branch}/{path}")))?;
    let message = match fact {
        Some(f) => {
            let mut m = format!("tc set {path} {}", f.timecode);
            if let Some(r) = &f.reel {
                m += &format!(" reel {r}");
            }
            if let Some(r) = &f.rate {
                m += &format!(" rate {r}");
            }
            m
        }
        None => format!("tc clear {path}"),
    };
    let c = make_commit(tree, head.into_iter().collect(), branch, &message);
    let id = Hash::of(&c.encode());
    a.catalog.ensure_tc_facts()?;
    let rec = TcFactRecord {
        commit: id,
        path: path.to_string(),
        blob: *blob,
        timecode: fact.map(|f| f.timecode.clone()),
        reel: fact.and_then(|f| f.reel.clone()),
        rate: fact.and_then(|f| f.rate.clone()),
    };
    let mut objs = vec![NewObject::Commit(c), NewObject::TcFact(rec)];
    // Facts recorded before they had pack records: store them now, so a rebuild keeps them.
    for old in a.catalog.all_tc_facts()? {
        if !a.catalog.has_object(&old.id())? {
            objs.push(NewObject::TcFact(old));
        }
    }
    let ids = a.write_objects(&objs, &[(branch.to_string(), Some(id))])?;
    Ok(ids.first().copied().unwrap_or(id))
}
