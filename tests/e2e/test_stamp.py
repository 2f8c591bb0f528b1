"""Unit tests of whep_client's latency-stamp decoder on synthetic frames (no node needed).

Run: .venv/bin/python3 -m unittest discover -s tests/e2e -p 'test_*.py'
"""

import os
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from whep_client import decode_stamp, latency_summary, stamp_plausible  # noqa: E402


def draw_stamp(luma: np.ndarray, stamp_us: int) -> None:
    """Draw the stamp exactly as the latency stamp contract in ARCHITECTURE.md specifies."""
    w = luma.shape[1] // 64
    for i in range(64):
        bit = (stamp_us >> (63 - i)) & 1
        luma[0:16, i * w : (i + 1) * w] = 235 if bit else 16


def frame(width: int, height: int, stamp_us: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    luma = rng.integers(0, 256, size=(height, width), dtype=np.uint8)  # moving picture below
    draw_stamp(luma, stamp_us)
    return luma


class DecodeStamp(unittest.TestCase):
    def test_exact_at_640x480(self):
        now = int(time.time() * 1e6)
        self.assertEqual(decode_stamp(frame(640, 480, now)), now)

    def test_extremes(self):
        for value in (0, 1, (1 << 63) | 1, (1 << 64) - 1, 0x0123456789ABCDEF):
            self.assertEqual(decode_stamp(frame(640, 480, value)), value, hex(value))

    def test_width_not_a_multiple_of_64(self):
        # 1000 // 64 = 15: cells are 15 wide and the 40 columns on the right are picture.
        now = int(time.time() * 1e6)
        self.assertEqual(decode_stamp(frame(1000, 200, now)), now)

    def test_small_cells(self):
        now = int(time.time() * 1e6)
        for width in (64, 128, 256, 320):  # cells of 1, 2, 4, 5 columns
            self.assertEqual(decode_stamp(frame(width, 32, now)), now, width)

    def test_survives_codec_noise_and_edge_ringing(self):
        now = int(time.time() * 1e6)
        luma = frame(640, 480, now).astype(np.int16)
        rng = np.random.default_rng(7)
        luma[0:16] += rng.integers(-40, 41, size=(16, 640), dtype=np.int16)  # quantisation noise
        w = 10
        for i in range(64):  # ringing: the outer columns and rows of each cell are garbage
            luma[0:16, i * w : i * w + 2] = rng.integers(0, 256, size=(16, 2))
            luma[0:16, (i + 1) * w - 2 : (i + 1) * w] = rng.integers(0, 256, size=(16, 2))
        luma[0:2] = 255 - luma[0:2]
        luma[14:16] = 255 - luma[14:16]
        self.assertEqual(decode_stamp(np.clip(luma, 0, 255).astype(np.uint8)), now)

    def test_no_stamp_is_implausible(self):
        now = time.time() * 1e6
        flat = np.full((480, 640), 128, dtype=np.uint8)
        self.assertFalse(stamp_plausible(decode_stamp(flat), now))
        self.assertFalse(stamp_plausible(decode_stamp(frame(640, 480, 0)), now))
        self.assertIsNone(decode_stamp(np.zeros((8, 640), dtype=np.uint8)))
        self.assertIsNone(decode_stamp(np.zeros((480, 32), dtype=np.uint8)))

    def test_plausible_window(self):
        now = time.time() * 1e6
        self.assertTrue(stamp_plausible(int(now - 150_000), now))
        self.assertTrue(stamp_plausible(int(now + 2_000_000), now))
        self.assertFalse(stamp_plausible(int(now - 11_000_000), now))

    def test_latency_summary(self):
        s = latency_summary([float(x) for x in range(1, 101)])
        self.assertEqual(s, {"p50": 50.0, "p95": 95.0, "max": 100.0, "count": 100})
        self.assertEqual(latency_summary([]), {"p50": None, "p95": None, "max": None, "count": 0})


if __name__ == "__main__":
    unittest.main()
