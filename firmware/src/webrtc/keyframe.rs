//! An interceptor that lets chosen RTCP (keyframe requests, and for publishers REMB) reach the
//! application.
//!
//! In `webrtc` 0.21 the interceptor chain ends in a terminus that drops all inbound RTCP unless
//! an interceptor marks a packet [`Attribute::DeliverToApplication`]. The encoder has to hear
//! PLI and FIR (a viewer lost a reference frame and shows garbage until the next keyframe), so
//! a viewer's forwarder marks exactly those compound packets and nothing else; receiver reports
//! and NACKs stay with the interceptors that act on them. Publishers use the same forwarder with
//! a predicate that also takes REMB (`crate::webrtc::whip::feedback`).

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/rtcp_feedback.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::time::Instant;

/// Application-most position, just before the terminus.
pub const SLOT: Slot = Slot::Custom(14_000);

/// Whether an RTCP packet asks for a keyframe.
pub fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    p.as_any().downcast_ref::<PictureLossIndication>().is_some()
        || p.as_any().downcast_ref::<FullIntraRequest>().is_some()
}

/// Marks inbound RTCP compound packets that hold a packet `wants` accepts for delivery to the
/// application.
pub struct RtcpForwarder {
    wants: fn(&dyn rtc::rtcp::Packet) -> bool,
    /// Where a congestion controller's figures go.
    cc: Option<std::sync::Arc<CcSink>>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

/// What the publisher's congestion control says, as the forwarder sees it go by.
#[derive(Debug, Default)]
pub struct CcSink {
    /// The latest target of the congestion controller, bit/s (0: it never moved).
    pub estimate_bps: std::sync::atomic::AtomicU64,
    /// TWCC feedback packets received from the remote.
    pub twcc_feedback: std::sync::atomic::AtomicU64,
}

impl CcSink {
    fn observe(&self, msg: &TaggedPacket) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            msg.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
            && bits_per_second.is_finite()
            && *bits_per_second >= 1.0
        {
            self.estimate_bps
                .store(bits_per_second.min(u64::MAX as f64) as u64, Relaxed);
        }
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let twcc = packets
                .iter()
                // `as_ref`: the packet inside the box (a `Box<dyn Packet>` is itself a `Packet`,
                // whose `as_any` is the box).
                .filter(|p| {
                    p.as_ref()
                        .as_any()
                        .is::<rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc>(
                        )
                })
                .count();
            self.twcc_feedback.fetch_add(twcc as u64, Relaxed);
        }
    }
}

/// The viewers' forwarder: PLI and FIR.
pub type KeyframeRequestForwarder = RtcpForwarder;

impl Default for RtcpForwarder {
    fn default() -> Self {
        Self::new(is_keyframe_request)
    }
}

impl RtcpForwarder {
    /// A forwarder for the packets `wants` accepts.
    pub fn new(wants: fn(&dyn rtc::rtcp::Packet) -> bool) -> Self {
        Self {
            wants,
            cc: None,
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }

    /// Also records, in `sink`, every [`Attribute::TargetBitrateChanged`] a congestion-control
    /// interceptor wire-ward of this one attaches (its estimate travels on the feedback packet
    /// that produced it, and the application never sees packet attributes) and every TWCC
    /// feedback packet that passes.
    pub fn with_cc_sink(mut self, sink: std::sync::Arc<CcSink>) -> Self {
        self.cc = Some(sink);
        self
    }
}

impl std::fmt::Debug for RtcpForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcpForwarder")
            .field("read", &self.read.len())
            .field("write", &self.write.len())
            .finish()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(sink) = &self.cc {
            sink.observe(&msg);
        }
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| (self.wants)(p.as_ref()))
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

impl Interceptor for RtcpForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Registry};
    use rtc::rtcp::receiver_report::ReceiverReport;

    /// An inbound RTCP compound packet as the chain sees it (also for the publisher's tests).
    pub(crate) fn rtcp(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        tagged(Instant::now(), Packet::Rtcp(packets))
    }

    /// `packet` at `now`, untouched by any interceptor yet.
    pub(crate) fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: Default::default(),
            message: AttributedPacket::new(packet),
        }
    }

    #[test]
    fn pli_and_fir_pass_the_terminus_receiver_reports_do_not() {
        let mut chain = Registry::new()
            .with(SLOT, KeyframeRequestForwarder::default())
            .build();
        chain
            .handle_read(rtcp(vec![Box::new(ReceiverReport::default())]))
            .expect("read");
        assert!(
            chain.poll_read().is_none(),
            "receiver reports stay in the chain"
        );

        chain
            .handle_read(rtcp(vec![
                Box::new(ReceiverReport::default()),
                Box::new(PictureLossIndication {
                    sender_ssrc: 1,
                    media_ssrc: 2,
                }),
            ]))
            .expect("read");
        let out = chain.poll_read().expect("PLI is delivered");
        let Packet::Rtcp(packets) = out.message.packet else {
            panic!("not RTCP");
        };
        assert!(packets.iter().any(|p| is_keyframe_request(p.as_ref())));

        chain
            .handle_read(rtcp(vec![Box::new(FullIntraRequest::default())]))
            .expect("read");
        assert!(chain.poll_read().is_some(), "FIR is delivered");
    }
}
