// A stand-in for supportbridge's customer-facing site API (the JSON contract of
// GET/POST /api/v1/site/...), kept in memory, for developing the "Support access" admin page
// and for the browser tests when no real server is given. It also serves the page itself:
// GET /connect/support-access renders web/site-admin/page.html by replacing its template
// fields the way the Go server's html/template does, with the same CSP the server must send;
// /static/site-admin/* serves web/site-admin/*; /forge/* serves a built Forge Custom UI when
// started with forgeDir.
//
//   node e2e/mock-site-api.js [port]        # prints the admin page URL
//
// Test hooks (never part of the real contract): POST /__mock/fail {status, retryAfter, detail,
// times} makes the next API calls fail that way; POST /__mock/reset reseeds the data;
// GET /__mock/log lists the API calls; ?alljs=mock on the page loads a stand-in all.js.
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const webDir = path.join(__dirname, '..', 'web', 'site-admin');
const PAGE_TOKEN = 'mock-page-token';
const FORGE_FIT = 'mock-forge-fit';
const ADMIN_ACCOUNT = '5b10ac8d82e05b22cc7d4ef5';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

function hours(s) {
  if (s === 'until-revoked') return Infinity;
  const m = /^(\d+)h$/.exec(s);
  return m ? Number(m[1]) : NaN;
}

function words(s) {
  const h = hours(s);
  if (h === Infinity) return 'until you revoke it';
  if (h % 24 === 0 && h > 24) return `${h / 24} days`;
  return h === 1 ? '1 hour' : `${h} hours`;
}

// seed builds the data: two pending requests (one 72 h with a preview, one 24 h without),
// one approved with reads, and enough decided ones that the list needs "Load more".
function seed(now = Date.now()) {
  const iso = (ms) => new Date(ms).toISOString();
  const H = 3600e3;
  const agent = { name: 'Dana Agent', email: 'dana.agent@vendor.example' };
  const requests = new Map();
  const details = new Map();
  const grants = new Map();
  const add = (r, extra = {}) => {
    const full = {
      streams: ['app', 'audit'], from: iso(now - 48 * H), to: iso(now - 1 * H), personalData: false,
      agent, createdAt: iso(now), expiresAt: iso(now + 72 * H), ...r,
    };
    full.durationWords = words(full.duration);
    requests.set(full.id, full);
    details.set(full.id, { accesses: [], audit: [{ seq: 1, time: full.createdAt, action: 'access_requested', actor: { kind: 'agent', name: agent.name }, details: { ticketKey: full.ticketKey, duration: full.duration } }], ...extra });
    return full;
  };
  add({
    id: 'req-pending-72h', ticketKey: 'SUP-101', status: 'pending', duration: '72h', personalData: true,
    // A reason that looks like markup: the page must show it as text.
    reason: 'Checkout fails for some users <img src=x data-injected=1> — need the <b>app</b> log\nfrom Monday.',
    createdAt: iso(now - 1 * H),
  }, {
    preview: {
      available: true, files: 3, bytes: 1843200,
      lines: [
        { time: iso(now - 40 * H), stream: 'app', line: 'INFO  checkout started cart=81 user=<redacted>' },
        { time: iso(now - 39 * H), stream: 'app', line: 'ERROR payment provider timeout after 30s <script>x</script>' },
        { time: iso(now - 38 * H), stream: 'audit', line: 'WARN  retry 1/3 for order 5521 with a very long line that goes on and on and on and on and on and on and on and on and on to test scrolling' },
      ],
    },
  });
  add({
    id: 'req-pending-24h', ticketKey: 'SUP-102', status: 'pending', duration: '24h',
    reason: 'Sync job stops at night.', streams: ['sync'], createdAt: iso(now - 2 * H),
  }, { preview: { available: false, reason: 'the log source is not reachable right now' } });
  const approved = add({
    id: 'req-approved', ticketKey: 'SUP-90', status: 'approved', duration: '168h', reason: 'Slow page loads.',
    createdAt: iso(now - 30 * H), decidedAt: iso(now - 29 * H), decidedBy: { kind: 'site-admin', accountId: ADMIN_ACCOUNT }, grantId: 'grant-90',
  }, {
    preview: { available: true, files: 1, bytes: 2048, lines: [{ time: iso(now - 40 * H), stream: 'app', line: 'INFO page rendered in 2300ms' }] },
  });
  grants.set('grant-90', {
    id: 'grant-90', requestId: approved.id, ticketKey: approved.ticketKey, streams: approved.streams, from: approved.from, to: approved.to,
    personalData: false, agent, start: iso(now - 29 * H), end: iso(now + 139 * H), untilRevoked: false, status: 'active',
    approvedBy: { accountId: ADMIN_ACCOUNT },
  });
  details.get(approved.id).accesses.push({ time: iso(now - 20 * H), agent: { name: agent.name }, stream: 'app', from: approved.from, to: approved.to, lines: 1200, bytes: 96000, sha256: 'ab'.repeat(32) });
  details.get(approved.id).audit.push(
    { seq: 2, time: approved.decidedAt, action: 'approved', actor: { kind: 'site-admin', accountId: ADMIN_ACCOUNT }, details: { duration: '168h' } },
    { seq: 3, time: iso(now - 20 * H), action: 'logs_read', actor: { kind: 'agent', name: agent.name }, details: { stream: 'app', bytes: 96000 } });
  add({
    id: 'req-pending-deny', ticketKey: 'SUP-103', status: 'pending', duration: 'until-revoked',
    reason: 'Standing access for the monthly health check.', streams: ['app'], createdAt: iso(now - 3 * H),
  }, { preview: { available: true, files: 0, bytes: 0, lines: [] } });
  add({ id: 'req-denied', ticketKey: 'SUP-80', status: 'denied', duration: '24h', reason: 'Login loop.', createdAt: iso(now - 50 * H), decidedAt: iso(now - 49 * H), decidedBy: { kind: 'site-admin', accountId: ADMIN_ACCOUNT }, denyReason: 'Please use the test site.' }, { preview: { available: false, reason: 'the request is decided' } });
  for (let i = 0; i < 22; i++) {
    add({ id: `req-old-${i}`, ticketKey: `SUP-${10 + i}`, status: i % 2 ? 'expired' : 'cancelled', duration: '4h', reason: `Old question ${i}.`, createdAt: iso(now - (100 + i) * H), cancelReason: i % 2 ? undefined : 'Solved without logs.' }, { preview: { available: false, reason: 'the request is closed' } });
  }
  return { requests, details, grants, seqs: new Map() };
}

function problem(res, status, title, detail, extraHeaders = {}) {
  send(res, status, { type: 'about:blank', title, status, detail }, { 'Content-Type': 'application/problem+json', ...extraHeaders });
}

function send(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(data);
}

// pageCSP is what the Go server must send with the admin page: scripts and styles from
// itself (and all.js's origin), calls to itself, framed only by the customer's site.
function pageCSP(frameAncestors, allJSOrigin) {
  return [
    "default-src 'none'",
    `script-src 'self'${allJSOrigin ? ` ${allJSOrigin}` : ''}`,
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors}`,
  ].join('; ');
}

function readBody(req) {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c) => { s += c; if (s.length > 1e6) req.destroy(); });
    req.on('end', () => {
      if (!s) return resolve({});
      try { resolve(JSON.parse(s)); } catch (_) { resolve(null); }
    });
  });
}

function escapeAttr(s) {
  return String(s).replace(/&/g, '&amp;').replace(/"/g, '&#34;').replace(/'/g, '&#39;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// renderPage does what html/template does for these fields: attribute escaping, and the
// {{if .AllJSURL}} block kept or dropped. Template comments are removed.
function renderPage(fields) {
  let html = fs.readFileSync(path.join(webDir, 'page.html'), 'utf8');
  html = html.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}\s*/g, '');
  html = html.replace(/\{\{if \.AllJSURL\}\}([\s\S]*?)\{\{end\}\}/g, (_, inner) => (fields.AllJSURL ? inner : ''));
  return html.replace(/\{\{\.(\w+)\}\}/g, (_, k) => escapeAttr(fields[k] ?? ''));
}

function startMockSiteAPI({ port = 0, host = '127.0.0.1', frameAncestors = "'self'", allJSURL = '', forgeDir = '', now } = {}) {
  let data = seed(now);
  let failures = [];
  const log = [];

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const p = url.pathname;
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');

    if (p === '/__mock/reset' && req.method === 'POST') { data = seed(now); failures = []; return send(res, 200, {}); }
    if (p === '/__mock/fail' && req.method === 'POST') {
      const b = (await readBody(req)) || {};
      for (let i = 0; i < (b.times || 1); i++) failures.push(b);
      return send(res, 200, {});
    }
    if (p === '/__mock/log') return send(res, 200, log);
    if (p === '/__mock/all.js') {
      // A stand-in for Connect's all.js: just the AP.resize the page calls after rendering.
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      return res.end('window.__sbResizes = 0; window.AP = { resize: function () { window.__sbResizes++; } };\n');
    }

    if (p === '/connect/support-access' && req.method === 'GET') {
      const origin = `http://${req.headers.host}`;
      const allJS = url.searchParams.get('alljs') === 'mock' ? `${origin}/__mock/all.js` : allJSURL;
      const html = renderPage({
        PageToken: PAGE_TOKEN, APIBase: origin, RequestID: url.searchParams.get('request') || '',
        ScriptURL: '/static/site-admin/connect.js?v=dev', StyleURL: '/static/site-admin/app.css?v=dev', AllJSURL: allJS,
      });
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store',
        'Content-Security-Policy': pageCSP(frameAncestors, allJS ? new URL(allJS).origin : ''),
      });
      return res.end(html);
    }
    if (p.startsWith('/static/site-admin/') && req.method === 'GET') {
      return serveFile(res, webDir, p.slice('/static/site-admin/'.length), 'public, max-age=31536000, immutable');
    }
    if (forgeDir && (p === '/forge/' || p.startsWith('/forge/')) && req.method === 'GET') {
      // Forge serves Custom UI under a CSP like this one (no inline script or style).
      res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'");
      const rel = p.slice('/forge/'.length);
      return serveFile(res, forgeDir, !rel || rel.endsWith('/') ? `${rel}index.html` : rel, 'no-store');
    }
    if (p.startsWith('/api/v1/site/')) return api(req, res, url);
    problem(res, 404, 'Not Found', 'No such route.');
  });

  function serveFile(res, dir, rel, cache) {
    const file = path.resolve(dir, rel);
    if (!file.startsWith(path.resolve(dir) + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      return problem(res, 404, 'Not Found', 'No such file.');
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Cache-Control': cache });
    fs.createReadStream(file).pipe(res);
  }

  async function api(req, res, url) {
    const auth = req.headers.authorization || '';
    log.push({ method: req.method, path: url.pathname + url.search, auth: auth.replace(/\s.*/, ' …') });
    if (auth !== `Bearer ${PAGE_TOKEN}` && auth !== `Bearer ${FORGE_FIT}`) {
      return problem(res, 401, 'Unauthorized', 'The page token is missing or expired.');
    }
    if (failures.length) {
      const f = failures.shift();
      return problem(res, f.status, f.title || 'Failure', f.detail || '', f.retryAfter ? { 'Retry-After': String(f.retryAfter) } : {});
    }
    const p = url.pathname.replace('/api/v1/site', '');
    let m;
    if (p === '/access-requests' && req.method === 'GET') {
      const all = [...data.requests.values()].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
      const start = Number(url.searchParams.get('cursor') || 0) || 0;
      const limit = Math.min(Math.max(Number(url.searchParams.get('limit') || 20), 1), 100);
      const items = all.slice(start, start + limit);
      const body = { items };
      if (start + limit < all.length) body.nextCursor = String(start + limit);
      return send(res, 200, body);
    }
    if ((m = /^\/access-requests\/([^/]+)$/.exec(p)) && req.method === 'GET') {
      const r = data.requests.get(decodeURIComponent(m[1]));
      if (!r) return problem(res, 404, 'Not Found', 'No such request on this site.');
      return send(res, 200, detail(r));
    }
    if ((m = /^\/access-requests\/([^/]+)\/(approve|deny)$/.exec(p)) && req.method === 'POST') {
      const r = data.requests.get(decodeURIComponent(m[1]));
      if (!r) return problem(res, 404, 'Not Found', 'No such request on this site.');
      const body = await readBody(req);
      if (body === null) return problem(res, 400, 'Bad Request', 'The body is not JSON.');
      if (r.status === 'expired' || r.status === 'cancelled') return problem(res, 410, 'Gone', 'The request expired or was withdrawn.');
      if (r.status !== 'pending') return problem(res, 409, 'Conflict', 'The request is already decided.');
      const d = data.details.get(r.id);
      const now = new Date();
      if (m[2] === 'deny') {
        const note = typeof body.note === 'string' ? body.note : '';
        if (note.length > 1000) return send(res, 400, { type: 'about:blank', title: 'Bad Request', status: 400, errors: [{ field: 'note', message: 'must be at most 1000 characters' }] }, { 'Content-Type': 'application/problem+json' });
        Object.assign(r, { status: 'denied', decidedAt: now.toISOString(), decidedBy: { kind: 'site-admin', accountId: ADMIN_ACCOUNT }, denyReason: note || undefined });
        d.audit.push({ seq: d.audit.length + 1, time: r.decidedAt, action: 'denied', actor: r.decidedBy, details: {} });
        return send(res, 200, { request: r });
      }
      const dur = body.duration || r.duration;
      if (Number.isNaN(hours(dur)) || hours(dur) > hours(r.duration)) {
        return send(res, 400, { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'The duration is invalid.', errors: [{ field: 'duration', message: 'must be no longer than the requested duration' }] }, { 'Content-Type': 'application/problem+json' });
      }
      const g = {
        id: `grant-${r.id}`, requestId: r.id, ticketKey: r.ticketKey, streams: r.streams, from: r.from, to: r.to, personalData: r.personalData,
        agent: r.agent, start: now.toISOString(), untilRevoked: dur === 'until-revoked', status: 'active', approvedBy: { accountId: ADMIN_ACCOUNT },
      };
      if (g.untilRevoked) g.reconfirmBy = new Date(now.getTime() + 90 * 86400e3).toISOString();
      else g.end = new Date(now.getTime() + hours(dur) * 3600e3).toISOString();
      data.grants.set(g.id, g);
      Object.assign(r, { status: 'approved', decidedAt: g.start, decidedBy: { kind: 'site-admin', accountId: ADMIN_ACCOUNT }, grantId: g.id, approvedDuration: dur });
      d.audit.push({ seq: d.audit.length + 1, time: g.start, action: 'approved', actor: r.decidedBy, details: { duration: dur } });
      return send(res, 200, { grant: g });
    }
    if (p === '/grants' && req.method === 'GET') return send(res, 200, { items: [...data.grants.values()] });
    if ((m = /^\/grants\/([^/]+)\/revoke$/.exec(p)) && req.method === 'POST') {
      const g = data.grants.get(decodeURIComponent(m[1]));
      if (!g) return problem(res, 404, 'Not Found', 'No such grant on this site.');
      if (g.status !== 'active') return problem(res, 409, 'Conflict', 'The grant has already ended.');
      Object.assign(g, { status: 'revoked', endedAt: new Date().toISOString(), endReason: 'revoked_by_customer' });
      const d = data.details.get(g.requestId);
      d.audit.push({ seq: d.audit.length + 1, time: g.endedAt, action: 'revoked', actor: { kind: 'site-admin', accountId: ADMIN_ACCOUNT }, details: {} });
      return send(res, 200, { grant: g });
    }
    return problem(res, 404, 'Not Found', 'No such route.');
  }

  function detail(r) {
    const d = data.details.get(r.id);
    const grant = r.grantId ? data.grants.get(r.grantId) || null : null;
    let timeLeftSeconds = 0;
    if (grant && grant.status === 'active' && grant.end) timeLeftSeconds = Math.max(0, Math.floor((Date.parse(grant.end) - Date.now()) / 1000));
    else if (r.status === 'pending') timeLeftSeconds = Math.max(0, Math.floor((Date.parse(r.expiresAt) - Date.now()) / 1000));
    return {
      request: r, grant, accesses: d.accesses, audit: d.audit, timeLeftSeconds, maxDuration: r.duration,
      grantMaxBytes: 50 * 1024 * 1024, preview: d.preview || { available: false, reason: 'no preview' },
    };
  }

  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      const origin = `http://${host}:${actual}`;
      resolve({
        server, origin, adminURL: `${origin}/connect/support-access`, log,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
      });
    });
  });
}

module.exports = { startMockSiteAPI, PAGE_TOKEN, FORGE_FIT, ADMIN_ACCOUNT, pageCSP };

if (require.main === module) {
  startMockSiteAPI({ port: Number(process.argv[2] || 8099), frameAncestors: process.env.SB_MOCK_FRAME_ANCESTORS || "'self' http://127.0.0.1:*" })
    .then(({ adminURL }) => console.log(`mock site API: ${adminURL}`));
}
