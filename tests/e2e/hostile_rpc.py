#!/usr/bin/env python3
"""A hostile CometBFT JSON-RPC server for the node's end-to-end tests (independent of the node).

It plays an RPC server that wants the node to run out of memory: every answer is padded with junk
the light client does not use, and the validator set it announces is as large as CometBFT allows,
spread over many pages, each of them big. The node must read all of it within its byte budget
(`chain.max_response_bytes`, one budget for all pages of a set), keep none of the padding, report
the error, and keep its video going.

    /status                       a plausible status for chain `dockerchain` (the recorded kvstore
                                  one), padded
    /commit?height=H              the recorded kvstore commit at height 10, re-labelled H, with
                                  padding inside the header, in a signature and around the result
    /validators?height=H&page=P   page P of --pages pages; total = 100 * pages validators; each
                                  page about --page-mib MiB: 100 validators, each carrying an
                                  unknown member `padding`, an array of zeros (a generic JSON tree
                                  of it would be ~16 times its size in memory)
    /_control/stats               JSON: requests (by path), pages_served, bytes_sent

Bodies are sent chunked (no Content-Length), so the node cannot refuse them from a header: it has
to read and cut. `--content-length` sends the length instead.

    hostile_rpc.py --port 0 --vectors tests/data/cometbft [--pages 100] [--page-mib 4]

The first line on stdout is `listening on PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys

from aiohttp import web

CHUNK = 64 * 1024


class Hostile:
    def __init__(self, vectors: str, pages: int, page_mib: float, content_length: bool):
        incoming = os.path.join(vectors, "kvstore_v0_38", "incoming")
        with open(os.path.join(incoming, "status.json"), "rb") as f:
            self.status = json.load(f)
        with open(os.path.join(incoming, "commit_at_height_10.json"), "rb") as f:
            self.commit = json.load(f)
        self.pages = pages
        self.content_length = content_length
        # One validator's padding: an array of zeros, so the page reaches page_mib MiB.
        per_validator = int(page_mib * 1024 * 1024 / 100) - 200
        zeros = max(per_validator // 2, 1)
        self.pad = ("[" + ",".join(["0"] * zeros) + "]").encode()
        self.requests: dict[str, int] = {}
        self.pages_served = 0
        self.bytes_sent = 0

    def count(self, path: str) -> None:
        self.requests[path] = self.requests.get(path, 0) + 1

    async def send(self, request, parts: list[bytes]) -> web.StreamResponse:
        total = sum(len(p) for p in parts)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        if self.content_length:
            resp.content_length = total
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for part in parts:
                for i in range(0, len(part), CHUNK):
                    await resp.write(part[i : i + CHUNK])
                    self.bytes_sent += min(CHUNK, len(part) - i)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            # The node hung up once it had read its budget: the point of the exercise.
            pass
        return resp

    def junk(self, mib: float) -> bytes:
        return ('"' + "z" * int(mib * 1024 * 1024) + '"').encode()

    async def handle_status(self, request):
        self.count("/status")
        body = dict(self.status)
        body["padding"] = None
        head, tail = json.dumps(body).encode().split(b"null", 1)
        return await self.send(request, [head, self.junk(1), tail])

    async def handle_commit(self, request):
        self.count("/commit")
        height = request.query.get("height", "10")
        doc = json.loads(json.dumps(self.commit))
        sh = doc["result"]["signed_header"]
        sh["header"]["height"] = height
        sh["commit"]["height"] = height
        sh["header"]["padding"] = "PAD1"
        sh["commit"]["signatures"][0]["padding"] = "PAD2"
        doc["result"]["padding"] = "PAD3"
        pieces = re.split(rb'"PAD[123]"', json.dumps(doc).encode())
        parts: list[bytes] = [pieces[0]]
        for piece in pieces[1:]:
            parts += [self.junk(0.5), piece]
        return await self.send(request, parts)

    async def handle_validators(self, request):
        self.count("/validators")
        height = request.query.get("height", "10")
        page = max(1, int(request.query.get("page", "1")))
        total = 100 * self.pages
        self.pages_served += 1
        head = (
            '{"jsonrpc":"2.0","id":-1,"result":{"block_height":"%s","count":"100","total":"%d",'
            '"validators":[' % (height, total)
        ).encode()
        parts = [head]
        for i in range(100):
            n = (page - 1) * 100 + i
            v = (
                '%s{"address":"%040X","pub_key":{"type":"tendermint/PubKeyEd25519",'
                '"value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"voting_power":"10",'
                '"proposer_priority":"0","padding":' % ("," if i else "", n)
            ).encode()
            parts += [v, self.pad, b"}"]
        parts.append(b"]}}")
        return await self.send(request, parts)

    async def handle_stats(self, request):
        return web.json_response(
            {
                "requests": self.requests,
                "pages_served": self.pages_served,
                "bytes_sent": self.bytes_sent,
            }
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--vectors", required=True, help="the tests/data/cometbft folder")
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--page-mib", type=float, default=4.0)
    ap.add_argument("--content-length", action="store_true")
    args = ap.parse_args()
    h = Hostile(args.vectors, args.pages, args.page_mib, args.content_length)
    app = web.Application()
    app.router.add_get("/status", h.handle_status)
    app.router.add_get("/commit", h.handle_commit)
    app.router.add_get("/validators", h.handle_validators)
    app.router.add_get("/_control/stats", h.handle_stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
