//! Feedback from the relay: keyframe requests (PLI, FIR) and its bandwidth estimate (REMB).
//!
//! `webrtc` 0.21 ends the interceptor chain in a terminus that drops inbound RTCP unless an
//! interceptor marks it for the application. Publisher connections use this forwarder in place
//! of [`crate::keyframe_requests::KeyframeRequestForwarder`]: it lets through what a viewer's
//! does (PLI, FIR) plus REMB, which the publisher turns into the encoder's target bitrate
//! within `encoder.min_bitrate_kbps ..= encoder.bitrate_kbps` (see [`super::PublishStats`]).

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::time::Instant;

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

/// Marks inbound RTCP with a PLI, FIR or REMB for delivery to the application.
#[derive(Default)]
pub struct FeedbackForwarder {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for FeedbackForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackForwarder")
            .field("read", &self.read.len())
            .field("write", &self.write.len())
            .finish()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| wanted(p.as_ref()))
            && !msg.message.has(&Attribute::DeliverToApplication)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for FeedbackForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Registry};
    use rtc::rtcp::receiver_report::ReceiverReport;

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
            .with(crate::keyframe_requests::SLOT, FeedbackForwarder::default())
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
