//! The CLI side of the control socket: `sutantra status`, `stream`, `viewers`, `logs`,
//! `set-log-level`, `reboot-stream`, `config show`, `snapshot`.
//!
//! The socket is `--socket PATH` (or `SUTANTRA_SOCKET`), else `<--data-dir>/control.sock`.
//! Exit codes: 0 done; 1 the node refused or failed (e.g. no such viewer), or the socket could
//! not be used; 2 bad arguments (clap); 3 no node is running at the socket.

use super::proto::{self, Request, Response};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Exit code when no node answers at the socket.
pub const EXIT_NOT_RUNNING: u8 = 3;
/// How long a command waits for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the running node is.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The node's control socket (default `<data-dir>/control.sock`).
    #[arg(long, value_name = "PATH", env = "SUTANTRA_SOCKET", global = true)]
    pub socket: Option<PathBuf>,
    /// The node's data directory (as given to `sutantra run`; default `sutantra-data` if it
    /// exists here, else the installed node's, from /etc/sutantra/config.toml).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The installed node's configuration (the Debian package's, which its service runs).
pub const INSTALLED_CONFIG: &str = "/etc/sutantra/config.toml";

fn installed() -> Option<crate::config::Config> {
    let path = std::path::Path::new(INSTALLED_CONFIG);
    path.exists()
        .then(|| crate::config::Config::load(path).ok())
        .flatten()
}

impl Target {
    /// The data dir: `--data-dir`, else `sutantra-data` (as `run`'s default) when it exists
    /// here, else the installed node's (so an operator on SSH needs no flags), else
    /// `sutantra-data`. Resolved when asked for, not while the command line is parsed.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        let local = PathBuf::from("sutantra-data");
        if local.exists() {
            return local;
        }
        installed().map_or(local, |c| c.data_dir)
    }

    /// The socket path: `--socket`, else `<data-dir>/control.sock`, else (for the installed
    /// node's data dir) the `[control] socket` of its configuration.
    pub fn socket(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| {
            let dir = self.data_dir();
            let own = dir.join(crate::config::control::SOCKET_FILE);
            if !own.exists()
                && let Some(c) = installed()
                && c.data_dir == dir
            {
                return c.control.socket_path(&c.data_dir);
            }
            own
        })
    }
}

/// `sutantra stream ...`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum StreamCmd {
    /// Force a keyframe now (rate-limited like a viewer's picture-loss request).
    Keyframe,
    /// Stop sending frames to viewers; they stay connected (`/healthz` says "paused").
    Stop,
    /// Send frames again (starts with a keyframe).
    Start,
}

/// A control command as the CLI parsed it.
#[derive(Debug, Clone)]
pub enum Action {
    /// `status`
    Status,
    /// `stream ...`
    Stream(StreamCmd),
    /// `viewers [--kick ID]`
    Viewers {
        /// End this session.
        kick: Option<String>,
    },
    /// `logs [--follow] [-n N]`
    Logs {
        /// Stream new lines.
        follow: bool,
        /// Recent lines.
        lines: usize,
    },
    /// `set-log-level LEVEL`
    SetLogLevel(String),
    /// `reboot-stream`
    RebootStream,
    /// `config show`
    ConfigShow,
    /// `config reload` (and the reload after `config set`)
    Reload,
    /// `snapshot FILE [--quality Q]`
    Snapshot {
        /// Where the JPEG goes (`-`: standard output).
        file: PathBuf,
        /// JPEG quality (default: the node's `http.snapshot_quality`).
        quality: Option<u8>,
    },
}

/// Where a command's answer and its errors go: stdout and stderr for the CLI, the serial line
/// for the console.
pub struct Output<'a> {
    /// The answer.
    pub out: &'a mut dyn Write,
    /// Error lines.
    pub err: &'a mut dyn Write,
    /// Put before every error line: `sutantra: ` for the CLI, `error: ` on the console.
    pub error_prefix: &'a str,
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("error_prefix", &self.error_prefix)
            .finish_non_exhaustive()
    }
}

impl Output<'_> {
    fn error(&mut self, message: std::fmt::Arguments<'_>) {
        // A closed stdout/stderr or a hung-up serial line: nothing left to tell.
        let _ = writeln!(self.err, "{}{message}", self.error_prefix);
        let _ = self.err.flush();
    }
}

/// A single-threaded runtime for a CLI command; `Err` is the exit code after saying why.
pub fn cli_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("sutantra: cannot start the async runtime: {e}");
            ExitCode::from(1)
        })
}

/// Runs `action` against the node at `target`.
pub fn run(target: &Target, action: Action) -> ExitCode {
    let runtime = match cli_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut output = Output {
        out: &mut stdout,
        err: &mut stderr,
        error_prefix: "sutantra: ",
    };
    ExitCode::from(runtime.block_on(execute(target, &action, &mut output)))
}

fn request_of(action: &Action) -> Request {
    match action {
        Action::Status => Request::Status,
        Action::Stream(StreamCmd::Keyframe) => Request::Keyframe,
        Action::Stream(StreamCmd::Stop) => Request::StreamStop,
        Action::Stream(StreamCmd::Start) => Request::StreamStart,
        Action::Viewers { kick: Some(id) } => Request::Kick { id: id.clone() },
        Action::Viewers { kick: None } => Request::Viewers,
        Action::Logs { follow, lines } => Request::Logs {
            lines: *lines,
            follow: *follow,
        },
        Action::SetLogLevel(level) => Request::SetLogLevel {
            level: level.clone(),
        },
        Action::RebootStream => Request::RebootStream,
        Action::ConfigShow => Request::ConfigShow,
        Action::Reload => Request::Reload,
        Action::Snapshot { quality, .. } => Request::Snapshot { quality: *quality },
    }
}

/// Sends `action` to the node at `target` and renders the answer into `o`; returns the exit
/// code (0 done, 1 refused or failed, 3 no node running).
pub async fn execute(target: &Target, action: &Action, o: &mut Output<'_>) -> u8 {
    let path = target.socket();
    let stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            o.error(format_args!(
                "no node running at {}: start it with `sutantra run` (or `systemctl \
                 start sutantra`)",
                path.display()
            ));
            return EXIT_NOT_RUNNING;
        }
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "; run as the node's user or a member of its group"
            } else {
                ""
            };
            o.error(format_args!(
                "cannot connect to {}: {e}{hint}",
                path.display()
            ));
            return 1;
        }
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if let Err(e) = write.write_all(&request_of(action).encode()).await {
        o.error(format_args!("cannot send to {}: {e}", path.display()));
        return 1;
    }
    let follow = matches!(action, Action::Logs { follow: true, .. });
    // Only a snapshot's answer (a JPEG in base64) may be longer than the usual cap.
    let cap = if matches!(action, Action::Snapshot { .. }) {
        proto::MAX_SNAPSHOT_MESSAGE
    } else {
        proto::MAX_MESSAGE
    };
    let mut line = Vec::with_capacity(1024);
    loop {
        let got = if follow {
            proto::read_line(&mut reader, &mut line).await
        } else {
            match tokio::time::timeout(
                ANSWER_TIMEOUT,
                proto::read_line_capped(&mut reader, &mut line, cap),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => {
                    o.error(format_args!(
                        "the node at {} did not answer within {}s",
                        path.display(),
                        ANSWER_TIMEOUT.as_secs()
                    ));
                    return 1;
                }
            }
        };
        let response = match got {
            Ok(true) => Response::decode(&line),
            Ok(false) if follow => return 0,
            Ok(false) => {
                o.error(format_args!(
                    "the node closed the connection without an answer"
                ));
                return 1;
            }
            Err(e) => Err(e),
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                o.error(format_args!("unreadable answer from the node: {e}"));
                return 1;
            }
        };
        if !response.ok {
            let error = response.error.unwrap_or_else(|| "failed".into());
            if target.json {
                let _ = writeln!(
                    o.out,
                    "{}",
                    serde_json::json!({ "ok": false, "error": error })
                );
                let _ = o.out.flush();
            } else {
                o.error(format_args!("{error}"));
            }
            return 1;
        }
        let data = response.data.unwrap_or(Value::Null);
        if let Action::Snapshot { file, .. } = action {
            return save_snapshot(file, &data, target.json, o);
        }
        if matches!(action, Action::Logs { .. }) {
            if data.get("end").is_some() {
                return 0;
            }
            let text = data.get("line").and_then(Value::as_str).unwrap_or_default();
            let out = if target.json {
                serde_json::json!({ "line": text }).to_string()
            } else {
                // Lines can quote peers and RPC servers: no control characters reach a terminal,
                // whatever version of the node sent them.
                crate::ops::control::logging::escape_controls(text).into_owned()
            };
            if writeln!(o.out, "{out}")
                .and_then(|()| o.out.flush())
                .is_err()
            {
                return 0;
            }
            continue;
        }
        let _ = if target.json {
            writeln!(o.out, "{data}")
        } else {
            write!(o.out, "{}", human(action, &data))
        };
        let _ = o.out.flush();
        return 0;
    }
}

/// Writes the JPEG of a `snapshot` answer to `file` (atomically: a temporary file beside it,
/// then a rename, so a reader never sees half a picture) or, for `-`, to `o.out`; says its size
/// and dimensions (on the error stream when the picture itself went to the output).
fn save_snapshot(file: &std::path::Path, data: &Value, json: bool, o: &mut Output<'_>) -> u8 {
    use base64::Engine as _;
    let jpeg = match data["jpeg_base64"]
        .as_str()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
    {
        Some(Ok(j)) if !j.is_empty() => j,
        _ => {
            o.error(format_args!(
                "the node's answer holds no JPEG; use a `sutantra` of the node's release"
            ));
            return 1;
        }
    };
    let (w, h) = (text(&data["width"]), text(&data["height"]));
    let to_stdout = file.as_os_str() == "-";
    let written = if to_stdout {
        o.out.write_all(&jpeg).and_then(|()| o.out.flush())
    } else {
        write_file_atomic(file, &jpeg)
    };
    if let Err(e) = written {
        o.error(format_args!(
            "cannot write {}: {e}; pick a writable path (or `-` for standard output)",
            file.display()
        ));
        return 1;
    }
    let summary = serde_json::json!({
        "file": file, "bytes": jpeg.len(), "width": data["width"], "height": data["height"],
        "quality": data["quality"], "capture_us": data["capture_us"],
    });
    let line = if json {
        summary.to_string()
    } else {
        format!(
            "{}: {w}x{h} JPEG, {} bytes (quality {})",
            if to_stdout {
                "snapshot".into()
            } else {
                file.display().to_string()
            },
            jpeg.len(),
            text(&data["quality"])
        )
    };
    let sink: &mut dyn Write = if to_stdout { &mut *o.err } else { &mut *o.out };
    let _ = writeln!(sink, "{line}").and_then(|()| sink.flush());
    0
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_file_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "n/a".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `status` line of a relay's upstream (nothing for a camera).
fn upstream_line(u: &Value) -> String {
    if u.is_null() {
        return String::new();
    }
    let rtt = u["rtt_ms"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |r| format!("{r} ms"));
    let loss = u["loss"].as_f64().unwrap_or(0.0) * 100.0;
    let mut line = format!(
        "upstream:      {} {} (rtt {rtt}, loss {loss:.2} %, {} connects, {} keyframe requests)\n",
        crate::ops::control::logging::escape_controls(u["url"].as_str().unwrap_or("")),
        u["state"].as_str().unwrap_or(""),
        u["connects"],
        u["plis_sent"],
    );
    if let Some(e) = u["last_error"].as_str() {
        line.push_str(&format!(
            "upstream error: {}\n",
            crate::ops::control::logging::escape_controls(e)
        ));
    }
    line
}

/// `publish:` lines of `status`, one per WHIP target.
fn publish_lines(data: &Value) -> String {
    let mut out = String::new();
    for t in data["publish"].as_array().into_iter().flatten() {
        let state = if t["connected"].as_bool() == Some(true) {
            "connected"
        } else {
            "connecting"
        };
        let opt = |k: &str, unit: &str| {
            t[k].as_f64()
                .map_or_else(|| "n/a".to_string(), |v| format!("{v}{unit}"))
        };
        let loss = t["fraction_lost"]
            .as_f64()
            .map_or_else(|| "n/a".to_string(), |f| format!("{:.1} %", f * 100.0));
        out.push_str(&format!(
            "publish:       {} {state}: sent {}, relay estimate {}, rtt {}, loss {loss}\n",
            text(&t["url"]),
            opt("sent_kbps", " kbit/s"),
            opt("remb_kbps", " kbit/s"),
            opt("rtt_ms", " ms"),
        ));
    }
    out
}

/// The human form of an answer.
fn human(action: &Action, data: &Value) -> String {
    match action {
        Action::Status => {
            let f = |k: &str| text(&data[k]);
            let temp = match data["cpu_temp_c"].as_f64() {
                Some(t) => format!("{t:.1} °C"),
                None => "n/a".into(),
            };
            format!(
                "source:        {} ({})\n\
                 state:         {}\n\
                 size:          {}x{}\n\
                 fps:           {} (target {})\n\
                 bitrate:       {} kbit/s (target {})\n\
                 viewers:       {} ({} sessions)\n\
                 frame drops:   {}\n\
                 packet drops:  {}\n\
                 uptime:        {} s\n\
                 chain height:  {}\n\
                 outbox depth:  {}\n\
                 cpu temp:      {temp}\n\
                 throttled:     {}\n\
                 log level:     {}\n",
                f("source"),
                f("source_detail"),
                f("state"),
                f("width"),
                f("height"),
                f("fps"),
                f("fps_target"),
                f("bitrate_kbps"),
                f("bitrate_target_kbps"),
                f("viewers"),
                f("sessions"),
                f("frame_drops"),
                f("packet_drops"),
                f("uptime_s"),
                f("chain_height"),
                f("outbox_depth"),
                f("throttled"),
                f("log_level"),
            ) + &publish_lines(data)
                + &upstream_line(&data["upstream"])
                + &match data["chain_error"].as_str() {
                    // Text from an RPC server or a file: escaped for the terminal.
                    Some(e) => format!(
                        "chain error:   {}\n",
                        crate::ops::control::logging::escape_controls(e)
                    ),
                    None => String::new(),
                }
        }
        Action::Viewers { kick: Some(id) } => format!("viewer {id} ended\n"),
        Action::Viewers { kick: None } => {
            let list = data["viewers"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return "no viewers\n".into();
            }
            let mut out = format!(
                "{:<16}  {:<10}  {:<24}  {:>7}  {:>7}\n",
                "ID", "STATE", "SINCE", "QUEUED", "DROPPED"
            );
            for v in list {
                let since = v["since_unix"]
                    .as_u64()
                    .map(|s| super::logging::rfc3339_ms(s * 1000))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{:<16}  {:<10}  {:<24}  {:>7}  {:>7}\n",
                    text(&v["id"]),
                    text(&v["state"]),
                    since,
                    text(&v["packets_queued"]),
                    text(&v["packets_dropped"]),
                ));
            }
            out
        }
        Action::Stream(StreamCmd::Keyframe) => "keyframe requested\n".into(),
        Action::Stream(StreamCmd::Stop) => {
            "stream stopped (viewers stay connected; `sutantra stream start` resumes)\n".into()
        }
        Action::Stream(StreamCmd::Start) => "stream started\n".into(),
        Action::SetLogLevel(level) => format!("log level: {level}\n"),
        Action::RebootStream => format!("{}\n", text(&data["reboot_stream"])),
        Action::ConfigShow => {
            let mut out = String::new();
            if let Value::Object(top) = data {
                // Top-level scalars first, then one TOML-like table per section.
                for (k, v) in top.iter().filter(|(_, v)| !v.is_object()) {
                    out.push_str(&format!("{k} = {v}\n"));
                }
                for (k, v) in top.iter().filter(|(_, v)| v.is_object()) {
                    out.push_str(&format!("\n[{k}]\n"));
                    if let Value::Object(section) = v {
                        for (sk, sv) in section {
                            out.push_str(&format!("{sk} = {sv}\n"));
                        }
                    }
                }
            }
            out
        }
        Action::Reload => {
            let list = |k: &str| {
                let v: Vec<String> = data[k]
                    .as_array()
                    .map(|a| a.iter().map(text).collect())
                    .unwrap_or_default();
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            format!(
                "reloaded {}\n\
                 applied now:           {}\n\
                 applied by a pipeline restart: {}\n\
                 needs a node restart:  {}\n",
                text(&data["file"]),
                list("applied"),
                list("pipeline"),
                list("needs_restart"),
            )
        }
        Action::Logs { .. } | Action::Snapshot { .. } => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_defaults_to_the_data_dir() {
        let t = Target {
            socket: None,
            data_dir: Some("/var/lib/sutantra".into()),
            json: false,
        };
        assert_eq!(t.socket(), PathBuf::from("/var/lib/sutantra/control.sock"));
    }

    #[test]
    fn status_text_shows_missing_readings_as_na() {
        let out = human(
            &Action::Status,
            &serde_json::json!({"source": "test-pattern", "fps": 30.0, "cpu_temp_c": null}),
        );
        assert!(out.contains("cpu temp:      n/a"), "{out}");
        assert!(out.contains("fps:           30.0"), "{out}");
    }
}
