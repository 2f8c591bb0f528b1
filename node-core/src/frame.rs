//! `I420Frame`: one planar YUV 4:2:0 picture in a buffer allocated once.
//!
//! Every camera source writes into a frame it is handed, so the pipeline can keep a fixed pool of
//! frames and never allocate per picture. Strides equal the plane widths (no padding).

/// A planar I420 (YUV 4:2:0) picture with its capture time.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
    /// Capture time, microseconds since the UNIX epoch (realtime clock): the latency stamp and
    /// attestations carry it. It jumps when the wall clock is stepped (NTP, a hand-set date).
    pub capture_us: u64,
    /// Capture time on the monotonic clock, microseconds from an origin the capture thread
    /// picks. RTP timestamps and send pacing follow it, so a wall-clock step moves neither.
    pub mono_us: u64,
    /// Frame number assigned by the source (0, 1, 2, ...).
    pub seq: u64,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I420Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("capture_us", &self.capture_us)
            .field("mono_us", &self.mono_us)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl I420Frame {
    /// Allocates a black frame of `width` x `height` (both even and non-zero).
    pub fn new(width: u32, height: u32) -> Self {
        let mut f = Self {
            width,
            height,
            data: vec![0; Self::buffer_len(width, height)],
            capture_us: 0,
            mono_us: 0,
            seq: 0,
        };
        f.fill_black();
        f
    }

    /// Allocates a frame of `width` x `height` whose bytes are all zero (not black: Y = 0 is
    /// below video black and U = V = 0 is green) without writing them: a zeroed allocation of
    /// this size comes straight from the kernel, which maps its pages in only when they are
    /// first written. For buffers that are always filled completely before they are read, such
    /// as the frame pool's slots, so a slot that is never used costs no resident memory.
    pub fn new_unfilled(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; Self::buffer_len(width, height)],
            capture_us: 0,
            mono_us: 0,
            seq: 0,
        }
    }

    /// Bytes an I420 picture of this size needs.
    pub fn buffer_len(width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        w * h + 2 * cw * ch
    }

    /// Picture width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Picture height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of the chroma planes.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Height of the chroma planes.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// The whole buffer: Y plane, then U, then V.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The whole buffer, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The three planes (Y, U, V).
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let y_len = (self.width * self.height) as usize;
        let c_len = (self.chroma_width() * self.chroma_height()) as usize;
        let (y, rest) = self.data.split_at(y_len);
        let (u, v) = rest.split_at(c_len);
        (y, u, &v[..c_len])
    }

    /// The three planes (Y, U, V), writable.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let y_len = (self.width * self.height) as usize;
        let c_len = (self.chroma_width() * self.chroma_height()) as usize;
        let (y, rest) = self.data.split_at_mut(y_len);
        let (u, v) = rest.split_at_mut(c_len);
        (y, u, &mut v[..c_len])
    }

    /// Sets the picture to black (luma 16, chroma 128).
    pub fn fill_black(&mut self) {
        let (y, u, v) = self.planes_mut();
        y.fill(16);
        u.fill(128);
        v.fill(128);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfilled_frame_has_the_size_of_a_filled_one_and_zero_bytes() {
        let (a, b) = (I420Frame::new(64, 48), I420Frame::new_unfilled(64, 48));
        assert_eq!(a.data().len(), b.data().len());
        assert_eq!((b.width(), b.height()), (64, 48));
        assert!(b.data().iter().all(|&x| x == 0));
        assert!(a.planes().0.iter().all(|&x| x == 16));
    }
}
