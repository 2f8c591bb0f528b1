//! Check: free space for the data directory (the store and the attestation outbox).

use super::Outcome;
use crate::config::Config;
use std::path::Path;

const FAIL_BELOW: u64 = 50 * 1024 * 1024;
const WARN_BELOW: u64 = 500 * 1024 * 1024;

/// Bytes available to this user on the file system holding `path` (or its nearest parent).
pub fn available(path: &Path) -> Option<u64> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `statvfs` is plain data, so all-zero is a valid value for the call to fill in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid, writable `statvfs`.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Free space where the data dir is.
pub fn check(cfg: &Config) -> Outcome {
    let dir = &cfg.data_dir;
    let Some(free) = available(dir) else {
        return Outcome::warn(
            "disk",
            format!("cannot read the free space of {}", dir.display()),
            "check that the data directory's file system is mounted",
        );
    };
    let mib = free / (1024 * 1024);
    let detail = format!("{} has {mib} MiB free", dir.display());
    let fix = "free space or move the data directory (--data-dir, data_dir in the config)";
    if free < FAIL_BELOW {
        Outcome::fail("disk", detail, fix)
    } else if free < WARN_BELOW {
        Outcome::warn("disk", detail, fix)
    } else {
        Outcome::ok("disk", detail)
    }
}
