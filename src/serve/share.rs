//! `reelfs share ARCHIVE BRANCH/PATH`: a signed link to one file or folder, for
//! a server started with the same `--token-key`.

use crate::archive::Archive;
use crate::commands::{CommandError, Result};
use crate::serve::sign::Signer;
use crate::serve::url::encode_path;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ShareRequest<'a> {
    pub path: &'a str,
    pub key_file: &'a Path,
    /// Seconds the link stays valid.
    pub expires_in: u64,
    /// Where the server is reached, e.g. `https://review.example.com`.
    pub base_url: &'a str,
    /// Now, in seconds since the epoch (the caller's clock).
    pub now: u64,
}

#[derive(Debug, Serialize)]
pub struct Share {
    pub url: String,
    pub path: String,
    /// Seconds since the epoch after which the link is refused.
    pub expires: u64,
    /// What the path is: "file", "slice", "proxy", "folder", "playlist" (a clip's `.m3u8`).
    pub kind: &'static str,
}

/// A signed link to `req.path`, after checking the path names something (so
/// a typo is caught here, not by the person the link is sent to).
pub fn share(archive: &Path, req: &ShareRequest) -> Result<Share> {
    let signer = Signer::from_file(req.key_file).map_err(|e| CommandError::invalid(e.to_string()))?;
    let a = Archive::open(archive)?;
    let wanted = req.path.trim_end_matches('/');
    let (path, kind) = match crate::view::resolve(&a, wanted) {
        Ok(r) => (r.path, r.target.kind_word()),
        // `clip.mov.m3u8`: the clip's HLS master playlist (src/serve/hls.rs), a
        // name the server answers but the resolver does not store.
        Err(e) => match wanted.strip_suffix(".m3u8").map(|clip| crate::view::resolve(&a, clip)) {
            Some(Ok(c)) if matches!(c.target, crate::view::Target::File { .. }) => (format!("{}.m3u8", c.path), "playlist"),
            _ => return Err(CommandError::invalid(e.to_string())),
        },
    };
    let expires = req.now.checked_add(req.expires_in).ok_or_else(|| CommandError::invalid("--expires is too far in the future"))?;
    let base = req.base_url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(CommandError::invalid(format!("--base-url '{base}' must start with http:// or https:// (e.g. http://127.0.0.1:8080)")));
    }
    Ok(Share { url: format!("{base}{}?{}", encode_path(&path), signer.query(&path, expires)), kind, path, expires })
}
