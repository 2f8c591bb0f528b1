//! `Y4mSource`: plays a YUV4MPEG2 (`.y4m`) file in a loop (`--source y4m:PATH`).
//!
//! Y4M is the simplest way to feed the node a known, repeatable picture sequence (test clips,
//! recorded camera footage: `ffmpeg -i clip.mp4 -pix_fmt yuv420p clip.y4m`). This module owns
//! parsing the stream header (`YUV4MPEG2 W.. H.. F.. I.. A.. C.. X..`), reading each
//! `FRAME[ params]\n` + picture straight into the caller's frame (no allocation per frame), and
//! looping back to the first frame at the end of the file, including when the last frame is
//! truncated. Only 8-bit 4:2:0 files are accepted; the pictures are delivered as they are in the
//! file (no latency stamp is drawn over them).

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/y4m.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

/// Largest accepted width or height (VP8's limit).
pub const MAX_DIMENSION: u32 = 16383;
/// Longest accepted stream header line, in bytes.
const MAX_HEADER_LINE: usize = 4096;
/// Longest accepted `FRAME` line, in bytes.
const MAX_FRAME_LINE: usize = 1024;
/// Frame rate assumed when the header has no `F` token (what ffmpeg assumes too).
const DEFAULT_FPS: (u32, u32) = (25, 1);
/// The `C` values that mean 8-bit 4:2:0 (they differ only in chroma siting).
const COLOURSPACES_420: [&str; 4] = ["420", "420jpeg", "420paldv", "420mpeg2"];

/// What the stream header says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    width: u32,
    height: u32,
    fps_num: u32,
    fps_den: u32,
    /// Interlacing letter (`p`, `t`, `b`, `m` or `?`).
    interlace: char,
    /// The `C` value, `420jpeg` when absent (the format's default).
    colourspace: String,
}

fn invalid(message: String) -> CameraError {
    CameraError::new(ErrorKind::InvalidInput, message)
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_ratio(value: &[u8]) -> Option<(u32, u32)> {
    let colon = value.iter().position(|&b| b == b':')?;
    let (num, den) = value.split_at(colon);
    Some((parse_u32(num)?, parse_u32(den.get(1..)?)?))
}

/// Parses the stream header line (without its `\n`). Messages say what is wrong, the caller
/// prefixes the path.
fn parse_header(line: &[u8]) -> Result<Header, CameraError> {
    const MAGIC: &[u8] = b"YUV4MPEG2";
    let rest = match line.strip_prefix(MAGIC) {
        Some(rest) if rest.first().is_none_or(|&b| b == b' ') => rest,
        _ => {
            return Err(invalid(
                "not a Y4M file: it does not start with `YUV4MPEG2 ` (convert it with \
                 `ffmpeg -i INPUT -pix_fmt yuv420p OUTPUT.y4m`)"
                    .into(),
            ));
        }
    };
    let (mut width, mut height) = (None, None);
    let mut fps = None;
    let mut interlace = 'p';
    let mut colourspace = None;
    for token in rest.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let text = String::from_utf8_lossy(token);
        let Some((&tag, value)) = token.split_first() else {
            continue;
        };
        match tag {
            b'W' => match parse_u32(value) {
                Some(w) if w > 0 => width = Some(w),
                _ => return Err(invalid(format!("bad width token `{text}` in the header"))),
            },
            b'H' => match parse_u32(value) {
                Some(h) if h > 0 => height = Some(h),
                _ => return Err(invalid(format!("bad height token `{text}` in the header"))),
            },
            b'F' => match parse_ratio(value) {
                Some((n, d)) if n > 0 && d > 0 => fps = Some((n, d)),
                _ => {
                    return Err(invalid(format!(
                        "bad frame rate token `{text}` in the header: expected F<num>:<den> \
                         with both non-zero, e.g. F30:1"
                    )));
                }
            },
            b'I' => match value {
                [c @ (b'p' | b't' | b'b' | b'm' | b'?')] => interlace = char::from(*c),
                _ => {
                    return Err(invalid(format!(
                        "bad interlacing token `{text}` in the header: expected Ip, It, Ib, Im \
                         or I?"
                    )));
                }
            },
            b'C' => {
                let cs = String::from_utf8_lossy(value);
                if !COLOURSPACES_420.contains(&cs.as_ref()) {
                    return Err(CameraError::new(
                        ErrorKind::UnsupportedFormat,
                        format!(
                            "Y4M colourspace C{cs} is not supported: only 8-bit 4:2:0 (C420, \
                             C420jpeg, C420paldv, C420mpeg2) is; convert with \
                             `ffmpeg -i INPUT -pix_fmt yuv420p OUTPUT.y4m`"
                        ),
                    ));
                }
                colourspace = Some(cs.into_owned());
            }
            // Pixel aspect ratio and extensions do not change how pictures are read.
            b'A' | b'X' => {}
            _ => tracing::debug!(token = %text, "ignoring unknown Y4M header token"),
        }
    }
    let (Some(width), Some(height)) = (width, height) else {
        return Err(invalid(
            "the header has no width (W) or no height (H) token".into(),
        ));
    };
    if width % 2 != 0 || height % 2 != 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(invalid(format!(
            "picture size {width}x{height} is not supported: width and height must be even and \
             at most {MAX_DIMENSION} (scale it with `ffmpeg -i INPUT -vf scale=640:480 \
             -pix_fmt yuv420p OUTPUT.y4m`)"
        )));
    }
    let (fps_num, fps_den) = fps.unwrap_or(DEFAULT_FPS);
    Ok(Header {
        width,
        height,
        fps_num,
        fps_den,
        interlace,
        colourspace: colourspace.unwrap_or_else(|| "420jpeg".into()),
    })
}

/// How reading one line ended.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A whole line of this many bytes (without the `\n`) is in the buffer.
    Complete(usize),
    /// The file ended before a `\n`.
    Eof,
    /// The line is longer than the buffer.
    TooLong,
}

/// Reads one `\n`-terminated line into `out` without allocating.
fn read_line<R: BufRead>(reader: &mut R, out: &mut [u8]) -> io::Result<Line> {
    let mut len = 0usize;
    loop {
        let available = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        let end = len.saturating_add(take);
        let (Some(dst), Some(src)) = (out.get_mut(len..end), available.get(..take)) else {
            return Ok(Line::TooLong);
        };
        dst.copy_from_slice(src);
        len = end;
        reader.consume(take.saturating_add(usize::from(done)));
        if done {
            return Ok(Line::Complete(len));
        }
    }
}

fn is_frame_line(line: &[u8]) -> bool {
    line == b"FRAME" || line.starts_with(b"FRAME ")
}

/// How reading one frame ended.
enum Next {
    Frame,
    /// End of file (clean, or in the middle of a frame): loop.
    End,
}

/// A looping YUV4MPEG2 file source.
pub struct Y4mSource {
    path: PathBuf,
    reader: BufReader<File>,
    header: Header,
    /// Bytes of picture data per frame.
    frame_len: usize,
    /// Byte offset of frame 0's `FRAME` line.
    first_frame: u64,
    /// Byte offset of the next `FRAME` line to read (for error messages).
    pos: u64,
    seq: u64,
}

impl std::fmt::Debug for Y4mSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Y4mSource {
    /// Opens `path`, parses its header and checks it holds at least one complete frame.
    ///
    /// Errors: a missing file is [`ErrorKind::NotFound`]; a malformed header, a file that is
    /// not a regular file or has no complete frame is [`ErrorKind::InvalidInput`]; a
    /// colourspace other than 4:2:0 is [`ErrorKind::UnsupportedFormat`].
    pub fn open(path: &Path) -> Result<Self, CameraError> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CameraError::new(
                ErrorKind::NotFound,
                format!("no Y4M file at {shown}: check the path given as `y4m:PATH`"),
            ),
            io::ErrorKind::PermissionDenied => CameraError::new(
                ErrorKind::PermissionDenied,
                format!("cannot read {shown}: permission denied (check the file's permissions)"),
            ),
            _ => CameraError::new(ErrorKind::Other, format!("cannot open {shown}: {e}")),
        })?;
        let io_err = |e: io::Error| CameraError::new(ErrorKind::Other, format!("{shown}: {e}"));
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(invalid(format!(
                "{shown} is not a regular file: a Y4M source is looped by seeking back to its \
                 first frame, so give the path of a .y4m file"
            )));
        }
        let file_len = meta.len();
        let mut reader = BufReader::with_capacity(64 * 1024, file);

        let mut line = [0u8; MAX_HEADER_LINE];
        let header_len = match read_line(&mut reader, &mut line).map_err(io_err)? {
            Line::Complete(len) => len,
            Line::Eof => {
                return Err(invalid(format!(
                    "{shown} is empty or its header line is not terminated: not a Y4M file"
                )));
            }
            Line::TooLong => {
                return Err(invalid(format!(
                    "{shown}: the header line is longer than {MAX_HEADER_LINE} bytes: not a \
                     Y4M file"
                )));
            }
        };
        let header = parse_header(line.get(..header_len).unwrap_or_default())
            .map_err(|e| CameraError::new(e.kind(), format!("{shown}: {e}")))?;
        let frame_len = I420Frame::buffer_len(header.width, header.height);
        let first_frame = (header_len as u64).saturating_add(1);

        // Frame 0 must be complete, or there is nothing to loop over.
        let n = MAX_FRAME_LINE.min(line.len());
        let (frame_buf, _) = line.split_at_mut(n);
        let frame_line = match read_line(&mut reader, frame_buf) {
            Ok(Line::Complete(len)) if is_frame_line(frame_buf.get(..len).unwrap_or_default()) => {
                len
            }
            Ok(Line::Complete(_)) | Ok(Line::TooLong) => {
                return Err(invalid(format!(
                    "{shown}: expected a `FRAME` line at byte {first_frame}, right after the \
                     header: the file is damaged"
                )));
            }
            Ok(Line::Eof) => {
                return Err(invalid(format!(
                    "{shown} has a header but no frames: nothing to play"
                )));
            }
            Err(e) => return Err(io_err(e)),
        };
        let data_start = first_frame
            .saturating_add(frame_line as u64)
            .saturating_add(1);
        if file_len < data_start.saturating_add(frame_len as u64) {
            return Err(invalid(format!(
                "{shown} has no complete frame: frame 0 needs {frame_len} bytes for \
                 {}x{} but the file has only {} after its FRAME line (truncated file?)",
                header.width,
                header.height,
                file_len.saturating_sub(data_start)
            )));
        }
        reader.seek(SeekFrom::Start(first_frame)).map_err(io_err)?;

        Ok(Self {
            path: path.to_path_buf(),
            reader,
            header,
            frame_len,
            first_frame,
            pos: first_frame,
            seq: 0,
        })
    }

    /// Reads the frame at the current position into `data` (exactly `frame_len` bytes).
    fn read_frame(&mut self, data: &mut [u8]) -> Result<Next, CameraError> {
        let mut line = [0u8; MAX_FRAME_LINE];
        let len = match read_line(&mut self.reader, &mut line) {
            Ok(Line::Complete(len)) if is_frame_line(line.get(..len).unwrap_or_default()) => len,
            // End of file, possibly in the middle of a `FRAME` line: loop.
            Ok(Line::Eof) => return Ok(Next::End),
            Ok(Line::Complete(_) | Line::TooLong) => return Err(self.damaged()),
            Err(e) => return Err(self.io_error(e)),
        };
        match self.reader.read_exact(data) {
            Ok(()) => {
                self.pos = self
                    .pos
                    .saturating_add(len as u64)
                    .saturating_add(1)
                    .saturating_add(self.frame_len as u64);
                Ok(Next::Frame)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Next::End),
            Err(e) => Err(self.io_error(e)),
        }
    }

    fn rewind(&mut self) -> Result<(), CameraError> {
        self.reader
            .seek(SeekFrom::Start(self.first_frame))
            .map_err(|e| self.io_error(e))?;
        self.pos = self.first_frame;
        Ok(())
    }

    fn damaged(&self) -> CameraError {
        invalid(format!(
            "{}: expected a `FRAME` line at byte {}: the file is damaged (re-create it with \
             ffmpeg)",
            self.path.display(),
            self.pos
        ))
    }

    fn io_error(&self, e: io::Error) -> CameraError {
        CameraError::new(
            ErrorKind::Other,
            format!("reading {} failed: {e}", self.path.display()),
        )
    }
}

impl FrameSource for Y4mSource {
    fn info(&self) -> SourceInfo {
        let h = &self.header;
        SourceInfo {
            kind: "y4m",
            description: format!(
                "{} (Y4M C{}, I{}, looped)",
                self.path.display(),
                h.colourspace,
                h.interlace
            ),
            width: h.width,
            height: h.height,
            fps_num: h.fps_num,
            fps_den: h.fps_den,
        }
    }

    fn pacing(&self) -> Pacing {
        Pacing::Free
    }

    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        let (w, h) = (self.header.width, self.header.height);
        if frame.width() != w || frame.height() != h {
            return Err(invalid(format!(
                "frame is {}x{} but {} is {w}x{h}: allocate frames with the size from info()",
                frame.width(),
                frame.height(),
                self.path.display()
            )));
        }
        let data = frame.data_mut();
        if let Next::End = self.read_frame(data)? {
            // End of file, or a truncated last frame: start over from frame 0.
            self.rewind()?;
            if let Next::End = self.read_frame(data)? {
                return Err(invalid(format!(
                    "{}: frame 0 is no longer complete (was the file truncated while playing?)",
                    self.path.display()
                )));
            }
        }
        frame.capture_us = clock.now_us();
        frame.seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::camera::FixedClock;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A file in the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &[u8]) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("sutantra-hal-y4m-{}-{n}.y4m", std::process::id()));
            std::fs::write(&path, contents).expect("write temp file");
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A 4x2 file: header, then frames whose luma bytes are all `value`.
    fn file(header: &str, values: &[u8]) -> Vec<u8> {
        let mut out = header.as_bytes().to_vec();
        out.push(b'\n');
        for &v in values {
            out.extend_from_slice(b"FRAME\n");
            out.extend_from_slice(&[v; 8]);
            out.extend_from_slice(&[128; 4]);
        }
        out
    }

    fn capture(src: &mut Y4mSource, f: &mut I420Frame) -> u8 {
        src.capture(f, &FixedClock(7)).expect("capture");
        f.data()[0]
    }

    fn open_err(contents: &[u8]) -> CameraError {
        let t = TempFile::new(contents);
        Y4mSource::open(&t.0).expect_err("open should fail")
    }

    #[test]
    fn header_tokens() {
        let h = parse_header(b"YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420mpeg2 XYSCSS=420MPEG2")
            .expect("valid header");
        assert_eq!(
            h,
            Header {
                width: 640,
                height: 480,
                fps_num: 30000,
                fps_den: 1001,
                interlace: 'p',
                colourspace: "420mpeg2".into(),
            }
        );
        // Defaults: no F, I or C; extra spaces are fine; unknown tokens are ignored.
        let h = parse_header(b"YUV4MPEG2  W2  H4 Zfuture ").expect("valid header");
        assert_eq!((h.width, h.height, h.fps_num, h.fps_den), (2, 4, 25, 1));
        assert_eq!(h.colourspace, "420jpeg");
        for cs in ["420", "420jpeg", "420paldv", "420mpeg2"] {
            let line = format!("YUV4MPEG2 W4 H2 F25:1 C{cs}");
            assert!(parse_header(line.as_bytes()).is_ok(), "{cs}");
        }
    }

    #[test]
    fn bad_headers() {
        let cases: [(&[u8], &str); 10] = [
            (b"YUV4MPEG W4 H2", "YUV4MPEG2"),
            (b"YUV4MPEG2X W4 H2", "YUV4MPEG2"),
            (b"YUV4MPEG2 H2", "width"),
            (b"YUV4MPEG2 W4", "height"),
            (b"YUV4MPEG2 Wx H2", "Wx"),
            (b"YUV4MPEG2 W0 H2", "W0"),
            (b"YUV4MPEG2 W4 H2 F30", "F30"),
            (b"YUV4MPEG2 W4 H2 F30:0", "F30:0"),
            (b"YUV4MPEG2 W5 H2", "even"),
            (b"YUV4MPEG2 W4 H2 Iz", "Iz"),
        ];
        for (line, needle) in cases {
            let err = parse_header(line).expect_err("invalid header");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn bad_colourspace_is_unsupported() {
        for cs in ["444", "422", "mono", "420p10", "411"] {
            let header = format!("YUV4MPEG2 W4 H2 F30:1 C{cs}");
            let err = open_err(&file(&header, &[1]));
            assert_eq!(err.kind(), ErrorKind::UnsupportedFormat);
            let msg = err.to_string();
            assert!(msg.contains(&format!("C{cs}")), "{msg}");
            assert!(msg.contains("4:2:0"), "{msg}");
        }
    }

    #[test]
    fn opens_and_loops() {
        let t = TempFile::new(&file("YUV4MPEG2 W4 H2 F30:1 Ip C420jpeg", &[10, 20, 30]));
        let mut src = Y4mSource::open(&t.0).expect("open");
        let info = src.info();
        assert_eq!(
            (info.width, info.height, info.fps_num, info.fps_den),
            (4, 2, 30, 1)
        );
        assert_eq!(info.kind, "y4m");
        assert_eq!(src.pacing(), Pacing::Free);
        let mut f = I420Frame::new(4, 2);
        let got: Vec<u8> = (0..7).map(|_| capture(&mut src, &mut f)).collect();
        assert_eq!(got, [10, 20, 30, 10, 20, 30, 10]);
        assert_eq!(f.seq, 6);
        assert_eq!(f.capture_us, 7);
        assert_eq!(&f.data()[8..], &[128; 4]);
    }

    #[test]
    fn frame_params_are_accepted() {
        let mut bytes = b"YUV4MPEG2 W4 H2 F30:1\n".to_vec();
        for (i, v) in [5u8, 6].iter().enumerate() {
            if i == 0 {
                bytes.extend_from_slice(b"FRAME Ip XFOO=1\n");
            } else {
                bytes.extend_from_slice(b"FRAME\n");
            }
            bytes.extend_from_slice(&[*v; 12]);
        }
        let t = TempFile::new(&bytes);
        let mut src = Y4mSource::open(&t.0).expect("open");
        let mut f = I420Frame::new(4, 2);
        let got: Vec<u8> = (0..4).map(|_| capture(&mut src, &mut f)).collect();
        assert_eq!(got, [5, 6, 5, 6]);
    }

    #[test]
    fn truncated_last_frame_loops() {
        let mut bytes = file("YUV4MPEG2 W4 H2 F30:1", &[1, 2]);
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend_from_slice(&[3; 5]); // 5 of 12 bytes
        let t = TempFile::new(&bytes);
        let mut src = Y4mSource::open(&t.0).expect("open");
        let mut f = I420Frame::new(4, 2);
        let got: Vec<u8> = (0..5).map(|_| capture(&mut src, &mut f)).collect();
        assert_eq!(got, [1, 2, 1, 2, 1]);

        // A cut-off FRAME line at the end also loops.
        let mut bytes = file("YUV4MPEG2 W4 H2 F30:1", &[1, 2]);
        bytes.extend_from_slice(b"FRA");
        let t = TempFile::new(&bytes);
        let mut src = Y4mSource::open(&t.0).expect("open");
        let got: Vec<u8> = (0..3).map(|_| capture(&mut src, &mut f)).collect();
        assert_eq!(got, [1, 2, 1]);
    }

    #[test]
    fn no_complete_frame_is_invalid() {
        let err = open_err(b"YUV4MPEG2 W4 H2 F30:1\n");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no frames"), "{err}");

        let err = open_err(b"YUV4MPEG2 W4 H2 F30:1\nFRAME\n0123456789");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no complete frame"), "{err}");

        let err = open_err(b"");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);

        let err = open_err(b"YUV4MPEG2 W4 H2 F30:1\nJUNK\n012345678901");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("FRAME"), "{err}");

        let err = open_err(&[b'Y'; 10_000]);
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn damaged_frame_header_mid_file_is_invalid() {
        let mut bytes = file("YUV4MPEG2 W4 H2 F30:1", &[1]);
        bytes.extend_from_slice(b"GARBAGE\n");
        bytes.extend_from_slice(&[2; 12]);
        let t = TempFile::new(&bytes);
        let mut src = Y4mSource::open(&t.0).expect("open");
        let mut f = I420Frame::new(4, 2);
        assert_eq!(capture(&mut src, &mut f), 1);
        let err = src.capture(&mut f, &FixedClock(0)).expect_err("damaged");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("byte 40"), "{err}");
    }

    #[test]
    fn missing_file_and_directory() {
        let path = std::env::temp_dir().join("sutantra-hal-definitely-missing.y4m");
        let err = Y4mSource::open(&path).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string()
                .contains("sutantra-hal-definitely-missing.y4m")
        );

        let err = Y4mSource::open(&std::env::temp_dir()).expect_err("directory");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn wrong_frame_size_is_invalid() {
        let t = TempFile::new(&file("YUV4MPEG2 W4 H2 F30:1", &[1]));
        let mut src = Y4mSource::open(&t.0).expect("open");
        let mut f = I420Frame::new(8, 2);
        let err = src.capture(&mut f, &FixedClock(0)).expect_err("size");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
