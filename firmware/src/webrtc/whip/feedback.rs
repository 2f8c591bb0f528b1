//! Feedback from the relay: keyframe requests (PLI, FIR), its bandwidth estimate (REMB) and
//! its receiver reports (loss, and the round-trip time from RFC 3550's LSR/DLSR).
//!
//! `webrtc` 0.21 ends the interceptor chain in a terminus that drops inbound RTCP unless an
//! interceptor marks it for the application. Publisher connections use this forwarder in place
//! of the viewers' [`crate::webrtc::keyframe::RtcpForwarder`] predicate: it lets through what a viewer's
//! does (PLI, FIR) plus REMB, which the publisher turns into the encoder's target bitrate
//! within `encoder.min_bitrate_kbps ..= encoder.bitrate_kbps` (see [`super::PublishStats`]),
//! plus receiver reports, which give the figures `sutantra status` and `/metrics` show.
//!
//! The round trip needs no state of ours: the relay echoes the middle 32 bits of our latest
//! sender report's NTP time (LSR, written by `webrtc`'s sender-report interceptor from the wall
//! clock) and how long it held it (DLSR), so RTT = arrival − LSR − DLSR in units of 1/65536 s.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/rtcp_feedback.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::ReportFigures;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the UNIX epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The middle 32 bits of the NTP timestamp of `t` (16 bits of seconds, 16 of fraction).
pub fn ntp_middle(t: SystemTime) -> u32 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 16) / 1_000_000_000;
    (((secs & 0xffff) << 16) | frac) as u32
}

/// What a receiver report says about our stream `ssrc`, arriving at `arrival` (NTP middle 32).
pub fn report_about(p: &dyn rtc::rtcp::Packet, ssrc: u32, arrival: u32) -> Option<ReportFigures> {
    let rr = p.as_any().downcast_ref::<ReceiverReport>()?;
    let r = rr.reports.iter().find(|r| r.ssrc == ssrc)?;
    let rtt = (r.last_sender_report != 0)
        .then(|| {
            arrival
                .wrapping_sub(r.last_sender_report)
                .wrapping_sub(r.delay)
        })
        // Clock steps or a report about an SR we never sent give nonsense: over a minute is.
        .filter(|units| *units < 60 << 16)
        .map(|units| Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536));
    Some(ReportFigures {
        rtt,
        fraction_lost: f64::from(r.fraction_lost) / 256.0,
        packets_lost: u64::from(r.total_lost),
    })
}

/// The bitrate a REMB carries, in kbit/s (`None`: not a REMB, or a nonsensical value).
pub fn remb_kbps(p: &dyn rtc::rtcp::Packet) -> Option<u32> {
    let r = p
        .as_any()
        .downcast_ref::<ReceiverEstimatedMaximumBitrate>()?;
    let kbps = f64::from(r.bitrate) / 1000.0;
    (kbps.is_finite() && kbps >= 1.0).then(|| kbps.min(f64::from(u32::MAX)) as u32)
}

fn wanted(p: &dyn rtc::rtcp::Packet) -> bool {
    crate::webrtc::keyframe::is_keyframe_request(p)
        || remb_kbps(p).is_some()
        || p.as_any().is::<ReceiverReport>()
}

/// The publisher's forwarder: PLI, FIR, REMB and receiver reports; the congestion controller's
/// estimate (TWCC + GCC) and the TWCC feedback count go to `cc`.
pub fn forwarder(
    cc: std::sync::Arc<crate::webrtc::keyframe::CcSink>,
) -> crate::webrtc::keyframe::RtcpForwarder {
    crate::webrtc::keyframe::RtcpForwarder::new(wanted).with_cc_sink(cc)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use rtc::rtcp::reception_report::ReceptionReport;

    #[test]
    fn ntp_middle_bits() {
        // 1970-01-01T00:00:00.5Z: NTP seconds 2208988800 = 0x83AA7E80, fraction 0x8000.
        let t = UNIX_EPOCH + Duration::from_millis(500);
        assert_eq!(ntp_middle(t), 0x7E80_8000);
    }

    #[test]
    fn receiver_reports_give_rtt_and_loss() {
        let sent = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let lsr = ntp_middle(sent);
        // Held 20 ms by the relay, back 70 ms after we sent it: RTT 50 ms.
        let delay = (65_536 * 20 / 1000) as u32;
        let arrival = ntp_middle(sent + Duration::from_millis(70));
        let rr = ReceiverReport {
            ssrc: 9,
            reports: vec![ReceptionReport {
                ssrc: 42,
                fraction_lost: 64,
                total_lost: 17,
                last_sender_report: lsr,
                delay,
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = report_about(&rr, 42, arrival).expect("about our stream");
        let rtt = r.rtt.expect("rtt").as_secs_f64() * 1000.0;
        assert!((rtt - 50.0).abs() < 0.2, "{rtt}");
        assert_eq!(r.fraction_lost, 0.25);
        assert_eq!(r.packets_lost, 17);
        assert_eq!(report_about(&rr, 43, arrival), None, "another stream");
        // No sender report seen yet: loss but no RTT; an absurd result is dropped.
        let mut none = rr.clone();
        none.reports[0].last_sender_report = 0;
        assert_eq!(report_about(&none, 42, arrival).expect("rr").rtt, None);
        assert_eq!(
            report_about(&rr, 42, lsr.wrapping_sub(1000))
                .expect("rr")
                .rtt,
            None
        );
    }
    use crate::webrtc::keyframe::tests::rtcp;
    use rtc::interceptor::{Packet, Registry};
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::sansio::Protocol;

    #[test]
    fn remb_passes_the_terminus_with_its_bitrate() {
        let mut chain = Registry::new()
            .with(
                crate::webrtc::keyframe::SLOT,
                forwarder(std::sync::Arc::default()),
            )
            .build();
        chain
            .handle_read(rtcp(vec![Box::new(ReceiverReport::default())]))
            .expect("read");
        assert!(
            chain.poll_read().is_some(),
            "receiver reports are delivered"
        );
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
