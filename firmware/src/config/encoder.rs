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
    /// libvpx's static threshold (`VP8E_SET_STATIC_THRESHOLD`), 0..=10000: a macroblock whose
    /// prediction from the last frame is closer than this (a sum of squared luma errors over
    /// its 256 pixels) is sent as "unchanged" and not refined further. The default, 500, makes a
    /// still scene cost 0.4-0.5x the CPU of a moving one, at a quality ceiling near 45-48 dB on
    /// still areas; 0 or 1 is off (every block re-coded every frame: smooth still pictures creep
    /// up to 49-50 dB, for 2-3x the CPU). See `sutantra_core::codec::vp8::Vp8Tuning` and
    /// BENCHMARKS.md, "Still scenes".
    pub static_threshold: u32,
}

impl EncoderConfig {
    /// libvpx's static-content settings from this section (the rest at the node's defaults).
    pub fn tuning(&self) -> sutantra_core::codec::vp8::Vp8Tuning {
        sutantra_core::codec::vp8::Vp8Tuning {
            static_threshold: self.static_threshold,
            ..Default::default()
        }
    }
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
            static_threshold: sutantra_core::codec::vp8::STATIC_THRESHOLD,
        }
    }
}
