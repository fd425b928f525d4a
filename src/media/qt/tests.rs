//! End-to-end checks of slices against real ffmpeg-written media. The media is generated
//! once with the ffmpeg CLI into `$REELFS_QT_MEDIA` (default: a cache folder under the
//! system temp dir) and reused across runs.
//!
//! Every slice is written out through `VirtualFile::read_at` and then judged by third-party
//! tools only (ffmpeg, ffprobe, mediainfo), never by re-reading our own tables.

use super::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

fn media_dir() -> PathBuf {
    std::env::var_os("REELFS_QT_MEDIA").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("reelfs-qt-test-media-v2"))
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is ffmpeg/mediainfo installed?)"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

pub(super) fn sh(args: &[&str]) -> String {
    String::from_utf8_lossy(&run(Command::new(args[0]).args(&args[1..]))).into_owned()
}

/// ffmpeg argument lists (after `ffmpeg -y`, before the output path) for each test clip.
fn recipe(name: &str) -> Vec<String> {
    let s = |v: &str| v.split(' ').map(String::from).collect::<Vec<_>>();
    match name {
        // ProRes 422 HQ 1080p 23.976, tmcd 01:00:00:00 + reel, 8 mono s24le tracks, bt709.
        "prores.mov" => {
            let mut a = s("-f lavfi -i testsrc2=size=1920x1080:rate=24000/1001:duration=2");
            for i in 0..8 {
                a.extend(s(&format!("-f lavfi -i sine=frequency={}:sample_rate=48000:duration=2", 200 + i * 110)));
            }
            a.extend(s("-map 0:v"));
            for i in 1..=8 {
                a.extend(s(&format!("-map {i}:a")));
            }
            a.extend(s("-vf setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709 -c:v prores_ks -profile:v 3 -vendor apl0 -pix_fmt yuv422p10le -c:a pcm_s24le -timecode 01:00:00:00 -metadata:s:v:0 reel_name=A001C003 -shortest"));
            a
        }
        // 29.97 drop frame, interlaced small ProRes (fiel), 10:11 pixels (pasp), stereo s16.
        "df.mov" => {
            let mut a = s("-f lavfi -i testsrc2=size=352x240:rate=30000/1001:duration=3 -f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 -filter_complex [1:a][1:a]join=inputs=2:channel_layout=stereo[a] -map 0:v -map [a] -vf setsar=10/11,setparams=color_primaries=smpte170m:color_trc=bt709:colorspace=smpte170m -c:v prores_ks -profile:v 0 -flags +ildct+ilme -top 1 -c:a pcm_s16le");
            a.extend(["-timecode".into(), "01:00:59;28".into()]);
            a.extend(s("-metadata:s:v:0 reel_name=B002"));
            a
        }
        // DNxHD 720p25, moov first.
        "dnxhd.mov" => s("-f lavfi -i testsrc2=size=1280x720:rate=25:duration=2 -f lavfi -i sine=frequency=300:sample_rate=48000:duration=2 -c:v dnxhd -b:v 60M -pix_fmt yuv422p -c:a pcm_s24le -timecode 10:00:00:00 -movflags +faststart"),
        // H.264 long GOP (12, 3 B-frames) 25p + AAC, in MOV (tmcd) and MP4 (no tmcd).
        "h264.mov" => s("-f lavfi -i testsrc2=size=320x240:rate=25:duration=4 -f lavfi -i sine=frequency=500:sample_rate=48000:duration=4 -c:v libx264 -preset veryfast -g 12 -bf 3 -pix_fmt yuv420p -c:a aac -b:a 96k -timecode 02:00:00:00"),
        "h264fs.mov" => s("-f lavfi -i testsrc2=size=320x240:rate=25:duration=4 -f lavfi -i sine=frequency=500:sample_rate=48000:duration=4 -c:v libx264 -preset veryfast -g 12 -bf 3 -pix_fmt yuv420p -c:a aac -b:a 96k -timecode 02:00:00:00 -movflags +faststart"),
        "h264.mp4" => s("-f lavfi -i testsrc2=size=320x240:rate=25:duration=4 -f lavfi -i sine=frequency=500:sample_rate=44100:duration=4 -c:v libx264 -preset veryfast -g 12 -bf 3 -pix_fmt yuv420p -c:a aac -b:a 96k"),
        // Tiny clips (64x64, a second or two) for the fast slice tests in slice.rs, which
        // scripts/mutants runs on every mutant: the same checks as above in a fraction of
        // the time. ProRes 23.976 with two PCM tracks at different rates, tmcd and reel.
        "tiny-prores.mov" => s("-f lavfi -i testsrc2=size=64x64:rate=24000/1001:duration=1 -f lavfi -i sine=frequency=300:sample_rate=48000:duration=1 -f lavfi -i sine=frequency=500:sample_rate=44100:duration=1 -map 0:v -map 1:a -map 2:a -c:v prores_ks -profile:v 0 -c:a pcm_s24le -timecode 01:00:00:00 -metadata:s:v:0 reel_name=T001 -shortest"),
        // 29.97 drop frame starting 4 frames before midnight (the 24-hour wrap).
        "tiny-df.mov" => {
            let mut a = s("-f lavfi -i testsrc2=size=64x64:rate=30000/1001:duration=0.4 -f lavfi -i sine=frequency=440:sample_rate=48000:duration=0.4 -c:v prores_ks -profile:v 0 -c:a pcm_s16le");
            a.extend(["-timecode".into(), "23:59:59;26".into()]);
            a
        }
        // H.264 long GOP with B-frames + AAC, in MOV (tmcd) and MP4 (none).
        "tiny-h264.mov" => s("-f lavfi -i testsrc2=size=64x64:rate=25:duration=2 -f lavfi -i sine=frequency=500:sample_rate=48000:duration=2 -c:v libx264 -preset veryfast -g 12 -bf 3 -pix_fmt yuv420p -c:a aac -b:a 64k -timecode 02:00:00:00"),
        "tiny-h264.mp4" => s("-f lavfi -i testsrc2=size=64x64:rate=25:duration=2 -f lavfi -i sine=frequency=500:sample_rate=44100:duration=2 -c:v libx264 -preset veryfast -g 12 -bf 3 -pix_fmt yuv420p -c:a aac -b:a 64k"),
        // Open GOP (b-adapt off makes x264 code the B-frames shown before each I-frame
        // after it, referencing the GOP before): leading pictures.
        "tiny-opengop.mov" => s("-f lavfi -i testsrc2=size=64x64:rate=25:duration=2 -c:v libx264 -preset veryfast -x264opts open_gop=1:keyint=12:min-keyint=12:scenecut=0:bframes=3:b-pyramid=none:b-adapt=0 -pix_fmt yuv420p -timecode 03:00:00:00"),
        // 8-bit mono PCM: one byte per sample, as legacy QuickTime sizes compressed audio.
        "tiny-u8.mov" => s("-f lavfi -i testsrc2=size=64x64:rate=25:duration=1 -f lavfi -i sine=frequency=440:sample_rate=22050:duration=1 -c:v prores_ks -profile:v 0 -c:a pcm_u8 -ac 1"),
        // Variable frame rate: 12 frames at 25 fps, then 6 at 12.5 fps (ProRes, no B-frames).
        "tiny-vfr.mov" => s("-f lavfi -i testsrc2=size=64x64:rate=25:duration=0.72 -vf setpts=if(lt(N\\,12)\\,N\\,2*N-12)/25/TB -fps_mode passthrough -c:v prores_ks -profile:v 0"),
        _ => panic!("no recipe for {name}"),
    }
}

pub(super) fn media(name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = media_dir();
    let path = dir.join(name);
    if !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("tmp-{}-{name}", std::process::id()));
        let mut c = Command::new("ffmpeg");
        c.args(["-hide_banner", "-loglevel", "error", "-y"]).args(recipe(name)).arg(&tmp);
        run(&mut c);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

pub(super) fn write_virtual(vf: &VirtualFile, src: &dyn ReadAt) -> tempfile::NamedTempFile {
    let mut out = tempfile::Builder::new().suffix(".mov").tempfile().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < vf.len {
        let n = vf.read_at(src, off, &mut buf).unwrap();
        assert!(n > 0, "virtual file ended at {off} of {}", vf.len);
        out.write_all(&buf[..n]).unwrap();
        off += n as u64;
    }
    assert_eq!(vf.read_at(src, vf.len, &mut buf).unwrap(), 0);
    out.flush().unwrap();
    out
}

/// Per-frame hashes of the video stream (hashes only: pts legitimately differ).
pub(super) fn video_md5s(p: &Path) -> Vec<String> {
    let out = sh(&["ffmpeg", "-v", "error", "-i", p.to_str().unwrap(), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", "-"]);
    out.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.rsplit(',').next()).map(|s| s.trim().to_string()).collect()
}

pub(super) fn source_md5s(p: &Path) -> Vec<String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Vec<String>>>> = OnceLock::new();
    let c = CACHE.get_or_init(Default::default);
    if let Some(v) = c.lock().unwrap().get(p) {
        return v.clone();
    }
    let v = video_md5s(p);
    c.lock().unwrap().insert(p.to_path_buf(), v.clone());
    v
}

/// ffprobe's streams as key=value maps (tags as `TAG:name`).
pub(super) fn streams(p: &Path, count_frames: bool) -> Vec<HashMap<String, String>> {
    let mut args = vec!["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "flat=s=|"];
    if count_frames {
        args.extend(["-count_frames", "-select_streams", "v"]);
    }
    args.push(p.to_str().unwrap());
    let out = sh(&args);
    let mut v: Vec<HashMap<String, String>> = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("streams|stream|") else {
            continue;
        };
        let (idx, kv) = rest.split_once('|').unwrap();
        let idx: usize = idx.parse().unwrap();
        let (k, val) = kv.split_once('=').unwrap();
        while v.len() <= idx {
            v.push(HashMap::new());
        }
        v[idx].insert(k.replace("tags|", "TAG:"), val.trim_matches('"').to_string());
    }
    v
}

/// SMPTE label of a frame count, written independently of the module under test.
pub(super) fn tc_label(frame: u64, fps: u64, drop: bool) -> String {
    let mut f = frame;
    if drop {
        let d = fps / 15; // labels dropped per minute
        let per10 = fps * 600 - d * 9;
        let per1 = fps * 60 - d;
        let (tens, rem) = (f / per10, f % per10);
        f += d * 9 * tens + if rem > d { d * ((rem - d) / per1) } else { 0 };
    }
    let (h, m, s, ff) = (f / (fps * 3600) % 24, f / (fps * 60) % 60, f / fps % 60, f % fps);
    format!("{h:02}:{m:02}:{s:02}{}{ff:02}", if drop { ';' } else { ':' })
}

pub(super) fn mediainfo_tc(p: &Path) -> Option<String> {
    let out = sh(&["mediainfo", "--Output=JSON", p.to_str().unwrap()]);
    let i = out.find("\"TimeCode_FirstFrame\"")? + "\"TimeCode_FirstFrame\"".len();
    Some(out[i..].split('"').nth(1)?.to_string())
}

/// Decoded audio of stream `n` (optionally trimmed to samples `[s0, s1)`), hashed.
pub(super) fn audio_md5(p: &Path, n: usize, trim: Option<(u64, u64)>) -> String {
    let map = format!("0:a:{n}");
    let mut args = vec!["ffmpeg".to_string(), "-v".into(), "error".into(), "-i".into(), p.to_str().unwrap().into(), "-map".into(), map];
    if let Some((a, b)) = trim {
        args.extend(["-af".into(), format!("atrim=start_sample={a}:end_sample={b}")]);
    }
    args.extend(["-c:a", "pcm_s32le", "-f", "md5", "-"].map(String::from));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    sh(&a).trim().to_string()
}

pub(super) fn audio_s16(p: &Path, n: usize) -> Vec<i16> {
    let out = run(Command::new("ffmpeg").args([
        "-v",
        "error",
        "-i",
        p.to_str().unwrap(),
        "-map",
        &format!("0:a:{n}"),
        "-ac",
        "1",
        "-c:a",
        "pcm_s16le",
        "-f",
        "s16le",
        "-",
    ]));
    out.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Plans, writes and checks one slice against the source with ffmpeg/ffprobe/mediainfo.
fn check_slice(name: &str, first: u64, end: u64) {
    check_slice_with(name, first, end, false)
}

pub(super) fn check_slice_with(name: &str, first: u64, end: u64, force_large: bool) {
    let path = media(name);
    let src = std::fs::File::open(&path).unwrap();
    let info = read_movie(&src).unwrap();
    let vf = slice::plan_with(&src, first, end, force_large).unwrap();
    let ctx = format!("{name} [{first}, {end})");

    // Shape: Inline(ftyp+moov+mdat header[+tmcd]) then one Source range.
    assert_eq!(vf.segments.len(), 2, "{ctx}");
    assert!(matches!(vf.segments[0], Segment::Inline(_)) && matches!(vf.segments[1], Segment::Source { .. }), "{ctx}");
    assert_eq!(vf.len, vf.segments.iter().map(|s| s.len()).sum::<u64>());
    let Segment::Inline(head) = &vf.segments[0] else { unreachable!() };
    let moov_at = head.windows(4).position(|w| w == b"moov").unwrap();
    let mdat_at = head.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov_at < mdat_at, "{ctx}: moov must precede mdat");
    if let Some(Segment::Source { len, .. }) = vf.segments.get(1) {
        assert!(*len < src.metadata().unwrap().len());
    }

    let out = write_virtual(&vf, &src);
    let op = out.path();
    check_structure(&std::fs::File::open(op).unwrap()).unwrap();

    // Pictures: identical decoded frames, exactly end - first of them.
    let want = &source_md5s(&path)[first as usize..end as usize];
    let got = video_md5s(op);
    assert_eq!(got.len(), want.len(), "{ctx}: frame count");
    assert!(got == want, "{ctx}: decoded frames differ");
    let sv = streams(op, true);
    assert_eq!(sv[0].get("nb_read_frames").map(String::as_str), Some(&*(end - first).to_string()), "{ctx}");

    // Stream properties carried by the sample description and headers.
    let ss = streams(&path, false);
    let sl = streams(op, false);
    for k in [
        "codec_name",
        "width",
        "height",
        "color_primaries",
        "color_transfer",
        "color_space",
        "sample_aspect_ratio",
        "field_order",
        "pix_fmt",
    ] {
        assert_eq!(ss[0].get(k), sl[0].get(k), "{ctx}: video {k}");
    }

    // Timecode and reel.
    match &info.timecode {
        Some(tc) => {
            let label = tc_label(tc.start_frame as u64 + first, tc.fps as u64, tc.drop_frame);
            assert_eq!(sl[0].get("TAG:timecode"), Some(&label), "{ctx}: ffprobe timecode");
            let tmcd = sl.iter().find(|s| s.get("codec_tag_string").map(String::as_str) == Some("tmcd")).expect("tmcd stream");
            assert_eq!(tmcd.get("TAG:reel_name"), tc.reel.as_ref(), "{ctx}: reel");
            assert_eq!(mediainfo_tc(op).as_deref(), Some(label.as_str()), "{ctx}: mediainfo timecode");
            let again = read_movie(&std::fs::File::open(op).unwrap()).unwrap();
            let t2 = again.timecode.unwrap();
            assert_eq!((t2.start_frame, t2.flags, t2.fps, t2.reel), (tc.start_frame + first as u32, tc.flags, tc.fps, tc.reel.clone()));
            assert_eq!(again.video_frame_count, end - first);
        }
        None => {
            assert!(sl.iter().all(|s| !s.contains_key("TAG:timecode")), "{ctx}: no timecode invented");
        }
    }

    // Length: what an NLE shows as the clip's duration (mvhd, in the movie's timescale) is
    // the frames' time, off by less than one audio sample (a track's cut is whole samples).
    {
        let (vts, fd) = info.video_frame_duration;
        let sliced = read_movie(&std::fs::File::open(op).unwrap()).unwrap();
        let rate = info.tracks.iter().filter(|t| t.kind == TrackKind::Audio).map(|t| t.sample_rate).max();
        // |duration / ts - frames * fd / vts| < 1 / rate, in integers.
        let got = sliced.duration as i128 * vts as i128;
        let want = (end - first) as i128 * fd as i128 * sliced.timescale as i128;
        let within = match rate {
            Some(r) => (got - want).abs() * (r as i128) < sliced.timescale as i128 * vts as i128,
            None => got == want,
        };
        assert!(
            within,
            "{ctx}: the slice lasts {}/{} s, its frames {}/{vts} s",
            sliced.duration,
            sliced.timescale,
            (end - first) * fd as u64
        );
    }

    // Audio: PCM sample-exact against the source trimmed at floor(frame * rate * fd / ts).
    let (vts, fd) = info.video_frame_duration;
    let audio: Vec<&TrackInfo> = info.tracks.iter().filter(|t| t.kind == TrackKind::Audio).collect();
    let sl_audio = sl.iter().filter(|s| s.get("codec_type").map(String::as_str) == Some("audio")).count();
    assert_eq!(sl_audio, audio.len(), "{ctx}: audio track count");
    for (n, t) in audio.iter().enumerate() {
        let rate = t.sample_rate as u64;
        let s0 = first * rate * fd as u64 / vts as u64;
        let s1 = end * rate * fd as u64 / vts as u64;
        if t.codec == "mp4a" {
            // Coded audio is packet-cut and trimmed by the edit list. ffmpeg applies the
            // start trim (skip_samples) but not the end of the edit, so the decode runs
            // on to the end of the last packet. A decoder started one packet early differs
            // from the continuous decode by a few LSB (window/noise state); a shift of
            // even one sample of the 500 Hz test tone would differ by ~270.
            let got = audio_s16(op, n);
            let whole = audio_s16(&path, n);
            let want = (s1 - s0) as usize;
            assert!(got.len() >= want && got.len() <= want + 1024, "{ctx}: AAC track {n} decoded {} samples, want {want}", got.len());
            let reference = &whole[s0 as usize..(s1 as usize).min(whole.len())];
            let worst = got.iter().zip(reference).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap_or(0);
            assert!(worst <= 32, "{ctx}: AAC track {n} is misaligned (max sample difference {worst})");
        } else {
            let s1 = s1.min(t.sample_count);
            assert_eq!(audio_md5(op, n, None), audio_md5(&path, n, Some((s0, s1))), "{ctx}: PCM track {n} samples {s0}..{s1}");
            // And the track holds exactly those samples: an NLE that ignores edit lists
            // (many do for PCM) plays every sample the track has.
            let sliced = read_movie(&std::fs::File::open(op).unwrap()).unwrap();
            let held = sliced.tracks.iter().filter(|t| t.kind == TrackKind::Audio).nth(n).unwrap().sample_count;
            assert_eq!(held, s1 - s0, "{ctx}: PCM track {n} holds {held} samples");
        }
    }
}

#[test]
fn prores_pcm_tmcd_slices() {
    let p = media("prores.mov");
    let info = read_movie(&std::fs::File::open(&p).unwrap()).unwrap();
    assert_eq!(info.video_frame_count, 48);
    assert_eq!(info.video_frame_duration, (24000, 1001));
    let tc = info.timecode.clone().unwrap();
    assert_eq!((tc.start_frame, tc.fps, tc.drop_frame, tc.reel.as_deref()), (86400, 24, false, Some("A001C003")));
    assert_eq!(info.tracks.iter().filter(|t| t.kind == TrackKind::Audio && t.codec == "in24").count(), 8);
    assert!(!info.moov_first);
    check_slice("prores.mov", 0, 1);
    check_slice("prores.mov", 10, 20);
    check_slice("prores.mov", 47, 48);
}

#[test]
fn drop_frame_interlaced_slices() {
    let info = read_movie(&std::fs::File::open(media("df.mov")).unwrap()).unwrap();
    let tc = info.timecode.clone().unwrap();
    assert!(tc.drop_frame);
    assert_eq!((tc.fps, tc.timescale, tc.frame_duration, tc.reel.as_deref()), (30, 30000, 1001, Some("B002")));
    // Starts at 01:00:59;28, so frame 2 is 01:01:00;02 (;00 and ;01 are skipped labels).
    assert_eq!(tc_label(tc.start_frame as u64 + 2, 30, true), "01:01:00;02");
    check_slice("df.mov", 2, 33);
    check_slice("df.mov", 89, 90);
}

#[test]
fn dnxhd_moov_first_slices() {
    let info = read_movie(&std::fs::File::open(media("dnxhd.mov")).unwrap()).unwrap();
    assert!(info.moov_first);
    check_slice("dnxhd.mov", 0, 50);
    check_slice("dnxhd.mov", 3, 13);
    check_slice("dnxhd.mov", 49, 50);
}

#[test]
fn h264_mov_long_gop_slices() {
    let info = read_movie(&std::fs::File::open(media("h264.mov")).unwrap()).unwrap();
    assert_eq!(info.video_frame_count, 100);
    check_slice("h264.mov", 0, 1);
    check_slice("h264.mov", 17, 30); // starts mid-GOP, B-frames on both ends
    check_slice("h264.mov", 14, 15); // a single B-frame
    check_slice("h264.mov", 99, 100);
}

#[test]
fn h264_mp4_and_faststart_slices() {
    let info = read_movie(&std::fs::File::open(media("h264.mp4")).unwrap()).unwrap();
    assert!(info.timecode.is_none());
    assert!(read_movie(&std::fs::File::open(media("h264fs.mov")).unwrap()).unwrap().moov_first);
    check_slice("h264.mp4", 0, 1);
    check_slice("h264.mp4", 17, 30);
    check_slice("h264.mp4", 99, 100);
    check_slice("h264fs.mov", 23, 61);
}

#[test]
fn large_layout_co64_and_64bit_mdat() {
    check_slice_with("h264.mov", 17, 30, true);
    check_slice_with("df.mov", 5, 20, true);
    let f = std::fs::File::open(media("df.mov")).unwrap();
    let vf = slice::plan_with(&f, 5, 20, true).unwrap();
    let Segment::Inline(head) = &vf.segments[0] else { panic!() };
    assert!(head.windows(4).any(|w| w == b"co64") && !head.windows(4).any(|w| w == b"stco"));
    let at = head.windows(4).position(|w| w == b"mdat").unwrap();
    assert_eq!(&head[at - 4..at], &1u32.to_be_bytes());
}

#[test]
fn range_errors() {
    let f = std::fs::File::open(media("h264fs.mov")).unwrap();
    for (a, b) in [(5, 5), (6, 5), (99, 101), (100, 101)] {
        match plan_slice(&f, a, b) {
            Err(QtError::Range { frames: 100, .. }) => {}
            other => panic!("{a}..{b}: {other:?}"),
        }
    }
}

#[test]
fn truncated_and_foreign_files() {
    // moov at the end (ffmpeg's default) cut in half: no moov, mdat past EOF.
    let bytes = std::fs::read(media("h264.mov")).unwrap();
    let half = bytes[..bytes.len() / 2].to_vec();
    let e = check_structure(&half).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, QtError::Truncated(_)), "{msg}");
    assert!(msg.contains("box 'mdat' at offset 28 declares") && msg.contains(&format!("file ends at {}", half.len())), "{msg}");
    assert!(matches!(read_movie(&half), Err(QtError::Truncated(_))));
    assert!(matches!(plan_slice(&half, 0, 1), Err(QtError::Truncated(_))));
    assert!(check_structure(&bytes).is_ok());

    // moov first, cut inside the mdat: the header reads, slices needing lost bytes fail.
    let fs = std::fs::read(media("h264fs.mov")).unwrap();
    let cut = fs[..fs.len() * 3 / 4].to_vec();
    assert!(matches!(check_structure(&cut), Err(QtError::Truncated(_))));
    assert_eq!(read_movie(&cut).unwrap().video_frame_count, 100);
    assert!(plan_slice(&cut, 0, 5).is_ok());
    let e = plan_slice(&cut, 90, 100).unwrap_err();
    assert!(matches!(e, QtError::Truncated(_)), "{e}");

    // Not QuickTime at all.
    for junk in [b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec(), b"hello world, this is text".to_vec(), vec![0u8; 3], Vec::new()] {
        let e = read_movie(&junk).unwrap_err();
        assert!(matches!(e, QtError::NotQuickTime(_)), "{e}");
        assert!(plan_slice(&junk, 0, 1).is_err());
    }
}

/// Corrupting header bytes must give errors, never panics or huge allocations.
#[test]
fn corrupt_moov_never_panics() {
    let orig = std::fs::read(media("h264fs.mov")).unwrap();
    let moov = orig.windows(4).position(|w| w == b"moov").unwrap() - 4;
    let moov_len = u32::from_be_bytes(orig[moov..moov + 4].try_into().unwrap()) as usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..400 {
        let mut b = orig.clone();
        for _ in 0..1 + i % 4 {
            let at = moov + (next() as usize % moov_len);
            b[at] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                _ => next() as u8,
            };
        }
        if let Ok(info) = read_movie(&b) {
            let n = info.video_frame_count;
            if n > 0 {
                if let Ok(vf) = plan_slice(&b, n / 3, n / 3 + 1 + n / 4) {
                    let mut buf = vec![0u8; 4096];
                    let _ = vf.read_at(&b, 0, &mut buf);
                }
            }
        }
    }
    for len in (0..orig.len()).step_by(997) {
        let _ = read_movie(&orig[..len].to_vec());
        let _ = plan_slice(&orig[..len].to_vec(), 0, 1);
        let _ = check_structure(&orig[..len].to_vec());
    }
}

#[test]
fn virtual_file_reads_across_segments() {
    let src: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let vf = VirtualFile {
        segments: vec![Segment::Inline(std::sync::Arc::from(&b"header!"[..])), Segment::Source { offset: 1234, len: 5000 }],
        len: 5007,
    };
    let mut whole = vec![0u8; 6000];
    assert_eq!(vf.read_at(&src, 0, &mut whole).unwrap(), 5007);
    assert_eq!(&whole[..7], b"header!");
    assert_eq!(&whole[7..5007], &src[1234..6234]);
    for (off, n) in [(0u64, 3usize), (5, 7), (6, 1), (7, 9), (4999, 100), (5006, 10), (5007, 10)] {
        let mut b = vec![0u8; n];
        let got = vf.read_at(&src, off, &mut b).unwrap();
        let end = (off as usize + n).min(5007);
        assert_eq!(got, end.saturating_sub(off as usize));
        assert_eq!(&b[..got], &whole[off as usize..end]);
    }
    // A source that shrank after planning is an error, not silent zeros.
    let short = src[..2000].to_vec();
    assert!(vf.read_at(&short, 0, &mut whole).is_err());
}

#[test]
fn label_helper_is_right() {
    assert_eq!(tc_label(0, 30, true), "00:00:00;00");
    assert_eq!(tc_label(1800, 30, true), "00:01:00;02");
    assert_eq!(tc_label(17982, 30, true), "00:10:00;00");
    assert_eq!(tc_label(107892, 30, true), "01:00:00;00");
    assert_eq!(tc_label(86400, 24, false), "01:00:00:00");
    assert_eq!(frames_per_day(30, true), 107892 * 24);
}

/// A slice with a recorded start timecode: a source without a tmcd track (MP4 from a
/// phone) gets a new one that ffprobe and MediaInfo read; a source with one has its
/// sample replaced. Frames are untouched either way.
#[test]
fn recorded_timecode_in_slices() {
    let start = |value| TcStart { value, rate_num: 25, rate_den: 1, fps: 25, drop_frame: false };
    for (name, value, label) in [("h264.mp4", 90_000 + 17, "01:00:00:17"), ("h264.mov", 250_000 + 5, "02:46:40:05")] {
        let path = media(name);
        let src = std::fs::File::open(&path).unwrap();
        let vf = plan_slice_with_tc(&src, 17, 30, Some(start(value))).unwrap();
        let mut out = vec![0u8; vf.len as usize];
        assert_eq!(vf.read_at(&src, 0, &mut out).unwrap(), out.len());
        let info = read_movie(&out).unwrap();
        let tc = info.timecode.expect("the slice has a timecode track");
        // A new track counts 25/1; the MOV keeps its own entry (12800/512, also 25 fps).
        assert_eq!((tc.start_frame, tc.fps, tc.timescale / tc.frame_duration), (value, 25, 25), "{name}");
        let p = std::env::temp_dir().join(format!("reelfs-tc-{}-{name}", std::process::id()));
        std::fs::write(&p, &out).unwrap();
        let probed = sh(&["ffprobe", "-v", "error", "-show_entries", "stream_tags=timecode", "-of", "csv=p=0", p.to_str().unwrap()]);
        assert!(probed.lines().any(|l| l.trim() == label), "{name}: ffprobe says {probed:?}");
        assert_eq!(mediainfo_tc(&p).as_deref(), Some(label), "{name}");
        let frames = |f: &Path| {
            sh(&["ffmpeg", "-v", "error", "-i", f.to_str().unwrap(), "-map", "0:v:0", "-f", "framemd5", "-"])
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.rsplit(',').next().unwrap_or("").trim().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(frames(&p), frames(&path)[17..30].to_vec(), "{name}");
        let _ = std::fs::remove_file(&p);
    }
    // Counted at another rate than the file's own tmcd (24 vs 25 fps): a new track
    // replaces the file's, so the label is read at the recorded rate.
    let src = std::fs::File::open(media("h264.mov")).unwrap();
    let t24 = TcStart { value: 86_400, rate_num: 24, rate_den: 1, fps: 24, drop_frame: false };
    let vf = plan_slice_with_tc(&src, 0, 10, Some(t24)).unwrap();
    let mut out = vec![0u8; vf.len as usize];
    vf.read_at(&src, 0, &mut out).unwrap();
    let info = read_movie(&out).unwrap();
    let tc = info.timecode.unwrap();
    assert_eq!((tc.start_frame, tc.fps, tc.timescale, tc.frame_duration), (86_400, 24, 24, 1));
    assert_eq!(info.tracks.iter().filter(|t| t.kind == TrackKind::Timecode).count(), 1);
}

/// Presentation times of the displayed frames, as ffprobe reads them: its packets' pts in
/// the stream's time base (the media timescale, edit list applied), sorted into display
/// order. B-frames (cts out of decode order, an edit list shifting the first to zero) and
/// a variable frame rate (uneven steps).
#[test]
fn frame_times_are_ffprobes_pts() {
    for (name, frames) in [("tiny-h264.mov", 50), ("tiny-vfr.mov", 18)] {
        let path = media(name);
        let entries = "stream=time_base:packet=pts";
        let out =
            sh(&["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "csv=p=0", path.to_str().unwrap()]);
        let mut lines: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let base = lines.iter().position(|l| l.starts_with("1/")).unwrap_or_else(|| panic!("{name}: no time base in {out}"));
        let timescale: u32 = lines.remove(base)[2..].parse().unwrap();
        let mut pts: Vec<i64> = lines.iter().map(|l| l.parse().unwrap()).collect();
        pts.sort_unstable();
        assert_eq!(pts.len(), frames, "{name}: {out}");

        let (times, scale) = frame_times(&std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(scale, timescale, "{name}");
        assert_eq!(times, pts, "{name}");
        assert_eq!(times[0], 0, "{name}");
    }
    // The VFR clip's steps really are uneven: one frame time apart, then two.
    let (times, _) = frame_times(&std::fs::File::open(media("tiny-vfr.mov")).unwrap()).unwrap();
    assert_eq!(times[12] - times[11], times[1] - times[0]);
    assert_eq!(times[14] - times[13], 2 * (times[1] - times[0]));
}

/// Each display frame's sample lies where ffprobe finds that frame's packet (its `pos`
/// and `size`), the packets taken in presentation order: with B-frames that is not the
/// order they are stored in.
#[test]
fn frame_sample_is_ffprobes_packet() {
    let path = media("tiny-h264.mov");
    let entries = "packet=pts,pos,size";
    let out =
        sh(&["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "compact=p=0", path.to_str().unwrap()]);
    let mut packets: Vec<(i64, u64, u64)> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let kv: HashMap<&str, &str> = l.trim().split('|').filter_map(|f| f.split_once('=')).collect();
            (kv["pts"].parse().unwrap(), kv["pos"].parse().unwrap(), kv["size"].parse().unwrap())
        })
        .collect();
    packets.sort_unstable();
    assert_eq!(packets.len(), 50, "{out}");
    assert!(packets.windows(2).any(|p| p[1].1 < p[0].1), "B-frames store frames out of display order");

    let src = std::fs::File::open(&path).unwrap();
    for (frame, &(_, pos, size)) in packets.iter().enumerate() {
        assert_eq!(frame_sample(&src, frame as u64).unwrap(), (pos, size), "display frame {frame}");
    }
    match frame_sample(&src, 50) {
        Err(QtError::Range { first: 50, end: 51, frames: 50 }) => {}
        other => panic!("frame 50 of 50: {other:?}"),
    }
}
