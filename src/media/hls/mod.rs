//! HTTP Live Streaming over the preview rungs (`preview-low`, `preview`,
//! `preview-high`, and `preview-low-vp9` for browsers without H.264): each rung is one fragmented MP4 whose fragments start at
//! the same frames (a fixed 2 s GOP), so each fragment is an HLS segment,
//! addressed by byte range, and a player may switch rungs at any segment.
//!
//! `fragments` reads a rung's fragment index from its boxes; `playlist`
//! writes the master, media and range playlists. Both are pure: bytes in
//! through `ReadAt`, text out; the CLI (`reelfs hls`) and the HTTP server
//! decide where the bytes come from and what the URIs are.

pub mod fragments;
pub mod playlist;

pub use fragments::{index, Fragment, FragmentIndex};
pub use playlist::{bandwidth, master, media, FrameRange, Variant};

use crate::media::qt::QtError;

#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    #[error("{0}")]
    Box(#[from] QtError),
    #[error("reading the proxy: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a fragmented MP4 (render its previews again with `reelfs proxy`): {0}")]
    NotFragmented(String),
    #[error("damaged fragmented MP4: {0}")]
    Damaged(String),
    #[error("it has no video track")]
    NoVideo,
    #[error("not playable over HLS: {0}")]
    Unsupported(String),
    #[error("frames {first}..{end} are not inside the clip's {frames} frames (or the range is empty)")]
    Range { first: u64, end: u64, frames: u64 },
}

/// The rungs an HLS ladder is made of, by profile name, lowest first; the
/// VP9 twin of the low rung (rendered only when asked for) comes last so the
/// H.264 rungs keep their places in `reelfs hls --json`. The master lists
/// every rung with its CODECS: a player offers only those its browser's
/// MediaSource can decode (hls.js filters by `isTypeSupported`, then keeps
/// to one codec set while it adapts).
pub const LADDER: [&str; 4] = ["preview-low", "preview", "preview-high", "preview-low-vp9"];

#[cfg(test)]
mod tests;
