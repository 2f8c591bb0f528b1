//! The daemon's logging: stderr as before, a filter that `sutantra set-log-level` replaces at run
//! time (a `tracing-subscriber` reload handle), and a ring of the last [`RING_LINES`] lines that
//! `sutantra logs` reads and `logs --follow` streams (a broadcast channel; a follower that falls
//! behind is told how many lines it missed, the daemon never waits for it).
//!
//! Bounded: at most [`RING_LINES`] lines of at most [`MAX_LINE`] bytes each.
//!
//! Log lines carry strings from peers, viewers and RPC servers (an SDP field, a server's error
//! text), so every emitted line is escaped before it can reach a terminal: [`escape_controls`]
//! turns control characters (C0 but the final newline, DEL, C1) and the bidirectional overrides
//! and isolates into visible `\x1b` / `\u{202e}` text. It runs in one place per output: the
//! stderr writer ([`EscapedStderr`], so the formatter emits no colours of its own) and the ring
//! (so `sutantra logs` and the serial console get escaped lines).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Lines the ring keeps.
pub const RING_LINES: usize = super::proto::MAX_LOG_LINES;
/// Bytes of text the ring keeps (allocated once): about 1000 lines of 250 bytes.
pub const RING_BYTES: usize = 256 * 1024;
/// Longest line kept (longer ones are cut at a character boundary).
pub const MAX_LINE: usize = 2048;
/// New lines a follower may lag behind before it misses some.
const FOLLOW_BACKLOG: usize = 256;

/// What `set-log-level` and `logs` reach.
#[derive(Debug)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    level: Mutex<String>,
    ring: Mutex<LineRing>,
    tx: broadcast::Sender<String>,
}

/// The last lines of the log in one buffer allocated at start. A `String` per line would be
/// allocated on whichever thread logged it, among a viewer session's allocations; when the
/// session has gone, each surviving line pins a page the allocator cannot give back (measured
/// with `bench/churn.py`, see `ops::memory`).
#[derive(Debug)]
struct LineRing {
    buf: Box<[u8]>,
    /// (start, length) in `buf`, oldest first.
    lines: VecDeque<(usize, usize)>,
    /// Where the next line goes.
    head: usize,
    /// Most lines kept.
    max_lines: usize,
}

impl LineRing {
    fn new(bytes: usize, lines: usize) -> Self {
        Self {
            // Filled, not zeroed: a zeroed buffer this large is fresh pages the kernel maps
            // only as the node logs, so its 256 KiB would show up hours later as growth (it
            // did, after a churn of viewers that logged a lap of the ring). Written now, its
            // pages are resident from the start, like the frame pool's.
            buf: vec![b'\n'; bytes].into_boxed_slice(),
            lines: VecDeque::with_capacity(lines),
            head: 0,
            max_lines: lines.max(1),
        }
    }

    /// Keeps `line` (cut to the buffer's size), dropping the oldest lines it overwrites and,
    /// at the line limit, the oldest one.
    fn push(&mut self, line: &str) {
        let mut cut = line.to_string();
        truncate(&mut cut, self.buf.len());
        let len = cut.len();
        if self.head.saturating_add(len) > self.buf.len() {
            // The tail of the buffer holds the oldest lines (the lap before this one): they go,
            // and the line starts over at the beginning.
            let head = self.head;
            while self.lines.front().is_some_and(|&(s, _)| s >= head) {
                self.lines.pop_front();
            }
            self.head = 0;
        }
        let (start, end) = (self.head, self.head.saturating_add(len));
        // Lines of the lap before that this one overwrites are the oldest: at the front.
        while self
            .lines
            .front()
            .is_some_and(|&(s, _)| s >= start && s < end.max(start.saturating_add(1)))
        {
            self.lines.pop_front();
        }
        if self.lines.len() >= self.max_lines {
            self.lines.pop_front();
        }
        if let Some(dst) = self.buf.get_mut(start..end) {
            dst.copy_from_slice(cut.as_bytes());
            self.lines.push_back((start, len));
            self.head = end;
        }
    }

    /// The last `n` lines, oldest first.
    fn recent(&self, n: usize) -> Vec<String> {
        let skip = self.lines.len().saturating_sub(n);
        self.lines
            .iter()
            .skip(skip)
            .filter_map(|&(s, l)| self.buf.get(s..s.saturating_add(l)))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

static CONTROL: OnceLock<LogControl> = OnceLock::new();

/// The daemon's log control, once [`init`] ran.
pub fn control() -> Option<&'static LogControl> {
    CONTROL.get()
}

/// The node's filter for `level`: the WebRTC stack logs every dropped packet at error level, so
/// it stays at `warn` unless the filter names it.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    let mut f = EnvFilter::try_new(level).map_err(|e| {
        format!("{level:?} is not a log filter ({e}); use e.g. info, debug, sutantra=debug")
    })?;
    for quiet in ["webrtc=warn", "rtc=warn"] {
        let target = quiet.split('=').next().unwrap_or_default();
        if !level.contains(target)
            && let Ok(d) = quiet.parse()
        {
            f = f.add_directive(d);
        }
    }
    Ok(f)
}

/// Installs the global subscriber: `RUST_LOG` if set, else `level` (else `info`).
pub fn init(level: &str) {
    let (initial, text) = match std::env::var("RUST_LOG") {
        Ok(env) if filter(&env).is_ok() => (filter(&env), env),
        _ => match filter(level) {
            Ok(f) => (Ok(f), level.to_string()),
            Err(_) => (filter("info"), "info".to_string()),
        },
    };
    let initial = initial.unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter_layer, handle) = reload::Layer::new(initial);
    let (tx, _) = broadcast::channel(FOLLOW_BACKLOG);
    let ctl = LogControl {
        handle,
        level: Mutex::new(text),
        ring: Mutex::new(LineRing::new(RING_BYTES, RING_LINES)),
        tx,
    };
    if CONTROL.set(ctl).is_err() {
        return;
    }
    let _ = tracing_subscriber::registry()
        .with(filter_layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(EscapedStderr)
                // Colour codes would be escaped like any other ESC: plain text only.
                .with_ansi(false)
                .with_target(false),
        )
        .with(RingLayer)
        .try_init();
}

impl LogControl {
    /// The filter in force.
    pub fn level(&self) -> String {
        self.level
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the filter.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let f = filter(level)?;
        self.handle
            .reload(f)
            .map_err(|e| format!("cannot change the log filter: {e}"))?;
        if let Ok(mut l) = self.level.lock() {
            *l = level.to_string();
        }
        Ok(())
    }

    /// The last `n` lines, oldest first.
    pub fn recent(&self, n: usize) -> Vec<String> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.recent(n)
    }

    /// New lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    fn push(&self, line: String) {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(&line);
        // Kept by the channel only while a `logs --follow` listens.
        let _ = self.tx.send(line);
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a UNIX time in milliseconds (UTC, proleptic Gregorian).
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Whether `c` must not reach a terminal as it is: C0 controls (newline and tab included),
/// DEL, C1 controls, and the bidirectional marks, embeddings, overrides and isolates that can
/// make a line display in an order other than the one it was written in.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every [unsafe character](is_unsafe_char) written out as visible text: `\n`, `\r`,
/// `\t`, `\x1b` (other C0, DEL and C1), `\u{202e}` (the others). Borrowed when nothing needed
/// escaping. Backslashes are left alone: the result is for eyes, not for parsing back.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe_char(c) && u32::from(c) <= 0xff => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if is_unsafe_char(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `bytes` escaped for a terminal, keeping one final newline: [`escape_controls`] on the text,
/// and bytes that are not UTF-8 as `\xNN`.
pub fn escape_line(bytes: &[u8]) -> String {
    let (body, newline) = match bytes.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (bytes, false),
    };
    let mut out = String::with_capacity(body.len() + 16);
    for chunk in body.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    if newline {
        out.push('\n');
    }
    out
}

/// The stderr writer of the log: each formatted line (one `write` per event) is escaped with
/// [`escape_line`] and written whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapedStderr {
    type Writer = Escaped<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaped(io::stderr())
    }
}

/// A writer that escapes what it is given with [`escape_line`] before passing it on.
#[derive(Debug)]
pub struct Escaped<W: io::Write>(pub W);

impl<W: io::Write> io::Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(escape_line(buf).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

struct RingLayer;

struct LineVisitor<'a>(&'a mut String, &'a mut String);

impl tracing::field::Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.1, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let Some(ctl) = CONTROL.get() else {
            return;
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        ctl.push(ring_line(event, now_ms));
    }
}

/// The ring's line for `event`: time, level, message and fields, escaped, cut to [`MAX_LINE`].
fn ring_line(event: &tracing::Event<'_>, now_ms: u64) -> String {
    let (mut message, mut fields) = (String::new(), String::new());
    event.record(&mut LineVisitor(&mut message, &mut fields));
    let mut line = format!(
        "{} {:>5} {}{}",
        rfc3339_ms(now_ms),
        event.metadata().level(),
        escape_controls(&message),
        escape_controls(&fields)
    );
    truncate(&mut line, MAX_LINE);
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ring_keeps_the_newest_lines_in_order_within_its_bytes() {
        let mut ring = super::LineRing::new(1000, 8);
        let mut all = Vec::new();
        let mut x: u32 = 7;
        for i in 0..500 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let len = (x >> 16) as usize % 300;
            let line = format!("{i}:{}", "é".repeat(len / 2));
            ring.push(&line);
            all.push(line);
            let got = ring.recent(usize::MAX);
            assert!(
                got.len() <= 8 && !got.is_empty(),
                "{i}: {} lines",
                got.len()
            );
            // What it keeps is the newest lines, in order (a line longer than the buffer is cut).
            let want: Vec<String> = all[all.len() - got.len()..]
                .iter()
                .map(|l| {
                    let mut l = l.clone();
                    super::truncate(&mut l, 1000);
                    l
                })
                .collect();
            assert_eq!(got, want, "after line {i}");
            assert!(got.iter().map(String::len).sum::<usize>() <= 1000);
        }
        assert_eq!(ring.recent(2), all[all.len() - 2..].to_vec());
        let mut huge = super::LineRing::new(16, 4);
        huge.push(&"x".repeat(100));
        huge.push("");
        assert_eq!(huge.recent(9), vec!["x".repeat(16), String::new()]);
    }

    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn lines_are_cut_at_a_character_boundary() {
        let mut s = "aé".repeat(10);
        truncate(&mut s, 4);
        assert_eq!(s, "aéa");
    }

    #[test]
    fn control_characters_never_reach_a_terminal() {
        let hostile = "peer says \x1b[2Jhi\u{202e}txt.exe\u{2066}\x07\x7f\u{9b}31m\r\nfake line";
        let text = escape_controls(hostile);
        assert_eq!(
            text,
            "peer says \\x1b[2Jhi\\u{202e}txt.exe\\u{2066}\\x07\\x7f\\x9b31m\\r\\nfake line"
        );
        assert!(!text.chars().any(is_unsafe_char), "{text:?}");
        assert!(matches!(escape_controls("plain é ✓"), Cow::Borrowed(_)));

        // The stderr writer: one line per event, the final newline kept, nothing else raw.
        let mut w = Escaped(Vec::new());
        io::Write::write_all(&mut w, format!("INFO {hostile}\n").as_bytes()).expect("write");
        io::Write::write_all(&mut w, b"bad \xff\xfe utf-8\n").expect("write");
        let out = String::from_utf8(w.0).expect("UTF-8");
        assert_eq!(out.matches('\n').count(), 2, "{out:?}");
        assert!(out.ends_with("bad \\xff\\xfe utf-8\n"), "{out:?}");
        assert!(
            out.contains("\\x1b[2J") && out.contains("\\u{202e}"),
            "{out:?}"
        );
        assert!(
            out.lines().all(|l| !l.chars().any(is_unsafe_char)),
            "{out:?}"
        );
    }

    #[test]
    fn ring_lines_are_escaped() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt as _;
        /// Collects what the ring would keep (the global ring needs `init`, once per process).
        struct Collect(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> Layer<S> for Collect {
            fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
                if let Ok(mut lines) = self.0.lock() {
                    lines.push(ring_line(event, 0));
                }
            }
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Collect(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(server = "x\u{202e}y", "answer \x1b[2J from the server");
        });
        let lines = lines.lock().expect("lock");
        assert_eq!(
            lines.as_slice(),
            ["1970-01-01T00:00:00.000Z  WARN answer \\x1b[2J from the server server=x\\u{202e}y"]
        );
    }

    #[test]
    fn filters_keep_webrtc_quiet_unless_named() {
        assert!(filter("debug").is_ok());
        assert!(filter("sutantra=debug,webrtc=debug").is_ok());
        let e = filter("debug[").expect_err("bad filter");
        assert!(e.contains("not a log filter"), "{e}");
    }
}
