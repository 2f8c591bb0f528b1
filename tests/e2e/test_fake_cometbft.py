"""Self-test of the fake CometBFT RPC server and its codec (no node needed).

Run: .venv/bin/python3 -m unittest discover -s tests/e2e -p 'test_*.py'

- the codec reproduces the upstream vectors (known header hash, the v0.38 kvstore commit and its
  signature, every single-step block), so the chains it generates are ones CometBFT would accept;
- the upstream bisection vectors do NOT verify under the protobuf rules (they are Tendermint 0.33,
  amino-encoded): that is why the e2e tests sync a generated chain;
- the server's /status, /commit, /validators and /broadcast_tx_sync answers have the shapes of the
  recorded v0.38 responses; /validators pages; tamper, fork, grow and down do what they say.
"""

import base64
import glob
import hashlib
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cometbft_codec import (  # noqa: E402
    header_hash,
    validator_set_hash,
    verify_commit_signatures,
)

VECTORS = os.environ.get("COMETBFT_VECTORS", os.path.normpath(os.path.join(HERE, "..", "data", "cometbft")))
KV = os.path.join(VECTORS, "kvstore_v0_38", "incoming")


def load(path):
    with open(path) as f:
        return json.load(f)


def shape(x):
    """The structure of a JSON value: key sets of objects, element shape of lists, type of scalars."""
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [shape(x[0])] if x else []
    return type(x).__name__


def verifies(block):
    sh = block["signed_header"]
    vals = block["validator_set"]["validators"]
    ok, bad = verify_commit_signatures(sh, vals)
    return (
        header_hash(sh["header"]).hex().upper() == sh["commit"]["block_id"]["hash"]
        and validator_set_hash(vals).hex().upper() == sh["header"]["validators_hash"]
        and validator_set_hash(block["next_validator_set"]["validators"]).hex().upper()
        == sh["header"]["next_validators_hash"]
        and bad == 0
        and ok == len(vals)
    )


@unittest.skipUnless(os.path.isdir(VECTORS), f"vectors not found at {VECTORS}")
class Codec(unittest.TestCase):
    def test_known_header_hash(self):
        h = load(os.path.join(VECTORS, "serialization", "header_with_known_hash.json"))
        self.assertEqual(
            header_hash(h).hex().upper(), "F30A71F2409FB15AACAEDB6CC122DFA2525BEE9CAE521721B06BFDCA291B8D56"
        )

    def test_kvstore_commit_at_height_10(self):
        sh = load(os.path.join(KV, "commit_at_height_10.json"))["result"]["signed_header"]
        gen = load(os.path.join(KV, "genesis.json"))["result"]["genesis"]["validators"]
        vals = [{"address": v["address"], "pub_key": v["pub_key"], "voting_power": v["power"]} for v in gen]
        self.assertEqual(header_hash(sh["header"]).hex().upper(), sh["commit"]["block_id"]["hash"])
        self.assertEqual(validator_set_hash(vals).hex().upper(), sh["header"]["validators_hash"])
        self.assertEqual(verify_commit_signatures(sh, vals), (1, 0))

    def test_single_step_blocks(self):
        n = 0
        for path in sorted(glob.glob(os.path.join(VECTORS, "single_step", "*.json"))):
            for step in load(path)["input"]:
                sh = step["block"]["signed_header"]
                self.assertEqual(header_hash(sh["header"]).hex().upper(), sh["commit"]["block_id"]["hash"], path)
                if step["verdict"] == "SUCCESS":
                    ok, bad = verify_commit_signatures(sh, step["block"]["validator_set"]["validators"])
                    self.assertEqual(bad, 0, path)
                    self.assertGreater(ok, 0, path)
                n += 1
        self.assertEqual(n, 86)  # 32 files

    def test_upstream_bisection_vectors_are_pre_protobuf(self):
        d = load(os.path.join(VECTORS, "bisection_single_peer", "_happy_path.json"))
        for b in d["primary"]["lite_blocks"]:
            sh = b["signed_header"]
            self.assertNotEqual(header_hash(sh["header"]).hex().upper(), sh["commit"]["block_id"]["hash"])
            self.assertEqual(verify_commit_signatures(sh, b["validator_set"]["validators"])[0], 0)


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fake_cometbft.py"), "--vectors", VECTORS, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline()
        second = self.proc.stdout.readline()
        if not first.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"fake_cometbft.py did not start: {first!r} {self.proc.stderr.read()}")
        self.port = int(first.split()[-1])
        self.cport = int(second.split()[-1])

    def get(self, path, port=None):
        url = f"http://127.0.0.1:{port or self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def control(self, path):
        status, body = self.get("/_control/" + path, self.cport)
        assert status == 200, body
        return body

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@unittest.skipUnless(os.path.isdir(VECTORS), f"vectors not found at {VECTORS}")
class Generated(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--generate", "11", "--genesis-time", str(int(time.time()) - 3600))

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def block(self, h):
        status, body = self.srv.get(f"/commit?height={h}")
        self.assertEqual(status, 200, body)
        vals = self.validators(h)
        nvals = self.validators(h + 1)
        return {
            "signed_header": body["result"]["signed_header"],
            "validator_set": {"validators": vals},
            "next_validator_set": {"validators": nvals},
        }

    def validators(self, h):
        out, page = [], 1
        while True:
            status, body = self.srv.get(f"/validators?height={h}&page={page}&per_page=100")
            self.assertEqual(status, 200, body)
            out += body["result"]["validators"]
            if len(out) >= int(body["result"]["total"]):
                return out
            page += 1

    def test_shapes_match_the_recorded_responses(self):
        status, st = self.srv.get("/status")
        self.assertEqual(status, 200)
        self.assertEqual(shape(st["result"]), shape(load(os.path.join(KV, "status.json"))["result"]))
        self.assertEqual(st["result"]["sync_info"]["latest_block_height"], "11")
        _, c = self.srv.get("/commit?height=11")
        self.assertEqual(shape(c["result"]), shape(load(os.path.join(KV, "commit_at_height_10.json"))["result"]))
        self.assertEqual(set(c), {"jsonrpc", "id", "result"})
        _, tx = self.srv.get("/broadcast_tx_sync?tx=0x" + b"hello".hex())
        self.assertEqual(shape(tx["result"]), shape(load(os.path.join(KV, "broadcast_tx_sync.json"))["result"]))
        self.assertEqual(tx["result"]["hash"], hashlib.sha256(b"hello").hexdigest().upper())
        self.assertIn(b"hello".hex(), self.srv.control("txs")["accepted"])
        status, err = self.srv.get("/commit?height=99")
        self.assertEqual(status, 500)
        self.assertIn("error", err)

    def test_chain_verifies_and_links(self):
        prev = None
        for h in range(1, 12):
            b = self.block(h)
            self.assertTrue(verifies(b), h)
            if prev:
                self.assertEqual(b["signed_header"]["header"]["last_block_id"], prev["signed_header"]["commit"]["block_id"])
                self.assertEqual(
                    prev["signed_header"]["header"]["next_validators_hash"], b["signed_header"]["header"]["validators_hash"]
                )
            prev = b
        # The set rotates: no validator of height 1 signs height 11 (skipping must bisect).
        first = {v["address"] for v in self.block(1)["validator_set"]["validators"]}
        last = {v["address"] for v in self.block(11)["validator_set"]["validators"]}
        self.assertFalse(first & last)

    def test_tamper_changes_a_signature(self):
        honest = self.block(5)
        self.srv.control("tamper?height=5&kind=sig")
        bad = self.block(5)
        self.srv.control("tamper?height=0")
        hs = [s["signature"] for s in honest["signed_header"]["commit"]["signatures"]]
        bs = [s["signature"] for s in bad["signed_header"]["commit"]["signatures"]]
        self.assertNotEqual(hs[0], bs[0])
        self.assertEqual(hs[1:], bs[1:])
        self.assertEqual(
            sum(a != b for a, b in zip(base64.b64decode(hs[0]), base64.b64decode(bs[0]))), 1, "exactly one byte"
        )
        self.assertFalse(verifies(bad))
        self.assertTrue(verifies(self.block(5)))
        self.srv.control("tamper?height=5&kind=header")
        swapped = self.block(5)
        self.srv.control("tamper?height=0")
        self.assertNotEqual(
            header_hash(swapped["signed_header"]["header"]).hex().upper(),
            swapped["signed_header"]["commit"]["block_id"]["hash"],
        )


@unittest.skipUnless(os.path.isdir(VECTORS), f"vectors not found at {VECTORS}")
class GrowForkDownPaging(unittest.TestCase):
    def test_fork_is_signed_and_conflicting(self):
        genesis = str(int(time.time()) - 3600)
        a = Server("--generate", "5", "--genesis-time", genesis)
        b = Server("--generate", "5", "--genesis-time", genesis)
        try:
            self.assertEqual(a.control("info")["hashes"], b.control("info")["hashes"], "deterministic")
            b.control("fork?height=6")
            a.control("grow?n=2")
            b.control("grow?n=2")
            ha, hb = a.control("info")["hashes"], b.control("info")["hashes"]
            self.assertEqual([ha[str(h)] for h in range(1, 6)], [hb[str(h)] for h in range(1, 6)])
            self.assertNotEqual(ha["6"], hb["6"])
            self.assertNotEqual(ha["7"], hb["7"])
            g = Generated()
            g.srv = b
            for h in (6, 7):
                self.assertTrue(verifies(g.block(h)), f"forked block {h} is properly signed")
        finally:
            a.close()
            b.close()

    def test_validators_are_paged_by_100(self):
        s = Server("--generate", "2", "--validators", "150", "--genesis-time", str(int(time.time()) - 3600))
        try:
            _, p1 = s.get("/validators?height=2&page=1&per_page=100")
            _, p2 = s.get("/validators?height=2&page=2&per_page=100")
            self.assertEqual((p1["result"]["count"], p1["result"]["total"]), ("100", "150"))
            self.assertEqual((p2["result"]["count"], p2["result"]["total"]), ("50", "150"))
            status, _ = s.get("/validators?height=2&page=3&per_page=100")
            self.assertEqual(status, 500)
            g = Generated()
            g.srv = s
            self.assertTrue(verifies(g.block(2)))
        finally:
            s.close()

    def test_down_refuses_connections_and_comes_back_on_the_same_port(self):
        s = Server("--generate", "2", "--genesis-time", str(int(time.time()) - 3600))
        try:
            s.control("mode?value=down")
            with self.assertRaises(urllib.error.URLError):
                s.get("/status")
            s.control("mode?value=ok")
            self.assertEqual(s.get("/status")[0], 200)
            s.control("mode?value=reject")
            _, r = s.get("/broadcast_tx_sync?tx=0x00")
            self.assertNotEqual(r["result"]["code"], 0)
            self.assertEqual(s.control("txs")["rejected"], ["00"])
        finally:
            s.close()


@unittest.skipUnless(os.path.isdir(VECTORS), f"vectors not found at {VECTORS}")
class Kvstore(unittest.TestCase):
    def test_replays_the_recording(self):
        s = Server("--kvstore", os.path.join(VECTORS, "kvstore_v0_38"))
        try:
            _, c = s.get("/commit?height=10")
            self.assertEqual(c["result"], load(os.path.join(KV, "commit_at_height_10.json"))["result"])
            _, st = s.get("/status")
            self.assertEqual(st["result"], load(os.path.join(KV, "status.json"))["result"])
            _, v = s.get("/validators?height=10")
            self.assertEqual(v["result"]["total"], "1")
            sh = c["result"]["signed_header"]
            self.assertEqual(validator_set_hash(v["result"]["validators"]).hex().upper(), sh["header"]["validators_hash"])
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
