#!/usr/bin/env python3
"""A fake CometBFT JSON-RPC server for the light-validator end-to-end tests (independent of the node).

It serves light blocks over real HTTP in CometBFT's JSON encoding, from one of three sources:

  --chain FILE       a bisection vector (`primary.lite_blocks`, e.g. the upstream
                     bisection_single_peer/*.json, or a file written by --write-chain);
  --kvstore DIR      the recorded CometBFT v0.38 kvstore responses (commit_at_height_10, status,
                     genesis, broadcast_tx_sync) replayed as they are; /validators comes from the
                     genesis validators (the recording has no /validators response);
  --generate N       a chain of N blocks made here and signed with testgen-style keys (seed = the
                     validator id "n0", "n1", ... zero-padded to 32 bytes), whose validator set
                     rotates by half every --rotate-every heights so that skipping verification
                     has to bisect. Deterministic: two servers with the same arguments serve the
                     same chain (a primary and a witness). It can grow and fork (signed properly).

Why --generate exists: the upstream bisection vectors were recorded with Tendermint 0.33 (amino
encoding); under the protobuf rules of CometBFT >= 0.34 (tendermint-rs 0.41, and the codec here)
their header hashes, validator-set hashes and commit signatures do not verify, so no correct light
client can sync them. `test_fake_cometbft.py` shows this.

RPC (GET with query parameters, or JSON-RPC POST on `/`): /status, /commit?height=H,
/validators?height=H&page=P&per_page=N, /genesis, /health, /broadcast_tx_sync?tx=0x<hex>.
Control (on the RPC port under /_control/, and always on the control port, which stays up while
the RPC port is "down"):

  /_control/mode?value=MODE              ok; down: the RPC port stops listening (connection refused)
                                        and open connections are closed; reject: broadcast_tx_sync
                                        answers code 1 with a log; garbage: every answer is
                                        truncated JSON; huge: every answer carries 6 MiB of padding
                                        (with Content-Length); huge_chunked: the same, chunked, no
                                        length; wrongheight: /commit?height=H serves H-1
  /_control/tamper?height=H[&kind=sig|all|header]   serve H with the first commit signature's first
                                        byte flipped (sig), every signature flipped (all), or a
                                        different app_hash under the honest commit (header);
                                        height=0 clears every tamper
  /_control/fork?height=H               from H on, serve a conflicting branch (generated chains:
                                        re-signed by the validators, so it verifies; file chains:
                                        app_hash changed and block_id re-hashed, signatures stale);
                                        height=0 clears
  /_control/grow?n=K                    append K blocks (generated chains)
  /_control/txs                         {"accepted": [hex...], "rejected": [hex...]}
  /_control/requests[?clear=1]          every RPC request as "/path?query" in arrival order
  /_control/info                        chain id, heights, header hashes, mode

The first line on stdout is `listening on PORT`, the second `control on PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import time

from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cometbft_codec import (  # noqa: E402
    Key,
    address,
    deep,
    flip_signature,
    format_time,
    header_hash,
    parse_time,
    validator_set_hash,
    vote_sign_bytes,
)

EMPTY_HASH = hashlib.sha256(b"").hexdigest().upper()
CONSENSUS_HASH = "048091BC7DDC283F77BFBF91D73C44DA58C3DF8A9CBC867405D8B7F3DAADA22F"
STATUS_TEMPLATE = "status.json"  # from the recorded kvstore responses
MODES = ("ok", "down", "reject", "garbage", "huge", "huge_chunked", "wrongheight")
HUGE = 6 * 1024 * 1024  # above the node's default max_response_bytes (4 MiB)


class RpcError(Exception):
    def __init__(self, data: str, code: int = -32603, message: str = "Internal error", http: int = 500):
        super().__init__(data)
        self.code, self.message, self.data, self.http = code, message, data, http


# --- chains -----------------------------------------------------------------------------------------


class Chain:
    """Light blocks by height: {signed_header, validator_set, next_validator_set}."""

    chain_id: str
    blocks: dict[int, dict]

    def latest(self) -> int:
        return max(self.blocks)

    def earliest(self) -> int:
        return min(self.blocks)

    def block(self, height: int) -> dict:
        if height not in self.blocks:
            raise RpcError(
                f"height {height} must be less than or equal to the current blockchain height {self.latest()}"
                if height > self.latest()
                else f"height {height} is not available, lowest height is {self.earliest()}"
            )
        return self.blocks[height]

    def validators(self, height: int) -> list[dict]:
        if height == self.latest() + 1:
            return self.blocks[self.latest()]["next_validator_set"]["validators"]
        return self.block(height)["validator_set"]["validators"]

    def grow(self, n: int) -> None:
        raise RpcError("this chain cannot grow (only --generate chains can)", http=400)

    def fork_block(self, height: int) -> dict:
        """A conflicting block at `height` (file chains: re-hashed, signatures left stale)."""
        b = deep(self.blocks[height])
        h = b["signed_header"]["header"]
        h["app_hash"] = hashlib.sha256(b"fork" + str(height).encode()).hexdigest().upper()[:16]
        new = header_hash(h).hex().upper()
        b["signed_header"]["commit"]["block_id"]["hash"] = new
        return b


class FileChain(Chain):
    def __init__(self, path: str):
        with open(path) as f:
            doc = json.load(f)
        primary = doc["primary"]
        self.chain_id = primary["chain_id"]
        self.blocks = {int(b["signed_header"]["header"]["height"]): b for b in primary["lite_blocks"]}


class KvstoreChain(Chain):
    """The recorded v0.38 responses: one light block at height 10 (validators from genesis)."""

    def __init__(self, directory: str):
        self.dir = directory
        commit = self.load("commit_at_height_10")["result"]["signed_header"]
        genesis = self.load("genesis")["result"]["genesis"]
        vals = [
            {
                "address": v["address"],
                "pub_key": v["pub_key"],
                "voting_power": v["power"],
                "proposer_priority": "0",
            }
            for v in genesis["validators"]
        ]
        vset = {"validators": vals, "proposer": vals[0]}
        self.chain_id = genesis["chain_id"]
        height = int(commit["header"]["height"])
        self.blocks = {height: {"signed_header": commit, "validator_set": vset, "next_validator_set": vset}}

    def load(self, name: str) -> dict:
        with open(os.path.join(self.dir, "incoming", name + ".json")) as f:
            return json.load(f)


class GeneratedChain(Chain):
    """Blocks made and signed here. Height h's validator set is a window of `size` ids over
    n0, n1, ...; the window moves by size/2 every `rotate_every` heights."""

    def __init__(self, n: int, chain_id: str, size: int, rotate_every: int, genesis_time: int, power: int):
        self.chain_id = chain_id
        self.size, self.rotate_every, self.genesis_time, self.power = size, rotate_every, genesis_time, power
        self.keys: dict[str, Key] = {}
        self.blocks = {}
        self.fork_from: int | None = None
        self.fork_blocks: dict[int, dict] = {}
        for _ in range(n):
            self.blocks[self.next_height()] = self.make(self.next_height(), self.blocks, b"")

    def next_height(self) -> int:
        return (max(self.blocks) + 1) if self.blocks else 1

    def key(self, ident: str) -> Key:
        if ident not in self.keys:
            self.keys[ident] = Key(ident)
        return self.keys[ident]

    def set_at(self, height: int) -> dict:
        start = ((height - 1) // self.rotate_every) * max(1, self.size // 2)
        vals = []
        for i in range(start, start + self.size):
            k = self.key(f"n{i}")
            vals.append(
                {
                    "address": k.address,
                    "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(k.pk).decode()},
                    "voting_power": str(self.power),
                    "proposer_priority": "0",
                    "_id": f"n{i}",
                }
            )
        # CometBFT's order: voting power descending, then address ascending.
        vals.sort(key=lambda v: (-int(v["voting_power"]), v["address"]))
        return {"validators": vals}

    @staticmethod
    def public(vset: dict) -> dict:
        vals = [{k: v for k, v in val.items() if k != "_id"} for val in vset["validators"]]
        return {"validators": vals, "proposer": vals[0]}

    def make(self, height: int, blocks: dict[int, dict], tag: bytes) -> dict:
        vset, nset = self.set_at(height), self.set_at(height + 1)
        prev = blocks.get(height - 1)
        last_block_id = (
            deep(prev["signed_header"]["commit"]["block_id"]) if prev else {"hash": "", "parts": {"total": 0, "hash": ""}}
        )
        secs = self.genesis_time + height
        header = {
            "version": {"block": "11", "app": "1"},
            "chain_id": self.chain_id,
            "height": str(height),
            "time": format_time(secs, 250_000_000),
            "last_block_id": last_block_id,
            "last_commit_hash": hashlib.sha256(b"last-commit" + tag + str(height).encode()).hexdigest().upper()
            if prev
            else EMPTY_HASH,
            "data_hash": EMPTY_HASH,
            "validators_hash": validator_set_hash(vset["validators"]).hex().upper(),
            "next_validators_hash": validator_set_hash(nset["validators"]).hex().upper(),
            "consensus_hash": CONSENSUS_HASH,
            "app_hash": hashlib.sha256(b"app" + tag + str(height).encode()).hexdigest().upper()[:16],
            "last_results_hash": EMPTY_HASH,
            "evidence_hash": EMPTY_HASH,
            "proposer_address": vset["validators"][0]["address"],
        }
        block_id = {
            "hash": header_hash(header).hex().upper(),
            "parts": {"total": 1, "hash": hashlib.sha256(b"parts" + tag + str(height).encode()).hexdigest().upper()},
        }
        sigs = []
        for i, v in enumerate(vset["validators"]):
            ts = format_time(secs, 500_000_000 + i * 1000)
            msg = vote_sign_bytes(self.chain_id, height, 0, block_id, ts)
            sigs.append(
                {
                    "block_id_flag": 2,
                    "validator_address": v["address"],
                    "timestamp": ts,
                    "signature": base64.b64encode(self.key(v["_id"]).sign(msg)).decode(),
                }
            )
        commit = {"height": str(height), "round": 0, "block_id": block_id, "signatures": sigs}
        return {
            "signed_header": {"header": header, "commit": commit},
            "validator_set": self.public(vset),
            "next_validator_set": self.public(nset),
        }

    def grow(self, n: int) -> None:
        for _ in range(n):
            h = self.next_height()
            self.blocks[h] = self.make(h, self.blocks, b"")
        if self.fork_from is not None:
            self.extend_fork()

    def set_fork(self, height: int | None) -> None:
        self.fork_from = height
        self.fork_blocks = {}
        if height is not None:
            self.extend_fork()

    def extend_fork(self) -> None:
        branch = {h: b for h, b in self.blocks.items() if h < self.fork_from}
        branch.update(self.fork_blocks)
        for h in range(self.fork_from, self.latest() + 1):
            if h not in self.fork_blocks:
                self.fork_blocks[h] = branch[h] = self.make(h, branch, b"fork")

    def fork_block(self, height: int) -> dict:
        return self.fork_blocks[height]


def write_chain(chain: Chain, path: str) -> None:
    """The chain as a bisection-format file (trust root = its first block)."""
    first = chain.blocks[chain.earliest()]
    doc = {
        "description": f"generated by fake_cometbft.py: {len(chain.blocks)} blocks",
        "trust_options": {
            "period": str(20 * 365 * 86400 * 10**9),
            "height": str(chain.earliest()),
            "hash": first["signed_header"]["commit"]["block_id"]["hash"],
            "trust_level": {"numerator": "1", "denominator": "3"},
        },
        "primary": {"chain_id": chain.chain_id, "lite_blocks": [chain.blocks[h] for h in sorted(chain.blocks)]},
        "witnesses": [],
        "height_to_verify": str(chain.latest()),
        "now": format_time(int(time.time())),
        "expected_output": "no error",
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


# --- the server --------------------------------------------------------------------------------------


def param(request: dict, name: str, default: str | None = None) -> str | None:
    v = request.get(name)
    if v is None:
        return default
    return v.strip('"')


def int_param(request: dict, name: str, default: int | None = None) -> int | None:
    v = param(request, name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise RpcError(f"error converting {name}: {v!r} is not an integer", code=-32602, message="Invalid params")


def decode_tx(raw: str) -> bytes:
    if raw.startswith("0x") or raw.startswith("0X"):
        return bytes.fromhex(raw[2:])
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].encode()
    return base64.b64decode(raw)


class Server:
    def __init__(self, args, chain: Chain):
        self.args, self.chain = args, chain
        self.mode = "ok"
        self.tampers: dict[int, str] = {}
        self.file_fork_from: int | None = None
        self.accepted: list[bytes] = []
        self.rejected: list[bytes] = []
        self.requests: list[str] = []
        self.kvstore = args.kvstore
        self.port = args.port
        self.site: web.TCPSite | None = None
        self.runner: web.AppRunner | None = None

    # -- what a height serves --
    def light_block(self, height: int) -> dict:
        forked = (
            isinstance(self.chain, GeneratedChain)
            and self.chain.fork_from is not None
            and height >= self.chain.fork_from
        ) or (self.file_fork_from is not None and height >= self.file_fork_from and height in self.chain.blocks)
        b = self.chain.fork_block(height) if forked else self.chain.block(height)
        kind = self.tampers.get(height)
        if kind:
            b = deep(b)
            sh = b["signed_header"]
            sigs = [s for s in sh["commit"]["signatures"] if s.get("signature")]
            if kind == "sig":
                sigs[0]["signature"] = flip_signature(sigs[0]["signature"])
            elif kind == "all":
                for s in sigs:
                    s["signature"] = flip_signature(s["signature"])
            elif kind == "header":
                sh["header"]["app_hash"] = "00" * 8 if sh["header"]["app_hash"] != "00" * 8 else "11" * 8
        return b

    def status(self) -> dict:
        with open(os.path.join(self.args.status_template_dir, "incoming", STATUS_TEMPLATE)) as f:
            doc = json.load(f)
        if self.kvstore:
            return doc["result"]
        res = doc["result"]
        latest = self.chain.latest()
        lb = self.light_block(latest)
        eb = self.chain.blocks[self.chain.earliest()]
        res["node_info"]["network"] = self.chain.chain_id
        res["node_info"]["moniker"] = "fake-cometbft"
        si = res["sync_info"]
        si["latest_block_height"] = str(latest)
        si["latest_block_hash"] = lb["signed_header"]["commit"]["block_id"]["hash"]
        si["latest_app_hash"] = lb["signed_header"]["header"]["app_hash"]
        si["latest_block_time"] = lb["signed_header"]["header"]["time"]
        si["earliest_block_height"] = str(self.chain.earliest())
        si["earliest_block_hash"] = eb["signed_header"]["commit"]["block_id"]["hash"]
        si["earliest_app_hash"] = eb["signed_header"]["header"]["app_hash"]
        si["earliest_block_time"] = eb["signed_header"]["header"]["time"]
        si["catching_up"] = False
        return res

    # -- RPC methods (params: str -> str) --
    def rpc(self, method: str, request: dict) -> dict:
        if method == "status":
            return self.status()
        if method == "health":
            return {}
        if method == "genesis":
            if self.kvstore:
                return self.chain.load("genesis")["result"]
            first = self.chain.blocks[self.chain.earliest()]
            return {
                "genesis": {
                    "genesis_time": first["signed_header"]["header"]["time"],
                    "chain_id": self.chain.chain_id,
                    "initial_height": str(self.chain.earliest()),
                    "validators": [
                        {"address": v["address"], "pub_key": v["pub_key"], "power": v["voting_power"], "name": ""}
                        for v in first["validator_set"]["validators"]
                    ],
                    "app_hash": "",
                }
            }
        if method == "commit":
            height = int_param(request, "height", self.chain.latest())
            if self.mode == "wrongheight" and height - 1 in self.chain.blocks:
                height -= 1
            if self.kvstore and height in self.chain.blocks and not self.tampers:
                return self.chain.load("commit_at_height_10")["result"]
            return {"signed_header": self.light_block(height)["signed_header"], "canonical": True}
        if method == "validators":
            height = int_param(request, "height", self.chain.latest())
            page = int_param(request, "page", 1)
            per_page = int_param(request, "per_page", 30)
            per_page = max(1, min(per_page, 100))  # CometBFT: default 30, at most 100
            if height == self.chain.latest() + 1 or height not in self.chain.blocks:
                vals = self.chain.validators(height)
            else:
                vals = self.light_block(height)["validator_set"]["validators"]
            pages = max(1, (len(vals) + per_page - 1) // per_page)
            if page < 1 or page > pages:
                raise RpcError(f"page should be within [1, {pages}] range, given {page}", http=500)
            chunk = vals[(page - 1) * per_page : page * per_page]
            return {"block_height": str(height), "validators": chunk, "count": str(len(chunk)), "total": str(len(vals))}
        if method == "broadcast_tx_sync":
            raw = request.get("tx")
            if raw is None:
                raise RpcError("missing required parameter tx", code=-32602, message="Invalid params")
            try:
                tx = decode_tx(raw)
            except ValueError as e:
                raise RpcError(f"error decoding tx: {e}", code=-32602, message="Invalid params")
            h = hashlib.sha256(tx).hexdigest().upper()
            if self.mode == "reject":
                self.rejected.append(tx)
                return {"code": 1, "codespace": "fake", "data": "", "hash": h, "log": "rejected by fake_cometbft (mode=reject)"}
            self.accepted.append(tx)
            if self.kvstore:
                res = self.chain.load("broadcast_tx_sync")["result"]
                res["hash"] = h
                return res
            return {"code": 0, "codespace": "", "data": "", "hash": h, "log": ""}
        raise RpcError(f"method {method!r} not found", code=-32601, message="Method not found", http=404)

    async def handle_get(self, request: web.Request) -> web.Response:
        method = request.path.strip("/")
        self.requests.append(request.path_qs)
        return await self.answer(method, dict(request.query), -1, request)

    async def handle_post(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            method, params, rid = body["method"], body.get("params") or {}, body.get("id", -1)
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"jsonrpc": "2.0", "id": -1, "error": {"code": -32700, "message": "Parse error", "data": ""}},
                status=500,
            )
        query = dict(params)
        if "tx" in query:  # JSON-RPC carries tx as base64
            query["tx"] = "0x" + base64.b64decode(query["tx"]).hex()
        query = {k: str(v) for k, v in query.items()}
        self.requests.append(str(request.rel_url.with_path("/" + method).with_query(query)))
        return await self.answer(method, query, rid, request)

    async def answer(self, method: str, request: dict, rid, http: web.Request) -> web.StreamResponse:
        if self.mode == "garbage":
            return web.Response(body=b'{"jsonrpc":"2.0","id":-1,"result":{"signed_header":[1,2,', content_type="application/json")
        try:
            result = self.rpc(method, request)
            if self.mode == "huge":
                result = dict(result, padding="A" * HUGE)
            if self.mode == "huge_chunked":
                resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                resp.enable_chunked_encoding()
                await resp.prepare(http)
                body = json.dumps({"jsonrpc": "2.0", "id": rid, "result": dict(result, padding="")})
                try:
                    await resp.write(body[:-3].encode())  # up to the open padding string
                    chunk = b"A" * 65536
                    for _ in range(HUGE // len(chunk)):
                        await resp.write(chunk)
                    await resp.write(b'"}}')
                    await resp.write_eof()
                except (ConnectionError, RuntimeError):
                    pass  # the client hung up at its limit, as it should
                return resp
            return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result})
        except RpcError as e:
            return web.json_response(
                {"jsonrpc": "2.0", "id": rid, "error": {"code": e.code, "message": e.message, "data": e.data}},
                status=e.http,
            )

    # -- control --
    async def control(self, request: web.Request) -> web.Response:
        what = request.match_info["what"]
        try:
            out = await self.control_op(what, request)
        except (RpcError, ValueError, KeyError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response(out)

    async def control_op(self, what: str, request: web.Request) -> dict:
        q = request.query
        if what == "mode":
            value = q["value"]
            if value not in MODES:
                raise ValueError(f"mode {value!r}: one of {', '.join(MODES)}")
            old, self.mode = self.mode, value
            if value == "down" and old != "down":
                await self.stop_rpc()
            elif value != "down" and old == "down":
                await self.start_rpc()
            return {"mode": self.mode}
        if what == "tamper":
            height = int(q["height"])
            kind = q.get("kind", "sig")
            if kind not in ("sig", "all", "header"):
                raise ValueError(f"kind {kind!r}: sig, all or header")
            if height == 0:
                self.tampers.clear()
            else:
                self.tampers[height] = kind
            return {"tampers": {str(k): v for k, v in self.tampers.items()}}
        if what == "fork":
            height = int(q["height"])
            if isinstance(self.chain, GeneratedChain):
                self.chain.set_fork(height or None)
            else:
                self.file_fork_from = height or None
            return {"fork_from": height or None}
        if what == "grow":
            self.chain.grow(int(q.get("n", "1")))
            return {"latest_height": self.chain.latest()}
        if what == "txs":
            return {"accepted": [t.hex() for t in self.accepted], "rejected": [t.hex() for t in self.rejected]}
        if what == "requests":
            out = {"requests": list(self.requests)}
            if q.get("clear"):
                self.requests.clear()
            return out
        if what == "info":
            return {
                "chain_id": self.chain.chain_id,
                "earliest_height": self.chain.earliest(),
                "latest_height": self.chain.latest(),
                "hashes": {
                    str(h): self.light_block(h)["signed_header"]["commit"]["block_id"]["hash"] for h in sorted(self.chain.blocks)
                },
                "mode": self.mode,
                "port": self.port,
            }
        raise ValueError(f"unknown control {what!r}")

    # -- listening --
    @web.middleware
    async def down_guard(self, request: web.Request, handler):
        if self.mode == "down" and not request.path.startswith("/_control/"):
            # A kept-alive connection from before "down": drop it, as a dead server would.
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable(text="down")
        return await handler(request)

    def rpc_app(self) -> web.Application:
        app = web.Application(middlewares=[self.down_guard])
        app.router.add_get("/_control/{what}", self.control)
        app.router.add_post("/", self.handle_post)
        app.router.add_get("/{method}", self.handle_get)
        return app

    async def start_rpc(self) -> None:
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        for attempt in range(50):
            try:
                await self.site.start()
                break
            except OSError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self.port = self.site._server.sockets[0].getsockname()[1]  # noqa: SLF001 (the chosen port)

    async def stop_rpc(self) -> None:
        if self.site is not None:
            await self.site.stop()
            self.site = None


async def main_async(args, chain: Chain) -> None:
    srv = Server(args, chain)
    srv.runner = web.AppRunner(srv.rpc_app(), access_log=None, handle_signals=True)
    await srv.runner.setup()
    await srv.start_rpc()
    control = web.Application()
    control.router.add_get("/_control/{what}", srv.control)
    crunner = web.AppRunner(control, access_log=None)
    await crunner.setup()
    csite = web.TCPSite(crunner, "127.0.0.1", args.control_port)
    await csite.start()
    cport = csite._server.sockets[0].getsockname()[1]  # noqa: SLF001
    print(f"listening on {srv.port}", flush=True)
    print(f"control on {cport}", flush=True)
    print(f"chain {chain.chain_id} heights {chain.earliest()}..{chain.latest()}", flush=True)
    await asyncio.Event().wait()


def build_chain(args) -> Chain:
    if args.chain:
        return FileChain(args.chain)
    if args.kvstore:
        return KvstoreChain(args.kvstore)
    genesis = args.genesis_time
    if genesis is None:
        # Recent enough for any trusting period, old enough that growth stays in the past.
        genesis = (int(time.time()) // 3600) * 3600 - 2 * 3600
    elif not genesis.lstrip("-").isdigit():
        genesis = parse_time(genesis)[0]
    return GeneratedChain(args.generate, args.chain_id, args.validators, args.rotate_every, int(genesis), args.power)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    default_vectors = os.path.normpath(os.path.join(here, "..", "data", "cometbft"))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--chain", help="a bisection vector file (primary.lite_blocks)")
    src.add_argument("--kvstore", help="the recorded kvstore_v0_38 directory")
    src.add_argument("--generate", type=int, metavar="N", help="generate a chain of N blocks")
    p.add_argument("--chain-id", default="sutantra-e2e")
    p.add_argument("--validators", type=int, default=4, help="validators per set (generated chains)")
    p.add_argument("--rotate-every", type=int, default=3, help="heights between half-set rotations")
    p.add_argument("--power", type=int, default=10)
    p.add_argument("--genesis-time", help="unix seconds or RFC 3339 (default: the hour, 2 h ago)")
    p.add_argument("--write-chain", metavar="FILE", help="also write the chain as a bisection-format file")
    p.add_argument("--exit-after-write", action="store_true")
    p.add_argument(
        "--vectors",
        default=os.environ.get("COMETBFT_VECTORS", default_vectors),
        help="the vectors dir (for the recorded status.json template)",
    )
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    args = p.parse_args()
    args.status_template_dir = args.kvstore or os.path.join(args.vectors, "kvstore_v0_38")
    chain = build_chain(args)
    if args.write_chain:
        write_chain(chain, args.write_chain)
        if args.exit_after_write:
            return
    try:
        asyncio.run(main_async(args, chain))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
