//! The command line (clap) and the `run` entry point.
//!
//! `sutantra run` per its contract in ARCHITECTURE.md: with no file it runs the embedded default (test
//! pattern, 640x480 at 30 FPS, HTTP on 127.0.0.1:8080, data in `./sutantra-data`); flags override
//! the file. Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or arguments.

/// `println!` that ignores a closed standard output (`sutantra attest list | head` must not
/// panic on the broken pipe).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod attest;
pub mod chain;
pub mod completions;
pub mod console;
pub mod keys;

use crate::config::{Config, ConfigError};
use crate::node::NodeError;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Sutantra edge node: camera → VP8 → WebRTC viewers (WHEP).
#[derive(Debug, Parser)]
#[command(
    name = "sutantra",
    version,
    about,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the node (camera, encoder, viewer page, WHEP).
    Run(Box<RunArgs>),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The light client: verify a light block offline, show the trusted state, resume after a
    /// witness conflict.
    #[command(subcommand)]
    Chain(crate::cli::chain::ChainCmd),
    /// The node's identity key.
    #[command(subcommand)]
    Keys(crate::cli::keys::KeysCmd),
    /// Signed attestations: the outbox, export, and checking any node's attestations.
    #[command(subcommand)]
    Attest(crate::cli::attest::AttestCmd),
    /// The running node: source, state, fps, bitrate, viewers, drops, uptime, chain, board health.
    Status(crate::ops::control::client::Target),
    /// Control the running node's stream: keyframe, stop, start.
    Stream {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::ops::control::client::StreamCmd,
        /// The node.
        #[command(flatten)]
        target: crate::ops::control::client::Target,
    },
    /// The running node's viewer sessions; `--kick ID` ends one.
    Viewers {
        /// End this session (an id from the list).
        #[arg(long, value_name = "ID")]
        kick: Option<String>,
        /// The node.
        #[command(flatten)]
        target: crate::ops::control::client::Target,
    },
    /// The running node's recent log lines; `--follow` streams new ones.
    Logs {
        /// Keep printing new lines until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How many recent lines (1 to 1000).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 50,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        lines: u16,
        /// The node.
        #[command(flatten)]
        target: crate::ops::control::client::Target,
    },
    /// Change the running node's log filter (e.g. `debug`, `info`, `sutantra=debug`).
    SetLogLevel {
        /// The new filter.
        level: String,
        /// The node.
        #[command(flatten)]
        target: crate::ops::control::client::Target,
    },
    /// Restart the running node's capture source; the HTTP server and the viewers stay up.
    RebootStream(crate::ops::control::client::Target),
    /// Save the running node's latest picture as a JPEG (the same cache as `/snapshot.jpg`).
    Snapshot {
        /// Where to write it (replaced atomically); `-` writes it to standard output.
        file: PathBuf,
        /// JPEG quality 1-100 (default: the node's `http.snapshot_quality`).
        #[arg(long, short = 'q', value_name = "Q",
              value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: Option<u8>,
        /// The node.
        #[command(flatten)]
        target: crate::ops::control::client::Target,
    },
    /// Preflight diagnostics (no running node needed): OK / WARN / FAIL with what to do.
    Check(crate::ops::check::CheckArgs),
    /// The serial console: a line prompt on TTY that runs these commands against the node.
    Console(crate::cli::console::ConsoleArgs),
    /// Print a shell completion script (bash, zsh, fish) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The board profiles (defaults per board); `run --board NAME` selects one.
    Boards {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sutantra config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check a configuration file: exit 0 if valid, else print `FILE:LINE: key: reason`.
    Validate {
        /// The TOML file.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The running node's effective configuration (TOML-like text, or `--json`).
    Show(crate::ops::control::client::Target),
    /// Make the running node read its configuration file again (as SIGHUP does) and say what
    /// it applied, what restarted the pipeline and what needs a node restart.
    Reload(crate::ops::control::client::Target),
    /// Set one key in the configuration file (comments kept, validated, written atomically),
    /// then reload the running node. Without a running node, `--file FILE` edits a file.
    Set {
        /// Dotted key, e.g. `encoder.bitrate_kbps` or `source.spec`.
        key: String,
        /// The value: TOML (`1500`, `true`, `"text"`) or plain text for a string. Negative
        /// numbers are values, not flags (`config set encoder.cpu_used -6`).
        #[arg(allow_negative_numbers = true)]
        value: String,
        /// The file to edit (default: the running node's `--config` file).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The node.
        #[command(flatten)]
        target: crate::ops::control::client::Target,
    },
}

/// `sutantra run` flags; each overrides the configuration file.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Camera: `test-pattern`, `v4l2:/dev/videoN`, `rpicam[:N]` or `y4m:PATH`; or
    /// `whep:URL` to relay another WHEP server's stream (another node's `http://HOST:8080/whep`).
    #[arg(long, value_name = "SPEC")]
    pub source: Option<String>,
    /// Bearer token for a `whep:` source's upstream (`source.upstream_token`).
    #[arg(long, value_name = "TOKEN")]
    pub upstream_token: Option<String>,
    /// HTTP listen address (viewer page, WHEP, /healthz, /metrics).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (with `--tls-key`; `http.tls_cert`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert` (`http.tls_key`).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Capture width.
    #[arg(long, value_name = "W")]
    pub width: Option<u32>,
    /// Capture height.
    #[arg(long, value_name = "H")]
    pub height: Option<u32>,
    /// Frames per second.
    #[arg(long, value_name = "F")]
    pub fps: Option<u32>,
    /// VP8 target bitrate in kbit/s.
    #[arg(long, value_name = "KBPS")]
    pub bitrate: Option<u32>,
    /// Where the node keeps its state.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Most viewers at once (more get 503 with Retry-After).
    #[arg(long, value_name = "N")]
    pub max_viewers: Option<usize>,
    /// Require this bearer token on WHEP requests.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SUTANTRA_WHEP_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Serve WHEP without a token on a non-loopback `--listen` address, on purpose
    /// (`http.allow_anonymous`): anyone who can reach the port can watch.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// ICE server URL (repeatable); `--ice-server none` clears the default STUN list.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// Board profile for the defaults (`sutantra boards`); detected on a Raspberry Pi.
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Also publish the stream to this WHIP endpoint (repeatable; adds enabled `[[publish]]`
    /// targets without a token).
    #[arg(long = "publish", value_name = "URL")]
    pub publish: Vec<String>,
    /// Log filter (e.g. `info`, `debug`, `sutantra=debug`); RUST_LOG also works.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

fn cli_error(key: &str, reason: String) -> ConfigError {
    ConfigError {
        file: "<command line>".into(),
        line: 0,
        key: key.into(),
        reason,
    }
}

/// The configuration `run` uses: file (or defaults), then flags, validated.
pub fn resolve_config(args: &RunArgs) -> Result<Config, ConfigError> {
    let (mut cfg, table) = match &args.config {
        Some(path) => {
            let cfg = Config::load(path)?;
            let table = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok());
            (cfg, table)
        }
        None => (Config::default(), None),
    };
    // Profile defaults go under the file: they fill only what the file leaves out.
    let (board, chosen) = crate::config::board::choose(args.board.as_deref(), cfg.board.as_deref())
        .map_err(|reason| crate::config::board::error(args.config.as_deref(), reason))?;
    if args.source.is_some() {
        // `--source` wins anyway: no camera probe for a spec about to be replaced.
        crate::config::board::apply_probing(&mut cfg, board, table.as_ref(), || false);
    } else {
        crate::config::board::apply(&mut cfg, board, table.as_ref());
    }
    cfg.board = Some(board.name.to_string());
    if chosen == crate::config::board::Chosen::Detected {
        eprintln!(
            "sutantra: detected board {} ({})",
            board.name, board.description
        );
    }
    if let Some(v) = &args.source {
        cfg.source.spec = v.clone();
    }
    if let Some(v) = &args.upstream_token {
        cfg.source.upstream_token = Some(v.clone());
    }
    if let Some(v) = args.listen {
        cfg.http.listen = v;
    }
    if let Some(v) = &args.tls_cert {
        cfg.http.tls_cert = Some(v.clone());
    }
    if let Some(v) = &args.tls_key {
        cfg.http.tls_key = Some(v.clone());
    }
    if let Some(v) = args.width {
        cfg.source.width = v;
    }
    if let Some(v) = args.height {
        cfg.source.height = v;
    }
    if let Some(v) = args.fps {
        cfg.source.fps = v;
    }
    if let Some(v) = args.bitrate {
        cfg.encoder.bitrate_kbps = v;
    }
    if let Some(v) = &args.data_dir {
        cfg.data_dir = v.clone();
    }
    if let Some(v) = args.max_viewers {
        cfg.webrtc.max_viewers = v;
    }
    if let Some(v) = &args.token {
        cfg.http.token = Some(v.clone());
    }
    if args.allow_anonymous {
        cfg.http.allow_anonymous = true;
    }
    if !args.ice_servers.is_empty() {
        cfg.webrtc.ice_servers = args
            .ice_servers
            .iter()
            .filter(|u| u.as_str() != "none")
            .cloned()
            .collect();
    }
    for url in &args.publish {
        cfg.publish
            .push(crate::config::PublishTarget::from_url(url));
    }
    cfg.validate().map_err(|(key, reason)| {
        // A value set in the file keeps its line; one from a flag names the flag.
        match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                Config::parse(&text, &path.display().to_string())
                    .err()
                    .unwrap_or_else(|| cli_error(&key, reason.clone()))
            }
            None => cli_error(&key, reason),
        }
    })?;
    Ok(cfg)
}

/// `sutantra config validate FILE`.
pub fn config(cmd: ConfigCmd) -> ExitCode {
    match cmd {
        ConfigCmd::Show(target) => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::ConfigShow,
        ),
        ConfigCmd::Reload(target) => {
            crate::ops::control::client::run(&target, crate::ops::control::client::Action::Reload)
        }
        ConfigCmd::Set {
            key,
            value,
            file,
            target,
        } => config_set(&key, &value, file, &target),
        ConfigCmd::Validate { file, json } => match Config::load(&file) {
            Ok(_) => {
                if json {
                    println!("{}", serde_json::json!({"valid": true, "file": file}));
                } else {
                    println!("{}: valid", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"valid": false, "file": e.file, "line": e.line,
                                           "key": e.key, "reason": e.reason})
                    );
                } else {
                    eprintln!("{e}");
                }
                ExitCode::from(2)
            }
        },
    }
}

/// `sutantra config set KEY VALUE [--file FILE]`.
fn config_set(
    key: &str,
    value: &str,
    file: Option<PathBuf>,
    target: &crate::ops::control::client::Target,
) -> ExitCode {
    use crate::ops::control::client::{Action, EXIT_NOT_RUNNING, Output, cli_runtime, execute};
    let runtime = match cli_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Which file: the one given, else the one the running node was started with.
    let quiet = crate::ops::control::client::Target {
        json: true,
        ..target.clone()
    };
    let (mut answer, mut errors) = (Vec::new(), Vec::new());
    let code = runtime.block_on(execute(
        &quiet,
        &Action::ConfigShow,
        &mut Output {
            out: &mut answer,
            err: &mut errors,
            error_prefix: "",
        },
    ));
    let running = code == 0;
    let node_file = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["file"].as_str().map(PathBuf::from));
    let path = match (file, &node_file) {
        (Some(f), _) => f,
        (None, Some(f)) => f.clone(),
        (None, None) if running => {
            eprintln!(
                "sutantra: the running node has no configuration file (it was started without \
                 --config); pass --file FILE to edit one, and start the node with --config FILE"
            );
            return ExitCode::from(2);
        }
        (None, None) => {
            eprint!("sutantra: {}", String::from_utf8_lossy(&errors));
            eprintln!("sutantra: to edit a file without a running node, pass --file FILE");
            return ExitCode::from(if code == EXIT_NOT_RUNNING {
                EXIT_NOT_RUNNING
            } else {
                1
            });
        }
    };
    // The text before the edit: a value the running node refuses (a camera that does not open)
    // is taken back out of the file, so the file never holds what the node cannot run.
    let before = std::fs::read_to_string(&path).ok();
    if let Err(e) = crate::config::edit::set_in_file(&path, key, value) {
        eprintln!("sutantra: {e}");
        return ExitCode::from(2);
    }
    let same_file = node_file
        .as_deref()
        .is_some_and(|f| std::fs::canonicalize(f).ok() == std::fs::canonicalize(&path).ok());
    if !(running && same_file) {
        if target.json {
            println!(
                "{}",
                serde_json::json!({"file": path, "key": key, "set": true, "reloaded": false})
            );
        } else {
            println!(
                "{}: {key} set; the node applies it when it (re)starts with this file",
                path.display()
            );
        }
        return ExitCode::SUCCESS;
    }
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let code = runtime.block_on(execute(
        target,
        &Action::Reload,
        &mut Output {
            out: &mut stdout,
            err: &mut stderr,
            error_prefix: "sutantra: ",
        },
    ));
    if code == 1
        && let Some(text) = before
    {
        match crate::config::edit::write_atomic(&path, &text) {
            Ok(()) => eprintln!(
                "sutantra: {} is back as it was ({key} not changed)",
                path.display()
            ),
            Err(e) => eprintln!("sutantra: cannot put the file back: {e}"),
        }
    }
    ExitCode::from(code)
}

fn init_logging(filter: &str) {
    // The reloadable filter and the ring `sutantra logs` reads (src/control/logging.rs).
    crate::ops::control::logging::init(filter);
}

/// `sutantra run`.
pub fn run(args: RunArgs) -> ExitCode {
    let cfg = match resolve_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sutantra: {e}");
            return ExitCode::from(2);
        }
    };
    // The certificate and key are read again when the node starts serving; a pair that cannot
    // be used is a configuration error, told before anything starts.
    if let Err(e) = crate::http::Tls::from_config(&cfg.http) {
        eprintln!("sutantra: {e}");
        return ExitCode::from(2);
    }
    init_logging(&args.log_level);
    // Before any thread starts: one malloc arena (see ops::memory).
    crate::ops::memory::one_arena();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sutantra: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(start(cfg, args));
    // Dropping the runtime would wait, without a deadline, for blocking work still running (a
    // WHIP POST to a target that accepted the connection and never answers: 9.5 s measured,
    // close to the unit's TimeoutStopSec=10). Everything that matters has been stopped and
    // flushed by now; what is left is abandoned after half a second.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sutantra: {e}");
            ExitCode::from(if matches!(e, NodeError::Tls(_)) { 2 } else { 1 })
        }
    }
}

/// Makes the data dir and binds the control socket (refusing to start beside a running node)
/// and the HTTP port, starts the hosted serial console if configured, then runs the node.
async fn start(cfg: Config, args: RunArgs) -> Result<(), NodeError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| NodeError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    // The control socket first: a node already running on this data dir answers on it, and
    // this one refuses to start before it touches the store or the camera.
    let socket = cfg.control.socket_path(&cfg.data_dir);
    let control = crate::ops::control::server::bind(&socket)?;
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.http.listen,
            source,
        })?;
    if let Some(console) = &cfg.console {
        // The hosted serial console talks to this node's own control socket like any client.
        console::spawn(console, socket, cfg.data_dir.clone()).map_err(NodeError::Start)?;
    }
    let reload = crate::node::Reload {
        file: args.config.clone(),
        resolve: Box::new(move || resolve_config(&args)),
    };
    crate::node::run(cfg, reload, listener, control, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs one parsed command; the binary's whole job after parsing.
pub fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Run(args) => run(*args),
        Command::Config(cmd) => config(cmd),
        Command::Chain(cmd) => chain::chain(cmd),
        Command::Keys(cmd) => keys::keys(cmd),
        Command::Attest(cmd) => attest::attest(cmd),
        Command::Boards { json } => crate::config::board::list(json),
        Command::Status(target) => {
            crate::ops::control::client::run(&target, crate::ops::control::client::Action::Status)
        }
        Command::Stream { cmd, target } => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::Stream(cmd),
        ),
        Command::Viewers { kick, target } => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::Viewers { kick },
        ),
        Command::Logs {
            follow,
            lines,
            target,
        } => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::Logs {
                follow,
                lines: usize::from(lines),
            },
        ),
        Command::SetLogLevel { level, target } => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::SetLogLevel(level),
        ),
        Command::RebootStream(target) => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::RebootStream,
        ),
        Command::Snapshot {
            file,
            quality,
            target,
        } => crate::ops::control::client::run(
            &target,
            crate::ops::control::client::Action::Snapshot { file, quality },
        ),
        Command::Check(args) => crate::ops::check::run(&args),
        Command::Console(args) => crate::cli::console::run(&args),
        Command::Completions { shell } => completions::print(shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `encoder.cpu_used` takes negative values (fixed libvpx speeds): `-6` is the value, where
    /// clap would otherwise read it as an unknown flag and tell the operator to type `-- -6`.
    #[test]
    fn config_set_takes_a_negative_number_as_the_value() {
        let cli = Cli::try_parse_from([
            "sutantra",
            "config",
            "set",
            "encoder.cpu_used",
            "-6",
            "--file",
            "node.toml",
        ])
        .expect("parses");
        let Command::Config(ConfigCmd::Set { key, value, .. }) = cli.command else {
            panic!("not config set: {cli:?}");
        };
        assert_eq!((key.as_str(), value.as_str()), ("encoder.cpu_used", "-6"));
        // A word that starts with a dash is still refused as a flag.
        assert!(Cli::try_parse_from(["sutantra", "config", "set", "k", "-x"]).is_err());
    }
}
