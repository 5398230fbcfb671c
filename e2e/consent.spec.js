// Browser test of the customer consent page. It drives a real Chromium (the system's
// /usr/bin/chromium, through playwright-core) over a consent link given in SB_E2E_URL:
// the page is used with JavaScript switched off, as a customer with script blocked would,
// approved for a shorter duration than asked, checked, and revoked; axe-core checks the
// decision page and the granted page for serious or critical accessibility violations.
// Exit status 0 means every check passed.
//
//   SB_E2E_URL=http://127.0.0.1:8080/consent/<token> node e2e/consent.spec.js
'use strict';

const path = require('node:path');
const { chromium } = require('playwright-core');

const url = process.env.SB_E2E_URL;
const executablePath = process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium';
const axePath = path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js');
// A phone-sized viewport: the page must be readable there without sideways scrolling.
const phone = { width: 375, height: 740 };

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

// audit runs axe-core on the page and fails on serious or critical violations. The page's
// CSP forbids scripts, so the context that runs it bypasses CSP; the customer's does not.
async function audit(page, name) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations.filter((x) => !bad.includes(x))) {
    console.log(`note ${name}: axe ${v.impact}: ${v.id}: ${v.help}`);
  }
  check(`${name}: no serious or critical axe violations`, bad.length === 0,
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; '));
}

async function fitsPhone(page, name) {
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
  }));
  check(`${name}: no sideways scrolling on a phone`, scroll <= inner, `scrollWidth ${scroll} > ${inner}`);
}

async function main() {
  if (!url) {
    throw new Error('set SB_E2E_URL to a consent link');
  }
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    // The customer: no JavaScript, CSP enforced, a phone.
    const customer = await browser.newContext({ javaScriptEnabled: false, viewport: phone });
    // The auditor: the same page with axe injected.
    const auditor = await browser.newContext({ bypassCSP: true, viewport: phone });
    const page = await customer.newPage();
    const auditPage = await auditor.newPage();

    // Decision page.
    let resp = await page.goto(url);
    check('decision page answers 200', resp.status() === 200, `status ${resp.status()}`);
    const headers = resp.headers();
    check('decision page is not cached', headers['cache-control'] === 'no-store', headers['cache-control']);
    check('decision page sends no referrer', headers['referrer-policy'] === 'no-referrer', headers['referrer-policy']);
    check('decision page CSP forbids scripts', /default-src 'none'/.test(headers['content-security-policy'] || ''));
    check('page language is set', (await page.getAttribute('html', 'lang')) === 'en');
    check('decision page has one h1', (await page.locator('h1').count()) === 1);
    const options = await page.locator('select#duration option').evaluateAll(
      (os) => os.map((o) => ({ value: o.value, selected: o.selected })));
    check('duration choice offers the asked duration, selected, and shorter ones',
      options.length >= 2 && options[0].selected, JSON.stringify(options));
    // The stylesheet is inline and allowed by its hash; if the hash were wrong the CSP would
    // drop it and the approve button would have the browser's grey.
    const approveColor = await page.locator('button[type=submit]').first().evaluate((b) => getComputedStyle(b).backgroundColor);
    check('stylesheet applies under the CSP', approveColor === 'rgb(11, 92, 173)', approveColor);

    await auditPage.goto(url);
    await audit(auditPage, 'decision page');
    await fitsPhone(auditPage, 'decision page');

    // Keyboard order: duration, approve, reason, deny.
    const order = [];
    for (let i = 0; i < 12; i++) {
      await auditPage.keyboard.press('Tab');
      order.push(await auditPage.evaluate(() => {
        const e = document.activeElement;
        return e ? (e.id || e.textContent.trim() || e.tagName) : '';
      }));
    }
    const at = (x) => order.indexOf(x);
    check('focus order follows the page: duration, approve, reason, deny',
      at('duration') >= 0 && at('duration') < at('Approve access') && at('Approve access') < at('reason') &&
      at('reason') < at('Deny access'), order.join(' > '));

    // Approve for a shorter time than asked, without JavaScript.
    const shorter = options[1].value;
    await page.selectOption('select#duration', shorter);
    await Promise.all([page.waitForNavigation(), page.click('text=Approve access')]);
    check('approval lands back on the consent page', page.url() === url, page.url());
    const status = await page.locator('[role=status]').innerText();
    check('state page says access is active with time left', /Access is active: .* left/.test(status), status);
    check('state page offers revocation', (await page.locator('text=Revoke access now').count()) === 1);
    check('state page lists reads', (await page.locator('h2', { hasText: 'Reads of your logs' }).count()) === 1);

    resp = await auditPage.goto(url);
    await audit(auditPage, 'granted page');
    await fitsPhone(auditPage, 'granted page');

    // Revoke.
    await Promise.all([page.waitForNavigation(), page.click('text=Revoke access now')]);
    const after = await page.locator('h1').innerText();
    check('revocation is shown', after === 'You revoked access', after);
    check('no revoke button after revocation', (await page.locator('text=Revoke access now').count()) === 0);

    await customer.close();
    await auditor.close();
  } finally {
    await browser.close();
  }
}

main()
  .catch((err) => {
    failed++;
    console.log(`FAIL ${err && err.stack ? err.stack : err}`);
  })
  .finally(() => {
    console.log(`consent e2e: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
  });
