//! reelfs: a film-production archive that mounts as a filesystem.
//!
//! `archive` stores and names bytes; `media` knows what the bytes are;
//! `timecode` does SMPTE arithmetic; `fs` presents it all through FUSE.
//!
//! Layers depend one way: `timecode` → nothing; `archive` → `timecode`;
//! `media` → `archive`; `fs` → `media`, `archive`. Cargo features keep the heavy
//! dependencies optional, so `cargo build --no-default-features` builds the
//! archive layer without FFmpeg or libfuse:
//! - a module that needs FFmpeg (or sits on one that does) is gated on `media`;
//! - a module that needs fuser is gated on `fuse` (which turns on `media`).
//!
//! A new layer follows the same rule: gate it on the feature of the heaviest
//! layer it uses, e.g. a resolver over `media` or commands over `media`:
//! `#[cfg(feature = "media")] pub mod view;`.

// Catalog rows and small results are tuples read right where they are used;
// naming each one would add types nobody else uses.
#![allow(clippy::type_complexity)]

pub mod archive;
#[cfg(feature = "media")]
pub mod commands;
#[cfg(feature = "fuse")]
pub mod fs;
#[cfg(feature = "media")]
pub mod media;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tape;
pub mod timecode;
#[cfg(feature = "media")]
pub mod view;
