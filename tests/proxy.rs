//! The proxy ladder through the library API (`reelfs::media::proxy::render`),
//! without an archive: real footage made with the ffmpeg CLI into a temporary
//! folder, rendered from a path, checked with ffprobe. The acceptance suite
//! (tests/acceptance/test_proxies.py, test_proxy_sequences.py) checks the same
//! outputs through the CLI and the mount, frame by frame; these tests keep the
//! render paths covered by `cargo test` and check the library's contract:
//! rungs, frame counts, notes, partial marks, interrupts.

use reelfs::media::probe;
use reelfs::media::proxy::{render, FrameFile, ProxyError, RenderOptions, Rung, SequenceSource, Source};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/install-deps)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ffprobe(path: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", entries, "-of", "default=nw=1", path.to_str().unwrap()])
        .output()
        .expect("ffprobe is installed");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn opts(rungs: &[Rung]) -> RenderOptions {
    RenderOptions {
        rungs: rungs.to_vec(),
        threads: 0,
        interrupt: Arc::new(AtomicBool::new(false)),
        frames_done: Arc::new(AtomicU64::new(0)),
    }
}

/// 24 frames of 320x180 ProRes Proxy at 24 fps, TC 01:00:00:00, reel R1, two PCM tracks.
fn small_clip(dir: &Path) -> PathBuf {
    let p = dir.join("clip.mov");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=24:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1500:sample_rate=48000:duration=1",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-c:v",
        "prores_ks",
        "-profile:v",
        "0",
        "-c:a",
        "pcm_s24le",
        "-timecode",
        "01:00:00:00",
        "-metadata:s:v:0",
        "reel_name=R1",
        p.to_str().unwrap(),
    ]);
    p
}

#[test]
fn one_decode_renders_every_rung_with_the_source_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let clip = small_clip(dir.path());
    let facts = probe::facts(&clip).expect("the clip probes");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = opts(&Rung::ALL);
    let (files, stats) = render(&Source::Path(clip.clone()), &facts, &out, &o).expect("render");
    let names: Vec<&str> = files.iter().map(|f| f.profile.as_str()).collect();
    assert_eq!(names, ["thumb", "sheet", "preview", "editorial", "editorial-dnxhr", "preview-low", "preview-high", "preview-low-vp9"]);
    assert_eq!(stats.frames, 24);
    assert_eq!(stats.partial_at, None);
    assert_eq!(o.frames_done.load(Ordering::Relaxed), 24);
    for f in &files {
        assert!(f.path.exists() && std::fs::metadata(&f.path).unwrap().len() > 0, "{}", f.path.display());
        assert_eq!(f.settings_version, Rung::parse(&f.profile).unwrap().settings_version());
    }
    let ed = &files[3].path;
    let e = ffprobe(ed, "stream=codec_name,nb_read_frames:stream_tags=timecode,reel_name");
    assert!(e.contains("codec_name=prores") && e.contains("nb_read_frames=24"), "{e}");
    assert!(e.contains("TAG:timecode=01:00:00:00") && e.contains("TAG:reel_name=R1"), "{e}");
    assert_eq!(e.matches("codec_name=pcm_s24le").count(), 2, "{e}");
    let d = ffprobe(&files[4].path, "stream=codec_name,profile,nb_read_frames");
    assert!(d.contains("profile=DNXHR LB") && d.contains("nb_read_frames=24"), "{d}");
    let p = ffprobe(&files[2].path, "stream=codec_name,channels,nb_read_frames");
    assert!(p.contains("codec_name=h264") && p.contains("nb_read_frames=24") && p.contains("channels=2"), "{p}");
    let v = ffprobe(&files[7].path, "stream=codec_name,channels,nb_read_frames");
    assert!(v.contains("codec_name=vp9") && v.contains("nb_read_frames=24") && v.contains("channels=2"), "{v}");
    let s = ffprobe(&files[1].path, "stream=width,height");
    // 24 frames: 24 tiles of 240x136 in rows of five.
    assert!(s.contains("width=1200") && s.contains("height=680"), "{s}");
}

#[test]
fn a_truncated_clip_renders_what_decodes_and_is_marked_partial() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("long.mov");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25:duration=4",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-movflags",
        "+faststart",
        clip.to_str().unwrap(),
    ]);
    let facts = probe::facts(&clip).unwrap();
    let data = std::fs::read(&clip).unwrap();
    let cut = dir.path().join("cut.mov");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (files, stats) = render(&Source::Path(cut), &facts, &out, &opts(&[Rung::Editorial])).expect("a partial render");
    let first_bad = stats.partial_at.expect("marked partial");
    assert!(first_bad > 10 && first_bad < 100, "{first_bad}");
    assert_eq!(stats.frames as i64, first_bad);
    assert!(files[0].note.contains("partial"), "{}", files[0].note);
}

#[test]
fn a_damaged_frame_holds_the_last_good_picture_and_the_proxy_keeps_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let clip = small_clip(dir.path());
    let facts = probe::facts(&clip).unwrap();
    // Zero half of frame 10's sample (ffprobe gives its place in the file; csv fields come as pts,size,pos).
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,pos,size", "-of", "csv=p=0", clip.to_str().unwrap()])
        .output()
        .expect("ffprobe is installed");
    let mut packets: Vec<Vec<u64>> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split(',').filter_map(|x| x.parse().ok()).collect()).collect();
    packets.sort();
    let (size, pos) = (packets[10][1] as usize, packets[10][2] as usize);
    let mut data = std::fs::read(&clip).unwrap();
    data[pos + size / 4..pos + size * 3 / 4].fill(0);
    let bad = dir.path().join("bad.mov");
    std::fs::write(&bad, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (files, stats) = render(&Source::Path(bad), &facts, &out, &opts(&[Rung::Editorial, Rung::Preview])).expect("a render");
    assert_eq!((stats.frames, stats.partial_at), (24, None));
    let held: Vec<(u64, u64, Option<&str>)> =
        stats.damaged.iter().map(|r| (r.first_frame, r.last_frame, r.timecode_first.as_deref())).collect();
    assert_eq!(held, [(10, 10, Some("01:00:00:10"))]);
    for f in &files {
        assert_eq!(f.damaged, stats.damaged);
        assert!(f.note.contains("01:00:00:10") && !f.note.contains("partial"), "{}", f.note);
        assert!(ffprobe(&f.path, "stream=nb_read_frames").contains("nb_read_frames=24"), "{}", f.path.display());
    }
}

#[test]
fn audio_only_gets_a_waveform_thumb_and_not_media_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1", "-c:a", "pcm_s16le", wav.to_str().unwrap()]);
    let facts = probe::facts(&wav).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (files, stats) = render(&Source::Path(wav.clone()), &facts, &out, &opts(&[Rung::Thumb])).expect("waveform");
    assert_eq!(files.len(), 1);
    assert!(stats.notes.iter().any(|n| n.contains("waveform")));
    assert!(ffprobe(&files[0].path, "stream=width,height").contains("width=320"));
    // Without the thumb, an audio file has nothing to render.
    match render(&Source::Path(wav), &facts, &out, &opts(&[Rung::Editorial])) {
        Err(ProxyError::Skip(why)) => assert!(why.contains("audio only"), "{why}"),
        other => panic!("expected a skip, got {:?}", other.map(|r| r.1)),
    }
    let junk = dir.path().join("junk.mov");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    assert!(matches!(render(&Source::Path(junk), &Default::default(), &out, &opts(&[Rung::Thumb])), Err(ProxyError::Skip(_))));
}

#[test]
fn an_interrupt_stops_the_render() {
    let dir = tempfile::tempdir().unwrap();
    let clip = small_clip(dir.path());
    let facts = probe::facts(&clip).unwrap();
    let o = opts(&[Rung::Editorial, Rung::Preview]);
    o.interrupt.store(true, Ordering::Relaxed);
    assert!(matches!(render(&Source::Path(clip), &facts, dir.path(), &o), Err(ProxyError::Interrupted)));
}

#[test]
fn an_image_sequence_renders_one_proxy_holding_a_bad_frame() {
    let dir = tempfile::tempdir().unwrap();
    let seq = dir.path().join("seq");
    std::fs::create_dir(&seq).unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=24",
        "-frames:v",
        "6",
        "-c:v",
        "dpx",
        "-pix_fmt",
        "gbrp10le",
        "-start_number",
        "1001",
        seq.join("S.%04d.dpx").to_str().unwrap(),
    ]);
    std::fs::write(seq.join("S.1003.dpx"), b"not a dpx").unwrap();
    let frames: Vec<(u64, FrameFile)> =
        (1001..=1006).filter(|n| *n != 1005).map(|n| (n, FrameFile::Path(seq.join(format!("S.{n}.dpx"))))).collect();
    let src = Source::Sequence(SequenceSource { ext: "dpx".into(), frames });
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (files, stats) = render(&src, &Default::default(), &out, &opts(&[Rung::Editorial, Rung::Thumb])).expect("render");
    // 1001..1006 with 1005 missing and 1003 damaged: six frames, partial from the third.
    assert_eq!(stats.frames, 6);
    assert_eq!(stats.partial_at, Some(2));
    let notes = stats.notes.join("; ");
    assert!(notes.contains("1005") && notes.contains("1003") && notes.contains("24 fps assumed"), "{notes}");
    let ed = files.iter().find(|f| f.profile == "editorial").unwrap();
    let e = ffprobe(&ed.path, "stream=nb_read_frames,r_frame_rate,color_space");
    assert!(e.contains("nb_read_frames=6") && e.contains("r_frame_rate=24/1") && e.contains("color_space=bt709"), "{e}");
}

// ---- through an archive: `proxy::run`, storage, and the mount's `.proxy/` namespace ----

mod archive_level {
    use super::*;
    use reelfs::archive::ingest::{self, IngestOptions};
    use reelfs::archive::Archive;
    use reelfs::fs::core::{FsCore, FsError, FsOptions};
    use reelfs::fs::inodes::ROOT_INO;
    use reelfs::media::proxy::run::{self as proxy_run, ProxyRunOptions};

    fn ingest_into(root: &Path, src: &Path) {
        let mut a = Archive::open_writer(root).unwrap();
        let opts = IngestOptions {
            branch: "main".into(),
            dest: "Day01".into(),
            message: Some("cards".into()),
            progress: Default::default(),
            prober: Some(probe::probe_for_ingest),
            interrupt: Arc::new(AtomicBool::new(false)),
        };
        let rep = ingest::ingest(&mut a, &[src.to_path_buf()], &opts).unwrap();
        assert!(rep.failed.is_empty(), "{:?}", rep.failed);
    }

    fn run_opts(rungs: &[Rung]) -> ProxyRunOptions {
        ProxyRunOptions {
            specs: Vec::new(),
            rungs: rungs.to_vec(),
            jobs: 2,
            progress: Default::default(),
            interrupt: Arc::new(AtomicBool::new(false)),
            on_done: None,
        }
    }

    fn path_ino(core: &FsCore, path: &str) -> Result<u64, FsError> {
        let mut ino = ROOT_INO;
        for part in path.split('/') {
            ino = core.lookup(ino, part)?.ino;
        }
        Ok(ino)
    }

    #[test]
    fn run_stores_proxies_once_and_the_mount_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let card = dir.path().join("card");
        std::fs::create_dir(&card).unwrap();
        let clip = small_clip(&card);
        let plates = card.join("plates");
        std::fs::create_dir(&plates).unwrap();
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=24",
            "-frames:v",
            "3",
            "-c:v",
            "dpx",
            "-start_number",
            "7",
            plates.join("P_%03d.dpx").to_str().unwrap(),
        ]);
        std::fs::write(card.join("notes.txt"), b"call sheet").unwrap();
        let root = dir.path().join("archive");
        Archive::init(&root).unwrap();
        ingest_into(&root, &card);

        let rep = proxy_run::run(&root, run_opts(&[Rung::Thumb, Rung::Editorial])).unwrap();
        let mut rendered: Vec<&str> = rep.rendered.iter().map(|r| r.path.as_str()).collect();
        rendered.sort();
        assert_eq!(rendered, ["main/Day01/card/clip.mov", "main/Day01/card/plates/P_%03d.dpx"]);
        assert!(rep.skipped.iter().any(|(p, why)| p.ends_with("notes.txt") && why.contains("not media")), "{:?}", rep.skipped);
        assert!(rep.failed.is_empty() && !rep.interrupted);
        // Everything stored: a second run renders nothing.
        let again = proxy_run::run(&root, run_opts(&[Rung::Thumb, Rung::Editorial])).unwrap();
        assert!(again.rendered.is_empty() && again.up_to_date == 2, "{again:?}");
        assert!(proxy_run::parse_rungs("thumb,poster").unwrap_err().contains("poster"));

        let a = Archive::open(&root).unwrap();
        let src = std::fs::read(&clip).unwrap();
        assert!(a.catalog.has_proxy(&reelfs::archive::Hash::of(&src), "editorial", Rung::Editorial.settings_version()).unwrap());
        let core = FsCore::new(a, FsOptions::default());
        let card_ino = path_ino(&core, "main/Day01/card").unwrap();
        assert!(core.readdir(card_ino).unwrap().iter().any(|(n, _)| n == ".proxy"));
        let ed = path_ino(&core, "main/Day01/card/.proxy/editorial/clip.mov").unwrap();
        let attr = core.getattr(ed).unwrap();
        assert!(attr.size > 0);
        let fh = core.open(ed, false).unwrap();
        assert_eq!(&core.read(fh, 4, 4).unwrap()[..], b"ftyp");
        let source = core.getxattr(ed, "user.reelfs.source").unwrap();
        assert_eq!(String::from_utf8_lossy(&source), "main/Day01/card/clip.mov");
        // The sequence: one proxy under its stem, its pattern as the source.
        let profiles: Vec<String> =
            core.readdir(path_ino(&core, "main/Day01/card/plates/.proxy").unwrap()).unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(profiles, ["editorial", "thumb"]);
        let seq = path_ino(&core, "main/Day01/card/plates/.proxy/editorial/P.mov").unwrap();
        assert_eq!(String::from_utf8_lossy(&core.getxattr(seq, "user.reelfs.source").unwrap()), "main/Day01/card/plates/P_%03d.dpx");
        // What was not rendered is absent, and a proxy is read-only.
        assert!(matches!(path_ino(&core, "main/Day01/card/.proxy/preview"), Err(FsError::NotFound)));
        assert!(matches!(path_ino(&core, "main/Day01/card/.proxy/editorial/nope.mov"), Err(FsError::NotFound)));
        assert!(core.open(ed, true).is_err());
    }
}
