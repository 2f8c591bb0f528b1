//! Tests of the VP8 encoder and decoder against libvpx itself: round trips on synthetic moving
//! pictures (generated here, independent of the HAL's test pattern), keyframe control, rate
//! control, and the error paths.

use super::*;
use crate::codec::{CodecError, libvpx_version};

const W: u32 = 640;
const H: u32 = 480;

/// A smooth moving picture: sinusoids drifting right and down, slowly shifting chroma.
fn paint_smooth(frame: &mut I420Frame, t: u32) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = (
        frame.chroma_width() as usize,
        frame.chroma_height() as usize,
    );
    let tf = t as f32;
    let (y, u, v) = frame.planes_mut();
    for r in 0..h {
        for c in 0..w {
            let x = c as f32 + 3.0 * tf;
            let yy = r as f32 + 1.5 * tf;
            let val = 128.0 + 50.0 * (x / 23.0).sin() + 30.0 * (yy / 17.0).cos();
            y[r * w + c] = val.clamp(16.0, 235.0) as u8;
        }
    }
    for r in 0..ch {
        for c in 0..cw {
            let (x, yy) = (c as f32 + tf, r as f32 - tf);
            u[r * cw + c] = (128.0 + 30.0 * (x / 31.0).sin()) as u8;
            v[r * cw + c] = (128.0 + 30.0 * (yy / 29.0).cos()) as u8;
        }
    }
}

/// A hard picture for rate control: the smooth one plus fine pseudo-random texture that moves
/// with it, so the encoder needs every bit it is given.
fn paint_textured(frame: &mut I420Frame, t: u32) {
    paint_smooth(frame, t);
    let w = frame.width() as usize;
    let (y, _, _) = frame.planes_mut();
    for (i, px) in y.iter_mut().enumerate() {
        let (r, c) = ((i / w) as u32, (i % w) as u32);
        let (sx, sy) = (c.wrapping_add(3 * t), r.wrapping_add(t));
        let mut hsh = sx.wrapping_mul(0x9E37_79B1) ^ sy.wrapping_mul(0x85EB_CA77);
        hsh ^= hsh >> 15;
        hsh = hsh.wrapping_mul(0x2C1B_3C6D);
        hsh ^= hsh >> 13;
        let noise = (hsh & 63) as i32 - 32;
        *px = (i32::from(*px) + noise).clamp(16, 235) as u8;
    }
}

fn luma_psnr(a: &I420Frame, b: &I420Frame) -> f64 {
    let (ya, _, _) = a.planes();
    let (yb, _, _) = b.planes();
    let sse: f64 = ya
        .iter()
        .zip(yb)
        .map(|(&p, &q)| {
            let d = f64::from(p) - f64::from(q);
            d * d
        })
        .sum();
    let mse = sse / ya.len() as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

fn encoder(cfg: &Vp8Config) -> Vp8Encoder {
    Vp8Encoder::new(cfg).expect("encoder with a valid configuration")
}

#[test]
fn roundtrip_60_frames_keyframes_and_quality() {
    let mut enc = encoder(&Vp8Config::default());
    let mut dec = Vp8Decoder::new().expect("decoder");
    let mut src = I420Frame::new(W, H);
    let mut out = I420Frame::new(W, H);
    let mut keyframes = Vec::new();
    let mut total = 0usize;
    let mut min_psnr = f64::MAX;
    for i in 0..60u32 {
        paint_smooth(&mut src, i);
        let ef = enc.encode(&src, i == 30).expect("encode");
        assert!(!ef.data.is_empty(), "frame {i}: libvpx produced no frame");
        assert_eq!(ef.pts, i64::from(i));
        if ef.keyframe {
            keyframes.push((i, ef.data.len()));
        }
        total += ef.data.len();
        let data = ef.data.to_vec();
        assert!(
            dec.decode(&data, &mut out).expect("decode"),
            "frame {i}: no picture"
        );
        assert_eq!((out.width(), out.height()), (W, H));
        let psnr = luma_psnr(&src, &out);
        min_psnr = min_psnr.min(psnr);
        assert!(psnr > 30.0, "frame {i}: luma PSNR {psnr:.1} dB");
    }
    println!(
        "smooth 640x480: {total} bytes over 60 frames ({:.0} kbit/s), \
         keyframes (index, bytes) {keyframes:?}, min luma PSNR {min_psnr:.1} dB",
        total as f64 * 8.0 / 2.0 / 1000.0
    );
    let key_idx: Vec<u32> = keyframes.iter().map(|&(i, _)| i).collect();
    assert_eq!(key_idx.first(), Some(&0), "first frame must be a keyframe");
    assert!(
        key_idx.contains(&30),
        "forced keyframe on frame 30 ignored: {key_idx:?}"
    );
    assert!(keyframes.len() <= 4, "too many keyframes: {keyframes:?}");
}

#[test]
fn bitrate_tracks_target() {
    let mut enc = encoder(&Vp8Config::default());
    let mut src = I420Frame::new(W, H);
    let mut total = 0usize;
    for i in 0..60u32 {
        paint_textured(&mut src, i);
        total += enc.encode(&src, false).expect("encode").data.len();
    }
    // 1000 kbit/s for 2 s = 250 000 bytes.
    let target = 250_000.0;
    let ratio = total as f64 / target;
    println!("textured 640x480 at 1000 kbit/s: {total} bytes in 2 s ({ratio:.2}x target)");
    assert!(
        (0.3..=3.0).contains(&ratio),
        "{total} bytes is {ratio:.2}x the target"
    );
}

#[test]
fn set_bitrate_mid_stream() {
    let mut enc = encoder(&Vp8Config::default());
    let mut src = I420Frame::new(W, H);
    let mut sizes = Vec::new();
    for i in 0..150u32 {
        if i == 60 {
            enc.set_bitrate(200).expect("set_bitrate");
            assert_eq!(enc.config().bitrate_kbps, 200);
        }
        // A smooth picture: a textured one sits at libvpx's max-quantizer floor on some builds
        // (Debian's arm64 libvpx: ~1.26 Mbit/s at Q 56), where no bitrate change can show.
        paint_smooth(&mut src, i);
        let ef = enc.encode(&src, false).expect("encode");
        assert!(!ef.data.is_empty(), "frame {i} dropped");
        sizes.push(ef.data.len());
    }
    // Steady state before (frames 30..60, after the first keyframe settles) and after (the last
    // 30 frames, once the 1 s buffer has drained).
    let before: usize = sizes[30..60].iter().sum();
    let after: usize = sizes[120..150].iter().sum();
    println!("set_bitrate 1000 -> 200 kbit/s: {before} bytes/s before, {after} bytes/s after");
    assert!(
        (after as f64) < 0.5 * before as f64,
        "bitrate did not drop: {before} -> {after} bytes/s"
    );
    assert!(matches!(
        enc.set_bitrate(10),
        Err(CodecError::InvalidConfig {
            field: "bitrate_kbps",
            ..
        })
    ));
    assert_eq!(enc.config().bitrate_kbps, 200);
}

#[test]
fn wrong_size_frame_is_an_error() {
    let mut enc = encoder(&Vp8Config::default());
    let small = I420Frame::new(320, 240);
    let err = enc.encode(&small, false).expect_err("wrong size must fail");
    assert_eq!(
        err,
        CodecError::FrameSize {
            expected_width: W,
            expected_height: H,
            got_width: 320,
            got_height: 240
        }
    );
    assert!(err.to_string().contains("320x240"), "{err}");
    // The encoder is still usable.
    let mut src = I420Frame::new(W, H);
    paint_smooth(&mut src, 0);
    let ef = enc.encode(&src, false).expect("encode after error");
    assert!(ef.keyframe && !ef.data.is_empty());
}

#[test]
fn invalid_configs_rejected() {
    let ok = Vp8Config::default();
    assert!(ok.validate().is_ok());
    let cases: [(&str, Vp8Config); 13] = [
        ("width", Vp8Config { width: 0, ..ok }),
        ("width", Vp8Config { width: 641, ..ok }),
        ("width", Vp8Config { width: 16384, ..ok }),
        ("height", Vp8Config { height: 0, ..ok }),
        ("height", Vp8Config { height: 479, ..ok }),
        ("fps_num", Vp8Config { fps_num: 0, ..ok }),
        ("fps_den", Vp8Config { fps_den: 0, ..ok }),
        (
            "fps_num/fps_den",
            Vp8Config {
                fps_num: 1000,
                ..ok
            },
        ),
        (
            "bitrate_kbps",
            Vp8Config {
                bitrate_kbps: 49,
                ..ok
            },
        ),
        (
            "bitrate_kbps",
            Vp8Config {
                bitrate_kbps: 20_001,
                ..ok
            },
        ),
        (
            "keyframe_interval",
            Vp8Config {
                keyframe_interval: 0,
                ..ok
            },
        ),
        ("cpu_used", Vp8Config { cpu_used: 17, ..ok }),
        ("threads", Vp8Config { threads: 0, ..ok }),
    ];
    for (want, cfg) in cases {
        match cfg.validate() {
            Err(CodecError::InvalidConfig { field, .. }) => assert_eq!(field, want, "{cfg:?}"),
            other => panic!("{cfg:?}: expected InvalidConfig({want}), got {other:?}"),
        }
        assert!(
            matches!(Vp8Encoder::new(&cfg), Err(CodecError::InvalidConfig { .. })),
            "{cfg:?} accepted by Vp8Encoder::new"
        );
    }
    // Fractional rates and other sizes are fine.
    let ntsc = Vp8Config {
        fps_num: 30_000,
        fps_den: 1001,
        width: 1280,
        height: 720,
        ..ok
    };
    assert!(ntsc.validate().is_ok());
    let msg = Vp8Config {
        bitrate_kbps: 1,
        ..ok
    }
    .validate()
    .expect_err("bitrate 1")
    .to_string();
    assert!(msg.contains("50..=20000"), "{msg}");
}

#[test]
fn other_sizes_rates_and_threads_roundtrip() {
    let cfg = Vp8Config {
        width: 322,
        height: 182,
        fps_num: 30_000,
        fps_den: 1001,
        bitrate_kbps: 300,
        keyframe_interval: 10,
        cpu_used: 16,
        threads: 2,
    };
    let mut enc = encoder(&cfg);
    let mut dec = Vp8Decoder::new().expect("decoder");
    let mut src = I420Frame::new(cfg.width, cfg.height);
    let mut keyframes = 0;
    for i in 0..25u32 {
        paint_smooth(&mut src, i);
        let ef = enc.encode(&src, false).expect("encode");
        keyframes += usize::from(ef.keyframe);
        let data = ef.data.to_vec();
        let pic = dec.decode_picture(&data).expect("decode").expect("picture");
        assert_eq!((pic.width(), pic.height()), (cfg.width, cfg.height));
        let out = pic.to_frame();
        assert!(luma_psnr(&src, &out) > 25.0, "frame {i}");
    }
    // kf_max_dist = 10 over 25 frames: frames 0, 10, 20 at least.
    assert!(
        keyframes >= 3,
        "only {keyframes} keyframes with keyframe_interval 10"
    );
}

#[test]
fn decoder_errors_are_errors_not_panics() {
    let mut dec = Vp8Decoder::new().expect("decoder");
    let mut out = I420Frame::new(W, H);
    assert_eq!(dec.decode(&[], &mut out), Ok(false));
    for garbage in [
        &[0u8][..],
        &[0xff; 3],
        &[0x9d, 0x01, 0x2a],
        &[0x10; 64],
        &[0u8; 1000],
    ] {
        // Whatever libvpx says, it must come back as a value.
        let _ = dec.decode(garbage, &mut out);
    }

    // A keyframe into a frame of the wrong size reports the decoded size.
    let mut enc = encoder(&Vp8Config::default());
    let mut src = I420Frame::new(W, H);
    paint_smooth(&mut src, 0);
    let key = enc.encode(&src, false).expect("encode").data.to_vec();
    let mut dec = Vp8Decoder::new().expect("decoder");
    let mut small = I420Frame::new(320, 240);
    let err = dec.decode(&key, &mut small).expect_err("size mismatch");
    assert!(
        matches!(
            err,
            CodecError::DecodedSize {
                width: W,
                height: H,
                out_width: 320,
                out_height: 240
            }
        ),
        "{err:?}"
    );
    // A truncated keyframe is an error (or no picture), never a panic.
    let mut dec = Vp8Decoder::new().expect("decoder");
    let _ = dec.decode(&key[..key.len() / 8], &mut out);
    let _ = dec.decode(&key[..10], &mut out);
}

#[test]
fn version_and_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Vp8Encoder>();
    assert_send::<Vp8Decoder>();
    let v = libvpx_version();
    assert!(v.contains('1'), "libvpx version {v:?}");
    println!("libvpx {v}");
}

/// Prints the average encode time per frame (run with `--release -- --nocapture`). Asserts
/// nothing about speed: machines differ.
#[test]
#[allow(clippy::disallowed_methods)] // test-only timing printout; the library reads no clock
fn encode_speed_report() {
    const N: u32 = 150;
    let mut frames: Vec<I420Frame> = (0..30u32)
        .map(|t| {
            let mut f = I420Frame::new(W, H);
            paint_textured(&mut f, t);
            f
        })
        .collect();
    // Make the loop a little longer than the frame set without repainting.
    frames.extend_from_slice(&frames.clone());
    let mut enc = encoder(&Vp8Config::default());
    let start = std::time::Instant::now();
    let mut bytes = 0usize;
    for i in 0..N {
        let f = &frames[i as usize % frames.len()];
        bytes += enc.encode(f, false).expect("encode").data.len();
    }
    let per_frame = start.elapsed() / N;
    println!(
        "encode 640x480 textured, cpu_used 8, 1 thread: {per_frame:?} per frame \
         ({bytes} bytes for {N} frames, libvpx {})",
        libvpx_version()
    );
}
