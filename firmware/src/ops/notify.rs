//! systemd readiness and watchdog (`sd_notify`), tied to real progress.
//!
//! `READY=1` is sent once the HTTP port is bound and the media threads run. `WATCHDOG=1` is sent
//! at half the `WatchdogSec` interval, but only while encoded frames are actually leaving the
//! encoder: a pipeline that stalls (camera gone, encoder stuck) stops the pings, and systemd
//! restarts the service. The protocol is one datagram per message on `$NOTIFY_SOCKET` (a path or
//! an abstract name starting with `@`), so no crate is needed for it. Outside systemd (no
//! `$NOTIFY_SOCKET`) everything here is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager, if there is one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (honouring `$WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty())
            .and_then(|path| UnixDatagram::unbound().ok().map(|s| (s, path)));
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|us| *us > 0 && for_us)
            .map(Duration::from_micros);
        Self { socket, watchdog }
    }

    /// How often to ping (half the watchdog timeout), when systemd asked for pings.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|w| w / 2)
    }

    /// Sends one message (e.g. `READY=1`); errors are logged once and otherwise ignored.
    pub fn send(&self, message: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let result = if let Some(name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
        } else {
            socket.send_to(message.as_bytes(), path)
        };
        if let Err(e) = result {
            tracing::warn!(socket = %path, error = %e, "cannot notify the service manager");
        }
    }
}

/// Whether to ping the watchdog: frames must have left since the last ping.
pub fn frames_advanced(frames_at_last_ping: u64, frames_now: u64) -> bool {
    frames_now > frames_at_last_ping
}

/// Pings the watchdog while frames flow; sends a `STATUS=` line each time. Runs until aborted.
pub async fn watchdog_loop(
    notifier: std::sync::Arc<Notifier>,
    stats: std::sync::Arc<crate::stats::Stats>,
    control: std::sync::Arc<crate::media::control::MediaControl>,
) {
    let Some(interval) = notifier.ping_interval() else {
        return;
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = stats.frames_sent.load(std::sync::atomic::Ordering::Relaxed);
    let mut stalled = false;
    loop {
        tick.tick().await;
        let now = stats.frames_sent.load(std::sync::atomic::Ordering::Relaxed);
        // A stream stopped by the operator is not stalled: keep pinging.
        if frames_advanced(last, now) || control.paused() {
            if stalled {
                tracing::info!("frames flow again; watchdog pings resume");
                stalled = false;
            }
            notifier.send(&format!(
                "WATCHDOG=1\nSTATUS=streaming {:.1} fps, {} viewers",
                stats.fps(),
                stats.viewers.load(std::sync::atomic::Ordering::Relaxed)
            ));
        } else if !stalled {
            tracing::error!("no frame left the encoder since the last watchdog ping; not pinging");
            notifier.send("STATUS=stalled: no frames leaving the encoder");
            stalled = true;
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_only_while_frames_advance() {
        assert!(frames_advanced(10, 11));
        assert!(!frames_advanced(10, 10));
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let manager = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier {
            socket: Some((
                UnixDatagram::unbound().expect("socket"),
                path.to_string_lossy().into_owned(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        assert_eq!(notifier.ping_interval(), Some(Duration::from_secs(5)));
        notifier.send("READY=1");
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
    }

    /// What the service manager received since the last call.
    fn received(manager: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = manager.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    /// The watchdog pings while frames leave, stops when they stop (so systemd restarts a
    /// stalled node), and resumes when they flow again. Paused tokio time: no real waiting.
    #[tokio::test(start_paused = true)]
    async fn watchdog_stops_pinging_when_frames_stop() {
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let manager = UnixDatagram::bind(&path).expect("bind");
        manager.set_nonblocking(true).expect("nonblocking");
        let notifier = Arc::new(Notifier {
            socket: Some((
                UnixDatagram::unbound().expect("socket"),
                path.to_string_lossy().into_owned(),
            )),
            watchdog: Some(Duration::from_secs(2)),
        });
        let stats = Arc::new(crate::stats::Stats::new());
        let control = Arc::new(crate::media::control::MediaControl::default());
        let task = tokio::spawn(watchdog_loop(notifier, stats.clone(), control.clone()));
        let period = async |frames: u64| {
            stats.frames_sent.fetch_add(frames, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            received(&manager)
        };
        // The first tick is at once (no frames yet: not a ping); then frames flow.
        let _ = period(0).await;
        for _ in 0..3 {
            let got = period(30).await;
            assert!(
                got.len() == 1 && got[0].starts_with("WATCHDOG=1\nSTATUS=streaming"),
                "{got:?}"
            );
        }
        // Frames stop: one STATUS line, then silence while they stay stopped.
        let got = period(0).await;
        assert_eq!(got, ["STATUS=stalled: no frames leaving the encoder"]);
        for _ in 0..5 {
            assert_eq!(period(0).await, Vec::<String>::new());
        }
        // They flow again: pings resume.
        let got = period(30).await;
        assert!(
            got.len() == 1 && got[0].starts_with("WATCHDOG=1"),
            "{got:?}"
        );
        // An operator's `stream stop` is not a stall: pings go on without frames.
        control.set_paused(true);
        assert!(period(0).await[0].starts_with("WATCHDOG=1"));
        task.abort();
    }

    #[test]
    fn no_socket_means_no_pings() {
        let n = Notifier {
            socket: None,
            watchdog: Some(Duration::from_secs(10)),
        };
        assert_eq!(n.ping_interval(), None);
        n.send("READY=1");
    }
}
