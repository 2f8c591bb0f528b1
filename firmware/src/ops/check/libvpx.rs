//! Check: libvpx is loaded and reports its version.

use super::Outcome;

/// The libvpx version in use.
pub fn check() -> Outcome {
    let v = sutantra_core::codec::libvpx_version();
    if v.trim().is_empty() {
        Outcome::fail(
            "libvpx",
            "libvpx did not report a version",
            "install libvpx (e.g. `apt install libvpx9`)",
        )
    } else {
        Outcome::ok("libvpx", format!("libvpx {v}"))
    }
}
