#!/usr/bin/env python3
"""The aiortc WHEP viewer of the e2e tests (tests/e2e/whep_client.py, unchanged), plus one line
on stderr with the wall-clock time of the first decoded frame:

    FIRST-FRAME-UNIX <seconds since the UNIX epoch>

so the emulated-board test can tell the time from QEMU's start to the first picture on the host
(boot-to-first-frame). Arguments and output are whep_client.py's.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import whep_client  # noqa: E402

_window_init = whep_client.Window.__init__


def _window_at_first_frame(self, seconds):
    # whep_client creates the decode window right after the first frame was decoded.
    print(f"FIRST-FRAME-UNIX {time.time():.6f}", file=sys.stderr, flush=True)
    _window_init(self, seconds)


whep_client.Window.__init__ = _window_at_first_frame

if __name__ == "__main__":
    sys.exit(whep_client.main())
