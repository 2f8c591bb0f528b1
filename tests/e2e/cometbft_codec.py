"""Just enough of CometBFT's hashing and signing rules, written from the spec, for the fake RPC server.

Independent of the node's code (no tendermint-rs): header hash, validator-set hash, vote sign bytes
(CanonicalVote, protobuf, length-delimited) and ed25519 signing with keys derived like
tendermint-rs testgen (seed = the validator id, zero-padded to 32 bytes). The self-test
(`test_fake_cometbft.py`) checks it against the upstream vectors: the known header hash, every
`block_id.hash` and `validators_hash` of the bisection vectors, and their commit signatures.

References: CometBFT types/block.go (Header.Hash), types/validator_set.go (Hash),
types/vote.go (VoteSignBytes), crypto/merkle (RFC 6962 tree), proto/cometbft/types/*.proto.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

# --- protobuf wire format ------------------------------------------------------------------------


def varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field: int, n: int) -> bytes:
    return b"" if n == 0 else varint(field << 3) + varint(n)


def f_bytes(field: int, b: bytes, always: bool = False) -> bytes:
    if not b and not always:
        return b""
    return varint((field << 3) | 2) + varint(len(b)) + b


def f_sfixed64(field: int, n: int) -> bytes:
    return b"" if n == 0 else varint((field << 3) | 1) + (n & ((1 << 64) - 1)).to_bytes(8, "little")


# --- merkle tree (RFC 6962 as CometBFT uses it) ---------------------------------------------------


def merkle_root(items: list[bytes]) -> bytes:
    if not items:
        return hashlib.sha256(b"").digest()
    if len(items) == 1:
        return hashlib.sha256(b"\x00" + items[0]).digest()
    k = 1
    while k * 2 < len(items):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(items[:k]) + merkle_root(items[k:])).digest()


# --- time -----------------------------------------------------------------------------------------

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_time(s: str) -> tuple[int, int]:
    """RFC 3339 → (unix seconds, nanos)."""
    m = _TIME.match(s)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    base = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3)
    off = 0
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        off = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    secs = int(base.replace(tzinfo=dt.timezone.utc).timestamp()) - off
    nanos = int((m.group(2) or "0").ljust(9, "0"))
    return secs, nanos


def format_time(secs: int, nanos: int = 0) -> str:
    base = dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        return f"{base}.{nanos:09d}".rstrip("0") + "Z"
    return base + "Z"


def timestamp_proto(s: str) -> bytes:
    secs, nanos = parse_time(s)
    return f_varint(1, secs) + f_varint(2, nanos)


# --- header hash ------------------------------------------------------------------------------------


def hexb(s: str | None) -> bytes:
    return bytes.fromhex(s) if s else b""


def part_set_header(block_id: dict) -> dict:
    return block_id.get("part_set_header") or block_id.get("parts") or {"total": 0, "hash": ""}


def block_id_proto(bid: dict | None) -> bytes:
    """types.BlockID (part_set_header is non-nullable, so always present)."""
    bid = bid or {}
    psh = part_set_header(bid)
    psh_bytes = f_varint(1, int(psh.get("total") or 0)) + f_bytes(2, hexb(psh.get("hash")))
    return f_bytes(1, hexb(bid.get("hash"))) + f_bytes(2, psh_bytes, always=True)


def header_hash(h: dict) -> bytes:
    """CometBFT Header.Hash(): the merkle root of the 14 proto-encoded fields."""
    version = h.get("version") or {}
    fields = [
        f_varint(1, int(version.get("block") or 0)) + f_varint(2, int(version.get("app") or 0)),
        f_bytes(1, h["chain_id"].encode()),
        f_varint(1, int(h["height"])),
        timestamp_proto(h["time"]),
        block_id_proto(h.get("last_block_id")),
    ]
    for key in (
        "last_commit_hash",
        "data_hash",
        "validators_hash",
        "next_validators_hash",
        "consensus_hash",
        "app_hash",
        "last_results_hash",
        "evidence_hash",
        "proposer_address",
    ):
        fields.append(f_bytes(1, hexb(h.get(key))))
    return merkle_root(fields)


# --- validator sets -------------------------------------------------------------------------------


def validator_set_hash(validators: list[dict]) -> bytes:
    leaves = []
    for v in validators:
        pk = base64.b64decode(v["pub_key"]["value"])
        leaves.append(f_bytes(1, f_bytes(1, pk)) + f_varint(2, int(v["voting_power"])))
    return merkle_root(leaves)


def address(pubkey: bytes) -> str:
    return hashlib.sha256(pubkey).digest()[:20].hex().upper()


# --- votes ------------------------------------------------------------------------------------------

PRECOMMIT = 2


def vote_sign_bytes(chain_id: str, height: int, round_: int, block_id: dict, timestamp: str) -> bytes:
    """CanonicalVote for a precommit for `block_id`, length-delimited (types/vote.go VoteSignBytes)."""
    psh = part_set_header(block_id)
    canonical_psh = f_varint(1, int(psh.get("total") or 0)) + f_bytes(2, hexb(psh.get("hash")))
    canonical_bid = f_bytes(1, hexb(block_id.get("hash"))) + f_bytes(2, canonical_psh, always=True)
    body = (
        f_varint(1, PRECOMMIT)
        + f_sfixed64(2, height)
        + f_sfixed64(3, round_)
        + f_bytes(4, canonical_bid, always=True)
        + f_bytes(5, timestamp_proto(timestamp), always=True)
        + f_bytes(6, chain_id.encode())
    )
    return varint(len(body)) + body


def verify_commit_signatures(signed_header: dict, validators: list[dict]) -> tuple[int, int]:
    """(valid, invalid) counts of the commit's COMMIT-flagged signatures (for the self-test)."""
    header, commit = signed_header["header"], signed_header["commit"]
    keys = {v["address"].upper(): base64.b64decode(v["pub_key"]["value"]) for v in validators}
    ok = bad = 0
    for sig in commit["signatures"]:
        if sig.get("block_id_flag") != 2:
            continue
        msg = vote_sign_bytes(
            header["chain_id"], int(commit["height"]), int(commit["round"]), commit["block_id"], sig["timestamp"]
        )
        try:
            Ed25519PublicKey.from_public_bytes(keys[sig["validator_address"].upper()]).verify(
                base64.b64decode(sig["signature"]), msg
            )
            ok += 1
        except (InvalidSignature, KeyError):
            bad += 1
    return ok, bad


# --- keys -------------------------------------------------------------------------------------------


class Key:
    """An ed25519 key whose seed is `id` zero-padded to 32 bytes (as tendermint-rs testgen does)."""

    def __init__(self, ident: str):
        seed = ident.encode()
        assert len(seed) <= 32
        self.sk = Ed25519PrivateKey.from_private_bytes(seed.ljust(32, b"\0"))
        self.pk = self.sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.address = address(self.pk)

    def sign(self, msg: bytes) -> bytes:
        return self.sk.sign(msg)


def flip_signature(sig_b64: str, byte: int = 0) -> str:
    raw = bytearray(base64.b64decode(sig_b64))
    raw[byte % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def deep(x):
    return copy.deepcopy(x)
