//! The serial console on a pseudo-terminal: `sutantra console --device <pty slave>` against a
//! running node (status in text and JSON, stream keyframe, viewers, logs, logs --follow until
//! Ctrl-C, keys show (refused while it would create the key), help, bad
//! commands and arguments, an over-long line, backspace, exit), against no node (an error, and
//! the prompt comes back), the daemon-hosted console from `[console]`, a bad baud rate or a
//! device that is no terminal; the console's allow-list (`config set` and the other changes
//! answer that they need SSH and change nothing, while `status` works); and
//! `sutantra completions`.
//!
//! The test drives the pty's master side as an operator's terminal would and waits for the
//! prompt with a deadline (never a fixed sleep).

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::{Node, binary};

const PROMPT: &str = "sutantra> ";
/// How long one command may take to print its answer and the next prompt.
const ANSWER: Duration = Duration::from_secs(10);

/// The master side of a pseudo-terminal pair, and everything read from it so far.
struct Pty {
    master: File,
    slave: PathBuf,
    seen: Vec<u8>,
    /// How much of `seen` earlier `expect`s consumed.
    pos: usize,
}

impl Pty {
    fn open() -> Pty {
        // SAFETY: plain libc calls on a descriptor we own; `name` is NUL-terminated by
        // ptsname_r on success and outlives the CStr borrow.
        unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            let master = File::from_raw_fd(fd);
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(
                libc::ptsname_r(fd, name.as_mut_ptr(), name.len()),
                0,
                "ptsname_r"
            );
            let slave = PathBuf::from(
                CStr::from_ptr(name.as_ptr())
                    .to_str()
                    .expect("a UTF-8 pty name"),
            );
            Pty {
                master,
                slave,
                seen: Vec::new(),
                pos: 0,
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Reads until `needle` appears after what was consumed; returns the text up to and
    /// including it and consumes it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let rest = &self.seen[self.pos..];
            if let Some(at) = find(rest, needle.as_bytes()) {
                let end = self.pos + at + needle.len();
                let text = String::from_utf8_lossy(&self.seen[self.pos..end]).into_owned();
                self.pos = end;
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} within {timeout:?}; received after the last match:\n{}",
                String::from_utf8_lossy(&self.seen[self.pos..])
            );
            let mut pfd = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(200) as libc::c_int;
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
            if ready <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                // EIO: no slave open (yet, or between two sessions); poll reports POLLHUP.
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends `line` and returns what the console printed between the echo of the line and
    /// the next prompt.
    fn run(&mut self, line: &str, end: &str) -> String {
        self.send(format!("{line}{end}").as_bytes());
        self.expect(&format!("{line}\r\n"), ANSWER);
        let out = self.expect(PROMPT, ANSWER);
        out[..out.len() - PROMPT.len()].to_string()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every line end is CRLF, as a terminal on a raw serial line needs.
fn assert_crlf(text: &str) {
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "a bare LF in {text:?}"
    );
}

/// A `sutantra console` process; killed when dropped.
struct ConsoleProc(Child);

impl ConsoleProc {
    fn start(device: &Path, data_dir: &Path, extra: &[&str]) -> ConsoleProc {
        let child = Command::new(binary())
            .arg("console")
            .arg("--device")
            .arg(device)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env_remove("SUTANTRA_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sutantra console");
        ConsoleProc(child)
    }

    /// Waits for the process to end by itself; its exit code and stderr.
    fn wait_exit(mut self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code().unwrap_or(-1), err);
            }
            assert!(
                Instant::now() < deadline,
                "sutantra console still running after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ConsoleProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn console_runs_the_cli_commands_against_a_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start_in(dir.path(), &[]);
    let mut pty = Pty::open();
    let console = ConsoleProc::start(&pty.slave, dir.path(), &[]);

    let banner = pty.expect(PROMPT, ANSWER);
    assert!(banner.contains("console on"), "{banner:?}");
    assert_crlf(&banner);

    // status: the CLI's text, with CRLF line ends; backspace edits the line first.
    pty.send(b"statx\x7fus\r");
    pty.expect("statx\x08 \x08us\r\n", ANSWER);
    let text = pty.expect(PROMPT, ANSWER);
    for field in [
        "source:",
        "state:",
        "fps:",
        "viewers:",
        "uptime:",
        "cpu temp:",
    ] {
        assert!(text.contains(field), "status lacks {field:?}:\n{text}");
    }
    assert!(text.contains("test-pattern"), "{text}");
    assert_crlf(&text);

    // status --json (CRLF line end): one JSON document between the echo and the prompt.
    let json = pty.run("status --json", "\r\n");
    let s: Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    assert_eq!(s["source"], "test-pattern", "{s}");
    assert_eq!(s["state"], "running", "{s}");
    assert!(s["uptime_s"].is_u64(), "{s}");

    // stream keyframe reaches the encoder (LF line end).
    let before = node.metric("sutantra_keyframes_total").unwrap_or(0.0);
    let out = pty.run("stream keyframe", "\n");
    assert!(out.contains("keyframe requested"), "{out:?}");
    node.wait_metric(
        "sutantra_keyframes_total",
        "a keyframe after the console's `stream keyframe`",
        Duration::from_secs(5),
        |k| k > before,
    );

    let out = pty.run("viewers", "\r");
    assert!(out.contains("no viewers"), "{out:?}");
    let out = pty.run("logs -n 1000", "\r");
    assert!(out.contains("node started"), "{out:?}");
    assert_crlf(&out);

    // Commands that do not use the control socket run with the console's data dir. A node
    // without `[chain]` has no key yet: `keys show` would create one, so the console refuses;
    // once the key exists (made here as an operator on SSH would), it only reads it.
    let out = pty.run("keys show --json", "\r");
    assert!(
        out.starts_with("error: `keys show` would create the node key"),
        "{out:?}"
    );
    assert!(!dir.path().join("node.key").exists());
    let made = Command::new(binary())
        .args(["keys", "show", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run sutantra keys show");
    assert!(made.status.success(), "{made:?}");
    let out = pty.run("keys show --json", "\r");
    let k: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(k["created"], false, "{k}");
    assert!(k["public_key"].is_string(), "{k}");

    // help, and --help of a command.
    let out = pty.run("help", "\r");
    assert!(out.contains("Usage:") && out.contains("status"), "{out:?}");
    assert_crlf(&out);
    let out = pty.run("viewers --help", "\r");
    assert!(out.contains("--kick"), "{out:?}");

    // Bad lines: an error, and the prompt comes back.
    let out = pty.run("frobnicate", "\r");
    assert!(
        out.contains("error:") && out.contains("frobnicate"),
        "{out:?}"
    );
    let out = pty.run("logs -n 5000", "\r");
    assert!(out.contains("error:") && out.contains("5000"), "{out:?}");
    let out = pty.run("viewers --kick nosuchviewer", "\r");
    assert!(out.contains("error:"), "{out:?}");

    // logs --follow streams a line logged after it started, until Ctrl-C.
    pty.send(b"logs --follow -n 1\r");
    pty.expect("Ctrl-C stops)\r\n", ANSWER);
    // The one recent line: the node has subscribed this follower before sending it.
    pty.expect("\r\n", ANSWER);
    let keyframe = Command::new(binary())
        .args(["stream", "keyframe", "--data-dir"])
        .arg(dir.path())
        .env_remove("SUTANTRA_SOCKET")
        .output()
        .expect("run sutantra stream keyframe");
    assert!(keyframe.status.success(), "{keyframe:?}");
    pty.expect("keyframe requested by the operator", ANSWER);
    pty.send(b"\x03");
    let out = pty.expect(PROMPT, ANSWER);
    assert!(out.contains("^C\r\n"), "{out:?}");
    let out = pty.run("viewers", "\r");
    assert!(out.contains("no viewers"), "after logs --follow: {out:?}");
    let out = pty.run("run", "\r");
    assert!(out.contains("error:"), "{out:?}");
    let out = pty.run("status 'unterminated", "\r");
    assert!(out.contains("error: unterminated"), "{out:?}");

    // An over-long line is refused whole.
    let long = "a".repeat(1500);
    pty.send(format!("{long}\r").as_bytes());
    let out = pty.expect(PROMPT, ANSWER);
    assert!(
        out.contains("error: the line is longer than 1024 bytes"),
        "{}",
        &out[out.len().saturating_sub(200)..]
    );
    // ... and the next line works.
    let out = pty.run("stream keyframe", "\r");
    assert!(out.contains("keyframe requested"), "{out:?}");

    pty.send(b"exit\r");
    pty.expect("bye\r\n", ANSWER);
    let (code, err) = console.wait_exit(ANSWER);
    assert_eq!(code, 0, "console exit: {err}");
}

#[test]
fn console_without_a_node_says_so_and_keeps_the_prompt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::open();
    let console = ConsoleProc::start(&pty.slave, dir.path(), &[]);
    pty.expect(PROMPT, ANSWER);
    let out = pty.run("status", "\r");
    assert!(out.contains("error: no node running at"), "{out:?}");
    assert!(out.contains("sutantra run"), "{out:?}");
    let out = pty.run("status --json", "\r");
    assert!(out.contains("error: no node running at"), "{out:?}");
    // Ctrl-D on an empty line ends the session.
    pty.send(b"\x04");
    pty.expect("bye\r\n", ANSWER);
    let (code, err) = console.wait_exit(ANSWER);
    assert_eq!(code, 0, "console exit: {err}");
}

#[test]
fn console_refuses_a_bad_baud_rate_and_a_non_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pty = Pty::open();
    let (code, err) =
        ConsoleProc::start(&pty.slave, dir.path(), &["--baud", "12345"]).wait_exit(ANSWER);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("12345") && err.contains("115200"), "{err}");
    let file = dir.path().join("not-a-tty");
    std::fs::write(&file, b"").expect("write a file");
    let (code, err) = ConsoleProc::start(&file, dir.path(), &[]).wait_exit(ANSWER);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a terminal"), "{err}");
}

#[test]
fn the_daemon_hosts_the_console_from_its_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::open();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[console]\ndevice = \"{}\"\nbaud = 115200\n",
            pty.slave.display()
        ),
    )
    .expect("write the config");
    let config = config.to_str().expect("UTF-8 temp path").to_string();
    let node = Node::start_in(dir.path(), &["--config", &config]);

    let banner = pty.expect(PROMPT, ANSWER);
    assert!(banner.contains("console on"), "{banner:?}");
    let json = pty.run("status --json", "\r");
    let s: Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    assert_eq!(s["source"], "test-pattern", "{s}");
    let out = pty.run("stream keyframe", "\r");
    assert!(out.contains("keyframe requested"), "{out:?}");
    let out = pty.run("frobnicate", "\r");
    assert!(out.contains("error:"), "{out:?}");

    // `exit` ends the session; the daemon offers a new one at once.
    pty.send(b"exit\r");
    pty.expect("bye\r\n", ANSWER);
    pty.expect(PROMPT, ANSWER);
    let out = pty.run("viewers", "\r");
    assert!(out.contains("no viewers"), "{out:?}");
    assert!(
        node.output().contains("serial console"),
        "the node logs its console"
    );
}

/// The hosted console asks for no login, so it reads and steers the stream only: `config set`
/// answers with the SSH line and leaves the file as it was (bytes and time), `status` works.
#[test]
fn the_hosted_console_refuses_changes_and_keeps_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::open();
    let config = dir.path().join("node.toml");
    let text = format!(
        "[encoder]\nbitrate_kbps = 1000\n\n[console]\ndevice = \"{}\"\nbaud = 115200\n",
        pty.slave.display()
    );
    std::fs::write(&config, &text).expect("write the config");
    let modified = std::fs::metadata(&config).expect("meta").modified().ok();
    let config_arg = config.to_str().expect("UTF-8 temp path").to_string();
    let _node = Node::start_in(dir.path(), &["--config", &config_arg]);
    pty.expect(PROMPT, ANSWER);

    let out = pty.run("config set encoder.bitrate_kbps 900", "\r");
    assert!(
        out.starts_with(
            "error: `config set` changes the node's configuration file: run it over SSH \
             (`sutantra config set ...`)"
        ),
        "{out:?}"
    );
    assert_crlf(&out);
    let out = pty.run(
        &format!("config set encoder.bitrate_kbps 900 --file {config_arg}"),
        "\r",
    );
    assert!(out.contains("over SSH"), "{out:?}");
    for (line, says) in [
        ("config reload", "`config reload`"),
        ("set-log-level debug", "`set-log-level`"),
        ("viewers --kick abc", "`viewers --kick`"),
        (
            "attest export /tmp/sutantra-console-export.json",
            "`attest export`",
        ),
        ("config validate /etc/passwd", "`config validate`"),
        (
            "status --socket /tmp/elsewhere.sock",
            "`--socket` is not taken",
        ),
    ] {
        let out = pty.run(line, "\r");
        assert!(
            out.starts_with(&format!("error: {says}")),
            "{line}: {out:?}"
        );
    }
    assert!(!Path::new("/tmp/sutantra-console-export.json").exists());
    assert_eq!(std::fs::read_to_string(&config).expect("read"), text);
    assert_eq!(
        std::fs::metadata(&config).expect("meta").modified().ok(),
        modified
    );

    // Reads and stream control still run.
    let json = pty.run("status --json", "\r");
    let s: Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    assert_eq!(s["state"], "running", "{s}");
    let out = pty.run("config show", "\r");
    assert!(out.contains("1000"), "{out:?}");
    let out = pty.run("stream keyframe", "\r");
    assert!(out.contains("keyframe requested"), "{out:?}");
    let out = pty.run("chain status --json", "\r");
    let c: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert!(c.is_object(), "{c}");
    let out = pty.run("keys show", "\r");
    assert!(out.contains("over SSH"), "{out:?}");
    assert!(!dir.path().join("node.key").exists());
}

#[test]
fn completions_print_a_script_per_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(binary())
            .args(["completions", shell])
            .output()
            .expect("run sutantra completions");
        assert!(out.status.success(), "completions {shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.trim().is_empty(), "completions {shell}: empty");
        assert!(text.contains("status"), "completions {shell}: no `status`");
    }
    let out = Command::new(binary())
        .args(["completions", "cmd.exe"])
        .output()
        .expect("run sutantra completions");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
