//! `clip.mov@IN-OUT[+H]`: the one place a slice name becomes a slice plan, for
//! the mount, `reelfs slice`, `reelfs extract` and the HTTP server.
//!
//! The name is parsed, its clip found beside it in the committed tree, the
//! clip's media facts taken with the timecode a user set for it on its branch
//! (`reelfs tc set`), and the plan made (`media::slice::plan`: a rebuilt
//! `moov` over the original's essence, or an MXF remux into `cache/`).

use super::{Access, Result, Target, ViewError};
use crate::archive::objects::TreeEntry;
use crate::archive::{Archive, BlobReader, EntryKind, Hash};
use crate::media::facts::{self as media_facts, MediaFacts};
use crate::media::slice::{self, SlicePlan};
use crate::timecode::SliceSpec;
use std::sync::Arc;

/// A resolved slice: its source and its plan.
pub struct SliceTarget {
    /// The slice's own name (`clip.mov@IN-OUT[+H]`).
    pub name: String,
    /// Mount path of the clip it cuts (`main/Day01/clip.mov`).
    pub source_path: String,
    /// The clip's tree entry (content hash, mode, mtime).
    pub source: TreeEntry,
    pub spec: SliceSpec,
    pub plan: Arc<SlicePlan>,
    /// Reader of the clip's content (the plan reads essence through it).
    pub reader: Arc<BlobReader>,
}

/// A clip's probed facts with the timecode a user recorded for it on its
/// branch; `path` is the mount path, `BRANCH[@COMMIT]/...`.
pub fn clip_facts(a: &Archive, path: &str, blob: &Hash, facts: &MediaFacts) -> MediaFacts {
    match a.resolve(path) {
        Ok(r) => media_facts::in_force(a, r.commit.as_ref(), &r.path, blob, facts),
        Err(_) => facts.with_user_fact(None),
    }
}

/// Plan `spec` over the clip `blob` at mount path `source_path`, with the
/// clip's facts as the archive has them for that path.
pub fn plan(ctx: &impl Access, source_path: &str, spec: &SliceSpec, blob: &Hash) -> Result<(Arc<SlicePlan>, Arc<BlobReader>)> {
    let facts = ctx
        .read(|a| {
            let Some((facts, err)) = media_facts::stored(a, blob)? else { return Ok(Err(None)) };
            let Some(facts) = facts else { return Ok(Err(err)) };
            Ok(Ok(clip_facts(a, source_path, blob, &facts)))
        })?
        .map_err(|damage| {
            ViewError::Slice(format!(
                "{source_path}: no media facts{}; `reelfs info` shows what is known about it",
                damage.map(|e| format!(" (damaged: {e})")).unwrap_or_default()
            ))
        })?;
    plan_with_facts(ctx, source_path, spec, blob, &facts)
}

/// Plan `spec` over the clip `blob` whose facts the caller already has (an
/// extract matched the clip by them). The archive is read first; planning
/// (which may remux an MXF into `cache/`) runs without it.
pub fn plan_with_facts(
    ctx: &impl Access,
    source_path: &str,
    spec: &SliceSpec,
    blob: &Hash,
    facts: &MediaFacts,
) -> Result<(Arc<SlicePlan>, Arc<BlobReader>)> {
    // Paged: a plan reads the clip's sample tables and the slice reads its
    // range, so a slice of a 1 TiB clip (262,144 extents) no longer waits
    // for the whole extent list, with every chunk's row, before its first byte.
    let (reader, cache_dir) = ctx.read(|a| Ok((Arc::new(a.blob_reader_paged(blob)?), a.root().join("cache"))))?;
    let plan = slice::plan(source_path, spec, facts, reader.clone(), &cache_dir).map_err(|e| ViewError::Slice(e.to_string()))?;
    Ok((Arc::new(plan), reader))
}

/// `name` as a slice of a clip in the folder `dir_path` whose committed tree
/// is `tree`. None: not a slice name (no `@`); an error says why a slice name
/// cannot be served.
pub fn lookup(ctx: &impl Access, dir_path: &str, tree: &Hash, name: &str) -> Result<Option<Target>> {
    let Some(spec) = SliceSpec::parse_name(name) else { return Ok(None) };
    let spec = spec.map_err(|e| ViewError::Slice(format!("{dir_path}/{name}: {e}")))?;
    let source_path = join(dir_path, &spec.base_name);
    let base = ctx.read(|a| a.catalog.tree_lookup(tree, &spec.base_name))?;
    let Some(base) = base.filter(|b| b.kind == EntryKind::File) else {
        return Err(ViewError::NotFound(source_path));
    };
    let (plan, reader) = self::plan(ctx, &source_path, &spec, &base.hash)?;
    Ok(Some(Target::Slice(Arc::new(SliceTarget { name: name.to_string(), source_path, source: base, spec, plan, reader }))))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}
