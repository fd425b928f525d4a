//! reelfs: a film-production archive that mounts as a filesystem.
//!
//! `archive` stores and names bytes; `media` knows what the bytes are;
//! `timecode` does SMPTE arithmetic; `fs` presents it all through FUSE.

pub mod archive;
pub mod commands;
pub mod fs;
pub mod media;
pub mod timecode;
