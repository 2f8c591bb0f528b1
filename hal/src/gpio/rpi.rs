//! Raspberry Pi GPIO through `rppal` (Linux, `rpi` feature).
//!
//! Pins are BCM GPIO numbers (what `pinout` prints as `GPIO17`), not header positions. The LED
//! is active-high (pin -> resistor -> LED -> GND); the button is active-low (pin -> button ->
//! GND) with the SoC's internal pull-up, so no resistor is needed. When a pin is dropped rppal
//! returns it to its earlier mode, so the LED goes dark when the node stops.
//!
//! rppal talks to `/dev/gpiomem` (Pi 1-4) or `/dev/gpiochip*` (Pi 5): the user running the node
//! must be in the `gpio` group. Every error below says which setting or command fixes it.

use super::{Button, ErrorKind, GpioError, StatusLed};
use rppal::gpio::{Gpio, InputPin, OutputPin};

/// The status LED on a BCM output pin (active-high).
#[derive(Debug)]
pub struct RpiLed {
    pin: OutputPin,
}

impl RpiLed {
    /// Opens BCM pin `bcm` as an output, LED off.
    pub fn open(bcm: u8) -> Result<Self, GpioError> {
        let pin = Gpio::new()
            .and_then(|g| g.get(bcm))
            .map_err(|e| map_error(bcm, "led_pin", e))?;
        Ok(Self {
            pin: pin.into_output_low(),
        })
    }
}

impl StatusLed for RpiLed {
    fn set(&mut self, on: bool) -> Result<(), GpioError> {
        // A memory-mapped register write: cannot fail once the pin is open.
        if on {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}

/// The button on a BCM input pin with the internal pull-up (pressed = low).
#[derive(Debug)]
pub struct RpiButton {
    pin: InputPin,
}

impl RpiButton {
    /// Opens BCM pin `bcm` as an input with pull-up.
    pub fn open(bcm: u8) -> Result<Self, GpioError> {
        let pin = Gpio::new()
            .and_then(|g| g.get(bcm))
            .map_err(|e| map_error(bcm, "button_pin", e))?;
        Ok(Self {
            pin: pin.into_input_pullup(),
        })
    }
}

impl Button for RpiButton {
    fn is_pressed(&mut self) -> Result<bool, GpioError> {
        Ok(self.pin.is_low())
    }
}

/// Turns an rppal error on pin `bcm` (set by config key `key`) into one that says what to do.
fn map_error(bcm: u8, key: &str, e: rppal::gpio::Error) -> GpioError {
    use rppal::gpio::Error as E;
    match e {
        E::UnknownModel => GpioError::new(
            ErrorKind::Other,
            format!(
                "cannot open GPIO {bcm}: this board is not a Raspberry Pi rppal knows; \
                 set [gpio] enabled = false on other boards"
            ),
        ),
        E::PinUsed(p) => GpioError::new(
            ErrorKind::PinBusy,
            format!(
                "GPIO {p} is already in use (by another process, or by an overlay such as \
                 gpio-led or gpio-key in /boot/firmware/config.txt): free it, or set \
                 [gpio] {key} to another BCM pin"
            ),
        ),
        E::PinNotAvailable(p) => GpioError::new(
            ErrorKind::NotFound,
            format!(
                "GPIO {p} does not exist on this board: set [gpio] {key} to a BCM GPIO number \
                 (e.g. 17 for header pin 11), not a header pin position"
            ),
        ),
        E::PermissionDenied(path) => GpioError::new(
            ErrorKind::Permission,
            format!(
                "permission denied opening {path} for GPIO {bcm}: add the user running \
                 sutantra to the `gpio` group (`sudo usermod -aG gpio USER`, then log in \
                 again; for the service: SupplementaryGroups=gpio)"
            ),
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::NotFound => GpioError::new(
            ErrorKind::NotFound,
            format!(
                "cannot open GPIO {bcm}: no GPIO device ({io}); this is not a Raspberry Pi or \
                 /dev/gpiomem is missing: set [gpio] enabled = false"
            ),
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => GpioError::new(
            ErrorKind::Permission,
            format!(
                "permission denied opening GPIO {bcm} ({io}): add the user running sutantra \
                 to the `gpio` group (`sudo usermod -aG gpio USER`)"
            ),
        ),
        other => GpioError::new(
            ErrorKind::Other,
            format!(
                "cannot open GPIO {bcm}: {other}; check the wiring and [gpio] {key}, or set \
                 [gpio] enabled = false"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rppal::gpio::Error as E;

    #[test]
    fn errors_say_what_to_do() {
        let e = map_error(17, "led_pin", E::PermissionDenied("/dev/gpiomem".into()));
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(e.to_string().contains("`gpio` group"), "{e}");
        let e = map_error(27, "button_pin", E::PinUsed(27));
        assert_eq!(e.kind(), ErrorKind::PinBusy);
        assert!(e.to_string().contains("[gpio] button_pin"), "{e}");
        let e = map_error(60, "led_pin", E::PinNotAvailable(60));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            map_error(17, "led_pin", E::Io(io)).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            map_error(17, "led_pin", E::UnknownModel).kind(),
            ErrorKind::Other
        );
    }

    #[test]
    fn opening_off_a_pi_fails_cleanly() {
        // On a build machine there is no Pi: opening must be an error, never a panic.
        if std::path::Path::new("/dev/gpiomem").exists() {
            return;
        }
        assert!(RpiLed::open(17).is_err());
        assert!(RpiButton::open(27).is_err());
    }
}
