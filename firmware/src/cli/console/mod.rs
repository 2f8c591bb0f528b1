//! The serial console: a line prompt on a serial device (USB gadget serial, a UART, a pty)
//! that runs the CLI's own commands, for an operator with a laptop and a cable and no network.
//!
//! - [`tty`]: opening the device raw at a baud rate (termios), and `\n` to `\r\n` on output.
//! - [`line`](mod@line): echo, backspace, CR/LF/CRLF, Ctrl-C/U/D, the length cap, and word
//!   splitting.
//! - [`policy`]: what a line may do, one allow-list: reads, and steering the live stream;
//!   commands that write files or change the node's configuration or state answer that they
//!   need SSH and do nothing (the table is in that module).
//! - this file: the session (banner, prompt, one command per line) and how a line runs: its
//!   words are parsed with the CLI's own clap definition and checked by [`policy::admit`];
//!   control commands (`status`, `stream ...`, `viewers`, `logs`, `reboot-stream`,
//!   `config show`) go through the same client code as the CLI
//!   ([`crate::ops::control::client::execute`]) into the serial line; the other allowed commands
//!   (`keys show`, `check`, `chain status`, ...) run this binary as a child with the console's
//!   data dir, and its output is copied. `logs --follow` streams until Ctrl-C. Everything a
//!   command prints is escaped on its way to the line (`Escape`): no control character or
//!   bidirectional override from a log line, a viewer or an RPC server reaches the operator's
//!   terminal.
//!
//! `sutantra console --device TTY` runs one session and exits on `exit`, `quit`, Ctrl-D or
//! hang-up. With a `[console]` section the daemon hosts it on a thread of its own that talks to
//! the daemon's control socket like any client, and offers a new session after each one ends
//! (after a hang-up it reopens the device, retrying every few seconds). Neither asks for a
//! login, and both apply the same [`policy`]: enable the hosted one only where the serial line
//! is physically secured.

pub mod line;
pub mod policy;
pub mod tty;

use crate::cli::{Cli, Command, ConfigCmd};
use crate::ops::control::client::{self, Action, Output, Target};
use crate::ops::control::logging::{escape_controls, is_unsafe_char};
use clap::Parser;
use line::{Event, LineEditor, MAX_LINE};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tty::{Crlf, Tty};

/// The prompt.
pub const PROMPT: &str = "sutantra> ";
/// How long a command run as a child (`check`, `keys show`, ...) may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// Most output copied from one child command.
const CHILD_OUTPUT_MAX: u64 = 1024 * 1024;

/// `sutantra console` arguments.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// The serial device (e.g. /dev/ttyGS0 for USB gadget serial, /dev/ttyS0 for the UART).
    #[arg(long, value_name = "TTY")]
    pub device: PathBuf,
    /// Line speed: 8N1, no flow control.
    #[arg(long, value_name = "N", default_value_t = crate::config::console::DEFAULT_BAUD)]
    pub baud: u32,
    /// The node.
    #[command(flatten)]
    pub target: Target,
}

/// Where the console's commands go.
#[derive(Debug, Clone)]
struct Context {
    /// The control socket.
    socket: PathBuf,
    /// The data dir given to commands that read it (`keys show`, `check`, `chain status`, ...).
    data_dir: PathBuf,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// `exit`, `quit` or Ctrl-D.
    Exit,
    /// The line hung up (EOF, EIO) or could not be written.
    Hangup,
}

/// `sutantra console --device TTY [--baud N]`: one session, then exit 0. Exit 2 for an
/// unsupported baud rate, 1 when the device cannot be opened.
pub fn run(args: &ConsoleArgs) -> ExitCode {
    if let Err(e) = tty::check_baud(args.baud) {
        eprintln!("sutantra: --baud {e}");
        return ExitCode::from(2);
    }
    let mut tty = match Tty::open(&args.device, args.baud) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sutantra: {e}");
            return ExitCode::from(1);
        }
    };
    let ctx = Context {
        socket: args.target.socket(),
        data_dir: args.target.data_dir(),
    };
    match session(&mut tty, &args.device, args.baud, &ctx) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "sutantra: the console on {} failed: {e}",
                args.device.display()
            );
            ExitCode::from(1)
        }
    }
}

/// Starts the daemon-hosted console on its own thread; it lives as long as the process.
pub fn spawn(
    cfg: &crate::config::ConsoleConfig,
    socket: PathBuf,
    data_dir: PathBuf,
) -> Result<(), String> {
    let device = cfg.device.clone();
    let baud = cfg.baud;
    let ctx = Context { socket, data_dir };
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || hosted(&device, baud, &ctx))
        .map(|_| ())
        .map_err(|e| format!("cannot start the serial console thread: {e}"))
}

/// The hosted console: sessions one after another; reopens the device after a hang-up.
fn hosted(device: &Path, baud: u32, ctx: &Context) {
    tracing::info!(device = %device.display(), baud, "serial console");
    let mut failing = false;
    let mut line_failing = false;
    let mut delay = Duration::from_secs(1);
    loop {
        let mut tty = match Tty::open(device, baud) {
            Ok(t) => {
                if std::mem::replace(&mut failing, false) {
                    tracing::info!(device = %device.display(), "serial console device is back");
                }
                delay = Duration::from_secs(1);
                t
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("serial console: {e}; retrying");
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        loop {
            match session(&mut tty, device, baud, ctx) {
                Ok(End::Exit) => {
                    line_failing = false;
                    continue;
                }
                Ok(End::Hangup) => break,
                Err(e) => {
                    // Once per streak: a line that keeps failing would fill the log.
                    if !std::mem::replace(&mut line_failing, true) {
                        tracing::warn!("serial console on {}: {e}; reopening", device.display());
                    }
                    break;
                }
            }
        }
        drop(tty);
        // Whoever hung up may come back; do not spin on a line that keeps hanging up.
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One session: banner, then prompt and command until `exit` or a hang-up.
fn session(tty: &mut Tty, device: &Path, baud: u32, ctx: &Context) -> io::Result<End> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    write!(
        Crlf(&mut *tty),
        "\nsutantra {} console on {} ({baud} baud). Commands as on the command line \
         (`help`, `status`, `logs -n 20`, ...), to read and to steer the stream; changes go \
         over SSH. `exit` ends the session.\n{PROMPT}",
        env!("CARGO_PKG_VERSION"),
        device.display()
    )?;
    let mut editor = LineEditor::default();
    let mut buf = [0u8; 256];
    let mut echo = Vec::with_capacity(512);
    loop {
        let n = tty.read(&mut buf)?;
        if n == 0 {
            return Ok(End::Hangup);
        }
        for &b in &buf[..n] {
            let Some(event) = editor.feed(b, &mut echo) else {
                continue;
            };
            tty.write_all(&echo)?;
            echo.clear();
            let interrupt = Some(tty.as_raw_fd());
            let mut out = Crlf(&mut *tty);
            match event {
                Event::Line(text) => match text.trim() {
                    "" => {}
                    "exit" | "quit" => {
                        writeln!(out, "bye")?;
                        return Ok(End::Exit);
                    }
                    text => run_line(text, ctx, &runtime, &mut out, interrupt),
                },
                Event::TooLong => writeln!(
                    out,
                    "error: the line is longer than {MAX_LINE} bytes; nothing was run"
                )?,
                Event::Cancel => {}
                Event::Eof => {
                    writeln!(out, "bye")?;
                    return Ok(End::Exit);
                }
            }
            write!(out, "{PROMPT}")?;
        }
        tty.write_all(&echo)?;
        echo.clear();
    }
}

/// Runs one command line, writing everything it prints (answers and errors) to `out`.
/// `interrupt` is the serial line's descriptor: Ctrl-C on it stops `logs --follow` (without it,
/// `logs --follow` is refused).
fn run_line(
    line: &str,
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    out: &mut dyn Write,
    interrupt: Option<RawFd>,
) {
    let words = match line::split_words(line) {
        Ok(w) => w,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return;
        }
    };
    // Everything below prints through the escaping writer.
    let mut escaped = Escape(out);
    let out: &mut dyn Write = &mut escaped;
    let argv = || std::iter::once("sutantra".to_string()).chain(words.iter().cloned());
    let cli = match Cli::try_parse_from(argv()) {
        Ok(c) => c,
        Err(e) => {
            // Help, version and usage errors alike: clap's text, without colours.
            let _ = write!(out, "{}", e.render());
            return;
        }
    };
    // The one gate: nothing runs that the allow-list does not name.
    if let Err(refused) = policy::admit(&cli.command, &words, &ctx.data_dir) {
        let _ = writeln!(out, "error: {refused}");
        return;
    }
    let control = |target: Target, action: Action| (target.json, action);
    let (json, action) = match cli.command {
        Command::Logs { follow: true, .. } if interrupt.is_none() => {
            let _ = writeln!(
                out,
                "error: `logs --follow` is not available here (it could not be stopped): use \
                 `logs -n N`"
            );
            return;
        }
        Command::Status(t) => control(t, Action::Status),
        Command::Stream { cmd, target } => control(target, Action::Stream(cmd)),
        Command::Viewers { kick, target } => control(target, Action::Viewers { kick }),
        Command::Logs {
            lines,
            target,
            follow,
        } => control(
            target,
            Action::Logs {
                follow,
                lines: usize::from(lines),
            },
        ),
        Command::RebootStream(t) => control(t, Action::RebootStream),
        Command::Config(ConfigCmd::Show(t)) => control(t, Action::ConfigShow),
        _ => {
            run_child(&words, ctx, out);
            return;
        }
    };
    // The console's node (the policy refused `--socket`/`--data-dir` on the line).
    let target = Target {
        socket: Some(ctx.socket.clone()),
        data_dir: Some(ctx.data_dir.clone()),
        json,
    };
    // One writer for both: answers and errors reach the serial line in order.
    let line = RefCell::new(out);
    let (mut answers, mut errors) = (Shared(&line), Shared(&line));
    let mut o = Output {
        out: &mut answers,
        err: &mut errors,
        error_prefix: "error: ",
    };
    match (&action, interrupt) {
        (Action::Logs { follow: true, .. }, Some(fd)) => {
            let _ = writeln!(o.out, "(following the log: Ctrl-C stops)");
            // Watch the line for Ctrl-C while the answer streams; stop watching when it ends.
            let stop = Arc::new(AtomicBool::new(false));
            let mut watcher = runtime.spawn_blocking({
                let stop = stop.clone();
                move || wait_for_ctrl_c(fd, &stop)
            });
            let interrupted = runtime.block_on(async {
                tokio::select! {
                    _ = client::execute(&target, &action, &mut o) => false,
                    _ = &mut watcher => true,
                }
            });
            if interrupted {
                let _ = writeln!(o.out, "^C");
            } else {
                stop.store(true, Ordering::Relaxed);
                let _ = runtime.block_on(watcher);
            }
        }
        _ => {
            runtime.block_on(client::execute(&target, &action, &mut o));
        }
    }
}

/// Blocks until Ctrl-C arrives on `fd` (other input is dropped), the line hangs up, or `stop`
/// is set (checked every 100 ms).
fn wait_for_ctrl_c(fd: RawFd, stop: &AtomicBool) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call; `fd` stays open while the
        // session that owns it waits for this function.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready <= 0 {
            continue;
        }
        // SAFETY: reading into a stack buffer of the given length from an open descriptor.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 || buf[..n as usize].contains(&0x03) {
            return;
        }
    }
}

/// A writer shared by the answer and the error stream of one command.
struct Shared<'a, 'b>(&'a RefCell<&'b mut dyn Write>);

impl Write for Shared<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// Escapes what a command prints before it reaches the serial line: every character that
/// [`is_unsafe_char`] names (ESC, other C0 and C1 controls, DEL, bidirectional overrides) is
/// written as visible text, bytes that are not UTF-8 as `\xNN`; newlines and tabs pass.
struct Escape<W: Write>(W);

impl<W: Write> Write for Escape<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(buf.len());
        for chunk in buf.utf8_chunks() {
            for c in chunk.valid().chars() {
                if matches!(c, '\n' | '\t') || !is_unsafe_char(c) {
                    text.push(c);
                } else {
                    text.push_str(&escape_controls(c.encode_utf8(&mut [0; 4])));
                }
            }
            for b in chunk.invalid() {
                let _ = write!(text, "\\x{b:02x}");
            }
        }
        self.0.write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Runs `sutantra WORDS` as a child (commands that do not talk to the control socket), with
/// the console's data dir when the command takes one, and copies what it prints.
fn run_child(words: &[String], ctx: &Context, out: &mut dyn Write) {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "error: cannot find this program's binary: {e}");
            return;
        }
    };
    // The console's data dir for every command that takes one (the policy refused any other).
    let mut args: Vec<String> = words.to_vec();
    let mut with_dir = args.clone();
    with_dir.push("--data-dir".into());
    with_dir.push(ctx.data_dir.display().to_string());
    let argv = std::iter::once("sutantra".to_string()).chain(with_dir.iter().cloned());
    if Cli::try_parse_from(argv).is_ok() {
        args = with_dir;
    }
    let child = std::process::Command::new(exe)
        .args(&args)
        // Commands that find the node themselves find the console's.
        .env("SUTANTRA_SOCKET", &ctx.socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "error: cannot run `{}`: {e}", words.join(" "));
            return;
        }
    };
    let pid = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = writeln!(
            out,
            "error: cannot read the output of `{}`",
            words.join(" ")
        );
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let read = |pipe: &mut dyn Read| {
            let mut text = Vec::new();
            let _ = pipe.take(CHILD_OUTPUT_MAX).read_to_end(&mut text);
            text
        };
        let err_thread = std::thread::spawn(move || {
            let mut stderr = stderr;
            read(&mut stderr)
        });
        let mut stdout = stdout;
        let out = read(&mut stdout);
        let err = err_thread.join().unwrap_or_default();
        let _ = tx.send((out, err, child.wait()));
    });
    match rx.recv_timeout(CHILD_TIMEOUT) {
        Ok((stdout, stderr, _status)) => {
            let _ = out.write_all(&stdout);
            let _ = out.write_all(&stderr);
        }
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            let _ = writeln!(
                out,
                "error: `{}` did not finish within {} s and was stopped",
                words.join(" "),
                CHILD_TIMEOUT.as_secs()
            );
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_a_command_prints_an_error() {
        let ctx = Context {
            socket: "/nonexistent/control.sock".into(),
            data_dir: "/nonexistent".into(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let run = |line: &str| {
            let mut out = Vec::new();
            run_line(line, &ctx, &runtime, &mut out, None);
            String::from_utf8(out).expect("UTF-8")
        };
        assert!(run("frobnicate").starts_with("error: unrecognized subcommand"));
        assert!(run("status").starts_with("error: no node running at /nonexistent/control.sock"));
        assert!(run("logs --follow").starts_with("error: `logs --follow`"));
        assert!(run("run").starts_with("error: `run` is not available"));
        assert!(run("console --device /dev/null").starts_with("error: this is the console"));
        assert!(run("say 'hi").starts_with("error: unterminated"));
        assert!(run("help").contains("Usage: sutantra"));
    }

    /// A refused line prints the SSH line and runs nothing: the file named on it is untouched.
    #[test]
    fn config_set_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "[encoder]\nbitrate_kbps = 1000\n").expect("write");
        let before = std::fs::metadata(&file).expect("meta").modified().ok();
        let ctx = Context {
            socket: dir.path().join("control.sock"),
            data_dir: dir.path().to_path_buf(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut out = Vec::new();
        let line = format!(
            "config set encoder.bitrate_kbps 900 --file {}",
            file.display()
        );
        run_line(&line, &ctx, &runtime, &mut out, None);
        let out = String::from_utf8(out).expect("UTF-8");
        assert!(
            out.starts_with(
                "error: `config set` changes the node's configuration file: run it over SSH \
                 (`sutantra config set ...`)"
            ),
            "{out}"
        );
        assert_eq!(out.lines().count(), 1, "{out}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "[encoder]\nbitrate_kbps = 1000\n"
        );
        assert_eq!(
            std::fs::metadata(&file).expect("meta").modified().ok(),
            before
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn what_commands_print_is_escaped_for_the_terminal() {
        let mut out = Escape(Vec::new());
        out.write_all("line \x1b[2J\u{202e}abc\tx\r\n".as_bytes())
            .expect("write");
        out.write_all(b"\xff\x07\n").expect("write");
        let text = String::from_utf8(out.0).expect("UTF-8");
        assert_eq!(text, "line \\x1b[2J\\u{202e}abc\tx\\r\n\\xff\\x07\n");
        // Through the serial line's CRLF as well.
        let mut line = Escape(Crlf(Vec::new()));
        writeln!(line, "a\u{2066}b").expect("write");
        assert_eq!(line.0.0, b"a\\u{2066}b\r\n");
    }
}
