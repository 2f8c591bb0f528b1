#!/usr/bin/env python3
"""The aiortc peer of the benchmark suite: a minimal WHEP server that sends VP8 with aiortc.

It speaks the same WHEP subset as the node (POST /whep -> 201 + answer + Location, DELETE
/whep/<id>, GET /healthz), so the very same viewers (bench/viewer.py) decode both senders.

    peer_sender.py --listen 127.0.0.1:0 --y4m FILE --bitrate-kbps 1000 [--stamp] [--port-file F]

- Frames come from the Y4M file (read per frame, looped, paced on a frame clock; see
  make_y4m_track for why not MediaPlayer); one track feeds every viewer through MediaRelay, and
  aiortc encodes once per viewer (that is how aiortc works: an encoder per RTCRtpSender).
- The bitrate is pinned: aiortc's VP8 encoder otherwise starts at 500 kbit/s and follows REMB
  between 250 kbit/s and 1.5 Mbit/s. Its other settings are aiortc's own (cpu-used -6, realtime).
- --stamp draws the latency stamp of ARCHITECTURE.md (64 cells in rows 0..15 of the luma
  plane, bit 63-i of the capture time in µs) into each frame when it is taken from the file at
  its deadline, which is this sender's capture time.
- Loopback only: aioice's host candidates are replaced by 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import sys
import time
import uuid


def loopback_only() -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []


def pin_bitrate(bps: int) -> None:
    from aiortc.codecs import vpx

    vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = bps


def draw_stamp(arr, w: int, h: int, now_us: int) -> None:
    """Draws the latency stamp into a (h*3/2, w) yuv420p array, in place."""
    import numpy as np

    cell = w // 64
    bits = np.array([(now_us >> (63 - i)) & 1 for i in range(64)], dtype=np.uint8)
    arr[0:16, : cell * 64] = np.repeat(np.where(bits == 1, 235, 16).astype(np.uint8), cell)
    # chroma 128 under the stamp: U and V rows 0..7, packed two half-width rows per array row
    uv_rows = 4
    arr[h : h + uv_rows, :] = 128
    arr[h + h // 4 : h + h // 4 + uv_rows, :] = 128


class Y4mFile:
    """Reads frames of a 4:2:0 Y4M file with pread (not mmap: mapped pages would count in this
    process's RSS, which the suite compares with the node's, and the node reads with read())."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            header = f.readline().decode()
        tags = {t[0]: t[1:] for t in header.split()[1:]}
        self.w, self.h = int(tags["W"]), int(tags["H"])
        num, den = (int(x) for x in tags.get("F", "30:1").split(":"))
        self.fps = num / den
        if not tags.get("C", "420").startswith("420"):
            raise SystemExit(f"{path}: only 4:2:0 Y4M is supported")
        self.frame_bytes = self.w * self.h * 3 // 2
        self.start = len(header)
        self.stride = len("FRAME\n") + self.frame_bytes  # frames without FRAME parameters
        self.fd = os.open(path, os.O_RDONLY)
        self.count = (os.fstat(self.fd).st_size - self.start) // self.stride

    def frame(self, i: int):
        import numpy as np

        off = self.start + (i % self.count) * self.stride + len("FRAME\n")
        buf = bytearray(os.pread(self.fd, self.frame_bytes, off))
        return np.frombuffer(buf, dtype=np.uint8).reshape(self.h * 3 // 2, self.w)


def make_y4m_track(path: str, stamp: bool):
    """A live track of the Y4M file, looped, paced at its frame rate on a frame clock
    (deadline = start + n * period, like the node's). aiortc's MediaPlayer(loop=True) is not
    used: after the first loop its throttle compares the restarted pts with the original start
    and stops pacing, so its unbounded queue filled with the whole file again and again
    (hundreds of MiB, viewers starved)."""
    from aiortc.mediastreams import MediaStreamTrack
    from av import VideoFrame

    y4m = Y4mFile(path)
    w, h, fps = y4m.w, y4m.h, y4m.fps

    class Y4mTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self.n = 0
            self.t0 = None

        async def recv(self):
            if self.t0 is None:
                self.t0 = time.monotonic()
            deadline = self.t0 + self.n / fps
            wait = deadline - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            arr = y4m.frame(self.n)
            if stamp:
                draw_stamp(arr, w, h, int(time.time() * 1e6))
            frame = VideoFrame.from_ndarray(arr, format="yuv420p")
            frame.pts, frame.time_base = int(self.n * 90000 / fps), fractions.Fraction(1, 90000)
            self.n += 1
            return frame

    return Y4mTrack()


async def main_async(args) -> None:
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    source = make_y4m_track(args.y4m, args.stamp)
    relay = MediaRelay()

    sessions: dict[str, RTCPeerConnection] = {}

    async def whep_post(request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return web.Response(status=415, text="Content-Type must be application/sdp")
        offer = await request.text()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sid = uuid.uuid4().hex[:16]
        sessions[sid] = pc

        @pc.on("connectionstatechange")
        async def _state():
            if pc.connectionState in ("failed", "closed"):
                sessions.pop(sid, None)
                await pc.close()

        pc.addTrack(relay.subscribe(source, buffered=False))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())  # gathers (host only)
        except Exception as e:
            sessions.pop(sid, None)
            await pc.close()
            return web.Response(status=400, text=f"bad offer: {e}")
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": f"/whep/{sid}"},
        )

    async def whep_delete(request: web.Request) -> web.Response:
        pc = sessions.pop(request.match_info["sid"], None)
        if pc is None:
            return web.Response(status=404, text="no such session")
        await pc.close()
        return web.Response(status=200)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "viewers": len(sessions), "pid": os.getpid()})

    app = web.Application()
    app.router.add_post("/whep", whep_post)
    app.router.add_delete("/whep/{sid}", whep_delete)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    host, port = args.listen.rsplit(":", 1)
    site = web.TCPSite(runner, host, int(port))
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(bound))
        os.replace(args.port_file + ".tmp", args.port_file)
    print(json.dumps({"listening": f"{host}:{bound}"}), flush=True)
    await asyncio.Event().wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--y4m", required=True)
    p.add_argument("--bitrate-kbps", type=int, default=1000)
    p.add_argument("--stamp", action="store_true")
    p.add_argument("--port-file")
    args = p.parse_args()
    loopback_only()
    pin_bitrate(args.bitrate_kbps * 1000)
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
