#!/usr/bin/env python3
"""A stand-in for `sutantra run`, built on aiortc + aiohttp, to test the TEST HARNESS itself.

It speaks the HTTP contract in ARCHITECTURE.md (viewer page, POST/DELETE/OPTIONS /whep with its
errors, /healthz, /metrics) and sends a 30 fps test pattern that carries the latency stamp. It is
not the node and proves nothing about it: use it to check whep_client.py, browser_view.mjs and the
Rust e2e tests when the real binary is broken or absent:

    printf '#!/bin/sh\\nexec %s/.venv/bin/python3 %s/tests/e2e/fake_node.py "$@"\\n' "$PWD" "$PWD" >/tmp/fake-sutantra
    chmod +x /tmp/fake-sutantra && SUTANTRA_BIN=/tmp/fake-sutantra cargo test -p sutantra-tests
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

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from whep_client import use_loopback_candidates  # noqa: E402

MAX_BODY = 64 * 1024

PAGE = """<!doctype html><meta charset=utf-8><title>Sutantra (fake)</title>
<video id=v autoplay muted playsinline></video>
<p>fps <span id=fps>-</span> | <span id=res>-</span> | latency <span id=latency>-</span></p>
<canvas id=c width=640 height=16 hidden></canvas>
<script>
(async () => {
  const pc = new RTCPeerConnection({iceServers: []});
  window.sutantraPc = pc;
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.ontrack = (e) => { document.getElementById('v').srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
    setTimeout(ok, 2000);
  });
  const r = await fetch('/whep', {method: 'POST', headers: {'Content-Type': 'application/sdp'},
                                  body: pc.localDescription.sdp});
  await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  const v = document.getElementById('v'), c = document.getElementById('c');
  const ctx = c.getContext('2d', {willReadFrequently: true});
  const onFrame = () => {
    if (v.videoWidth) {
      document.getElementById('res').textContent = v.videoWidth + 'x' + v.videoHeight;
      ctx.drawImage(v, 0, 0, v.videoWidth, 16, 0, 0, v.videoWidth, 16);
      const px = ctx.getImageData(0, 0, v.videoWidth, 16).data, w = Math.floor(v.videoWidth / 64);
      let stamp = 0n;
      for (let i = 0; i < 64; i++) {
        const o = (8 * v.videoWidth + i * w + Math.floor(w / 2)) * 4;
        stamp = (stamp << 1n) | ((px[o] + px[o + 1] + px[o + 2]) / 3 > 126 ? 1n : 0n);
      }
      const ms = Date.now() - Number(stamp / 1000n);
      if (Math.abs(ms) < 10000) document.getElementById('latency').textContent = ms + ' ms';
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  setInterval(async () => {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video')
        document.getElementById('fps').textContent = s.framesPerSecond ?? '-';
    });
  }, 1000);
})();
</script>
"""


class State:
    def __init__(self, args):
        self.args = args
        self.sessions: dict[str, object] = {}
        self.frames_sent = 0
        self.started = time.monotonic()


def make_track(state: State):
    import av
    from aiortc import VideoStreamTrack

    w, h, fps = state.args.width, state.args.height, state.args.fps

    class Pattern(VideoStreamTrack):
        def __init__(self):
            super().__init__()
            self.n = 0
            self.start = None

        async def recv(self):
            if self.start is None:
                self.start = time.monotonic()
            self.n += 1
            await asyncio.sleep(max(0.0, self.start + self.n / fps - time.monotonic()))
            img = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
            img[:h] = ((np.arange(w)[None, :] + self.n * 4) % 200 + 20).astype(np.uint8)
            stamp, cw = int(time.time() * 1e6), w // 64
            for i in range(64):
                img[0:16, i * cw : (i + 1) * cw] = 235 if (stamp >> (63 - i)) & 1 else 16
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts, frame.time_base = self.n * 3000, fractions.Fraction(1, 90000)
            state.frames_sent += 1
            return frame

    return Pattern()


def build_app(state: State):
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    cors = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Location",
    }

    def text(status, reason, **headers):
        return web.Response(status=status, text=reason + "\n", headers={**cors, **headers})

    async def index(_):
        return web.Response(text=PAGE, content_type="text/html")

    async def healthz(_):
        body = {
            "status": "ok",
            "source": "test-pattern",
            "fps": float(state.args.fps),
            "viewers": len(state.sessions),
            "frames_sent": state.frames_sent,
            "uptime_s": round(time.monotonic() - state.started, 3),
        }
        return web.json_response(body)

    async def metrics(_):
        return web.Response(
            text=f"# TYPE sutantra_frames_sent_total counter\nsutantra_frames_sent_total {state.frames_sent}\n"
            f"# TYPE sutantra_viewers gauge\nsutantra_viewers {len(state.sessions)}\n",
            content_type="text/plain",
        )

    async def options(_):
        return web.Response(
            status=204,
            headers={
                **cors,
                "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization",
            },
        )

    async def post(request):
        if state.args.token and request.headers.get("Authorization") != f"Bearer {state.args.token}":
            return text(401, "missing or wrong bearer token")
        if request.content_type != "application/sdp":
            return text(415, "Content-Type must be application/sdp")
        if (request.content_length or 0) > MAX_BODY:
            return text(413, "SDP offer larger than 64 KiB")
        body = await request.text()
        if not body.startswith("v=0") or "m=video" not in body:
            return text(400, "body is not an SDP offer with a video section")
        if len(state.sessions) >= state.args.max_viewers:
            return text(503, "viewer limit reached", **{"Retry-After": "5"})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="offer"))
            pc.addTrack(make_track(state))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:
            await pc.close()
            return text(400, f"bad SDP offer: {e}")
        sid = uuid.uuid4().hex
        state.sessions[sid] = pc
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={**cors, "Location": f"/whep/{sid}"},
        )

    async def delete(request):
        pc = state.sessions.pop(request.match_info["id"], None)
        if pc is None:
            return text(404, "no such session")
        await pc.close()
        return web.Response(status=204, headers=cors)

    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes(
        [
            web.get("/", index),
            web.get("/healthz", healthz),
            web.get("/metrics", metrics),
            web.options("/whep", options),
            web.post("/whep", post),
            web.delete("/whep/{id}", delete),
        ]
    )
    return app


async def count_frames(state: State):
    """Frames 'flow' without viewers too, as the real node's encoder runs all the time."""
    n, start = 0, time.monotonic()
    while True:
        n += 1
        await asyncio.sleep(max(0.0, start + n / state.args.fps - time.monotonic()))
        if not state.sessions:
            state.frames_sent += 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--listen", default="127.0.0.1:8080")
    r.add_argument("--data-dir", default="./sutantra-data")
    r.add_argument("--source", default="test-pattern")
    r.add_argument("--width", type=int, default=640)
    r.add_argument("--height", type=int, default=480)
    r.add_argument("--fps", type=int, default=30)
    r.add_argument("--max-viewers", type=int, default=16)
    r.add_argument("--token")
    r.add_argument("--config")
    args = p.parse_args()
    use_loopback_candidates("http://127.0.0.1/")
    host, port = args.listen.rsplit(":", 1)
    state = State(args)

    from aiohttp import web

    async def serve():
        runner = web.AppRunner(build_app(state))
        await runner.setup()
        await web.TCPSite(runner, host, int(port)).start()
        print(f"fake sutantra: viewer at http://{host}:{port}/", flush=True)
        print(json.dumps({"msg": "listening", "listen": args.listen}), file=sys.stderr, flush=True)
        await count_frames(state)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
