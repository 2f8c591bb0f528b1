// A Chromium subscriber of a Janus VideoRoom (test code): Node.js does the signalling over Janus's
// HTTP REST API, the RTCPeerConnection is headless Chromium's (Debian's /usr/bin/chromium, driven
// by playwright-core). It waits until the room has a publisher (polls `listparticipants`),
// subscribes to it, waits for the first decoded frame, then samples the video inbound-rtp's
// framesDecoded over SECONDS.
//
//   node tests/e2e/janus/janus_view.mjs --janus http://127.0.0.1:8088/janus --room 1234 \
//        [--seconds 10] [--timeout 30]
//
// --timeout bounds each wait (a publisher in the room, the first decoded frame).
// Prints one JSON object: {framesDecoded, fps, frameWidth, frameHeight, packetsLost,
// packetsReceived, codec, candidatePair, publisher, first_frame_ms, window_s, ...}. Exit status
// 0 when frames were decoded, 1 otherwise (the JSON then has "error").
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CHROMIUM, FLAGS } from '../chromium.mjs';

function parseArgs(argv) {
  const opts = { janus: null, room: 1234, seconds: 10, timeout: 30 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--janus') opts.janus = argv[++i];
    else if (a === '--room') opts.room = Number(argv[++i]);
    else if (a === '--seconds') opts.seconds = Number(argv[++i]);
    else if (a === '--timeout') opts.timeout = Number(argv[++i]);
    else {
      console.error(`unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!opts.janus || !(opts.room > 0) || !(opts.seconds > 0) || !(opts.timeout > 0)) {
    console.error('usage: janus_view.mjs --janus URL --room N [--seconds S] [--timeout S]');
    process.exit(2);
  }
  return opts;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tid = () => Math.random().toString(36).slice(2, 12);

// A Janus session with one VideoRoom handle over the HTTP transport; events by long poll.
class Janus {
  constructor(base) {
    this.base = base.replace(/\/$/, '');
    this.events = [];
    this.closed = false;
    this.log = [];
  }

  async call(path, body) {
    const r = await fetch(this.base + path, {
      method: body ? 'POST' : 'GET',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(40000),
    });
    if (!r.ok) throw new Error(`Janus ${path}: HTTP ${r.status}`);
    const j = await r.json();
    if (j && j.janus === 'error') throw new Error(`Janus ${path}: ${j.error?.code} ${j.error?.reason}`);
    return j;
  }

  async open() {
    this.session = (await this.call('', { janus: 'create', transaction: tid() })).data.id;
    const att = await this.call(`/${this.session}`, {
      janus: 'attach',
      plugin: 'janus.plugin.videoroom',
      transaction: tid(),
    });
    this.handle = att.data.id;
    this.pump();
  }

  // Long polls in the background (this also keeps the session alive).
  async pump() {
    while (!this.closed) {
      try {
        const r = await this.call(`/${this.session}?maxev=10`);
        for (const ev of Array.isArray(r) ? r : [r]) {
          if (ev.janus !== 'keepalive') {
            this.events.push(ev);
            const vr = ev.plugindata?.data?.videoroom;
            this.log.push(vr ? `${ev.janus}:${vr}` : ev.janus);
          }
        }
      } catch (e) {
        if (!this.closed) this.log.push(`poll error: ${e.message}`);
        await sleep(200);
      }
    }
  }

  // A synchronous VideoRoom request; returns its plugin data.
  async request(body) {
    const msg = { janus: 'message', transaction: tid(), body };
    const r = await this.call(`/${this.session}/${this.handle}`, msg);
    const data = r.plugindata?.data ?? {};
    if (data.error_code) throw new Error(`VideoRoom ${body.request}: ${data.error_code} ${data.error}`);
    return data;
  }

  // An asynchronous one: waits for the event with its transaction.
  async send(body, jsep, timeoutMs) {
    const transaction = tid();
    const msg = { janus: 'message', transaction, body };
    if (jsep) msg.jsep = jsep;
    await this.call(`/${this.session}/${this.handle}`, msg);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.transaction === transaction && e.janus === 'event');
      if (i >= 0) {
        const ev = this.events.splice(i, 1)[0];
        const data = ev.plugindata?.data ?? {};
        if (data.error_code) {
          throw new Error(`VideoRoom ${body.request}: ${data.error_code} ${data.error}`);
        }
        return ev;
      }
      if (Date.now() > deadline) throw new Error(`no answer to ${body.request} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async close() {
    this.closed = true;
    if (this.session) {
      await this.call(`/${this.session}`, { janus: 'destroy', transaction: tid() }).catch(() => {});
    }
  }
}

// In the page: answer Janus's offer with Chromium's peer connection (window.pc).
async function answerOffer(offer) {
  const pc = new RTCPeerConnection();
  window.pc = pc;
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
  // No trickle: the answer carries every candidate.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
    setTimeout(resolve, 3000);
  });
  return pc.localDescription.sdp;
}

// In the page: the video inbound-rtp of window.pc.
async function inboundVideo() {
  const pc = window.pc;
  const report = await pc.getStats();
  let s = null;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && (r.kind === 'video' || r.mediaType === 'video')) s = r;
  });
  // The candidate pair in use, as "local -> remote".
  let pair = null;
  report.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) {
      const p = report.get(r.selectedCandidatePairId);
      const l = p && report.get(p.localCandidateId);
      const m = p && report.get(p.remoteCandidateId);
      if (l && m) pair = `${l.address}:${l.port} -> ${m.address}:${m.port}`;
    }
  });
  return {
    pair,
    framesDecoded: s?.framesDecoded ?? 0,
    framesPerSecond: s?.framesPerSecond ?? null,
    frameWidth: s?.frameWidth ?? null,
    frameHeight: s?.frameHeight ?? null,
    packetsLost: s?.packetsLost ?? 0,
    packetsReceived: s?.packetsReceived ?? 0,
    codec: s?.codecId ? report.get(s.codecId)?.mimeType ?? null : null,
    connectionState: pc.connectionState,
    at: performance.now(),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const out = { janus: opts.janus, room: opts.room, seconds: opts.seconds };
  const logs = [];
  const profile = mkdtempSync(join(tmpdir(), 'sutantra-janus-chromium-'));
  const janus = new Janus(opts.janus);
  let browser;
  let launching;
  const t0 = Date.now();
  try {
    launching = chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      env: { ...process.env, HOME: profile }, // crash dumps and caches stay out of the real HOME
      timeout: opts.timeout * 1000,
    });
    await janus.open();

    // A publisher in the room (polled).
    const deadline = Date.now() + opts.timeout * 1000;
    let publisher = null;
    let last = null;
    while (!publisher) {
      last = await janus.request({ request: 'listparticipants', room: opts.room });
      publisher = (last.participants || []).find((p) => p.publisher);
      if (publisher) break;
      if (Date.now() > deadline) {
        const seen = JSON.stringify(last);
        throw new Error(`no publisher in room ${opts.room} within ${opts.timeout} s: ${seen}`);
      }
      await sleep(100);
    }
    out.publisher = { id: publisher.id, display: publisher.display ?? null };
    out.publisher_ms = Date.now() - t0;

    browser = await launching;
    const page = await browser.newPage();
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.setContent('<!doctype html><title>Janus subscriber</title><body></body>');

    // Subscribe: Janus offers, Chromium answers, `start` hands the answer back.
    const attached = await janus.send(
      { request: 'join', ptype: 'subscriber', room: opts.room, streams: [{ feed: publisher.id }] },
      null,
      opts.timeout * 1000,
    );
    if (attached.jsep?.type !== 'offer') {
      throw new Error(`join: no offer from Janus: ${JSON.stringify(attached)}`);
    }
    out.offer_has_vp8 = /a=rtpmap:\d+ VP8\/90000/i.test(attached.jsep.sdp);
    const answer = await page.evaluate(answerOffer, attached.jsep.sdp);
    await janus.send({ request: 'start' }, { type: 'answer', sdp: answer }, opts.timeout * 1000);

    // The first decoded frame (polled).
    const frameDeadline = Date.now() + opts.timeout * 1000;
    let s0;
    for (;;) {
      s0 = await page.evaluate(inboundVideo);
      if (s0.framesDecoded > 0) break;
      if (Date.now() > frameDeadline) {
        const seen = JSON.stringify(s0);
        throw new Error(`no decoded frame within ${opts.timeout} s of subscribing: ${seen}`);
      }
      await sleep(50);
    }
    out.first_frame_ms = Date.now() - t0;

    // The measurement window.
    await page.waitForTimeout(opts.seconds * 1000);
    const s1 = await page.evaluate(inboundVideo);
    const elapsed = (s1.at - s0.at) / 1000;
    Object.assign(out, {
      framesDecoded: s1.framesDecoded,
      fps: Math.round(((s1.framesDecoded - s0.framesDecoded) / elapsed) * 100) / 100,
      frameWidth: s1.frameWidth,
      frameHeight: s1.frameHeight,
      packetsLost: s1.packetsLost,
      packetsReceived: s1.packetsReceived,
      statsFramesPerSecond: s1.framesPerSecond,
      codec: s1.codec,
      connectionState: s1.connectionState,
      candidatePair: s1.pair,
      window_s: Math.round(elapsed * 1000) / 1000,
    });
  } catch (e) {
    out.error = String(e && e.message ? e.message.split('\n')[0] : e);
    out.console = logs.slice(-20);
  } finally {
    out.janus_events = janus.log.slice(-20);
    await janus.close();
    if (!browser && launching) browser = await launching.catch(() => null);
    if (browser) await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
  process.exit(out.error ? 1 : 0);
}

main();
