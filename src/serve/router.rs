//! One request in, one response out. There is no route table: every URL is a
//! mount path, resolved by `view` exactly as the mount resolves it, and what
//! it names (folder, file, slice, proxy, old version) decides the answer.

use super::body::{self, Part, ResponseBody};
use super::conditional::{self, Conditions, Decision, Validators};
use super::content::{Entity, PoolAccess};
use super::range::{self, RangeRequest};
use super::sign::Signer;
use super::url::{self, UrlError};
use crate::archive::read::ChunkStore;
use crate::archive::read_pool::ReadPool;
use crate::archive::readahead::Prefetcher;
use crate::view::{self, Target, ViewError};
use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

/// What every request handler shares.
pub struct Shared {
    /// The archive's folder (for `info`).
    pub root: PathBuf,
    pub pool: ReadPool,
    /// The one chunk cache and read-ahead of all responses (`--cache-size`).
    pub prefetch: Arc<Prefetcher<ChunkStore>>,
    /// Set: only signed URLs are served.
    pub signer: Option<Signer>,
    /// Files already resolved, while the catalog is unchanged.
    pub cache: super::cache::EntityCache,
}

/// Headers a browser player on another origin needs to read our responses.
const EXPOSED: &str = "Accept-Ranges, Content-Length, Content-Range, Content-Type, ETag, Last-Modified";

pub async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Result<Response<ResponseBody>, Infallible> {
    let mut resp = route(&shared, &req).await;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}

async fn route<B>(shared: &Arc<Shared>, req: &Request<B>) -> Response<ResponseBody> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS => return preflight(),
        _ => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{} is not served; this server answers GET, HEAD and OPTIONS (it is read-only)", req.method()),
            );
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return r;
        }
    };
    let path = match url::decode_path(req.uri().path()) {
        Ok(p) => p,
        Err(e @ UrlError::TooLong(_)) => return text(StatusCode::URI_TOO_LONG, &e.to_string()),
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let query = url::query_pairs(req.uri().query());
    let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    // Signed links: the link's expiry is carried into the URLs a listing shows.
    let mut link_expires = None;
    if let Some(s) = &shared.signer {
        if let Err(e) = s.verify(&path, param("expires"), param("sig"), conditional::now_secs()) {
            return text(StatusCode::FORBIDDEN, &e.to_string());
        }
        link_expires = param("expires").and_then(|e| e.parse::<u64>().ok());
    }

    // ---- HLS and timecode seeking (src/serve/hls.rs, the hls engineer's) -----------------
    // `.m3u8` paths and `?tc=` queries are answered here, before the path is
    // resolved as a file (an archived file really named `x.m3u8` falls through).
    if super::hls::wants(&path, &query) {
        if let Some(r) = super::hls::route(shared, &path, &query, head, link_expires, accepts_json(req.headers())).await {
            return r;
        }
    }
    // ---------------------------------------------------------------------------------------

    let wants_json = accepts_json(req.headers());
    let started = std::time::Instant::now();
    // Resolve, decide and read the first piece in one blocking step, on this
    // thread (`blocking`): the response leaves with its first bytes, and no
    // hop to the blocking pool and back stands before them.
    let step = {
        let (s, p, h) = (shared.clone(), path.clone(), req.headers().clone());
        blocking(move || {
            let (hit, seen) = s.cache.get(&p);
            let (resolved, entity) = match hit {
                Some((r, e)) => (r, Ok(Some(e))),
                None => {
                    let a = PoolAccess(&s.pool);
                    let r = match view::resolve(&a, &p) {
                        Ok(r) => r,
                        Err(e) => return Step::Answer(view_error(&e)),
                    };
                    let e = Entity::of(&a, &r.path, &r.target).map(|e| e.map(Arc::new));
                    if let Ok(Some(e)) = &e {
                        s.cache.put(&p, seen, &r, e);
                    }
                    (r, e)
                }
            };
            // `RUST_LOG=reelfs::serve::timing=debug`: where a request's time to first
            // byte goes (this, then the first piece in `body`).
            log::debug!(target: "reelfs::serve::timing", "{p}: resolved and opened in {:?}", started.elapsed());
            match entity {
                Ok(Some(_)) if wants_json => Step::Facts(resolved),
                Ok(Some(e)) => Step::Answer(serve_entity(&s, &h, e, head)),
                Ok(None) => Step::Folder(resolved),
                Err(e) => Step::Answer(text(StatusCode::CONFLICT, &e.to_string())),
            }
        })
        .await
    };
    match step {
        Ok(Step::Answer(r)) => r,
        Ok(Step::Folder(resolved)) => folder(shared, resolved, wants_json, head, link_expires).await,
        Ok(Step::Facts(resolved)) => facts(shared, resolved, head).await,
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("internal error: {e}")),
    }
}

/// What the blocking part of a request found.
enum Step {
    /// The response, made (a file's with its first piece read).
    Answer(Response<ResponseBody>),
    /// A folder, to list.
    Folder(view::Resolved),
    /// A clip whose facts were asked for (`Accept: application/json`).
    Facts(view::Resolved),
}

/// Run a request's blocking archive work (catalog reads, the first piece)
/// in place on this runtime thread (`block_in_place`: the thread's other tasks
/// move to another thread meanwhile) rather than on the blocking pool, whose
/// hop there and back waits twice for a core under load: `scripts/bench serve`
/// found a cold time to first byte of 1.8-2.2x nginx's, which answers on the
/// thread that accepted. On a current-thread runtime (which cannot lend its
/// thread) the pool is used.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, tokio::task::JoinError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        Ok(tokio::task::block_in_place(f))
    } else {
        tokio::task::spawn_blocking(f).await
    }
}

/// The bytes of a file, slice or proxy: validators, conditions, ranges.
/// Blocking: reads the body's first piece (`body::stream`).
fn serve_entity(shared: &Arc<Shared>, h: &HeaderMap, entity: Arc<Entity>, head: bool) -> Response<ResponseBody> {
    let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    let conds = Conditions {
        if_match: get(header::IF_MATCH),
        if_none_match: get(header::IF_NONE_MATCH),
        if_modified_since: get(header::IF_MODIFIED_SINCE),
        if_range: get(header::IF_RANGE),
    };
    let validators = Validators { etag: Some(&entity.etag), last_modified_secs: Some(entity.mtime_secs) };
    let decision = conditional::decide(&conds, &validators);
    let base = |status: StatusCode| {
        let mut r = Response::new(body::empty());
        *r.status_mut() = status;
        let hm = r.headers_mut();
        hm.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Ok(v) = HeaderValue::from_str(&entity.etag) {
            hm.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&conditional::http_date(entity.mtime_secs)) {
            hm.insert(header::LAST_MODIFIED, v);
        }
        r
    };
    let honour_range = match decision {
        Decision::PreconditionFailed => {
            let mut r = text(
                StatusCode::PRECONDITION_FAILED,
                &format!("{}: If-Match names another version (this one is {})", entity.path, entity.etag),
            );
            r.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return r;
        }
        Decision::NotModified => return base(StatusCode::NOT_MODIFIED),
        Decision::Serve { honour_range } => honour_range,
    };
    // A Range header that does not parse is an error even when If-Range would
    // have discarded it: the client's bug shows either way.
    let rq = range::parse(get(header::RANGE), entity.size);
    let rq = match rq {
        RangeRequest::Ranges(_) if !honour_range => RangeRequest::Whole,
        other => other,
    };
    let size = entity.size;
    let (mut r, parts, total) = match rq {
        RangeRequest::Whole => {
            let parts = if size > 0 { vec![Part::Range(range::ByteRange { start: 0, end: size })] } else { Vec::new() };
            (base(StatusCode::OK), parts, size)
        }
        RangeRequest::Unsatisfiable(msg) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, &format!("{}: {msg}", entity.path));
            r.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        RangeRequest::Ranges(rs) if rs.len() == 1 => {
            let mut r = base(StatusCode::PARTIAL_CONTENT);
            if let Ok(v) = HeaderValue::from_str(&rs[0].content_range(size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            (r, vec![Part::Range(rs[0])], rs[0].len())
        }
        RangeRequest::Ranges(rs) => {
            // The boundary only has to be absent from the parts' headers (RFC 2046);
            // the ETag's hex never contains these dashes and letters.
            let boundary = format!("reelfs-byteranges-{}", entity.etag.trim_matches('"').chars().rev().take(16).collect::<String>());
            let mut parts = Vec::new();
            let mut total = 0u64;
            for r in &rs {
                let head = format!(
                    "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Range: {}\r\n\r\n",
                    entity.content_type,
                    r.content_range(size)
                );
                total += head.len() as u64 + r.len();
                parts.push(Part::Text(Bytes::from(head)));
                parts.push(Part::Range(*r));
            }
            let tail = format!("\r\n--{boundary}--\r\n");
            total += tail.len() as u64;
            parts.push(Part::Text(Bytes::from(tail)));
            let mut r = base(StatusCode::PARTIAL_CONTENT);
            if let Ok(v) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            (r, parts, total)
        }
    };
    let hm = r.headers_mut();
    if !hm.contains_key(header::CONTENT_TYPE) {
        hm.insert(header::CONTENT_TYPE, HeaderValue::from_static(entity.content_type));
    }
    hm.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    if !head && total > 0 {
        *r.body_mut() = body::stream(entity, shared.prefetch.clone(), parts, total);
    }
    r
}

/// A folder: JSON or HTML listing.
async fn folder(shared: &Arc<Shared>, resolved: view::Resolved, json: bool, head: bool, expires: Option<u64>) -> Response<ResponseBody> {
    let s = shared.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let url_of = |p: &str| match (&s.signer, expires) {
            (Some(k), Some(e)) => format!("{}?{}", url::encode_path(p), k.query(p, e)),
            _ => url::encode_path(p),
        };
        super::listing::list(&PoolAccess(&s.pool), &resolved.path, &resolved.target, &url_of)
    })
    .await;
    let l = match listed {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => return view_error(&e),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("internal error: {e}")),
    };
    let (ctype, body) = if json {
        ("application/json", serde_json::to_string_pretty(&l).unwrap_or_default() + "\n")
    } else {
        ("text/html; charset=utf-8", super::listing::html(&l))
    };
    bytes_response(StatusCode::OK, ctype, body.into_bytes(), head)
}

/// `Accept: application/json` on a clip: its `reelfs info --json` facts (for a
/// slice, the slice's plan and its clip's facts).
async fn facts(shared: &Arc<Shared>, resolved: view::Resolved, head: bool) -> Response<ResponseBody> {
    let s = shared.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        let info = |p: &str| {
            crate::commands::info::info(&s.root, p)
                .map_err(|e| e.to_string())
                .and_then(|i| serde_json::to_value(i).map_err(|e| e.to_string()))
        };
        Ok(match &resolved.target {
            Target::Slice(sl) => serde_json::json!({
                "path": resolved.path,
                "kind": "slice",
                "slice": &*sl.plan,
                "source": info(&sl.source_path)?,
            }),
            Target::Proxy(p) => serde_json::json!({
                "path": resolved.path,
                "kind": "proxy",
                "profile": p.profile,
                "size": p.size,
                "content_hash": p.rec.blob.to_hex(),
                "source": p.source.name,
            }),
            _ => info(&resolved.path)?,
        })
    })
    .await;
    match made {
        Ok(Ok(v)) => bytes_response(
            StatusCode::OK,
            "application/json",
            (serde_json::to_string_pretty(&v).unwrap_or_default() + "\n").into_bytes(),
            head,
        ),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("internal error: {e}")),
    }
}

/// True when the client asks for JSON (a MAM system), not for whatever comes
/// (`*/*`, what ffmpeg and curl send) or HTML (a browser).
fn accepts_json(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| v.split(',').any(|t| t.trim().starts_with("application/json")))
}

fn preflight() -> Response<ResponseBody> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Range, If-Range, If-None-Match, If-Match, If-Modified-Since, Accept"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    r
}

/// The answer to a path the resolver refused or could not find.
fn view_error(e: &ViewError) -> Response<ResponseBody> {
    let status = match e {
        ViewError::Path(_) => StatusCode::BAD_REQUEST,
        e if e.is_not_found() => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        log::error!("serve: {e}");
    }
    text(status, &e.to_string())
}

fn bytes_response(status: StatusCode, ctype: &'static str, body: Vec<u8>, head: bool) -> Response<ResponseBody> {
    let len = body.len() as u64;
    let mut r = Response::new(if head { body::empty() } else { body::full(body) });
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// A plain-text answer (errors say what to do next).
pub fn text(status: StatusCode, msg: &str) -> Response<ResponseBody> {
    bytes_response(status, "text/plain; charset=utf-8", format!("{msg}\n").into_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::{handle, Shared};
    use crate::archive::read_pool::ReadPool;
    use crate::archive::readahead::{Prefetcher, ReadAheadConfig};
    use crate::archive::test_support::noise;
    use crate::archive::Archive;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A server's shared state over a new archive holding `main/clip.mov`
    /// (3 MiB of noise: one raw chunk of several outboard blocks); its bytes.
    fn served(dir: &std::path::Path) -> (Arc<Shared>, Vec<u8>) {
        let root = dir.join("a");
        drop(Archive::init(&root).unwrap());
        let bytes = noise(3 << 20, 5);
        {
            let a = Archive::open(&root).unwrap();
            a.stage_write("main", "clip.mov", &[], &[(0, &bytes)], bytes.len() as u64, 0o644, 1, None, &Default::default()).unwrap();
        }
        let mut w = Archive::open_writer(&root).unwrap();
        w.commit_staging("main", "test").unwrap().unwrap();
        drop(w);
        let a = Archive::open(&root).unwrap();
        let shared = Arc::new(Shared {
            root: root.clone(),
            pool: ReadPool::new(&a, 2),
            prefetch: Prefetcher::new(a.store().clone(), ReadAheadConfig::for_cache(64 << 20, 1)),
            signer: None,
            cache: super::super::cache::EntityCache::new(a),
        });
        (shared, bytes)
    }

    /// Descriptors this process holds open on `db` itself (not its -wal/-shm).
    fn open_on(db: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).filter(|t| t == db).count()
    }

    /// Every catalog connection a first request needs is open once the server
    /// is ready (`warm`), the one the outboard lookup of its first verified
    /// block uses included: opening it (the file, its header and schema pages,
    /// cold after a restart) was a part of the first request's time to first
    /// byte. Counted as descriptors on the catalog file opened by the request.
    #[test]
    fn the_first_request_opens_no_catalog_connection_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, bytes) = served(dir.path());
        let db = std::fs::canonicalize(dir.path().join("a").join("catalog.db")).unwrap();
        super::super::warm(&shared);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let before = open_on(&db);
        let first = rt.block_on(async {
            let req = hyper::Request::builder().uri("/main/clip.mov").header("Range", "bytes=0-99").body(()).unwrap();
            let resp = handle(shared.clone(), req).await.unwrap();
            assert_eq!(resp.status(), hyper::StatusCode::PARTIAL_CONTENT);
            resp.into_body().collect().await.unwrap().to_bytes()
        });
        assert_eq!(&first[..], &bytes[..100]);
        assert_eq!(open_on(&db), before, "the first request opened a catalog connection");
    }

    /// A cold request's first body bytes must not wait for a thread of the
    /// blocking pool: under load every hop to one (and back) waits for a core,
    /// which is where `scripts/bench serve` lost its time to first byte against
    /// nginx (resolve in one hop, the first piece in another, each handed back).
    /// Here the pool's only thread is held until the first bytes arrived (or
    /// for a long while, a fallback that only the old code reaches): they must
    /// come while it is still held, and be the file's.
    #[test]
    fn a_response_and_its_first_bytes_wait_for_no_blocking_pool_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, bytes) = served(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).max_blocking_threads(1).enable_all().build().unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = rt.block_on(async {
            let r = released.clone();
            let (started, running) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                let _ = started.send(());
                let _ = held.recv_timeout(Duration::from_secs(20));
                r.store(true, Ordering::SeqCst);
            });
            running.await.unwrap();
            let req = hyper::Request::builder().uri("/main/clip.mov").body(()).unwrap();
            let resp = handle(shared, req).await.unwrap();
            assert_eq!(resp.status(), hyper::StatusCode::OK);
            let frame = resp.into_body().frame().await.unwrap().unwrap().into_data().unwrap();
            let in_time = !released.load(Ordering::SeqCst);
            let _ = release.send(());
            (frame, in_time)
        });
        assert!(first.1, "the first bytes waited for the blocking pool's thread to be free");
        assert!(!first.0.is_empty() && first.0[..] == bytes[..first.0.len()], "wrong first bytes");
    }
}
