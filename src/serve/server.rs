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

use super::router::{self, Shared};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Limits of the connection layer.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// Accept until `shutdown` resolves.
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, limits: Limits, shutdown: impl std::future::Future<Output = ()>) {
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
                let (shared, idle) = (shared.clone(), limits.idle_timeout);
                tokio::spawn(async move {
                    serve_connection(stream, shared, idle).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(refuse(stream, limits.max_connections));
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, idle: Duration) {
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let svc = service_fn(move |req| router::handle(shared.clone(), req));
    let conn = http1::Builder::new().keep_alive(true).max_buf_size(64 << 10).serve_connection(io, svc);
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
