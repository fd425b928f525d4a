//! The fragment index against a hand-built fMP4 (every field known) and
//! against ffmpeg's own output (judged by ffprobe, not by our reader); the
//! playlists as text; damaged input as errors, never panics.

use super::*;
use crate::media::qt::boxes::W;
use std::process::Command;

/// A fragmented MP4 as ffmpeg's `frag_keyframe+empty_moov+default_base_moof`
/// writes it: track 1 H.264 at timescale 12800 (512 ticks a frame, 25 fps),
/// track 2 AAC; `frags` fragments of (video samples, first composition offset).
fn fmp4(frags: &[(u32, u32)]) -> Vec<u8> {
    let mut w = W::default();
    w.open(b"ftyp").bytes(b"isom").u32(512).bytes(b"isomiso6").close().unwrap();
    w.open(b"moov");
    for (id, kind, ts) in [(1u32, b"vide", 12800u32), (2, b"soun", 48000)] {
        w.open(b"trak");
        w.open_full(b"tkhd", 0, 3).u32(0).u32(0).u32(id).close().unwrap();
        w.open(b"mdia");
        w.open_full(b"mdhd", 0, 0).u32(0).u32(0).u32(ts).u32(0).u32(0).close().unwrap();
        w.open_full(b"hdlr", 0, 0).u32(0).bytes(kind).u32(0).u32(0).u32(0).bytes(b"\0").close().unwrap();
        w.open(b"minf").open(b"stbl").open_full(b"stsd", 0, 0).u32(1);
        if id == 1 {
            w.open(b"avc1").bytes(&[0; 6]).bytes(&[0, 1]).bytes(&[0; 16]);
            w.bytes(&640u16.to_be_bytes()).bytes(&360u16.to_be_bytes()).bytes(&[0; 50]);
            w.open(b"avcC").bytes(&[1, 0x64, 0x00, 0x1e, 0xff]).close().unwrap();
        } else {
            w.open(b"mp4a").bytes(&[0; 6]).bytes(&[0, 1]).bytes(&[0; 8]);
            w.bytes(&[0, 2, 0, 16, 0, 0, 0, 0]).u32(48000 << 16);
            // esds: ES_Descriptor(ES_ID 2, no flags) > DecoderConfig(0x40 audio) > DSI (AAC-LC: 2 << 3).
            w.open_full(b"esds", 0, 0).bytes(&[0x03, 0x80, 0x80, 0x80, 25, 0, 2, 0]);
            w.bytes(&[0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).bytes(&[0x05, 2, 0x11, 0x90]);
            w.close().unwrap();
        }
        w.close().unwrap(); // sample entry
        w.close().unwrap(); // stsd
        w.close().unwrap(); // stbl
        w.close().unwrap(); // minf
        w.close().unwrap(); // mdia
        w.close().unwrap(); // trak
    }
    w.open(b"mvex");
    w.open_full(b"trex", 0, 0).u32(1).u32(1).u32(0).u32(0).u32(0).close().unwrap();
    w.open_full(b"trex", 0, 0).u32(2).u32(1).u32(1024).u32(0).u32(0).close().unwrap();
    w.close().unwrap();
    w.close().unwrap(); // moov
    let mut t = 0u64;
    for (i, (n, cto)) in frags.iter().enumerate() {
        w.open(b"moof");
        w.open_full(b"mfhd", 0, 0).u32(i as u32 + 1).close().unwrap();
        // Audio first, as ffmpeg may interleave it: the reader must pick the video traf.
        w.open(b"traf");
        w.open_full(b"tfhd", 0, 0x02_0000).u32(2).close().unwrap();
        w.open_full(b"tfdt", 1, 0).u64(t * 48000 / 12800).close().unwrap();
        w.open_full(b"trun", 0, 0x001).u32(3).u32(0).close().unwrap();
        w.close().unwrap();
        w.open(b"traf");
        // default-base-is-moof + default duration 512 + default flags (non-sync).
        w.open_full(b"tfhd", 0, 0x02_0028).u32(1).u32(512).u32(0x0101_0000).close().unwrap();
        w.open_full(b"tfdt", 1, 0).u64(t).close().unwrap();
        // data offset, first sample flags (sync), per-sample size and composition offset.
        w.open_full(b"trun", 0, 0xa05).u32(*n).u32(0).u32(0x0200_0000);
        for k in 0..*n {
            w.u32(100).u32(if k == 0 { *cto } else { 512 });
        }
        w.close().unwrap();
        w.close().unwrap();
        w.close().unwrap(); // moof
        w.open(b"mdat").bytes(&vec![0u8; 100 * *n as usize + 30]).close().unwrap();
        t += u64::from(*n) * 512;
    }
    w.buf
}

#[test]
fn index_reads_fragments_codecs_and_timing_from_the_boxes() {
    let data = fmp4(&[(50, 1024), (50, 1024), (20, 1024)]);
    let ix = index(&data).unwrap();
    assert_eq!(ix.codecs, ["avc1.64001e", "mp4a.40.2"]);
    assert_eq!((ix.width, ix.height, ix.timescale, ix.frame_duration), (640, 360, 12800, 512));
    assert_eq!(ix.frame_rate(), 25.0);
    assert_eq!(ix.frames(), 120);
    let f = &ix.fragments;
    assert_eq!(f.len(), 3);
    assert_eq!(ix.init_len, f[0].offset, "the init segment is everything before the first moof");
    assert_eq!((f[1].first_frame, f[1].frames, f[1].decode_time, f[1].duration), (50, 50, 25600, 25600));
    assert_eq!((f[2].first_frame, f[2].frames), (100, 20));
    assert_eq!(f[0].first_cto, 1024);
    assert!(f.iter().all(|f| f.starts_with_sync));
    // Each segment runs from its moof to the end of its mdat, back to back.
    assert_eq!(f[0].offset + f[0].len, f[1].offset);
    assert_eq!(f[2].offset + f[2].len, data.len() as u64);
}

#[test]
fn media_playlist_lists_every_fragment_by_byte_range() {
    let data = fmp4(&[(50, 1024), (50, 1024), (20, 1024)]);
    let ix = index(&data).unwrap();
    let text = media(&ix, "low.mp4", None).unwrap();
    let f = &ix.fragments;
    let want = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MAP:URI=\"low.mp4\",BYTERANGE=\"{}@0\"\n\
         #EXTINF:2.000000,\n#EXT-X-BYTERANGE:{}@{}\nlow.mp4\n\
         #EXTINF:2.000000,\n#EXT-X-BYTERANGE:{}@{}\nlow.mp4\n\
         #EXTINF:0.800000,\n#EXT-X-BYTERANGE:{}@{}\nlow.mp4\n#EXT-X-ENDLIST\n",
        ix.init_len, f[0].len, f[0].offset, f[1].len, f[1].offset, f[2].len, f[2].offset
    );
    assert_eq!(text, want);
}

#[test]
fn range_playlist_lists_only_covering_segments_and_starts_at_the_in_frame() {
    let data = fmp4(&[(50, 1024), (50, 1024), (50, 1024), (20, 1024)]);
    let ix = index(&data).unwrap();
    // Frames 60..110: segments 1 (50..100) and 2 (100..150).
    let text = media(&ix, "p.mp4", Some(FrameRange { first: 60, end: 110 })).unwrap();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{text}");
    assert_eq!(text.matches("#EXTINF").count(), 2, "{text}");
    assert!(text.contains(&format!("#EXT-X-BYTERANGE:{}@{}\n", ix.fragments[1].len, ix.fragments[1].offset)));
    assert!(text.contains(&format!("#EXT-X-BYTERANGE:{}@{}\n", ix.fragments[2].len, ix.fragments[2].offset)));
    // Frame 60 is the 10th of its segment: 10 x 40 ms, shown 2 frames (1024 ticks) after its decode slot.
    assert!(text.contains("#EXT-X-START:TIME-OFFSET=0.480000,PRECISE=YES\n"), "{text}");
    // An out point on a segment boundary does not pull in the next segment.
    let text = media(&ix, "p.mp4", Some(FrameRange { first: 0, end: 50 })).unwrap();
    assert_eq!(text.matches("#EXTINF").count(), 1);
    assert!(text.contains("TIME-OFFSET=0.080000"));
    // Outside the clip, or empty: an error, not an empty playlist.
    assert!(matches!(media(&ix, "p.mp4", Some(FrameRange { first: 170, end: 180 })), Err(HlsError::Range { frames: 170, .. })));
    assert!(media(&ix, "p.mp4", Some(FrameRange { first: 10, end: 10 })).is_err());
}

#[test]
fn range_offset_is_rounded_up_into_the_frame_at_23976() {
    // 1001/24000 s a frame is not a whole number of microseconds.
    let mut ix = index(&fmp4(&[(48, 0), (48, 0)])).unwrap();
    ix.timescale = 24000;
    ix.frame_duration = 1001;
    let text = media(&ix, "p.mp4", Some(FrameRange { first: 49, end: 60 })).unwrap();
    // Frame 1 of segment 1 starts at 0.0417083.. s: the offset must not fall before it.
    assert!(text.contains("TIME-OFFSET=0.041709,"), "{text}");
}

#[test]
fn master_lists_rungs_cheapest_first_with_measured_bandwidth() {
    let low = index(&fmp4(&[(50, 0), (50, 0)])).unwrap();
    let mut high = index(&fmp4(&[(50, 0), (50, 0)])).unwrap();
    high.width = 1920;
    high.height = 1080;
    for f in &mut high.fragments {
        f.len *= 10;
    }
    let text = master(&[Variant { uri: "hi.m3u8".into(), index: &high }, Variant { uri: "lo.m3u8".into(), index: &low }]);
    let (lo_peak, lo_avg) = bandwidth(&low);
    // Two 2 s segments: the average is total bits over total time.
    let bits = low.fragments.iter().map(|f| f.len).sum::<u64>() * 8;
    assert_eq!(lo_avg, bits.div_ceil(4));
    assert!(lo_peak >= lo_avg);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..3], ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]);
    assert_eq!(
        lines[3],
        format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={lo_peak},AVERAGE-BANDWIDTH={lo_avg},RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=25.000"
        )
    );
    assert_eq!(lines[4], "lo.m3u8");
    assert!(lines[5].contains("RESOLUTION=1920x1080"), "{text}");
    assert_eq!(lines[6], "hi.m3u8");
}

#[test]
fn damaged_or_unfragmented_input_is_an_error_never_a_panic() {
    let data = fmp4(&[(50, 0), (50, 0)]);
    // Every truncation and a corrupt byte at every position of the headers.
    for cut in 0..data.len() {
        let _ = index(&data[..cut].to_vec());
    }
    let moof = index(&data).unwrap().fragments[0].offset as usize;
    for at in 0..moof + 200 {
        let mut d = data.clone();
        d[at] ^= 0xff;
        let _ = index(&d);
    }
    // A trun that claims more samples than it holds.
    let ix = index(&data).unwrap();
    let mut d = data.clone();
    let trun = (ix.fragments[0].offset as usize..d.len() - 4).rev().find(|i| &d[*i..*i + 4] == b"trun").unwrap();
    d[trun + 8..trun + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(index(&d), Err(HlsError::Damaged(_))));
    // A plain (not fragmented) movie says what to do.
    let mut w = W::default();
    w.open(b"ftyp").bytes(b"qt  ").close().unwrap();
    w.open(b"moov").close().unwrap();
    w.open(b"mdat").bytes(&[0; 16]).close().unwrap();
    let e = index(&w.buf).unwrap_err();
    assert!(e.to_string().contains("reelfs proxy"), "{e}");
}

/// ffmpeg's fragmented MP4 with B-frames and AAC, judged by ffprobe: every
/// fragment starts at the byte ffprobe finds a keyframe packet in, and the
/// fragments hold every frame.
#[test]
fn index_of_ffmpeg_output_matches_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.mp4");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25:duration=3"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "2"])
        .args(["-c:a", "aac", "-b:a", "64k", "-movflags", "frag_keyframe+empty_moov+default_base_moof"])
        .arg(&path)
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ix = index(&std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(ix.frames(), 75);
    assert_eq!(ix.fragments.len(), 3);
    assert_eq!((ix.width, ix.height), (128, 72));
    assert_eq!(ix.codecs[1], "mp4a.40.2");
    assert!(ix.codecs[0].starts_with("avc1.64"), "{:?}", ix.codecs);
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,flags,pts,dts", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let packets: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let keys: Vec<u64> = packets.iter().filter(|p| p[3].starts_with('K')).map(|p| p[2].parse().unwrap()).collect();
    assert_eq!(keys.len(), 3);
    for (f, key_pos) in ix.fragments.iter().zip(&keys) {
        assert!(f.offset < *key_pos && *key_pos < f.offset + f.len, "keyframe at {key_pos} outside fragment {f:?}");
    }
    // The composition offset ffprobe sees on the first frame (pts - dts).
    let (pts, dts): (i64, i64) = (packets[0][0].parse().unwrap(), packets[0][1].parse().unwrap());
    assert_eq!(ix.fragments[0].first_cto, pts - dts);
}

/// ffmpeg's VP9 fragmented MP4 (what `preview-low-vp9` is): the codec string
/// comes from the stream's own `vpcC` (profile, level, bit depth), so a 4:4:4
/// stream says profile 1 and a bigger picture a higher level.
#[test]
fn index_names_vp9_by_its_vpcc_profile_level_and_depth() {
    let dir = tempfile::tempdir().unwrap();
    let codecs = |size: &str, pix: &str| {
        let path = dir.path().join(format!("{size}{pix}.mp4"));
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=25:duration=2")])
            .args(["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "25", "-pix_fmt", pix])
            .args(["-movflags", "frag_keyframe+empty_moov+default_base_moof"])
            .arg(&path)
            .output()
            .expect("ffmpeg");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let ix = index(&std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!((ix.frames(), ix.fragments.len()), (50, 2));
        ix.codecs
    };
    assert_eq!(codecs("128x72", "yuv420p"), ["vp09.00.10.08"]);
    assert_eq!(codecs("128x72", "yuv444p"), ["vp09.01.10.08"]);
    assert_eq!(codecs("640x360", "yuv420p"), ["vp09.00.21.08"]);
}
