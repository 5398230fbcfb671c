// Unit tests of the report widget's rules that need no browser: attachment limits, what the
// recent-errors opt-in sends, the sentence for each failure, polling backoff, the status
// wording (with and without emailSource), and the transports' requests.
//
//   node --test e2e/report-widget.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  addFiles, MAX_FILES, MAX_TOTAL_BYTES, screenshotName, recentErrorsPayload, readRecentErrors, validateFields,
  buildReport, failure, pollDelay, statusView, waitWords, retryAfterSeconds, truncateBytes, newIdempotencyKey,
  environmentOf,
} from '../web/report-widget/widget.js';
import { connectTransport, contextToken } from '../web/report-widget/connect.js';
import { requestRemoteTransport } from '../forge/static/report-widget/src/transport.js';

const file = (name, size, type) => ({ name, size, type });

test('addFiles keeps at most 5 files and 10 MiB in all, of accepted types', () => {
  const five = Array.from({ length: 5 }, (_, i) => file(`s${i}.png`, 1000, 'image/png'));
  let r = addFiles([], [...five, file('six.png', 10, 'image/png')]);
  assert.equal(r.files.length, MAX_FILES);
  assert.match(r.problems[0], /six\.png was not added: at most 5 files/);

  r = addFiles([file('big.png', MAX_TOTAL_BYTES - 10, 'image/png')], [file('more.pdf', 11, 'application/pdf'), file('ok.txt', 10, 'text/plain')]);
  assert.deepEqual(r.files.map((f) => f.name), ['big.png', 'ok.txt']);
  assert.match(r.problems[0], /more\.pdf .* 10\.0 MB in all/);

  r = addFiles([], [file('a.exe', 1, 'application/x-msdownload'), file('b.log', 1, ''), file('c.json', 1, 'application/json'), file('d.docx', 1, '')]);
  assert.deepEqual(r.files.map((f) => f.name), ['b.log', 'c.json']);
  assert.equal(r.problems.length, 2);
});

test('screenshotName names pasted images by time', () => {
  assert.equal(screenshotName('image/png', new Date(2026, 11, 4, 9, 5, 7)), 'screenshot-2026-12-04-090507.png');
  assert.equal(screenshotName('image/jpeg', new Date(2026, 0, 1, 0, 0, 0)), 'screenshot-2026-01-01-000000.jpg');
});

test('recentErrorsPayload sends what error-capture kept, in the report shape', () => {
  const events = [
    { kind: 'error', message: 'TypeError: x is undefined', stack: 'at a', url: 'https://app.example/page', time: '2026-12-04T10:00:00.000Z' },
    { kind: 'http', message: 'GET https://app.example/api → 502', status: 502, requestId: 'req-1', url: 'https://app.example/api', time: '2026-12-04T10:00:01.000Z' },
    { kind: 'http', message: 'GET https://app.example/api', status: 503, requestId: 'req-1', time: 'not a time' },
    { kind: 'error', message: '   ' },
    null,
  ];
  const got = recentErrorsPayload(events);
  assert.deepEqual(got.recentErrors, [
    { message: 'TypeError: x is undefined', occurredAt: '2026-12-04T10:00:00.000Z', source: 'https://app.example/page' },
    { message: 'GET https://app.example/api → 502', occurredAt: '2026-12-04T10:00:01.000Z', source: 'https://app.example/api' },
    { message: 'GET https://app.example/api (HTTP 503)', source: 'http' },
  ]);
  assert.deepEqual(got.requestIds, ['req-1']);
  const many = Array.from({ length: 80 }, (_, i) => ({ kind: 'error', message: `e${i}`, url: 'x'.repeat(400) }));
  const capped = recentErrorsPayload(many);
  assert.equal(capped.recentErrors.length, 50);
  assert.equal(capped.recentErrors[0].message, 'e30');
  assert.ok(capped.recentErrors[0].source.length <= 255);
  assert.ok(new TextEncoder().encode(recentErrorsPayload([{ message: 'é'.repeat(5000) }]).recentErrors[0].message).length <= 4096);
});

test('readRecentErrors reads the tab storage error-capture writes, and survives junk', () => {
  const store = (v) => ({ sessionStorage: { getItem: () => v } });
  assert.deepEqual(readRecentErrors(store('[{"kind":"error","message":"m"}]')), [{ kind: 'error', message: 'm' }]);
  assert.deepEqual(readRecentErrors(store('{not json')), []);
  assert.deepEqual(readRecentErrors(store(null)), []);
  assert.deepEqual(readRecentErrors({ SupportbridgeErrors: { recent: () => [{ message: 'live' }] } }), [{ message: 'live' }]);
  assert.deepEqual(readRecentErrors({ get sessionStorage() { throw new Error('blocked'); } }), []);
});

test('validateFields uses the service limits', () => {
  assert.deepEqual(validateFields({ summary: 'Export fails', description: '' }), {});
  assert.match(validateFields({ summary: '  ' }).summary, /Enter a short summary/);
  assert.match(validateFields({ summary: 'x'.repeat(256) }).summary, /at most 255/);
  assert.match(validateFields({ summary: 'a\nb' }).summary, /single line/);
  assert.match(validateFields({ summary: 'ok', description: 'x'.repeat(32769) }).description, /too long/);
});

test('buildReport sends errors only when opted in, and never an email', () => {
  const errors = { recentErrors: [{ message: 'm' }], requestIds: ['r1'] };
  const base = { summary: ' Export fails ', description: 'It spins.', errors, environment: { locale: 'en-GB' } };
  assert.deepEqual(buildReport({ ...base, includeErrors: false }), { summary: 'Export fails', description: 'It spins.', environment: { locale: 'en-GB' } });
  assert.deepEqual(buildReport({ ...base, includeErrors: true }), {
    summary: 'Export fails', description: 'It spins.', recentErrors: [{ message: 'm' }], operation: { requestIds: ['r1'] }, environment: { locale: 'en-GB' },
  });
  assert.ok(!('email' in buildReport({ ...base, includeErrors: true })));
});

test('environmentOf sends only values the service accepts', () => {
  const env = environmentOf({ navigator: { language: 'en-GB' }, screen: { width: 1280, height: 800 } });
  assert.equal(env.locale, 'en-GB');
  assert.equal(env.screen, '1280x800');
  assert.ok(!('locale' in environmentOf({ navigator: { language: 'en_GB<script>' } })));
});

test('failure words every refusal for a person, with the wait', () => {
  const now = Date.parse('2026-12-04T10:00:00Z');
  const f = (status, body, headers = {}) => failure({ status, body, headers }, now);
  assert.match(f(0).message, /offline/);
  assert.match(f(413).message, /too large .* 5 files and 10\.0 MB in all/);
  assert.match(f(415).message, /PNG, JPEG, GIF, WebP, PDF, text and JSON/);
  let r = f(429, { status: 429 }, { 'retry-after': '120' });
  assert.equal(r.wait, 120);
  assert.match(r.message, /several reports .* in 2 minutes/);
  r = f(429, null, { 'retry-after': 'Fri, 04 Dec 2026 10:00:45 GMT' });
  assert.equal(r.wait, 45);
  assert.match(r.message, /in 45 seconds/);
  r = f(503, null, { 'retry-after': '5' });
  assert.equal(r.wait, 5);
  assert.match(r.message, /nothing was filed.* in 5 seconds/);
  r = f(400, { errors: [{ field: '/summary', message: 'is required' }] });
  assert.deepEqual(r.fields, { summary: 'This summary is required.' });
  assert.match(f(400, { errors: [{ field: '/environment/locale', message: 'is not a locale' }] }).message, /environment\/locale is not a locale/);
  assert.match(f(422).message, /already sent a different report/);
  assert.match(f(401).message, /expired/);
  assert.match(f(500, { requestId: 'abc' }).message, /error 500.*reference abc/);
});

test('waitWords and retryAfterSeconds', () => {
  assert.equal(waitWords(1), '1 second');
  assert.equal(waitWords(59), '59 seconds');
  assert.equal(waitWords(61), '2 minutes');
  assert.equal(waitWords(3600), '1 hour');
  assert.equal(waitWords(3601), '2 hours');
  assert.ok(Number.isNaN(retryAfterSeconds(null)));
  assert.equal(retryAfterSeconds('7'), 7);
});

test('pollDelay backs off to 15 s and honours a longer Retry-After', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((n) => pollDelay(n)), [1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  assert.equal(pollDelay(0, 30), 30000);
  assert.equal(pollDelay(4, 2), 15000);
});

test('statusView: ticket key, portal link, and the email note only for unverified', () => {
  let v = statusView({ status: 'queued' });
  assert.equal(v.done, false);
  assert.equal(v.emailNote, '');
  v = statusView({ status: 'delivered', ticketKey: 'SUP-7', ticketUrl: 'https://desk.example/servicedesk/customer/portal/1/SUP-7' });
  assert.equal(v.done, true);
  assert.equal(v.title, 'Ticket SUP-7 created');
  assert.equal(v.link, 'https://desk.example/servicedesk/customer/portal/1/SUP-7');
  assert.equal(v.emailNote, '', 'no emailSource field: nothing said');
  assert.equal(statusView({ status: 'delivered', emailSource: 'site' }).emailNote, '');
  assert.match(statusView({ status: 'delivered', emailSource: 'unverified' }).emailNote, /did not confirm an email address .* customer portal/);
  assert.equal(statusView({ status: 'delivered', ticketUrl: 'javascript:alert(1)' }).link, '', 'only http(s) links');
  assert.equal(statusView({ status: 'failed' }).done, true);
});

test('truncateBytes and newIdempotencyKey', () => {
  assert.equal(truncateBytes('abc', 10), 'abc');
  assert.ok(new TextEncoder().encode(truncateBytes('€'.repeat(10), 10)).length <= 10);
  const k = newIdempotencyKey({ getRandomValues: (a) => a.fill(7) });
  assert.match(k, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(newIdempotencyKey(), newIdempotencyKey());
});

// A stand-in XMLHttpRequest that records what is sent and answers as told.
function fakeWindow(answer, ap) {
  const sent = [];
  class FormData {
    constructor() { this.parts = []; }
    append(name, value, filename) { this.parts.push({ name, value, filename }); }
  }
  class XMLHttpRequest {
    constructor() { this.headers = {}; this.listeners = {}; this.upload = { addEventListener: (ev, f) => { this.uploadProgress = f; } }; }
    open(method, url) { this.method = method; this.url = url; }
    setRequestHeader(k, v) { this.headers[k] = v; }
    addEventListener(ev, f) { this.listeners[ev] = f; }
    getResponseHeader(k) { return k === 'Retry-After' ? answer.retryAfter ?? null : null; }
    send(body) {
      this.body = body;
      sent.push(this);
      if (this.uploadProgress) this.uploadProgress({ lengthComputable: true, loaded: 5, total: 10 });
      if (answer.status === 0) { this.listeners.error(); return; }
      this.status = answer.status;
      this.responseText = JSON.stringify(answer.body);
      this.listeners.load();
    }
  }
  return { win: { XMLHttpRequest, FormData, AP: ap }, sent };
}

test('connectTransport: JSON without files, multipart with them, one Idempotency-Key', async () => {
  const { win, sent } = fakeWindow({ status: 202, body: { id: 'r1', status: 'queued' } });
  const t = connectTransport(win, '/base/', 'tok-from-page');
  let res = await t.send({ report: { summary: 's' }, files: [], idempotencyKey: 'k1' });
  assert.equal(res.status, 202);
  assert.deepEqual(res.body, { id: 'r1', status: 'queued' });
  assert.equal(sent[0].url, '/base/api/v1/reports');
  assert.equal(sent[0].headers.Authorization, 'JWT tok-from-page');
  assert.equal(sent[0].headers['Idempotency-Key'], 'k1');
  assert.equal(sent[0].headers['Content-Type'], 'application/json');
  assert.equal(sent[0].body, '{"summary":"s"}');

  const progress = [];
  res = await t.send({ report: { summary: 's' }, files: [{ name: 'a.png' }], idempotencyKey: 'k1', onProgress: (l, tot) => progress.push([l, tot]) });
  assert.equal(sent[1].headers['Content-Type'], undefined, 'the browser sets the multipart boundary');
  assert.deepEqual(sent[1].body.parts.map((p) => [p.name, p.filename]), [['report', undefined], ['attachment', 'a.png']]);
  assert.deepEqual(progress, [[5, 10]]);

  await t.status('r/1');
  assert.equal(sent[2].method, 'GET');
  assert.equal(sent[2].url, '/base/api/v1/reports/r%2F1');
});

test('connectTransport: no answer is status 0; Retry-After is passed on', async () => {
  let { win } = fakeWindow({ status: 0 });
  assert.equal((await connectTransport(win, '', 't').send({ report: {}, files: [], idempotencyKey: 'k' })).status, 0);
  ({ win } = fakeWindow({ status: 429, body: { status: 429 }, retryAfter: '30' }));
  const res = await connectTransport(win, '', 't').send({ report: {}, files: [], idempotencyKey: 'k' });
  assert.equal(res.status, 429);
  assert.equal(res.headers['retry-after'], '30');
});

test('contextToken prefers all.js (callback or promise) over the page token', async () => {
  assert.equal(await contextToken({ AP: { context: { getToken: (cb) => cb('from-callback') } } }, 'page'), 'from-callback');
  assert.equal(await contextToken({ AP: { context: { getToken: () => Promise.resolve('from-promise') } } }, 'page'), 'from-promise');
  assert.equal(await contextToken({}, 'page'), 'page');
  await assert.rejects(contextToken({}, ''));
});

test('Forge requestRemoteTransport: the report as JSON with the Idempotency-Key', async () => {
  const calls = [];
  const requestRemote = async (key, init) => {
    calls.push([key, init]);
    return new Response(JSON.stringify({ id: 'r2', status: 'queued' }), { status: 202, headers: { 'Retry-After': '3' } });
  };
  const t = requestRemoteTransport(requestRemote);
  assert.equal(t.canAttach, false);
  const res = await t.send({ report: { summary: 's' }, files: [], idempotencyKey: 'k9' });
  assert.equal(res.status, 202);
  assert.equal(res.headers['retry-after'], '3');
  assert.equal(calls[0][0], 'supportbridge');
  assert.equal(calls[0][1].path, '/api/v1/reports');
  assert.equal(calls[0][1].method, 'POST');
  assert.equal(calls[0][1].headers['Idempotency-Key'], 'k9');
  assert.equal(calls[0][1].body, '{"summary":"s"}');
  await t.status('r2');
  assert.equal(calls[1][1].path, '/api/v1/reports/r2');
  const offline = requestRemoteTransport(async () => { throw new Error('network'); });
  assert.equal((await offline.status('x')).status, 0);
});
