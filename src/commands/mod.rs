//! One library function per `reelfs` command: typed options in, a typed
//! `Serialize` result out. The binary (src/main.rs) parses flags, calls one of
//! these, and prints the result as text or JSON; the Python bindings will call
//! the same functions. Nothing here prints: long operations report through
//! `archive::progress::Progress`, and what a user should see is in the result.
//!
//! `cat`, `slice` and `extract` are the path resolver's (src/view); `mount`
//! is the one command that reaches into `fs`.

pub mod branch;
pub mod cat;
pub mod check;
pub mod diff;
pub mod error;
pub mod extract;
pub mod gc;
pub mod hls;
pub mod info;
pub mod ingest;
pub mod init;
pub mod log;
pub mod ls;
pub mod merge;
#[cfg(feature = "fuse")]
pub mod mount;
pub mod proxy;
pub mod restore;
pub mod slice;
pub mod stats;
pub mod status;
#[cfg(feature = "s3")]
pub mod store;
pub mod synth;
pub mod tape;
pub mod tape_format;
pub mod tc;

pub use error::{CommandError, Result};
