// The dashboard in Debian's headless Chromium, driven by puppeteer-core, with the test wallet
// (test-dist/test-signer.js, built beside the page and never served) injected: the chain chart is drawn, the audit log is
// served only once signed in and then verified against every anchor on chain (the verdict must
// be `--audit`; screenshot saved), and a vote cast from the page lands on chain and shows in
// the tally.
//
//   node test/browser.mjs --url http://127.0.0.1:PORT --proposal 0 --account //Charlie \
//     --ayes 2 --screenshot dashboard.png \
//     --audit 'verified against 2 anchors on chain, the latest covering 9 entries'

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    proposal: { type: 'string' },
    account: { type: 'string', default: '//Charlie' },
    ayes: { type: 'string' },
    screenshot: { type: 'string' },
    audit: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});
for (const name of ['url', 'proposal', 'ayes', 'screenshot', 'audit']) {
  if (!args[name]) throw new Error(`--${name} is required`);
}

const profile = mkdtempSync(join(tmpdir(), 'tclearn-chromium-'));
const browser = await puppeteer.launch({
  executablePath: args.chromium,
  headless: true,
  // As root, without GPU, and without the background traffic this closed network refuses.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
});
const step = (text) => console.log(`[browser] ${text}`);
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('console', (message) => console.log(`[page] ${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => console.log(`[page] error: ${error.message}`));
  const signer = readFileSync(new URL('../test-dist/test-signer.js', import.meta.url), 'utf8');
  await page.evaluateOnNewDocument(`window.TCLEARN_TEST_ACCOUNTS = ${JSON.stringify([args.account])};\n${signer}`);
  await page.goto(args.url, { waitUntil: 'domcontentloaded' });

  step('waiting for the chain chart');
  await page.waitForFunction(() => document.querySelectorAll('#chain-chart circle').length >= 2, { timeout: 30_000 });
  // The audit log is served to members only: before sign-in the page says so.
  await page.waitForFunction(() => document.querySelector('#audit-verdict')?.textContent.startsWith('sign in'), { timeout: 30_000 });

  step('connecting the wallet and signing in');
  await page.click('#connect');
  await page.waitForSelector('#account option', { timeout: 20_000 });
  await page.click('#sign-in');
  await page.waitForFunction(() => document.querySelector('#who').textContent.startsWith('signed in'), { timeout: 20_000 });

  step('checking the audit log against the anchors on chain');
  await page.waitForSelector('#audit-verdict:not(.muted)', { timeout: 30_000 });
  const verdict = await page.$eval('#audit-verdict', (e) => `${e.className}: ${e.textContent}`);
  step(`the page says: ${verdict}`);
  if (verdict !== `ok: ${args.audit}`) throw new Error(`the audit verdict should be "ok: ${args.audit}"`);
  await page.screenshot({ path: args.screenshot, fullPage: true });
  step(`screenshot: ${args.screenshot}`);

  step(`voting aye on proposal ${args.proposal}`);
  await page.click(`button[data-proposal="${args.proposal}"][data-aye="true"]`);
  await page.waitForFunction(
    (id, ayes) => document.querySelector(`#proposal-${id} .ayes`)?.textContent === ayes,
    { timeout: 90_000 },
    args.proposal,
    args.ayes,
  ).catch(async (error) => {
    throw new Error(`${error.message}; status: ${await page.$eval('#status', (e) => e.textContent)}`);
  });
  step(`the tally shows ${args.ayes} ayes`);
  await page.waitForSelector('#status.ok', { timeout: 30_000 });
  step(`the page says: ${await page.$eval('#status', (e) => e.textContent)}`);
  await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-voted.png'), fullPage: true });
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
