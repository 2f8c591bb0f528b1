//! `GET /metrics`: the node's counters in the Prometheus text format (`sutantra_*`), rendered
//! from [`Stats`](crate::stats::Stats), the fan-out's drops and the WHIP figures.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let s = &state.stats;
    let src = s.source();
    let mut out = String::with_capacity(6144);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP sutantra_{name} {help}\n# TYPE sutantra_{name} {kind}\nsutantra_{name} {value}\n"
        ));
    };
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    metric(
        "frames_captured_total",
        "counter",
        "Frames delivered by the source.",
        c(&s.frames_captured),
    );
    metric(
        "frames_sent_total",
        "counter",
        "Frames encoded and sent to viewers.",
        c(&s.frames_sent),
    );
    metric(
        "encoded_bytes_total",
        "counter",
        "VP8 bytes produced.",
        c(&s.bytes_encoded),
    );
    metric(
        "rtp_packets_total",
        "counter",
        "RTP packets produced (before fan-out).",
        c(&s.packets),
    );
    metric(
        "keyframes_total",
        "counter",
        "Keyframes produced.",
        c(&s.keyframes),
    );
    metric(
        "keyframe_requests_total",
        "counter",
        "PLI/FIR keyframe requests from viewers.",
        c(&s.keyframe_requests),
    );
    metric(
        "frame_pool_dropped_total",
        "counter",
        "Frames dropped by the full frame pool (encode fell behind).",
        c(&s.pool_dropped),
    );
    metric(
        "pacer_skipped_total",
        "counter",
        "Frame-clock ticks skipped because capture ran late.",
        c(&s.pacer_skipped),
    );
    metric(
        "frames_decimated_total",
        "counter",
        "Camera frames left out (camera faster than configured).",
        c(&s.decimated),
    );
    metric(
        "capture_errors_total",
        "counter",
        "Camera errors.",
        c(&s.capture_errors),
    );
    metric(
        "camera_corrupt_frames_total",
        "counter",
        "Camera frames dropped because they did not decode (corrupt or truncated MJPEG).",
        c(&s.corrupt_frames),
    );
    metric(
        "encode_errors_total",
        "counter",
        "Encoder errors.",
        c(&s.encode_errors),
    );
    metric(
        "slate_frames_total",
        "counter",
        "\"No signal\" slate frames sent while the camera was away.",
        c(&s.slate_frames),
    );
    metric(
        "source_reopens_total",
        "counter",
        "Times a failed camera was reopened.",
        c(&s.source_reopens),
    );
    metric(
        "encoder_restarts_total",
        "counter",
        "Times the encoder was rebuilt after a run of errors.",
        c(&s.encoder_restarts),
    );
    metric(
        "viewer_packets_dropped_total",
        "counter",
        "Packets dropped from full per-viewer queues.",
        state.fanout.dropped() as f64,
    );
    metric(
        "viewers_joined_total",
        "counter",
        "Viewer sessions started.",
        c(&s.viewers_joined),
    );
    metric(
        "viewers_refused_total",
        "counter",
        "WHEP offers refused at the viewer limit.",
        c(&s.viewers_refused),
    );
    metric(
        "sessions_abandoned_total",
        "counter",
        "Answered WHEP sessions dropped before connecting (evicted, timed out or abandoned).",
        c(&s.sessions_abandoned),
    );
    metric(
        "session_panics_total",
        "counter",
        "Viewer sessions ended by an internal error (a panic in their own task); the node went on.",
        c(&s.session_panics),
    );
    metric(
        "media_panics_total",
        "counter",
        "Panics caught in the capture or encode thread (frame skipped or camera reopened); the stream went on.",
        c(&s.media_panics),
    );
    metric(
        "offers_rate_limited_total",
        "counter",
        "WHEP offers refused by the per-address rate limit (HTTP 429).",
        c(&s.offers_rate_limited),
    );
    metric(
        "snapshot_requests_total",
        "counter",
        "Snapshots asked for (GET /snapshot.jpg, sutantra snapshot), from the cache or not.",
        c(&s.snapshot_requests),
    );
    metric(
        "snapshot_encodes_total",
        "counter",
        "JPEG encodes made for snapshots (at most one per http.snapshot_interval_ms when polled).",
        c(&s.snapshot_encodes),
    );
    metric(
        "viewers",
        "gauge",
        "Viewers receiving video now.",
        s.viewers.load(Ordering::Relaxed) as f64,
    );
    metric(
        "sessions",
        "gauge",
        "WHEP sessions open (connecting or connected).",
        state.viewers.count() as f64,
    );
    metric("fps", "gauge", "Frames sent in the last second.", s.fps());
    metric("width", "gauge", "Source width.", src.width as f64);
    metric("height", "gauge", "Source height.", src.height as f64);
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        s.uptime().as_secs_f64(),
    );
    let u = &s.upstream;
    if u.enabled.load(Ordering::Relaxed) {
        let d = u.detail();
        metric(
            "upstream_connected",
            "gauge",
            "Relay: 1 while the upstream WHEP session forwards video.",
            f64::from(u8::from(d.state == "connected")),
        );
        metric(
            "upstream_rtt_seconds",
            "gauge",
            "Relay: round-trip time to the upstream (ICE checks); 0 when unknown.",
            c(&u.rtt_us) / 1e6,
        );
        metric(
            "upstream_packets_received_total",
            "counter",
            "Relay: RTP packets received from the upstream.",
            c(&u.packets_received),
        );
        metric(
            "upstream_packets_lost_total",
            "counter",
            "Relay: upstream RTP packets missing (sequence gaps).",
            c(&u.packets_lost),
        );
        metric(
            "upstream_packets_skipped_total",
            "counter",
            "Relay: upstream packets not forwarded (malformed, late, before a keyframe).",
            c(&u.packets_skipped),
        );
        metric(
            "upstream_connects_total",
            "counter",
            "Relay: upstream sessions that forwarded video.",
            c(&u.connects),
        );
        metric(
            "upstream_failures_total",
            "counter",
            "Relay: upstream attempts that failed before forwarding.",
            c(&u.failures),
        );
        metric(
            "upstream_keyframe_requests_total",
            "counter",
            "Relay: keyframe requests (PLI) sent upstream.",
            c(&u.plis_sent),
        );
    }
    let h = &s.http;
    metric(
        "http_connections_open",
        "gauge",
        "HTTP(S) connections open now.",
        h.connections_open.load(Ordering::Relaxed) as f64,
    );
    metric(
        "http_connections_accepted_total",
        "counter",
        "HTTP(S) connections admitted.",
        c(&h.connections_accepted),
    );
    metric(
        "http_connections_refused_total",
        "counter",
        "Connections closed at once at http.max_connections or http.max_connections_per_ip.",
        c(&h.connections_refused),
    );
    metric(
        "http_connections_timed_out_total",
        "counter",
        "Connections closed for slow headers or TLS handshake (http.header_timeout_ms) or idleness \
         (http.idle_timeout_ms).",
        c(&h.connections_timed_out),
    );
    metric(
        "http_accept_errors_total",
        "counter",
        "accept() failures such as EMFILE (out of file descriptors); the server retries.",
        c(&h.accept_errors),
    );
    metric(
        "http_tls_handshake_errors_total",
        "counter",
        "TLS handshakes that failed (plain HTTP to the HTTPS port, untrusted certificate, ...).",
        c(&h.tls_handshake_errors),
    );
    let ch = &s.chain;
    metric(
        "chain_trusted_height",
        "gauge",
        "Height of the newest light block this node verified (0: none).",
        c(&ch.trusted_height),
    );
    metric(
        "chain_last_verified_timestamp_seconds",
        "gauge",
        "When the newest light block was verified (UNIX seconds; 0: never).",
        ch.last_verified_ms.load(Ordering::Relaxed) as f64 / 1000.0,
    );
    metric(
        "chain_verify_errors_total",
        "counter",
        "Chain polls that failed: RPC unreachable or lying, verification refused.",
        c(&ch.verify_errors),
    );
    metric(
        "chain_halted",
        "gauge",
        "1 when a witness conflict stopped attestations (sutantra chain resume clears it).",
        f64::from(u8::from(ch.halted.load(Ordering::Relaxed))),
    );
    metric(
        "attestations_total",
        "counter",
        "Attestations signed and committed to the outbox.",
        c(&ch.attestations),
    );
    metric(
        "attest_outbox_depth",
        "gauge",
        "Attestations in the outbox waiting for submission.",
        c(&ch.outbox_depth),
    );
    metric(
        "attest_outbox_dropped_total",
        "counter",
        "Attestations dropped from the full outbox (oldest first).",
        c(&ch.outbox_dropped),
    );
    metric(
        "attest_submitted_total",
        "counter",
        "Attestations accepted by broadcast_tx_sync (code 0).",
        c(&ch.submitted),
    );
    metric(
        "attest_submit_failures_total",
        "counter",
        "Submission attempts that failed and will be retried.",
        c(&ch.submit_failures),
    );
    metric(
        "attest_rejected_total",
        "counter",
        "Attestations the chain rejected (code != 0); kept with the reason.",
        c(&ch.rejected),
    );
    metric(
        "attest_unanchored_total",
        "counter",
        "Segments not attested: no verified header yet, or halted.",
        c(&ch.unanchored),
    );
    metric(
        "attest_segments_dropped_total",
        "counter",
        "Closed segments dropped because the attestation thread fell behind.",
        c(&ch.segments_dropped),
    );
    metric(
        "store_errors_total",
        "counter",
        "Operations on the node's store (node.redb) that failed with a database or I/O error, \
         e.g. a full data disk; retried, the store is reopened after a latched I/O error.",
        c(&ch.store_errors),
    );
    metric(
        "store_reopens_total",
        "counter",
        "Times the store was reopened after an I/O error.",
        c(&ch.store_reopens),
    );
    metric(
        "store_failing",
        "gauge",
        "1 while the store fails (until a write succeeds again).",
        f64::from(u8::from(ch.store_error().is_some())),
    );
    metric(
        "attest_segments_lost_store_total",
        "counter",
        "Segments signed but lost because the store could not write them (never submitted).",
        c(&ch.segments_lost_store),
    );
    state.publish.render(&mut out);
    s.pacing.render(&mut out);
    s.capture_pacing.render(&mut out);
    s.capture_to_send.render(&mut out);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}
