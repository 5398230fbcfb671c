// Browser test of the Forge Custom UI of the "Support access" admin page. It builds
// forge/static/site-admin with @forge/bridge stood in by e2e/forge-bridge-stub.js (which
// forwards bridge calls to the mock site API over fetch), once per bridge call the page can
// use (requestRemote, invokeRemote), loads each build in Chromium under a CSP like Forge's,
// and checks the list → detail → approve flow runs through the bridge transport. It also
// checks that forge/manifest.yml is valid against @forge/manifest's schema and that the real
// @forge/bridge bundles. Exit status 0 means every check passed.
//
//   node e2e/forge-admin.spec.js        (needs npm install in e2e/ and forge/static/site-admin/)
//
// Environment: SB_E2E_CHROMIUM (default /usr/bin/chromium).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');
const { startMockSiteAPI, ADMIN_ACCOUNT } = require('./mock-site-api.js');

const executablePath = process.env.SB_E2E_CHROMIUM || '/usr/bin/chromium';
const forgeDir = path.join(__dirname, '..', 'forge');
const uiDir = path.join(forgeDir, 'static', 'site-admin');
const axeSource = fs.readFileSync(path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const MODES = ['requestRemote', 'invokeRemote'];

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

function build(outdir, env) {
  execFileSync(process.execPath, [path.join(uiDir, 'build.mjs')], {
    cwd: uiDir, env: { ...process.env, SB_FORGE_OUTDIR: outdir, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
}

// The manifest is checked against the schema the Forge CLI itself validates with.
function checkManifest() {
  const req = (m) => require(path.join(uiDir, 'node_modules', m));
  const Ajv = req('ajv');
  const addFormats = req('ajv-formats');
  const YAML = req('yaml');
  const schema = JSON.parse(fs.readFileSync(path.join(uiDir, 'node_modules', '@forge', 'manifest', 'out', 'schema', 'manifest-schema.json'), 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(schema);
  const manifest = YAML.parse(fs.readFileSync(path.join(forgeDir, 'manifest.yml'), 'utf8'));
  check('manifest.yml is valid against @forge/manifest', validate(manifest), JSON.stringify((validate.errors || []).slice(0, 3)));
  const page = ((manifest.modules || {})['jira:adminPage'] || [])[0] || {};
  const remote = (manifest.remotes || []).find((r) => r.key === 'supportbridge') || {};
  check('manifest: jira:adminPage support-access shows the site-admin resource',
    page.key === 'support-access' && page.title === 'Support access' && page.resource === 'site-admin' &&
    (manifest.resources || []).some((r) => r.key === 'site-admin' && r.path === 'static/site-admin/build'));
  check('manifest: remote supportbridge for fetch with the app system token',
    (remote.operations || []).includes('fetch') && remote.auth && remote.auth.appSystemToken && remote.auth.appSystemToken.enabled === true);
}

async function flow(browser, mock, mode) {
  await fetch(`${mock.origin}/__mock/reset`, { method: 'POST' });
  const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    await page.goto(`${mock.origin}/forge/${mode}/`);
    await page.locator('#sb-list-heading').waitFor({ timeout: 15000 });
    check(`${mode}: the list loads through the bridge`, (await page.locator('a[data-request-id]').count()) > 0);
    await page.locator('a[data-request-id="req-pending-72h"]').click();
    await page.locator('#sb-detail-heading').waitFor({ timeout: 15000 });
    check(`${mode}: the preview shows`, (await page.locator('pre.sb-log').first().innerText()).includes('checkout started'));
    const opts = await page.locator('select#sb-duration option').evaluateAll((os) => os.map((o) => o.value));
    check(`${mode}: durations no longer than asked`, JSON.stringify(opts) === JSON.stringify(['72h', '24h', '8h', '4h', '1h']), JSON.stringify(opts));
    await page.selectOption('select#sb-duration', '4h');

    // A failure's Retry-After comes through the bridge too.
    await fetch(`${mock.origin}/__mock/fail`, { method: 'POST', body: JSON.stringify({ status: 503, retryAfter: 12 }) });
    await page.getByRole('button', { name: 'Approve access' }).click();
    await page.waitForFunction(() => (document.querySelector('.sb-alert') || {}).textContent);
    const t = await page.locator('.sb-alert').textContent();
    check(`${mode}: a 503 is explained with its Retry-After`, /could not confirm your permission/.test(t) && /12 seconds/.test(t), t);

    await page.getByRole('button', { name: 'Approve access' }).click();
    await page.locator('#sb-grant-status').waitFor({ timeout: 15000 });
    const gs = await page.locator('#sb-grant-status').innerText();
    check(`${mode}: approved for 4 hours, active`, /^Access is active: (3 hours( \d+ minutes?)?|4 hours) left/.test(gs), gs);
    const by = await page.locator('.sb-grant dt', { hasText: 'Approved by' }).locator('xpath=following-sibling::dd[1]').innerText();
    check(`${mode}: approved by the site administrator's accountId`, by.includes(ADMIN_ACCOUNT), by);

    await page.evaluate(`${axeSource};0`);
    const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    check(`${mode}: no serious or critical axe violations`, bad.length === 0, bad.map((v) => v.id).join(', '));

    const calls = await page.evaluate(() => window.__sbBridgeCalls || []);
    check(`${mode}: every call went through the bridge's ${mode}`, calls.length >= 4 && calls.every((c) => c.api === mode), JSON.stringify(calls));
    check(`${mode}: calls use the supportbridge remote and /api/v1/site paths`,
      calls.every((c) => (mode === 'invokeRemote' || c.remoteKey === 'supportbridge') && c.path.startsWith('/api/v1/site/')), JSON.stringify(calls));
    check(`${mode}: the approval was a POST with the chosen duration`,
      calls.some((c) => c.method === 'POST' && c.path === '/api/v1/site/access-requests/req-pending-72h/approve' &&
        JSON.parse(c.body || '{}').duration === '4h'), JSON.stringify(calls.filter((c) => c.method === 'POST')));
    check(`${mode}: no CSP violations or script errors`, problems.length === 0, problems.join(' | '));
  } finally {
    await context.close();
  }
}

async function main() {
  checkManifest();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-forge-ui-'));
  let mock = null;
  let browser = null;
  try {
    // The real bridge must bundle (this is what `npm run build` ships).
    try {
      build(path.join(tmp, 'real'), {});
      const js = fs.readFileSync(path.join(tmp, 'real', 'index.js'), 'utf8');
      check('the Custom UI bundles with the real @forge/bridge', js.includes('fetchRemote') && fs.existsSync(path.join(tmp, 'real', 'app.css')));
    } catch (e) {
      check('the Custom UI bundles with the real @forge/bridge', false, String(e.stderr || e));
    }
    for (const mode of MODES) {
      build(path.join(tmp, mode), { SB_FORGE_TRANSPORT: mode, SB_FORGE_BRIDGE_STUB: path.join(__dirname, 'forge-bridge-stub.js') });
    }
    mock = await startMockSiteAPI({ forgeDir: tmp });
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    for (const mode of MODES) await flow(browser, mock, mode);
  } finally {
    if (browser) await browser.close();
    if (mock) await mock.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main()
  .catch((err) => {
    failed++;
    console.log(`FAIL ${err && err.stack ? err.stack : err}`);
  })
  .finally(() => {
    console.log(`forge-admin e2e: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
  });
