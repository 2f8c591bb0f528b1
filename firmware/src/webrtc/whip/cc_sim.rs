//! The publisher's send-side congestion control, end to end on synthetic time: our interceptor
//! chain (TWCC sequence numbers, GCC, the forwarder that hands the estimate out) sending through a
//! simulated bottleneck to `webrtc`'s own TWCC feedback generator, with the encoder following the
//! estimate as the publisher makes it. Real components; only the link and the clock are simulated.

use crate::webrtc::keyframe::tests::tagged;
use rtc::interceptor::{
    CongestionControlBuilder, Interceptor, Packet, RTPHeaderExtension, Registry, Slot, StreamInfo,
    TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const SSRC: u32 = 0x1234_5678;
const PAYLOAD: usize = 1100;

fn stream_info() -> StreamInfo {
    StreamInfo {
        ssrc: SSRC,
        payload_type: 96,
        clock_rate: 90_000,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_string(),
            id: 3,
        }],
        ..Default::default()
    }
}

/// Runs `seconds` of a 30 FPS stream through a link of `link_kbps` (FIFO with a 200 ms
/// drop-tail buffer, 20 ms each way),
/// the sender's rate following the estimate between `min_kbps` and `max_kbps`; returns the
/// estimate (kbit/s) each second (0: never moved off the configured rate) and the TWCC feedback
/// packets the sender's chain saw.
fn run(link_kbps: f64, (min_kbps, max_kbps): (u32, u32), seconds: u64) -> (Vec<u64>, u64) {
    let cc = Arc::new(crate::webrtc::keyframe::CcSink::default());
    let mut sender = Registry::new()
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(super::gcc((min_kbps, max_kbps))).build(),
        )
        .with(
            crate::webrtc::keyframe::SLOT,
            super::feedback::forwarder(cc.clone()),
        )
        .build();
    sender.bind_local_stream(&stream_info());
    let mut receiver = Registry::new()
        .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
        .build();
    receiver.bind_remote_stream(&stream_info());

    let t0 = Instant::now();
    let one_way = Duration::from_millis(20);
    let mut link_free = t0;
    let mut to_receiver: VecDeque<(Instant, Packet)> = VecDeque::new();
    let mut to_sender: VecDeque<(Instant, Packet)> = VecDeque::new();
    let mut rate_kbps = f64::from(max_kbps);
    let mut seq = 0u16;
    let mut per_second = Vec::new();
    for ms in 0..seconds * 1000 {
        let now = t0 + Duration::from_millis(ms);
        if ms % 100 == 0 || ms % 100 == 33 || ms % 100 == 66 {
            // A frame at the current rate, in packets of PAYLOAD bytes.
            let bytes = (rate_kbps * 1000.0 / 8.0 / 30.0) as usize;
            for _ in 0..bytes.div_ceil(PAYLOAD).max(1) {
                seq = seq.wrapping_add(1);
                let rtp = rtc::rtp::Packet {
                    header: rtc::rtp::Header {
                        version: 2,
                        payload_type: 96,
                        sequence_number: seq,
                        timestamp: (ms * 90) as u32,
                        ssrc: SSRC,
                        ..Default::default()
                    },
                    payload: bytes::Bytes::from(vec![0u8; PAYLOAD]),
                };
                sender
                    .handle_write(tagged(now, Packet::Rtp(rtp)))
                    .expect("write");
            }
            while let Some(out) = sender.poll_write() {
                if let Packet::Rtp(p) = out.message.packet {
                    // The bottleneck: one packet at a time at the link rate, then the path; a
                    // router buffer of 200 ms drops what does not fit (drop-tail).
                    let size = (p.header.marshal_size() + p.payload.len()) as f64;
                    if link_free > now + Duration::from_millis(200) {
                        continue;
                    }
                    let start = link_free.max(now);
                    link_free = start + Duration::from_secs_f64(size * 8.0 / (link_kbps * 1000.0));
                    to_receiver.push_back((link_free + one_way, Packet::Rtp(p)));
                }
            }
        }
        while to_receiver.front().is_some_and(|(at, _)| *at <= now) {
            let Some((at, p)) = to_receiver.pop_front() else {
                break;
            };
            receiver.handle_read(tagged(at, p)).expect("receiver read");
            while receiver.poll_read().is_some() {}
        }
        receiver.handle_timeout(now).expect("receiver timeout");
        while let Some(fb) = receiver.poll_write() {
            to_sender.push_back((now + one_way, fb.message.packet));
        }
        while to_sender.front().is_some_and(|(at, _)| *at <= now) {
            let Some((at, p)) = to_sender.pop_front() else {
                break;
            };
            sender.handle_read(tagged(at, p)).expect("sender read");
            while sender.poll_read().is_some() {}
        }
        sender.handle_timeout(now).expect("sender timeout");
        // The encoder follows the estimate, as `apply_target_bitrate` makes it.
        let bps = cc.estimate_bps.load(Ordering::Relaxed);
        if bps > 0 {
            rate_kbps = (bps as f64 / 1000.0).clamp(f64::from(min_kbps), f64::from(max_kbps));
        }
        if ms % 1000 == 999 {
            per_second.push(bps / 1000);
        }
    }
    (per_second, cc.twcc_feedback.load(Ordering::Relaxed))
}

use rtc::shared::marshal::MarshalSize;

#[test]
fn the_estimate_falls_to_a_narrow_link_and_the_stream_settles_there() {
    let (est, _) = run(400.0, (150, 1500), 20);
    println!("400 kbit/s link, estimate per second: {est:?}");
    let last: Vec<u64> = est[est.len() - 5..].to_vec();
    assert!(
        last.iter().all(|&k| (150..=520).contains(&k)),
        "the estimate should settle near the 400 kbit/s link: {est:?}"
    );
}

#[test]
fn a_wide_link_keeps_the_configured_bitrate() {
    let (est, feedback) = run(20_000.0, (150, 1500), 10);
    // Feedback flowed all along (10 a second), so an unmoved estimate is GCC's verdict, not
    // silence.
    assert!(feedback >= 90, "{feedback} TWCC feedback packets in 10 s");
    println!("20 Mbit/s link, estimate per second: {est:?}");
    // 0: GCC never moved off the configured rate, so no new target was handed out.
    assert!(
        est.iter().all(|&k| k == 0 || k >= 1300),
        "no congestion, yet the estimate fell: {est:?}"
    );
}

#[test]
fn a_link_just_below_the_configured_rate_is_found() {
    let (est, _) = run(1000.0, (150, 1500), 20);
    println!("1 Mbit/s link, estimate per second: {est:?}");
    let tail = &est[est.len() - 5..];
    assert!(
        tail.iter().all(|&k| (400..=1100).contains(&k)),
        "the estimate should settle below the 1 Mbit/s link: {est:?}"
    );
}

#[test]
fn twcc_feedback_is_counted() {
    let cc = Arc::new(crate::webrtc::keyframe::CcSink::default());
    let mut chain = Registry::new()
        .with(
            crate::webrtc::keyframe::SLOT,
            super::feedback::forwarder(cc.clone()),
        )
        .build();
    let fb: Box<dyn rtc::rtcp::Packet> =
        Box::new(rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc::default());
    chain
        .handle_read(tagged(Instant::now(), Packet::Rtcp(vec![fb])))
        .expect("read");
    assert_eq!(cc.twcc_feedback.load(Ordering::Relaxed), 1);
}
