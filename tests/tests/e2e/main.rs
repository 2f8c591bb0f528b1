//! End-to-end tests of the `sutantra` binary with independent clients: one test binary with a
//! module per area (ripgrep style).
//!
//! - `admission`: aborted and silent WHEP clients cannot keep a viewer out; offer rate limits;
//!   a network listen address needs a token; the token in the page's URL fragment; CORS.
//! - `node`: start a node on a free loopback port and wait until `/healthz` is "ok"; raw HTTP.
//! - `clients`: the aiortc WHEP viewer (Python) and the Playwright/Chromium page viewer (Node.js).
//! - `whip`: publishing to an independent WHIP endpoint (`tests/e2e/whip_endpoint.py`): decode
//!   rate, re-publish after the endpoint restarts, 401 as a configuration error with backoff, REMB.
//! - `whep`: viewers decode the stream at full rate with readable latency stamps; sessions end
//!   on DELETE; the viewer limit answers 503.
//! - `http_errors`: bad input gets the contract's 4xx answers and does not hurt the node.
//! - `browser`: the node's own page plays in a real browser.
//! - `playout`: the playout-delay RTP header extension: answered when offered (not when off),
//!   applied by Chromium (frames leave its jitter buffer at once) at full rate, the page plays.
//! - `healthz`: `/healthz` fields and `/metrics` text.
//! - `cometbft`: the fake CometBFT RPC server (`tests/e2e/fake_cometbft.py`) and the CLI runner.
//! - `control`: field operations: the CLI against a running node's control socket, `check`.
//! - `console`: the serial console on a pseudo-terminal (CLI and daemon-hosted), completions.
//! - `janus`: WHIP publishing into a real SFU, Janus's VideoRoom (Debian's `janus`) behind a
//!   test-only WHIP bridge (`tests/e2e/janus/`), with headless Chromium subscribed through Janus
//!   at 30 fps, across a clean restart and a kill of Janus.
//! - `memory`: resident memory comes back within 2 MiB of the one-viewer figure after a churn of
//!   viewers (a third aborted), while a steady viewer keeps its 30 fps (`bench/churn.py`).
//! - `relay`: viewer nodes: a chain of relays (`--source whep:URL`) with the latency stamp read
//!   at every hop, the relay's CPU against the encoding node's, a viewer of a relay across its
//!   upstream's restart, 16 viewers on one relay.
//! - `reload`: `config set` / `config reload` / SIGHUP on a running node: live changes, a
//!   pipeline restart at a new size while a viewer stays connected, refused edits.
//! - `transport`: the HTTP transport: a slowloris flood from one address (connection caps,
//!   header timeouts, descriptors given back) while others are served; EMFILE on accept; HTTPS with
//!   `--tls-cert`/`--tls-key` for curl, Chromium and aiortc, a bad pair exits 2, SIGHUP reload.
//! - `config_golden`: `config validate` on `tests/golden/config/*.toml` against `.expected` text.
//! - `hostile`: a padded RPC server (100 pages of 4 MiB) against the node's memory and video, the
//!   WHIP token through a redirect to another origin, a damaged store or key with a chain, and
//!   no key or store without one.
//! - `snapshot`: `GET /snapshot.jpg` decoded by ffmpeg at the stream's size, the token, one encode
//!   per interval however often it is polled, `sutantra snapshot FILE` and `-`.
//! - `soak`: three minutes of everything at once (`tests/e2e/soak.py`), checked for growth.
//! - `faults`: `kill -9` during `config set` and key creation, wall-clock steps of an hour, a
//!   viewer that stops reading.
//! - `chain`: the light validator: `chain verify` over the upstream vectors, sync with skipping
//!   verification, restart, a lying server, a witness conflict, attestations, `kill -9`, and
//!   store-and-forward submission.
//!
//! The binary under test is `SUTANTRA_BIN` (default `<workspace>/target/release/sutantra`); the
//! clients need `scripts/setup.sh` to have run. Nodes run one at a time (see `node`).

mod admission;
mod board;
mod browser;
mod chain;
mod clients;
mod cometbft;
mod config_golden;
mod console;
mod control;
mod faults;
mod healthz;
mod hostile;
mod http_errors;
mod janus;
mod memory;
mod node;
mod package;
mod playout;
mod relay;
mod reload;
mod rpicam;
mod snapshot;
mod soak;
mod transport;
mod whep;
mod whip;
