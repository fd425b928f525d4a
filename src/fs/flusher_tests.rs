//! The background flusher: a `write` that fills the buffer hands it to the
//! flusher instead of storing it on the request thread, readers see the bytes
//! meanwhile, and fsync still returns only once they are staged.

use super::*;
use crate::archive::catalog::{Content, Staged};

use crate::archive::test_support::noise_low as noise;

#[test]
fn a_write_that_fills_the_buffer_returns_while_the_writer_is_busy_and_fsync_makes_it_durable() {
    let (_dir, core, main) = writable_test_core();
    let (_, fh) = core.create_open(main, "take1.mov", 0o644).unwrap();
    // One byte past the flush threshold, written in 1 MiB requests as the kernel sends them.
    let data = noise((64 << 20) + (1 << 20), 7);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        // Another request (a commit, a rename) holds the one writer connection.
        let busy = core.writer.lock().unwrap();
        let core = &core;
        let data = &data;
        s.spawn(move || {
            let mut r = Ok(0);
            for (i, piece) in data.chunks(1 << 20).enumerate() {
                r = core.write_fh(fh, (i << 20) as u64, piece);
                if r.is_err() {
                    break;
                }
            }
            let _ = tx.send(r);
        });
        // Not a timing assertion: a bound only a write stuck behind the writer
        // reaches (storing the buffer inside `write` waited for it forever).
        let got = rx.recv_timeout(Duration::from_secs(60));
        let done = got.expect("the write that filled the buffer waited for the archive writer");
        assert!(done.is_ok(), "write failed: {done:?}");
        // Readers see every written byte while it is in flight.
        let at = |off: usize| core.read(fh, off as u64, 1 << 20).unwrap() == data[off..off + (1 << 20)];
        assert!(at(0), "the first MiB reads back wrong while in flight");
        assert!(at((64 << 20) - 10), "bytes across the flush threshold read back wrong while in flight");
        drop(busy);
    });
    core.fsync_fh(fh).unwrap();
    // Staged and durable: read back from the packs through the catalog.
    let a = core.writer.lock().unwrap();
    let rows = a.staging_rows("main").unwrap();
    let (path, row) = rows.into_iter().next().expect("the file is staged after fsync");
    assert_eq!(path, "take1.mov");
    let Staged::File { size, content: Content::Extents(id), .. } = row else { panic!("not a staged file: {row:?}") };
    assert_eq!(size, data.len() as u64);
    let ext = a.staging().extents(id).unwrap();
    let r = a.extents_reader(Hash([0; 32]), size, &ext).unwrap();
    let mut back = vec![0u8; data.len()];
    let mut done = 0;
    while done < back.len() {
        let n = r.read_at(done as u64, &mut back[done..]).unwrap();
        assert!(n > 0, "short read at {done}");
        done += n;
    }
    assert!(back == *data, "the staged bytes differ from what was written");
    drop(a);
    core.release(fh).unwrap();
}

#[test]
fn a_truncate_while_a_buffer_is_in_flight_keeps_exactly_the_bytes_below_the_new_end() {
    let (_dir, core, main) = writable_test_core();
    let (attr, fh) = core.create_open(main, "take2.mov", 0o644).unwrap();
    let data = noise((64 << 20) + (1 << 20), 11);
    let keep = (3 << 20) + 5;
    std::thread::scope(|s| {
        let busy = core.writer.lock().unwrap();
        for (i, piece) in data.chunks(1 << 20).enumerate() {
            core.write_fh(fh, (i << 20) as u64, piece).unwrap();
        }
        // The truncate and the flusher race for the writer once it is free;
        // either order must leave the same file.
        let core = &core;
        let t = s.spawn(move || core.setattr(attr.ino, None, Some(keep as u64), None));
        drop(busy);
        t.join().unwrap().unwrap();
    });
    core.fsync_fh(fh).unwrap();
    assert_eq!(core.getattr(attr.ino).unwrap().size, keep as u64);
    assert!(core.read(fh, 0, keep as u32 + 100).unwrap() == data[..keep], "the kept bytes differ");
    core.release(fh).unwrap();
    let a = core.writer.lock().unwrap();
    let rows = a.staging_rows("main").unwrap();
    let Some((_, Staged::File { size, content: Content::Extents(id), .. })) = rows.into_iter().next() else { panic!("not staged") };
    assert_eq!(size, keep as u64, "the staged size");
    let r = a.extents_reader(Hash([0; 32]), size, &a.staging().extents(id).unwrap()).unwrap();
    let mut back = vec![0u8; keep];
    let mut done = 0;
    while done < keep {
        let n = r.read_at(done as u64, &mut back[done..]).unwrap();
        assert!(n > 0, "short read at {done}");
        done += n;
    }
    assert!(back == data[..keep], "the staged bytes differ from the kept ones");
}
