// Browser test of the "Report a problem" dialog (Connect). A real Chromium (the system's
// /usr/bin/chromium through playwright-core) opens a stand-in of the customer's Atlassian site
// that frames the dialog, as Jira does, with the page's CSP enforced, and files a report with a
// pasted screenshot and the opted-in recent errors through the real service. It also files a
// report with the keyboard only, checks that a double click and a retry after a lost answer
// file once, words 413, 415, 429, 503 and offline for a person, closes with Escape, fits 320 px,
// honours reduced motion, and runs axe-core (serious and critical violations fail).
//
// Environment:
//   SB_E2E_DIALOG_URL   the dialog URL with its load token (the Go server's /connect/report-dialog).
//   SB_E2E_HOST_ORIGIN  the customer's site origin that frames it (default https://customer-site.atlassian.net).
//   SB_E2E_SCREENSHOTS  a directory to write small PNGs of the dialog to (optional).
//   SB_E2E_CHROMIUM     the browser (default /usr/bin/chromium).
// It prints "RESULT <json>" with the summaries it filed, for the Go test to check the desk.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const executablePath = process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium';
const axeSource = fs.readFileSync(path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const dialogURL = process.env.SB_E2E_DIALOG_URL;
const hostOrigin = (process.env.SB_E2E_HOST_ORIGIN || 'https://customer-site.atlassian.net').replace(/\/+$/, '');
const shots = process.env.SB_E2E_SCREENSHOTS || '';
const MAIN = 'Export button does nothing (browser test)';
const KEYBOARD = 'Filed with the keyboard only';
const SEEDED = [
  { kind: 'error', message: 'TypeError: widget 42 exploded', url: 'https://app.example/board', time: '2026-12-04T10:00:00.000Z' },
  { kind: 'http', message: 'GET https://app.example/api/board → 502', status: 502, requestId: 'req-browser-1', url: 'https://app.example/api/board', time: '2026-12-04T10:00:01.000Z' },
];

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`); }
}

function hostPage(url) {
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Jira: Report a problem</title>
<style>body{margin:0;font-family:sans-serif}iframe{display:block;width:100%;height:900px;border:0}</style></head>
<body><main><h1>Board</h1><iframe id="sbw-frame" title="Report a problem" src="${esc(url)}"></iframe></main></body></html>`;
}

async function audit(frame, name) {
  await frame.evaluate(`${axeSource};0`); // DevTools evaluation is not subject to the page's CSP
  const result = await frame.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations.filter((x) => !bad.includes(x))) console.log(`note ${name}: axe ${v.impact}: ${v.id}: ${v.help}`);
  check(`${name}: no serious or critical axe violations`, bad.length === 0,
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; '));
}

// pasteScreenshot pastes a PNG drawn on a canvas, as a screenshot tool's clipboard holds it.
async function pasteScreenshot(frame, selector, width = 120, height = 80) {
  await frame.evaluate(async ({ selector, width, height }) => {
    const c = document.createElement('canvas');
    c.width = width; c.height = height;
    const g = c.getContext('2d');
    g.fillStyle = '#0C66E4'; g.fillRect(0, 0, width, height);
    g.fillStyle = '#FFFFFF'; g.fillRect(10, 10, width / 2, height / 3);
    const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'image.png', { type: 'image/png' }));
    document.querySelector(selector).dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, { selector, width, height });
}

async function alertText(frame) {
  await frame.waitForFunction(() => document.querySelector('.sbw-alert').textContent.trim() !== '', null, { timeout: 10000 });
  return frame.locator('.sbw-alert').innerText();
}

// shot writes a small PNG of target (the dialog), for the README.
async function shot(target, name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await target.screenshot({ path: path.join(shots, name), animations: 'disabled' });
}

async function main() {
  if (!dialogURL) throw new Error('set SB_E2E_DIALOG_URL');
  const serverOrigin = new URL(dialogURL).origin;
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', '--disable-features=LocalNetworkAccessChecks'],
  });
  const result = { main: MAIN, keyboard: KEYBOARD };
  try {
    // ---- 1. Framed in the site: paste a screenshot, opt in to the errors, a double click
    // and a retry after a lost answer file once, the ticket key and the portal link show.
    const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
    await context.addInitScript(({ origin, key, events }) => {
      if (location.origin === origin) sessionStorage.setItem(key, JSON.stringify(events));
    }, { origin: serverOrigin, key: 'supportbridge.errors.recent', events: SEEDED });
    const page = await context.newPage();
    const cspErrors = [];
    const pageErrors = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text()); });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const posts = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/v1/reports')) posts.push(r.headers()['idempotency-key']); });
    await page.route(`${hostOrigin}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: hostPage(dialogURL) }));
    const docResp = page.waitForResponse((r) => r.request().resourceType() === 'document' && r.frame() !== page.mainFrame(), { timeout: 20000 });
    await page.goto(`${hostOrigin}/jira/software/projects/DEMO/boards/1`);
    const resp = await docResp;
    const headers = resp.headers();
    const csp = headers['content-security-policy'] || '';
    check('dialog answers 200', resp.status() === 200, `status ${resp.status()}`);
    check('CSP allows no inline script or style', /script-src [^;]*'self'/.test(csp) && !/'unsafe-inline'/.test(csp), csp);
    check('CSP frame-ancestors allows Atlassian sites', /frame-ancestors [^;]*https:\/\/\*\.atlassian\.net/.test(csp), csp);
    check('dialog page is not cached', /no-store/.test(headers['cache-control'] || ''), headers['cache-control']);

    const frame = await page.$('#sbw-frame').then((e) => e.contentFrame());
    await frame.locator('dialog.sbw-dialog[open]').waitFor({ timeout: 15000 });
    check('the dialog opens as a modal dialog named "Report a problem"',
      await frame.evaluate(() => { const d = document.querySelector('dialog'); return d.matches(':modal') && document.getElementById(d.getAttribute('aria-labelledby')).textContent === 'Report a problem'; }));
    check('focus starts in the summary', await frame.evaluate(() => document.activeElement && document.activeElement.id === 'sbw-summary'));
    check('no email field', (await frame.locator('input[type=email], [name=email]').count()) === 0);
    const color = await frame.locator('.sbw-title').first().evaluate((el) => getComputedStyle(el).color);
    check('stylesheet applies under the CSP', color === 'rgb(23, 43, 77)', color);
    await audit(frame, 'empty dialog');

    // Sending with no summary marks the field and says so.
    await frame.locator('button[type=submit]').click();
    check('a missing summary is marked and announced',
      (await frame.getAttribute('#sbw-summary', 'aria-invalid')) === 'true' && /correct the marked fields/.test(await alertText(frame)));
    check('focus goes to the field to fix', await frame.evaluate(() => document.activeElement.id === 'sbw-summary'));
    await audit(frame, 'dialog with a field error');

    await frame.fill('#sbw-summary', MAIN);
    await frame.fill('#sbw-description', 'I clicked Export on the board and nothing happened.');
    await pasteScreenshot(frame, '#sbw-description');
    await frame.locator('.sbw-files li').first().waitFor({ timeout: 5000 });
    const fileName = await frame.locator('.sbw-file-name').first().innerText();
    check('a pasted screenshot is attached with a readable name', /^screenshot-\d{4}-\d{2}-\d{2}-\d{6}\.png$/.test(fileName), fileName);
    check('the attachment is announced', /1 file attached/.test(await frame.locator('.sbw-live').innerText()));

    // The opt-in: off by default; when ticked it shows exactly what is sent.
    const box = frame.locator('#sbw-include-errors');
    check('recent errors are off by default and counted', !(await box.isChecked()) && /\(2\)/.test(await frame.locator('label[for=sbw-include-errors]').innerText()));
    check('the preview is hidden until opted in', !(await frame.locator('#sbw-errors-preview').isVisible()));
    await box.check();
    const shown = JSON.parse(await frame.locator('.sbw-preview').innerText());
    check('the preview shows exactly the errors and request ids sent',
      shown.recentErrors.length === 2 && shown.recentErrors[0].message === SEEDED[0].message && shown.operation.requestIds[0] === 'req-browser-1', JSON.stringify(shown));
    await audit(frame, 'dialog with attachment and errors preview');
    await shot(frame.locator('dialog'), 'widget-filled.png');

    // The first send reaches the service but its answer is lost; the person sends again.
    let lose = true;
    let sentBody = '';
    await page.route(`${serverOrigin}/api/v1/reports`, async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      if (lose) {
        lose = false;
        const r = await route.fetch(); // the service stores it ...
        sentBody = String(r.status());
        return route.abort('connectionreset'); // ... and the answer never arrives
      }
      return route.continue();
    });
    await frame.locator('button[type=submit]').dblclick();
    const offline = await alertText(frame);
    check('a double click sends once', posts.length === 1, `${posts.length} POSTs`);
    check('the first attempt reached the service', sentBody === '202', sentBody);
    check('a lost answer is worded as offline, with the promise not to file twice', /offline.*not file it twice/s.test(offline), offline);
    await frame.locator('button[type=submit]').click();
    await frame.locator('.sbw-result-title').waitFor({ timeout: 15000 });
    check('the retry carries the same Idempotency-Key', posts.length === 2 && posts[0] && posts[0] === posts[1], JSON.stringify(posts));
    check('focus moves to the result', await frame.evaluate(() => document.activeElement.classList.contains('sbw-result-title')));
    await frame.locator('.sbw-result-title', { hasText: /^Ticket [A-Z]+-\d+ created$/ }).waitFor({ timeout: 60000 });
    const title = await frame.locator('.sbw-result-title').innerText();
    result.mainTicket = title.split(' ')[1];
    const href = await frame.getAttribute('.sbw-result-link', 'href');
    check('the portal link names the ticket', Boolean(href) && href.includes(result.mainTicket), href);
    check('the outcome is announced', new RegExp(result.mainTicket).test(await frame.locator('.sbw-live').innerText()));
    await audit(frame, 'delivered');
    await shot(frame.locator('dialog'), 'widget-delivered.png');
    check('no CSP violations', cspErrors.length === 0, cspErrors.join(' | '));
    check('no page errors', pageErrors.length === 0, pageErrors.join(' | '));
    await context.close();

    // ---- 2. Keyboard only, top level (in a site the dialog iframe gets the focus).
    const kctx = await browser.newContext({ viewport: { width: 800, height: 900 } });
    const kpage = await kctx.newPage();
    await kpage.goto(dialogURL);
    await kpage.locator('dialog[open]').waitFor({ timeout: 15000 });
    await kpage.keyboard.type(KEYBOARD);
    await kpage.keyboard.press('Tab');
    check('Tab goes from the summary to the description', await kpage.evaluate(() => document.activeElement.id === 'sbw-description'));
    await kpage.keyboard.type('Typed, tabbed and sent without a mouse.');
    let reached = false;
    for (let i = 0; i < 15 && !reached; i++) {
      await kpage.keyboard.press('Tab');
      reached = await kpage.evaluate(() => document.activeElement.type === 'submit');
    }
    check('Tab reaches Send report', reached);
    await kpage.keyboard.press('Enter');
    await kpage.locator('.sbw-result-title', { hasText: /^Ticket [A-Z]+-\d+ created$/ }).waitFor({ timeout: 60000 });
    result.keyboardTicket = (await kpage.locator('.sbw-result-title').innerText()).split(' ')[1];
    let onClose = false;
    for (let i = 0; i < 8 && !onClose; i++) {
      await kpage.keyboard.press('Tab');
      onClose = await kpage.evaluate(() => document.activeElement.textContent === 'Close' && document.activeElement.closest('.sbw-result') !== null);
    }
    check('Tab reaches Close on the result', onClose);
    // The dialog's "close" event comes as a task after close(): wait for it, briefly.
    const closedWithFocusOnOpener = () => kpage.waitForFunction(
      () => !document.querySelector('dialog').open && document.activeElement.classList.contains('sbw-opener'), null, { timeout: 3000 },
    ).then(() => true, () => false);
    await kpage.keyboard.press('Enter');
    check('Close closes the dialog and returns focus to the opener', await closedWithFocusOnOpener());
    await kpage.keyboard.press('Enter');
    check('the opener opens the dialog again, on the result',
      await kpage.evaluate(() => document.querySelector('dialog').open && document.activeElement.classList.contains('sbw-result-title')));
    await kpage.keyboard.press('Escape');
    check('Escape closes the dialog', await closedWithFocusOnOpener());
    await kctx.close();

    // ---- 3. Refusals worded for a person (answers stood in by route interception).
    const ectx = await browser.newContext({ viewport: { width: 800, height: 900 } });
    const epage = await ectx.newPage();
    let answer = null;
    await epage.route(`${serverOrigin}/api/v1/reports`, (route) => route.fulfill(answer));
    await epage.goto(dialogURL);
    await epage.locator('dialog[open]').waitFor({ timeout: 15000 });
    await epage.fill('#sbw-summary', 'Refused on purpose');
    const problem = (status, extra = {}) => ({ status, contentType: 'application/problem+json', body: JSON.stringify({ status, title: 't', ...extra }) });
    const cases = [
      ['413', problem(413), /too large.*5 files and 10\.0 MB in all/s],
      ['415', problem(415), /cannot accept.*PNG, JPEG, GIF, WebP, PDF, text and JSON/s],
      ['503', { ...problem(503), headers: { 'Retry-After': '1' } }, /cannot take reports.*nothing was filed.*1 second/s, 1100],
      ['429', { ...problem(429), headers: { 'Retry-After': '120' } }, /several reports.*not filed.*2 minutes/s],
    ];
    for (const [name, a, want, pause] of cases) {
      answer = a;
      await epage.evaluate(() => { document.querySelector('.sbw-alert').textContent = ''; });
      await epage.click('button[type=submit]');
      await epage.waitForFunction((n) => document.querySelector('.sbw-alert').textContent.length > 0 && document.querySelector('button[type=submit]').getAttribute('aria-disabled') === 'false', name);
      await epage.waitForTimeout(100);
      const text = await epage.locator('.sbw-alert').innerText();
      check(`${name} is worded for a person`, want.test(text), text);
      check(`${name} is announced (role=alert)`, (await epage.getAttribute('.sbw-alert', 'role')) === 'alert');
      if (pause) await epage.waitForTimeout(pause);
    }
    await epage.click('button[type=submit]');
    await epage.waitForTimeout(200);
    check('after a 429 the dialog waits before sending again', /wait 2 minutes/.test(await epage.locator('.sbw-alert').innerText()));
    await audit(epage, 'dialog after a 429');
    await shot(epage.locator('dialog'), 'widget-429.png');
    await ectx.close();

    const octx = await browser.newContext({ viewport: { width: 800, height: 900 } });
    const opage = await octx.newPage();
    await opage.goto(dialogURL);
    await opage.locator('dialog[open]').waitFor({ timeout: 15000 });
    await opage.fill('#sbw-summary', 'Sent while offline');
    await octx.setOffline(true);
    await opage.click('button[type=submit]');
    const off = await alertText(opage);
    check('offline is worded for a person', /offline/.test(off), off);
    await octx.close();

    // ---- 4. 320 px wide, reduced motion.
    const nctx = await browser.newContext({ viewport: { width: 320, height: 640 }, reducedMotion: 'reduce' });
    const npage = await nctx.newPage();
    await npage.goto(dialogURL);
    await npage.locator('dialog[open]').waitFor({ timeout: 15000 });
    await pasteScreenshot(npage.mainFrame(), '#sbw-summary');
    await npage.evaluate(() => { document.querySelector('#sbw-include-errors').disabled = false; });
    const m = await npage.evaluate(() => {
      const d = document.querySelector('dialog');
      return { doc: document.documentElement.scrollWidth, client: document.documentElement.clientWidth, dlg: d.scrollWidth, dlgClient: d.clientWidth, anim: getComputedStyle(d).animationName };
    });
    check('no sideways scrolling at 320 px', m.doc <= m.client && m.dlg <= m.dlgClient, JSON.stringify(m));
    check('no animation when reduced motion is asked', m.anim === 'none', m.anim);
    await audit(npage, 'dialog at 320 px');
    await shot(npage.locator('dialog'), 'widget-320.png');
    await nctx.close();
    const mctx = await browser.newContext({ viewport: { width: 800, height: 600 }, reducedMotion: 'no-preference' });
    const mpage = await mctx.newPage();
    await mpage.goto(dialogURL);
    await mpage.locator('dialog[open]').waitFor({ timeout: 15000 });
    check('the dialog animates in otherwise', (await mpage.evaluate(() => getComputedStyle(document.querySelector('dialog')).animationName)) === 'sbw-in');
    await mctx.close();
  } finally {
    await browser.close();
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
  console.log(`${passed} passed, ${failed} failed`);
  if (failed) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
