//! Response bodies streamed with back-pressure.
//!
//! A producer task reads a batch of pieces at a time (on the blocking pool)
//! and sends them down a channel of `QUEUE` pieces; hyper takes pieces as the
//! socket drains. Pieces the read-ahead holds are lent from its chunks, not
//! copied (see `EntityReader::read_pieces`). So a client reading at 64 KiB/s
//! holds at most `QUEUE` pieces and one batch of the server's memory (lent
//! pieces keep their chunk alive; plus the socket buffers),
//! and no thread waits on it: the producer is an async task parked on the
//! channel. A client that goes away drops the body, the channel closes, and
//! the producer stops at its next send: its reader, read-ahead and buffers
//! are freed at once.
//!
//! A read error (a damaged chunk) is sent as an error frame: hyper then cuts
//! the connection, so the client sees a short body, never wrong bytes.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

use super::content::{Entity, EntityReader};
use super::range::ByteRange;
use crate::archive::read::ChunkStore;
use crate::archive::readahead::Prefetcher;

/// Bytes read per blocking read (and per frame sent).
pub const PIECE: usize = 512 << 10;
/// Bytes of a response's first piece: one outboard block, the most a read
/// verifies before its first byte can go (a whole `PIECE` could touch three
/// blocks, read and hashed before the client sees a byte).
pub const FIRST_PIECE: usize = crate::archive::outboard::BLOCK_LEN as usize;
/// Pieces a response may have read but not yet sent.
pub const QUEUE: usize = 4;
/// Bytes one trip to the blocking pool may produce when they are lent from
/// cached chunks (`EntityReader::read_pieces`): a queue's worth, so a fast
/// client's body costs a hop per 2 MiB, and a slow client holds at most the
/// queue plus one batch of pieces.
pub const BATCH: usize = QUEUE * PIECE;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

pub fn empty() -> ResponseBody {
    Empty::<Bytes>::new().map_err(|e| match e {}).boxed()
}

pub fn full(b: impl Into<Bytes>) -> ResponseBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// A body fed by a producer task through a bounded channel, after the
/// frames that were ready when the response was made.
pub struct Streamed {
    ready: VecDeque<Result<Bytes, BoxError>>,
    /// None: everything is in `ready`.
    rx: Option<mpsc::Receiver<Result<Bytes, BoxError>>>,
    remaining: u64,
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let next = match self.ready.pop_front() {
            Some(r) => Poll::Ready(Some(r)),
            None => match self.rx.as_mut() {
                Some(rx) => rx.poll_recv(cx),
                None => Poll::Ready(None),
            },
        };
        match next {
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A part of a body: bytes made here (multipart headers) or a range of the entity.
pub enum Part {
    Text(Bytes),
    Range(ByteRange),
}

/// Stream `parts` of `entity`; `total` is their length (the Content-Length).
///
/// Blocking: the parts up to the first range's first piece are made here,
/// the piece read (`FIRST_PIECE`, one verified block), so the response leaves
/// with its first bytes (hyper writes them with the headers) and the producer
/// task reads the rest. A first piece that cannot be read (damage) is the
/// body's first frame as an error: the response is cut, never wrong bytes.
pub fn stream(entity: Arc<Entity>, prefetch: Arc<Prefetcher<ChunkStore>>, parts: Vec<Part>, total: u64) -> ResponseBody {
    let mut ready = VecDeque::new();
    let mut parts = parts.into_iter();
    let mut rest = Vec::new();
    let mut reader = None;
    for part in parts.by_ref() {
        let r = match part {
            Part::Text(b) => {
                ready.push_back(Ok(b));
                continue;
            }
            Part::Range(r) => r,
        };
        let started = std::time::Instant::now();
        let rd = Arc::new(EntityReader::new(&entity, &prefetch, r.start, r.end));
        let mut buf = vec![0u8; ((r.end - r.start) as usize).min(FIRST_PIECE)];
        let read = rd.read(r.start, &mut buf, true);
        log::debug!(target: "reelfs::serve::timing", "{}: first piece read in {:?}", entity.path, started.elapsed());
        // A long file's extent list loads now, not beside this read.
        entity.first_bytes_read();
        match read {
            Ok(n) if n > 0 => {
                buf.truncate(n);
                ready.push_back(Ok(Bytes::from(buf)));
                if r.start + (n as u64) < r.end {
                    rest.push(Part::Range(ByteRange { start: r.start + n as u64, end: r.end }));
                    reader = Some(rd);
                }
            }
            Ok(_) => {
                let msg = format!("source ended early at offset {}", r.start);
                log::error!("serve: {}: {msg}; response cut", entity.path);
                ready.push_back(Err(msg.into()));
                return Streamed { ready, rx: None, remaining: total }.boxed();
            }
            Err(msg) => {
                log::error!("serve: {}: read at {} failed: {msg}; response cut", entity.path, r.start);
                ready.push_back(Err(msg.into()));
                return Streamed { ready, rx: None, remaining: total }.boxed();
            }
        }
        break;
    }
    rest.extend(parts);
    if rest.is_empty() {
        return Streamed { ready, rx: None, remaining: total }.boxed();
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(produce(entity, prefetch, rest, reader, tx));
    Streamed { ready, rx: Some(rx), remaining: total }.boxed()
}

/// The rest of a body after `stream`'s first piece: `carried` is the reader
/// of the range that piece began, which `parts` goes on with (its read-ahead
/// starts at this next read).
async fn produce(
    entity: Arc<Entity>,
    prefetch: Arc<Prefetcher<ChunkStore>>,
    parts: Vec<Part>,
    mut carried: Option<Arc<EntityReader>>,
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
) {
    for part in parts {
        let r = match part {
            Part::Text(b) => {
                if tx.send(Ok(b)).await.is_err() {
                    return;
                }
                continue;
            }
            Part::Range(r) => r,
        };
        let mut reader: Option<Arc<EntityReader>> = carried.take();
        let mut pos = r.start;
        let mut first = reader.is_none();
        while pos < r.end {
            let (rd, e, p) = (reader.clone(), entity.clone(), prefetch.clone());
            let (at, end) = (pos, r.end);
            // A later range of a multipart body: its reader is made in its
            // first piece's blocking task (one hop, not two).
            let read = tokio::task::spawn_blocking(move || {
                let rd = rd.unwrap_or_else(|| Arc::new(EntityReader::new(&e, &p, r.start, r.end)));
                let pieces = if first {
                    let mut buf = vec![0u8; ((end - at) as usize).min(FIRST_PIECE)];
                    rd.read(at, &mut buf, true).map(|n| {
                        buf.truncate(n);
                        vec![Bytes::from(buf)]
                    })
                } else {
                    rd.read_pieces(at, end, PIECE, BATCH)
                };
                pieces.map(|p| (rd, p))
            })
            .await;
            let pieces = match read {
                Ok(Ok((rd, pieces))) => {
                    reader = Some(rd);
                    pieces
                }
                Ok(Err(msg)) => {
                    log::error!("serve: {}: read at {pos} failed: {msg}; response cut", entity.path);
                    let _ = tx.send(Err(msg.into())).await;
                    return;
                }
                Err(e) => {
                    log::error!("serve: {}: read at {pos} failed: {e}; response cut", entity.path);
                    let _ = tx.send(Err(e.to_string().into())).await;
                    return;
                }
            };
            if pieces.is_empty() {
                let msg = format!("source ended early at offset {pos}");
                log::error!("serve: {}: {msg}; response cut", entity.path);
                let _ = tx.send(Err(msg.into())).await;
                return;
            }
            first = false;
            for piece in pieces {
                pos += piece.len() as u64;
                // The client went away: stop; dropping `reader` frees its read-ahead.
                if tx.send(Ok(piece)).await.is_err() {
                    return;
                }
            }
        }
    }
}
