//! GPIO: the status LED and the push button.
//!
//! Two small traits in the embedded-hal style: every method is fallible and returns a
//! [`GpioError`] whose [`ErrorKind`] generic code can match on, and both are implemented for
//! `&mut T` and `Box<T>` so a driver can borrow or own its pins.
//!
//! - [`StatusLed`]: drive one LED on or off (the blink patterns live in `sutantra-core`'s `led`
//!   module, which says *when* to switch; this only switches).
//! - [`Button`]: read whether the button is held now (debounce and long-press detection are in
//!   `sutantra-core`). The usual wiring is active-low: the button connects the pin to GND and the
//!   pin's internal pull-up holds it high while released.
//!
//! Backends: `rpi` (Linux, `rpi` feature) opens BCM pins through `rppal`; `fake` (tests,
//! `fake` feature) records LED transitions with their times and plays a scripted button.

#[cfg(any(test, feature = "fake"))]
pub mod fake;
#[cfg(all(target_os = "linux", feature = "rpi"))]
pub mod rpi;

/// Kinds of GPIO failure that generic code can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The pin is held by this process or another driver (e.g. a device-tree overlay).
    PinBusy,
    /// No permission to open the GPIO device.
    Permission,
    /// The pin or the GPIO device does not exist on this board.
    NotFound,
    /// Anything else (I/O failure, unknown board).
    Other,
}

/// A GPIO error: a kind plus a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GpioError {
    kind: ErrorKind,
    message: String,
}

impl GpioError {
    /// A new error of `kind` with an operator-facing `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind, for generic handling.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// One LED, switched on or off.
pub trait StatusLed: Send {
    /// Lights the LED (`true`) or turns it off (`false`).
    fn set(&mut self, on: bool) -> Result<(), GpioError>;
}

/// One push button, read as pressed or released (raw level, not debounced).
pub trait Button: Send {
    /// Whether the button is held down now.
    fn is_pressed(&mut self) -> Result<bool, GpioError>;
}

impl<T: StatusLed + ?Sized> StatusLed for &mut T {
    fn set(&mut self, on: bool) -> Result<(), GpioError> {
        (**self).set(on)
    }
}

impl<T: StatusLed + ?Sized> StatusLed for Box<T> {
    fn set(&mut self, on: bool) -> Result<(), GpioError> {
        (**self).set(on)
    }
}

impl<T: Button + ?Sized> Button for &mut T {
    fn is_pressed(&mut self) -> Result<bool, GpioError> {
        (**self).is_pressed()
    }
}

impl<T: Button + ?Sized> Button for Box<T> {
    fn is_pressed(&mut self) -> Result<bool, GpioError> {
        (**self).is_pressed()
    }
}
