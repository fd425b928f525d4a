//! HLS and timecode seeking over HTTP (the URL scheme is in the README's
//! "Streaming (HLS)"):
//!
//! - `/BRANCH/PATH/clip.mov.m3u8`: the master playlist over the clip's preview
//!   rungs; `…m3u8?rung=preview-low` a rung's media playlist, whose segments
//!   are byte ranges of `/BRANCH/PATH/.proxy/preview-low/clip.mp4` (served by
//!   the ordinary byte-range route: nothing is cut or re-encoded here);
//! - `…m3u8?in=TC&out=TC`: the same for a range (only the covering segments,
//!   playback starting at the in frame);
//! - `/BRANCH/PATH/clip.mov?tc=TC`: `303 See Other` to the slice that starts at
//!   that frame and runs to the clip's end; with `Accept: application/json`,
//!   the clip's `reelfs info --json` facts plus that frame's index and the byte
//!   range of its video sample in the original (`frame`).
//!
//! With `--token-key`, the URLs a playlist lists (or a redirect names) carry
//! the signature of their own path, valid until the request's link expires.
//! The text comes from `commands::hls` and `media::hls`; this module only
//! names URLs and answers.

use super::body::ResponseBody;
use super::content::PoolAccess;
use super::router::{text, Shared};
use super::url;
use crate::commands::hls::{ladder, Ladder};
use crate::commands::CommandError;
use crate::media::hls::{self as playlist, Variant};
use crate::timecode::Timecode;
use crate::view::{self, Target};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::sync::Arc;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// True when the request is one this module answers (the router asks first).
pub fn wants(path: &str, query: &[(String, String)]) -> bool {
    path.ends_with(".m3u8") || query.iter().any(|(k, _)| k == "tc")
}

/// The answer to an HLS or `?tc=` request; None when the path is something
/// else after all (an archived file really named `x.m3u8`), for the router to
/// serve as usual.
pub async fn route(
    shared: &Arc<Shared>,
    path: &str,
    query: &[(String, String)],
    head: bool,
    link_expires: Option<u64>,
    json: bool,
) -> Option<Response<ResponseBody>> {
    let (s, path, query) = (shared.clone(), path.to_string(), query.to_vec());
    let answered = tokio::task::spawn_blocking(move || answer(&s, &path, &query, link_expires, json)).await;
    let mut r = match answered {
        Ok(Some(Ok(r))) => r,
        Ok(Some(Err((status, msg)))) => return Some(text(status, &msg)),
        Ok(None) => return None,
        Err(e) => return Some(text(StatusCode::INTERNAL_SERVER_ERROR, &format!("internal error: {e}"))),
    };
    if head {
        *r.body_mut() = super::body::empty();
    }
    Some(r)
}

type Answer = Result<Response<ResponseBody>, (StatusCode, String)>;

fn answer(s: &Shared, path: &str, query: &[(String, String)], expires: Option<u64>, json: bool) -> Option<Answer> {
    let a = PoolAccess(&s.pool);
    let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let is_file = |p: &str| matches!(view::resolve(&a, p).map(|r| r.target), Ok(Target::File { .. }));
    if let Some(clip) = path.strip_suffix(".m3u8") {
        if is_file(path) || !is_file(clip) {
            return None;
        }
        return Some(playlist_answer(s, clip, param("rung"), (param("in"), param("out")), expires));
    }
    let tc = param("tc")?;
    if !is_file(path) {
        return None;
    }
    Some(if json { frame_facts(s, path, tc) } else { seek(s, path, tc, expires) })
}

/// A URL of `path` for the playlist or redirect: percent-encoded and, on a
/// signed link, signed for that path until the link expires.
fn url_of(s: &Shared, path: &str, query: &str, expires: Option<u64>) -> String {
    let mut q: Vec<String> = Vec::new();
    if !query.is_empty() {
        q.push(query.to_string());
    }
    if let (Some(k), Some(e)) = (&s.signer, expires) {
        q.push(k.query(path, e));
    }
    let base = url::encode_path(path);
    if q.is_empty() {
        base
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

fn load_ladder(s: &Shared, clip: &str) -> Result<Ladder, (StatusCode, String)> {
    let got = s.pool.with(|a| Ok(ladder(a, &s.root, clip)));
    match got {
        Ok(Ok(l)) => Ok(l),
        // No preview: a 404 whose body says which command renders them.
        Ok(Err(CommandError::Invalid(msg))) if msg.contains("reelfs proxy") => Err((StatusCode::NOT_FOUND, msg)),
        Ok(Err(e)) => Err((StatusCode::CONFLICT, e.to_string())),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

fn playlist_answer(s: &Shared, clip: &str, rung: Option<&str>, (i, o): (Option<&str>, Option<&str>), expires: Option<u64>) -> Answer {
    let ladder = load_ladder(s, clip)?;
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let range = match (i, o) {
        (None, None) => None,
        (Some(i), Some(o)) => Some(ladder.frame_range(i, o).map_err(|e| bad(e.to_string()))?),
        _ => {
            return Err(bad(format!(
                "/{clip}.m3u8: give both in= and out= (timecodes, out exclusive), e.g. ?in=01:00:10:00&out=01:00:20:00"
            )))
        }
    };
    // The range as the URLs carry it: normalised labels, never the request's text.
    let range_query = match (range, &ladder.facts) {
        (Some(r), Some(f)) => {
            let (_, start, _) = crate::media::slice::timing(clip, f).map_err(|e| bad(e.to_string()))?;
            let label = |n: u64| start.checked_add(n as i64).map(|t| t.to_string_with_sep(':')).unwrap_or_default();
            // `;` (drop-frame) is a query separator to some clients: encoded.
            format!("in={}&out={}", label(r.first), label(r.end)).replace(';', "%3B")
        }
        _ => String::new(),
    };
    let playlist_path = format!("{clip}.m3u8");
    let text = match rung {
        None => {
            let uris: Vec<String> = ladder
                .rungs
                .iter()
                .map(|r| {
                    let q =
                        if range_query.is_empty() { format!("rung={}", r.profile) } else { format!("rung={}&{range_query}", r.profile) };
                    url_of(s, &playlist_path, &q, expires)
                })
                .collect();
            let variants: Vec<Variant> = ladder.rungs.iter().zip(uris).map(|(r, uri)| Variant { uri, index: &r.index }).collect();
            playlist::master(&variants)
        }
        Some(name) => {
            let r = ladder.rungs.iter().find(|r| r.profile == name).ok_or_else(|| {
                let have: Vec<&str> = ladder.rungs.iter().map(|r| r.profile.as_str()).collect();
                (
                    StatusCode::NOT_FOUND,
                    format!("/{clip}: no {name} rung (rendered: {}); `reelfs proxy --profiles {name}` renders it", have.join(", ")),
                )
            })?;
            let proxy = proxy_path(s, clip, &ladder, &r.profile, &r.blob)?;
            playlist::media(&r.index, &url_of(s, &proxy, "", expires), range).map_err(|e| bad(e.to_string()))?
        }
    };
    Ok(bytes(StatusCode::OK, PLAYLIST_TYPE, text))
}

/// The mount path of a rung's file, checked to be that very proxy (two clips
/// with one stem in a folder share `.proxy` names: the first by name wins).
fn proxy_path(s: &Shared, clip: &str, ladder: &Ladder, profile: &str, blob: &crate::archive::Hash) -> Result<String, (StatusCode, String)> {
    let dir = clip.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let name = crate::archive::proxies::proxy_file_name(&ladder.entry.name, "mp4");
    let p = format!("{dir}/.proxy/{profile}/{name}");
    match view::resolve(&PoolAccess(&s.pool), &p).map(|r| r.target) {
        Ok(Target::Proxy(t)) if &t.rec.blob == blob => Ok(p),
        _ => Err((
            StatusCode::CONFLICT,
            format!("/{clip}: its {profile} proxy is not reachable as /{p} (another clip in the folder has the same name stem)"),
        )),
    }
}

/// The frame `?tc=TC` names on a clip.
struct Seek {
    /// The frame's timecode, and the clip's end (exclusive).
    at: Timecode,
    end: Timecode,
    /// Its index from the first frame the clip shows.
    index: u64,
    /// The clip's content hash.
    hash: crate::archive::Hash,
}

fn frame_at(s: &Shared, path: &str, tc: &str) -> Result<Seek, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let (facts, hash) = s
        .pool
        .with(|a| {
            let r = a.resolve(path)?;
            let f = crate::media::facts::stored(a, &r.entry.hash)?;
            Ok((
                match f {
                    Some((Some(f), _)) => Some(crate::media::facts::in_force(a, r.commit.as_ref(), &r.path, &r.entry.hash, &f)),
                    _ => None,
                },
                r.entry.hash,
            ))
        })
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let facts = facts.ok_or_else(|| bad(format!("/{path} is not probed media: it has no timecode to seek by")))?;
    let (rate, start, frames) = crate::media::slice::timing(path, &facts).map_err(|e| bad(e.to_string()))?;
    let at = Timecode::parse_for_media(tc.trim(), rate).map_err(|e| bad(format!("tc={tc}: {e}")))?;
    let end = start.checked_add(frames as i64).ok_or_else(|| bad(format!("/{path}: its length overflows the timecode")))?;
    let k = at.frames_since(&start).map_err(|e| bad(e.to_string()))?;
    if k < 0 || k as u64 >= frames {
        return Err(bad(format!(
            "tc={tc} lies outside /{path}, which runs {} to {} (out exclusive)",
            start.to_string_with_sep(':'),
            end.to_string_with_sep(':')
        )));
    }
    Ok(Seek { at, end, index: k as u64, hash })
}

/// `?tc=TC`: 303 to the slice from that frame to the clip's end.
fn seek(s: &Shared, path: &str, tc: &str, expires: Option<u64>) -> Answer {
    let Seek { at, end, .. } = frame_at(s, path, tc)?;
    let slice = format!("{path}@{}-{}", at.to_string_with_sep(':'), end.to_string_with_sep(':'));
    let mut r = bytes(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", format!("/{slice}\n"));
    if let Ok(v) = HeaderValue::from_str(&url_of(s, &slice, "", expires)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `?tc=TC` with `Accept: application/json`: the clip's `reelfs info --json`
/// facts plus `frame`: its timecode, index, and the byte range of its video
/// sample in the original, so a player that seeks by byte lands on it. Only a
/// QuickTime/MP4 clip has sample tables to say that; for others `byte_range`
/// is null and `byte_range_error` says why.
fn frame_facts(s: &Shared, path: &str, tc: &str) -> Answer {
    let fail = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
    let Seek { at, index, hash, .. } = frame_at(s, path, tc)?;
    let info = crate::commands::info::info(&s.root, path).map_err(|e| fail(e.to_string()))?;
    let mut v = serde_json::to_value(info).map_err(|e| fail(e.to_string()))?;
    let reader = s.pool.with(|a| a.blob_reader(&hash)).map_err(|e| fail(e.to_string()))?;
    let src = crate::archive::read::Prefetched { prefetch: s.prefetch.clone(), reader: Arc::new(reader) };
    let (range, why) = match crate::media::qt::frame_sample(&src, index) {
        Ok((offset, length)) => (serde_json::json!({ "offset": offset, "length": length }), None),
        Err(e) => (serde_json::Value::Null, Some(e.to_string())),
    };
    v["frame"] = serde_json::json!({
        "tc": at.to_string_with_sep(':'),
        "index": index,
        "byte_range": range,
        "byte_range_error": why,
    });
    Ok(bytes(StatusCode::OK, "application/json", serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"))
}

fn bytes(status: StatusCode, ctype: &'static str, body: String) -> Response<ResponseBody> {
    let len = body.len() as u64;
    let mut r = Response::new(super::body::full(body.into_bytes()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}
