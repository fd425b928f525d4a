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

/// A body fed by a producer task through a bounded channel.
pub struct Streamed {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
    remaining: u64,
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
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
pub fn stream(entity: Arc<Entity>, prefetch: Arc<Prefetcher<ChunkStore>>, parts: Vec<Part>, total: u64) -> ResponseBody {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(produce(entity, prefetch, parts, tx));
    Streamed { rx, remaining: total }.boxed()
}

async fn produce(entity: Arc<Entity>, prefetch: Arc<Prefetcher<ChunkStore>>, parts: Vec<Part>, tx: mpsc::Sender<Result<Bytes, BoxError>>) {
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
        let started = std::time::Instant::now();
        let mut reader: Option<Arc<EntityReader>> = None;
        let mut pos = r.start;
        let mut first = true;
        while pos < r.end {
            let (rd, e, p) = (reader.clone(), entity.clone(), prefetch.clone());
            let (at, end) = (pos, r.end);
            // The reader is made in the first piece's blocking task: one hop to
            // the blocking pool before the first byte, not two (under load each
            // hop waits for a thread to be scheduled).
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
            if first {
                log::debug!(target: "reelfs::serve::timing", "{}: first piece read in {:?}", entity.path, started.elapsed());
            }
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
