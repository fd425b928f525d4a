//! The mount's metadata reads go through a pool of read-only connections, not
//! through the writer: a write transaction held open does not stall them.

use super::*;
use crate::archive::catalog::Staged;

fn names(core: &FsCore, ino: u64) -> FsResult<Vec<String>> {
    core.readdir(ino).map(|v| v.into_iter().map(|(n, _)| n).collect())
}

#[test]
fn metadata_reads_proceed_while_the_writer_holds_a_write_transaction() {
    let (_dir, core, main) = writable_test_core();
    assert_eq!(names(&core, main).unwrap(), Vec::<String>::new());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let w = core.writer.lock().unwrap();
        w.catalog
            .write(|c| {
                c.set_staged_row(
                    "main",
                    "new-folder",
                    &Staged::Dir { mode: 0o755, mtime_ns: 1, tree: None, owner: None, extra: Default::default() },
                )?;
                let core = &core;
                s.spawn(move || {
                    let _ = tx.send((names(core, main), core.getattr(main).map(|a| a.kind)));
                });
                // Not a timing assertion: a bound only a reader stuck behind the
                // writer reaches (with one lock for everything, this waited forever).
                let got = rx.recv_timeout(Duration::from_secs(60));
                let (listing, kind) = got.expect("a metadata read waited for the writer's open transaction");
                assert_eq!(listing.unwrap(), Vec::<String>::new(), "an uncommitted row is not visible to readers");
                assert_eq!(kind.unwrap(), NodeType::Dir);
                Ok(())
            })
            .unwrap();
        drop(w);
    });
    // Committed: the next read sees it.
    assert_eq!(names(&core, main).unwrap(), vec!["new-folder".to_string()]);
}
