//! Folder listings: JSON for MAM systems (`Accept: application/json`), a
//! plain HTML index for people. What a folder holds is what the mount shows:
//! branches at the root, a tree's entries, `.proxy` where a folder has proxies.

use super::content::PoolAccess;
use super::url::encode_path;
use crate::archive::EntryKind;
use crate::view::{self, Access, Target, ViewError};
use serde::Serialize;

/// One entry of a folder.
#[derive(Debug, Serialize)]
pub struct ListEntry {
    pub name: String,
    /// "branch", "folder", "file" or "proxy".
    pub kind: &'static str,
    pub size: Option<u64>,
    /// The content hash (`blake3` hex) of a file; also its ETag.
    pub content_hash: Option<String>,
    /// Probed media facts of a file (null: not media, or not probed).
    pub media: Option<serde_json::Value>,
    /// URLs of its stored proxies.
    pub proxies: Vec<String>,
    /// URL of the entry on this server (signed when the server signs).
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub path: String,
    pub url: String,
    pub entries: Vec<ListEntry>,
}

/// The entries of the folder `target` at mount path `path`; `url_of` makes an
/// entry's URL from its mount path.
pub fn list(a: &PoolAccess, path: &str, target: &Target, url_of: &dyn Fn(&str) -> String) -> Result<Listing, ViewError> {
    let child = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}/{name}") };
    let mut entries = Vec::new();
    match target {
        Target::Root => {
            let mut heads: Vec<_> = a.heads()?.into_iter().collect();
            heads.sort();
            for (name, head) in heads {
                entries.push(ListEntry {
                    url: url_of(&child(&name)),
                    name,
                    kind: "branch",
                    size: None,
                    content_hash: head.map(|h| h.to_hex()),
                    media: None,
                    proxies: Vec::new(),
                });
            }
        }
        Target::Branch { .. } | Target::Commit { .. } | Target::Dir { .. } => {
            let Some(tree) = view::resolve::committed_tree(a, target)? else {
                return Ok(Listing { path: path.to_string(), url: url_of(path), entries });
            };
            if !view::proxy::profiles_in(a, &tree, true)?.is_empty()
                && a.read(|a| a.catalog.tree_lookup(&tree, view::proxy::PROXY_DIR))?.is_none()
            {
                let p = child(view::proxy::PROXY_DIR);
                entries.push(ListEntry {
                    url: url_of(&p),
                    name: view::proxy::PROXY_DIR.into(),
                    kind: "folder",
                    size: None,
                    content_hash: None,
                    media: None,
                    proxies: Vec::new(),
                });
            }
            let rows = a.read(|a| {
                let mut out = Vec::new();
                for e in a.list_dir(&tree)? {
                    let (media, proxies) = if e.kind == EntryKind::File {
                        let media = a.media(&e.hash)?.and_then(|(facts, _)| facts);
                        let proxies = crate::commands::info::proxies_of_file(a, &e)
                            .map_err(|e| crate::archive::ArchiveError::Inconsistent(e.to_string()))?;
                        (media, proxies.into_iter().map(|p| p.name).collect::<Vec<_>>())
                    } else {
                        (None, Vec::new())
                    };
                    out.push((e, media, proxies));
                }
                Ok(out)
            })?;
            for (e, media, proxies) in rows {
                let p = child(&e.name);
                let file = e.kind == EntryKind::File;
                entries.push(ListEntry {
                    url: url_of(&p),
                    kind: if file { "file" } else { "folder" },
                    size: Some(e.size),
                    content_hash: file.then(|| e.hash.to_hex()),
                    media,
                    proxies: proxies.iter().map(|n| url_of(&child(n))).collect(),
                    name: e.name,
                });
            }
        }
        Target::ProxyDir { tree, profile: None } => {
            for p in view::proxy::profiles_in(a, tree, true)? {
                entries.push(ListEntry {
                    url: url_of(&child(&p)),
                    name: p,
                    kind: "folder",
                    size: None,
                    content_hash: None,
                    media: None,
                    proxies: Vec::new(),
                });
            }
        }
        Target::ProxyDir { tree, profile: Some(profile) } => {
            for p in view::proxy::proxies_in(a, tree, profile)? {
                entries.push(ListEntry {
                    url: url_of(&child(&p.name)),
                    name: p.name,
                    kind: "proxy",
                    size: Some(p.size),
                    content_hash: Some(p.rec.blob.to_hex()),
                    media: None,
                    proxies: Vec::new(),
                });
            }
        }
        // `.history` lists like the mount's: a folder per branch, and in it a
        // folder per commit (first-parent, newest first), named by its time.
        Target::History => {
            let mut names: Vec<String> = a.heads()?.into_keys().collect();
            names.sort();
            for name in names {
                entries.push(folder_entry(url_of(&child(&name)), name, None));
            }
        }
        Target::HistoryBranch { branch } => {
            let head = a.heads()?.get(branch).copied().ok_or_else(|| ViewError::NotFound(path.to_string()))?;
            let commits = a.read(|a| a.log(head, usize::MAX))?;
            for c in commits {
                let name = view::history::history_name(c.time_ns, &c.hash);
                entries.push(folder_entry(url_of(&child(&name)), name, Some(c.hash.to_hex())));
            }
        }
        _ => return Err(ViewError::NotFound(format!("{path}: not a folder"))),
    }
    Ok(Listing { path: path.to_string(), url: url_of(path), entries })
}

/// A folder of `.history` (`content_hash`: the commit's id, for a commit).
fn folder_entry(url: String, name: String, commit: Option<String>) -> ListEntry {
    ListEntry { name, kind: "folder", size: None, content_hash: commit, media: None, proxies: Vec::new(), url }
}

/// A plain HTML index of a listing.
pub fn html(l: &Listing) -> String {
    let title = if l.path.is_empty() { "/".to_string() } else { format!("/{}/", l.path) };
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>reelfs {t}</title></head><body>\n<h1>{t}</h1>\n<ul>\n",
        t = escape(&title)
    );
    if !l.path.is_empty() {
        let parent = l.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        s.push_str(&format!("<li><a href=\"{}\">../</a></li>\n", escape(&encode_path(parent))));
    }
    for e in &l.entries {
        let slash = if matches!(e.kind, "folder" | "branch") { "/" } else { "" };
        let size = e.size.filter(|_| slash.is_empty()).map(|n| format!(" ({n} bytes)")).unwrap_or_default();
        s.push_str(&format!("<li><a href=\"{}\">{}{slash}</a>{size}</li>\n", escape(&e.url), escape(&e.name)));
    }
    s.push_str("</ul>\n</body></html>\n");
    s
}

/// Text safe inside HTML content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_html() {
        let l = Listing {
            path: "main".into(),
            url: "/main".into(),
            entries: vec![ListEntry {
                name: "<script>x</script>.mov".into(),
                kind: "file",
                size: Some(3),
                content_hash: None,
                media: None,
                proxies: vec![],
                url: "/main/%3Cscript%3E\"".into(),
            }],
        };
        let h = html(&l);
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;x&lt;/script&gt;.mov"), "{h}");
        assert!(h.contains("href=\"/main/%3Cscript%3E&quot;\""), "{h}");
        assert!(h.contains("href=\"/\">../"), "{h}");
    }
}
