//! The serial device: opened without becoming our controlling terminal, set to raw 8N1 at a
//! fixed baud rate with no flow control (termios through `libc`), then read byte by byte.
//!
//! Raw mode means the line discipline does nothing for us: no echo, no line editing, no CR/LF
//! translation on output. [`super::line`] echoes and edits, and [`Crlf`] writes `\r\n`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::config::console;

/// The termios constant of each baud rate the console accepts ([`BAUDS`]).
const SPEEDS: &[(u32, libc::speed_t)] = &[
    (1200, libc::B1200),
    (2400, libc::B2400),
    (4800, libc::B4800),
    (9600, libc::B9600),
    (19200, libc::B19200),
    (38400, libc::B38400),
    (57600, libc::B57600),
    (115_200, libc::B115200),
    (230_400, libc::B230400),
    (460_800, libc::B460800),
    (921_600, libc::B921600),
    (1_000_000, libc::B1000000),
    (1_500_000, libc::B1500000),
    (2_000_000, libc::B2000000),
];

/// Checks a baud rate (the error lists the accepted ones) and gives its termios constant.
pub fn check_baud(baud: u32) -> Result<libc::speed_t, String> {
    console::check_baud(baud)?;
    SPEEDS
        .iter()
        .find(|(b, _)| *b == baud)
        .map(|(_, s)| *s)
        .ok_or_else(|| format!("{baud} baud has no termios speed on this system"))
}

/// An open, configured serial device.
#[derive(Debug)]
pub struct Tty {
    file: File,
}

fn os_error(what: &str, path: &Path) -> String {
    format!("{what} {}: {}", path.display(), io::Error::last_os_error())
}

impl Tty {
    /// Opens `path` and sets it to raw 8N1 at `baud`, no flow control, ignoring modem lines.
    pub fn open(path: &Path, baud: u32) -> Result<Tty, String> {
        let speed = check_baud(baud)?;
        // O_NONBLOCK: a serial port without carrier would block the open; cleared below.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                let hint = match e.kind() {
                    io::ErrorKind::NotFound => {
                        "; check the device name (USB gadget: /dev/ttyGS0 with g_serial loaded; \
                         UART: /dev/ttyS0 or /dev/ttyAMA0 with enable_uart=1)"
                    }
                    io::ErrorKind::PermissionDenied => {
                        "; run as a member of the device's group (usually `dialout`)"
                    }
                    _ => "",
                };
                format!("cannot open {}: {e}{hint}", path.display())
            })?;
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is an open descriptor owned by `file` for the whole block; `t` is a
        // plain C struct that tcgetattr fills before any field is read.
        unsafe {
            if libc::isatty(fd) != 1 {
                return Err(format!(
                    "{} is not a terminal: give a serial device such as /dev/ttyGS0, /dev/ttyS0 \
                     or /dev/ttyUSB0",
                    path.display()
                ));
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Err(os_error("cannot read the terminal settings of", path));
            }
            libc::cfmakeraw(&mut t);
            t.c_cflag &= !(libc::CSIZE | libc::PARENB | libc::CSTOPB | libc::CRTSCTS);
            t.c_cflag |= libc::CS8 | libc::CREAD | libc::CLOCAL;
            t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::cfsetispeed(&mut t, speed) != 0 || libc::cfsetospeed(&mut t, speed) != 0 {
                return Err(os_error(&format!("cannot set {baud} baud on"), path));
            }
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Err(os_error("cannot configure", path));
            }
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) != 0 {
                return Err(os_error("cannot make reads blocking on", path));
            }
            // Line noise from before we were listening is not a command.
            libc::tcflush(fd, libc::TCIFLUSH);
        }
        Ok(Tty { file })
    }

    /// Reads what arrived (blocking); `Ok(0)` means the line hung up.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pty whose other side closed, or a USB gadget whose host went away.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                other => return other,
            }
        }
    }
}

impl AsRawFd for Tty {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl Write for Tty {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `\n` as `\r\n`: the line is raw, so nothing else translates it.
#[derive(Debug)]
pub struct Crlf<W: Write>(pub W);

impl<W: Write> Write for Crlf<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            if b == b'\n' {
                self.0.write_all(&buf[start..i])?;
                self.0.write_all(b"\r\n")?;
                start = i + 1;
            }
        }
        self.0.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_become_crlf() {
        let mut out = Crlf(Vec::new());
        write!(out, "a\nb\n\nc").expect("write to a Vec");
        assert_eq!(out.0, b"a\r\nb\r\n\r\nc");
    }

    #[test]
    fn unsupported_baud_lists_the_valid_ones() {
        assert!(check_baud(115_200).is_ok());
        let e = check_baud(12345).expect_err("not a baud rate");
        assert!(e.contains("9600, 19200"), "{e}");
        assert!(e.starts_with("12345 baud is not supported"), "{e}");
    }

    #[test]
    fn a_regular_file_is_not_a_terminal() {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        let e = Tty::open(f.path(), 115_200).expect_err("a file is no tty");
        assert!(e.contains("is not a terminal"), "{e}");
    }

    #[test]
    fn every_accepted_baud_has_a_termios_speed() {
        for baud in console::BAUDS {
            assert!(check_baud(*baud).is_ok(), "{baud}");
        }
        assert_eq!(SPEEDS.len(), console::BAUDS.len());
    }
}
