#!/usr/bin/env python3
"""An independent WHEP viewer of the Sutantra node, built on aiortc (not on the node's own stack).

It offers to receive video, POSTs the offer to the WHEP endpoint, decodes frames for a window of
S seconds that starts at the first decoded frame, reads the latency stamp that the test-pattern
source draws into rows 0..15 of the luma plane (the latency stamp contract in ARCHITECTURE.md),
then DELETEs the session.

    whep_client.py --url http://127.0.0.1:8080/whep --seconds 10 --json
    whep_client.py --url ... --viewers 2 --json          # K concurrent viewers -> a JSON list
    whep_client.py --url ... --offer-only                # print an SDP offer and exit
    whep_client.py --url https://127.0.0.1:8443/whep --insecure   # self-signed test certificate

Exit status: 0 when every viewer decoded frames and met the --expect-* checks, 1 otherwise
(the JSON still tells what happened), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
import urllib.parse

import numpy as np

STAMP_ROWS = 16  # rows 0..15 of the luma plane hold the stamp
STAMP_CELLS = 64  # cell i shows bit 63 - i of the capture time (µs since the UNIX epoch)
STAMP_THRESHOLD = 126  # luma 235 = 1, 16 = 0
PLAUSIBLE_US = 10_000_000  # a stamp within 10 s of now is a real capture time


def decode_stamp(luma: np.ndarray) -> int | None:
    """Decode the 64-bit capture time from a luma plane (2-D uint8, height x width).

    Each cell is judged by the mean of its inner part (rows 2..13, two columns trimmed at each
    side), so codec ringing at the cell edges does not flip bits. None if the frame is too small.
    """
    height, width = luma.shape[:2]
    cell_w = width // STAMP_CELLS
    if cell_w < 1 or height < STAMP_ROWS:
        return None
    band = luma[2:14, : cell_w * STAMP_CELLS].astype(np.float32)
    cells = band.reshape(band.shape[0], STAMP_CELLS, cell_w)
    if cell_w > 4:
        cells = cells[:, :, 2 : cell_w - 2]
    means = cells.mean(axis=(0, 2))
    value = 0
    for bit in means > STAMP_THRESHOLD:  # cell 0 first = most significant bit
        value = (value << 1) | int(bit)
    return value


def stamp_plausible(stamp_us: int | None, now_us: float) -> bool:
    return stamp_us is not None and abs(now_us - stamp_us) <= PLAUSIBLE_US


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, int(np.ceil(q / 100.0 * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: list[float]) -> dict:
    values = sorted(latencies_ms)

    def r(x):
        return None if x is None else round(x, 2)

    return {
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "max": r(values[-1] if values else None),
        "count": len(values),
    }


def use_loopback_candidates(url: str) -> str:
    """aioice leaves 127.0.0.1 out of its host candidates; the node offers loopback ones.

    For a loopback URL gather on loopback only (no traffic leaves the machine); otherwise add
    loopback to the machine's addresses. Returns a word for the report.
    """
    import aioice.ice

    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    original = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if loopback:
            return ["127.0.0.1"] if use_ipv4 else []
        found = original(use_ipv4, use_ipv6)
        return found + ["127.0.0.1"] if use_ipv4 and "127.0.0.1" not in found else found

    aioice.ice.get_host_addresses = with_loopback
    return "loopback-only" if loopback else "all+loopback"


class ViewerFailure(Exception):
    pass


class Window:
    """Counts frames and stamp latencies in the decode window (also when it ends early)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.frames = 0
        self.stamped = 0
        self.latencies: list[float] = []
        self.sizes: set[tuple[int, int]] = set()
        # RTP timestamps (aiortc gives a video frame the 90 kHz RTP timestamp as its pts): each
        # must be later than the one before (modulo 2^32, RFC 3550 serial arithmetic).
        self.last_pts: int | None = None
        self.pts_backwards = 0
        self.pts_max_step = 0

    def add(self, frame, now_us: float) -> None:
        self.frames += 1
        self.sizes.add((frame.width, frame.height))
        if frame.pts is not None:
            if self.last_pts is not None:
                step = (frame.pts - self.last_pts) % (1 << 32)
                if step == 0 or step >= 1 << 31:
                    self.pts_backwards += 1
                else:
                    self.pts_max_step = max(self.pts_max_step, step)
            self.last_pts = frame.pts
        luma = frame.to_ndarray(format="yuv420p")[: frame.height, : frame.width]
        stamp = decode_stamp(luma)
        if stamp_plausible(stamp, now_us):
            self.stamped += 1
            self.latencies.append((now_us - stamp) / 1000.0)

    def report(self) -> dict:
        out = {
            "frames": self.frames,
            "fps": round(self.frames / self.seconds, 2),
            "latency_ms": latency_summary(self.latencies),
            "stamp_ok": round(self.stamped / self.frames, 4) if self.frames else 0.0,
            "rtp_ts_backwards": self.pts_backwards,
            "rtp_ts_max_step_ms": round(self.pts_max_step / 90.0, 1),
        }
        # Every size decoded, the first frame's included (the caller adds it), so a test can
        # tell which sizes a viewer followed across a pipeline restart.
        out["sizes_seen"] = sorted(self.sizes)
        return out


async def remaining(deadline: float, what: str, aw):
    left = deadline - time.monotonic()
    if left <= 0:
        raise ViewerFailure(f"timed out before {what}")
    try:
        return await asyncio.wait_for(aw, timeout=left)
    except asyncio.TimeoutError:
        raise ViewerFailure(f"timed out waiting for {what}") from None


async def make_offer():
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers candidates here
    if pc.iceGatheringState != "complete":
        done = asyncio.Event()
        pc.on("icegatheringstatechange", lambda: done.set() if pc.iceGatheringState == "complete" else None)
        await asyncio.wait_for(done.wait(), timeout=10)
    return pc


async def run_viewer(args, index: int, http) -> dict:
    from aiortc import RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    result: dict = {"viewer": index, "frames": 0}
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    connect_deadline = time.monotonic() + args.connect_timeout
    pc = None
    session_url = None
    window = None
    try:
        pc = await remaining(connect_deadline, "ICE gathering", make_offer())
        loop = asyncio.get_running_loop()
        track_future = loop.create_future()

        @pc.on("track")
        def on_track(track):
            if track.kind == "video" and not track_future.done():
                track_future.set_result(track)

        t_post = time.monotonic()
        post = http.post(
            args.url,
            data=pc.localDescription.sdp,
            headers={**headers, "Content-Type": "application/sdp"},
        )
        async with await remaining(connect_deadline, "the POST answer", post) as resp:
            body = await remaining(connect_deadline, "the POST body", resp.text())
            result["post_status"] = resp.status
            if resp.status != 201:
                if "Retry-After" in resp.headers:
                    result["retry_after"] = resp.headers["Retry-After"]
                raise ViewerFailure(f"POST {args.url} answered {resp.status}: {body.strip()[:300]}")
            location = resp.headers.get("Location")
        if not location:
            raise ViewerFailure("the 201 answer has no Location header")
        session_url = urllib.parse.urljoin(args.url, location)
        result["session"] = location

        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        track = await remaining(connect_deadline, "the remote video track", track_future)
        first = await remaining(connect_deadline, "the first decoded frame (ICE/DTLS/keyframe)", track.recv())
        t_first = time.monotonic()
        result["first_frame_ms"] = round((t_first - t_post) * 1000.0, 1)
        result["width"], result["height"] = first.width, first.height
        if args.ready_file:
            with open(args.ready_file, "a", encoding="utf-8") as f:
                f.write(f"{first.width}x{first.height}\n")

        window = Window(args.seconds)
        window.sizes.add((first.width, first.height))
        window_end = t_first + args.seconds
        if LOSS is not None:
            LOSS.armed = True
        next_report, reported = t_first + (args.progress or 0), 0
        while True:
            now = time.monotonic()
            if args.progress and now >= next_report:
                # One line per interval on stderr (stdout keeps the final JSON): frames decoded
                # in the interval, for long runs that need the rate over time.
                line = {"progress_s": round(now - t_first, 1), "frames": window.frames - reported}
                print(json.dumps(line), file=sys.stderr, flush=True)
                reported = window.frames
                next_report += args.progress
            left = window_end - now
            if left <= 0:
                break
            if args.progress:
                left = min(left, max(next_report - now, 0.01))
            try:
                frame = await asyncio.wait_for(track.recv(), timeout=left)
            except asyncio.TimeoutError:
                if time.monotonic() < window_end:
                    continue  # a progress line is due; the window goes on
                break
            except MediaStreamError:
                raise ViewerFailure(f"the track ended after {window.frames} frames in the window") from None
            window.add(frame, time.time() * 1e6)
        if window.frames == 0:
            raise ViewerFailure("no frame decoded in the window after the first one")
        if args.pli:
            # Ask for keyframes the way a receiver that lost a picture does (RTCP PLI, RFC 4585),
            # spaced wider than the node's keyframe rate limit; keep decoding meanwhile.
            receiver = pc.getTransceivers()[0].receiver
            streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
            if not streams:
                raise ViewerFailure("cannot find the remote SSRC to address a PLI to")
            media_ssrc = next(iter(streams))
            sent = 0
            for _ in range(args.pli):
                await receiver._send_rtcp_pli(media_ssrc)
                sent += 1
                until = time.monotonic() + 0.8
                while time.monotonic() < until:
                    await asyncio.wait_for(track.recv(), timeout=5)
            result["pli_sent"] = sent
    except ViewerFailure as e:
        result["error"] = str(e)
    except Exception as e:  # report anything else in the JSON too, with its type
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if window is not None:
            result.update(window.report())
        if LOSS is not None:
            LOSS.armed = False
            result["loss"] = LOSS.report()
        if session_url:
            try:
                async with asyncio.timeout(10):
                    async with http.delete(session_url, headers=headers) as resp:
                        result["delete_status"] = resp.status
            except Exception as e:
                result["delete_status"] = None
                result.setdefault("error", f"DELETE {session_url} failed: {type(e).__name__}: {e}")
        if pc is not None:
            try:
                await asyncio.wait_for(pc.close(), timeout=5)
            except Exception:
                pass

    errors = []
    if args.expect_width and result.get("width") not in (None, args.expect_width):
        errors.append(f"width {result.get('width')} != expected {args.expect_width}")
    if args.expect_height and result.get("height") not in (None, args.expect_height):
        errors.append(f"height {result.get('height')} != expected {args.expect_height}")
    if errors:
        result["expect_errors"] = errors
    return result


class LossInjector:
    """Simulates loss on the wire: drops the first arrival of every Nth RTP packet (after the
    first frame) before SRTP sees it, so aiortc NACKs it as it would a packet lost in the network.
    A later arrival of the same sequence number is the node's retransmission; it is let through
    and counted. (Dropping after SRTP would not do: SRTP's replay check would then reject the
    retransmission.)"""

    def __init__(self, every: int):
        self.every = every
        self.dropped: set[int] = set()
        self.recovered: set[int] = set()
        self.armed = False

    def install(self) -> None:
        import pylibsrtp
        from aiortc import rtcdtlstransport

        real_session = rtcdtlstransport.Session
        injector = self

        class LossySession:
            def __init__(self, policy):
                self._session = real_session(policy)

            def unprotect(self, data: bytes) -> bytes:
                seq = int.from_bytes(data[2:4], "big")  # the RTP header is not encrypted
                if injector.armed and seq % injector.every == 0:
                    if seq not in injector.dropped:
                        injector.dropped.add(seq)
                        raise pylibsrtp.Error("injected loss")
                    injector.recovered.add(seq)
                return self._session.unprotect(data)

            def __getattr__(self, name):
                return getattr(self._session, name)

        rtcdtlstransport.Session = LossySession

    def report(self) -> dict:
        return {"dropped": len(self.dropped), "recovered": len(self.recovered)}


LOSS: LossInjector | None = None


async def run(args) -> list[dict]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=15)
    # --insecure: https to a node with a self-signed certificate (tests); no verification.
    connector = aiohttp.TCPConnector(ssl=False) if args.insecure else None
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        return list(await asyncio.gather(*(run_viewer(args, i, http) for i in range(args.viewers))))


async def offer_only() -> str:
    pc = await make_offer()
    sdp = pc.localDescription.sdp
    await asyncio.wait_for(pc.close(), timeout=5)
    return sdp


def human(r: dict) -> str:
    if "error" in r and not r.get("frames"):
        return f"viewer {r['viewer']}: FAILED: {r['error']}"
    lat = r.get("latency_ms", {})
    return (
        f"viewer {r['viewer']}: {r.get('frames')} frames ({r.get('fps')} fps) "
        f"{r.get('width')}x{r.get('height')}, first frame {r.get('first_frame_ms')} ms, "
        f"latency p50 {lat.get('p50')} p95 {lat.get('p95')} max {lat.get('max')} ms "
        f"({lat.get('count')} stamped, stamp_ok {r.get('stamp_ok')}), DELETE {r.get('delete_status')}"
        + (f", ERROR: {r['error']}" if "error" in r else "")
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the WHEP endpoint, e.g. http://127.0.0.1:8080/whep")
    p.add_argument("--seconds", type=float, default=5.0, help="decode window after the first frame")
    p.add_argument("--token", help="bearer token for the Authorization header")
    p.add_argument("--expect-width", type=int)
    p.add_argument("--expect-height", type=int)
    p.add_argument("--viewers", type=int, default=1, help="concurrent viewers in this process")
    p.add_argument("--drop-every", type=int, default=0, help="drop the first arrival of every Nth RTP packet (NACK test)")
    p.add_argument("--pli", type=int, default=0, help="after the window, send N RTCP PLIs 0.8 s apart")
    p.add_argument("--connect-timeout", type=float, default=15.0, help="POST to first frame, seconds")
    p.add_argument("--json", action="store_true", help="print JSON (a list when --viewers > 1)")
    p.add_argument("--offer-only", action="store_true", help="print a recvonly SDP offer and exit")
    p.add_argument("--verbose", action="store_true", help="aiortc/aioice debug logs on stderr")
    p.add_argument("--insecure", action="store_true", help="https: do not verify the node's certificate")
    p.add_argument("--progress", type=float, default=0.0, help="every N seconds, a JSON line of frames decoded on stderr")
    p.add_argument("--ready-file", help="create this file when the first frame is decoded (a readiness signal for tests)")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.viewers < 1:
        p.error("--seconds must be > 0 and --viewers >= 1")

    if args.verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    mode = use_loopback_candidates(args.url)
    if args.drop_every:
        global LOSS
        LOSS = LossInjector(args.drop_every)
        LOSS.install()

    if args.offer_only:
        sys.stdout.write(asyncio.run(asyncio.wait_for(offer_only(), timeout=20)))
        return 0

    overall = args.connect_timeout + args.seconds + 30
    try:
        results = asyncio.run(asyncio.wait_for(run(args), timeout=overall))
    except asyncio.TimeoutError:
        print(f"whep_client: gave up after {overall:.0f} s", file=sys.stderr)
        return 1
    for r in results:
        r["candidates"] = mode

    if args.json:
        print(json.dumps(results[0] if args.viewers == 1 else results))
    else:
        for r in results:
            print(human(r))
    failed = [r for r in results if "error" in r or "expect_errors" in r]
    for r in failed:
        print(f"whep_client: viewer {r['viewer']}: {r.get('error') or r.get('expect_errors')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
