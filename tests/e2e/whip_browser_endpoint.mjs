// A WHIP endpoint (RFC 9725) whose receiver is a real browser: headless Chromium, driven by
// Playwright, answers each offer with its own RTCPeerConnection, renders the track and sends
// Chromium's RTCP feedback, transport-wide congestion control (TWCC) included. The tests use it
// to check that the node's publisher interoperates with a browser-grade receiver and that TWCC
// feedback reaches its congestion controller.
//
//   node tests/e2e/whip_browser_endpoint.mjs --port 8890 [--timeout 30]
//
//   POST   /whip            the offer (application/sdp) -> 201, Location /whip/<n>, the answer
//   DELETE /whip/<n>        closes that session -> 200
//   GET    /_control/stats  JSON: sessions, deletes, answer_has_transport_cc, and the last
//                           session's framesDecoded, frameWidth, frameHeight, packetsLost
//
// Prints {"listening": URL} once ready. Stops on SIGTERM/SIGINT.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CHROMIUM, FLAGS } from './chromium.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// In the page: answer one offer; the session is window.pcs[n].
async function answer(offer) {
  window.pcs = window.pcs || [];
  const pc = new RTCPeerConnection();
  const n = window.pcs.length;
  window.pcs.push(pc);
  pc.ontrack = (e) => {
    const v = document.createElement('video');
    v.muted = true;
    v.autoplay = true;
    v.srcObject = new MediaStream([e.track]);
    document.body.appendChild(v);
    v.play().catch(() => {});
  };
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  // No trickle in WHIP's basic mode: the answer carries every candidate.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
    setTimeout(resolve, 3000);
  });
  return { n, sdp: pc.localDescription.sdp };
}

// In the page: the last session's video inbound-rtp.
async function lastStats() {
  const pcs = window.pcs || [];
  const pc = pcs[pcs.length - 1];
  if (!pc) return {};
  const report = await pc.getStats();
  let s = null;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && (r.kind === 'video' || r.mediaType === 'video')) s = r;
  });
  return {
    connectionState: pc.connectionState,
    framesDecoded: s?.framesDecoded ?? 0,
    frameWidth: s?.frameWidth ?? null,
    frameHeight: s?.frameHeight ?? null,
    packetsLost: s?.packetsLost ?? 0,
  };
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function main() {
  const port = Number(arg('--port', '0'));
  const timeout = Number(arg('--timeout', '30')) * 1000;
  const profile = mkdtempSync(join(tmpdir(), 'sutantra-whip-chromium-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    env: { ...process.env, HOME: profile },
    timeout,
  });
  const page = await browser.newPage();
  await page.setContent('<!doctype html><title>WHIP endpoint</title><body></body>');
  const state = {
    sessions: 0,
    deletes: 0,
    answer_has_transport_cc: null,
    offer_extmap: [],
    answer_extmap: [],
    open: new Set(),
  };

  const server = createServer(async (req, res) => {
    try {
      if (req.method === 'POST' && req.url === '/whip') {
        if (!(req.headers['content-type'] || '').startsWith('application/sdp')) {
          res.writeHead(415).end('use Content-Type: application/sdp');
          return;
        }
        const offer = await readBody(req, 64 * 1024);
        const { n, sdp } = await page.evaluate(answer, offer);
        state.sessions += 1;
        state.open.add(n);
        state.answer_has_transport_cc = sdp.includes('transport-cc');
        state.offer_extmap = offer.split(/\r?\n/).filter((l) => l.startsWith('a=extmap') || l.includes('transport-cc'));
        state.answer_extmap = sdp.split(/\r?\n/).filter((l) => l.startsWith('a=extmap') || l.includes('transport-cc'));
        res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/whip/${n}` }).end(sdp);
      } else if (req.method === 'DELETE' && req.url.startsWith('/whip/')) {
        const n = Number(req.url.slice('/whip/'.length));
        if (!state.open.has(n)) {
          res.writeHead(404).end('no such session');
          return;
        }
        await page.evaluate((i) => window.pcs[i].close(), n);
        state.open.delete(n);
        state.deletes += 1;
        res.writeHead(200).end();
      } else if (req.method === 'GET' && req.url === '/_control/stats') {
        const s = await page.evaluate(lastStats);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(
          JSON.stringify({
            sessions: state.sessions,
            open: state.open.size,
            deletes: state.deletes,
            answer_has_transport_cc: state.answer_has_transport_cc,
            offer_extmap: state.offer_extmap,
            answer_extmap: state.answer_extmap,
            ...s,
          }),
        );
      } else {
        res.writeHead(404).end('not found');
      }
    } catch (e) {
      res.writeHead(500).end(String(e && e.message ? e.message : e));
    }
  });
  server.listen(port, '127.0.0.1', () => {
    console.log(JSON.stringify({ listening: `http://127.0.0.1:${server.address().port}/whip` }));
  });
  const stop = async () => {
    server.close();
    await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
