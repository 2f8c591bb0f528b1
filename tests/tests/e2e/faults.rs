//! Faults nobody plans for, as tests: `kill -9` at random moments of the node's own writes, the
//! wall clock stepping by an hour, a full data disk, and a viewer that stops reading.
//!
//! Each test asserts what an operator relies on: the config still parses (old or new), the key
//! still loads, nothing is left readable by others, the video goes on, and the node recovers
//! on its own. The attestation store's share of the `kill -9` rounds is
//! `chain::attestation_outbox_survives_kill_9_loop`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::chain::Rng;
use crate::clients;
use crate::cometbft::{sutantra, sutantra_in};
use crate::node::{self, Node};

/// Starts `sutantra ARGS` and SIGKILLs it after `delay` (if it has not ended by then). Returns
/// whether it was killed.
fn run_and_kill(args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(node::binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sutantra");
    let t0 = Instant::now();
    // Sleep most of the delay, then spin the rest: kill points must land inside runs that take
    // a few milliseconds.
    if delay > Duration::from_millis(2) {
        thread::sleep(delay - Duration::from_millis(2));
    }
    while t0.elapsed() < delay {
        std::hint::spin_loop();
    }
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// How long `sutantra ARGS` takes when left alone (the median of 5 runs).
fn typical_run(args: &[&str], before_each: &mut dyn FnMut()) -> Duration {
    let mut took: Vec<Duration> = (0..5)
        .map(|_| {
            before_each();
            let t0 = Instant::now();
            let out = Command::new(node::binary())
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .expect("run sutantra");
            assert!(
                out.status.success(),
                "sutantra {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t0.elapsed()
        })
        .collect();
    took.sort();
    took[2]
}

/// The temporary files (`*.tmp*`) left in `dir`: none may be readable or writable by group or
/// others, except one that already carries `like`'s exact mode, owner and group (the writer was
/// killed between giving the new file the original's mode and the rename, a window of
/// microseconds: no wider audience than the original). Returns how many there were.
fn assert_leftovers_private(dir: &Path, like: Option<&Path>, what: &str) -> usize {
    use std::os::unix::fs::MetadataExt;
    let original = like.map(|p| std::fs::metadata(p).expect("stat the original"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.contains(".tmp") {
            continue;
        }
        n += 1;
        let m = entry.metadata().expect("stat");
        let mode = m.permissions().mode() & 0o777;
        let as_original = original
            .as_ref()
            .is_some_and(|o| (o.mode() & 0o777, o.uid(), o.gid()) == (mode, m.uid(), m.gid()));
        assert!(
            mode & 0o077 == 0 || as_original,
            "{what}: the temporary file {name} has mode {mode:o}, looser than 0600"
        );
    }
    n
}

/// `config set --file` killed at random moments: every time the file parses and holds either
/// the old or the new value, and no temporary file is looser than 0600 (the config may hold the
/// HTTP token).
#[test]
fn kill_9_during_config_set_leaves_a_valid_config() {
    const ROUNDS: usize = 80;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("node.toml");
    let initial = "# the board's config\n[http]\ntoken = \"s3cret-token-value\"\n\n[encoder]\nbitrate_kbps = 600\n";
    std::fs::write(&file, initial).expect("write config");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let f = file.to_str().expect("utf-8 path");
    let set = |v: &'static str| -> Vec<&str> {
        vec!["config", "set", "encoder.bitrate_kbps", v, "--file", f]
    };
    let typical = typical_run(&set("700"), &mut || {});
    println!("config set takes {typical:?} when left alone");
    std::fs::write(&file, initial).expect("write config");
    let mut rng = Rng::new();
    let (mut killed, mut leftovers) = (0, 0);
    for round in 0..ROUNDS {
        let before = std::fs::read_to_string(&file).expect("read config");
        let old = if before.contains("bitrate_kbps = 600") {
            "600"
        } else {
            "900"
        };
        let new = if old == "600" { "900" } else { "600" };
        let delay = Duration::from_micros(rng.below(typical.as_micros() as u64 * 12 / 10));
        killed += usize::from(run_and_kill(&set(new), delay));
        let after = std::fs::read_to_string(&file).expect("read config after the kill");
        let valid = sutantra(&["config", "validate", f]);
        assert_eq!(
            valid.code,
            Some(0),
            "round {round} (killed after {delay:?}): the config no longer validates: {}\n{after}",
            valid.stderr
        );
        let holds = |v: &str| after.contains(&format!("bitrate_kbps = {v}"));
        assert!(
            holds(old) || holds(new),
            "round {round}: the value is neither {old} nor {new}:\n{after}"
        );
        assert!(
            after.contains("# the board's config") && after.contains("s3cret-token-value"),
            "round {round}: the rest of the file was lost:\n{after}"
        );
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "round {round}: the config's mode changed");
        leftovers += assert_leftovers_private(dir.path(), Some(&file), &format!("round {round}"));
    }
    // The next `config set` that runs to its end removes what killed ones left.
    let last = sutantra(&set("600"));
    assert_eq!(
        last.code,
        Some(0),
        "config set after the kills: {}",
        last.stderr
    );
    assert_eq!(
        assert_leftovers_private(dir.path(), Some(&file), "after a clean run"),
        0,
        "temporary files of killed runs are still there after a clean `config set`"
    );
    println!(
        "config set: {ROUNDS} rounds, {killed} killed mid-run, the config valid every time; \
         temporary files left by kills (0600 or tighter, removed by the next run): {leftovers}"
    );
    assert!(
        killed >= ROUNDS / 4,
        "only {killed} of {ROUNDS} runs were killed before they ended: the kill points missed"
    );
}

/// The node key's first creation killed at random moments: afterwards the key loads (or is
/// created whole by the next start), stays the same from then on, and is 0600.
#[test]
fn kill_9_during_key_creation_leaves_a_loadable_key() {
    const ROUNDS: usize = 70;
    let base = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        let d = base.path().join(format!("d{n}"));
        std::fs::create_dir(&d).expect("mkdir");
        d
    };
    let probe = fresh();
    let probe_s = probe.to_str().expect("utf-8").to_string();
    let typical = typical_run(&["keys", "show", "--data-dir", &probe_s], &mut || {
        let _ = std::fs::remove_file(probe.join("node.key"));
    });
    println!("keys show (creating the key) takes {typical:?} when left alone");
    let mut rng = Rng::new();
    let (mut killed, mut existed) = (0, 0);
    for round in 0..ROUNDS {
        let data = fresh();
        let d = data.to_str().expect("utf-8");
        let delay = Duration::from_micros(rng.below(typical.as_micros() as u64 * 12 / 10));
        killed += usize::from(run_and_kill(&["keys", "show", "--data-dir", d], delay));
        let had_key = std::fs::read_dir(&data)
            .expect("read dir")
            .flatten()
            .any(|e| !e.file_name().to_string_lossy().contains(".tmp"));
        existed += usize::from(had_key);
        assert_leftovers_private(&data, None, &format!("round {round}"));
        let first = sutantra_in(&data, &["keys", "show", "--json"]);
        assert_eq!(
            first.code,
            Some(0),
            "round {round} (killed after {delay:?}): the key does not load: {}",
            first.stderr
        );
        let again = sutantra_in(&data, &["keys", "show", "--json"]);
        let public = |out: &str| {
            serde_json::from_str::<serde_json::Value>(out)
                .map(|j| j["public_key"].clone())
                .unwrap_or_else(|e| panic!("round {round}: keys show --json: {e}: {out}"))
        };
        assert_eq!(
            public(&first.stdout),
            public(&again.stdout),
            "round {round}: the key changed between two loads"
        );
        assert!(
            !again.stdout.contains("\"created\":true"),
            "round {round}: a second load created another key"
        );
        for entry in std::fs::read_dir(&data).expect("read dir").flatten() {
            let mode = entry.metadata().expect("stat").permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o077,
                0,
                "round {round}: {} has mode {mode:o}",
                entry.file_name().to_string_lossy()
            );
        }
    }
    println!(
        "key creation: {ROUNDS} rounds, {killed} killed mid-run ({existed} left a key file), \
         the key loaded every time"
    );
    assert!(
        killed >= ROUNDS / 4,
        "only {killed} of {ROUNDS} runs were killed before they ended: the kill points missed"
    );
}

/// libfaketime, preloaded into the node to move its wall clock (CLOCK_REALTIME) while the
/// monotonic clock runs on: what an NTP step or a hand-set date does to a board.
fn faketime_lib() -> &'static str {
    const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        Path::new(LIB).is_file(),
        "{LIB} is missing: run scripts/setup.sh (as root) to install Debian's faketime"
    );
    LIB
}

/// The wall clock steps an hour forward, then two hours back, then forward to the right time,
/// while a viewer watches: no panic, the viewer keeps its frame rate, and the RTP timestamps it
/// receives only go forward, in steps of a frame or so (the node paces and stamps RTP from the
/// monotonic clock; only the latency stamp, which is wall-clock time by contract, jumps).
#[test]
fn wall_clock_steps_of_an_hour_keep_video_and_rtp_timestamps_going() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offset = dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").expect("write the offset file");
    let offset_s = offset.to_str().expect("utf-8").to_string();
    let mut node = Node::start_env(
        &[],
        &[
            ("LD_PRELOAD", faketime_lib()),
            ("FAKETIME_TIMESTAMP_FILE", &offset_s),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            // Read the offset file again at most every second (not at every clock read).
            ("FAKETIME_CACHE_DURATION", "1"),
        ],
    );
    const WINDOW: u64 = 16;
    let viewer = clients::spawn_whep(&node.url("/whep"), &["--seconds", &WINDOW.to_string()]);
    node.wait_healthz("a viewer streaming", Duration::from_secs(30), |h| {
        h["viewers"].as_u64().is_some_and(|n| n >= 1)
    });
    let steps = [("+3600", 4), ("-3600", 4), ("+0", 4)];
    for (to, hold) in steps {
        std::fs::write(&offset, format!("{to}\n")).expect("step the clock");
        thread::sleep(Duration::from_secs(hold));
        node.assert_alive();
    }
    let run = clients::finish(viewer, Duration::from_secs(WINDOW + 60), "whep_client.py");
    let j = run.json();
    println!("viewer across the clock steps: {j}");
    let out = node.output();
    assert!(
        !out.contains("panicked"),
        "the node panicked: {}",
        node::tail(&out, 3000)
    );
    assert!(
        run.success && j.get("error").is_none(),
        "the viewer failed: {j}\n{}",
        run.stderr
    );
    let frames = j["frames"].as_u64().unwrap_or(0);
    assert!(
        frames as f64 >= 0.93 * 30.0 * WINDOW as f64,
        "{frames} frames in {WINDOW} s across the clock steps, need 93 % of 30 fps: {j}"
    );
    assert_eq!(
        j["rtp_ts_backwards"].as_u64(),
        Some(0),
        "RTP timestamps went backwards: {j}"
    );
    let max_step = j["rtp_ts_max_step_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        max_step < 500.0,
        "an RTP timestamp jumped {max_step} ms between two frames: {j}"
    );
    let h = node.healthz();
    assert_eq!(h["status"], "ok", "after the steps: {h}");
    let late = node.metric("sutantra_pacer_skipped_total").unwrap_or(0.0);
    println!("pacer ticks skipped over the run: {late}");
    assert!(
        late <= 15.0,
        "the pacer skipped {late} frame-clock ticks: the clock steps upset pacing"
    );
}

/// A viewer that stops reading (its process stopped: its socket buffer fills, its consent
/// checks go unanswered) costs only itself: another viewer keeps the full rate meanwhile, and
/// the node drops the silent one and frees its slot.
#[test]
fn a_viewer_that_stops_reading_costs_only_itself() {
    let node = Node::start(&[]);
    let whep = node.url("/whep");
    let stalled = clients::spawn_whep(&whep, &["--seconds", "120"]);
    node.wait_healthz("the first viewer streaming", Duration::from_secs(30), |h| {
        h["viewers"].as_u64().is_some_and(|n| n >= 1)
    });
    let pid = stalled.id().to_string();
    let stopped = Command::new("kill").args(["-STOP", &pid]).status();
    assert!(
        stopped.is_ok_and(|s| s.success()),
        "could not stop the viewer"
    );
    // The other viewer starts after the first one stopped reading.
    const WINDOW: u64 = 12;
    let steady = clients::whep(
        &whep,
        &["--seconds", &WINDOW.to_string()],
        Duration::from_secs(WINDOW + 60),
    );
    let j = steady.json();
    println!("the steady viewer while the other one is stopped: {j}");
    assert!(
        steady.success,
        "the steady viewer failed: {j}\n{}",
        steady.stderr
    );
    let frames = j["frames"].as_u64().unwrap_or(0);
    assert!(
        frames as f64 >= 0.95 * 30.0 * WINDOW as f64,
        "the steady viewer decoded {frames} frames in {WINDOW} s beside a stopped viewer"
    );
    // The stopped viewer answers no ICE consent checks: the node ends its session.
    let t0 = Instant::now();
    node.wait_healthz(
        "the stopped viewer's session ended",
        Duration::from_secs(60),
        |h| h["sessions"].as_u64() == Some(0),
    );
    println!(
        "the stopped viewer's session ended {:.1} s after the steady viewer's window",
        t0.elapsed().as_secs_f64()
    );
    let mut stalled = stalled;
    let _ = stalled.kill();
    let _ = stalled.wait();
}

// --- a full data disk ------------------------------------------------------------------------

/// A tmpfs of `size` mounted on a fresh directory; unmounted (lazily, so a process still in it
/// cannot keep it) when dropped, also when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("sutantra-full-disk-")
            .tempdir()
            .expect("temp dir");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Tmpfs { dir },
            Ok(o) => panic!(
                "this test needs root (it mounts a small tmpfs as the node's data disk): `mount -t \
                 tmpfs` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!(
                "this test needs root and mount(8) (it mounts a small tmpfs as the node's data \
                 disk): {e}"
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the file system is full (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create the filler");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("fill {}: {e}", path.display()),
        }
    }
    // Smaller writes take the last pages.
    while let Ok(n) = f.write(&chunk[..512]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    let _ = f.sync_all();
    written
}

/// `sutantra attest list --json` on `data`: the seqs.
fn stored_seqs(data: &Path) -> Vec<u64> {
    crate::chain::attest_list(data)
        .iter()
        .map(crate::chain::seq_of)
        .collect()
}

/// Frames sent per second over `window`, from `/metrics`.
fn fps_sent(node: &Node, window: Duration) -> f64 {
    let sent = |n: &Node| n.metric("sutantra_frames_sent_total").unwrap_or(0.0);
    let (f0, t0) = (sent(node), Instant::now());
    thread::sleep(window);
    (sent(node) - f0) / t0.elapsed().as_secs_f64()
}

#[test]
fn a_full_data_disk_keeps_video_and_recovers_when_space_returns() {
    const ATTESTATIONS: &str = "sutantra_attestations_total";
    const STORE_ERRORS: &str = "sutantra_store_errors_total";
    const STORE_FAILING: &str = "sutantra_store_failing";
    const LOST: &str = "sutantra_attest_segments_lost_store_total";
    let disk = Tmpfs::mount("4m");
    let data = disk.path().to_path_buf();
    let scratch = tempfile::tempdir().expect("temp dir");
    let rpc = crate::cometbft::FakeRpc::generated(11, 4, crate::chain::genesis());
    let mut conf = crate::chain::Conf::for_rpc(&rpc);
    conf.segment_ms = 1_000;
    let cfg = conf.write(scratch.path());
    let node = Node::start_in(&data, &["--config", cfg.to_str().expect("utf-8 path")]);
    node.wait_metric(
        "sutantra_chain_trusted_height",
        "trusted height 11",
        Duration::from_secs(60),
        |h| h >= 11.0,
    );
    node.wait_metric(
        ATTESTATIONS,
        "3 attestations",
        Duration::from_secs(30),
        |n| n >= 3.0,
    );
    // What the store holds before the disk fills (read-only beside the running node).
    let before = stored_seqs(&data);
    assert!(
        before.len() >= 3,
        "the store holds {before:?} after 3 attestations"
    );

    // The disk fills up.
    let filler = data.join("filler");
    let filled = fill(&filler);
    let t_full = Instant::now();
    println!("filled the data disk with {filled} bytes");
    node.wait_metric(
        STORE_ERRORS,
        "store errors on the full disk",
        Duration::from_secs(90),
        |n| n >= 1.0,
    );
    println!(
        "first store error {:.1} s after the disk filled",
        t_full.elapsed().as_secs_f64()
    );
    node.wait_metric(
        LOST,
        "a segment lost to the full disk",
        Duration::from_secs(30),
        |n| n >= 1.0,
    );
    let h = node.wait_healthz(
        "the store's error in /healthz",
        Duration::from_secs(10),
        |h| {
            h["chain_error"]
                .as_str()
                .is_some_and(|e| e.contains("node.redb"))
        },
    );
    println!("/healthz chain_error while full: {}", h["chain_error"]);
    // The video goes on: frames are sent at the frame rate, and a new viewer decodes.
    let fps = fps_sent(&node, Duration::from_secs(5));
    println!("frames sent while the disk is full: {fps:.1}/s");
    assert!(fps >= 27.0, "{fps:.1} frames/s sent while the disk is full");
    const WINDOW: u64 = 5;
    let viewer = clients::whep(
        &node.url("/whep"),
        &["--seconds", &WINDOW.to_string()],
        Duration::from_secs(WINDOW + 60),
    );
    let j = viewer.json();
    println!("a viewer while the disk is full: {j}");
    assert!(viewer.success, "the viewer failed: {j}\n{}", viewer.stderr);
    let frames = j["frames"].as_u64().unwrap_or(0);
    assert!(
        frames as f64 >= 0.9 * 30.0 * WINDOW as f64,
        "the viewer decoded {frames} frames in {WINDOW} s while the disk is full"
    );
    let errors_full = node.metric(STORE_ERRORS).unwrap_or(0.0);
    assert_eq!(
        node.metric(STORE_FAILING),
        Some(1.0),
        "store_failing while full"
    );

    // Space returns: the node recovers by itself.
    std::fs::remove_file(&filler).expect("remove the filler");
    let t_free = Instant::now();
    let at_free = node.metric(ATTESTATIONS).unwrap_or(0.0);
    node.wait_metric(
        STORE_FAILING,
        "the store writing again",
        Duration::from_secs(30),
        |v| v == 0.0,
    );
    node.wait_metric(
        ATTESTATIONS,
        "attestations stored again",
        Duration::from_secs(30),
        |n| n >= at_free + 2.0,
    );
    println!(
        "recovered {:.1} s after the space returned ({errors_full} store errors counted, {} \
         segments lost)",
        t_free.elapsed().as_secs_f64(),
        node.metric(LOST).unwrap_or(0.0)
    );
    let h = node.wait_healthz(
        "the store's error cleared in /healthz",
        Duration::from_secs(10),
        |h| {
            !h["chain_error"]
                .as_str()
                .is_some_and(|e| e.contains("node.redb"))
        },
    );
    println!("/healthz chain_error after recovery: {}", h["chain_error"]);
    let made = node.metric(ATTESTATIONS).unwrap_or(0.0) as usize;
    let (clean, out) = node.stop(Duration::from_secs(15));
    assert!(
        clean,
        "the node did not stop by itself; output:\n{}",
        node::tail(&out, 4000)
    );
    let outages = out.matches("segments are NOT attested").count();
    assert!(
        outages >= 1 && out.contains("the store writes again"),
        "the outage and the recovery were not logged; output:\n{}",
        node::tail(&out, 4000)
    );
    println!("outages logged by the attester: {outages}; the node's store lines:");
    for line in out
        .lines()
        .filter(|l| l.contains("store") || l.contains("attestations are stored again"))
        .filter(|l| !l.contains("attestation stored"))
        .take(20)
    {
        println!("  {line}");
    }

    // Every attestation stored before the disk filled is still there, the seqs run on without
    // a gap (a segment the store could not take never got a seq), and the store opens.
    let after = stored_seqs(&data);
    let missing: Vec<u64> = before
        .iter()
        .filter(|s| !after.contains(s))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "attestations lost: {missing:?} (after: {after:?})"
    );
    for w in after.windows(2) {
        assert_eq!(w[1], w[0] + 1, "seqs not consecutive: {after:?}");
    }
    assert!(
        after.len() >= made,
        "the node counted {made} stored attestations, the store holds {}",
        after.len()
    );
    println!(
        "the store holds seqs {}..={} ({} attestations; {} before the disk filled)",
        after.first().copied().unwrap_or(0),
        after.last().copied().unwrap_or(0),
        after.len(),
        before.len()
    );
    drop(rpc);
}
