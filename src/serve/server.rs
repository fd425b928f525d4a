//! Connections: accept, limit, time out, hand each to hyper.
//!
//! - At most `max_connections` are served at once; one more is answered
//!   `503 Service Unavailable` with `Retry-After` and closed, so a flood costs
//!   a few bytes each instead of memory or threads.
//! - A connection on which nothing moved (no byte read or written) for
//!   `idle_timeout` is closed: an idle keep-alive, a client that stopped
//!   reading a body, or one that never finished its request headers.
//! - A client that disconnects ends its connection task, which drops its
//!   response body and so the producer reading for it (see `body`).
//! - With TLS (`tls`), HTTP/2 or HTTP/1.1 as the client's ALPN chose, through
//!   hyper-util's auto builder. A plain HTTP request sent to the TLS port gets
//!   a plain-text 400 saying to use https, as nginx answers it.

use super::body::ResponseBody;
use super::router::{self, Shared};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Limits of the connection layer.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// Accept until `shutdown` resolves.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors (or a connection reset before accept):
                // wait a moment rather than spin, and keep serving.
                log::warn!("serve: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let (shared, idle, tls) = (shared.clone(), limits.idle_timeout, tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(stream, shared, idle).await,
                        Some(tls) => serve_tls(stream, tls, Some(shared), idle, 0).await,
                    }
                    drop(permit);
                });
            }
            Err(_) => match tls.clone() {
                None => {
                    tokio::spawn(refuse(stream, limits.max_connections));
                }
                // Over TLS the 503 must be spoken in the protocol the client
                // negotiated, so the handshake is made and hyper answers it.
                Some(tls) => {
                    tokio::spawn(serve_tls(stream, tls, None, limits.idle_timeout, limits.max_connections));
                }
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, idle: Duration) {
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let svc = service_fn(move |req| router::handle(shared.clone(), req));
    let conn = http1::Builder::new().keep_alive(true).max_buf_size(64 << 10).serve_connection(io, svc);
    until_idle(conn, &activity, idle).await;
}

/// Drive `conn` until it ends or nothing moved on its socket for `idle`.
async fn until_idle<E: std::fmt::Display>(conn: impl std::future::Future<Output = Result<(), E>>, activity: &AtomicU64, idle: Duration) {
    tokio::pin!(conn);
    let tick = (idle / 4).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            res = &mut conn => {
                if let Err(e) = res {
                    log::debug!("serve: connection ended: {e}");
                }
                return;
            }
            _ = tokio::time::sleep(tick) => {
                let quiet = now_ms().saturating_sub(activity.load(Ordering::Relaxed));
                if quiet >= idle.as_millis() as u64 {
                    log::debug!("serve: closing a connection idle for {quiet} ms");
                    return;
                }
            }
        }
    }
}

/// One TLS connection: handshake (bounded by the idle timeout), then HTTP/2
/// or HTTP/1.1 by ALPN. `shared` None: the connection is over the limit and
/// every request on it is answered 503 (`max` says the limit).
async fn serve_tls(stream: TcpStream, tls: TlsAcceptor, shared: Option<Arc<Shared>>, idle: Duration, max: usize) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(idle, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 && !super::tls::looks_like_tls(&first) => return not_tls(stream).await,
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let watched = Watched { inner: stream, activity: activity.clone() };
    let stream = match tokio::time::timeout(idle, tls.accept(watched)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            log::debug!("serve: TLS handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).max_buf_size(64 << 10);
    // ALPN already chose: no need to sniff the preface.
    let builder = if h2 { builder.http2_only() } else { builder.http1_only() };
    let io = TokioIo::new(stream);
    match shared {
        Some(shared) => {
            let svc = service_fn(move |req| router::handle(shared.clone(), req));
            until_idle(builder.serve_connection(io, svc), &activity, idle).await;
        }
        None => {
            let svc = service_fn(move |_req| async move { Ok::<_, std::convert::Infallible>(over_limit(max)) });
            until_idle(builder.serve_connection(io, svc), &activity, idle).await;
        }
    }
}

fn over_limit(max: usize) -> Response<ResponseBody> {
    let mut r = router::text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("the server is serving its limit of {max} connections; retry in a second (or raise --max-connections)"),
    );
    r.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    r.headers_mut().insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, hyper::header::HeaderValue::from_static("*"));
    r
}

/// A plain HTTP request on the TLS port: a plain answer that says what to do,
/// then close (a TLS error would only show the client garbage).
async fn not_tls(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), tokio::io::AsyncReadExt::read(&mut stream, &mut buf)).await;
    let msg = "this port speaks HTTPS (TLS); use an https:// URL\n";
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
        msg.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// One connection too many: a short 503 and close. The request is read (up
/// to a little) first, so the client is not reset before it sees the answer.
async fn refuse(mut stream: TcpStream, max: usize) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), tokio::io::AsyncReadExt::read(&mut stream, &mut buf)).await;
    let msg = format!("the server is serving its limit of {max} connections; retry in a second (or raise --max-connections)\n");
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\n{msg}",
        msg.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A socket that records when a byte last moved.
struct Watched {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn moved(&self, n: usize) {
        if n > 0 {
            self.activity.store(now_ms(), Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.moved(n);
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.moved(*n);
        }
        r
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.moved(*n);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
