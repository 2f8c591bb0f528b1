//! A fake V4L2 camera and a fault injector, for tests of [`super::V4l2Source`] and of the
//! capture supervision in other crates (feature `fake`).
//!
//! [`FakeCamera`] is an in-memory capture device behind the same [`V4l2Device`] trait as the
//! real one: it offers YUYV (or, made with [`FakeCamera::mjpeg`], MJPEG only, delivering the
//! JPEG frames it was given in turn, with YUYV at one size and rate added by
//! [`FakeCamera::add_yuyv_mode`]), paces its frames at its frame rate, keeps the driver's buffer
//! bookkeeping (and answers as the kernel's videobuf2 does: EINVAL for a buffer queued twice or
//! a dequeue while stopped, EBUSY for freeing buffers that are still mapped or streaming, ENODEV
//! for every call once the camera is unplugged) and records the teardown calls and whether its
//! file is closed. [`Faulty`] wraps any [`V4l2Device`], the fake or a real [`super::SysDevice`],
//! and makes chosen operations fail with chosen errno values (EIO, ENXIO, ETIMEDOUT...) at
//! chosen calls, as [`Faults`] says; the test keeps a clone of the `Faults` to arm them while
//! the source runs.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::device::{
    Caps, Dequeued, FormatDesc, FrameIntervals, FrameSizes, PixFormat, V4l2Device,
};

/// errno: I/O error.
pub const EIO: i32 = 5;
/// errno: no such device or address.
pub const ENXIO: i32 = 6;
/// errno: device busy.
pub const EBUSY: i32 = 16;
/// errno: no such device.
pub const ENODEV: i32 = 19;
/// errno: invalid argument.
pub const EINVAL: i32 = 22;
/// errno: connection timed out.
pub const ETIMEDOUT: i32 = 110;

/// The device operations a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `VIDIOC_QBUF`.
    Queue,
    /// `VIDIOC_STREAMON`.
    StreamOn,
    /// The wait for a buffer and `VIDIOC_DQBUF`.
    Dequeue,
    /// `VIDIOC_STREAMOFF`.
    StreamOff,
    /// `munmap` of the buffers (the mappings are dropped all the same, as the trait says).
    Unmap,
    /// `VIDIOC_REQBUFS(0)`: freeing the driver's buffers.
    Release,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Queue,
        Op::StreamOn,
        Op::Dequeue,
        Op::StreamOff,
        Op::Unmap,
        Op::Release,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug)]
struct Armed {
    op: Op,
    /// Calls of `op` that still succeed before this fault fires.
    skip: u32,
    errno: i32,
    /// Fires on every call from then on (else once).
    sticky: bool,
}

#[derive(Debug, Default)]
struct FaultState {
    armed: Vec<Armed>,
    fired: Vec<(Op, i32)>,
    calls: [u32; Op::ALL.len()],
}

/// Faults to inject, shared between the test and the [`Faulty`] devices it made.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Faults {
    /// No faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next call of `op` fails with `errno`.
    pub fn fail_next(&self, op: Op, errno: i32) {
        self.fail_after(op, 0, errno);
    }

    /// `op` succeeds `ok` more times, then fails once with `errno`.
    pub fn fail_after(&self, op: Op, ok: u32, errno: i32) {
        self.lock().armed.push(Armed {
            op,
            skip: ok,
            errno,
            sticky: false,
        });
    }

    /// Every call of `op` fails with `errno` until [`Faults::clear`].
    pub fn fail_always(&self, op: Op, errno: i32) {
        self.lock().armed.push(Armed {
            op,
            skip: 0,
            errno,
            sticky: true,
        });
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.lock().armed.clear();
    }

    /// The faults that fired, in order.
    pub fn fired(&self) -> Vec<(Op, i32)> {
        self.lock().fired.clone()
    }

    /// How many times `op` was called (failed or not) through a [`Faulty`] device.
    pub fn calls(&self, op: Op) -> u32 {
        self.lock().calls[op.slot()]
    }

    /// Counts a call of `op`; `Err` if an armed fault fires on it.
    fn check(&self, op: Op) -> io::Result<()> {
        let mut state = self.lock();
        state.calls[op.slot()] += 1;
        let Some(at) = state.armed.iter().position(|a| a.op == op) else {
            return Ok(());
        };
        let armed = &mut state.armed[at];
        if armed.skip > 0 {
            armed.skip -= 1;
            return Ok(());
        }
        let errno = armed.errno;
        if !armed.sticky {
            state.armed.remove(at);
        }
        state.fired.push((op, errno));
        Err(io::Error::from_raw_os_error(errno))
    }
}

/// A [`V4l2Device`] whose operations fail when its [`Faults`] say. A failed operation does not
/// reach the wrapped device (as an ioctl that fails before doing anything), except
/// [`Op::Unmap`]: the trait drops the mappings even when `munmap` fails, so the wrapped
/// device unmaps and the error is reported after.
#[derive(Debug)]
pub struct Faulty<D> {
    inner: D,
    faults: Faults,
}

impl<D: V4l2Device> Faulty<D> {
    /// Wraps `inner`; `faults` decides which calls fail.
    pub fn new(inner: D, faults: Faults) -> Self {
        Self { inner, faults }
    }
}

impl<D: V4l2Device> V4l2Device for Faulty<D> {
    fn query_caps(&mut self) -> io::Result<Caps> {
        self.inner.query_caps()
    }
    fn enum_formats(&mut self) -> io::Result<Vec<FormatDesc>> {
        self.inner.enum_formats()
    }
    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat> {
        self.inner.set_format(want)
    }
    fn frame_sizes(&mut self, fourcc: [u8; 4]) -> io::Result<Option<FrameSizes>> {
        self.inner.frame_sizes(fourcc)
    }
    fn frame_intervals(
        &mut self,
        fourcc: [u8; 4],
        width: u32,
        height: u32,
    ) -> io::Result<Option<FrameIntervals>> {
        self.inner.frame_intervals(fourcc, width, height)
    }
    fn set_flip(&mut self, hflip: bool, vflip: bool) -> io::Result<()> {
        self.inner.set_flip(hflip, vflip)
    }
    fn set_interval(&mut self, num: u32, den: u32) -> io::Result<Option<(u32, u32)>> {
        self.inner.set_interval(num, den)
    }
    fn request_buffers(&mut self, count: u32) -> io::Result<u32> {
        self.inner.request_buffers(count)
    }
    fn map_buffer(&mut self, index: u32) -> io::Result<()> {
        self.inner.map_buffer(index)
    }
    fn buffer(&self, index: u32) -> Option<&[u8]> {
        self.inner.buffer(index)
    }
    fn queue(&mut self, index: u32) -> io::Result<()> {
        self.faults.check(Op::Queue)?;
        self.inner.queue(index)
    }
    fn stream_on(&mut self) -> io::Result<()> {
        self.faults.check(Op::StreamOn)?;
        self.inner.stream_on()
    }
    fn dequeue(&mut self, timeout: Duration) -> io::Result<Dequeued> {
        self.faults.check(Op::Dequeue)?;
        self.inner.dequeue(timeout)
    }
    fn stream_off(&mut self) -> io::Result<()> {
        self.faults.check(Op::StreamOff)?;
        self.inner.stream_off()
    }
    fn unmap_buffers(&mut self) -> io::Result<()> {
        let result = self.inner.unmap_buffers();
        self.faults.check(Op::Unmap)?;
        result
    }
    fn release_buffers(&mut self) -> io::Result<()> {
        self.faults.check(Op::Release)?;
        self.inner.release_buffers()
    }
}

#[derive(Debug)]
struct CameraState {
    width: u32,
    height: u32,
    fps: u32,
    luma: u8,
    present: bool,
    opens: u32,
    open_handles: u32,
    /// Every call other than the per-frame queue and dequeue, in order.
    log: Vec<&'static str>,
    /// MJPEG mode: the frames delivered in turn (empty: a YUYV camera of any size).
    jpegs: Vec<Vec<u8>>,
    /// Frames delivered so far in MJPEG mode (which JPEG comes next).
    delivered: usize,
    /// The MJPEG camera's only size.
    jpeg_size: (u32, u32),
    /// The one YUYV mode (width, height, fps) an MJPEG camera also offers, if any.
    yuyv_mode: Option<(u32, u32, u32)>,
    /// The format set last.
    fourcc: [u8; 4],
    /// Whether the camera has the HFLIP/VFLIP controls (most UVC webcams do not).
    flip_controls: bool,
    /// The flips set last through the controls.
    flips: Option<(bool, bool)>,
}

/// A fake V4L2 capture camera: YUYV, up to 1920x1080, at `fps` frames per second. Clones share
/// the camera; [`FakeCamera::open`] opens a handle to it, as `open(2)` on its node would.
#[derive(Debug, Clone)]
pub struct FakeCamera {
    state: Arc<Mutex<CameraState>>,
}

impl FakeCamera {
    /// A camera delivering pictures of luma `luma` at `fps` frames per second.
    pub fn new(fps: u32, luma: u8) -> Self {
        Self {
            state: Arc::new(Mutex::new(CameraState {
                width: 640,
                height: 480,
                fps: fps.max(1),
                luma,
                present: true,
                opens: 0,
                open_handles: 0,
                log: Vec::new(),
                jpegs: Vec::new(),
                delivered: 0,
                jpeg_size: (0, 0),
                yuyv_mode: None,
                fourcc: *b"YUYV",
                flip_controls: false,
                flips: None,
            })),
        }
    }

    /// A camera offering only MJPEG, at `width` x `height` (its only size, listed by
    /// `VIDIOC_ENUM_FRAMESIZES`) and `fps` (its only interval): each dequeued buffer holds the
    /// next of `jpegs` (cycling), as a UVC webcam's would.
    pub fn mjpeg(fps: u32, width: u32, height: u32, jpegs: Vec<Vec<u8>>) -> Self {
        let camera = Self::new(fps, 0);
        {
            let mut state = camera.lock();
            state.jpegs = jpegs;
            state.jpeg_size = (width, height);
            state.width = width;
            state.height = height;
            state.fourcc = *b"MJPG";
        }
        camera
    }

    /// Makes an MJPEG camera offer YUYV too, at `width` x `height` and `fps` only (listed
    /// first, as UVC cameras list their uncompressed format). Its frames are flat, luma 0.
    pub fn add_yuyv_mode(&self, width: u32, height: u32, fps: u32) {
        self.lock().yuyv_mode = Some((width, height, fps.max(1)));
    }

    /// MJPEG frames delivered so far.
    pub fn delivered(&self) -> usize {
        self.lock().delivered
    }

    fn lock(&self) -> MutexGuard<'_, CameraState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a handle (ENOENT while unplugged).
    pub fn open(&self) -> io::Result<FakeDevice> {
        let mut state = self.lock();
        if !state.present {
            return Err(io::Error::from_raw_os_error(2));
        }
        state.opens += 1;
        state.open_handles += 1;
        state.log.push("open");
        Ok(FakeDevice {
            camera: self.clone(),
            buffers: Vec::new(),
            mapped: Vec::new(),
            queued: VecDeque::new(),
            streaming: false,
            started: Instant::now(),
            seq: 0,
        })
    }

    /// Plugs the camera in or pulls it out: while out, opening fails with ENOENT and every
    /// call on an open handle with ENODEV.
    pub fn set_present(&self, present: bool) {
        self.lock().present = present;
    }

    /// Handles opened so far.
    pub fn opens(&self) -> u32 {
        self.lock().opens
    }

    /// Gives the camera the HFLIP and VFLIP controls (as vivid and some sensors have).
    pub fn with_flip_controls(self) -> Self {
        self.lock().flip_controls = true;
        self
    }

    /// The flips last set through the controls (`None`: never set).
    pub fn flips(&self) -> Option<(bool, bool)> {
        self.lock().flips
    }

    /// Handles open now (a closed source leaves none).
    pub fn open_handles(&self) -> u32 {
        self.lock().open_handles
    }

    /// The calls made so far other than queue and dequeue: `open`, `QUERYCAP`, `REQBUFS`,
    /// `mmap`, `STREAMON`, `STREAMOFF`, `munmap`, `REQBUFS(0)`, `close`.
    pub fn log(&self) -> Vec<&'static str> {
        self.lock().log.clone()
    }
}

/// An open handle to a [`FakeCamera`]; dropping it closes it (and frees its buffers).
#[derive(Debug)]
pub struct FakeDevice {
    camera: FakeCamera,
    buffers: Vec<Vec<u8>>,
    mapped: Vec<bool>,
    queued: VecDeque<u32>,
    streaming: bool,
    started: Instant,
    seq: u32,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl FakeDevice {
    /// Logs `what`; ENODEV if the camera was pulled out.
    fn call(&self, what: Option<&'static str>) -> io::Result<MutexGuard<'_, CameraState>> {
        let mut state = self.camera.lock();
        if let Some(what) = what {
            state.log.push(what);
        }
        if state.present {
            Ok(state)
        } else {
            Err(errno(ENODEV))
        }
    }
}

impl FakeDevice {
    /// Like [`FakeDevice::call`], releasing the lock at once.
    fn live(&self, what: Option<&'static str>) -> io::Result<()> {
        self.call(what).map(drop)
    }
}

impl V4l2Device for FakeDevice {
    fn query_caps(&mut self) -> io::Result<Caps> {
        self.live(Some("QUERYCAP"))?;
        Ok(Caps {
            driver: "fake".into(),
            card: "Fake Camera".into(),
            capture: true,
            capture_mplane: false,
            streaming: true,
        })
    }

    fn enum_formats(&mut self) -> io::Result<Vec<FormatDesc>> {
        let state = self.call(None)?;
        let yuyv = FormatDesc {
            fourcc: *b"YUYV",
            description: "YUYV 4:2:2".into(),
        };
        if state.jpegs.is_empty() {
            return Ok(vec![yuyv]);
        }
        let mjpeg = FormatDesc {
            fourcc: *b"MJPG",
            description: "Motion-JPEG".into(),
        };
        Ok(match state.yuyv_mode {
            Some(_) => vec![yuyv, mjpeg],
            None => vec![mjpeg],
        })
    }

    fn frame_sizes(&mut self, fourcc: [u8; 4]) -> io::Result<Option<FrameSizes>> {
        let state = self.call(None)?;
        if state.jpegs.is_empty() {
            // The YUYV camera does not enumerate: S_FMT decides, as with some drivers.
            return Ok(None);
        }
        match (&fourcc, state.yuyv_mode) {
            (b"MJPG", _) => Ok(Some(FrameSizes::Discrete(vec![state.jpeg_size]))),
            (b"YUYV", Some((w, h, _))) => Ok(Some(FrameSizes::Discrete(vec![(w, h)]))),
            _ => Err(errno(EINVAL)),
        }
    }

    fn frame_intervals(
        &mut self,
        fourcc: [u8; 4],
        width: u32,
        height: u32,
    ) -> io::Result<Option<FrameIntervals>> {
        let state = self.call(None)?;
        if state.jpegs.is_empty() {
            return Ok(None);
        }
        let fps = match (&fourcc, state.yuyv_mode) {
            (b"MJPG", _) if (width, height) == state.jpeg_size => state.fps,
            (b"YUYV", Some((w, h, fps))) if (width, height) == (w, h) => fps,
            _ => return Err(errno(EINVAL)),
        };
        Ok(Some(FrameIntervals::Discrete(vec![(1, fps)])))
    }

    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat> {
        let mut state = self.call(None)?;
        if self.streaming || !self.buffers.is_empty() {
            return Err(errno(EBUSY));
        }
        if !state.jpegs.is_empty() {
            // Like a UVC camera: its own sizes only, the format it offers.
            let yuyv = state.yuyv_mode.filter(|_| want.fourcc == *b"YUYV");
            let (fourcc, (width, height)) = match yuyv {
                Some((w, h, _)) => (*b"YUYV", (w, h)),
                None => (*b"MJPG", state.jpeg_size),
            };
            (state.fourcc, state.width, state.height) = (fourcc, width, height);
            let stride = if fourcc == *b"YUYV" { 2 * width } else { 0 };
            return Ok(PixFormat {
                width,
                height,
                fourcc,
                stride,
            });
        }
        state.width = want.width.clamp(2, 1920) & !1;
        state.height = want.height.clamp(2, 1080) & !1;
        Ok(PixFormat {
            width: state.width,
            height: state.height,
            fourcc: *b"YUYV",
            stride: 2 * state.width,
        })
    }

    fn set_flip(&mut self, hflip: bool, vflip: bool) -> io::Result<()> {
        let mut state = self.call(Some("S_CTRL(flip)"))?;
        if !state.flip_controls {
            return Err(errno(EINVAL));
        }
        state.flips = Some((hflip, vflip));
        Ok(())
    }

    fn set_interval(&mut self, _num: u32, _den: u32) -> io::Result<Option<(u32, u32)>> {
        let state = self.call(None)?;
        let fps = match state.yuyv_mode {
            Some((_, _, fps)) if state.fourcc == *b"YUYV" => fps,
            _ => state.fps,
        };
        Ok(Some((1, fps)))
    }

    fn request_buffers(&mut self, count: u32) -> io::Result<u32> {
        let state = self.call(Some(if count == 0 { "REQBUFS(0)" } else { "REQBUFS" }))?;
        if self.streaming || self.mapped.iter().any(|&m| m) {
            return Err(errno(EBUSY));
        }
        let size = (2 * state.width * state.height) as usize;
        drop(state);
        let count = count.min(32);
        self.buffers = (0..count).map(|_| vec![0; size]).collect();
        self.mapped = vec![false; count as usize];
        self.queued.clear();
        Ok(count)
    }

    fn map_buffer(&mut self, index: u32) -> io::Result<()> {
        self.live(Some("mmap"))?;
        match self.mapped.get_mut(index as usize) {
            Some(m) => {
                *m = true;
                Ok(())
            }
            None => Err(errno(EINVAL)),
        }
    }

    fn buffer(&self, index: u32) -> Option<&[u8]> {
        let i = index as usize;
        (*self.mapped.get(i)?).then(|| self.buffers[i].as_slice())
    }

    fn queue(&mut self, index: u32) -> io::Result<()> {
        self.live(None)?;
        if index as usize >= self.buffers.len() || self.queued.contains(&index) {
            return Err(errno(EINVAL));
        }
        self.queued.push_back(index);
        Ok(())
    }

    fn stream_on(&mut self) -> io::Result<()> {
        self.live(Some("STREAMON"))?;
        if self.buffers.is_empty() {
            return Err(errno(EINVAL));
        }
        if !self.streaming {
            self.streaming = true;
            self.started = Instant::now();
            self.seq = 0;
        }
        Ok(())
    }

    fn dequeue(&mut self, timeout: Duration) -> io::Result<Dequeued> {
        let (fps, luma, width, height, mjpeg) = {
            let state = self.call(None)?;
            let fps = match state.yuyv_mode {
                Some((_, _, fps)) if state.fourcc == *b"YUYV" => fps,
                _ => state.fps,
            };
            let luma = if state.jpegs.is_empty() {
                state.luma
            } else {
                0
            };
            let mjpeg = state.fourcc == *b"MJPG";
            (fps, luma, state.width, state.height, mjpeg)
        };
        if !self.streaming {
            return Err(errno(EINVAL));
        }
        let Some(&index) = self.queued.front() else {
            std::thread::sleep(timeout);
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no buffer queued"));
        };
        // The camera's frame clock: frame n is ready at start + n / fps. Frames that came
        // while no buffer was queued are lost (the sequence number jumps), as with a camera.
        let period_ns = 1_000_000_000 / u64::from(fps);
        let elapsed_ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let current = u32::try_from(elapsed_ns / period_ns).unwrap_or(u32::MAX);
        self.seq = self.seq.max(current);
        let due = self.started + Duration::from_nanos(u64::from(self.seq) * period_ns);
        let wait = due.saturating_duration_since(Instant::now());
        if wait > timeout {
            std::thread::sleep(timeout);
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no frame in time"));
        }
        std::thread::sleep(wait);
        self.queued.pop_front();
        let buf = &mut self.buffers[index as usize];
        if mjpeg {
            let mut state = self.camera.lock();
            let next = state.delivered % state.jpegs.len();
            state.delivered += 1;
            let jpeg = &state.jpegs[next];
            let used = jpeg.len().min(buf.len());
            buf[..used].copy_from_slice(&jpeg[..used]);
            let sequence = self.seq;
            self.seq = self.seq.wrapping_add(1);
            return Ok(Dequeued {
                index,
                bytes_used: used as u32,
                sequence,
            });
        }
        let used = (2 * width * height) as usize;
        let filled = used.min(buf.len());
        for px in buf[..filled].chunks_exact_mut(2) {
            px[0] = luma;
            px[1] = 128;
        }
        let sequence = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Ok(Dequeued {
            index,
            bytes_used: used as u32,
            sequence,
        })
    }

    fn stream_off(&mut self) -> io::Result<()> {
        self.live(Some("STREAMOFF"))?;
        self.streaming = false;
        self.queued.clear();
        Ok(())
    }

    fn unmap_buffers(&mut self) -> io::Result<()> {
        // munmap works on a pulled camera too: the memory is the process's.
        self.camera.lock().log.push("munmap");
        self.mapped.iter_mut().for_each(|m| *m = false);
        Ok(())
    }

    fn release_buffers(&mut self) -> io::Result<()> {
        self.request_buffers(0).map(drop)
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        let mut state = self.camera.lock();
        state.open_handles = state.open_handles.saturating_sub(1);
        state.log.push("close");
    }
}
