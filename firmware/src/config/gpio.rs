//! `[gpio]`: the status LED and the button.

use serde::{Deserialize, Serialize};

/// Highest BCM GPIO number on the 40-pin header.
pub const MAX_PIN: u8 = 27;

/// What a long press does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ButtonAction {
    /// Ask the encoder for a keyframe (`sutantra stream keyframe`).
    #[default]
    Keyframe,
    /// Close and reopen the camera, then a keyframe (`sutantra reboot-stream`).
    RestartStream,
}

/// `[gpio]`: the status LED and the button.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpioConfig {
    /// Drive the pins. Unset: on when this build has GPIO support (`rpi` feature) and the board
    /// (or this section) names a pin.
    pub enabled: Option<bool>,
    /// BCM GPIO number of the status LED (unset: the board profile's).
    pub led_pin: Option<u8>,
    /// BCM GPIO number of the button, wired to GND (unset: the board profile's).
    pub button_pin: Option<u8>,
    /// Held at least this long is a long press, in milliseconds.
    pub long_press_ms: u64,
    /// What a long press does: `keyframe` or `restart-stream`.
    pub button_action: ButtonAction,
}

impl Default for GpioConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            led_pin: None,
            button_pin: None,
            long_press_ms: 2_000,
            button_action: ButtonAction::Keyframe,
        }
    }
}

/// Checks `[gpio]`. Returns `(dotted key, reason)` like [`crate::config::Config::validate`].
pub fn validate(g: &GpioConfig) -> Result<(), (String, String)> {
    for (key, pin) in [
        ("gpio.led_pin", g.led_pin),
        ("gpio.button_pin", g.button_pin),
    ] {
        if let Some(p) = pin
            && p > MAX_PIN
        {
            return Err((
                key.into(),
                format!(
                    "{p}: use a BCM GPIO number from 0 to {MAX_PIN} (e.g. 17 for header pin \
                     11), not a header pin position"
                ),
            ));
        }
    }
    if let (Some(l), Some(b)) = (g.led_pin, g.button_pin)
        && l == b
    {
        return Err((
            "gpio.button_pin".into(),
            format!("{b} is also led_pin: the LED and the button need two different pins"),
        ));
    }
    if !(200..=60_000).contains(&g.long_press_ms) {
        return Err((
            "gpio.long_press_ms".into(),
            format!(
                "{}: use 200 to 60000 (a long press must be longer than a tap)",
                g.long_press_ms
            ),
        ));
    }
    Ok(())
}
