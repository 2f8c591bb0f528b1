//! The V4L2 device operations [`super::V4l2Source`] performs, and the real device behind them.
//!
//! This module owns every system call on a camera: the [`V4l2Device`] trait lists the
//! operations (capabilities, formats with their sizes and frame intervals, frame interval,
//! buffer allocation and mapping, queue, stream on, dequeue, stream off, unmap, release), and
//! [`SysDevice`] implements them with the `v4l` crate's low-level ioctl wrapper and the kernel's
//! structs from `v4l2-sys-mit` (generated per target, so no struct layout is written by hand
//! here). We do not use `v4l`'s `Stream`,
//! `Arena` or `Device`: their `Drop`s panic on any stream-off, buffer-release or close error
//! other than ENODEV, which with `panic = "abort"` would kill the node. Here every failure is an
//! `io::Error` for the caller, and dropping a [`SysDevice`] unmaps what is still mapped and
//! closes the file descriptor whatever failed before, so an unplugged camera's minor number is
//! freed. The trait is also the seam for fault injection in tests (`super::fake`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use v4l::v4l_sys::{
    V4L2_CAP_DEVICE_CAPS, V4L2_CAP_STREAMING, V4L2_CAP_TIMEPERFRAME, V4L2_CAP_VIDEO_CAPTURE,
    V4L2_CAP_VIDEO_CAPTURE_MPLANE, V4L2_CID_HFLIP, V4L2_CID_VFLIP,
    v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE, v4l2_buffer, v4l2_capability, v4l2_control,
    v4l2_fmtdesc, v4l2_format, v4l2_frmivalenum, v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE,
    v4l2_frmsizeenum, v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE, v4l2_memory_V4L2_MEMORY_MMAP,
    v4l2_requestbuffers, v4l2_streamparm,
};
use v4l::v4l2::{self, vidioc};

/// What a driver says about the device (`VIDIOC_QUERYCAP`, the node's own capabilities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    /// Driver name (`uvcvideo`, `vivid`, ...).
    pub driver: String,
    /// Card name (the camera's product name).
    pub card: String,
    /// Single-planar video capture.
    pub capture: bool,
    /// Multi-planar video capture (not supported by the node).
    pub capture_mplane: bool,
    /// Streaming I/O (mmap buffers).
    pub streaming: bool,
}

/// One format the device offers (`VIDIOC_ENUM_FMT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDesc {
    /// The four-character code, as bytes.
    pub fourcc: [u8; 4],
    /// The driver's description.
    pub description: String,
}

/// A picture format (`struct v4l2_pix_format`, the fields the node uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The four-character code, as bytes.
    pub fourcc: [u8; 4],
    /// Bytes per line (0: the driver did not say).
    pub stride: u32,
}

/// A buffer the driver handed back (`VIDIOC_DQBUF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dequeued {
    /// Which buffer.
    pub index: u32,
    /// Bytes of picture in it.
    pub bytes_used: u32,
    /// The driver's frame sequence number.
    pub sequence: u32,
}

/// The picture sizes a device offers for one format (`VIDIOC_ENUM_FRAMESIZES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameSizes {
    /// These sizes only, as (width, height).
    Discrete(Vec<(u32, u32)>),
    /// Any size from `min` to `max` (width, height) in steps of `step` (1 for a continuous
    /// range).
    Stepwise {
        /// Smallest (width, height).
        min: (u32, u32),
        /// Largest (width, height).
        max: (u32, u32),
        /// Step of (width, height).
        step: (u32, u32),
    },
}

impl FrameSizes {
    /// Whether `width` x `height` is one of the sizes.
    pub fn contains(&self, width: u32, height: u32) -> bool {
        let on_grid = |v: u32, min: u32, max: u32, step: u32| {
            (min..=max).contains(&v) && (v - min).is_multiple_of(step.max(1))
        };
        match self {
            FrameSizes::Discrete(sizes) => sizes.contains(&(width, height)),
            FrameSizes::Stepwise { min, max, step } => {
                on_grid(width, min.0, max.0, step.0) && on_grid(height, min.1, max.1, step.1)
            }
        }
    }
}

/// The frame intervals a device offers for one format and size (`VIDIOC_ENUM_FRAMEINTERVALS`),
/// each in seconds as (numerator, denominator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameIntervals {
    /// These intervals only.
    Discrete(Vec<(u32, u32)>),
    /// Any interval from `min` (the fastest rate) to `max`.
    Stepwise {
        /// Shortest interval.
        min: (u32, u32),
        /// Longest interval.
        max: (u32, u32),
    },
}

impl FrameIntervals {
    /// Whether one of the intervals is as short as `fps_den / fps_num` seconds or shorter (the
    /// rate at least as high; 1 % slack, as cameras round 1/30 s to 333333/10000000 and the
    /// like). A faster camera is fine: the capture loop keeps only the frames it wants.
    pub fn reach(&self, fps_num: u32, fps_den: u32) -> bool {
        let fast_enough = |(num, den): (u32, u32)| {
            den > 0
                && u64::from(num) * u64::from(fps_num) * 100
                    <= u64::from(den) * u64::from(fps_den) * 101
        };
        match self {
            FrameIntervals::Discrete(list) => list.iter().any(|&i| fast_enough(i)),
            FrameIntervals::Stepwise { min, .. } => fast_enough(*min),
        }
    }
}

/// The operations [`super::V4l2Source`] performs on one open V4L2 capture device.
///
/// Every method reports failure as an `io::Error` (with the errno where there is one) and never
/// panics. Closing is dropping: an implementation unmaps what is still mapped and closes its
/// device when dropped, whatever failed before.
pub trait V4l2Device: Send {
    /// `VIDIOC_QUERYCAP`.
    fn query_caps(&mut self) -> io::Result<Caps>;
    /// `VIDIOC_ENUM_FMT` for single-planar capture: every format offered.
    fn enum_formats(&mut self) -> io::Result<Vec<FormatDesc>>;
    /// `VIDIOC_S_FMT`: asks for `want`; returns what the driver chose.
    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat>;
    /// `VIDIOC_ENUM_FRAMESIZES` for format `fourcc`: the sizes offered, `None` when the
    /// driver does not say (negotiation then leaves the size to `VIDIOC_S_FMT`).
    fn frame_sizes(&mut self, fourcc: [u8; 4]) -> io::Result<Option<FrameSizes>> {
        let _ = fourcc;
        Ok(None)
    }
    /// `VIDIOC_ENUM_FRAMEINTERVALS` for format `fourcc` at `width` x `height`: the frame
    /// intervals offered, `None` when the driver does not say.
    fn frame_intervals(
        &mut self,
        fourcc: [u8; 4],
        width: u32,
        height: u32,
    ) -> io::Result<Option<FrameIntervals>> {
        let _ = (fourcc, width, height);
        Ok(None)
    }
    /// `VIDIOC_S_PARM` (falling back to `VIDIOC_G_PARM`): asks for a frame interval of
    /// `num / den` seconds; returns the interval in force, `None` if the driver reports none.
    fn set_interval(&mut self, num: u32, den: u32) -> io::Result<Option<(u32, u32)>>;
    /// `VIDIOC_S_CTRL` of `V4L2_CID_HFLIP` and `V4L2_CID_VFLIP`: the camera flips the
    /// picture itself. An error (`EINVAL`: most UVC webcams have neither control) means the
    /// node flips each frame instead.
    fn set_flip(&mut self, hflip: bool, vflip: bool) -> io::Result<()> {
        let _ = (hflip, vflip);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    /// `VIDIOC_REQBUFS(count)` for mmap buffers: returns how many the driver allocated.
    fn request_buffers(&mut self, count: u32) -> io::Result<u32>;
    /// `VIDIOC_QUERYBUF` and `mmap` of buffer `index`; the device keeps the mapping.
    fn map_buffer(&mut self, index: u32) -> io::Result<()>;
    /// The mapped bytes of buffer `index` (`None` if it is not mapped). Read it only while the
    /// buffer is dequeued: the driver writes into buffers it holds.
    fn buffer(&self, index: u32) -> Option<&[u8]>;
    /// `VIDIOC_QBUF` of buffer `index`.
    fn queue(&mut self, index: u32) -> io::Result<()>;
    /// `VIDIOC_STREAMON`.
    fn stream_on(&mut self) -> io::Result<()>;
    /// Waits at most `timeout` for a filled buffer, then `VIDIOC_DQBUF`. A timeout is an error
    /// of kind `TimedOut` without an errno.
    fn dequeue(&mut self, timeout: Duration) -> io::Result<Dequeued>;
    /// `VIDIOC_STREAMOFF`.
    fn stream_off(&mut self) -> io::Result<()>;
    /// `munmap` of every mapped buffer. Each mapping is forgotten even when its `munmap`
    /// fails; the first error is returned.
    fn unmap_buffers(&mut self) -> io::Result<()>;
    /// `VIDIOC_REQBUFS(0)`: frees the driver's buffers (they must be unmapped first).
    fn release_buffers(&mut self) -> io::Result<()>;
}

impl<D: V4l2Device + ?Sized> V4l2Device for Box<D> {
    fn query_caps(&mut self) -> io::Result<Caps> {
        (**self).query_caps()
    }
    fn enum_formats(&mut self) -> io::Result<Vec<FormatDesc>> {
        (**self).enum_formats()
    }
    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat> {
        (**self).set_format(want)
    }
    fn frame_sizes(&mut self, fourcc: [u8; 4]) -> io::Result<Option<FrameSizes>> {
        (**self).frame_sizes(fourcc)
    }
    fn frame_intervals(
        &mut self,
        fourcc: [u8; 4],
        width: u32,
        height: u32,
    ) -> io::Result<Option<FrameIntervals>> {
        (**self).frame_intervals(fourcc, width, height)
    }
    fn set_interval(&mut self, num: u32, den: u32) -> io::Result<Option<(u32, u32)>> {
        (**self).set_interval(num, den)
    }
    fn set_flip(&mut self, hflip: bool, vflip: bool) -> io::Result<()> {
        (**self).set_flip(hflip, vflip)
    }
    fn request_buffers(&mut self, count: u32) -> io::Result<u32> {
        (**self).request_buffers(count)
    }
    fn map_buffer(&mut self, index: u32) -> io::Result<()> {
        (**self).map_buffer(index)
    }
    fn buffer(&self, index: u32) -> Option<&[u8]> {
        (**self).buffer(index)
    }
    fn queue(&mut self, index: u32) -> io::Result<()> {
        (**self).queue(index)
    }
    fn stream_on(&mut self) -> io::Result<()> {
        (**self).stream_on()
    }
    fn dequeue(&mut self, timeout: Duration) -> io::Result<Dequeued> {
        (**self).dequeue(timeout)
    }
    fn stream_off(&mut self) -> io::Result<()> {
        (**self).stream_off()
    }
    fn unmap_buffers(&mut self) -> io::Result<()> {
        (**self).unmap_buffers()
    }
    fn release_buffers(&mut self) -> io::Result<()> {
        (**self).release_buffers()
    }
}

const CAPTURE: u32 = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
const MMAP: u32 = v4l2_memory_V4L2_MEMORY_MMAP;
const FRMSIZE_DISCRETE: u32 = v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE;
const FRMIVAL_DISCRETE: u32 = v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE;
/// Most entries read from one enumeration (formats, sizes, intervals): a bound against a
/// driver that never says "no more".
const MAX_ENUM: u32 = 64;

/// One mmap'ed capture buffer.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` is the only handle to its shared-memory region (nothing else in the
// process holds the pointer), so moving it to another thread with its `SysDevice` is sound.
unsafe impl Send for Mapping {}

/// A real V4L2 device node, opened read-write and non-blocking (`O_CLOEXEC` too).
#[derive(Debug)]
pub struct SysDevice {
    // Dropping the `File` closes the descriptor and ignores a close error, which is what we
    // want: Linux frees the descriptor even when `close` reports one.
    file: File,
    maps: Vec<Option<Mapping>>,
}

/// Text from a fixed-size, NUL-padded C string field (lossy: a card name need not be UTF-8).
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

impl SysDevice {
    /// Opens the device node at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(Self {
            file,
            maps: Vec::new(),
        })
    }

    /// Runs ioctl `request` on the device with `arg`, retrying while interrupted by a signal.
    ///
    /// # Safety
    /// `T` must be the argument type the kernel expects for `request` (the struct from the same
    /// bindings the request number was computed from).
    unsafe fn ioctl<T>(&self, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
        loop {
            // SAFETY: the caller pairs `request` with its argument type; `arg` is a valid,
            // exclusive pointer for the duration of the call; the descriptor is open while
            // `self` lives.
            let result = unsafe {
                v4l2::ioctl(
                    self.file.as_raw_fd(),
                    request,
                    (arg as *mut T).cast::<std::os::raw::c_void>(),
                )
            };
            match result {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Waits until the device has a filled buffer or `timeout` passes (`Ok(false)`).
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            let mut fds = [libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: `fds` is a valid array of one `pollfd` for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            match n {
                0 => return Ok(false),
                n if n > 0 => return Ok(true),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn requestbuffers(count: u32) -> v4l2_requestbuffers {
        // SAFETY: a plain C struct of integers; all-zero bytes is a valid value.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.count = count;
        req.type_ = CAPTURE;
        req.memory = MMAP;
        req
    }

    fn buffer_desc(index: u32) -> v4l2_buffer {
        // SAFETY: a plain C struct of integers, a timeval and unions of integers and a pointer;
        // all-zero bytes is a valid value (the pointer member is null).
        let mut buf: v4l2_buffer = unsafe { std::mem::zeroed() };
        buf.index = index;
        buf.type_ = CAPTURE;
        buf.memory = MMAP;
        buf
    }

    fn unmap_all(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for map in self.maps.iter_mut().filter_map(Option::take) {
            // SAFETY: `map` came from a successful `mmap` of `map.len` bytes and is unmapped
            // once (it was just taken out of `self.maps`); no slice of it outlives `&self`.
            let result = unsafe { v4l2::munmap(map.ptr.as_ptr().cast(), map.len) };
            if let Err(e) = result
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

impl V4l2Device for SysDevice {
    fn query_caps(&mut self) -> io::Result<Caps> {
        // SAFETY: a plain C struct of byte arrays and integers; all-zero is valid.
        let mut caps: v4l2_capability = unsafe { std::mem::zeroed() };
        // SAFETY: VIDIOC_QUERYCAP takes a `v4l2_capability`.
        unsafe { self.ioctl(vidioc::VIDIOC_QUERYCAP, &mut caps)? };
        let flags = if caps.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
            caps.device_caps
        } else {
            caps.capabilities
        };
        Ok(Caps {
            driver: c_text(&caps.driver),
            card: c_text(&caps.card),
            capture: flags & V4L2_CAP_VIDEO_CAPTURE != 0,
            capture_mplane: flags & V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0,
            streaming: flags & V4L2_CAP_STREAMING != 0,
        })
    }

    fn enum_formats(&mut self) -> io::Result<Vec<FormatDesc>> {
        let mut out = Vec::new();
        for index in 0..MAX_ENUM {
            // SAFETY: a plain C struct of integers and a byte array; all-zero is valid.
            let mut desc: v4l2_fmtdesc = unsafe { std::mem::zeroed() };
            desc.index = index;
            desc.type_ = CAPTURE;
            // SAFETY: VIDIOC_ENUM_FMT takes a `v4l2_fmtdesc`.
            match unsafe { self.ioctl(vidioc::VIDIOC_ENUM_FMT, &mut desc) } {
                Ok(()) => out.push(FormatDesc {
                    fourcc: desc.pixelformat.to_le_bytes(),
                    description: c_text(&desc.description),
                }),
                // EINVAL past the last format ends the list.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) if index == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat> {
        // SAFETY: a plain C struct of integers and a union of integer structs and a byte
        // array (the union's pointer-carrying member is null when zeroed); all-zero is valid.
        let mut fmt: v4l2_format = unsafe { std::mem::zeroed() };
        fmt.type_ = CAPTURE;
        // SAFETY: reading the `pix` member of the zeroed union: every bit pattern of its
        // integer fields is valid.
        let mut pix = unsafe { fmt.fmt.pix };
        pix.width = want.width;
        pix.height = want.height;
        pix.pixelformat = u32::from_le_bytes(want.fourcc);
        pix.bytesperline = want.stride;
        fmt.fmt.pix = pix;
        // SAFETY: VIDIOC_S_FMT takes a `v4l2_format`.
        unsafe { self.ioctl(vidioc::VIDIOC_S_FMT, &mut fmt)? };
        // SAFETY: for a single-planar capture format the driver answers in `pix` (integers
        // only: any bit pattern is valid).
        let pix = unsafe { fmt.fmt.pix };
        Ok(PixFormat {
            width: pix.width,
            height: pix.height,
            fourcc: pix.pixelformat.to_le_bytes(),
            stride: pix.bytesperline,
        })
    }

    fn frame_sizes(&mut self, fourcc: [u8; 4]) -> io::Result<Option<FrameSizes>> {
        let mut sizes = Vec::new();
        for index in 0..MAX_ENUM {
            // SAFETY: a plain C struct of integers and a union of integer structs; all-zero is
            // valid.
            let mut size: v4l2_frmsizeenum = unsafe { std::mem::zeroed() };
            size.index = index;
            size.pixel_format = u32::from_le_bytes(fourcc);
            // SAFETY: VIDIOC_ENUM_FRAMESIZES takes a `v4l2_frmsizeenum`.
            match unsafe { self.ioctl(vidioc::VIDIOC_ENUM_FRAMESIZES, &mut size) } {
                Ok(()) => {}
                // EINVAL past the last size ends the list; at the first, the driver does not
                // enumerate sizes (or not for this format).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) if index == 0 => return Err(e),
                Err(_) => break,
            }
            if size.type_ == FRMSIZE_DISCRETE {
                // SAFETY: a discrete entry answers in `discrete` (integers only).
                let d = unsafe { size.__bindgen_anon_1.discrete };
                sizes.push((d.width, d.height));
            } else {
                // SAFETY: continuous and stepwise entries answer in `stepwise` (integers).
                let s = unsafe { size.__bindgen_anon_1.stepwise };
                return Ok(Some(FrameSizes::Stepwise {
                    min: (s.min_width, s.min_height),
                    max: (s.max_width, s.max_height),
                    step: (s.step_width, s.step_height),
                }));
            }
        }
        Ok((!sizes.is_empty()).then_some(FrameSizes::Discrete(sizes)))
    }

    fn frame_intervals(
        &mut self,
        fourcc: [u8; 4],
        width: u32,
        height: u32,
    ) -> io::Result<Option<FrameIntervals>> {
        let mut intervals = Vec::new();
        for index in 0..MAX_ENUM {
            // SAFETY: a plain C struct of integers and a union of integer structs; all-zero is
            // valid.
            let mut ival: v4l2_frmivalenum = unsafe { std::mem::zeroed() };
            ival.index = index;
            ival.pixel_format = u32::from_le_bytes(fourcc);
            ival.width = width;
            ival.height = height;
            // SAFETY: VIDIOC_ENUM_FRAMEINTERVALS takes a `v4l2_frmivalenum`.
            match unsafe { self.ioctl(vidioc::VIDIOC_ENUM_FRAMEINTERVALS, &mut ival) } {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) if index == 0 => return Err(e),
                Err(_) => break,
            }
            if ival.type_ == FRMIVAL_DISCRETE {
                // SAFETY: a discrete entry answers in `discrete` (integers only).
                let d = unsafe { ival.__bindgen_anon_1.discrete };
                intervals.push((d.numerator, d.denominator));
            } else {
                // SAFETY: continuous and stepwise entries answer in `stepwise` (integers).
                let s = unsafe { ival.__bindgen_anon_1.stepwise };
                return Ok(Some(FrameIntervals::Stepwise {
                    min: (s.min.numerator, s.min.denominator),
                    max: (s.max.numerator, s.max.denominator),
                }));
            }
        }
        Ok((!intervals.is_empty()).then_some(FrameIntervals::Discrete(intervals)))
    }

    fn set_flip(&mut self, hflip: bool, vflip: bool) -> io::Result<()> {
        for (id, on) in [(V4L2_CID_HFLIP, hflip), (V4L2_CID_VFLIP, vflip)] {
            let mut control = v4l2_control {
                id,
                value: i32::from(on),
            };
            // SAFETY: VIDIOC_S_CTRL takes a `v4l2_control`.
            unsafe { self.ioctl(vidioc::VIDIOC_S_CTRL, &mut control)? };
        }
        Ok(())
    }

    fn set_interval(&mut self, num: u32, den: u32) -> io::Result<Option<(u32, u32)>> {
        // SAFETY: a plain C struct of integers and a union of integer structs; all-zero is
        // valid.
        let mut parm: v4l2_streamparm = unsafe { std::mem::zeroed() };
        parm.type_ = CAPTURE;
        // SAFETY: the `capture` member of the zeroed union (integers only).
        let mut capture = unsafe { parm.parm.capture };
        capture.timeperframe.numerator = num;
        capture.timeperframe.denominator = den;
        parm.parm.capture = capture;
        // SAFETY: VIDIOC_S_PARM takes a `v4l2_streamparm`.
        if unsafe { self.ioctl(vidioc::VIDIOC_S_PARM, &mut parm) }.is_err() {
            // SAFETY: as above.
            parm = unsafe { std::mem::zeroed() };
            parm.type_ = CAPTURE;
            // SAFETY: VIDIOC_G_PARM takes a `v4l2_streamparm`.
            unsafe { self.ioctl(vidioc::VIDIOC_G_PARM, &mut parm)? };
        }
        // SAFETY: for a capture stream the driver answers in `capture` (integers only).
        let capture = unsafe { parm.parm.capture };
        let t = capture.timeperframe;
        // A driver without V4L2_CAP_TIMEPERFRAME may still report its fixed interval.
        if capture.capability & V4L2_CAP_TIMEPERFRAME == 0 && t.numerator == 0 {
            return Ok(None);
        }
        Ok((t.numerator > 0 && t.denominator > 0).then_some((t.numerator, t.denominator)))
    }

    fn request_buffers(&mut self, count: u32) -> io::Result<u32> {
        let mut req = Self::requestbuffers(count);
        // SAFETY: VIDIOC_REQBUFS takes a `v4l2_requestbuffers`.
        unsafe { self.ioctl(vidioc::VIDIOC_REQBUFS, &mut req)? };
        self.maps.clear();
        self.maps.resize_with(req.count as usize, || None);
        Ok(req.count)
    }

    fn map_buffer(&mut self, index: u32) -> io::Result<()> {
        let slot = index as usize;
        if slot >= self.maps.len() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut buf = Self::buffer_desc(index);
        // SAFETY: VIDIOC_QUERYBUF takes a `v4l2_buffer`.
        unsafe { self.ioctl(vidioc::VIDIOC_QUERYBUF, &mut buf)? };
        let len = buf.length as usize;
        // SAFETY: for mmap buffers the driver answers the mapping offset in `m.offset`.
        let offset = unsafe { buf.m.offset };
        // SAFETY: maps `len` bytes of the device at the offset the driver gave for this
        // buffer; a new mapping, aliasing no Rust object.
        let ptr = unsafe {
            v4l2::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                offset as libc::off_t,
            )?
        };
        let Some(ptr) = NonNull::new(ptr.cast::<u8>()) else {
            return Err(io::Error::other("mmap returned a null mapping"));
        };
        if let Some(old) = self.maps[slot].replace(Mapping { ptr, len }) {
            // SAFETY: `old` was a live mapping of `old.len` bytes that nothing refers to now.
            let _ = unsafe { v4l2::munmap(old.ptr.as_ptr().cast(), old.len) };
        }
        Ok(())
    }

    fn buffer(&self, index: u32) -> Option<&[u8]> {
        let map = self.maps.get(index as usize)?.as_ref()?;
        // SAFETY: the mapping is live (it is unmapped only through `&mut self`, which this
        // borrow excludes) and `map.len` bytes long; the caller reads only a dequeued buffer,
        // which the driver does not write until it is queued again.
        Some(unsafe { std::slice::from_raw_parts(map.ptr.as_ptr(), map.len) })
    }

    fn queue(&mut self, index: u32) -> io::Result<()> {
        let mut buf = Self::buffer_desc(index);
        // SAFETY: VIDIOC_QBUF takes a `v4l2_buffer`.
        unsafe { self.ioctl(vidioc::VIDIOC_QBUF, &mut buf) }
    }

    fn stream_on(&mut self) -> io::Result<()> {
        let mut kind = CAPTURE as std::os::raw::c_int;
        // SAFETY: VIDIOC_STREAMON takes an `int` buffer type.
        unsafe { self.ioctl(vidioc::VIDIOC_STREAMON, &mut kind) }
    }

    fn dequeue(&mut self, timeout: Duration) -> io::Result<Dequeued> {
        if !self.wait_readable(timeout)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no buffer within the dequeue timeout",
            ));
        }
        let mut buf = Self::buffer_desc(0);
        // SAFETY: VIDIOC_DQBUF takes a `v4l2_buffer`.
        unsafe { self.ioctl(vidioc::VIDIOC_DQBUF, &mut buf)? };
        Ok(Dequeued {
            index: buf.index,
            bytes_used: buf.bytesused,
            sequence: buf.sequence,
        })
    }

    fn stream_off(&mut self) -> io::Result<()> {
        let mut kind = CAPTURE as std::os::raw::c_int;
        // SAFETY: VIDIOC_STREAMOFF takes an `int` buffer type.
        unsafe { self.ioctl(vidioc::VIDIOC_STREAMOFF, &mut kind) }
    }

    fn unmap_buffers(&mut self) -> io::Result<()> {
        self.unmap_all()
    }

    fn release_buffers(&mut self) -> io::Result<()> {
        let mut req = Self::requestbuffers(0);
        // SAFETY: VIDIOC_REQBUFS takes a `v4l2_requestbuffers`.
        unsafe { self.ioctl(vidioc::VIDIOC_REQBUFS, &mut req)? };
        self.maps.clear();
        Ok(())
    }
}

impl Drop for SysDevice {
    fn drop(&mut self) {
        // Normally `V4l2Source` has unmapped already; this is the backstop. Errors cannot be
        // acted on here (the descriptor is closed right after, which frees the driver's
        // buffers), so they are only logged.
        if let Err(e) = self.unmap_all() {
            tracing::debug!(error = %e, "munmap of a camera buffer failed while closing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_text_stops_at_nul_and_tolerates_bad_utf8() {
        assert_eq!(c_text(b"uvcvideo\0\0\0\0"), "uvcvideo");
        assert_eq!(c_text(b"Cam \xff\0junk"), "Cam \u{fffd}");
        assert_eq!(c_text(b"full"), "full");
    }

    #[test]
    fn dev_null_answers_enotty_not_a_panic() {
        let mut dev = SysDevice::open(Path::new("/dev/null")).expect("open /dev/null");
        let err = dev.query_caps().expect_err("not a V4L2 device");
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTTY | libc::ENOSYS)),
            "{err}"
        );
        // Teardown calls on a device that never streamed fail cleanly too.
        assert!(dev.stream_off().is_err());
        assert!(dev.release_buffers().is_err());
        dev.unmap_buffers().expect("nothing mapped");
    }
}
