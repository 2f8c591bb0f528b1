//! `[encoder]`: the VP8 encoder: bitrate, keyframes, libvpx speed, send hold.

use serde::Deserialize;

/// `[encoder]`: VP8 on libvpx.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Longest distance between keyframes, in frames.
    pub keyframe_interval: u32,
    /// libvpx speed (`cpu-used`): -16..=-1 a fixed speed, 0..=16 adaptive (see
    /// `sutantra_core::codec::Vp8Config::cpu_used`).
    pub cpu_used: i32,
    /// Encoder threads.
    pub threads: u32,
    /// Shortest time between forced keyframes (viewer joins, PLI, FIR), in milliseconds.
    pub min_keyframe_gap_ms: u64,
    /// Lowest bitrate a WHIP relay's bandwidth estimate (REMB) may push the encoder down to, in
    /// kbit/s (the highest is `bitrate_kbps`; without publishing the encoder stays there).
    pub min_bitrate_kbps: u32,
    /// Hold each encoded frame until this many milliseconds after its frame-clock deadline, so
    /// frames leave on a regular grid whatever their encode time (`sutantra_core::pacer::
    /// SendGrid`); 0 (the default) sends each frame as soon as it is encoded, for the lowest
    /// latency. Shorter than one frame interval.
    pub send_offset_ms: u64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        let b = &sutantra_boards::GENERIC;
        Self {
            bitrate_kbps: b.bitrate_kbps,
            keyframe_interval: 300,
            cpu_used: b.cpu_used,
            threads: 1,
            min_keyframe_gap_ms: 500,
            min_bitrate_kbps: 150,
            send_offset_ms: 0,
        }
    }
}
