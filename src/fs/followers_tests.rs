//! A reader opened before a writer reads what the writer writes, from the
//! daemon (not a page cache): while the writer is open, after it closes, and
//! after a second writer; a file replaced by a rename keeps its readers on the
//! old content.

use super::*;

fn write_file(core: &FsCore, main: u64, name: &str, data: &[u8]) -> u64 {
    let (attr, fh) = core.create_open(main, name, 0o644).unwrap();
    core.write_fh(fh, 0, data).unwrap();
    core.release(fh).unwrap();
    attr.ino
}

#[test]
fn a_reader_opened_first_follows_every_later_writer() {
    let (_dir, core, main) = writable_test_core();
    let ino = write_file(&core, main, "notes.txt", b"first version");
    let reader = core.open(ino, false).unwrap();
    assert_eq!(core.read(reader, 0, 100).unwrap(), b"first version");

    // A writer opens after the reader: its buffered bytes are what the reader reads.
    let w = core.open(ino, true).unwrap();
    core.write_fh(w, 0, b"FIRST").unwrap();
    assert_eq!(core.read(reader, 0, 100).unwrap(), b"FIRST version");
    // Past the old end, too.
    core.write_fh(w, 13, b" and more").unwrap();
    assert_eq!(core.read(reader, 0, 100).unwrap(), b"FIRST version and more");
    core.release(w).unwrap();
    // The writer closed: what it left.
    assert_eq!(core.read(reader, 0, 100).unwrap(), b"FIRST version and more");

    // A second writer truncates: the reader follows it too.
    let w2 = core.open_with(ino, true, true).unwrap();
    core.write_fh(w2, 0, b"third").unwrap();
    core.release(w2).unwrap();
    assert_eq!(core.read(reader, 0, 100).unwrap(), b"third");
    core.release(reader).unwrap();
    assert_eq!(core.branch_writes.followers_open(), 0, "a closed reader's cell is dropped");
}

#[test]
fn a_reader_of_a_file_replaced_by_rename_keeps_the_old_content() {
    let (_dir, core, main) = writable_test_core();
    let old = write_file(&core, main, "take.mov", b"old take");
    let reader = core.open(old, false).unwrap();
    write_file(&core, main, "take.new", b"new take, longer");
    core.rename(main, "take.new", main, "take.mov").unwrap();
    // Someone writes the file now at that name.
    let now = core.lookup(main, "take.mov").unwrap().ino;
    assert_ne!(now, old, "the replaced file keeps its own inode");
    let w = core.open(now, true).unwrap();
    core.write_fh(w, 0, b"NEW").unwrap();
    core.release(w).unwrap();
    assert_eq!(core.read(reader, 0, 100).unwrap(), b"old take");
    core.release(reader).unwrap();
}
