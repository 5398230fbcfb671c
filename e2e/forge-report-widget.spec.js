// Browser test of the Forge Custom UI of "Report a problem". It builds
// forge/static/report-widget with @forge/bridge stood in by e2e/forge-bridge-stub.js (which
// forwards invokeRemote (the default transport, through the manifest's endpoint) to the
// page's origin over fetch with a bearer token, as Forge adds
// the FIT), loads the build in Chromium under a CSP like Forge's, and answers the service's
// two routes by route interception: it checks the report goes as JSON with the dialog's
// Idempotency-Key and without Authorization from the page, that attachments are off with a
// sentence saying so, that the status is polled to the ticket, that an "unverified" email
// source is explained, and runs axe-core. Exit status 0 means every check passed.
//
//   node e2e/forge-report-widget.spec.js   (needs npm install in e2e/ and forge/static/report-widget/)
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const executablePath = process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium';
const uiDir = path.join(__dirname, '..', 'forge', 'static', 'report-widget');
const axeSource = fs.readFileSync(path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const origin = 'https://forge-cdn.example';
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.txt': 'text/plain' };

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`); }
}

async function main() {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-forge-widget-'));
  execFileSync(process.execPath, [path.join(uiDir, 'build.mjs')], {
    cwd: uiDir, env: { ...process.env, SB_FORGE_OUTDIR: out, SB_FORGE_BRIDGE_STUB: path.join(__dirname, 'forge-bridge-stub.js') }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const page = await (await browser.newContext({ viewport: { width: 900, height: 900 } })).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text()); });
    const posts = [];
    let polls = 0;
    await page.route(`${origin}/**`, async (route) => {
      const req = route.request();
      const u = new URL(req.url());
      if (u.pathname === '/api/v1/reports' && req.method() === 'POST') {
        posts.push({ headers: req.headers(), body: req.postData() });
        return route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify({ id: 'rep_forge1', status: 'queued', statusUrl: '' }) });
      }
      if (u.pathname === '/api/v1/reports/rep_forge1') {
        polls++;
        const st = polls < 2 ? { id: 'rep_forge1', status: 'queued' }
          : { id: 'rep_forge1', status: 'delivered', ticketKey: 'SUP-9', ticketUrl: 'https://desk.example/servicedesk/customer/portal/1/SUP-9', emailSource: 'unverified' };
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(st) });
      }
      const file = path.join(out, u.pathname === '/' ? 'index.html' : path.basename(u.pathname));
      if (!fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
      return route.fulfill({
        status: 200, contentType: TYPES[path.extname(file)] || 'application/octet-stream', body: fs.readFileSync(file),
        headers: { 'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:" },
      });
    });
    await page.goto(`${origin}/`);
    await page.locator('dialog[open]').waitFor({ timeout: 15000 });
    check('the Forge page opens the same dialog', (await page.locator('#sbw-title').innerText()) === 'Report a problem');
    check('attachments are off in Forge, and the dialog says so',
      (await page.locator('input[type=file]').count()) === 0 && /Attachments cannot be sent from this app yet/.test(await page.locator('dialog').innerText()));
    await page.fill('#sbw-summary', 'Forge report');
    await page.locator('button[type=submit]').dblclick();
    await page.locator('.sbw-result-title', { hasText: 'Ticket SUP-9 created' }).waitFor({ timeout: 20000 });
    check('one POST for a double click', posts.length === 1, String(posts.length));
    const p = posts[0] || { headers: {}, body: '' };
    check('the report goes as JSON with an Idempotency-Key', p.headers['content-type'] === 'application/json' && /^[0-9a-f-]{36}$/.test(p.headers['idempotency-key'] || '') && JSON.parse(p.body).summary === 'Forge report', JSON.stringify(p.headers));
    check('the token is the one Forge adds (the stub stands in for the FIT)', p.headers.authorization === 'Bearer mock-forge-fit');
    check('the status was polled until delivered', polls >= 2, String(polls));
    check('an unverified email source is explained', /did not confirm an email address/.test(await page.locator('.sbw-note').innerText()));
    check('the portal link is shown', (await page.getAttribute('.sbw-result-link', 'href')) === 'https://desk.example/servicedesk/customer/portal/1/SUP-9');
    const calls = await page.evaluate(() => window.__sbBridgeCalls.map((c) => `${c.api} ${c.method} ${c.path}`));
    check('every call went through invokeRemote (the endpoint that forwards the app system token)', calls.length >= 3 && calls.every((c) => c.startsWith('invokeRemote ')), calls.join(', '));
    await page.evaluate(`${axeSource};0`);
    const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    check('no serious or critical axe violations', bad.length === 0, bad.map((v) => v.id).join(', '));
    check('no page or CSP errors', errors.length === 0, errors.join(' | '));
  } finally {
    await browser.close();
    fs.rmSync(out, { recursive: true, force: true });
  }
  console.log(`forge-report-widget e2e: ${passed} passed, ${failed} failed`);
  if (failed) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
