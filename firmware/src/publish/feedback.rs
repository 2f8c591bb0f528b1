//! Feedback from the relay: keyframe requests (PLI, FIR) and its bandwidth estimate (REMB).
//!
//! `webrtc` 0.21 ends the interceptor chain in a terminus that drops inbound RTCP unless an
//! interceptor marks it for the application. Publisher connections use this forwarder in place
//! of the viewers' [`crate::keyframe_requests::RtcpForwarder`] predicate: it lets through what a viewer's
//! does (PLI, FIR) plus REMB, which the publisher turns into the encoder's target bitrate
//! within `encoder.min_bitrate_kbps ..= encoder.bitrate_kbps` (see [`super::PublishStats`]).

use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;

/// The bitrate a REMB carries, in kbit/s (`None`: not a REMB, or a nonsensical value).
pub fn remb_kbps(p: &dyn rtc::rtcp::Packet) -> Option<u32> {
    let r = p
        .as_any()
        .downcast_ref::<ReceiverEstimatedMaximumBitrate>()?;
    let kbps = f64::from(r.bitrate) / 1000.0;
    (kbps.is_finite() && kbps >= 1.0).then(|| kbps.min(f64::from(u32::MAX)) as u32)
}

fn wanted(p: &dyn rtc::rtcp::Packet) -> bool {
    crate::keyframe_requests::is_keyframe_request(p) || remb_kbps(p).is_some()
}

/// The publisher's forwarder: PLI, FIR and REMB.
pub fn forwarder() -> crate::keyframe_requests::RtcpForwarder {
    crate::keyframe_requests::RtcpForwarder::new(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Packet, Registry, TaggedPacket};
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::sansio::Protocol;
    use std::time::Instant;

    fn rtcp(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtcp(packets)),
        }
    }

    #[test]
    fn remb_passes_the_terminus_with_its_bitrate() {
        let mut chain = Registry::new()
            .with(crate::keyframe_requests::SLOT, forwarder())
            .build();
        chain
            .handle_read(rtcp(vec![Box::new(ReceiverReport::default())]))
            .expect("read");
        assert!(chain.poll_read().is_none(), "receiver reports stay");
        chain
            .handle_read(rtcp(vec![Box::new(ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 1,
                bitrate: 300_000.0,
                ssrcs: vec![2],
            })]))
            .expect("read");
        let out = chain.poll_read().expect("REMB is delivered");
        let Packet::Rtcp(packets) = out.message.packet else {
            panic!("not RTCP");
        };
        assert_eq!(
            packets.iter().find_map(|p| remb_kbps(p.as_ref())),
            Some(300)
        );
    }
}
