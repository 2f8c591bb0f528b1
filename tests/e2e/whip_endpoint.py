#!/usr/bin/env python3
"""An independent WHIP endpoint (RFC 9725) for the Sutantra node's publish tests, on aiortc + aiohttp.

It accepts what a relay or SFU accepts, decodes the video it receives and reports what it saw:

    POST   /whip            SDP offer (Content-Type: application/sdp) -> 201 Created, SDP answer,
                            Location: whip/<id> (relative, so the client must resolve it)
    POST   /old/whip        307 Temporary Redirect, Location: ../whip (relative, as RFC 9725
                            allows; the client must re-POST there)
    DELETE /whip/<id>       ends the session -> 200 (404 if unknown)
    GET    /_control/stats  JSON: sessions (open now), sessions_total, posts, post_times (monotonic
                            seconds since start), refused, deletes, frames, width, height,
                            fps_last_10s, first_frame_s, first_frame_ms (per session that decoded
                            a frame, oldest first: ms from its POST arriving to its first decoded
                            frame), dtls_role

    whip_endpoint.py --port 9000                  # accept any client
    whip_endpoint.py --port 9000 --token secret   # 401 unless "Authorization: Bearer secret"
    whip_endpoint.py --port 9000 --remb-kbps 300  # tell the sender (RTCP REMB, twice a second)
                                                  # that the link carries 300 kbit/s
    whip_endpoint.py --port 9000 --dtls-role server  # answer a=setup:passive, so the client opens
                                                  # the DTLS handshake (aiortc answers active)

The endpoint's ICE candidates are on 127.0.0.1 only (aioice leaves loopback out by default), and it
uses no STUN server, so nothing leaves the machine. It prints one JSON line when it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import signal
import sys
import time


def loopback_only() -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []


class Endpoint:
    def __init__(self, token: str | None, remb_kbps: int | None, dtls_role: str = "auto"):
        self.token = token
        self.dtls_role = dtls_role
        self.remb_kbps = remb_kbps
        self.rembs_sent = 0
        self.bytes_recent: collections.deque[tuple[float, int]] = collections.deque(maxlen=20000)
        self.started = time.monotonic()
        self.sessions: dict[str, object] = {}
        self.sessions_total = 0
        self.posts = 0
        self.post_times: list[float] = []
        self.refused = 0
        self.deletes = 0
        self.redirects = 0
        self.frames = 0
        self.width = None
        self.height = None
        self.first_frame_s = None
        self.first_frame_ms: list[float] = []
        self.recent: collections.deque[float] = collections.deque(maxlen=4000)
        self.tasks: set[asyncio.Task] = set()

    def stats(self) -> dict:
        now = time.monotonic()
        while self.recent and now - self.recent[0] > 10.0:
            self.recent.popleft()
        return {
            "sessions": len(self.sessions),
            "sessions_total": self.sessions_total,
            "posts": self.posts,
            "post_times": [round(t, 3) for t in self.post_times[-100:]],
            "refused": self.refused,
            "deletes": self.deletes,
            "redirects": self.redirects,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps_last_10s": round(len(self.recent) / 10.0, 2),
            "kbps_last_5s": self.kbps_last_5s(now),
            "rembs_sent": self.rembs_sent,
            "first_frame_s": self.first_frame_s,
            "first_frame_ms": self.first_frame_ms[-100:],
            "dtls_role": self.dtls_role,
            "uptime_s": round(now - self.started, 3),
        }

    def kbps_last_5s(self, now: float) -> float:
        recent = [n for t, n in self.bytes_recent if now - t <= 5.0]
        return round(sum(recent) * 8 / 5.0 / 1000.0, 1)

    def count_bytes(self, receiver) -> None:
        """Counts the RTP payload bytes the receiver gets (for the received bitrate)."""
        real = receiver._handle_rtp_packet
        ep = self

        async def counting(packet, arrival_time_ms):
            ep.bytes_recent.append((time.monotonic(), len(packet.payload)))
            return await real(packet, arrival_time_ms)

        receiver._handle_rtp_packet = counting

    async def send_remb(self, receiver) -> None:
        """Sends REMB (draft-alvestrand-rmcat-remb) with --remb-kbps twice a second."""
        from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

        while True:
            await asyncio.sleep(0.5)
            streams = list(getattr(receiver, "_RTCRtpReceiver__remote_streams", {}))
            rtcp_ssrc = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
            if not streams or rtcp_ssrc is None:
                continue
            packet = RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP,
                ssrc=rtcp_ssrc,
                media_ssrc=0,
                fci=pack_remb_fci(self.remb_kbps * 1000, streams),
            )
            try:
                await receiver._send_rtcp(packet)
                self.rembs_sent += 1
            except Exception:
                return

    async def consume(self, track, posted: float) -> None:
        """Decodes `track`; `posted` is when its session's POST arrived (time.monotonic())."""
        from aiortc.mediastreams import MediaStreamError

        first = True
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            self.frames += 1
            self.recent.append(now)
            self.width, self.height = frame.width, frame.height
            if self.first_frame_s is None:
                self.first_frame_s = round(now - self.started, 3)
            if first:
                first = False
                self.first_frame_ms.append(round((now - posted) * 1000.0, 1))

    async def post(self, request):
        from aiohttp import web
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        posted = time.monotonic()
        self.posts += 1
        self.post_times.append(posted - self.started)
        if self.token is not None:
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {self.token}":
                self.refused += 1
                return web.Response(status=401, text="invalid or missing bearer token\n")
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/sdp":
            return web.Response(status=415, text="use Content-Type: application/sdp\n")
        offer = await request.text()
        if "m=video" not in offer:
            return web.Response(status=400, text="the offer has no video\n")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("track")
        def on_track(track):
            if track.kind == "video":
                jobs = [self.consume(track, posted)]
                receiver = next((t.receiver for t in pc.getTransceivers() if t.kind == "video"), None)
                if receiver is not None:
                    self.count_bytes(receiver)
                    if self.remb_kbps:
                        jobs.append(self.send_remb(receiver))
                for job in jobs:
                    task = asyncio.ensure_future(job)
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            if self.dtls_role == "server":
                # aiortc answers an actpass offer with a=setup:active (it opens the handshake);
                # a role set before createAnswer is kept, and written as a=setup:passive.
                for t in pc.getTransceivers():
                    t.receiver.transport._set_role("server")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # a bad offer is the client's problem: say why
            await pc.close()
            return web.Response(status=400, text=f"bad offer: {type(e).__name__}: {e}\n")
        sid = secrets.token_hex(8)
        self.sessions[sid] = pc
        self.sessions_total += 1
        return web.Response(
            status=201,
            body=pc.localDescription.sdp.encode(),
            headers={"Content-Type": "application/sdp", "Location": f"whip/{sid}"},
        )

    async def redirect(self, request):
        from aiohttp import web

        self.redirects += 1
        return web.Response(status=307, headers={"Location": "../whip"})

    async def delete(self, request):
        from aiohttp import web

        pc = self.sessions.pop(request.match_info["sid"], None)
        if pc is None:
            return web.Response(status=404, text="no such session\n")
        self.deletes += 1
        await pc.close()
        return web.Response(status=200)

    async def control_stats(self, request):
        from aiohttp import web

        return web.json_response(self.stats())


async def main_async(args) -> None:
    from aiohttp import web

    loopback_only()
    ep = Endpoint(args.token, args.remb_kbps, args.dtls_role)
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/whip", ep.post)
    app.router.add_post("/old/whip", ep.redirect)
    app.router.add_delete("/whip/{sid}", ep.delete)
    app.router.add_get("/_control/stats", ep.control_stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, reuse_address=True)
    await site.start()
    print(json.dumps({"listening": f"http://{args.host}:{args.port}/whip"}), flush=True)
    if args.tls_port:
        # The same routes over https (the plain site stays for the tests' /_control/stats).
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        tls = web.TCPSite(runner, args.host, args.tls_port, ssl_context=ctx, reuse_address=True)
        await tls.start()
        print(json.dumps({"listening": f"https://{args.host}:{args.tls_port}/whip"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for pc in list(ep.sessions.values()):
        await pc.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", help="require Authorization: Bearer TOKEN (401 otherwise)")
    p.add_argument("--remb-kbps", type=int, help="send RTCP REMB with this bitrate twice a second")
    p.add_argument("--dtls-role", choices=["auto", "server"], default="auto",
                   help="server: answer a=setup:passive, so the publisher is the DTLS client "
                   "(auto: aiortc's choice, a=setup:active)")
    p.add_argument("--tls-port", type=int, help="also serve the endpoint over https on this port")
    p.add_argument("--tls-cert", help="PEM certificate chain for --tls-port")
    p.add_argument("--tls-key", help="PEM private key for --tls-port")
    args = p.parse_args(argv)
    if args.tls_port and not (args.tls_cert and args.tls_key):
        p.error("--tls-port needs --tls-cert and --tls-key")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
