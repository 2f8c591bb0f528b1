//! `Rewriter`: forwards an upstream WHEP server's VP8 RTP packets to our viewers as one
//! continuous stream, without decoding them (the relay's RTP rewriter, sans-I/O).
//!
//! The node may subscribe to another node (the "upstream") instead of a camera. The upstream's
//! session can end and be replaced by a new one (a reconnect): a new SSRC with new random
//! sequence numbers, timestamps and VP8 PictureIDs. The viewers must not notice: they keep one
//! SSRC (set by the caller) and see monotonic sequence numbers and timestamps, continuous
//! PictureIDs, and no interframe of a new session before its first keyframe.
//!
//! Rules:
//! - **Joining a session.** Nothing is forwarded until a keyframe starts (VP8 descriptor S=1,
//!   partition 0, P bit 0): before the first packet ever, and after [`Rewriter::upstream_changed`].
//!   The SSRC of that keyframe becomes the session's SSRC; packets of any other SSRC are
//!   [`Skip::OtherSource`] while the session lasts. The previous session's SSRC is also refused
//!   while a new session is awaited, for [`OLD_SOURCE_QUARANTINE`] after the first usable packet
//!   since the change (so a late keyframe of the old session cannot become the new session, and
//!   an upstream that reuses its SSRC is still accepted after that time).
//! - **Offsets.** At the joining keyframe the offsets are chosen so that its output sequence
//!   number is one after the newest one forwarded, its timestamp is the newest one plus the time
//!   since the last forwarded packet in 90 kHz units (at least 1, at most 2^31 - 1 so that
//!   serial-number arithmetic still sees it as newer), and its PictureID (and TL0PICIDX) is one
//!   after the newest one. The very first session starts at the numbers given to
//!   [`Rewriter::new`] (its TL0PICIDX keeps the upstream's value). Within a session every
//!   packet is mapped by these offsets (wrapping), so upstream loss shows as a gap and a late
//!   packet (reordered, or a retransmission filling a gap) keeps its place.
//! - **Too old.** A packet older than the session's newest sequence number by more than
//!   [`REORDER_WINDOW`], an exact duplicate of one already received in the window, or a packet
//!   of the session from before its joining keyframe (its numbers would land on the previous
//!   session's) is [`Skip::TooOld`]. Duplicates are dropped, not forwarded again.
//! - **Payloads.** The PictureID is rewritten in place keeping its width (7 bits, or 15 bits
//!   with the M bit), as is TL0PICIDX; the payload length never changes. A payload without a
//!   PictureID is forwarded unchanged.
//!
//! No clock: [`Rewriter::rewrite`] takes `now` (a [`Duration`] since an origin the caller
//! picks), used only for the timestamp step across a reconnect and for the quarantine.

// Fed from the network: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened").
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::time::Duration;

/// How many sequence numbers back from the session's newest one a late packet is still
/// forwarded (at its place); older ones are [`Skip::TooOld`].
pub const REORDER_WINDOW: u16 = 512;

/// How long, after an [`Rewriter::upstream_changed`], packets from the previous session's SSRC
/// are refused as [`Skip::OtherSource`] (counted from the first usable packet of any SSRC after
/// the change).
pub const OLD_SOURCE_QUARANTINE: Duration = Duration::from_secs(2);

/// Largest timestamp step across a reconnect: 2^31 - 1, the largest that serial-number
/// arithmetic on 32 bits still reads as "newer" (about 6.6 hours at 90 kHz).
const MAX_TS_STEP: u32 = 0x7fff_ffff;

/// Bits of a 15-bit PictureID.
const PID_MASK_15: u16 = 0x7fff;
/// Bits of a 7-bit PictureID.
const PID_MASK_7: u16 = 0x7f;

/// What the relay sends for one upstream packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// Output RTP sequence number.
    pub seq: u16,
    /// Output RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// The upstream's RTP marker bit (last packet of a frame), unchanged.
    pub marker: bool,
    /// First packet of a keyframe (VP8 descriptor S=1, partition index 0, and the VP8 payload
    /// header's P bit (bit 0 of the first payload byte after the descriptor) == 0).
    pub keyframe_start: bool,
    /// The payload with the VP8 descriptor's PictureID (and TL0PICIDX if present) rewritten;
    /// same length as the input.
    pub payload: Vec<u8>,
    /// Picture size when this packet starts a keyframe (read from the VP8 keyframe header:
    /// 3-byte frame tag, start code 9d 01 2a, then 16-bit little-endian width and height, low
    /// 14 bits each). `None` on other packets, and on a keyframe start too short to hold it or
    /// without the start code.
    pub keyframe_size: Option<(u16, u16)>,
}

/// Why a packet was not forwarded (each counted in [`RewriterStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not a usable VP8 payload (empty, truncated descriptor, or no VP8 data after the
    /// descriptor).
    #[error(
        "not a usable VP8 RTP payload: it is empty, ends inside the VP8 payload descriptor, or \
         has no VP8 data after it"
    )]
    Malformed,
    /// A new upstream session has not sent its first keyframe yet (the viewers' decoders could
    /// not use it).
    #[error(
        "dropped: the upstream session has not sent its first keyframe yet (ask it for one with \
         a PLI)"
    )]
    WaitingForKeyframe,
    /// From an SSRC other than the current upstream's (a late packet of an old session).
    #[error(
        "dropped: the packet's SSRC is not the current upstream session's (a late packet of a \
         previous session)"
    )]
    OtherSource,
    /// Older than what was already forwarded by more than the reorder window (a duplicate or a
    /// very late packet), or from the current session but before the keyframe it was joined at.
    #[error(
        "dropped: a duplicate, a packet older than the newest forwarded one by more than the \
         reorder window ({REORDER_WINDOW} sequence numbers), or one from before the keyframe the \
         upstream session was joined at"
    )]
    TooOld,
}

/// Counters of a [`Rewriter`], since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriterStats {
    /// Packets forwarded (`Ok` from [`Rewriter::rewrite`]).
    pub forwarded: u64,
    /// Packets skipped as [`Skip::Malformed`].
    pub malformed: u64,
    /// Packets skipped as [`Skip::WaitingForKeyframe`].
    pub waiting_for_keyframe: u64,
    /// Packets skipped as [`Skip::OtherSource`].
    pub other_source: u64,
    /// Packets skipped as [`Skip::TooOld`].
    pub too_old: u64,
    /// Upstream sequence numbers skipped, summed over the sessions: each time a session's
    /// newest sequence number jumps by more than one, the numbers jumped over. Counted when the
    /// gap appears and never decreased (a counter), so a late packet or retransmission that
    /// fills the gap afterwards is still counted as lost (it is forwarded all the same).
    pub upstream_lost: u64,
    /// Packets received from the joined sessions' SSRCs from their joining keyframe on,
    /// forwarded or not (duplicates and too-old ones included, malformed ones not).
    pub upstream_received: u64,
    /// Upstream sessions joined (each at its first keyframe).
    pub sessions: u64,
}

/// The fields of a VP8 payload the rewriter needs.
#[derive(Debug, Clone, Copy)]
struct Vp8Fields {
    /// PictureID and whether it is the 15-bit form; at offset 2 when present.
    picture_id: Option<(u16, bool)>,
    /// TL0PICIDX and its offset (3 after a 7-bit PictureID or none, 4 after a 15-bit one).
    tl0: Option<(u8, usize)>,
    /// S=1, partition 0, and the VP8 payload header's P bit is 0.
    keyframe_start: bool,
    /// Width and height from the keyframe header, on a keyframe start.
    keyframe_size: Option<(u16, u16)>,
}

/// Parses the VP8 payload descriptor (RFC 7741 §4.2) and, on a keyframe start, the picture
/// size. `None` when the payload is empty, ends inside the descriptor or has no VP8 data.
fn parse_vp8(payload: &[u8]) -> Option<Vp8Fields> {
    let b0 = *payload.first()?;
    let mut picture_id = None;
    let mut tl0 = None;
    let header_len = if b0 & 0x80 == 0 {
        1
    } else {
        let x = *payload.get(1)?;
        let mut at: usize = 2;
        if x & 0x80 != 0 {
            let p = *payload.get(at)?;
            if p & 0x80 != 0 {
                let lo = *payload.get(3)?;
                picture_id = Some((u16::from_be_bytes([p & 0x7f, lo]), true));
                at = 4;
            } else {
                picture_id = Some((u16::from(p), false));
                at = 3;
            }
        }
        if x & 0x40 != 0 {
            tl0 = Some((*payload.get(at)?, at));
            at = at.wrapping_add(1); // at most 5
        }
        if x & 0x30 != 0 {
            payload.get(at)?;
            at = at.wrapping_add(1); // at most 6
        }
        at
    };
    let vp8 = payload.get(header_len..)?;
    let first = *vp8.first()?;
    let keyframe_start = b0 & 0x10 != 0 && b0 & 0x07 == 0 && first & 0x01 == 0;
    let keyframe_size = if keyframe_start {
        keyframe_size(vp8)
    } else {
        None
    };
    Some(Vp8Fields {
        picture_id,
        tl0,
        keyframe_start,
        keyframe_size,
    })
}

/// Width and height from a VP8 keyframe header (frame tag, start code, sizes), if present.
fn keyframe_size(vp8: &[u8]) -> Option<(u16, u16)> {
    if vp8.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([*vp8.get(6)?, *vp8.get(7)?]) & 0x3fff;
    let h = u16::from_le_bytes([*vp8.get(8)?, *vp8.get(9)?]) & 0x3fff;
    Some((w, h))
}

/// `a` is newer than `b` in 16-bit serial-number arithmetic.
fn seq_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000
}

/// `a` is newer than `b` in 32-bit serial-number arithmetic.
fn ts_newer(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000_0000
}

/// `a` is newer than `b` in serial-number arithmetic modulo `mask + 1` (a power of two).
fn masked_newer(a: u16, b: u16, mask: u16) -> bool {
    let d = a.wrapping_sub(b) & mask;
    d != 0 && d <= mask >> 1
}

/// `a` is newer than `b` in 8-bit serial-number arithmetic.
fn u8_newer(a: u8, b: u8) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x80
}

/// `d` in 90 kHz units, at least 1 and at most [`MAX_TS_STEP`].
fn ts_step(d: Duration) -> u32 {
    let ticks = d
        .as_micros()
        .saturating_mul(9)
        .checked_div(100)
        .unwrap_or(0);
    u32::try_from(ticks)
        .unwrap_or(MAX_TS_STEP)
        .clamp(1, MAX_TS_STEP)
}

/// Which extended sequence numbers of the last 1024 were received (more than the reorder
/// window, so a slot is never shared by two numbers in it).
#[derive(Debug, Clone, Default)]
struct SeqWindow {
    bits: [u64; 16],
}

impl SeqWindow {
    /// The word and bit of extended sequence number `ext`.
    fn slot(ext: i64) -> (usize, u64) {
        let i = (ext as u64 & 1023) as usize;
        (i >> 6, 1u64 << (i & 63))
    }

    fn contains(&self, ext: i64) -> bool {
        let (word, bit) = Self::slot(ext);
        self.bits.get(word).is_some_and(|w| w & bit != 0)
    }

    fn set(&mut self, ext: i64, on: bool) {
        let (word, bit) = Self::slot(ext);
        if let Some(w) = self.bits.get_mut(word) {
            if on {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    /// Forgets the numbers after `from` up to and including `to` (the newest moves to `to`).
    fn advance(&mut self, from: i64, to: i64) {
        if to.saturating_sub(from) >= 1024 {
            self.bits = [0; 16];
            return;
        }
        let mut e = from;
        while e < to {
            e = e.saturating_add(1);
            self.set(e, false);
        }
    }
}

/// One joined upstream session: its SSRC, offsets and receive window.
#[derive(Debug, Clone)]
struct Session {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// Added to the upstream PictureID, then masked to its width; set at the first PictureID.
    pid_offset: Option<u16>,
    /// Added to the upstream TL0PICIDX; set at the first TL0PICIDX.
    tl0_offset: Option<u8>,
    /// Extended sequence number of the joining keyframe.
    start_ext: i64,
    /// Extended sequence number of the newest packet received.
    highest_ext: i64,
    window: SeqWindow,
}

impl Session {
    /// The extended sequence number of `seq`, taken as the nearest to the newest one.
    fn extend(&self, seq: u16) -> i64 {
        let d = seq.wrapping_sub(self.highest_ext as u16) as i16;
        self.highest_ext.saturating_add(i64::from(d))
    }
}

/// The previous session's SSRC, refused for a while after a change.
#[derive(Debug, Clone, Copy)]
struct OldSource {
    ssrc: u32,
    /// When the first packet after the change was seen (the quarantine starts then).
    since: Option<Duration>,
}

/// Rewrites the upstream's VP8 RTP packets into one continuous output stream; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Rewriter {
    first_seq: u16,
    first_timestamp: u32,
    first_picture_id: u16,
    /// The joined session; `None` while waiting for a keyframe.
    session: Option<Session>,
    old_source: Option<OldSource>,
    /// Newest output numbers forwarded (serial arithmetic), over all sessions.
    newest_seq: Option<u16>,
    newest_ts: Option<u32>,
    newest_pid: Option<u16>,
    newest_tl0: Option<u8>,
    /// When the last packet was forwarded.
    last_forward_at: Option<Duration>,
    stats: RewriterStats,
}

impl Rewriter {
    /// Output starts at `first_seq`, `first_timestamp`, `first_picture_id` (caller picks them
    /// at random).
    pub fn new(first_seq: u16, first_timestamp: u32, first_picture_id: u16) -> Self {
        Self {
            first_seq,
            first_timestamp,
            first_picture_id,
            session: None,
            old_source: None,
            newest_seq: None,
            newest_ts: None,
            newest_pid: None,
            newest_tl0: None,
            last_forward_at: None,
            stats: RewriterStats::default(),
        }
    }

    /// The upstream was replaced (a reconnect): the next packets come from a new SSRC with
    /// unrelated numbers; nothing is forwarded until its first keyframe starts.
    pub fn upstream_changed(&mut self) {
        if let Some(s) = self.session.take() {
            self.old_source = Some(OldSource {
                ssrc: s.ssrc,
                since: None,
            });
        } else if let Some(old) = &mut self.old_source {
            // Changed again before a new session was joined: restart the quarantine.
            old.since = None;
        }
    }

    /// Rewrites one upstream packet received at `now`.
    pub fn rewrite(
        &mut self,
        now: Duration,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Rewritten, Skip> {
        let result = self.rewrite_inner(now, ssrc, seq, timestamp, marker, payload);
        let s = &mut self.stats;
        let counter = match result {
            Ok(_) => &mut s.forwarded,
            Err(Skip::Malformed) => &mut s.malformed,
            Err(Skip::WaitingForKeyframe) => &mut s.waiting_for_keyframe,
            Err(Skip::OtherSource) => &mut s.other_source,
            Err(Skip::TooOld) => &mut s.too_old,
        };
        *counter = counter.saturating_add(1);
        result
    }

    /// Counters: packets forwarded and skipped per reason, upstream packets lost and received,
    /// sessions joined (see [`RewriterStats`] for what each counts).
    pub fn stats(&self) -> RewriterStats {
        self.stats
    }

    /// Whether it waits for a keyframe (the caller asks the upstream for one, PLI,
    /// rate-limited).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.session.is_none()
    }

    /// The SSRC of the joined upstream session, if any.
    pub fn upstream_ssrc(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.ssrc)
    }

    /// The next output sequence number a new session would start at.
    pub fn next_seq(&self) -> u16 {
        self.newest_seq
            .map_or(self.first_seq, |s| s.wrapping_add(1))
    }

    fn rewrite_inner(
        &mut self,
        now: Duration,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Rewritten, Skip> {
        let fields = parse_vp8(payload).ok_or(Skip::Malformed)?;
        match &self.session {
            Some(s) if s.ssrc != ssrc => return Err(Skip::OtherSource),
            Some(_) => {}
            None => {
                if let Some(old) = &mut self.old_source {
                    let since = *old.since.get_or_insert(now);
                    if old.ssrc == ssrc && now.saturating_sub(since) < OLD_SOURCE_QUARANTINE {
                        return Err(Skip::OtherSource);
                    }
                }
                if !fields.keyframe_start {
                    return Err(Skip::WaitingForKeyframe);
                }
                self.join(now, ssrc, seq, timestamp);
            }
        }
        let session = self.session.as_mut().ok_or(Skip::WaitingForKeyframe)?;
        self.stats.upstream_received = self.stats.upstream_received.saturating_add(1);

        // Place in the session: not before its start, within the window, not a duplicate.
        let ext = session.extend(seq);
        if ext < session.start_ext
            || session.highest_ext.saturating_sub(ext) > i64::from(REORDER_WINDOW)
            || (ext <= session.highest_ext && session.window.contains(ext))
        {
            return Err(Skip::TooOld);
        }
        if ext > session.highest_ext {
            let jumped = ext.saturating_sub(session.highest_ext).saturating_sub(1);
            let jumped = u64::try_from(jumped).unwrap_or(0);
            self.stats.upstream_lost = self.stats.upstream_lost.saturating_add(jumped);
            session.window.advance(session.highest_ext, ext);
            session.highest_ext = ext;
        }
        session.window.set(ext, true);

        let out_seq = seq.wrapping_add(session.seq_offset);
        let out_ts = timestamp.wrapping_add(session.ts_offset);
        let mut out = payload.to_vec();

        if let Some((pid, wide)) = fields.picture_id {
            let mask = if wide { PID_MASK_15 } else { PID_MASK_7 };
            let offset = *session.pid_offset.get_or_insert_with(|| {
                let target = self
                    .newest_pid
                    .map_or(self.first_picture_id, |p| p.wrapping_add(1));
                target.wrapping_sub(pid)
            });
            let out_pid = pid.wrapping_add(offset) & mask;
            if wide {
                let [hi, lo] = out_pid.to_be_bytes();
                if let Some(b) = out.get_mut(2) {
                    *b = 0x80 | hi;
                }
                if let Some(b) = out.get_mut(3) {
                    *b = lo;
                }
            } else if let Some(b) = out.get_mut(2) {
                *b = out_pid as u8;
            }
            if self
                .newest_pid
                .is_none_or(|n| masked_newer(out_pid, n, mask))
            {
                self.newest_pid = Some(out_pid);
            }
        }

        if let Some((tl0, at)) = fields.tl0 {
            let offset = *session.tl0_offset.get_or_insert_with(|| {
                self.newest_tl0
                    .map_or(0, |n| n.wrapping_add(1).wrapping_sub(tl0))
            });
            let out_tl0 = tl0.wrapping_add(offset);
            if let Some(b) = out.get_mut(at) {
                *b = out_tl0;
            }
            if self.newest_tl0.is_none_or(|n| u8_newer(out_tl0, n)) {
                self.newest_tl0 = Some(out_tl0);
            }
        }

        if self.newest_seq.is_none_or(|n| seq_newer(out_seq, n)) {
            self.newest_seq = Some(out_seq);
        }
        if self.newest_ts.is_none_or(|n| ts_newer(out_ts, n)) {
            self.newest_ts = Some(out_ts);
        }
        self.last_forward_at = Some(now);

        Ok(Rewritten {
            seq: out_seq,
            timestamp: out_ts,
            marker,
            keyframe_start: fields.keyframe_start,
            payload: out,
            keyframe_size: fields.keyframe_size,
        })
    }

    /// Joins a session at its first keyframe: offsets that put it right after everything sent.
    fn join(&mut self, now: Duration, ssrc: u32, seq: u16, timestamp: u32) {
        let target_seq = self.next_seq();
        let target_ts = match (self.newest_ts, self.last_forward_at) {
            (Some(ts), Some(at)) => ts.wrapping_add(ts_step(now.saturating_sub(at))),
            (Some(ts), None) => ts.wrapping_add(1),
            (None, _) => self.first_timestamp,
        };
        let start = i64::from(seq);
        self.session = Some(Session {
            ssrc,
            seq_offset: target_seq.wrapping_sub(seq),
            ts_offset: target_ts.wrapping_sub(timestamp),
            pid_offset: None,
            tl0_offset: None,
            start_ext: start,
            highest_ext: start,
            window: SeqWindow::default(),
        });
        self.old_source = None;
        self.stats.sessions = self.stats.sessions.saturating_add(1);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The PictureID field of a test payload.
    #[derive(Clone, Copy)]
    enum Pid {
        None,
        Short(u8),
        Long(u16),
    }

    /// A VP8 RTP payload: descriptor (S=1 partition 0 when `start`) with `pid` and `tl0` (plus a
    /// TID/KEYIDX byte 0xe5 when `tl0` is given), then a keyframe header for 640x480 when
    /// `key`, else an interframe header, then a few data bytes.
    fn vp8(pid: Pid, tl0: Option<u8>, start: bool, key: bool) -> Vec<u8> {
        let mut x = 0u8;
        let mut ext = Vec::new();
        match pid {
            Pid::None => {}
            Pid::Short(p) => {
                x |= 0x80;
                ext.push(p & 0x7f);
            }
            Pid::Long(p) => {
                x |= 0x80;
                ext.extend_from_slice(&(0x8000 | (p & 0x7fff)).to_be_bytes());
            }
        }
        if let Some(t) = tl0 {
            x |= 0x40 | 0x20 | 0x10;
            ext.push(t);
            ext.push(0xe5);
        }
        let mut out = vec![if start { 0x10 } else { 0x00 }];
        if x != 0 {
            out[0] |= 0x80;
            out.push(x);
            out.extend_from_slice(&ext);
        }
        if key {
            // Frame tag (P=0, show_frame), start code, 640 and 480 with scale bits set.
            out.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
            out.extend_from_slice(&(640u16 | 0x4000).to_le_bytes());
            out.extend_from_slice(&(480u16 | 0x8000).to_le_bytes());
        } else {
            out.extend_from_slice(&[0x31, 0x01, 0x00]);
        }
        out.extend_from_slice(&[0xaa, 0xbb, 0xcc]);
        out
    }

    fn key15(pid: u16) -> Vec<u8> {
        vp8(Pid::Long(pid), None, true, true)
    }

    fn inter15(pid: u16) -> Vec<u8> {
        vp8(Pid::Long(pid), None, true, false)
    }

    /// The PictureID of a (rewritten) payload.
    fn pid_of(p: &[u8]) -> u16 {
        if p[2] & 0x80 != 0 {
            u16::from_be_bytes([p[2] & 0x7f, p[3]])
        } else {
            u16::from(p[2])
        }
    }

    fn ok(r: Result<Rewritten, Skip>) -> Rewritten {
        r.expect("forwarded")
    }

    #[test]
    fn first_packet_must_be_a_keyframe() {
        let mut r = Rewriter::new(100, 5000, 0x1234);
        assert!(r.waiting_for_keyframe());
        assert_eq!(
            r.rewrite(MS, 7, 1, 90, false, &inter15(3)),
            Err(Skip::WaitingForKeyframe)
        );
        // S=1 but not partition 0, and a non-start packet of a keyframe: not a keyframe start.
        let mut p1 = key15(3);
        p1[0] |= 0x01;
        assert_eq!(
            r.rewrite(MS, 7, 2, 90, false, &p1),
            Err(Skip::WaitingForKeyframe)
        );
        assert_eq!(
            r.rewrite(MS, 7, 3, 90, false, &vp8(Pid::Long(3), None, false, true)),
            Err(Skip::WaitingForKeyframe)
        );
        assert_eq!(r.upstream_ssrc(), None);
        let k = ok(r.rewrite(MS, 7, 4, 180, false, &key15(4)));
        assert_eq!((k.seq, k.timestamp), (100, 5000));
        assert_eq!(pid_of(&k.payload), 0x1234);
        assert!(k.keyframe_start);
        assert!(!r.waiting_for_keyframe());
        assert_eq!(r.upstream_ssrc(), Some(7));
        let s = r.stats();
        assert_eq!((s.forwarded, s.waiting_for_keyframe, s.sessions), (1, 3, 1));
    }

    #[test]
    fn continuity_within_a_session_by_offset() {
        let mut r = Rewriter::new(1000, 1_000_000, 500);
        let k = ok(r.rewrite(MS, 1, 40, 9000, false, &key15(20)));
        assert_eq!(
            (k.seq, k.timestamp, pid_of(&k.payload)),
            (1000, 1_000_000, 500)
        );
        let a = ok(r.rewrite(
            MS,
            1,
            41,
            9000,
            true,
            &vp8(Pid::Long(20), None, false, false),
        ));
        assert_eq!((a.seq, a.timestamp, a.marker), (1001, 1_000_000, true));
        assert!(!a.keyframe_start && a.keyframe_size.is_none());
        // 42 lost: the output has the same gap.
        let b = ok(r.rewrite(2 * MS, 1, 43, 12_000, true, &inter15(22)));
        assert_eq!(
            (b.seq, b.timestamp, pid_of(&b.payload)),
            (1003, 1_003_000, 502)
        );
        // The retransmission of 42 arrives late and keeps its place.
        let c = ok(r.rewrite(3 * MS, 1, 42, 10_500, true, &inter15(21)));
        assert_eq!(
            (c.seq, c.timestamp, pid_of(&c.payload)),
            (1002, 1_001_500, 501)
        );
        // The rest of the descriptor and the data are unchanged.
        let input = inter15(23);
        let d = ok(r.rewrite(4 * MS, 1, 44, 15_000, true, &input));
        assert_eq!(d.payload.len(), input.len());
        assert_eq!(d.payload[..2], input[..2]);
        assert_eq!(d.payload[4..], input[4..]);
        assert_eq!(d.payload[2] & 0x80, 0x80, "M bit kept");
    }

    #[test]
    fn reconnect_continues_strictly_after_the_last_output() {
        // Output and upstream both wrap around 0xffff in the first session.
        let mut r = Rewriter::new(0xfffe, 0xffff_ff00, 0x7ffe);
        ok(r.rewrite(
            Duration::ZERO,
            1,
            0xfffd,
            0xffff_fff0,
            false,
            &key15(0x7fff),
        ));
        let mut last = None;
        for i in 1..4u16 {
            let seq = 0xfffdu16.wrapping_add(i);
            let ts = 0xffff_fff0u32.wrapping_add(3000 * u32::from(i));
            last = Some(ok(r.rewrite(
                MS * 33 * u32::from(i),
                1,
                seq,
                ts,
                true,
                &inter15(i.wrapping_sub(1)), // upstream PictureID wraps 0x7fff -> 0
            )));
        }
        let last = last.expect("sent");
        assert_eq!(last.seq, 0x0001);
        assert_eq!(last.timestamp, 0xffff_ff00u32.wrapping_add(9000));
        assert_eq!(pid_of(&last.payload), 0x0001);
        let last_at = MS * 99;

        r.upstream_changed();
        assert!(r.waiting_for_keyframe());
        // The new session's numbers are lower than the old ones, and unrelated.
        let now = last_at + Duration::from_millis(250);
        let k = ok(r.rewrite(now, 2, 3, 10, false, &key15(2)));
        assert_eq!(k.seq, 0x0002);
        assert_eq!(k.timestamp, last.timestamp.wrapping_add(250 * 90));
        assert_eq!(pid_of(&k.payload), 0x0002);
        let n = ok(r.rewrite(now + 33 * MS, 2, 4, 3010, true, &inter15(3)));
        assert_eq!((n.seq, n.timestamp), (0x0003, k.timestamp + 3000));
        assert_eq!(pid_of(&n.payload), 0x0003);
        assert_eq!(r.stats().sessions, 2);
    }

    #[test]
    fn reconnect_without_elapsed_time_still_advances_the_timestamp() {
        let mut r = Rewriter::new(10, 100, 10);
        ok(r.rewrite(MS, 1, 500, 40_000, true, &key15(1)));
        r.upstream_changed();
        // Same instant, and even a `now` earlier than the last forward: step of 1.
        let k = ok(r.rewrite(Duration::ZERO, 2, 60_000, 7, true, &key15(9000)));
        assert_eq!((k.seq, k.timestamp, pid_of(&k.payload)), (11, 101, 11));
        r.upstream_changed();
        // Ten hours later: the step is capped so that the timestamp still reads as newer.
        let k = ok(r.rewrite(Duration::from_secs(36_000), 3, 1, 1, true, &key15(1)));
        assert_eq!(k.timestamp, 101u32.wrapping_add(MAX_TS_STEP));
        assert!(ts_newer(k.timestamp, 101));
    }

    #[test]
    fn new_session_waits_for_its_keyframe_and_old_packets_are_other_source() {
        let mut r = Rewriter::new(0, 0, 0);
        ok(r.rewrite(MS, 1, 10, 0, true, &key15(0)));
        ok(r.rewrite(2 * MS, 1, 11, 3000, true, &inter15(1)));
        // Another SSRC while joined to 1, without a change: OtherSource, even a keyframe.
        assert_eq!(
            r.rewrite(3 * MS, 2, 5, 0, true, &key15(0)),
            Err(Skip::OtherSource)
        );
        r.upstream_changed();
        // Interframes of the new session before its keyframe are not forwarded.
        assert_eq!(
            r.rewrite(4 * MS, 2, 100, 50, true, &inter15(40)),
            Err(Skip::WaitingForKeyframe)
        );
        // Late packets of the old session, even a keyframe start, are not taken for the new one.
        assert_eq!(
            r.rewrite(5 * MS, 1, 12, 6000, true, &inter15(2)),
            Err(Skip::OtherSource)
        );
        assert_eq!(
            r.rewrite(5 * MS, 1, 13, 9000, true, &key15(3)),
            Err(Skip::OtherSource)
        );
        assert!(r.waiting_for_keyframe());
        let k = ok(r.rewrite(6 * MS, 2, 101, 3050, true, &key15(41)));
        assert_eq!((k.seq, pid_of(&k.payload)), (2, 2));
        // A packet of the new session from before its keyframe would collide: TooOld.
        assert_eq!(
            r.rewrite(7 * MS, 2, 100, 50, true, &inter15(40)),
            Err(Skip::TooOld)
        );
        assert_eq!(
            r.rewrite(8 * MS, 1, 14, 12_000, true, &inter15(4)),
            Err(Skip::OtherSource)
        );
        let s = r.stats();
        assert_eq!(
            (
                s.forwarded,
                s.other_source,
                s.waiting_for_keyframe,
                s.too_old
            ),
            (3, 4, 1, 1)
        );
    }

    #[test]
    fn reused_ssrc_is_accepted_after_the_quarantine() {
        let mut r = Rewriter::new(0, 0, 0);
        ok(r.rewrite(MS, 9, 10, 0, true, &key15(0)));
        r.upstream_changed();
        let t0 = Duration::from_secs(10);
        assert_eq!(
            r.rewrite(t0, 9, 30_000, 5, true, &key15(7)),
            Err(Skip::OtherSource)
        );
        assert_eq!(
            r.rewrite(
                t0 + OLD_SOURCE_QUARANTINE - MS,
                9,
                30_001,
                5,
                true,
                &key15(7)
            ),
            Err(Skip::OtherSource)
        );
        let k = ok(r.rewrite(t0 + OLD_SOURCE_QUARANTINE, 9, 30_002, 5, true, &key15(7)));
        assert_eq!(k.seq, 1);
    }

    #[test]
    fn seven_bit_picture_id_wraps_mod_128_and_length_never_changes() {
        let mut r = Rewriter::new(0, 0, 0x7f7e); // masked to 7 bits: 0x7e
        let input = vp8(Pid::Short(5), None, true, true);
        let k = ok(r.rewrite(MS, 1, 0, 0, true, &input));
        assert_eq!(k.payload.len(), input.len());
        assert_eq!(k.payload[2], 0x7e);
        let mut seen = vec![k.payload[2]];
        for i in 1..=200u16 {
            let input = vp8(Pid::Short(((5 + i) & 0x7f) as u8), None, true, false);
            let p = ok(r.rewrite(MS, 1, i, u32::from(i) * 3000, true, &input));
            assert_eq!(p.payload.len(), input.len());
            assert_eq!(p.payload[2] & 0x80, 0, "stays a 7-bit PictureID");
            assert_eq!(p.payload[3..], input[3..]);
            seen.push(p.payload[2]);
        }
        for w in seen.windows(2) {
            assert_eq!(w[1], (w[0] + 1) & 0x7f);
        }
        // A reconnect continues mod 128 too.
        r.upstream_changed();
        let k = ok(r.rewrite(
            2 * MS,
            2,
            9,
            9,
            true,
            &vp8(Pid::Short(90), None, true, true),
        ));
        assert_eq!(k.payload[2], (seen[200] + 1) & 0x7f);
    }

    #[test]
    fn tl0picidx_is_rewritten_and_tid_byte_kept() {
        let mut r = Rewriter::new(0, 0, 300);
        let input = vp8(Pid::Long(9), Some(200), true, true);
        let k = ok(r.rewrite(MS, 1, 0, 0, true, &input));
        // The first session keeps the upstream's TL0PICIDX.
        assert_eq!(
            (pid_of(&k.payload), k.payload[4], k.payload[5]),
            (300, 200, 0xe5)
        );
        let n = ok(r.rewrite(
            MS,
            1,
            1,
            0,
            true,
            &vp8(Pid::Long(10), Some(201), true, false),
        ));
        assert_eq!(n.payload[4], 201);
        r.upstream_changed();
        let input = vp8(Pid::Short(3), Some(17), true, true);
        let k = ok(r.rewrite(2 * MS, 2, 0, 0, true, &input));
        assert_eq!(k.payload.len(), input.len());
        assert_eq!((k.payload[2], k.payload[3], k.payload[4]), (46, 202, 0xe5)); // 302 mod 128
        let n = ok(r.rewrite(
            3 * MS,
            2,
            1,
            0,
            true,
            &vp8(Pid::Short(4), Some(18), true, false),
        ));
        assert_eq!((n.payload[2], n.payload[3]), (47, 203));
    }

    #[test]
    fn payload_without_picture_id_is_forwarded_unchanged() {
        let mut r = Rewriter::new(5, 6, 7);
        let input = vp8(Pid::None, None, true, true);
        let k = ok(r.rewrite(MS, 1, 0, 0, true, &input));
        assert_eq!(k.payload, input);
        assert_eq!(k.keyframe_size, Some((640, 480)));
        let input = vp8(Pid::None, Some(4), true, false);
        let n = ok(r.rewrite(MS, 1, 1, 0, true, &input));
        assert_eq!(
            n.payload, input,
            "first session keeps the upstream's TL0PICIDX"
        );
    }

    #[test]
    fn malformed_inputs_are_skipped() {
        let mut r = Rewriter::new(0, 0, 0);
        assert_eq!(r.rewrite(MS, 1, 0, 0, true, &[]), Err(Skip::Malformed));
        // Every truncation of full descriptors (7- and 15-bit PictureID, TL0PICIDX, TID byte),
        // up to and including the descriptor alone with no VP8 data.
        for (full, header) in [
            (vp8(Pid::Long(1), Some(2), true, true), 6),
            (vp8(Pid::Short(1), Some(2), true, true), 5),
            (vp8(Pid::Long(1), None, true, true), 4),
            (vp8(Pid::None, None, true, true), 1),
        ] {
            for len in 0..=header {
                assert_eq!(
                    r.rewrite(MS, 1, 0, 0, true, &full[..len]),
                    Err(Skip::Malformed),
                    "{len} bytes of {full:02x?}"
                );
            }
            // One byte of VP8 data more and it is usable.
            assert!(parse_vp8(&full[..=header]).is_some());
        }
        // X set but no extension byte; I set but no PictureID; M set but one PictureID byte;
        // T/K set but no TID byte.
        for bad in [
            &[0x90][..],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x81],
            &[0x90, 0x10],
        ] {
            assert_eq!(r.rewrite(MS, 1, 0, 0, true, bad), Err(Skip::Malformed));
        }
        assert_eq!(r.stats().malformed, 1 + 7 + 6 + 5 + 2 + 4);
        assert!(r.waiting_for_keyframe());
        // A keyframe start too short for the size is still a keyframe start, without a size.
        let k = ok(r.rewrite(MS, 1, 0, 0, true, &[0x10, 0x10, 0x02]));
        assert!(k.keyframe_start);
        assert_eq!(k.keyframe_size, None);
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut r = Rewriter::new(1, 2, 3);
        let mut calls = 0u64;
        for i in 0..20_000u64 {
            let v = next();
            let len = (v % 14) as usize;
            let mut buf = [0u8; 16];
            for b in buf.iter_mut() {
                *b = next() as u8;
            }
            // Bias towards starts of partition 0 so that sessions get joined.
            if v & 0x100 != 0 {
                buf[0] = (buf[0] & 0xe8) | 0x10;
            }
            if v & 0xff == 0 {
                r.upstream_changed();
            }
            let ssrc = (v >> 20) as u32 % 3;
            let seq = (v >> 32) as u16 % 64;
            let now = Duration::from_micros(i * 997 + (v >> 48));
            calls += 1;
            if let Ok(p) = r.rewrite(now, ssrc, seq, (v >> 24) as u32, v & 1 != 0, &buf[..len]) {
                assert_eq!(p.payload.len(), len);
            }
        }
        let s = r.stats();
        assert_eq!(
            s.forwarded + s.malformed + s.waiting_for_keyframe + s.other_source + s.too_old,
            calls
        );
        assert!(s.forwarded > 0 && s.sessions > 1);
    }

    #[test]
    fn keyframe_size_is_parsed() {
        let mut r = Rewriter::new(0, 0, 0);
        let k = ok(r.rewrite(MS, 1, 0, 0, false, &key15(0)));
        assert_eq!(k.keyframe_size, Some((640, 480)));
        // Not on an interframe, nor without the start code.
        let n = ok(r.rewrite(MS, 1, 1, 0, true, &inter15(0)));
        assert_eq!(n.keyframe_size, None);
        let mut bad = key15(1);
        bad[4 + 3] = 0x9c;
        let b = ok(r.rewrite(MS, 1, 2, 0, false, &bad));
        assert!(b.keyframe_start);
        assert_eq!(b.keyframe_size, None);
    }

    #[test]
    fn too_old_and_duplicates_are_dropped() {
        let mut r = Rewriter::new(0, 0, 0);
        ok(r.rewrite(MS, 1, 65_000, 0, true, &key15(0)));
        for seq in 65_001..=65_535u16 {
            ok(r.rewrite(MS, 1, seq, 0, true, &inter15(1)));
        }
        // Upstream wraps; 487 and 600 missing, the newest is 1000.
        for seq in 0..=1000u16 {
            if seq != 600 && seq != 487 {
                ok(r.rewrite(MS, 1, seq, 0, true, &inter15(1)));
            }
        }
        assert_eq!(r.stats().upstream_lost, 2);
        // Duplicate of the newest and of an old one: dropped.
        assert_eq!(
            r.rewrite(MS, 1, 1000, 0, true, &inter15(1)),
            Err(Skip::TooOld)
        );
        assert_eq!(
            r.rewrite(MS, 1, 900, 0, true, &inter15(1)),
            Err(Skip::TooOld)
        );
        // 600 is 400 back: forwarded at its place; 487 is 513 back: too old.
        let late = ok(r.rewrite(MS, 1, 600, 0, true, &inter15(1)));
        assert_eq!(late.seq, 600u16.wrapping_sub(65_000));
        assert_eq!(
            r.rewrite(MS, 1, 487, 0, true, &inter15(1)),
            Err(Skip::TooOld)
        );
        // 488 back exactly the window: still accepted if missing (it is not, so a duplicate).
        assert_eq!(
            r.rewrite(MS, 1, 488, 0, true, &inter15(1)),
            Err(Skip::TooOld)
        );
        let s = r.stats();
        assert_eq!(
            (s.too_old, s.upstream_lost),
            (4, 2),
            "the late 600 still counts"
        );
    }

    #[test]
    fn loss_is_counted_per_session() {
        let mut r = Rewriter::new(0, 0, 0);
        // Upstream packets before the joining keyframe do not count.
        let _ = r.rewrite(MS, 1, 5, 0, true, &inter15(0));
        ok(r.rewrite(MS, 1, 10, 0, true, &key15(0)));
        for seq in [11u16, 14, 15, 20] {
            ok(r.rewrite(MS, 1, seq, 0, true, &inter15(1)));
        }
        // 12, 13, 16..=19 missing.
        assert_eq!(r.stats().upstream_lost, 6);
        ok(r.rewrite(MS, 1, 13, 0, true, &inter15(1)));
        assert_eq!(
            r.stats().upstream_lost,
            6,
            "a late fill still counts (a counter)"
        );
        assert_eq!(
            r.rewrite(MS, 1, 13, 0, true, &inter15(1)),
            Err(Skip::TooOld),
            "a duplicate"
        );
        assert_eq!(r.stats().upstream_lost, 6);
        r.upstream_changed();
        // The new session's packets before its keyframe do not count either.
        let _ = r.rewrite(2 * MS, 2, 0xfff0, 0, true, &inter15(0));
        ok(r.rewrite(2 * MS, 2, 0xfffe, 0, true, &key15(0)));
        ok(r.rewrite(2 * MS, 2, 0x0001, 0, true, &inter15(1))); // 0xffff and 0 lost
        let s = r.stats();
        assert_eq!(s.upstream_lost, 8);
        // 10, 11, 14, 15, 20, 13, 13 again; 0xfffe, 1.
        assert_eq!(s.upstream_received, 9);
        assert_eq!(s.sessions, 2);
    }

    #[test]
    fn many_reconnects_keep_the_output_monotonic() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut r = Rewriter::new(0xff00, 0xffff_0000, 0x7ff0);
        let mut now = Duration::ZERO;
        let mut prev: Option<Rewritten> = None;
        for session in 0..50u32 {
            r.upstream_changed();
            let v = next();
            let (mut seq, mut ts, mut pid) = (v as u16, (v >> 16) as u32, (v >> 48) as u16);
            for i in 0..40u16 {
                now += 33 * MS;
                let payload = if i == 0 { key15(pid) } else { inter15(pid) };
                let p = ok(r.rewrite(now, session, seq, ts, true, &payload));
                if let Some(q) = &prev {
                    assert_eq!(p.seq, q.seq.wrapping_add(1));
                    assert!(ts_newer(p.timestamp, q.timestamp));
                    assert_eq!(pid_of(&p.payload), (pid_of(&q.payload) + 1) & 0x7fff);
                }
                prev = Some(p);
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(2970);
                pid = pid.wrapping_add(1) & 0x7fff;
            }
        }
        assert_eq!(r.stats().sessions, 50);
        assert_eq!(r.stats().upstream_lost, 0);
    }

    #[test]
    fn skip_messages_say_what_went_wrong() {
        assert!(Skip::TooOld.to_string().contains("reorder window (512"));
        assert!(Skip::WaitingForKeyframe.to_string().contains("keyframe"));
    }
}
