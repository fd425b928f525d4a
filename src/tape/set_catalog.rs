//! The catalog of a whole tape set (which file is on which cartridge, with its
//! hashes), in the forms that travel with the tapes: JSON for tools, CSV for a
//! spreadsheet, a join list for split files, and a one-page HTML index to print
//! and put in the box. Every cartridge carries it (written last), and
//! `tape export` writes it to a folder.

use super::mhl::MhlEntry;
use crate::archive::catalog::{CartridgeRow, TapeItemRow, TapePlanRow};

/// Where the set catalog goes on a cartridge. The planner refuses selections
/// with files of their own under these names.
pub const CATALOG_DIR: &str = "reelfs-catalog";

#[derive(Debug, Clone, serde::Serialize)]
pub struct SetCatalog {
    pub format: &'static str,
    pub plan: TapePlanRow,
    pub cartridges: Vec<CartridgeRow>,
    /// Every file and part, by cartridge then write order (queued ones too:
    /// the plan is part of the record).
    pub files: Vec<TapeItemRow>,
}

impl SetCatalog {
    /// The ASC MHL entries of what is on cartridge `barcode` (written or
    /// verified there): the tape's own manifest and `tape export`'s copy of it.
    pub fn mhl_entries(&self, barcode: &str) -> Vec<MhlEntry> {
        self.files
            .iter()
            .filter(|f| f.barcode == barcode && (f.state == "written" || f.state == "verified"))
            .map(|f| MhlEntry {
                path: f.tape_path.clone(),
                size: f.length,
                mtime_ns: f.mtime_ns,
                md5: f.md5.clone().unwrap_or_default(),
                xxh64: f.xxh64.clone().unwrap_or_default(),
            })
            .collect()
    }

    pub fn new(plan: TapePlanRow, cartridges: Vec<CartridgeRow>, mut files: Vec<TapeItemRow>) -> SetCatalog {
        files.sort_by(|a, b| (&a.barcode, a.ord).cmp(&(&b.barcode, b.ord)));
        SetCatalog { format: "reelfs tape set catalog 1", plan, cartridges, files }
    }

    pub fn json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    pub fn csv(&self) -> Vec<u8> {
        let mut out =
            String::from("barcode,copy,state,tape_path,source,size,part,parts,offset,length,partition,start_block,md5,sha1,xxh64,blake3\n");
        let copy_of = |b: &str| self.cartridges.iter().find(|c| c.barcode == b).map(|c| c.copy).unwrap_or(0);
        for f in &self.files {
            let row = [
                f.barcode.clone(),
                copy_of(&f.barcode).to_string(),
                f.state.clone(),
                f.tape_path.clone(),
                f.source.clone(),
                f.file_size.to_string(),
                f.part.to_string(),
                f.parts.to_string(),
                f.offset.to_string(),
                f.length.to_string(),
                f.partition.clone().unwrap_or_default(),
                f.start_block.map(|b| b.to_string()).unwrap_or_default(),
                f.md5.clone().unwrap_or_default(),
                f.sha1.clone().unwrap_or_default(),
                f.xxh64.clone().unwrap_or_default(),
                f.blake3.clone().unwrap_or_default(),
            ];
            out.push_str(&row.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out.into_bytes()
    }

    /// How to put split files back together: one `cat` line per file and copy,
    /// parts in order, then the BLAKE3 (`b3sum`) the joined file must have.
    pub fn joins(&self) -> Option<Vec<u8>> {
        let copy_of = |b: &str| self.cartridges.iter().find(|c| c.barcode == b).map(|c| c.copy).unwrap_or(0);
        let mut by_source = std::collections::BTreeMap::<String, Vec<&TapeItemRow>>::new();
        for f in self.files.iter().filter(|f| f.parts > 1 && f.state != "abandoned" && f.state != "bad") {
            by_source.entry(f.source.clone()).or_default().push(f);
        }
        if by_source.is_empty() {
            return None;
        }
        let mut out = String::from(
            "# Files split across cartridges. Copy the files of each cartridge named into one\n# folder, keeping their paths, and run these lines there: `cat` of the parts in\n# order gives the file (check it with `b3sum`).\n",
        );
        for (source, mut parts) in by_source {
            parts.sort_by_key(|p| (copy_of(&p.barcode), p.part));
            let first = parts[0];
            let whole = super::plan::whole_name(&first.tape_path, first.part, first.parts);
            let mut copies = std::collections::BTreeMap::<u32, Vec<String>>::new();
            for p in &parts {
                copies.entry(copy_of(&p.barcode)).or_default().push(format!("part {} on {}", p.part, p.barcode));
            }
            let where_: Vec<String> = copies.iter().map(|(c, w)| format!("copy {c}: {}", w.join(", "))).collect();
            out.push_str(&format!("# {source}: blake3 {}; {}\n", first.blob.to_hex(), where_.join("; ")));
            let names: Vec<String> = (1..=first.parts).map(|n| shell_quote(&super::plan::part_name(&whole, n, first.parts))).collect();
            out.push_str(&format!("cat {} > {}\n", names.join(" "), shell_quote(&whole)));
        }
        Some(out.into_bytes())
    }

    pub fn html(&self) -> Vec<u8> {
        let e = super::mhl::escape;
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
        h.push_str(&e(&format!("Tape set {}", self.plan.name)));
        h.push_str("</title>\n<style>body{font:12px sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 4px;text-align:left}td.n{text-align:right}</style></head><body>\n");
        h.push_str(&format!(
            "<h1>Tape set {}</h1>\n<p>Pool {} &middot; {} &middot; {} copies &middot; created {}</p>\n",
            e(&self.plan.name),
            e(&self.plan.pool),
            e(&self.plan.generation),
            self.plan.copies,
            super::mhl::iso(self.plan.created_ns)
        ));
        h.push_str("<h2>Cartridges</h2>\n<table><tr><th>Barcode</th><th>Copy</th><th>State</th><th>Files</th><th>Bytes</th></tr>\n");
        for c in &self.cartridges {
            let on: Vec<&TapeItemRow> = self.files.iter().filter(|f| f.barcode == c.barcode && f.state != "abandoned").collect();
            h.push_str(&format!(
                "<tr><td>{}</td><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
                e(&c.barcode),
                c.copy,
                e(&c.state),
                on.len(),
                on.iter().map(|f| f.length).sum::<u64>()
            ));
        }
        h.push_str("</table>\n<h2>Files</h2>\n<table><tr><th>Barcode</th><th>Path on tape</th><th>Source</th><th>Bytes</th><th>Part</th><th>State</th><th>MD5</th></tr>\n");
        for f in &self.files {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>\n",
                e(&f.barcode),
                e(&f.tape_path),
                e(&f.source),
                f.length,
                f.part,
                f.parts,
                e(&f.state),
                e(f.md5.as_deref().unwrap_or(""))
            ));
        }
        h.push_str("</table>\n</body></html>\n");
        h.into_bytes()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A path for a POSIX shell line, single-quoted.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_shell_quotes_survive_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
