//! The LTFS index (LTFS Format 2.4, section 9): the XML document that lists
//! every directory and file of a volume, with each file's extents (where its
//! bytes are on tape), times, extended attributes, and the pointers that
//! chain generations of indexes (self, previous generation).
//!
//! `Index::to_xml` writes what the reference implementation writes, element
//! for element and in its order; `Index::parse` is reelfs's own reader (it
//! needs no LTFS driver) and refuses names that could escape a destination
//! folder when the volume is read back (`..`, `/`, NUL).

use super::xml::{self, Element, XmlOut};
use super::{format_err, Result};
use base64::Engine;
use std::collections::BTreeMap;

/// A position on the volume (partition letter, block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    pub partition: char,
    pub block: u64,
}

/// The five time stamps the spec gives every file and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Times {
    pub creation: String,
    pub change: String,
    pub modify: String,
    pub access: String,
    pub backup: String,
}

impl Times {
    /// All five set to one time (a file written once, as on tape).
    pub fn all(t: &str) -> Times {
        Times { creation: t.into(), change: t.into(), modify: t.into(), access: t.into(), backup: t.into() }
    }
}

/// A run of a file's bytes on tape: `byte_count` bytes of the file from
/// `file_offset`, starting `byte_offset` bytes into block `start_block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub file_offset: u64,
    pub partition: char,
    pub start_block: u64,
    pub byte_offset: u64,
    pub byte_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub name: String,
    pub length: u64,
    pub readonly: bool,
    pub times: Times,
    pub uid: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub extents: Vec<Extent>,
    /// A symbolic link's target (a `<symlink>` entry has no data).
    pub symlink: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDir {
    pub name: String,
    pub readonly: bool,
    pub times: Times,
    pub uid: u64,
    pub dirs: BTreeMap<String, IndexDir>,
    pub files: BTreeMap<String, IndexFile>,
}

impl IndexDir {
    pub fn new(name: &str, times: Times, uid: u64) -> IndexDir {
        IndexDir { name: name.into(), readonly: false, times, uid, dirs: BTreeMap::new(), files: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub creator: String,
    pub volume_uuid: String,
    pub generation: u64,
    pub update_time: String,
    pub location: Pointer,
    pub previous: Option<Pointer>,
    pub highest_file_uid: u64,
    pub root: IndexDir,
}

/// Element order the spec (and the reference writer) gives each element;
/// `validate` checks a document against it.
const INDEX_ORDER: &[&str] = &[
    "creator",
    "comment",
    "volumeuuid",
    "generationnumber",
    "updatetime",
    "location",
    "previousgenerationlocation",
    "allowpolicyupdate",
    "dataplacementpolicy",
    "highestfileuid",
    "volumelockstate",
    "directory",
];
const INDEX_REQUIRED: &[&str] = &["creator", "volumeuuid", "generationnumber", "updatetime", "location", "allowpolicyupdate", "directory"];
const DIR_ORDER: &[&str] = &[
    "name",
    "readonly",
    "creationtime",
    "changetime",
    "modifytime",
    "accesstime",
    "backuptime",
    "fileuid",
    "extendedattributes",
    "contents",
];
const DIR_REQUIRED: &[&str] =
    &["name", "readonly", "creationtime", "changetime", "modifytime", "accesstime", "backuptime", "fileuid", "contents"];
const FILE_ORDER: &[&str] = &[
    "name",
    "length",
    "readonly",
    "openforwrite",
    "creationtime",
    "changetime",
    "modifytime",
    "accesstime",
    "backuptime",
    "fileuid",
    "extendedattributes",
    "symlink",
    "extentinfo",
];
const FILE_REQUIRED: &[&str] =
    &["name", "length", "readonly", "creationtime", "changetime", "modifytime", "accesstime", "backuptime", "fileuid"];
const EXTENT_ORDER: &[&str] = &["fileoffset", "partition", "startblock", "byteoffset", "bytecount"];
const POINTER_ORDER: &[&str] = &["partition", "startblock"];

impl Index {
    pub fn to_xml(&self) -> Vec<u8> {
        let mut x = XmlOut::new();
        x.start("ltfsindex", &[("version", "2.4.0")]);
        x.leaf("creator", &self.creator);
        x.leaf("volumeuuid", &self.volume_uuid);
        x.leaf("generationnumber", &self.generation.to_string());
        x.leaf("updatetime", &self.update_time);
        write_pointer(&mut x, "location", self.location);
        if let Some(prev) = self.previous {
            write_pointer(&mut x, "previousgenerationlocation", prev);
        }
        x.leaf("allowpolicyupdate", "true");
        x.leaf("highestfileuid", &self.highest_file_uid.to_string());
        x.leaf("volumelockstate", "unlocked");
        write_dir(&mut x, &self.root);
        x.end("ltfsindex");
        x.finish()
    }

    pub fn parse(bytes: &[u8]) -> Result<Index> {
        let text = std::str::from_utf8(bytes).map_err(|_| bad("the index is not UTF-8 text".to_string()))?;
        let root = xml::parse(text).map_err(bad)?;
        if root.name != "ltfsindex" {
            return Err(bad(format!("root element is <{}>, not <ltfsindex>", root.name)));
        }
        let version = root.attr("version").unwrap_or("");
        if !version.starts_with("2.") {
            return Err(bad(format!("index version {version:?}: reelfs reads LTFS 2.x indexes")));
        }
        require(&root, INDEX_REQUIRED)?;
        let dir = root.child("directory").ok_or_else(|| bad("no root <directory>".into()))?;
        let root_dir = parse_dir(dir, true)?;
        Ok(Index {
            creator: text_of(&root, "creator")?,
            volume_uuid: text_of(&root, "volumeuuid")?,
            generation: number_of(&root, "generationnumber")?,
            update_time: text_of(&root, "updatetime")?,
            location: parse_pointer(child(&root, "location")?)?,
            previous: root.child("previousgenerationlocation").map(parse_pointer).transpose()?,
            highest_file_uid: match root.child("highestfileuid") {
                Some(_) => number_of(&root, "highestfileuid")?,
                None => 0,
            },
            root: root_dir,
        })
    }

    /// Every regular file, with its `/`-separated path, in no set order.
    pub fn files(&self) -> Vec<(String, &IndexFile)> {
        let mut out = Vec::new();
        let mut stack: Vec<(String, &IndexDir)> = vec![(String::new(), &self.root)];
        while let Some((prefix, dir)) = stack.pop() {
            for (name, f) in &dir.files {
                if f.symlink.is_none() {
                    out.push((join(&prefix, name), f));
                }
            }
            for (name, d) in &dir.dirs {
                stack.push((join(&prefix, name), d));
            }
        }
        out
    }

    /// The file at a `/`-separated path.
    pub fn find(&self, path: &str) -> Option<&IndexFile> {
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let name = parts.pop()?;
        let mut dir = &self.root;
        for p in parts {
            dir = dir.dirs.get(p)?;
        }
        dir.files.get(name)
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn bad(why: String) -> super::LtfsError {
    format_err(format!("the LTFS index is invalid: {why}"))
}

fn write_pointer(x: &mut XmlOut, name: &str, p: Pointer) {
    x.start(name, &[]);
    x.leaf("partition", &p.partition.to_string());
    x.leaf("startblock", &p.block.to_string());
    x.end(name);
}

fn write_times(x: &mut XmlOut, t: &Times) {
    x.leaf("creationtime", &t.creation);
    x.leaf("changetime", &t.change);
    x.leaf("modifytime", &t.modify);
    x.leaf("accesstime", &t.access);
    x.leaf("backuptime", &t.backup);
}

fn write_name(x: &mut XmlOut, name: &str) {
    if needs_percent_encoding(name) {
        x.leaf_with("name", &[("percentencoded", "true")], &percent_encode(name));
    } else {
        x.leaf("name", name);
    }
}

fn write_dir(x: &mut XmlOut, d: &IndexDir) {
    x.start("directory", &[]);
    write_name(x, &d.name);
    x.leaf("readonly", if d.readonly { "true" } else { "false" });
    write_times(x, &d.times);
    x.leaf("fileuid", &d.uid.to_string());
    if d.dirs.is_empty() && d.files.is_empty() {
        x.leaf("contents", "");
    } else {
        x.start("contents", &[]);
        for sub in d.dirs.values() {
            write_dir(x, sub);
        }
        for f in d.files.values() {
            write_file(x, f);
        }
        x.end("contents");
    }
    x.end("directory");
}

fn write_file(x: &mut XmlOut, f: &IndexFile) {
    x.start("file", &[]);
    write_name(x, &f.name);
    x.leaf("length", &f.length.to_string());
    x.leaf("readonly", if f.readonly { "true" } else { "false" });
    write_times(x, &f.times);
    x.leaf("fileuid", &f.uid.to_string());
    if !f.xattrs.is_empty() {
        x.start("extendedattributes", &[]);
        for (key, value) in &f.xattrs {
            x.start("xattr", &[]);
            x.leaf("key", key);
            match std::str::from_utf8(value) {
                Ok(s) if xml_safe(s) => x.leaf("value", s),
                _ => x.leaf_with("value", &[("type", "base64")], &base64::engine::general_purpose::STANDARD.encode(value)),
            }
            x.end("xattr");
        }
        x.end("extendedattributes");
    }
    if let Some(target) = &f.symlink {
        x.leaf("symlink", target);
    }
    if !f.extents.is_empty() {
        x.start("extentinfo", &[]);
        for e in &f.extents {
            x.start("extent", &[]);
            x.leaf("fileoffset", &e.file_offset.to_string());
            x.leaf("partition", &e.partition.to_string());
            x.leaf("startblock", &e.start_block.to_string());
            x.leaf("byteoffset", &e.byte_offset.to_string());
            x.leaf("bytecount", &e.byte_count.to_string());
            x.end("extent");
        }
        x.end("extentinfo");
    }
    x.end("file");
}

/// Characters XML 1.0 cannot carry, or that the reference percent-encodes.
fn xml_safe(s: &str) -> bool {
    s.chars().all(|c| !c.is_control() || c == '\t' || c == '\n' || c == '\r')
}

fn needs_percent_encoding(name: &str) -> bool {
    name.chars().any(|c| c.is_control())
}

fn percent_encode(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_control() || c == '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("bad percent-encoding in name {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(format!("name {s:?} decodes to bytes that are not UTF-8")))
}

fn child<'a>(el: &'a Element, name: &str) -> Result<&'a Element> {
    el.child(name).ok_or_else(|| bad(format!("<{}> has no <{name}>", el.name)))
}

fn text_of(el: &Element, name: &str) -> Result<String> {
    Ok(child(el, name)?.text.trim().to_string())
}

fn number_of(el: &Element, name: &str) -> Result<u64> {
    let t = text_of(el, name)?;
    t.parse().map_err(|_| bad(format!("<{name}> in <{}> is {t:?}, not a number", el.name)))
}

fn bool_of(el: &Element, name: &str) -> Result<bool> {
    match text_of(el, name)?.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(bad(format!("<{name}> is {other:?}, not true or false"))),
    }
}

fn require(el: &Element, names: &[&str]) -> Result<()> {
    for name in names {
        child(el, name)?;
    }
    Ok(())
}

fn partition_letter(el: &Element) -> Result<char> {
    let t = text_of(el, "partition")?;
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_lowercase() => Ok(c),
        _ => Err(bad(format!("partition {t:?} is not a partition letter"))),
    }
}

fn parse_pointer(el: &Element) -> Result<Pointer> {
    Ok(Pointer { partition: partition_letter(el)?, block: number_of(el, "startblock")? })
}

fn parse_times(el: &Element) -> Result<Times> {
    Ok(Times {
        creation: text_of(el, "creationtime")?,
        change: text_of(el, "changetime")?,
        modify: text_of(el, "modifytime")?,
        access: text_of(el, "accesstime")?,
        backup: text_of(el, "backuptime")?,
    })
}

/// A name as it will become a path component when the volume is read back:
/// nothing that walks out of the folder it is restored into.
fn parse_name(el: &Element, is_root: bool) -> Result<String> {
    let name_el = child(el, "name")?;
    let name = if name_el.attr("percentencoded") == Some("true") { percent_decode(&name_el.text)? } else { name_el.text.clone() };
    if is_root {
        return Ok(name);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(bad(format!(
            "the index names an entry {name:?}, which is not a file name (it could write outside \
             the folder it is read into): refusing to read this volume's index"
        )));
    }
    Ok(name)
}

fn parse_dir(el: &Element, is_root: bool) -> Result<IndexDir> {
    require(el, DIR_REQUIRED)?;
    let mut dir = IndexDir {
        name: parse_name(el, is_root)?,
        readonly: bool_of(el, "readonly")?,
        times: parse_times(el)?,
        uid: number_of(el, "fileuid")?,
        dirs: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    let contents = child(el, "contents")?;
    for entry in &contents.children {
        match entry.name.as_str() {
            "directory" => {
                let sub = parse_dir(entry, false)?;
                if dir.files.contains_key(&sub.name) || dir.dirs.contains_key(&sub.name) {
                    return Err(bad(format!("{:?} is listed twice in one directory", sub.name)));
                }
                dir.dirs.insert(sub.name.clone(), sub);
            }
            "file" => {
                let f = parse_file(entry)?;
                if dir.files.contains_key(&f.name) || dir.dirs.contains_key(&f.name) {
                    return Err(bad(format!("{:?} is listed twice in one directory", f.name)));
                }
                dir.files.insert(f.name.clone(), f);
            }
            // The spec asks readers to keep unknown elements; reelfs only
            // reads, so it skips them.
            _ => {}
        }
    }
    Ok(dir)
}

fn parse_file(el: &Element) -> Result<IndexFile> {
    require(el, FILE_REQUIRED)?;
    let name = parse_name(el, false)?;
    let mut xattrs = Vec::new();
    if let Some(ea) = el.child("extendedattributes") {
        for xa in ea.children_named("xattr") {
            let key = text_of(xa, "key")?;
            let value_el = child(xa, "value")?;
            let value = if value_el.attr("type") == Some("base64") {
                let compact: String = value_el.text.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| bad(format!("xattr {key:?} of {name:?}: bad base64: {e}")))?
            } else {
                value_el.text.clone().into_bytes()
            };
            xattrs.push((key, value));
        }
    }
    let mut extents = Vec::new();
    if let Some(info) = el.child("extentinfo") {
        for ex in info.children_named("extent") {
            let e = Extent {
                file_offset: number_of(ex, "fileoffset")?,
                partition: partition_letter(ex)?,
                start_block: number_of(ex, "startblock")?,
                byte_offset: number_of(ex, "byteoffset")?,
                byte_count: number_of(ex, "bytecount")?,
            };
            extents.push(e);
        }
    }
    let length = number_of(el, "length")?;
    for e in &extents {
        let end = e.file_offset.checked_add(e.byte_count);
        if end.is_none_or(|end| end > length) {
            return Err(bad(format!("an extent of {name:?} ends past its length {length}")));
        }
    }
    extents.sort_by_key(|e| e.file_offset);
    Ok(IndexFile {
        name,
        length,
        readonly: bool_of(el, "readonly")?,
        times: parse_times(el)?,
        uid: number_of(el, "fileuid")?,
        xattrs,
        extents,
        symlink: el.child("symlink").map(|s| s.text.clone()),
    })
}

/// Check a document against the structure the spec defines: every required
/// element present, known elements in the spec's order, no element twice
/// that may appear once. Returns every problem found, for the tests that
/// prove what reelfs writes is what a stock LTFS expects.
pub fn validate(bytes: &[u8]) -> std::result::Result<(), Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|_| vec!["not UTF-8".to_string()])?;
    let root = xml::parse(text).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    if root.name != "ltfsindex" {
        problems.push(format!("root is <{}>", root.name));
    }
    if root.attr("version") != Some("2.4.0") {
        problems.push("ltfsindex version is not 2.4.0".into());
    }
    check_sequence(&root, INDEX_ORDER, INDEX_REQUIRED, &mut problems);
    for name in ["location", "previousgenerationlocation"] {
        if let Some(p) = root.child(name) {
            check_sequence(p, POINTER_ORDER, POINTER_ORDER, &mut problems);
        }
    }
    let mut stack: Vec<&Element> = root.children_named("directory").collect();
    while let Some(dir) = stack.pop() {
        check_sequence(dir, DIR_ORDER, DIR_REQUIRED, &mut problems);
        let Some(contents) = dir.child("contents") else {
            continue;
        };
        for entry in &contents.children {
            match entry.name.as_str() {
                "directory" => stack.push(entry),
                "file" => {
                    check_sequence(entry, FILE_ORDER, FILE_REQUIRED, &mut problems);
                    if let Some(info) = entry.child("extentinfo") {
                        for ex in &info.children {
                            if ex.name != "extent" {
                                problems.push(format!("<{}> inside <extentinfo>", ex.name));
                            }
                            check_sequence(ex, EXTENT_ORDER, EXTENT_ORDER, &mut problems);
                        }
                    }
                    if let Some(ea) = entry.child("extendedattributes") {
                        for xa in &ea.children {
                            check_sequence(xa, &["key", "value"], &["key", "value"], &mut problems);
                        }
                    }
                }
                other => problems.push(format!("<{other}> inside <contents>")),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_sequence(el: &Element, order: &[&str], required: &[&str], problems: &mut Vec<String>) {
    let names = el.child_names();
    for r in required {
        if !names.contains(r) {
            problems.push(format!("<{}> lacks <{r}>", el.name));
        }
    }
    let mut last = 0;
    for n in &names {
        match order.iter().position(|o| o == n) {
            Some(i) if i < last => problems.push(format!("<{n}> out of order in <{}>", el.name)),
            Some(i) if i == last && order[i] == *n && names.iter().filter(|m| *m == n).count() > 1 => {
                problems.push(format!("<{n}> repeated in <{}>", el.name));
                last = i;
            }
            Some(i) => last = i,
            None => problems.push(format!("unknown <{n}> in <{}>", el.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let t = Times::all("2026-11-29T23:29:22.950520164Z");
        let mut root = IndexDir::new("", t.clone(), 1);
        let mut day = IndexDir::new("Day01", t.clone(), 2);
        day.files.insert(
            "A001C003.mov".into(),
            IndexFile {
                name: "A001C003.mov".into(),
                length: 1_200_000,
                readonly: false,
                times: t.clone(),
                uid: 3,
                xattrs: vec![("ltfs.hash.md5sum".into(), b"0123abcd".to_vec()), ("reelfs.raw".into(), vec![0, 1, 2, 255])],
                extents: vec![Extent { file_offset: 0, partition: 'b', start_block: 7, byte_offset: 0, byte_count: 1_200_000 }],
                symlink: None,
            },
        );
        root.dirs.insert("Day01".into(), day);
        Index {
            creator: "reelfs test".into(),
            volume_uuid: "0df08c74-45b6-4fa4-936c-cee5a88df76e".into(),
            generation: 2,
            update_time: "2026-11-29T23:29:26.473664783Z".into(),
            location: Pointer { partition: 'b', block: 12 },
            previous: Some(Pointer { partition: 'b', block: 5 }),
            highest_file_uid: 3,
            root,
        }
    }

    #[test]
    fn round_trips_and_validates() {
        let idx = sample();
        let xml = idx.to_xml();
        validate(&xml).unwrap();
        assert_eq!(Index::parse(&xml).unwrap(), idx);
    }

    #[test]
    fn names_with_control_characters_are_percent_encoded() {
        let mut idx = sample();
        let mut f = idx.root.dirs["Day01"].files["A001C003.mov"].clone();
        f.name = "bell\u{7}%.wav".into();
        idx.root.files.insert(f.name.clone(), f);
        let xml = idx.to_xml();
        assert!(String::from_utf8_lossy(&xml).contains("bell%07%25.wav"));
        assert_eq!(Index::parse(&xml).unwrap(), idx);
    }

    #[test]
    fn escaping_names_are_refused() {
        for evil in ["..", ".", "a/b", ""] {
            let mut idx = sample();
            let mut f = idx.root.dirs["Day01"].files["A001C003.mov"].clone();
            f.name = evil.into();
            idx.root.files.insert("x".into(), f);
            let err = Index::parse(&idx.to_xml()).unwrap_err().to_string();
            assert!(err.contains("refusing"), "{evil:?}: {err}");
        }
    }

    #[test]
    fn validate_names_what_is_out_of_order_or_missing() {
        let xml = String::from_utf8(sample().to_xml()).unwrap();
        let swapped = xml.replacen("<generationnumber>2</generationnumber>", "", 1).replacen(
            "</updatetime>",
            "</updatetime>\n<generationnumber>2</generationnumber>",
            1,
        );
        let problems = validate(swapped.as_bytes()).unwrap_err();
        assert!(problems.iter().any(|p| p.contains("out of order")), "{problems:?}");
        let missing = xml.replacen("<fileuid>3</fileuid>", "", 1);
        let problems = validate(missing.as_bytes()).unwrap_err();
        assert!(problems.iter().any(|p| p.contains("lacks <fileuid>")), "{problems:?}");
    }
}
