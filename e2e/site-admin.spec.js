// Browser test of the customer's "Support access" admin page (Connect). A real Chromium (the
// system's /usr/bin/chromium through playwright-core) opens a stand-in of the customer's
// Atlassian site whose page frames the admin page in an iframe, as Jira does, with the page's
// CSP enforced. It finds the request, checks the preview, approves for less time than asked,
// checks the grant (active, approved by the site administrator's accountId), runs axe-core in
// the frame, operates a second pending request with the keyboard only, and checks that a
// 320 px wide frame needs no sideways scrolling. Exit status 0 means every check passed.
//
// Environment:
//   SB_E2E_ADMIN_URL       the admin page URL to frame (the Go server's /connect/support-access
//                          with its load token). Unset: start e2e/mock-site-api.js and use it.
//   SB_E2E_REQUEST_ID      a pending request of that site to approve (required with the URL).
//   SB_E2E_REQUEST_ID2     a second pending request, approved with the keyboard only (optional).
//   SB_E2E_HOST_ORIGIN     the customer's site origin that frames the page; the server's CSP
//                          frame-ancestors must allow it (default https://customer-site.atlassian.net).
//   SB_E2E_ADMIN_ACCOUNT_ID the accountId the grant must show as approver (optional).
//   SB_E2E_DURATION        the shorter duration to pick (default 4h when shorter than asked).
//   SB_E2E_REVOKE=1        also revoke the grant at the end (always done against the mock).
//   SB_E2E_CHROMIUM        the browser (default /usr/bin/chromium).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const executablePath = process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium';
const axeSource = fs.readFileSync(path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const hostOrigin = (process.env.SB_E2E_HOST_ORIGIN || 'https://customer-site.atlassian.net').replace(/\/+$/, '');
const hostURL = `${hostOrigin}/plugins/servlet/ac/supportbridge/support-access`;
const APPROVE_MEANING = 'The agent named above will be able to read these logs, only these, for at most ' +
  'this long, starting when you approve. Every read is recorded below and you can revoke access at any time.';

let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
}

function seconds(d) {
  if (d === 'until-revoked') return Infinity;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(d || '');
  return m && d ? Number(m[1] || 0) * 3600 + Number(m[2] || 0) * 60 + Number(m[3] || 0) : NaN;
}

// The host page: what Jira's admin area is to the app, reduced to a heading, a focusable
// element before the frame and the iframe. It is served by route interception, so the host
// origin needs no server (and no DNS).
function hostPage(adminURL) {
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Jira settings: Support access</title>
<style>body{margin:0;font-family:sans-serif}iframe{display:block;width:100%;height:1600px;border:0}</style></head>
<body><nav><button id="host-start" type="button">Jira navigation</button></nav>
<main><iframe id="sb-frame" title="Support access" src="${esc(adminURL)}"></iframe></main></body></html>`;
}

async function audit(frame, name) {
  // DevTools evaluation is not subject to the page's CSP, so axe runs in the same strict page.
  await frame.evaluate(`${axeSource};0`);
  const result = await frame.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations.filter((x) => !bad.includes(x))) {
    console.log(`note ${name}: axe ${v.impact}: ${v.id}: ${v.help}`);
  }
  check(`${name}: no serious or critical axe violations`, bad.length === 0,
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; '));
}

async function noSidewaysScroll(frame, name) {
  const m = await frame.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth, inner: window.innerWidth,
  }));
  check(`${name}: no sideways scrolling at ${m.inner}px`, m.scroll <= m.client, `scrollWidth ${m.scroll} > ${m.client}`);
}

// tabTo presses Tab until the frame's focused element matches pred, or gives up.
async function tabTo(page, frame, pred, max = 80) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const hit = await frame.evaluate(pred).catch(() => false);
    if (hit) return true;
  }
  return false;
}

async function openRequestLink(frame, id) {
  const link = frame.locator(`a[data-request-id="${id}"]`);
  for (let i = 0; i < 20; i++) {
    await frame.locator('#sb-list-heading').waitFor({ timeout: 15000 });
    if (await link.count()) return link;
    const more = frame.getByRole('button', { name: 'Load more requests' });
    if (!(await more.count())) return null;
    await more.click();
    await frame.waitForFunction(() => !document.querySelector('[aria-busy=true]'));
  }
  return null;
}

async function main() {
  let mock = null;
  let adminURL = process.env.SB_E2E_ADMIN_URL;
  let requestId = process.env.SB_E2E_REQUEST_ID;
  let requestId2 = process.env.SB_E2E_REQUEST_ID2;
  let accountId = process.env.SB_E2E_ADMIN_ACCOUNT_ID;
  if (!adminURL) {
    const { startMockSiteAPI, ADMIN_ACCOUNT } = require('./mock-site-api.js');
    // all.js points at a closed loopback port: the page must work when it fails to load.
    mock = await startMockSiteAPI({ frameAncestors: hostOrigin, allJSURL: 'http://127.0.0.1:9/atlassian-connect/all.js' });
    adminURL = mock.adminURL;
    requestId = requestId || 'req-pending-72h';
    requestId2 = requestId2 || 'req-pending-24h';
    accountId = accountId || ADMIN_ACCOUNT;
    console.log(`note no SB_E2E_ADMIN_URL: using the mock site API at ${mock.origin}`);
  } else if (!requestId) {
    throw new Error('set SB_E2E_REQUEST_ID with SB_E2E_ADMIN_URL');
  }
  const revoke = Boolean(mock) || process.env.SB_E2E_REVOKE === '1';
  const mockFail = async (b) => {
    await fetch(`${mock.origin}/__mock/fail`, { method: 'POST', body: JSON.stringify(b) });
  };

  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
      // The stand-in site is a public origin and the server under test is on loopback; Chromium's
      // Local Network Access checks would block that frame, which never happens in production
      // (the real server is public too).
      '--disable-features=LocalNetworkAccessChecks'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
    const page = await context.newPage();
    const cspErrors = [];
    const pageErrors = [];
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) cspErrors.push(msg.text());
    });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    const scripts = [];
    page.on('request', (r) => { if (r.resourceType() === 'script') scripts.push(new URL(r.url())); });
    await page.route(`${hostOrigin}/**`, (route) => route.fulfill({
      status: 200, contentType: 'text/html; charset=utf-8', body: hostPage(adminURL),
    }));

    // The framed document's final response (after any redirect the server makes).
    const adminResp = page.waitForResponse((r) => r.request().resourceType() === 'document' && r.frame() !== page.mainFrame(), { timeout: 20000 });
    await page.goto(hostURL);
    const resp = await adminResp;
    const headers = resp.headers();
    const csp = headers['content-security-policy'] || '';
    check('admin page answers 200', resp.status() === 200, `status ${resp.status()}`);
    const fa = /frame-ancestors ([^;]*)/.exec(csp);
    check('CSP frame-ancestors allows the customer site', Boolean(fa) && fa[1].split(/\s+/).some((s) => s === hostOrigin || (s.includes('*') && new RegExp(`^${s.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]+')}$`).test(hostOrigin))), csp);
    check('CSP allows no inline script', /script-src [^;]*'self'/.test(csp) && !/script-src[^;]*'unsafe-inline'/.test(csp), csp);
    check('CSP allows no inline style', /style-src [^;]*'self'/.test(csp) && !/style-src[^;]*'unsafe-inline'/.test(csp), csp);
    check('admin page is not cached', /no-store/.test(headers['cache-control'] || ''), headers['cache-control']);
    check('admin page sets no cookie', !headers['set-cookie'], headers['set-cookie']);

    const frame = (await page.$('#sb-frame').then((e) => e.contentFrame()));
    await frame.locator('h1', { hasText: 'Support access' }).waitFor({ timeout: 15000 });
    check('page language is set', (await frame.getAttribute('html', 'lang')) === 'en');
    check('page has one h1', (await frame.locator('h1').count()) === 1);
    await frame.locator('#sb-list-heading').waitFor({ timeout: 15000 });
    check('the first render leaves the focus where it was (outside the frame)',
      await page.evaluate(() => document.activeElement === document.body));
    const brand = await frame.locator('body').evaluate((b) => getComputedStyle(b).color);
    check('stylesheet applies under the CSP (ADS text colour)', brand === 'rgb(23, 43, 77)', brand);

    // The list: pending first.
    const link = await openRequestLink(frame, requestId);
    check('the request is listed', Boolean(link), requestId);
    if (!link) throw new Error(`request ${requestId} not in the list`);
    const firstPendingIdx = await frame.evaluate(() => {
      const cards = [...document.querySelectorAll('.sb-card .sb-badge')].map((b) => b.className.includes('pending'));
      const lastPending = cards.lastIndexOf(true);
      const firstDecided = cards.indexOf(false);
      return { lastPending, firstDecided };
    });
    check('pending requests come before decided ones',
      firstPendingIdx.firstDecided === -1 || firstPendingIdx.lastPending < firstPendingIdx.firstDecided, JSON.stringify(firstPendingIdx));
    await audit(frame, 'list');

    // The detail view.
    await link.click();
    const title = frame.locator('#sb-detail-heading');
    await title.waitFor({ timeout: 15000 });
    check('detail view opens with the focus on its heading', await frame.evaluate(() => document.activeElement && document.activeElement.id === 'sb-detail-heading'));
    const asked = await frame.locator('.sb-facts').first().innerText();
    check('detail says who asks, why, which logs, which window, how long, personal data',
      ['Who asks', 'Why', 'Ticket', 'Which logs', 'Which part of the logs', 'For how long', 'Personal data'].every((t) => asked.includes(t)), asked);
    const previewText = (await frame.locator('pre.sb-log').allInnerTexts()).join('\n');
    check('the preview shows log lines in a monospace block', previewText.trim().length > 0,
      await frame.locator('#sb-preview').locator('xpath=..').innerText().catch(() => 'no preview section'));
    const mono = await frame.locator('pre.sb-log').first().evaluate((e) => getComputedStyle(e).fontFamily).catch(() => '');
    check('the preview is monospace', /mono/i.test(mono), mono);
    check('what approving means is said plainly', (await frame.locator('.sb-meaning').innerText()) === APPROVE_MEANING);
    if (mock) {
      const reason = await frame.locator('.sb-reason').textContent();
      check('the reason is shown as text, not markup', reason.includes('<img src=x data-injected=1>') &&
        (await frame.locator('[data-injected]').count()) === 0 && (await frame.locator('.sb-log script').count()) === 0, reason);
      check('preview lines are verbatim, one block per log stream',
        previewText.includes('ERROR payment provider timeout after 30s <script>x</script>') && (await frame.locator('pre.sb-log').count()) === 2, previewText);
    }

    const options = await frame.locator('select#sb-duration option').evaluateAll(
      (os) => os.map((o) => ({ value: o.value, selected: o.selected, label: o.textContent })));
    const askedOpt = options.find((o) => o.selected);
    check('duration choice has the asked duration selected', Boolean(askedOpt) && /as asked/.test(askedOpt.label), JSON.stringify(options));
    check('no duration longer than asked is offered', askedOpt && options.every((o) => seconds(o.value) <= seconds(askedOpt.value)), JSON.stringify(options));
    const wanted = process.env.SB_E2E_DURATION || '4h';
    const shorter = options.find((o) => o.value === wanted && seconds(o.value) < seconds(askedOpt.value)) ||
      options.find((o) => askedOpt && seconds(o.value) < seconds(askedOpt.value));
    check('a shorter duration can be picked', Boolean(shorter), JSON.stringify(options));
    if (!shorter) throw new Error('no shorter duration');
    await frame.selectOption('select#sb-duration', shorter.value);

    const approve = frame.getByRole('button', { name: 'Approve access' });
    const alertBox = frame.locator('.sb-alert');
    if (mock) {
      // Failures are said in words, in the alert region, and the focus stays on the button.
      await mockFail({ status: 503, retryAfter: 7 });
      await approve.click();
      await frame.waitForFunction(() => (document.querySelector('.sb-alert') || {}).textContent);
      const t503 = await alertBox.textContent();
      check('503 says the site could not confirm, with Retry-After', /could not confirm your permission/.test(t503) && /7 seconds/.test(t503), t503);
      check('focus stays on Approve after a failure', await frame.evaluate(() => document.activeElement.textContent === 'Approve access'));
      await mockFail({ status: 403, detail: 'You are not an administrator of customer-site.' });
      await approve.click();
      await frame.waitForFunction(() => /administrators/.test((document.querySelector('.sb-alert') || {}).textContent));
      const t403 = await alertBox.textContent();
      check('403 says only site administrators decide, with the detail', /Only administrators of this site/.test(t403) && /not an administrator of customer-site/.test(t403), t403);
      await context.setOffline(true);
      await approve.click();
      await frame.waitForFunction(() => /could not be reached/.test((document.querySelector('.sb-alert') || {}).textContent));
      check('offline is said in words', true);
      await context.setOffline(false);
      check('alert region is aria-live', (await alertBox.getAttribute('aria-live')) === 'assertive');
    }

    await approve.click();
    const grantStatus = frame.locator('#sb-grant-status');
    await grantStatus.waitFor({ timeout: 15000 });
    const gs = await grantStatus.innerText();
    check('grant shows as active with time left', /^Access is active: .* left/.test(gs), gs);
    const left = /active: (.*) left/.exec(gs);
    const leftSecs = left ? left[1].split(' ').reduce((acc, w, i, a) => {
      const n = Number(w);
      if (!Number.isFinite(n)) return acc;
      const unit = a[i + 1] || '';
      return acc + n * (unit.startsWith('day') ? 86400 : unit.startsWith('hour') ? 3600 : unit.startsWith('minute') ? 60 : 0);
    }, 0) : NaN;
    check('time left is no more than the shorter duration picked', leftSecs <= seconds(shorter.value) && leftSecs > 0, `${gs} vs ${shorter.value}`);
    const approvedBy = await frame.locator('.sb-grant dt', { hasText: 'Approved by' }).locator('xpath=following-sibling::dd[1]').innerText();
    check('grant says approved by a site administrator with accountId',
      /Site administrator, accountId \S+/.test(approvedBy) && (!accountId || approvedBy.includes(accountId)), approvedBy);
    check('focus moved to the grant status after approving', await frame.evaluate(() => document.activeElement && document.activeElement.id === 'sb-grant-status'));
    const live = await frame.locator('.sb-live').textContent();
    check('approval is announced in the status region', /Access approved for/.test(live), live);
    check('a Revoke button is offered', (await frame.getByRole('button', { name: 'Revoke access now' }).count()) === 1);
    check('reads and audit log are shown', (await frame.locator('#sb-reads').count()) === 1 && (await frame.locator('#sb-audit').count()) === 1);
    await audit(frame, 'granted request');

    // Keyboard only: from the host page, Tab into the frame, back to the list, to the second
    // request, Enter, Tab to Approve, Enter.
    if (requestId2) {
      await page.focus('#host-start');
      const onBack = await tabTo(page, frame, () => document.activeElement && document.activeElement.classList.contains('sb-back'), 10);
      check('keyboard: Tab reaches "All requests" in the frame', onBack);
      await page.keyboard.press('Enter');
      await frame.locator('#sb-list-heading').waitFor({ timeout: 15000 });
      check('keyboard: back in the list, focus on the request just seen', await frame.evaluate((id) => document.activeElement && document.activeElement.dataset.requestId === id, requestId));
      let found = await tabTo(page, frame, new Function(`return document.activeElement && document.activeElement.dataset.requestId === ${JSON.stringify(requestId2)}`), 80);
      check('keyboard: Tab reaches the second request', found, requestId2);
      if (found) {
        await page.keyboard.press('Enter');
        await frame.locator('#sb-detail-heading').waitFor({ timeout: 15000 });
        await audit(frame, 'pending request');
        found = await tabTo(page, frame, () => document.activeElement && document.activeElement.textContent === 'Approve access', 40);
        check('keyboard: Tab reaches Approve', found);
        if (found) {
          await page.keyboard.press('Enter');
          await frame.locator('#sb-grant-status').waitFor({ timeout: 15000 });
          check('keyboard: Enter on Approve approves', /^Access is active/.test(await frame.locator('#sb-grant-status').innerText()));
          check('keyboard: focus is on the grant status', await frame.evaluate(() => document.activeElement && document.activeElement.id === 'sb-grant-status'));
        }
      }
    }

    // 320 px: the frame is as wide as the host's viewport.
    await page.setViewportSize({ width: 320, height: 800 });
    await frame.waitForFunction(() => window.innerWidth === 320);
    await noSidewaysScroll(frame, 'request detail');
    await frame.locator('a.sb-back').click();
    await frame.locator('#sb-list-heading').waitFor({ timeout: 15000 });
    await noSidewaysScroll(frame, 'list');
    await page.setViewportSize({ width: 1024, height: 900 });

    if (revoke) {
      const l = await openRequestLink(frame, requestId);
      await l.click();
      await frame.getByRole('button', { name: 'Revoke access now' }).click();
      await frame.locator('#sb-grant-status', { hasText: 'Access was revoked' }).waitFor({ timeout: 15000 });
      check('revocation is shown, without a Revoke button', (await frame.getByRole('button', { name: 'Revoke access now' }).count()) === 0);
    }

    if (mock) {
      // "Load more" fetches the next page with the cursor and moves the focus to the first new one.
      if (!(await frame.locator('#sb-list-heading').count())) await frame.locator('a.sb-back').click();
      await frame.locator('#sb-list-heading').waitFor({ timeout: 15000 });
      const before = await frame.locator('a[data-request-id]').count();
      await frame.getByRole('button', { name: 'Load more requests' }).click();
      await frame.waitForFunction((n) => document.querySelectorAll('a[data-request-id]').length > n, before);
      const after = await frame.locator('a[data-request-id]').count();
      const focusNew = await frame.evaluate(() => document.activeElement && document.activeElement.dataset.requestId);
      check('"Load more" adds the next page and focuses its first request', after > before && Boolean(focusNew) && focusNew.startsWith('req-old-'), `${before} -> ${after}, focus ${focusNew}`);
      const more = await fetch(`${mock.origin}/__mock/log`).then((r) => r.json());
      check('"Load more" sends the cursor', more.some((e) => /cursor=\d+/.test(e.path)), JSON.stringify(more.slice(-3)));

      // Deny, with a note, after a 409 that is explained and shows the current state.
      const dl = await openRequestLink(frame, 'req-pending-deny');
      await dl.click();
      await frame.locator('#sb-detail-heading').waitFor({ timeout: 15000 });
      const dopts = await frame.locator('select#sb-duration option').evaluateAll((os) => os.map((o) => o.value));
      check('until-revoked offers every duration, asked one first', dopts[0] === 'until-revoked' && dopts.length === 8, JSON.stringify(dopts));
      await frame.fill('#sb-note', 'Please use the staging site <b>first</b>.');
      await mockFail({ status: 409 });
      await frame.getByRole('button', { name: 'Deny access' }).click();
      await frame.waitForFunction(() => /already been decided/.test((document.querySelector('.sb-alert') || {}).textContent));
      await frame.locator('#sb-detail-heading').waitFor();
      check('409 says the request was already decided and stays announced after the reload',
        /Reload the page/.test(await frame.locator('.sb-alert').textContent()));
      await frame.fill('#sb-note', 'Please use the staging site <b>first</b>.');
      await frame.getByRole('button', { name: 'Deny access' }).click();
      await frame.locator('.sb-status-denied').waitFor({ timeout: 15000 });
      const denied = await frame.locator('.sb-view').innerText();
      check('deny shows the decision and the note as text', /Denied/.test(denied) && denied.includes('Please use the staging site <b>first</b>.'), denied.slice(0, 300));
      check('focus is on the request heading after denying', await frame.evaluate(() => document.activeElement && document.activeElement.id === 'sb-detail-heading'));
      check('denial is announced', /Access denied/.test(await frame.locator('.sb-live').textContent()));

      // A deep link (the server fills sb-request) opens the request directly.
      await frame.goto(`${adminURL}?request=req-approved&alljs=mock`);
      await frame.locator('#sb-detail-heading').waitFor({ timeout: 15000 });
      check('a deep link opens the request', /SUP-90/.test(await frame.locator('#sb-detail-heading').innerText()));
      check('with all.js loaded, the page asks the host to resize after rendering', await frame.evaluate(() => window.__sbResizes > 0));
      const reads = await frame.locator('#sb-reads').locator('xpath=..').innerText();
      check('reads show time, log, window, lines and bytes', /app/.test(reads) && /1,200/.test(reads) && /96,000 bytes/.test(reads), reads);
      await frame.goto(`${adminURL}?request=req-pending-gone`);
      await frame.waitForFunction(() => (document.querySelector('.sb-alert') || {}).textContent);
      check('404 is said in words', /not found/.test(await frame.locator('.sb-alert').textContent()));
    }

    const entry = scripts.find((u) => u.pathname.endsWith('/connect.js'));
    const app = scripts.find((u) => u.pathname.endsWith('/app.js'));
    check('app.js is loaded beside connect.js with its version (query)', Boolean(entry && app) &&
      app.search === entry.search && app.pathname.replace(/app\.js$/, '') === entry.pathname.replace(/connect\.js$/, ''),
    scripts.map(String).join(' '));
    check('no CSP violations', cspErrors.length === 0, cspErrors.join(' | '));
    check('no script errors', pageErrors.length === 0, pageErrors.join(' | '));
    await context.close();
  } finally {
    await browser.close();
    if (mock) await mock.close();
  }
}

main()
  .catch((err) => {
    failed++;
    console.log(`FAIL ${err && err.stack ? err.stack : err}`);
  })
  .finally(() => {
    console.log(`site-admin e2e: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
  });
