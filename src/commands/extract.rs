//! `reelfs extract`: pull timecode ranges (from arguments, a CMX3600 EDL or an
//! OTIO timeline) with handles into real files for a conform or a VFX pull.
//! Each pull is the bytes of a virtual slice (resolved by `view::slice`, as the
//! mount's are) streamed to disk, so it costs one read of the essence it
//! covers and no re-encode.

use crate::archive::{Archive, ArchiveError};
use crate::media::clip_match::{self, Candidate, Choice, Wanted};
use crate::media::extract::{damage_of, index_clips, Clip};
use crate::media::otio::{parse_otio, OtioError};
use crate::media::slice::SlicePlan;
use crate::timecode::{edl::excerpt, parse_edl, Handles, SliceSpec, TcRange, Timecode};
use crate::view::{self, ViewError};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a pull list could not be used at all (a bad event only fails that event).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "no CMX3600 events found in {file}: {detail}; an event line reads like \
         `001  A001C003 V     C        01:00:10:00 01:00:15:00 01:00:00:00 01:00:05:00`"
    )]
    NoEvents { file: String, detail: String },
    #[error("cannot read {file} as an OTIO timeline: {source}")]
    Otio { file: String, source: OtioError },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("a single pull needs --in TC and --out-tc TC")]
    NoRange,
    #[error("give exactly one of: BRANCH/PATH --in TC --out-tc TC, --edl FILE, --otio FILE")]
    NoSource,
    #[error("cannot read {file}: {source}")]
    Read { file: PathBuf, source: std::io::Error },
}

/// What to pull.
pub enum PullList<'a> {
    /// One clip (`BRANCH/PATH`) from `in_tc` to `out_tc` (exclusive).
    One { path: &'a str, in_tc: &'a str, out_tc: &'a str },
    /// Every event of a CMX3600 EDL file.
    Edl(&'a Path),
    /// Every clip of an OTIO timeline file.
    Otio(&'a Path),
}

impl<'a> PullList<'a> {
    /// The pull list the CLI's options name (exactly one of them).
    pub fn from_options(
        path: Option<&'a str>,
        edl: Option<&'a Path>,
        otio: Option<&'a Path>,
        in_tc: Option<&'a str>,
        out_tc: Option<&'a str>,
    ) -> Result<PullList<'a>, ExtractError> {
        match (path, edl, otio) {
            (Some(path), None, None) => match (in_tc, out_tc) {
                (Some(in_tc), Some(out_tc)) => Ok(PullList::One { path, in_tc, out_tc }),
                _ => Err(ExtractError::NoRange),
            },
            (None, Some(e), None) => Ok(PullList::Edl(e)),
            (None, None, Some(o)) => Ok(PullList::Otio(o)),
            _ => Err(ExtractError::NoSource),
        }
    }
}

/// The outcome of `extract`: the report, and where it was written.
#[derive(Debug, Serialize)]
pub struct ExtractOutcome {
    #[serde(flatten)]
    pub report: ExtractReport,
    pub report_path: PathBuf,
}

impl ExtractOutcome {
    /// True when every pull was made (the CLI exits 0).
    pub fn complete(&self) -> bool {
        self.report.missing == 0 && self.report.failed == 0 && self.report.invalid == 0
    }
}

/// `reelfs extract`: make `out` (never inside the archive), pull `list` from
/// the clips under `scope` (`BRANCH[/FOLDER]`, for EDL and OTIO matching) with
/// `handles` frames each side, and write `report.json` beside the pulls.
pub fn extract(archive: &Archive, list: &PullList, scope: &str, handles: u32, out: &Path) -> Result<ExtractOutcome, ExtractError> {
    crate::archive::dest::OutDir::create(archive.root(), out)?;
    let read = |f: &Path| std::fs::read(f).map_err(|source| ExtractError::Read { file: f.to_path_buf(), source });
    let report = match list {
        PullList::One { path, in_tc, out_tc } => extract_one(archive, path, in_tc, out_tc, handles, out)?,
        PullList::Edl(e) => extract_edl(archive, scope, &e.display().to_string(), &String::from_utf8_lossy(&read(e)?), handles, out)?,
        PullList::Otio(o) => extract_otio(archive, scope, &o.display().to_string(), &String::from_utf8_lossy(&read(o)?), handles, out)?,
    };
    let report_path = write_report(out, &report)?;
    Ok(ExtractOutcome { report, report_path })
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
    /// 1-based line of the EDL event.
    pub line: Option<usize>,
    /// Every clip that covered the range when more than one did (see `clip_match`).
    pub candidates: Vec<Candidate>,
    /// Why `clip` was taken over the other candidates.
    pub chosen_because: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ExtractReport {
    pub pulls: Vec<PullResult>,
    pub warnings: Vec<String>,
    pub extracted: u64,
    pub missing: u64,
    pub failed: u64,
    /// Events whose ranges cannot exist (impossible labels, in after out, ...).
    pub invalid: u64,
}

fn tc_compact(tc: &str) -> String {
    tc.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// Write one slice of `clip` into `out_dir`; the name tells a vendor the reel
/// and source range: `<prefix><reel-or-stem>_<IN>-<OUT>.<ext>`.
pub fn pull(
    archive: &Archive,
    clip: &Clip,
    in_label: &str,
    out_label: &str,
    handles: u32,
    out_dir: &Path,
    prefix: &str,
) -> Result<(SlicePlan, PathBuf), ViewError> {
    let base = Path::new(&clip.path).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let spec = SliceSpec {
        base_name: base.clone(),
        in_label: in_label.to_string(),
        out_label: out_label.to_string(),
        handles: if handles > 0 { Handles::Frames(handles) } else { Handles::None },
        trailing_ext: None,
    };
    // The clip was matched by its facts (with the user's timecode at the
    // commit the pull list was matched against): plan over exactly those.
    let (plan, reader) = view::slice::plan_with_facts(archive, &clip.path, &spec, &clip.blob, &clip.facts)?;
    let ext = Path::new(&base).extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_else(|| "mov".into());
    let label = clip
        .reel
        .clone()
        .filter(|r| !r.is_empty())
        .map(|r| if r == clip.stem { r } else { format!("{r}_{}", clip.stem) })
        .unwrap_or_else(|| clip.stem.clone());
    let name = format!("{prefix}{label}_{}-{}.{ext}", tc_compact(&plan.in_tc), tc_compact(&plan.out_tc));
    // The reel comes from the media's own metadata: a '/' in it must not turn the
    // output name into a path.
    let name = name.replace(['/', '\0'], "_");
    let target = out_dir.join(&name);
    // Written under a fresh O_EXCL name and renamed over `name`: a file or link
    // planted in the output folder is never opened or written through.
    let dir = crate::archive::dest::OutDir::open(out_dir)?;
    let (tmp, file) = dir.create_temp(".reelfs-part-")?;
    let tmp_path = out_dir.join(&tmp);
    let io = |e: std::io::Error| ViewError::Archive(crate::archive::ArchiveError::Io { path: tmp_path.clone(), source: e });
    let res = (|| {
        // Overlap reading the essence with writing it: load the source chunks the
        // slice covers ahead of the writer.
        let (src_from, src_to, head_len) = plan.source_span();
        // Loaded around the page cache where the packs allow: the writer
        // takes the bytes from the loaded chunks, never from the packs again.
        let ra = reader.read_ahead(src_from, src_to, 32 << 20);
        match plan.file.as_deref() {
            Some(vf) => write_segments(vf, &reader, &ra, &file).map_err(io)?,
            None => {
                // A remuxed slice: its bytes are a file in the archive's cache.
                let mut f = &file;
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
            }
        }
        let f = file;
        // Readable as a file made by `cp` would be (the temporary starts private).
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666 & !crate::archive::dest::umask())).map_err(io)?;
        f.sync_all().map_err(io)?;
        dir.rename(&tmp, &name).map_err(ViewError::Archive)
    })();
    if let Err(e) = res {
        dir.remove(&tmp);
        return Err(e);
    }
    Ok(((*plan).clone(), target))
}

/// Write a zero-copy slice's bytes to `out`: its new header from memory, and
/// the essence it shares with the source from the chunks the read-ahead
/// loaded and verified, gathered into aligned blocks that go to the disk
/// around the page cache (`DirectAppend`, as packs do). Copying raw essence
/// pack -> file inside the kernel (`copy_file_range`) was still a kernel copy
/// plus page-cache pages for every output byte: 0.70x of `cp` for a 2-minute
/// pull. Zero runs are read and written the same way.
fn write_segments(
    vf: &crate::media::qt::VirtualFile,
    reader: &std::sync::Arc<crate::archive::BlobReader>,
    ra: &crate::archive::read::ReadAhead,
    out: &std::fs::File,
) -> std::io::Result<()> {
    use crate::media::qt::Segment;
    let mut sink = crate::archive::pack_direct::DirectAppend::new(out.try_clone()?)?;
    let mut buf = Vec::new();
    for seg in &vf.segments {
        match seg {
            Segment::Inline(bytes) => sink.write(bytes)?,
            Segment::Source { offset, len } => {
                let mut done = 0u64;
                while done < *len {
                    let at = offset + done;
                    ra.advance(at);
                    // The output's own error (a full disk) is kept as it is.
                    let mut written = Ok(());
                    let given = reader.with_data(at, len - done, &mut |b| written = sink.write(b)).map_err(std::io::Error::other)?;
                    written?;
                    if given > 0 {
                        done += given;
                        continue;
                    }
                    if buf.is_empty() {
                        buf = vec![0u8; 8 << 20];
                    }
                    let want = (len - done).min(buf.len() as u64) as usize;
                    let n = reader.read_at(at, &mut buf[..want]).map_err(std::io::Error::other)?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the source ends at {at}, inside the slice"),
                        ));
                    }
                    sink.write(&buf[..n])?;
                    done += n as u64;
                }
            }
        }
    }
    sink.finish()?;
    Ok(())
}

/// Write `report.json` into the output folder (via a temporary, replacing a
/// link planted at that name rather than writing through it).
pub fn write_report(out_dir: &Path, rep: &ExtractReport) -> crate::archive::Result<PathBuf> {
    let text =
        serde_json::to_string_pretty(rep).map_err(|e| crate::archive::ArchiveError::Invalid(format!("cannot encode the report: {e}")))?;
    let dir = crate::archive::dest::OutDir::open(out_dir)?;
    dir.write_file("report.json", |f| f.write_all(text.as_bytes()))?;
    Ok(out_dir.join("report.json"))
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
            line: None,
            candidates: Vec::new(),
            chosen_because: None,
        }
    }

    /// Lists this pull as invalid, with its line.
    fn invalid(mut self, reason: String, rep: &mut ExtractReport) {
        self.status = "invalid".into();
        self.reason = Some(match self.line {
            Some(l) => format!("line {l}: {reason}"),
            None => reason,
        });
        rep.invalid += 1;
        rep.pulls.push(self);
    }

    /// Lists this pull as missing.
    fn missing(mut self, reason: String, rep: &mut ExtractReport) {
        self.status = "missing".into();
        self.reason = Some(match self.line {
            Some(l) => format!("line {l}: {reason}"),
            None => reason,
        });
        rep.missing += 1;
        rep.pulls.push(self);
    }
}

/// The report's text when no line of an EDL is an event: what the first lines were.
fn no_events_detail(parsed: &crate::timecode::EdlParse) -> String {
    if parsed.warnings.is_empty() {
        return "the file has no event lines".into();
    }
    let first: Vec<String> = parsed.warnings.iter().take(3).map(|w| format!("line {}: {} ({})", w.line, w.reason, w.text)).collect();
    format!("{} lines could not be read, the first: {}", parsed.warnings.len(), first.join("; "))
}

fn done(mut r: PullResult, res: Result<(SlicePlan, PathBuf), ViewError>, rep: &mut ExtractReport) -> PullResult {
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

/// Pull every event of an EDL (`edl_name` is how the user named the file) from the
/// clips under `scope` (`BRANCH[/PATH]`). Events with no matching media are listed as
/// missing, events whose ranges cannot exist as invalid; the others still run. A file
/// with no event at all is an error: "0 extracted" would read as success.
pub fn extract_edl(
    archive: &Archive,
    scope: &str,
    edl_name: &str,
    edl_text: &str,
    handles: u32,
    out_dir: &Path,
) -> Result<ExtractReport, ExtractError> {
    let parsed = parse_edl(edl_text, None);
    if parsed.events.is_empty() {
        return Err(ExtractError::NoEvents { file: edl_name.to_string(), detail: no_events_detail(&parsed) });
    }
    let clips = index_clips(archive, scope)?;
    let mut rep = ExtractReport::default();
    for w in &parsed.warnings {
        rep.warnings.push(format!("line {}: {} ({})", w.line, w.reason, w.text.trim()));
    }
    // (clip, in, out) already pulled -> (event number, output), so a repeat is listed.
    let mut seen: std::collections::HashMap<(String, String, String), (u32, Option<String>)> = std::collections::HashMap::new();
    for (idx, ev) in parsed.events.iter().enumerate() {
        let reel = ev.reel.trim().to_string();
        let mut base = PullResult::asked(format!("event {}", ev.number), reel.clone(), None, ev.source_in.clone(), ev.source_out.clone());
        base.line = Some(ev.line);
        if let Some(why) = &ev.invalid {
            base.invalid(why.clone(), &mut rep);
            continue;
        }
        let names: Vec<String> =
            [ev.clip_name.clone(), ev.source_file.clone()].into_iter().flatten().filter(|n| !n.trim().is_empty()).collect();
        let upper = reel.to_ascii_uppercase();
        // AX is "auxiliary source": Premiere and Resolve write it for every file-based
        // clip and name the clip in FROM CLIP NAME, so an AX event is matched by name.
        let aux = matches!(upper.as_str(), "AX" | "AUX");
        if matches!(upper.as_str(), "BL" | "BLK" | "BLACK" | "BARS") || (aux && names.is_empty()) {
            // Black, bars and unnamed aux sources have no media to pull; still listed, so
            // the report accounts for every event.
            let mut r = base;
            r.status = "skipped".into();
            r.reason = Some(format!("{reel} is black/bars/aux: no media to pull"));
            rep.pulls.push(r);
            continue;
        }
        // The outgoing side of a two-line dissolve/wipe is written IN == OUT; the
        // material it needs is IN for the transition's duration (it plays under it).
        let trans_frames = parsed
            .events
            .iter()
            .find(|e| e.outgoing == Some(idx))
            .and_then(|e| match &e.transition {
                crate::timecode::Transition::Dissolve(d) | crate::timecode::Transition::Wipe(_, d) => Some(*d as i64),
                crate::timecode::Transition::Key(_, Some(d)) => Some(*d as i64),
                _ => None,
            })
            .filter(|d| *d > 0);
        let range_at = |c: &Clip| -> Result<TcRange, crate::timecode::TimecodeError> {
            let r = ev.source_range(c.rate)?;
            Ok(match trans_frames {
                Some(d) if r.is_empty() => r.widened(0, d),
                _ => r,
            })
        };
        let wanted = Wanted { reel: (!aux).then(|| reel.clone()), names };
        let (clip, range, candidates, why, by_name) = match clip_match::choose(&clips, &wanted, range_at, |c| damage_of(archive, c)) {
            Choice::Chosen { clip, range, candidates, why, by_name } => (clip, range, candidates, why, by_name),
            Choice::Invalid(e) => {
                base.invalid(e, &mut rep);
                continue;
            }
            Choice::Missing(m) => {
                let reason = format!("{m} for {}-{}", ev.source_in, ev.source_out);
                base.missing(reason, &mut rep);
                continue;
            }
        };
        // A tie, or a choice made by damage flags, is worth a line on stderr.
        if let Some(w) = why.as_ref().filter(|_| !by_name) {
            rep.warnings.push(format!("line {}: event {} took {}: {w}", ev.line, ev.number, clip.path));
        }
        let (src_in, src_out) = (range.start.to_string(), range.end.to_string());
        let key = (clip.path.clone(), src_in.clone(), src_out.clone());
        let mut r = base;
        r.clip = Some(clip.path.clone());
        r.src_in = src_in.clone();
        r.src_out = src_out.clone();
        r.candidates = candidates;
        r.chosen_because = why;
        if let Some((n, out)) = seen.get(&key) {
            // The same range twice (audio + video of one cut): pulled once, listed twice.
            r.status = "duplicate".into();
            r.reason = Some(format!("same source range as event {n}"));
            r.output = out.clone();
            rep.pulls.push(r);
            continue;
        }
        let res = pull(archive, clip, &src_in, &src_out, handles, out_dir, &format!("e{:03}_", ev.number));
        let r = done(r, res, &mut rep);
        seen.insert(key, (ev.number, r.output.clone()));
        rep.pulls.push(r);
    }
    Ok(rep)
}

/// Pull clips named in an OpenTimelineIO timeline (`.otio` JSON): each Clip's
/// `source_range` (its media reference's `available_range` when that is null), in its
/// own rate, from the media named by its `media_reference` target URL or its `name`.
pub fn extract_otio(
    archive: &Archive,
    scope: &str,
    otio_name: &str,
    otio_text: &str,
    handles: u32,
    out_dir: &Path,
) -> Result<ExtractReport, ExtractError> {
    let found = parse_otio(otio_text).map_err(|source| ExtractError::Otio { file: otio_name.to_string(), source })?;
    let clips = index_clips(archive, scope)?;
    let mut rep = ExtractReport::default();
    for (i, c) in found.iter().enumerate() {
        let label = excerpt(&c.name);
        let mut r = PullResult::asked(format!("clip {} '{}'", i + 1, label), label.clone(), None, String::new(), String::new());
        if let Some(kind) = &c.generator {
            r.status = "skipped".into();
            r.reason = Some(format!("a {kind} generator: no media to pull"));
            rep.pulls.push(r);
            continue;
        }
        let range = match &c.range {
            Ok(range) => *range,
            Err(e) => {
                r.invalid(e.clone(), &mut rep);
                continue;
            }
        };
        let names: Vec<String> =
            [c.target_url.clone(), Some(c.name.clone())].into_iter().flatten().filter(|n| !n.trim().is_empty()).collect();
        // An OTIO clip's name is often its reel or camera clip name.
        let wanted = Wanted { reel: Some(c.name.clone()).filter(|n| !n.trim().is_empty()), names };
        let range_at = |clip: &Clip| -> Result<TcRange, crate::timecode::TimecodeError> {
            let (a, b) = range.frames_at(clip.rate.as_f64());
            TcRange::new(Timecode::from_frames(a, clip.rate), Timecode::from_frames(b, clip.rate))
        };
        let (clip, tc, candidates, why, by_name) = match clip_match::choose(&clips, &wanted, range_at, |c| damage_of(archive, c)) {
            Choice::Chosen { clip, range, candidates, why, by_name } => (clip, range, candidates, why, by_name),
            Choice::Invalid(e) => {
                r.invalid(e, &mut rep);
                continue;
            }
            Choice::Missing(m) => {
                // `{:?}` keeps 1e300 short where `{}` would print 301 digits.
                let reason = format!("{m} for frames {:?}+{:?} at {:?} fps", range.start, range.duration, range.rate);
                r.missing(reason, &mut rep);
                continue;
            }
        };
        // A tie, or a choice made by damage flags, is worth a line on stderr.
        if let Some(w) = why.as_ref().filter(|_| !by_name) {
            rep.warnings.push(format!("clip {} took {}: {w}", i + 1, clip.path));
        }
        r.src_in = tc.start.to_string();
        r.src_out = tc.end.to_string();
        r.clip = Some(clip.path.clone());
        r.candidates = candidates;
        r.chosen_because = why;
        let res = pull(archive, clip, &r.src_in.clone(), &r.src_out.clone(), handles, out_dir, &format!("c{:03}_", i + 1));
        let r = done(r, res, &mut rep);
        rep.pulls.push(r);
    }
    Ok(rep)
}

/// A single manual pull: `reelfs extract ARCHIVE BRANCH/PATH --in TC --out-tc TC`.
pub fn extract_one(
    archive: &Archive,
    path: &str,
    in_tc: &str,
    out_tc: &str,
    handles: u32,
    out_dir: &Path,
) -> crate::archive::Result<ExtractReport> {
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
