//! Check: memory headroom: `MemAvailable` against the board profile's memory budget.

use super::Outcome;
use crate::config::Config;

/// `MemAvailable` from `/proc/meminfo`, in MiB.
pub fn available_mib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
}

/// Headroom for the node.
pub fn check(cfg: &Config) -> Outcome {
    let budget = cfg
        .board
        .as_deref()
        .and_then(sutantra_boards::find)
        .unwrap_or(&sutantra_boards::GENERIC)
        .memory_budget_mib;
    let Some(avail) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(available_mib)
    else {
        return Outcome::warn(
            "memory",
            "cannot read MemAvailable from /proc/meminfo",
            "check memory by hand (`free -m`)",
        );
    };
    let detail = format!("{avail} MiB available, the node's budget is {budget} MiB");
    let fix = "stop other services, or lower [source] size, frame_pool and [webrtc] max_viewers";
    if avail < u64::from(budget) {
        Outcome::fail("memory", detail, fix)
    } else if avail < 2 * u64::from(budget) {
        Outcome::warn("memory", format!("{detail}: little headroom"), fix)
    } else {
        Outcome::ok("memory", detail)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_available_is_read_in_mib() {
        let text = "MemTotal:  1000000 kB\nMemAvailable:  524288 kB\n";
        assert_eq!(super::available_mib(text), Some(512));
        assert_eq!(super::available_mib("MemTotal: 1 kB\n"), None);
    }
}
