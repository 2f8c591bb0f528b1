//! `[console]`: the serial console the daemon hosts (absent: none).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The baud rates the console accepts.
pub const BAUDS: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600, 1_000_000,
    1_500_000, 2_000_000,
];

/// The default line speed (what a Pi's UART and most adapters use).
pub const DEFAULT_BAUD: u32 = 115_200;

fn default_baud() -> u32 {
    DEFAULT_BAUD
}

/// Checks a baud rate; the error lists the accepted ones.
pub fn check_baud(baud: u32) -> Result<(), String> {
    if BAUDS.contains(&baud) {
        return Ok(());
    }
    let valid: Vec<String> = BAUDS.iter().map(u32::to_string).collect();
    Err(format!(
        "{baud} baud is not supported: use one of {} (115200 is the usual one)",
        valid.join(", ")
    ))
}

/// `[console]`: the daemon hosts the serial console on this device (absent: no console).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// The serial device, e.g. `/dev/ttyGS0` (USB gadget) or `/dev/ttyS0` (UART).
    #[serde(default)]
    pub device: PathBuf,
    /// Line speed (8N1, no flow control).
    #[serde(default = "default_baud")]
    pub baud: u32,
}

/// Checks `[console]`. Returns `(dotted key, reason)` like `Config::validate`.
pub fn validate(console: Option<&ConsoleConfig>) -> Result<(), (String, String)> {
    let Some(c) = console else {
        return Ok(());
    };
    if c.device.as_os_str().is_empty() {
        return Err((
            "console.device".into(),
            "set the serial device, e.g. \"/dev/ttyGS0\" (USB gadget) or \"/dev/ttyS0\" (UART); \
             remove [console] for no console"
                .into(),
        ));
    }
    if !c.device.is_absolute() {
        return Err((
            "console.device".into(),
            format!(
                "`{}`: use an absolute device path such as /dev/ttyGS0",
                c.device.display()
            ),
        ));
    }
    check_baud(c.baud).map_err(|r| ("console.baud".into(), r))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(device: &str, baud: u32) -> ConsoleConfig {
        ConsoleConfig {
            device: device.into(),
            baud,
        }
    }

    #[test]
    fn the_console_section_is_checked() {
        assert!(validate(None).is_ok());
        assert!(validate(Some(&console("/dev/ttyGS0", 115_200))).is_ok());
        let key = |c: ConsoleConfig| validate(Some(&c)).expect_err("refused").0;
        assert_eq!(key(console("", 115_200)), "console.device");
        assert_eq!(key(console("ttyS0", 115_200)), "console.device");
        assert_eq!(key(console("/dev/ttyS0", 115_201)), "console.baud");
    }
}
