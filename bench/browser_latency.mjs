// A Chromium viewer of any WHEP sender that reads the latency stamp from every frame it shows
// (bench/suite.py, phase `browser`; the same viewer for the node and for aiortc's sender).
//
//   node bench/browser_latency.mjs --url http://127.0.0.1:8080/whep --seconds 45 \
//        [--warmup 3] [--samples out.csv] [--timeout 60] [--no-hints] [--all-codecs] [--no-screencast]
//
// Playwright drives Debian's headless Chromium (tests/e2e/chromium.mjs, the e2e tests' launcher
// and flags, plus --allow-loopback-in-peer-connection: aiortc's sender has only a 127.0.0.1
// candidate). The page makes a recvonly VP8 offer (codec preference VP8 only, so both senders
// send the same codec), this script POSTs it to the WHEP URL (from Node.js, so no CORS is
// involved) and hands the answer back. By default the receiver gets jitterBufferTarget = 0 (or
// playoutDelayHint = 0), as the node's own page does; --no-hints leaves the browser's default.
//
// The stamp: the test pattern (and bench/peer_sender.py --stamp) draws the capture time, µs since
// the UNIX epoch, as 64 cells in rows 0..15 (bit 63 leftmost, white = 1; docs/http.md).
//
// Two readings of every frame:
// - requestVideoFrameCallback: for each presented frame the page draws the stamp rows of the
//   video into a canvas and decodes them, and keeps the callback's metadata: receiveTime (the
//   frame's last packet arrived), presentationTime (handed to the compositor) and
//   expectedDisplayTime (when Chromium expects it on screen).
// - On screen: a CDP screencast of the page (the compositor's output frames, each with its swap
//   time); after the window every captured frame is decoded (the video sits at the page's top
//   left, 640 CSS px wide) and a stamp's first swap is when it reached the screen. This is the
//   headline figure, `latency_ms`: expectedDisplayTime cannot be compared across senders, since
//   for frames Chromium renders at once (playout delay 0: no render time) it is the deadline of
//   the compositor's last begin-frame, which the screencast itself moves (measured 0-25 ms off),
//   while for smoothed frames it is one frame interval before the swap. --no-screencast keeps
//   the rVFC readings only (latency_ms is then stamp -> presentationTime).
//
// Prints one JSON line; with --samples also writes every frame of the window as CSV. Exit 0 when
// frames were measured, 1 otherwise ("error" in the JSON).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CHROMIUM, FLAGS } from '../tests/e2e/chromium.mjs';

// playwright-core is installed for the e2e tests (scripts/setup.sh): tests/e2e/node_modules.
const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const { chromium } = require('playwright-core');
// Playwright's own JPEG decoder (screencast frames are JPEG).
const { jpegjs } = require('playwright-core/lib/utilsBundle');

function usage(code) {
  console.error('usage: browser_latency.mjs --url WHEP_URL [--seconds S] [--warmup S] [--samples CSV] '
    + '[--timeout S] [--no-hints] [--all-codecs] [--no-screencast]');
  process.exit(code);
}

function parseArgs(argv) {
  const o = { url: null, seconds: 30, warmup: 3, samples: null, timeout: 60, hints: true, vp8only: true, screencast: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--url') o.url = argv[++i];
    else if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--samples') o.samples = argv[++i];
    else if (a === '--timeout') o.timeout = Number(argv[++i]);
    else if (a === '--no-hints') o.hints = false;
    else if (a === '--all-codecs') o.vp8only = false;
    else if (a === '--no-screencast') o.screencast = false;
    else if (a === '-h' || a === '--help') usage(0);
    else usage(2);
  }
  if (!o.url || !(o.seconds > 0) || !(o.warmup >= 0) || !(o.timeout > 0)) usage(2);
  return o;
}

// --- in the page ------------------------------------------------------------------------------

// Makes the connection and the <video>, returns the offer once ICE gathering is complete.
async function pageOffer({ hints, vp8only }) {
  const video = document.createElement('video');
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  video.style.cssText = 'display:block;width:640px';
  document.body.appendChild(video);
  const pc = new RTCPeerConnection({ iceServers: [] });
  const t = pc.addTransceiver('video', { direction: 'recvonly' });
  if (vp8only && t.setCodecPreferences && RTCRtpReceiver.getCapabilities) {
    const vp8 = RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => /\/vp8$/i.test(c.mimeType));
    if (vp8.length) t.setCodecPreferences(vp8);
  }
  window.hint = 'none';
  if (hints) {
    try {
      if ('jitterBufferTarget' in t.receiver) { t.receiver.jitterBufferTarget = 0; window.hint = 'jitterBufferTarget=0'; }
      else if ('playoutDelayHint' in t.receiver) { t.receiver.playoutDelayHint = 0; window.hint = 'playoutDelayHint=0'; }
    } catch (e) { window.hint = `failed: ${e}`; }
  }
  pc.ontrack = (ev) => {
    video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    video.play().catch(() => {});
  };
  window.pc = pc;
  window.video = video;
  window.samples = [];
  window.bad = 0;
  window.recording = false;
  window.firstFrameAt = null;

  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  // The stamp: 64 cells across rows 0..15; each cell judged by the mean luma of its inner part
  // (rows 2..13, two columns trimmed each side), as tests/e2e/whep_client.py decode_stamp does.
  function readStamp() {
    const w = video.videoWidth, h = video.videoHeight;
    const cell = Math.floor(w / 64);
    if (cell < 1 || h < 16) return null;
    canvas.width = w; canvas.height = 16;
    ctx.drawImage(video, 0, 0, w, 16, 0, 0, w, 16);
    const px = ctx.getImageData(0, 0, w, 16).data;
    const trim = cell > 4 ? 2 : 0;
    let value = 0n;
    for (let i = 0; i < 64; i++) {
      let sum = 0, n = 0;
      for (let y = 2; y < 14; y++) {
        for (let x = i * cell + trim; x < (i + 1) * cell - trim; x++) {
          const o = (y * w + x) * 4;
          sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
          n++;
        }
      }
      value = (value << 1n) | (sum / n > 128 ? 1n : 0n);
    }
    return Number(value); // µs since the epoch (< 2^53)
  }
  function onFrame(now, meta) {
    const origin = performance.timeOrigin;
    if (window.firstFrameAt === null) window.firstFrameAt = origin + now;
    if (window.recording) {
      const stampUs = readStamp();
      const display = origin + meta.expectedDisplayTime;
      if (stampUs === null || Math.abs(display - stampUs / 1000) > 10000) {
        window.bad++;
      } else {
        window.samples.push([
          stampUs,
          display,
          origin + meta.presentationTime,
          meta.receiveTime !== undefined ? origin + meta.receiveTime : NaN,
          origin + now,
          meta.presentedFrames,
        ]);
      }
    }
    video.requestVideoFrameCallback(onFrame);
  }
  video.requestVideoFrameCallback(onFrame);

  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
      });
    });
  }
  return pc.localDescription.sdp;
}

// The video inbound-rtp entry of getStats(), the fields the report uses.
async function pageStats() {
  const report = await window.pc.getStats();
  let r = null;
  report.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') r = s; });
  if (!r) return null;
  const keys = ['framesReceived', 'framesDecoded', 'framesDropped', 'framesPerSecond', 'frameWidth',
    'frameHeight', 'packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount',
    'jitterBufferDelay', 'jitterBufferTargetDelay', 'jitterBufferMinimumDelay', 'jitterBufferEmittedCount',
    'totalProcessingDelay', 'totalDecodeTime', 'totalAssemblyTime', 'freezeCount', 'totalFreezesDuration',
    'decoderImplementation', 'jitter'];
  const out = { at: performance.now(), connectionState: window.pc.connectionState };
  for (const k of keys) if (r[k] !== undefined) out[k] = r[k];
  return out;
}

// --- in Node.js -------------------------------------------------------------------------------

function pct(sorted, q) {
  if (!sorted.length) return null;
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

function summary(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const r2 = (x) => Math.round(x * 100) / 100;
  return {
    count: v.length, p50: r2(pct(v, 50)), p95: r2(pct(v, 95)), p99: r2(pct(v, 99)),
    mean: r2(v.reduce((a, b) => a + b, 0) / v.length), min: r2(v[0]), max: r2(v[v.length - 1]),
  };
}

// The extmap id an SDP gives the playout-delay extension in its video section, or null.
function playoutDelayId(sdp) {
  const m = /a=extmap:(\d+)(?:\/\w+)? http:\/\/www\.webrtc\.org\/experiments\/rtp-hdrext\/playout-delay/.exec(sdp || '');
  return m ? Number(m[1]) : null;
}

function perFrame(s0, s1, key, countKey) {
  if (!s0 || !s1 || s1[key] === undefined || !(s1[countKey] > s0[countKey])) return null;
  return Math.round(((s1[key] - s0[key]) / (s1[countKey] - s0[countKey])) * 1e5) / 100; // ms
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const out = { url: o.url, seconds: o.seconds, warmup_s: o.warmup };
  const logs = [];
  const profile = mkdtempSync(join(tmpdir(), 'sutantra-bench-chromium-'));
  let browser, location = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...FLAGS, '--allow-loopback-in-peer-connection', '--disable-background-timer-throttling',
        '--disable-renderer-backgrounding'],
      env: { ...process.env, HOME: profile },
      timeout: o.timeout * 1000,
    });
    out.browser = browser.version();
    const page = await browser.newPage({ viewport: { width: 640, height: 480 } });
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.setContent('<!doctype html><html><body style="margin:0;background:#000"></body></html>');

    const offer = await page.evaluate(pageOffer, { hints: o.hints, vp8only: o.vp8only });
    out.offer_playout_delay_id = playoutDelayId(offer);
    const t0 = Date.now();
    let resp;
    for (;;) { // the sender may still be starting: retry until it answers, within the timeout
      try {
        resp = await fetch(o.url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
        if (resp.status !== 503) break;
      } catch (e) {
        if (Date.now() - t0 > o.timeout * 1000) throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const answer = await resp.text();
    if (resp.status !== 201 && resp.status !== 200) throw new Error(`WHEP POST: ${resp.status} ${answer.slice(0, 300)}`);
    location = resp.headers.get('location');
    out.answer_playout_delay_id = playoutDelayId(answer);
    out.hint = await page.evaluate(() => window.hint);
    const posted = Date.now();
    await page.evaluate((sdp) => window.pc.setRemoteDescription({ type: 'answer', sdp }), answer);
    await page.waitForFunction(() => window.firstFrameAt !== null, null, { polling: 20, timeout: o.timeout * 1000 });
    out.post_to_first_frame_ms = Math.round((await page.evaluate(() => window.firstFrameAt)) - posted);

    // The screencast: every output frame of the page with its swap time (s since the epoch),
    // kept as JPEG and decoded after the window.
    const shots = [];
    let cdp = null;
    if (o.screencast) {
      cdp = await page.context().newCDPSession(page);
      cdp.on('Page.screencastFrame', (f) => {
        shots.push([f.metadata.timestamp * 1000, f.data]);
        cdp.send('Page.screencastFrameAck', { sessionId: f.sessionId }).catch(() => {});
      });
      await cdp.send('Page.startScreencast', { format: 'jpeg', quality: 95, everyNthFrame: 1 });
    }
    await page.waitForTimeout(o.warmup * 1000);
    const s0 = await page.evaluate(pageStats);
    await page.evaluate(() => { window.recording = true; });
    await page.waitForTimeout(o.seconds * 1000);
    await page.evaluate(() => { window.recording = false; });
    const s1 = await page.evaluate(pageStats);
    if (cdp) await cdp.send('Page.stopScreencast').catch(() => {});
    const rows = await page.evaluate(() => window.samples);
    const videoWidth = await page.evaluate(() => window.video.videoWidth);
    out.bad_stamps = await page.evaluate(() => window.bad);
    if (!s1) throw new Error('no video inbound-rtp in getStats()');

    // Each stamp's first swap. The video is 640 CSS px wide at the top left: cells are 10 px.
    const swapOf = new Map();
    const scale = 640 / (videoWidth || 640);
    for (const [at, data] of shots) {
      const img = jpegjs.decode(Buffer.from(data, 'base64'), { useTArray: true });
      const y0 = Math.round(2 * scale), y1 = Math.max(y0 + 1, Math.round(14 * scale));
      let value = 0n;
      for (let i = 0; i < 64; i++) {
        let sum = 0, n = 0;
        for (let y = y0; y < y1; y++) {
          for (let x = i * 10 + 2; x < i * 10 + 8; x++) {
            const p = (y * img.width + x) * 4;
            sum += 0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2];
            n++;
          }
        }
        value = (value << 1n) | (sum / n > 128 ? 1n : 0n);
      }
      const stamp = Number(value);
      if (!swapOf.has(stamp)) swapOf.set(stamp, at);
    }
    // rows: [stamp µs, expectedDisplay, presentation, receive, callback (ms since the epoch),
    // presentedFrames, swap]
    for (const r of rows) r.push(swapOf.has(r[0]) ? swapOf.get(r[0]) : NaN);
    out.screencast_frames = shots.length;
    out.frames_on_screen = rows.filter((r) => Number.isFinite(r[6])).length;

    const since = (i) => rows.map((r) => r[i] - r[0] / 1000);
    out.frames = rows.length;
    out.latency_source = o.screencast ? 'screencast swap' : 'presentationTime';
    out.latency_ms = summary(since(o.screencast ? 6 : 2)); // stamp -> on screen
    out.present_latency_ms = summary(since(2)); // stamp -> handed to the compositor
    out.expected_display_latency_ms = summary(since(1)); // stamp -> expectedDisplayTime
    out.stamp_to_receive_ms = summary(since(3)); // sender + network: stamp -> last packet in
    // the browser's own share: last packet in -> on screen (jitter buffer, decode, render)
    out.receive_to_screen_ms = summary(rows.map((r) => r[o.screencast ? 6 : 2] - r[3]));
    const first = rows[0], last = rows[rows.length - 1];
    if (rows.length > 1) {
      const span = (last[4] - first[4]) / 1000;
      out.fps_presented = Math.round(((last[5] - first[5]) / span) * 100) / 100;
    }
    const el = (s1.at - s0.at) / 1000;
    out.stats = {
      fps_decoded: Math.round(((s1.framesDecoded - s0.framesDecoded) / el) * 100) / 100,
      frames_dropped: (s1.framesDropped ?? 0) - (s0.framesDropped ?? 0),
      packets_lost: (s1.packetsLost ?? 0) - (s0.packetsLost ?? 0),
      nacks: (s1.nackCount ?? 0) - (s0.nackCount ?? 0),
      plis: (s1.pliCount ?? 0) - (s0.pliCount ?? 0),
      freezes: (s1.freezeCount ?? 0) - (s0.freezeCount ?? 0),
      jitter_buffer_delay_ms: perFrame(s0, s1, 'jitterBufferDelay', 'jitterBufferEmittedCount'),
      jitter_buffer_target_ms: perFrame(s0, s1, 'jitterBufferTargetDelay', 'jitterBufferEmittedCount'),
      processing_delay_ms: perFrame(s0, s1, 'totalProcessingDelay', 'framesDecoded'),
      decode_ms: perFrame(s0, s1, 'totalDecodeTime', 'framesDecoded'),
      size: `${s1.frameWidth}x${s1.frameHeight}`,
      decoder: s1.decoderImplementation,
      connection: s1.connectionState,
    };
    if (o.samples) {
      // Absolute times in ms since the epoch, then the latencies from the stamp.
      const lines = ['stamp_us,receive_ms,present_ms,expected_display_ms,swap_ms,stamp_to_receive_ms,'
        + 'stamp_to_present_ms,stamp_to_expected_display_ms,stamp_to_swap_ms,presented_frames'];
      const f = (x) => (Number.isFinite(x) ? x.toFixed(3) : '');
      for (const r of rows) {
        const s = r[0] / 1000;
        lines.push([r[0], f(r[3]), f(r[2]), f(r[1]), f(r[6]), f(r[3] - s), f(r[2] - s), f(r[1] - s), f(r[6] - s), r[5]].join(','));
      }
      writeFileSync(o.samples, lines.join('\n') + '\n');
      out.samples = o.samples;
    }
    if (!rows.length) throw new Error(`no frame with a readable stamp (${out.bad_stamps} unreadable)`);
  } catch (e) {
    out.error = String(e && e.message ? e.message.split('\n')[0] : e);
    out.console = logs.slice(-20);
  } finally {
    if (location) {
      const u = new URL(location, o.url);
      await fetch(u, { method: 'DELETE' }).catch(() => {});
    }
    if (browser) await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
  process.exit(out.error ? 1 : 0);
}

main();
