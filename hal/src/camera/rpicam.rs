//! `RpicamSource`: a Raspberry Pi camera module on the CSI connector, through Raspberry Pi OS's
//! `rpicam-vid` (`--source rpicam` or `rpicam:N` for camera N).
//!
//! On Raspberry Pi OS Bookworm the camera modules (v2, v3, HQ, Global Shutter) go through
//! libcamera: their `/dev/video*` nodes carry raw Bayer that only the ISP, driven by libcamera's
//! tuning, turns into a picture. Linking libcamera (C++, its ABI changes between releases, which
//! is why MediaMTX bundles its own) would tie the node to one OS image; `rpicam-vid` is the
//! camera stack's own tool, kept in step with it by the OS. So the node runs it, as go2rtc does,
//! with raw I420 on a pipe:
//!
//! `rpicam-vid -t 0 -n --codec yuv420 --width W --height H --framerate F [--camera N]
//! [--hflip] [--vflip] --flush -o -`
//!
//! (`libcamera-vid`, its name before Bookworm, when `rpicam-vid` is not on `PATH`). Every frame
//! is the ISP's buffer as it is: rows padded to [`ROW_ALIGN`] bytes for widths that are not a
//! multiple of it (chroma rows to half that), planes one after the other. A reader thread reads
//! whole frames into two buffers allocated at open and hands them over a channel, so `capture`
//! can wait with a timeout: the node's fixed-buffer rule holds and a stalled tool is noticed.
//!
//! Supervision is the capture thread's, as for V4L2: an exit or a stall (no frame for
//! [`STALL`]) is an [`ErrorKind::Disconnected`] error, the source is closed (the tool killed and
//! reaped) and reopened with backoff while viewers see the "no signal" slate. The tool's stderr
//! goes to the node's log under the `rpicam` target, at most [`LOG_BURST`] lines per
//! [`LOG_WINDOW`] (libcamera is chatty when it starts), and its last lines are kept for the
//! error message when it exits. A missing tool is [`ErrorKind::NotFound`], naming the package.
//!
//! Flips are done by the ISP (`--hflip`, `--vflip`; `rotation = 180` is both), free of CPU.

// Reads a pipe another program writes: no indexing, slicing or arithmetic that can panic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::orient::Orientation;
use super::spec::SourceRequest;
use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

/// The tool, and its name before Raspberry Pi OS Bookworm.
pub const TOOLS: [&str; 2] = ["rpicam-vid", "libcamera-vid"];
/// The luma row alignment of the Pi ISP's YUV420 buffers, which `rpicam-vid --codec yuv420`
/// writes as they are (chroma rows: half). A width that is a multiple of 64 has no padding.
pub const ROW_ALIGN: usize = 64;
/// No frame for this long: the tool is stalled, and is restarted.
pub const STALL: Duration = Duration::from_secs(2);
/// How long the tool may take to deliver its first frame (libcamera's start and the sensor's
/// first exposures take about a second on a Pi Zero 2 W).
pub const STARTUP: Duration = Duration::from_secs(5);
/// At most this many stderr lines per [`LOG_WINDOW`] reach the log.
pub const LOG_BURST: u32 = 20;
/// See [`LOG_BURST`].
pub const LOG_WINDOW: Duration = Duration::from_secs(10);
/// How many of the tool's last stderr lines an error message quotes.
const TAIL_LINES: usize = 6;
/// Longest stderr line kept (the rest is cut).
const MAX_LINE: usize = 300;

/// What `rpicam-vid --list-cameras` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraList {
    /// The tool that answered.
    pub tool: PathBuf,
    /// One line per camera, as the tool prints it (`0 : imx708 [4608x2592 10-bit RGGB] (...)`).
    pub cameras: Vec<String>,
}

/// The first of [`TOOLS`] on `PATH`.
pub fn find_tool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    TOOLS.iter().find_map(|tool| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The error for a missing tool: what to install.
fn not_installed() -> CameraError {
    CameraError::new(
        ErrorKind::NotFound,
        "neither rpicam-vid nor libcamera-vid is on PATH: the rpicam source needs Raspberry Pi \
         OS's camera tools (sudo apt install rpicam-apps, or rpicam-apps-lite on Raspberry Pi \
         OS Lite; on images before Bookworm the package is libcamera-apps), or use --source \
         v4l2:/dev/videoN for a USB webcam",
    )
}

/// Asks the camera stack which camera modules are connected (`--list-cameras`), waiting at most
/// `timeout`. `Err` when the tool is missing or does not answer.
pub fn list_cameras(timeout: Duration) -> Result<CameraList, CameraError> {
    let tool = find_tool().ok_or_else(not_installed)?;
    let mut child = Command::new(&tool)
        .arg("--list-cameras")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| spawn_error(&tool, &e))?;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            // At most 64 KiB: the list is a few lines.
            let _ = out.by_ref().take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if deadline.is_some_and(|d| Instant::now() < d) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CameraError::new(
                    ErrorKind::Other,
                    format!(
                        "{} --list-cameras did not answer within {} s",
                        tool.display(),
                        timeout.as_secs()
                    ),
                ));
            }
        }
    }
    let text = reader.join().unwrap_or_default();
    Ok(CameraList {
        tool,
        cameras: parse_camera_list(&text),
    })
}

/// The camera lines of `--list-cameras` output: `N : sensor [...]` (the `Modes:` lines under
/// each are skipped; "No cameras available!" gives none).
pub fn parse_camera_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            let mut parts = l.splitn(2, " : ");
            let index = parts.next().unwrap_or_default();
            parts.next().is_some() && !index.is_empty() && index.chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

fn spawn_error(tool: &Path, e: &std::io::Error) -> CameraError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return not_installed();
    }
    CameraError::new(
        ErrorKind::Other,
        format!("cannot start {}: {e}", tool.display()),
    )
}

/// The byte layout of one frame on the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeLayout {
    /// Luma row stride.
    pub y_stride: usize,
    /// Chroma row stride.
    pub c_stride: usize,
    /// Bytes per frame.
    pub frame_bytes: usize,
}

impl PipeLayout {
    /// The layout `rpicam-vid --codec yuv420` writes for `width` x `height`; `None` for a size
    /// whose frame would not fit in memory.
    pub fn new(width: u32, height: u32) -> Option<Self> {
        let w = usize::try_from(width).ok()?;
        let h = usize::try_from(height).ok()?;
        let y_stride = w.checked_next_multiple_of(ROW_ALIGN)?;
        let c_stride = y_stride.checked_div(2)?;
        let c_rows = h.div_ceil(2);
        let frame_bytes = y_stride
            .checked_mul(h)?
            .checked_add(c_stride.checked_mul(c_rows)?.checked_mul(2)?)?;
        Some(Self {
            y_stride,
            c_stride,
            frame_bytes,
        })
    }

    /// Copies one padded frame `src` into `frame` (rows without their padding).
    pub fn unpack(&self, src: &[u8], frame: &mut I420Frame) -> Result<(), CameraError> {
        let (w, cw) = (frame.width() as usize, frame.chroma_width() as usize);
        let (fw, fh, ch) = (frame.width(), frame.height(), frame.chroma_height());
        let short = || {
            CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes does not hold {fw}x{fh} at row stride {}",
                    src.len(),
                    self.y_stride
                ),
            )
        };
        let y_bytes = self.y_stride.checked_mul(fh as usize).ok_or_else(short)?;
        let c_bytes = self.c_stride.checked_mul(ch as usize).ok_or_else(short)?;
        let (src_y, rest) = src.split_at_checked(y_bytes).ok_or_else(short)?;
        let (src_u, rest) = rest.split_at_checked(c_bytes).ok_or_else(short)?;
        let src_v = rest.get(..c_bytes).ok_or_else(short)?;
        let (y, u, v) = frame.planes_mut();
        for (plane, src, stride, width) in [
            (y, src_y, self.y_stride, w),
            (u, src_u, self.c_stride, cw),
            (v, src_v, self.c_stride, cw),
        ] {
            if width == 0 || stride < width {
                return Err(short());
            }
            for (dst, row) in plane.chunks_exact_mut(width).zip(src.chunks_exact(stride)) {
                dst.copy_from_slice(row.get(..width).ok_or_else(short)?);
            }
        }
        Ok(())
    }
}

/// The tool's stderr: rate-limited into the log, its last lines kept.
#[derive(Debug, Default)]
struct StderrTail {
    lines: VecDeque<String>,
}

/// A camera module through `rpicam-vid`.
pub struct RpicamSource {
    tool: PathBuf,
    camera: u32,
    layout: PipeLayout,
    info: SourceInfo,
    child: Option<Child>,
    /// Filled frames from the reader thread (`Err`: the pipe ended or failed).
    full: Option<Receiver<std::io::Result<Vec<u8>>>>,
    /// Empty buffers back to the reader thread.
    empty: Option<SyncSender<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    tail: Arc<Mutex<StderrTail>>,
    /// The first frame, read by `open` to know the tool works.
    first: Option<Vec<u8>>,
    seq: u64,
}

impl std::fmt::Debug for RpicamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpicamSource")
            .field("tool", &self.tool)
            .field("camera", &self.camera)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl RpicamSource {
    /// Starts `rpicam-vid` for camera `camera` at the requested size and rate, flipped as `o`
    /// says, and waits for its first frame (at most [`STARTUP`]), so that a tool that cannot
    /// start (no camera, a size the sensor cannot give) is an error here, with its own words.
    pub fn open(camera: u32, req: &SourceRequest, o: Orientation) -> Result<Self, CameraError> {
        let tool = find_tool().ok_or_else(not_installed)?;
        Self::open_tool(tool, camera, req, o)
    }

    /// [`RpicamSource::open`] with the tool's path given.
    pub fn open_tool(
        tool: PathBuf,
        camera: u32,
        req: &SourceRequest,
        o: Orientation,
    ) -> Result<Self, CameraError> {
        Self::open_with_env(tool, camera, req, o, &[])
    }

    /// [`RpicamSource::open_tool`] with variables added to the tool's environment.
    fn open_with_env(
        tool: PathBuf,
        camera: u32,
        req: &SourceRequest,
        o: Orientation,
        env: &[(&str, &str)],
    ) -> Result<Self, CameraError> {
        let invalid = |m: String| CameraError::new(ErrorKind::InvalidInput, m);
        if req.width < 2
            || req.height < 2
            || !req.width.is_multiple_of(2)
            || !req.height.is_multiple_of(2)
        {
            return Err(invalid(format!(
                "rpicam: {}x{} is not a size the camera can deliver: use even sizes such as \
                 640x480 or 1280x720",
                req.width, req.height
            )));
        }
        if req.fps_num == 0 || req.fps_den == 0 {
            return Err(invalid("rpicam: the frame rate must not be zero".into()));
        }
        let layout = PipeLayout::new(req.width, req.height)
            .ok_or_else(|| invalid(format!("rpicam: {}x{} is too large", req.width, req.height)))?;
        let fps = f64::from(req.fps_num) / f64::from(req.fps_den);
        let mut cmd = Command::new(&tool);
        cmd.args(["-t", "0", "-n", "--codec", "yuv420"])
            .args(["--width", &req.width.to_string()])
            .args(["--height", &req.height.to_string()])
            .args(["--framerate", &format!("{fps}")])
            .args(["--camera", &camera.to_string()]);
        if o.hflip {
            cmd.arg("--hflip");
        }
        if o.vflip {
            cmd.arg("--vflip");
        }
        cmd.args(["--flush", "-o", "-"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(&tool, &e))?;
        let name = tool
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rpicam-vid".into());
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        if let Some(err) = child.stderr.take() {
            let tail = tail.clone();
            let name = name.clone();
            // Ends at the tool's exit (EOF); never joined: it holds nothing but the pipe.
            let _ = std::thread::Builder::new()
                .name("rpicam-log".into())
                .spawn(move || log_stderr(err, &name, &tail));
        }
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CameraError::new(ErrorKind::Other, "rpicam: no stdout pipe"));
        };
        // Two buffers: one being filled by the reader, one being copied into a frame.
        let (full_tx, full_rx) = sync_channel(2);
        let (empty_tx, empty_rx) = sync_channel(2);
        for _ in 0..2 {
            let _ = empty_tx.send(vec![0u8; layout.frame_bytes]);
        }
        let reader = std::thread::Builder::new()
            .name("rpicam-read".into())
            .spawn(move || read_frames(stdout, &empty_rx, &full_tx))
            .map_err(|e| CameraError::new(ErrorKind::Other, format!("rpicam: {e}")))?;
        let info = SourceInfo {
            kind: "rpicam",
            description: format!(
                "camera {camera} via {} ({}), I420 {}x{} at {}/{} fps, row stride {}{}",
                name,
                tool.display(),
                req.width,
                req.height,
                req.fps_num,
                req.fps_den,
                layout.y_stride,
                match (o.hflip, o.vflip) {
                    (true, true) => ", rotated 180 by the ISP",
                    (true, false) => ", flipped horizontally by the ISP",
                    (false, true) => ", flipped vertically by the ISP",
                    (false, false) => "",
                }
            ),
            width: req.width,
            height: req.height,
            fps_num: req.fps_num,
            fps_den: req.fps_den,
        };
        let mut src = Self {
            tool,
            camera,
            layout,
            info,
            child: Some(child),
            full: Some(full_rx),
            empty: Some(empty_tx),
            reader: Some(reader),
            tail,
            first: None,
            seq: 0,
        };
        let first = src.next_buffer(STARTUP)?;
        src.first = Some(first);
        Ok(src)
    }

    /// The next filled buffer, waiting at most `wait`.
    fn next_buffer(&mut self, wait: Duration) -> Result<Vec<u8>, CameraError> {
        let Some(full) = self.full.as_ref() else {
            return Err(CameraError::new(ErrorKind::Disconnected, "rpicam: closed"));
        };
        match full.recv_timeout(wait) {
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) => Err(self.ended(Some(e))),
            Err(RecvTimeoutError::Disconnected) => Err(self.ended(None)),
            Err(RecvTimeoutError::Timeout) => Err(CameraError::new(
                ErrorKind::Disconnected,
                format!(
                    "{} delivered no frame for {} s (stalled); it is restarted{}",
                    self.tool.display(),
                    wait.as_secs(),
                    self.quoted_tail()
                ),
            )),
        }
    }

    /// The error for a pipe that ended: the tool's exit status and its last words.
    fn ended(&mut self, e: Option<std::io::Error>) -> CameraError {
        // The tool closes its output as it exits; give it a moment to be reaped.
        let mut status = None;
        if let Some(child) = self.child.as_mut() {
            for _ in 0..50 {
                if let Ok(Some(s)) = child.try_wait() {
                    status = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let how = match (status, e) {
            (Some(s), _) => format!("exited ({s})"),
            (None, Some(e)) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
                format!("failed: {e}")
            }
            (None, _) => "closed its output".into(),
        };
        CameraError::new(
            ErrorKind::Disconnected,
            format!(
                "{} for camera {} {how}{}",
                self.tool.display(),
                self.camera,
                self.quoted_tail()
            ),
        )
    }

    fn quoted_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.lines.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = tail.lines.iter().map(String::as_str).collect();
        format!("; it said: {}", lines.join(" | "))
    }

    /// Kills and reaps the tool and ends the reader thread.
    fn stop(&mut self) -> Result<(), CameraError> {
        let mut result = Ok(());
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait()
                && let Err(e) = child.kill()
            {
                result = Err(CameraError::new(
                    ErrorKind::Other,
                    format!("rpicam: cannot stop {}: {e}", self.tool.display()),
                ));
            }
            let _ = child.wait();
        }
        // The reader sees the pipe end; dropping both channel ends lets it return even when it
        // waits to hand over a frame or for an empty buffer.
        self.full = None;
        self.empty = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        result
    }
}

/// The reader thread: whole frames from the pipe into the buffers it is given.
fn read_frames(
    mut out: ChildStdout,
    empty: &Receiver<Vec<u8>>,
    full: &SyncSender<std::io::Result<Vec<u8>>>,
) {
    while let Ok(mut buf) = empty.recv() {
        match out.read_exact(&mut buf) {
            Ok(()) => {
                if full.send(Ok(buf)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        }
    }
}

/// The stderr thread: every line into the tail, and into the log within the rate limit.
fn log_stderr(err: impl Read, tool: &str, tail: &Mutex<StderrTail>) {
    let mut reader = BufReader::new(err);
    let mut window = Instant::now();
    let (mut logged, mut dropped) = (0u32, 0u64);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        // Lines are bounded: a line without a newline stops at 4 KiB.
        match reader.by_ref().take(4096).read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&raw);
        let line: String = text.trim_end().chars().take(MAX_LINE).collect();
        if line.is_empty() {
            continue;
        }
        {
            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
            if t.lines.len() >= TAIL_LINES {
                t.lines.pop_front();
            }
            t.lines.push_back(line.clone());
        }
        if window.elapsed() >= LOG_WINDOW {
            if dropped > 0 {
                tracing::info!(target: "rpicam", tool, "{dropped} more lines not logged");
            }
            window = Instant::now();
            logged = 0;
            dropped = 0;
        }
        if logged < LOG_BURST {
            logged = logged.saturating_add(1);
            if line.contains("ERROR") || line.contains("error") {
                tracing::warn!(target: "rpicam", tool, "{line}");
            } else {
                tracing::info!(target: "rpicam", tool, "{line}");
            }
        } else {
            dropped = dropped.saturating_add(1);
        }
    }
}

impl FrameSource for RpicamSource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn pacing(&self) -> Pacing {
        Pacing::Device
    }

    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        if frame.width() != self.info.width || frame.height() != self.info.height {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "frame is {}x{} but the camera delivers {}x{}: allocate frames with the size \
                     from info()",
                    frame.width(),
                    frame.height(),
                    self.info.width,
                    self.info.height
                ),
            ));
        }
        let buf = match self.first.take() {
            Some(b) => b,
            None => self.next_buffer(STALL)?,
        };
        let now = clock.now_us();
        let unpacked = self.layout.unpack(&buf, frame);
        if let Some(empty) = self.empty.as_ref() {
            let _ = empty.send(buf);
        }
        unpacked?;
        frame.capture_us = now;
        frame.seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<(), CameraError> {
        self.stop()
    }
}

impl Drop for RpicamSource {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_to_64_bytes_and_unpacked_without_the_padding() {
        let l = PipeLayout::new(640, 480).expect("fits");
        assert_eq!(
            (l.y_stride, l.c_stride, l.frame_bytes),
            (640, 320, 640 * 480 * 3 / 2)
        );
        // 1000 is not a multiple of 64: rows of 1024 (chroma 512) on the pipe.
        let (w, h) = (1000u32, 10u32);
        let l = PipeLayout::new(w, h).expect("fits");
        assert_eq!((l.y_stride, l.c_stride), (1024, 512));
        assert_eq!(l.frame_bytes, 1024 * 10 + 512 * 5 * 2);
        // Each sample is its column (mod 251) + 1; padding bytes are 0.
        let mut pipe = vec![0u8; l.frame_bytes];
        let mut at = 0;
        for (rows, stride, width) in [(10, 1024, 1000), (5, 512, 500), (5, 512, 500)] {
            for _ in 0..rows {
                for x in 0..width {
                    pipe[at + x] = (x % 251 + 1) as u8;
                }
                at += stride;
            }
        }
        let mut f = I420Frame::new(w, h);
        l.unpack(&pipe, &mut f).expect("unpack");
        let (y, u, v) = f.planes();
        assert!(
            y.chunks(1000)
                .all(|r| r.iter().enumerate().all(|(x, &b)| b == (x % 251 + 1) as u8))
        );
        assert!(
            u.iter().chain(v).all(|&b| b != 0),
            "padding leaked into the picture"
        );
        // A short frame is an error, not a panic.
        let err = l
            .unpack(&pipe[..l.frame_bytes - 1], &mut f)
            .expect_err("short");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn camera_lists_are_read_as_the_tool_prints_them() {
        let text = "Available cameras\n-----------------\n\
            0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)\n    \
            Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n\
            1 : imx477 [4056x3040 12-bit RGGB] (/base/soc/i2c0mux/i2c@0/imx477@1a)\n";
        let cams = parse_camera_list(text);
        assert_eq!(cams.len(), 2);
        assert!(cams[0].starts_with("0 : imx708"));
        assert!(cams[1].starts_with("1 : imx477"));
        assert!(parse_camera_list("No cameras available!\n").is_empty());
    }

    #[test]
    fn a_missing_tool_names_the_package() {
        let e = not_installed();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("rpicam-vid"), "{e}");
        assert!(e.to_string().contains("apt install rpicam-apps"), "{e}");
    }
}

/// Through the test suite's stand-in `rpicam-vid` (tests/e2e/rpicam/, a Python script that
/// behaves as the real tool documents): frames, a stall, an exit, bad options.
#[cfg(all(test, unix))]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod stand_in {
    use super::*;
    use crate::camera::FixedClock;

    fn tool() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/rpicam/rpicam-vid")
    }

    fn req(w: u32, h: u32) -> SourceRequest {
        SourceRequest {
            width: w,
            height: h,
            ..SourceRequest::default()
        }
    }

    fn open_env(env: &[(&str, &str)], w: u32, h: u32) -> Result<RpicamSource, CameraError> {
        RpicamSource::open_with_env(tool(), 0, &req(w, h), Orientation::default(), env)
    }

    #[test]
    fn frames_arrive_unpadded_at_the_requested_size_and_a_stall_or_exit_is_a_disconnect() {
        // 1000 wide: rows padded to 1024 on the pipe.
        let mut src = open_env(&[("FAKE_RPICAM_STALL_AFTER", "5")], 1000, 100).expect("open");
        assert_eq!(src.pacing(), Pacing::Device);
        assert!(
            src.info().description.contains("row stride 1024"),
            "{:?}",
            src.info()
        );
        let mut f = I420Frame::new(1000, 100);
        for n in 0..5u32 {
            src.capture(&mut f, &FixedClock(7)).expect("frame");
            // The stand-in writes the frame number into the first four luma bytes.
            assert_eq!(&f.planes().0[..4], &n.to_be_bytes());
            assert_eq!(f.seq, u64::from(n));
            // No padding byte (0) inside a row: the ramp is 16..236.
            assert!(f.planes().0[4..1000].iter().all(|&b| b >= 16));
        }
        let t0 = Instant::now();
        let e = src.capture(&mut f, &FixedClock(7)).expect_err("stalled");
        assert_eq!(e.kind(), ErrorKind::Disconnected);
        assert!(e.to_string().contains("stalled"), "{e}");
        assert!(
            t0.elapsed() >= STALL && t0.elapsed() < STALL * 2,
            "{:?}",
            t0.elapsed()
        );
        Box::new(src).close().expect("close");

        let mut src = open_env(&[("FAKE_RPICAM_EXIT_AFTER", "3")], 640, 480).expect("open");
        let mut f = I420Frame::new(640, 480);
        for _ in 0..3 {
            src.capture(&mut f, &FixedClock(7)).expect("frame");
        }
        let e = src.capture(&mut f, &FixedClock(7)).expect_err("exited");
        assert_eq!(e.kind(), ErrorKind::Disconnected);
        let m = e.to_string();
        assert!(m.contains("exited"), "{m}");
        assert!(
            m.contains("camera stopped delivering frames"),
            "the tool's words: {m}"
        );
    }

    #[test]
    fn flips_are_asked_of_the_isp_and_not_done_again_by_the_node() {
        // The stand-in flips as the ISP would; its frame counter sits at the scene's top left.
        let (w, h) = (64u32, 48u32);
        let turned = Orientation::new(false, false, 180).expect("180");
        let mut src =
            RpicamSource::open_with_env(tool(), 0, &req(w, h), turned, &[]).expect("open");
        assert!(src.info().description.contains("rotated 180 by the ISP"));
        let mut f = I420Frame::new(w, h);
        src.capture(&mut f, &FixedClock(7)).expect("frame");
        let y = f.planes().0;
        // Turned half a circle: the counter (0, big-endian) ends the last row, bytes reversed.
        let end = y.len();
        assert_eq!(
            &y[end - 4..],
            &[0, 0, 0, 0],
            "the counter is not where a half turn puts it"
        );
        assert!(
            y[..4].iter().all(|&b| b >= 16),
            "the picture was flipped twice (or not at all)"
        );
        let o = Orientation {
            hflip: true,
            vflip: false,
        };
        let mut src = RpicamSource::open_with_env(tool(), 0, &req(w, h), o, &[]).expect("open");
        src.capture(&mut f, &FixedClock(7)).expect("frame");
        let y = f.planes().0;
        assert_eq!(
            &y[w as usize - 4..w as usize],
            &[0, 0, 0, 0],
            "mirrored: end of row 0"
        );
    }

    #[test]
    fn a_tool_that_cannot_start_is_an_error_at_open_with_its_own_words() {
        let e = open_env(&[("FAKE_RPICAM_CAMERAS", "0")], 640, 480).expect_err("no camera");
        assert_eq!(e.kind(), ErrorKind::Disconnected);
        assert!(e.to_string().contains("no cameras available"), "{e}");
    }
}
