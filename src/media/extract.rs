//! `reelfs extract`: pull timecode ranges (from arguments, a CMX3600 EDL or an
//! OTIO timeline) with handles into real files for a conform or a VFX pull.
//! Each pull is the bytes of a virtual slice streamed to disk, so it costs one
//! read of the essence it covers and no re-encode.

use super::slice::{self, SliceError, SlicePlan};
use crate::archive::{Archive, EntryKind, Hash};
use crate::timecode::{parse_edl, FrameRate, Handles, SliceSpec, TcRange, Timecode};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A probed clip in a branch that a pull can be matched against.
#[derive(Debug, Clone)]
pub struct Clip {
    pub path: String,
    pub blob: Hash,
    pub reel: Option<String>,
    pub stem: String,
    pub rate: FrameRate,
    pub start: Timecode,
    pub frames: u64,
    pub facts: serde_json::Value,
}

impl Clip {
    fn contains(&self, r: &TcRange) -> bool {
        r.start.frames() >= self.start.frames() && r.end.frames() <= self.start.frames() + self.frames as i64
    }
    /// EDL reel fields are often truncated to 8 characters; compare case-blind.
    fn matches_reel(&self, reel: &str) -> bool {
        let r = reel.trim().to_ascii_uppercase();
        if r.is_empty() {
            return false;
        }
        let cands = [self.reel.clone().unwrap_or_default(), self.stem.clone()];
        cands.iter().any(|c| {
            let c = c.to_ascii_uppercase();
            !c.is_empty() && (c == r || (r.len() >= 8 && c.starts_with(&r)) || c.split(['_', '.', ' ']).next() == Some(r.as_str()))
        })
    }
}

/// Every clip with video and a frame rate below `spec` (`BRANCH[/PATH]`).
pub fn index_clips(archive: &Archive, spec: &str) -> crate::archive::Result<Vec<Clip>> {
    let root = archive.resolve(spec)?;
    let mut out = Vec::new();
    let mut stack = vec![(root.entry.clone(), format!("{}/{}", root.branch, root.path).trim_end_matches('/').to_string())];
    if root.commit.is_none() {
        return Ok(out);
    }
    while let Some((e, path)) = stack.pop() {
        match e.kind {
            EntryKind::Dir => {
                for c in archive.list_dir(&e.hash)? {
                    let p = format!("{path}/{}", c.name);
                    stack.push((c, p));
                }
            }
            EntryKind::File => {
                let Some((Some(facts), _)) = archive.media(&e.hash)? else { continue };
                let facts = super::tcfact::facts_at(archive, root.commit.as_ref(), path.split_once('/').map_or("", |p| p.1), &e.hash, &facts);
                let Ok((rate, start, frames)) = slice::clip_timing(&path, &facts) else { continue };
                let stem = Path::new(&e.name).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                out.push(Clip { path, blob: e.hash, reel: facts["reel"].as_str().map(String::from), stem, rate, start, frames, facts });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct PullResult {
    /// "event 12" for an EDL, the clip path for a manual pull.
    pub source: String,
    pub reel: String,
    pub clip: Option<String>,
    pub src_in: String,
    pub src_out: String,
    pub status: String,
    pub reason: Option<String>,
    pub output: Option<String>,
    pub first_tc: Option<String>,
    pub frames: Option<u64>,
    pub handles_before: Option<u64>,
    pub handles_after: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct ExtractReport {
    pub pulls: Vec<PullResult>,
    pub warnings: Vec<String>,
    pub extracted: u64,
    pub missing: u64,
    pub failed: u64,
}

fn tc_compact(tc: &str) -> String {
    tc.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// Write one slice of `clip` into `out_dir`; the name tells a vendor the reel
/// and source range: `<prefix><reel-or-stem>_<IN>-<OUT>.<ext>`.
pub fn pull(archive: &Archive, clip: &Clip, in_label: &str, out_label: &str, handles: u32, out_dir: &Path, prefix: &str) -> Result<(SlicePlan, PathBuf), SliceError> {
    let base = Path::new(&clip.path).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let spec = SliceSpec {
        base_name: base.clone(),
        in_label: in_label.to_string(),
        out_label: out_label.to_string(),
        handles: if handles > 0 { Handles::Frames(handles) } else { Handles::None },
        trailing_ext: None,
    };
    let reader = Arc::new(archive.blob_reader(&clip.blob)?);
    let plan = slice::plan(&clip.path, &spec, &clip.facts, reader.clone(), &archive.root().join("cache"))?;
    let ext = Path::new(&base).extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_else(|| "mov".into());
    let label = clip.reel.clone().filter(|r| !r.is_empty()).map(|r| if r == clip.stem { r } else { format!("{r}_{}", clip.stem) }).unwrap_or_else(|| clip.stem.clone());
    let name = format!("{prefix}{label}_{}-{}.{ext}", tc_compact(&plan.in_tc), tc_compact(&plan.out_tc));
    let target = out_dir.join(name);
    let tmp = out_dir.join(format!(".{}.part", target.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()));
    let io = |e: std::io::Error| SliceError::Archive(crate::archive::ArchiveError::Io { path: tmp.clone(), source: e });
    let res = (|| {
        let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&tmp).map_err(io)?);
        // Overlap reading the essence with writing it: load the source chunks the
        // slice covers ahead of the writer.
        let (src_from, src_to, head_len) = plan.source_span();
        let ra = reader.read_ahead(src_from, src_to, 32 << 20);
        let mut buf = vec![0u8; 8 << 20];
        let mut off = 0u64;
        while off < plan.size {
            ra.advance(src_from + off.saturating_sub(head_len));
            let n = plan.read_at(&reader, off, &mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(io)?;
            off += n as u64;
        }
        let f = f.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &target).map_err(io)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((plan, target))
}

impl PullResult {
    /// A pull not yet attempted: what was asked for, nothing of the outcome.
    fn asked(source: String, reel: String, clip: Option<String>, src_in: String, src_out: String) -> PullResult {
        PullResult {
            source,
            reel,
            clip,
            src_in,
            src_out,
            status: String::new(),
            reason: None,
            output: None,
            first_tc: None,
            frames: None,
            handles_before: None,
            handles_after: None,
            bytes: None,
        }
    }
}

fn done(mut r: PullResult, res: Result<(SlicePlan, PathBuf), SliceError>, rep: &mut ExtractReport) -> PullResult {
    match res {
        Ok((plan, path)) => {
            r.status = "extracted".into();
            r.output = Some(path.display().to_string());
            r.first_tc = Some(plan.start_tc.clone());
            r.frames = Some(plan.end_frame - plan.first_frame);
            r.handles_before = Some(plan.handles_before);
            r.handles_after = Some(plan.handles_after);
            r.bytes = Some(plan.size);
            rep.extracted += 1;
        }
        Err(e) => {
            r.status = "failed".into();
            r.reason = Some(e.to_string());
            rep.failed += 1;
        }
    }
    r
}

/// Pull every event of an EDL from the clips under `scope` (`BRANCH[/PATH]`).
/// Events with no matching media are listed as missing; the others still run.
pub fn extract_edl(archive: &Archive, scope: &str, edl_text: &str, handles: u32, out_dir: &Path) -> crate::archive::Result<ExtractReport> {
    let clips = index_clips(archive, scope)?;
    let parsed = parse_edl(edl_text, None);
    let mut rep = ExtractReport::default();
    for w in &parsed.warnings {
        rep.warnings.push(format!("line {}: {} ({})", w.line, w.reason, w.text.trim()));
    }
    // (clip, in, out) already pulled -> (event number, output), so a repeat is listed.
    let mut seen: std::collections::HashMap<(String, String, String), (u32, Option<String>)> = std::collections::HashMap::new();
    for (idx, ev) in parsed.events.iter().enumerate() {
        let reel = ev.reel.trim().to_string();
        let base = PullResult::asked(format!("event {}", ev.number), reel.clone(), None, ev.source_in.clone(), ev.source_out.clone());
        if matches!(reel.to_ascii_uppercase().as_str(), "BL" | "BLK" | "BLACK" | "AX" | "AUX") {
            // Black and aux sources have no media to pull; still listed, so the report
            // accounts for every event.
            let mut r = base;
            r.status = "skipped".into();
            r.reason = Some(format!("{reel} is black/aux: no media to pull"));
            rep.pulls.push(r);
            continue;
        }
        // The outgoing side of a two-line dissolve/wipe is written IN == OUT; the
        // material it needs is IN for the transition's duration (it plays under it).
        let trans_frames = parsed.events.iter().find(|e| e.outgoing == Some(idx)).and_then(|e| match &e.transition {
            crate::timecode::Transition::Dissolve(d) | crate::timecode::Transition::Wipe(_, d) => Some(*d as i64),
            crate::timecode::Transition::Key(_, Some(d)) => Some(*d as i64),
            _ => None,
        }).filter(|d| *d > 0);
        let out_label = |c: &Clip| -> String {
            match (trans_frames, ev.source_range(c.rate)) {
                (Some(d), Ok(r)) if r.is_empty() => Timecode::parse_for_media(&ev.source_in, c.rate)
                    .map(|t| (t + d).to_string())
                    .unwrap_or_else(|_| ev.source_out.clone()),
                _ => ev.source_out.clone(),
            }
        };
        let names: Vec<String> = [Some(reel.clone()), ev.clip_name.clone(), ev.source_file.clone()].into_iter().flatten().collect();
        let found = clips.iter().find(|c| {
            let Ok(mut range) = ev.source_range(c.rate) else { return false };
            if let (Some(d), true) = (trans_frames, range.is_empty()) {
                range = range.widened(0, d);
            }
            names.iter().any(|n| c.matches_reel(n) || Path::new(n).file_stem().map(|s| s.to_string_lossy().eq_ignore_ascii_case(&c.stem)).unwrap_or(false))
                && c.contains(&range)
        });
        let Some(clip) = found else {
            let mut r = base;
            r.status = "missing".into();
            r.reason = Some(format!("no clip with reel/name {} covers {}-{}", names.join(" / "), ev.source_in, ev.source_out));
            rep.missing += 1;
            rep.pulls.push(r);
            continue;
        };
        let src_out = out_label(clip);
        let key = (clip.path.clone(), ev.source_in.clone(), src_out.clone());
        if let Some((n, out)) = seen.get(&key) {
            // The same range twice (audio + video of one cut): pulled once, listed twice.
            let mut r = base;
            r.clip = Some(clip.path.clone());
            r.src_out = src_out;
            r.status = "duplicate".into();
            r.reason = Some(format!("same source range as event {n}"));
            r.output = out.clone();
            rep.pulls.push(r);
            continue;
        }
        let mut r = base;
        r.clip = Some(clip.path.clone());
        r.src_out = src_out.clone();
        let res = pull(archive, clip, &ev.source_in, &src_out, handles, out_dir, &format!("e{:03}_", ev.number));
        let r = done(r, res, &mut rep);
        seen.insert(key, (ev.number, r.output.clone()));
        rep.pulls.push(r);
    }
    Ok(rep)
}

/// Pull clips named in an OpenTimelineIO timeline (`.otio` JSON): each Clip's
/// `source_range` (start_time + duration, in its own rate) from the media named
/// by its `name` or `media_reference.target_url`.
pub fn extract_otio(archive: &Archive, scope: &str, otio_text: &str, handles: u32, out_dir: &Path) -> crate::archive::Result<ExtractReport> {
    let clips = index_clips(archive, scope)?;
    let mut rep = ExtractReport::default();
    let v: serde_json::Value = match serde_json::from_str(otio_text) {
        Ok(v) => v,
        Err(e) => {
            rep.warnings.push(format!("not an OTIO JSON file: {e}"));
            return Ok(rep);
        }
    };
    let mut found = Vec::new();
    collect_otio_clips(&v, &mut found);
    for (i, c) in found.iter().enumerate() {
        let name = c["name"].as_str().unwrap_or("").to_string();
        // OTIO < 0.15 (Clip.1): media_reference; Clip.2: media_references[active key].
        let key = c["active_media_reference_key"].as_str().unwrap_or("DEFAULT_MEDIA");
        let url = c["media_reference"]["target_url"].as_str()
            .or_else(|| c["media_references"][key]["target_url"].as_str())
            .unwrap_or("").to_string();
        let sr = &c["source_range"];
        let (start, dur, rate) = (sr["start_time"]["value"].as_f64(), sr["duration"]["value"].as_f64(), sr["start_time"]["rate"].as_f64());
        let mut r = PullResult::asked(format!("clip {} '{}'", i + 1, name), name.clone(), None, String::new(), String::new());
        let (Some(start), Some(dur), Some(_rate)) = (start, dur, rate) else {
            r.status = "failed".into();
            r.reason = Some("clip has no source_range".into());
            rep.failed += 1;
            rep.pulls.push(r);
            continue;
        };
        let url_stem = Path::new(url.trim_start_matches("file://")).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let Some(clip) = clips.iter().find(|c| {
            let sf = start.round() as i64;
            let ef = sf + dur.round() as i64;
            let range_ok = sf >= c.start.frames() && ef <= c.start.frames() + c.frames as i64;
            range_ok && (c.matches_reel(&name) || (!url_stem.is_empty() && url_stem.eq_ignore_ascii_case(&c.stem)) || Path::new(&name).file_stem().map(|s| s.to_string_lossy().eq_ignore_ascii_case(&c.stem)).unwrap_or(false))
        }) else {
            r.status = "missing".into();
            r.reason = Some(format!("no clip named {name} {url} covers frames {start}+{dur}"));
            rep.missing += 1;
            rep.pulls.push(r);
            continue;
        };
        let a = Timecode::from_frames(start.round() as i64, clip.rate);
        let b = Timecode::from_frames((start + dur).round() as i64, clip.rate);
        r.src_in = a.to_string();
        r.src_out = b.to_string();
        r.clip = Some(clip.path.clone());
        let res = pull(archive, clip, &r.src_in.clone(), &r.src_out.clone(), handles, out_dir, &format!("c{:03}_", i + 1));
        let r = done(r, res, &mut rep);
        rep.pulls.push(r);
    }
    Ok(rep)
}

fn collect_otio_clips<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("OTIO_SCHEMA").and_then(|s| s.as_str()).map(|s| s.starts_with("Clip.")).unwrap_or(false) {
                out.push(v);
                return;
            }
            for x in m.values() {
                collect_otio_clips(x, out);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                collect_otio_clips(x, out);
            }
        }
        _ => {}
    }
}

/// A single manual pull: `reelfs extract ARCHIVE BRANCH/PATH --in TC --out-tc TC`.
pub fn extract_one(archive: &Archive, path: &str, in_tc: &str, out_tc: &str, handles: u32, out_dir: &Path) -> crate::archive::Result<ExtractReport> {
    let mut rep = ExtractReport::default();
    let r = archive.resolve(path)?;
    let clips = index_clips(archive, path)?;
    let mut pr = PullResult::asked(path.to_string(), String::new(), Some(path.to_string()), in_tc.into(), out_tc.into());
    let Some(clip) = clips.into_iter().find(|c| c.blob == r.entry.hash) else {
        pr.status = "failed".into();
        pr.reason = Some(format!("{path}: not a probed clip with video and timecode"));
        rep.failed += 1;
        rep.pulls.push(pr);
        return Ok(rep);
    };
    pr.reel = clip.reel.clone().unwrap_or_default();
    let res = pull(archive, &clip, in_tc, out_tc, handles, out_dir, "");
    let pr = done(pr, res, &mut rep);
    rep.pulls.push(pr);
    Ok(rep)
}
