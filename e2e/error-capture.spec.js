// Browser test of web/error-capture/error-capture.js. A real Chromium (the system's
// /usr/bin/chromium through playwright-core) opens an app page served under a strict CSP (no
// inline script) from the same origin as the service. The page loads the script from the
// service's /static/<version>/ URL, starts it with a fetch transport (Connect style: a
// context token), throws an error, leaves a promise rejection unhandled and calls a URL that
// answers 502 with an X-Request-Id. Exit status 0 means the page saw no CSP violation,
// recent() holds the three events, and both batches (the first at once, the second 10 s
// later) were answered 202. The Go test then checks what the service stored.
//
// Environment:
//   SB_E2E_PAGE_URL   the app page (required).
//   SB_E2E_CHROMIUM   the browser (default /usr/bin/chromium).
'use strict';

const { chromium } = require('playwright-core');

let failed = 0;
function check(name, ok, detail) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok || detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
  if (!ok) failed++;
}

(async () => {
  const url = process.env.SB_E2E_PAGE_URL;
  if (!url) throw new Error('SB_E2E_PAGE_URL is required');
  const browser = await chromium.launch({
    executablePath: process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    const violations = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
    });
    await page.goto(url);
    // Every captured event sent: the first batch goes at once, the rest 10 s later.
    await page
      .waitForFunction(() => window.__sbSent && window.__sbSent.reduce((n, s) => n + s.n, 0) >= 3, null, { timeout: 25000 })
      .catch(() => {});
    const sent = await page.evaluate(() => window.__sbSent);
    const recent = await page.evaluate(() => window.SupportbridgeErrors.recent());
    check('no CSP violation', violations.length === 0, violations);
    check('every batch answered 202', sent.every((s) => s.status === 202), sent);
    check('all three events sent', sent.reduce((n, s) => n + s.n, 0) === 3, sent);
    check('at most one batch per 10 s', sent.every((s, i) => i === 0 || s.at - sent[i - 1].at >= 9900), sent);
    const kinds = recent.map((e) => e.kind).sort();
    check('recent() holds the error, the rejection and the 502', JSON.stringify(kinds) === '["error","http","unhandledrejection"]', recent);
    const http = recent.find((e) => e.kind === 'http') || {};
    check('the 502 carries its request id and a scrubbed URL', http.status === 502 && http.requestId === 'req-browser-502' &&
      /\/fail\?token=\[redacted\]&n=1$/.test(http.url), http);
    check('the page URL lost its secret', recent.every((e) => !/hunter2|#/.test(e.url || '')), recent);
  } finally {
    await browser.close();
  }
  console.log(failed ? `${failed} checks failed` : 'all checks passed');
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
