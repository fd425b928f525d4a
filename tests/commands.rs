//! The commands as library calls (`reelfs::commands`), the way the Python
//! bindings will make them: typed options in, typed results out, progress
//! through a callback. Real archive, real footage made by ffmpeg, real probe.

use reelfs::archive::progress::{ProgressHandle, ProgressState, StateCallback, Unit};
use reelfs::commands;
use reelfs::commands::info::Info;
use reelfs::commands::ls::Listing;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// 24 frames of 320x180 ProRes Proxy at 24 fps, TC 01:00:00:00, reel R1, one PCM track.
fn clip(dir: &Path) -> PathBuf {
    let p = dir.join("A001C003.mov");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=1"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=1"])
        .args(["-map", "0:v", "-map", "1:a", "-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s24le"])
        .args(["-timecode", "01:00:00:00", "-metadata:s:v:0", "reel_name=R1"])
        .arg(&p)
        .output()
        .expect("ffmpeg is installed (scripts/install-deps)");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    p
}

/// Every state a callback saw.
fn recorder() -> (ProgressHandle, Arc<Mutex<Vec<ProgressState>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (ProgressHandle::new(StateCallback::new(move |st: &ProgressState| s.lock().unwrap().push(st.clone()))), seen)
}

fn ingest(root: &Path, card: &Path, progress: ProgressHandle) -> reelfs::archive::ingest::IngestReport {
    let req = commands::ingest::IngestRequest {
        sources: vec![card.to_path_buf()],
        branch: "main".into(),
        to: "Day01".into(),
        message: Some("Day 01".into()),
        progress,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    commands::ingest::ingest(root, &req).expect("ingest")
}

#[test]
fn ingest_ls_info_and_log_return_typed_results_and_report_progress() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    let card = dir.path().join("A001");
    std::fs::create_dir(&card).unwrap();
    let clip = clip(&card);
    let size = std::fs::metadata(&clip).unwrap().len();
    commands::init::init(&root, None).unwrap();

    let (progress, seen) = recorder();
    let rep = ingest(&root, &card, progress);
    assert_eq!((rep.files, rep.failed.len()), (1, 0));
    let commit = rep.commit.clone().expect("a commit");
    // The callback saw the ingest phase count every byte of the card, then its end.
    let last = seen.lock().unwrap().last().cloned().expect("progress was reported");
    assert_eq!((last.phase.as_str(), last.unit, last.total, last.done), ("ingest", Some(Unit::Bytes), size, size));
    assert!(last.finished);
    assert!(seen.lock().unwrap().iter().any(|s| s.message.ends_with("A001C003.mov")));

    let Listing::Entries(entries) = commands::ls::ls(&root, "main/Day01/A001").unwrap() else { panic!("a folder lists entries") };
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!((e.name.as_str(), e.size, e.damaged), ("A001C003.mov", size, Some(false)));
    let m = e.media.as_ref().expect("media facts");
    assert_eq!((m.timecode.as_deref(), m.duration_frames, m.frame_rate.as_deref()), (Some("01:00:00:00"), Some(24), Some("24/1")));
    assert_eq!(m.timecode_source.as_deref(), Some("file"));

    let Info::File(info) = commands::info::info(&root, "main/Day01/A001/A001C003.mov").unwrap() else { panic!("a file's info") };
    let f = info.media.as_ref().expect("facts");
    assert_eq!((f.width, f.height, f.reel.as_deref()), (Some(320), Some(180), Some("R1")));
    let (_, audio) = f.first_audio().expect("an audio stream");
    assert_eq!((audio.sample_rate, audio.channels), (48000, 1));
    assert_eq!(info.content_hash.len(), 64);
    // The JSON of the typed result has the keys `info --json` always had.
    let v = serde_json::to_value(&*info).unwrap();
    for k in
        ["path", "size", "mode", "mtime_ns", "content_hash", "stored_bytes", "logical_bytes", "media", "damaged", "probe_error", "proxies"]
    {
        assert!(v.get(k).is_some(), "info JSON lacks {k}: {v}");
    }
    assert_eq!(v["media"]["timecode"], "01:00:00:00");

    let log = commands::log::log(&root, "main", None, 10).unwrap();
    assert_eq!(log[0].commit.commit, commit);
    assert_eq!(log[0].commit.message, "Day 01");
}

#[test]
fn restore_and_check_report_progress_through_the_trait() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    let card = dir.path().join("A001");
    std::fs::create_dir(&card).unwrap();
    let clip = clip(&card);
    commands::init::init(&root, None).unwrap();
    ingest(&root, &card, ProgressHandle::none());

    let (progress, seen) = recorder();
    let out = dir.path().join("out");
    let stop = AtomicBool::new(false);
    let rep = commands::restore::restore(&root, &["main/Day01/A001/A001C003.mov".to_string()], &out, progress, &stop).unwrap();
    assert_eq!(rep.files, 1);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&clip).unwrap());
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.phase.as_str(), last.done, last.total), ("restore", rep.bytes, rep.bytes));

    let (progress, seen) = recorder();
    let rep = commands::check::check(&root, true, &progress).unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.phase.as_str(), last.unit, last.done), ("check", Some(Unit::Bytes), rep.bytes_verified));
    assert!(last.done > 0 && last.finished);
}

#[test]
fn a_command_refusal_is_a_typed_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    commands::init::init(&root, None).unwrap();
    let card = dir.path().join("A001");
    std::fs::create_dir(&card).unwrap();
    std::fs::write(card.join("notes.txt"), b"sound report").unwrap();
    ingest(&root, &card, ProgressHandle::none());
    let e = commands::info::info(&root, "main/Day01/A001").unwrap_err();
    assert!(matches!(e, commands::CommandError::Invalid(_)));
    assert!(e.to_string().contains("no image sequence") && e.to_string().contains("reelfs ls"), "{e}");
    let e = commands::tc::tc(
        &root,
        "main/Day01/A001/notes.txt",
        commands::tc::TcChange::Set { tc: "01:00:00:00".into(), reel: None, rate: None },
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a probed media file"), "{e}");
}
