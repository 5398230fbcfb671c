// Unit tests of the admin page's rules that need no browser: which durations may be offered,
// the order of the list, the sentence for each failure, and the Forge transports' mapping of
// bridge answers to {status, body, headers}.
//
//   node --test e2e/site-admin-app.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  durationOptions, parseDuration, durationWords, timeLeftWords, sortRequests, problemMessage, bytesWords,
} from '../web/site-admin/app.js';
import { requestRemoteTransport, invokeRemoteTransport } from '../forge/static/site-admin/src/transport.js';

test('parseDuration reads the service durations', () => {
  const cases = [['1h', 3600], ['72h', 259200], ['1h30m', 5400], ['90m', 5400], ['until-revoked', Infinity]];
  for (const [in_, want] of cases) assert.equal(parseDuration(in_), want, in_);
  for (const bad of ['', 'h', '3d', '1.5h', 'forever', undefined]) assert.ok(Number.isNaN(parseDuration(bad)), String(bad));
});

test('durationWords matches the service wording', () => {
  const cases = [['1h', '1 hour'], ['24h', '24 hours'], ['72h', '3 days'], ['168h', '7 days'], ['90m', '90 minutes'], ['until-revoked', 'until you revoke it']];
  for (const [in_, want] of cases) assert.equal(durationWords(in_), want, in_);
});

test('durationOptions never offers more than asked, and always the asked value', () => {
  const values = (req, max) => durationOptions(req, max).map((o) => o.value);
  assert.deepEqual(values('72h', '72h'), ['72h', '24h', '8h', '4h', '1h']);
  assert.deepEqual(values('1h'), ['1h']);
  assert.deepEqual(values('36h', '36h'), ['36h', '24h', '8h', '4h', '1h'], 'a non-standard asked value is included');
  assert.deepEqual(values('until-revoked', 'until-revoked'), ['until-revoked', '720h', '168h', '72h', '24h', '8h', '4h', '1h']);
  assert.deepEqual(values('168h', '24h'), ['24h', '8h', '4h', '1h'], 'the server cap wins when it is shorter');
  const asked = durationOptions('72h', '72h').filter((o) => o.asked);
  assert.deepEqual(asked.map((o) => o.value), ['72h']);
});

test('sortRequests puts pending first, then newest first', () => {
  const r = (id, status, createdAt) => ({ id, status, createdAt });
  const got = sortRequests([
    r('old-denied', 'denied', '2026-01-01T00:00:00Z'),
    r('old-pending', 'pending', '2026-01-02T00:00:00Z'),
    r('new-approved', 'approved', '2026-03-01T00:00:00Z'),
    r('new-pending', 'pending', '2026-02-01T00:00:00Z'),
  ]).map((x) => x.id);
  assert.deepEqual(got, ['new-pending', 'old-pending', 'new-approved', 'old-denied']);
});

test('problemMessage says what happened for each status', () => {
  assert.match(problemMessage({ status: 0 }), /could not be reached.*offline/);
  assert.match(problemMessage({ status: 401 }), /session has expired.*Reload/);
  assert.match(problemMessage({ status: 403, body: { detail: 'You lack ADMINISTER.' } }), /^Only administrators of this site can decide.* You lack ADMINISTER\.$/);
  assert.match(problemMessage({ status: 404 }), /not found/);
  assert.match(problemMessage({ status: 409 }), /already been decided.*Reload/);
  assert.match(problemMessage({ status: 410 }), /expired or was withdrawn/);
  assert.match(problemMessage({ status: 503, headers: { 'retry-after': '30' } }), /could not confirm your permission.*30 seconds/);
  assert.match(problemMessage({ status: 503, headers: { 'retry-after': '1' } }), /in 1 second\./);
  assert.match(problemMessage({ status: 503, headers: {} }), /in a moment/);
  const soon = new Date(Date.now() + 20e3).toUTCString();
  assert.match(problemMessage({ status: 503, headers: { 'retry-after': soon } }), /in (19|20|21) seconds/);
  assert.match(problemMessage({ status: 400, body: { errors: [{ field: 'note', message: 'must be at most 1000 characters' }] } }), /must be at most 1000 characters/);
  assert.match(problemMessage({ status: 500, body: { detail: 'panic: secret' } }), /^Something went wrong on our side/);
});

test('timeLeftWords and bytesWords', () => {
  assert.equal(timeLeftWords(4 * 3600 - 60), '3 hours 59 minutes');
  assert.equal(timeLeftWords(3 * 86400 + 3600 + 60), '3 days 1 hour');
  assert.equal(timeLeftWords(30), 'less than a minute');
  assert.equal(timeLeftWords(0), 'no time');
  assert.equal(bytesWords(512), '512 bytes');
  assert.equal(bytesWords(1843200), '1.8 MB (1,843,200 bytes)');
});

test('requestRemote transport: path, method, JSON body, no Authorization; status, body and Retry-After back', async () => {
  const calls = [];
  const t = requestRemoteTransport(async (key, opts) => {
    calls.push({ key, ...opts });
    return new Response(JSON.stringify({ title: 'busy', status: 503 }), { status: 503, headers: { 'Retry-After': '9', 'Content-Type': 'application/problem+json' } });
  });
  const res = await t.call('POST', '/api/v1/site/access-requests/r1/approve', { duration: '4h' });
  assert.equal(res.status, 503);
  assert.equal(res.body.title, 'busy');
  assert.equal(res.headers['retry-after'], '9');
  assert.equal(calls[0].key, 'supportbridge');
  assert.equal(calls[0].path, '/api/v1/site/access-requests/r1/approve');
  assert.equal(calls[0].method, 'POST');
  assert.equal(calls[0].body, '{"duration":"4h"}');
  assert.ok(!Object.keys(calls[0].headers).some((h) => h.toLowerCase() === 'authorization'));
  const failing = requestRemoteTransport(async () => { throw new Error('bridge gone'); });
  assert.equal((await failing.call('GET', '/api/v1/site/grants')).status, 0);
});

test('invokeRemote transport: status and body back; a rejected FIT is a 401', async () => {
  const ok = invokeRemoteTransport(async (input) => ({ status: 200, headers: { 'retry-after': ['3'] }, body: { echo: input.body } }));
  const res = await ok.call('POST', '/api/v1/site/access-requests/r1/deny', { note: 'no' });
  assert.deepEqual(res, { status: 200, body: { echo: { note: 'no' } }, headers: { 'retry-after': '3' } });
  const expired = invokeRemoteTransport(async () => { throw new Error('Remote could not verify the Forge Invocation Token'); });
  assert.equal((await expired.call('GET', '/api/v1/site/grants')).status, 401);
  const offline = invokeRemoteTransport(async () => { throw new Error('Failed to fetch'); });
  assert.equal((await offline.call('GET', '/api/v1/site/grants')).status, 0);
});
