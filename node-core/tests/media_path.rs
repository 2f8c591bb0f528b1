//! The whole sans-I/O media path with real libvpx: test pattern (latency stamp) → VP8 encode →
//! RFC 7741 packets → reassembly from the packets alone → VP8 decode → the stamp read back from
//! the decoded picture equals the capture time.

use sutantra_core::codec::vp8::{Vp8Config, Vp8Decoder, Vp8Encoder};
use sutantra_core::rtp::packetizer::Packetizer;
use sutantra_core::rtp::vp8::parse_descriptor;
use sutantra_hal::camera::FixedClock;
use sutantra_hal::{FrameSource, I420Frame, TestPattern, read_stamp};

#[test]
fn stamp_survives_encode_packetize_reassemble_decode() {
    let (w, h) = (640, 480);
    let mut source = TestPattern::new(w, h, 30, 1).expect("pattern");
    let mut encoder = Vp8Encoder::new(&Vp8Config::default()).expect("encoder");
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut packetizer = Packetizer::new(1200, 65_530, 1_000, 0x7ff0).expect("packetizer");
    let mut frame = I420Frame::new(w, h);
    let mut decoded = I420Frame::new(w, h);
    let t0 = 1_795_000_000_000_000u64; // late 2026, µs since the epoch
    let mut last_seq: Option<u16> = None;
    let mut last_ts: Option<u32> = None;

    for n in 0..90u64 {
        let capture_us = t0 + n * 33_333;
        source
            .capture(&mut frame, &FixedClock(capture_us))
            .expect("capture");
        assert_eq!(frame.capture_us, capture_us);
        let enc = encoder.encode(&frame, n == 45).expect("encode");
        assert!(!enc.data.is_empty(), "frame {n} produced no data");
        if n == 0 || n == 45 {
            assert!(enc.keyframe, "frame {n} must be a keyframe");
        }

        // Packetize, then rebuild the frame from the payloads alone, as a receiver would.
        let mut rebuilt = Vec::new();
        let mut packets = 0;
        let mut marker_seen = false;
        let info = packetizer.packetize(enc.data, capture_us, |p| {
            assert!(p.payload.len() <= 1200);
            assert!(!marker_seen, "marker only on the last packet");
            marker_seen = p.marker;
            if let Some(prev) = last_seq {
                assert_eq!(p.seq, prev.wrapping_add(1), "consecutive sequence numbers");
            }
            last_seq = Some(p.seq);
            let d = parse_descriptor(p.payload).expect("descriptor");
            assert_eq!(d.starts_frame(), packets == 0);
            assert_eq!(d.partition_index, 0);
            rebuilt.extend_from_slice(&p.payload[d.header_len..]);
            packets += 1;
        });
        assert!(marker_seen);
        assert_eq!(info.packets, packets);
        assert_eq!(
            rebuilt, enc.data,
            "reassembled frame equals the encoder output"
        );
        if let Some(prev) = last_ts {
            // 33 333 µs at 90 kHz is 2 999.97 ticks: 2 999 or 3 000 per frame.
            let step = info.timestamp.wrapping_sub(prev);
            assert!((2_999..=3_000).contains(&step), "timestamp step {step}");
        }
        last_ts = Some(info.timestamp);

        assert!(decoder.decode(&rebuilt, &mut decoded).expect("decode"));
        let (y, _, _) = decoded.planes();
        assert_eq!(
            read_stamp(y, w as usize, w, h),
            Some(capture_us),
            "stamp of frame {n} after VP8 at 1 Mbit/s"
        );
    }
}
