// A real browser viewer of the Sutantra node: Playwright drives Debian's headless Chromium to the
// node's own viewer page, waits until its <video> plays, and samples the page's RTCPeerConnection
// (the page exposes it as window.sutantraPc) over a window.
//
//   node tests/e2e/browser_view.mjs http://127.0.0.1:8080/ 5 [--screenshot out.png] [--timeout 30]
//   node tests/e2e/browser_view.mjs https://127.0.0.1:8443/ 5 --ignore-certificate-errors
//
// --ignore-certificate-errors: an https node with a self-signed test certificate.
//
// Prints one JSON object: {framesDecoded, fps, frameWidth, frameHeight, packetsLost,
// pageLatencyText, ...}. Exit status 0 when the video played, 1 otherwise (JSON has "error").
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CHROMIUM, FLAGS } from './chromium.mjs';

function parseArgs(argv) {
  const opts = { url: null, seconds: 5, screenshot: null, timeout: 30, insecure: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--screenshot') opts.screenshot = argv[++i];
    else if (a === '--timeout') opts.timeout = Number(argv[++i]);
    else if (a === '--seconds') opts.seconds = Number(argv[++i]);
    else if (a === '--url') opts.url = argv[++i];
    else if (a === '--ignore-certificate-errors') opts.insecure = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: browser_view.mjs URL [SECONDS] [--screenshot PATH] [--timeout S] [--ignore-certificate-errors]');
      process.exit(0);
    } else rest.push(a);
  }
  if (rest.length > 0 && !opts.url) opts.url = rest.shift();
  if (rest.length > 0) opts.seconds = Number(rest.shift());
  if (!opts.url || !(opts.seconds > 0) || !(opts.timeout > 0)) {
    console.error('usage: browser_view.mjs URL [SECONDS] [--screenshot PATH] [--timeout S] [--ignore-certificate-errors]');
    process.exit(2);
  }
  return opts;
}

// Runs in the page: the video inbound-rtp entry of window.sutantraPc.getStats().
async function inboundVideo() {
  const pc = window.sutantraPc;
  if (!pc) return { missing: 'window.sutantraPc is not set by the page' };
  const report = await pc.getStats();
  let found = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && (s.kind === 'video' || s.mediaType === 'video')) found = s;
  });
  if (!found) return { missing: 'no video inbound-rtp in getStats()' };
  return {
    framesDecoded: found.framesDecoded ?? 0,
    framesPerSecond: found.framesPerSecond ?? null,
    frameWidth: found.frameWidth ?? null,
    frameHeight: found.frameHeight ?? null,
    packetsLost: found.packetsLost ?? 0,
    packetsReceived: found.packetsReceived ?? 0,
    connectionState: pc.connectionState,
    at: performance.now(),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const out = { url: opts.url, seconds: opts.seconds };
  const logs = [];
  const profile = mkdtempSync(join(tmpdir(), 'sutantra-chromium-'));
  let browser;
  const t0 = Date.now();
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: opts.insecure ? [...FLAGS, '--ignore-certificate-errors'] : FLAGS,
      env: { ...process.env, HOME: profile }, // keeps crash dumps and caches out of the real HOME
      timeout: opts.timeout * 1000,
    });
    const page = await browser.newPage({
      viewport: { width: 1280, height: 800 },
      ignoreHTTPSErrors: opts.insecure,
    });
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));

    await page.goto(opts.url, { waitUntil: 'load', timeout: opts.timeout * 1000 });
    await page.waitForFunction(
      () => {
        const v = document.querySelector('video');
        return !!(v && !v.paused && v.readyState >= 2 && v.currentTime > 0 && v.videoWidth > 0);
      },
      null,
      { timeout: opts.timeout * 1000, polling: 50 },
    );
    out.playing_ms = Date.now() - t0;

    const s0 = await page.evaluate(inboundVideo);
    if (s0.missing) throw new Error(s0.missing);
    await page.waitForTimeout(opts.seconds * 1000);
    const s1 = await page.evaluate(inboundVideo);
    if (s1.missing) throw new Error(s1.missing);

    const elapsed = (s1.at - s0.at) / 1000;
    Object.assign(out, {
      framesDecoded: s1.framesDecoded,
      fps: Math.round(((s1.framesDecoded - s0.framesDecoded) / elapsed) * 100) / 100,
      frameWidth: s1.frameWidth,
      frameHeight: s1.frameHeight,
      packetsLost: s1.packetsLost,
      packetsReceived: s1.packetsReceived,
      statsFramesPerSecond: s1.framesPerSecond,
      connectionState: s1.connectionState,
      window_s: Math.round(elapsed * 1000) / 1000,
      pageLatencyText: await page.evaluate(() => {
        const el = document.getElementById('latency');
        return el ? el.textContent.trim() : null;
      }),
    });
    if (opts.screenshot) {
      await page.screenshot({ path: opts.screenshot, fullPage: true });
      out.screenshot = opts.screenshot;
    }
  } catch (e) {
    out.error = String(e && e.message ? e.message.split('\n')[0] : e);
    out.console = logs.slice(-20);
  } finally {
    if (browser) await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
  process.exit(out.error ? 1 : 0);
}

main();
