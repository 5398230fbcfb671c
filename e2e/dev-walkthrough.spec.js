// The README's walk-through in a real Chromium against `supportbridge dev`, one browser phase
// at a time; the Go test (cmd/supportbridge/walkthrough_browser_test.go) runs the agent's CLI
// steps between them. axe-core checks every page a person sees on the way (serious and
// critical violations fail): /dev, the report dialog, the JSM sandbox page, the admin page.
//
// Environment:
//   SB_E2E_PHASE        report | jsm | approve | revoke
//   SB_E2E_SITE_URL     the demo site (its /dev page frames the dialog and the admin page).
//   SB_E2E_JSM_URL      the JSM sandbox page.
//   SB_E2E_REQUEST_ID   the access request to approve (approve, revoke).
//   SB_E2E_SCREENSHOTS  a directory to write small PNGs of each step to (optional).
//   SB_E2E_CHROMIUM     the browser (default /usr/bin/chromium).
//   SB_E2E_TICKET       the ticket to find on the JSM sandbox page (jsm).
// The report phase prints "RESULT {"ticket": KEY}", or "RESULT {"refused": TEXT}" when the
// service refused the report.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const executablePath = process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium';
const axeSource = fs.readFileSync(path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const phase = process.env.SB_E2E_PHASE;
const siteURL = (process.env.SB_E2E_SITE_URL || '').replace(/\/+$/, '');
const jsmURL = process.env.SB_E2E_JSM_URL || '';
const requestId = process.env.SB_E2E_REQUEST_ID || '';
const shots = process.env.SB_E2E_SCREENSHOTS || '';

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`); }
}

async function audit(frame, name) {
  await frame.evaluate(`${axeSource};0`);
  const result = await frame.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations.filter((x) => !bad.includes(x))) console.log(`note ${name}: axe ${v.impact}: ${v.id}: ${v.help}`);
  check(`${name}: no serious or critical axe violations`, bad.length === 0,
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; '));
}

// shot writes a small PNG: a clip of the page at a modest size, so the README stays light.
async function shot(target, name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await target.screenshot({ path: path.join(shots, name), animations: 'disabled' });
}

// shotTop writes the top of an element (at most height px), e.g. of a tall framed page.
async function shotTop(page, selector, name, height = 820) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  const el = page.locator(selector);
  await el.scrollIntoViewIfNeeded();
  const b = await el.boundingBox();
  await page.screenshot({ path: path.join(shots, name), animations: 'disabled', clip: { x: b.x, y: b.y, width: b.width, height: Math.min(b.height, height) } });
}

async function frameOf(page, selector) {
  const el = await page.waitForSelector(selector, { timeout: 15000 });
  return el.contentFrame();
}

async function report(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text()); });
  await page.goto(`${siteURL}/dev`);
  check('/dev answers with the demo site', (await page.locator('h1').innerText()) === 'Demo Atlassian site');
  const dialog = await frameOf(page, 'iframe.report');
  await dialog.locator('dialog[open]').waitFor({ timeout: 15000 });
  await frameOf(page, 'iframe.admin').then((f) => f.locator('h1', { hasText: 'Support access' }).waitFor({ timeout: 15000 }));
  await audit(page.mainFrame(), '/dev');
  await shot(page, '0-dev-site.png');
  await audit(dialog, 'report dialog in /dev');
  await dialog.fill('#sbw-summary', 'Export to CSV fails with an error');
  await dialog.fill('#sbw-description', 'Clicking Export on the board shows "Something went wrong".');
  await dialog.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 320; c.height = 180;
    const g = c.getContext('2d');
    g.fillStyle = '#F7F8F9'; g.fillRect(0, 0, 320, 180);
    g.fillStyle = '#C9372C'; g.fillRect(20, 20, 280, 40);
    g.fillStyle = '#FFFFFF'; g.font = '16px sans-serif'; g.fillText('Something went wrong', 36, 46);
    const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'image.png', { type: 'image/png' }));
    document.querySelector('#sbw-description').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  });
  await dialog.locator('.sbw-files li').first().waitFor({ timeout: 5000 });
  check('the pasted screenshot is attached', /^screenshot-.*\.png$/.test(await dialog.locator('.sbw-file-name').first().innerText()));
  await shot(dialog.locator('dialog'), '1-report-dialog.png');
  await dialog.locator('button[type=submit]').click();
  await dialog.waitForFunction(() => document.querySelector('.sbw-alert').textContent || /^Ticket/.test(document.querySelector('.sbw-result-title').textContent), null, { timeout: 60000 });
  const refused = await dialog.locator('.sbw-alert').innerText();
  if (refused) {
    console.log(`RESULT ${JSON.stringify({ refused })}`);
    throw new Error(`the report was refused: ${refused}`);
  }
  const ticket = (await dialog.locator('.sbw-result-title').innerText()).split(' ')[1];
  check('the dialog shows the ticket key', /^[A-Z]+-\d+$/.test(ticket), ticket);
  check('the site gave Sam\'s email, so no note about replies in the portal', !(await dialog.locator('.sbw-note').isVisible()));
  await audit(dialog, 'report dialog, delivered');
  await shot(dialog.locator('dialog'), '1-report-delivered.png');
  check('no page or CSP errors', errors.length === 0, errors.join(' | '));
  console.log(`RESULT ${JSON.stringify({ ticket })}`);
}

// jsm checks the ticket on the JSM sandbox page (SB_E2E_TICKET), with the pasted screenshot.
async function jsm(page) {
  const ticket = process.env.SB_E2E_TICKET;
  await page.setViewportSize({ width: 900, height: 700 });
  await page.goto(jsmURL);
  const body = await page.locator('body').innerText();
  check('the ticket is on the JSM sandbox page', body.includes(ticket), body.slice(0, 300));
  check('the pasted screenshot is attached to it', /screenshot-.*\.png/.test(body));
  await audit(page.mainFrame(), 'JSM sandbox page');
  await shot(page, '2-jsm-sandbox.png');
}

async function openRequest(page) {
  await page.goto(`${siteURL}/dev`);
  const admin = await frameOf(page, 'iframe.admin');
  await admin.locator('#sb-list-heading').waitFor({ timeout: 15000 });
  const link = admin.locator(`a[data-request-id="${requestId}"]`);
  await link.waitFor({ timeout: 15000 });
  await link.click();
  await admin.locator('#sb-detail-heading').waitFor({ timeout: 15000 });
  return admin;
}

async function approve(page) {
  const admin = await openRequest(page);
  const preview = (await admin.locator('pre.sb-log').allInnerTexts()).join('\n');
  check('the admin sees a preview of the logs', preview.trim().length > 0);
  check('the preview pseudonymises personal data', !/user\d@example\.com/.test(preview), preview.slice(0, 200));
  await audit(admin, 'admin page, request detail');
  await admin.locator('#sb-detail-heading').scrollIntoViewIfNeeded();
  await shotTop(page, 'iframe.admin', '4-approve.png');
  await admin.getByRole('button', { name: 'Approve access' }).click();
  const gs = await admin.locator('#sb-grant-status').innerText({ timeout: 15000 });
  check('the grant is active', /^Access is active/.test(gs), gs);
  await audit(admin, 'admin page, active grant');
}

async function revoke(page) {
  const admin = await openRequest(page);
  await admin.getByRole('button', { name: 'Revoke access now' }).click();
  await admin.locator('#sb-grant-status', { hasText: 'Access was revoked' }).waitFor({ timeout: 15000 });
  check('the revocation is shown', true);
  await audit(admin, 'admin page, revoked');
  await shot(admin.locator('#sb-grant-status').locator('xpath=..'), '6-revoked.png');
}

async function main() {
  if (!siteURL || !['report', 'jsm', 'approve', 'revoke'].includes(phase)) throw new Error('set SB_E2E_PHASE and SB_E2E_SITE_URL');
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, reducedMotion: 'reduce' });
    const page = await context.newPage();
    if (phase === 'report') await report(page);
    if (phase === 'jsm') await jsm(page);
    if (phase === 'approve') await approve(page);
    if (phase === 'revoke') await revoke(page);
  } finally {
    await browser.close();
  }
  console.log(`${passed} passed, ${failed} failed`);
  if (failed) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
