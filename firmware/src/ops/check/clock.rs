//! Check: the system clock is synchronised (boards without an RTC boot with a wrong time; the
//! light client's trusting period and the attestation times depend on it). The kernel's NTP
//! state is read with `adjtimex` (what `timedatectl` shows as "System clock synchronized").

use super::Outcome;
use crate::config::Config;

/// `Some(true)` synchronised, `Some(false)` not, `None` unknown.
pub fn synchronised() -> Option<bool> {
    // SAFETY: `timex` is plain data; all-zero (modes 0) asks the kernel to change nothing.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, writable `timex` with modes 0 (read only).
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        None
    } else {
        Some(state != libc::TIME_ERROR)
    }
}

/// The kernel's view of the clock.
pub fn check(cfg: &Config) -> Outcome {
    let fix = "enable time sync (`timedatectl set-ntp true`, systemd-timesyncd or chrony) and \
               make sure the board reaches an NTP server";
    match synchronised() {
        Some(true) => Outcome::ok("clock", "the system clock is synchronised"),
        Some(false) if cfg.chain.enabled() => Outcome::fail(
            "clock",
            "the system clock is not synchronised; light-client verification needs the time",
            fix,
        ),
        Some(false) => Outcome::warn("clock", "the system clock is not synchronised", fix),
        None => Outcome::warn(
            "clock",
            "cannot tell whether the clock is synchronised",
            fix,
        ),
    }
}
