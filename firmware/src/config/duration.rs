//! Durations on the command line: `10s`, `90m`, `2h`, `14d`, or nanoseconds as a bare integer.
//!
//! ARCHITECTURE.md fixes the contract for `sutantra chain verify --trusting-period DURATION` (`10s`,
//! `2h`, or a bare integer of nanoseconds, which is how the upstream CometBFT test vectors write
//! trusting periods). This module owns that one parser so every command reads durations alike.

use std::time::Duration;

/// Parses a duration: a non-negative integer followed by `ns`, `us`, `ms`, `s`, `m`, `h`, `d`
/// or `w`, or a bare integer of nanoseconds. Overflow and anything else is an error that says
/// what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let accepted = "use e.g. 10s, 90m, 2h, 14d, or nanoseconds as a bare integer";
    if digits.is_empty() {
        return Err(format!("`{text}` is not a duration: {accepted}"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is too large: {accepted}"))?;
    let nanos_per: u64 = match unit {
        "" | "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        "w" => 7 * 86_400 * 1_000_000_000,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`: {accepted}")),
    };
    let nanos = u128::from(n).saturating_mul(u128::from(nanos_per));
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| format!("`{text}` is too large: {accepted}"))?;
    // The remainder is below 10^9, so it fits.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_nanoseconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        // The upstream vectors' trusting period: 1.4 days in nanoseconds.
        assert_eq!(
            parse_duration("1400000000000"),
            Ok(Duration::from_secs(1_400))
        );
        assert_eq!(
            parse_duration("1500000001"),
            Ok(Duration::new(1, 500_000_001))
        );
    }

    #[test]
    fn refusals_say_what_is_accepted() {
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10x",
            "10 s",
            "1e9",
            "99999999999999999999",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains("e.g. 10s"), "{bad}: {e}");
        }
        // u64::MAX days overflows the seconds field.
        assert!(parse_duration(&format!("{}d", u64::MAX)).is_err());
    }
}
