//! The one peer-connection builder: how every connection the node makes is set up, WHEP viewers
//! and WHIP publishers alike (and the runtime probe in `bench/runtime-probe`, which includes this
//! file by path, so it measures the node's own setup).
//!
//! Every connection sends VP8 only (payload type [`VP8_PAYLOAD_TYPE`] when the node offers; an
//! answer keeps the offerer's number), one local track of its own (a track bound to two
//! connections serves only the last one), `webrtc`'s default interceptors (NACK responder from a
//! bounded history, RTCP reports, TWCC) plus what the caller adds, mDNS off (it binds
//! 224.0.0.251:5353 per connection and fails where there is no multicast), and explicit bind
//! addresses (`0.0.0.0:0` would skip loopback). The caller adds its handler, its addresses and,
//! for the probe, its runtime, then builds. A viewer's connection may also negotiate the
//! playout-delay header extension ([`PLAYOUT_DELAY_URI`]; [`negotiated_extension`] gives its id).
//!
//! This file depends on `webrtc`, `rtc` and `std` only (no async runtime), so that it can be
//! shared with the probe's tokio and smol builds; so is [`negotiated`], which reads what the
//! far end chose.

use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP8, MediaEngine};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use std::sync::Arc;
use std::time::Duration;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceServer, SettingEngineBuilder, register_default_interceptors,
};

/// Payload type the node offers for VP8 (in an answer the offerer's number is used).
pub const VP8_PAYLOAD_TYPE: u8 = 96;

/// The playout-delay RTP header extension: the sender's `[min, max]` bounds on how long the
/// receiver holds a frame before showing it. libwebrtc (Chrome, Edge, Safari) offers it and
/// applies the bounds of the first packet of each frame that carries it, until changed.
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// How one connection is set up; the parts that differ between WHEP and WHIP.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// STUN (and, for WHIP, the relay's `Link`) servers; empty: host candidates only.
    pub ice_servers: Vec<RTCIceServer>,
    /// Answer an offer as the DTLS server (`a=setup:passive`), so the far end sends the first
    /// flight. Chosen when webrtc 0.21 sent our ClientHello as the client only on its driver's
    /// next timer tick, about 200 ms after ICE connected (WHEP POST to first decoded frame at an
    /// aiortc viewer: 250 -> 70-90 ms, BENCHMARKS.md). The patched copy in `vendor/webrtc` and
    /// `vendor/rtc` sends it at once (`vendor/webrtc/SUTANTRA-PATCH.md`), so the node as the
    /// client (WHIP, a relay's upstream) no longer waits either; viewers keep this role.
    pub answer_as_dtls_server: bool,
    /// ICE disconnected timeout, failed timeout and keep-alive interval.
    pub ice_timeouts: [Duration; 3],
    /// Also offer `goog-remb` feedback (a relay's bandwidth estimate steers the encoder).
    pub remb: bool,
    /// Negotiate the playout-delay header extension ([`PLAYOUT_DELAY_URI`]) for what we send:
    /// an offer that has it is answered with it. Off in every constructor; a viewer's session
    /// turns it on per `webrtc.playout_delay`.
    pub playout_delay: bool,
}

impl PeerSpec {
    /// A WHEP viewer's connection: answers as the DTLS server, no REMB, generous ICE timeouts
    /// (a viewer on a lossy link is not dropped at the first gap).
    pub fn viewer(ice_servers: Vec<RTCIceServer>) -> Self {
        Self {
            ice_servers,
            answer_as_dtls_server: true,
            ice_timeouts: [
                Duration::from_secs(5),
                Duration::from_secs(15),
                Duration::from_secs(2),
            ],
            remb: false,
            playout_delay: false,
        }
    }

    /// A WHIP publisher's connection: the offerer, REMB offered, shorter ICE timeouts (a broken
    /// session is published again).
    pub fn publisher(ice_servers: Vec<RTCIceServer>) -> Self {
        Self {
            ice_servers,
            answer_as_dtls_server: false,
            ice_timeouts: [
                Duration::from_secs(3),
                Duration::from_secs(10),
                Duration::from_secs(1),
            ],
            remb: true,
            playout_delay: false,
        }
    }

    /// A relay's connection to its upstream WHEP server: the offerer, receive-only, no REMB,
    /// the publisher's shorter ICE timeouts (a broken upstream is subscribed to again).
    pub fn subscriber(ice_servers: Vec<RTCIceServer>) -> Self {
        Self {
            remb: false,
            ..Self::publisher(ice_servers)
        }
    }

    /// The VP8 codec with the RTCP feedback the node handles: NACK, PLI, FIR (and REMB).
    pub fn vp8(&self) -> RTCRtpCodec {
        let remb: &[(&str, &str)] = if self.remb { &[("goog-remb", "")] } else { &[] };
        RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
                .iter()
                .chain(remb)
                .map(|(typ, parameter)| RTCPFeedback {
                    typ: (*typ).into(),
                    parameter: (*parameter).into(),
                })
                .collect(),
        }
    }

    /// A builder for one connection: VP8 only, the default interceptors with `extend` applied
    /// (the caller's own interceptors), mDNS off, `handler` for its events, bound to
    /// `udp_addrs` (`IP:PORT`, port 0 for any). The interceptor registry is consumed by the
    /// connection, so every attempt calls this again.
    pub fn builder(
        &self,
        extend: impl FnOnce(Registry) -> Registry,
        handler: Arc<dyn PeerConnectionEventHandler>,
        udp_addrs: Vec<String>,
    ) -> Result<PeerConnectionBuilder<String>, String> {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: self.vp8(),
                    payload_type: VP8_PAYLOAD_TYPE,
                },
                RtpCodecKind::Video,
            )
            .map_err(|e| format!("register VP8: {e}"))?;
        if self.playout_delay {
            media
                .register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: PLAYOUT_DELAY_URI.to_owned(),
                    },
                    RtpCodecKind::Video,
                    Some(RTCRtpTransceiverDirection::Sendonly),
                )
                .map_err(|e| format!("register the playout-delay extension: {e}"))?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .map_err(|e| format!("interceptors: {e}"))?;
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(self.ice_servers.clone())
            .build();
        let [disconnected, failed, keepalive] = self.ice_timeouts;
        let mut settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_ice_timeouts(Some(disconnected), Some(failed), Some(keepalive));
        if self.answer_as_dtls_server {
            settings = settings
                .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Server);
        }
        Ok(PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(media)
            .with_setting_engine(settings.build())
            .with_interceptor_registry(extend(registry))
            .with_handler(handler)
            .with_udp_addrs(udp_addrs))
    }

    /// The connection's own VP8 track, with its own SSRC (the caller draws it: the probe has no
    /// random source of its own).
    pub fn vp8_track(&self, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
        Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "sutantra".to_string(),
            "video".to_string(),
            "sutantra-camera".to_string(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: self.vp8(),
                ..Default::default()
            }],
        )))
    }
}

/// The SSRC of our track and the payload type the peer negotiated for VP8 (viewers and
/// publishers). Read after negotiation: the answer, or our offer once answered, decides it.
pub async fn negotiated(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticRTP>,
) -> Option<(u32, u8)> {
    use webrtc::media_stream::Track;
    let ssrc = *track.ssrcs().await.first()?;
    for sender in pc.get_senders().await {
        if let Ok(params) = sender.get_parameters().await
            && let Some(codec) = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8))
        {
            return Some((ssrc, codec.payload_type));
        }
    }
    None
}

/// The id the peer negotiated for header extension `uri` on what we send (from the answer, or
/// our offer once answered); `None` when it was not negotiated.
pub async fn negotiated_extension(pc: &Arc<dyn PeerConnection>, uri: &str) -> Option<u16> {
    for sender in pc.get_senders().await {
        if let Ok(params) = sender.get_parameters().await
            && let Some(ext) = params
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == uri)
        {
            return Some(ext.id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_answer_as_dtls_server_and_publishers_offer_remb() {
        let v = PeerSpec::viewer(vec![]);
        let p = PeerSpec::publisher(vec![]);
        assert!(v.answer_as_dtls_server && !p.answer_as_dtls_server);
        let fb = |s: &PeerSpec| {
            s.vp8()
                .rtcp_feedback
                .iter()
                .map(|f| format!("{} {}", f.typ, f.parameter).trim().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(fb(&v), ["nack", "nack pli", "ccm fir"]);
        assert_eq!(fb(&p), ["nack", "nack pli", "ccm fir", "goog-remb"]);
        assert_eq!(v.vp8().clock_rate, 90_000);
    }
}
