// Tests of error-capture.js with a fake window, sessionStorage and clock: no browser needed.
// Run with `node --test` in this folder (TestErrorCaptureNode runs it from go test).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { create, scrubURL, scrubText } = require('./error-capture.js');

// fakeClock runs timers only when the test moves time.
function fakeClock(start) {
  let now = start;
  let timers = [];
  let next = 1;
  return {
    now: () => now,
    setTimeout(f, ms) {
      const id = next++;
      timers.push({ id, at: now + ms, f });
      return id;
    },
    clearTimeout(id) {
      timers = timers.filter((t) => t.id !== id);
    },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const t = timers[0];
        if (!t || t.at > end) break;
        timers.shift();
        now = t.at;
        t.f();
        await settle();
      }
      now = end;
      await settle();
    },
  };
}

async function settle() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function fakeStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    map: m,
  };
}

// fakeWindow has listeners, a fetch that answers what the test says, an XMLHttpRequest
// whose requests the test completes, and sessionStorage.
function fakeWindow(storage) {
  const listeners = {};
  const win = {
    location: { href: 'https://app.example/page?jwt=eyJzzzzzz.eyJyyyyyy.sig&tab=2#token=abc' },
    sessionStorage: storage || fakeStorage(),
    addEventListener(type, f) {
      (listeners[type] = listeners[type] || []).push(f);
    },
    removeEventListener(type, f) {
      listeners[type] = (listeners[type] || []).filter((g) => g !== f);
    },
    dispatch(type, ev) {
      for (const f of listeners[type] || []) f(ev);
    },
    listenerCount: (type) => (listeners[type] || []).length,
    fetchAnswers: [],
    fetch(input) {
      const a = win.fetchAnswers.shift() || { status: 200, headers: {} };
      return Promise.resolve({
        status: a.status,
        url: String(input),
        headers: { get: (h) => a.headers[h.toLowerCase()] || null },
      });
    },
    xhrs: [],
  };
  class XHR {
    constructor() {
      this.listeners = {};
      this.status = 0;
      this.headers = {};
    }
    open(method, url) {
      this.opened = [method, url];
    }
    send() {
      win.xhrs.push(this);
    }
    addEventListener(type, f) {
      (this.listeners[type] = this.listeners[type] || []).push(f);
    }
    getResponseHeader(h) {
      return this.headers[h.toLowerCase()] || null;
    }
    finish(status, headers) {
      this.status = status;
      this.headers = headers || {};
      for (const f of this.listeners.loadend || []) f({});
    }
  }
  win.XMLHttpRequest = XHR;
  return win;
}

function setup(opts = {}) {
  const win = fakeWindow(opts.storage);
  win.originalFetch = win.fetch;
  win.originalOpen = win.XMLHttpRequest.prototype.open;
  const clock = fakeClock(Date.UTC(2026, 11, 4, 10, 0, 0));
  const sent = [];
  const cap = create(win);
  cap.start({
    clock,
    send: async (batch) => {
      sent.push(JSON.parse(JSON.stringify(batch)));
      if (opts.fail && opts.fail()) throw new Error('offline');
    },
  });
  return { win, clock, sent, cap };
}

function throwError(win, err) {
  win.dispatch('error', { message: 'Uncaught ' + err.message, error: err, filename: 'https://app.example/app.js', lineno: 1, colno: 2 });
}

test('captures errors, rejections and failed fetch and XHR responses', async () => {
  const { win, clock, sent } = setup();
  throwError(win, new TypeError('x is undefined'));
  win.dispatch('unhandledrejection', { reason: new Error('load failed') });
  win.dispatch('unhandledrejection', { reason: 'plain string' });
  win.fetchAnswers.push({ status: 502, headers: { 'x-request-id': 'req-502' } }, { status: 404, headers: {} });
  await win.fetch('https://api.example/items/7?token=abc', { method: 'post' });
  await win.fetch('https://api.example/missing');
  const xhr = new win.XMLHttpRequest();
  xhr.open('GET', '/rest/data?api_key=k1&page=3');
  xhr.send();
  xhr.finish(503, { 'x-request-id': 'req-503' });
  // A resource that failed to load is no script error.
  win.dispatch('error', { target: { tagName: 'IMG' } });

  await clock.advance(0);
  assert.equal(sent.length, 1);
  const ev = sent[0].events;
  assert.deepEqual(ev.map((e) => e.kind), ['error', 'unhandledrejection', 'unhandledrejection', 'http', 'http']);
  assert.equal(ev[0].message, 'TypeError: x is undefined');
  assert.match(ev[0].stack, /TypeError: x is undefined/);
  assert.equal(ev[1].message, 'Error: load failed');
  assert.equal(ev[2].message, 'plain string');
  assert.deepEqual(
    { status: ev[3].status, url: ev[3].url, requestId: ev[3].requestId, message: ev[3].message },
    { status: 502, url: 'https://api.example/items/7?token=[redacted]', requestId: 'req-502', message: 'POST /items/7 answered 502' },
  );
  assert.deepEqual(
    { status: ev[4].status, url: ev[4].url, requestId: ev[4].requestId },
    { status: 503, url: 'https://app.example/rest/data?api_key=[redacted]&page=3', requestId: 'req-503' },
  );
  for (const e of ev) {
    assert.ok(!Number.isNaN(Date.parse(e.time)));
    assert.deepEqual(Object.keys(e).filter((k) => !['kind', 'message', 'stack', 'url', 'status', 'requestId', 'time'].includes(k)), []);
  }
  // The page URL the error events carry is scrubbed too.
  assert.equal(ev[0].url, 'https://app.example/page?jwt=[redacted]&tab=2');
});

test('scrubs URLs of credentials, fragments and secret query values', () => {
  const cases = [
    ['https://bob:hunter2@app.example/a?token=t0k&x=1#frag', 'https://app.example/a?token=[redacted]&x=1'],
    ['https://app.example/cb?code=abc&state=xyz&Signature=s&X-Amz-Credential=c&password=p&page=2',
      'https://app.example/cb?code=[redacted]&state=[redacted]&Signature=[redacted]&X-Amz-Credential=[redacted]&password=[redacted]&page=2'],
    ['https://app.example/a?client_secret=s&apiKey=k&jwt=j&auth_token=a&q=ok', 'https://app.example/a?client_secret=[redacted]&apiKey=[redacted]&jwt=[redacted]&auth_token=[redacted]&q=ok'],
    ['javascript:alert(1)', ''],
    ['not a url', ''],
  ];
  for (const [input, want] of cases) assert.equal(scrubURL(input), want, input);
  assert.equal(scrubURL('/rel?secret=1', 'https://app.example/x'), 'https://app.example/rel?secret=[redacted]');

  const text = scrubText('failed for jane@customer.example at https://u:p@app.example/app.js?sig=zz:10:5 with Bearer abcdefgh12345678 token=hunter2');
  assert.equal(text, 'failed for [email] at https://app.example/app.js?sig=[redacted]:10:5 with Bearer [redacted] token=[redacted]');
  assert.equal(scrubText('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'), '[redacted]');
});

test('scrubs what the page sends, never the raw secret', async () => {
  const { win, clock, sent } = setup();
  throwError(win, new Error('login for ada@example.org failed, password=s3cret!'));
  await clock.advance(0);
  const body = JSON.stringify(sent);
  for (const secret of ['ada@example.org', 's3cret!', 'eyJzzzzzz', '#token=abc']) assert.ok(!body.includes(secret), secret);
});

test('sends at most one batch every 10 s', async () => {
  const { win, clock, sent } = setup();
  throwError(win, new Error('first'));
  await clock.advance(0);
  assert.equal(sent.length, 1, 'the first error goes at once');
  for (let i = 0; i < 5; i++) {
    throwError(win, new Error('burst ' + i));
    await clock.advance(1000);
  }
  assert.equal(sent.length, 1, 'nothing more within 10 s');
  await clock.advance(4999);
  assert.equal(sent.length, 1);
  await clock.advance(1);
  assert.equal(sent.length, 2, 'one batch at 10 s');
  assert.deepEqual(sent[1].events.map((e) => e.message), [0, 1, 2, 3, 4].map((i) => 'Error: burst ' + i));
  await clock.advance(60000);
  assert.equal(sent.length, 2, 'nothing to send, nothing sent');
  throwError(win, new Error('later'));
  await clock.advance(0);
  assert.equal(sent.length, 3, 'a quiet period lets the next error go at once');
});

test('keeps the last 50 in sessionStorage, across page loads of the tab', async () => {
  const storage = fakeStorage();
  const { win, clock, cap } = setup({ storage });
  for (let i = 0; i < 60; i++) throwError(win, new Error('n' + i));
  await clock.advance(0);
  const recent = cap.recent();
  assert.equal(recent.length, 50);
  assert.equal(recent[0].message, 'Error: n10');
  assert.equal(recent[49].message, 'Error: n59');
  assert.equal(JSON.parse(storage.getItem('supportbridge.errors.recent')).length, 50);
  recent[0].message = 'changed';
  assert.equal(cap.recent()[0].message, 'Error: n10', 'recent() returns copies');

  // The next page of the tab sees them.
  const next = create(fakeWindow(storage));
  assert.equal(next.recent().length, 50);
});

test('a batch over 50 is cut to the newest 50', async () => {
  const { win, clock, sent } = setup();
  throwError(win, new Error('first'));
  await clock.advance(0);
  for (let i = 0; i < 70; i++) throwError(win, new Error('m' + i));
  await clock.advance(10000);
  assert.equal(sent[1].events.length, 50);
  assert.equal(sent[1].events[0].message, 'Error: m20');
});

test('a failed send is retried with the next batch, not sooner', async () => {
  let failing = true;
  const { win, clock, sent } = setup({ fail: () => failing });
  throwError(win, new Error('a'));
  await clock.advance(0);
  assert.equal(sent.length, 1);
  failing = false;
  throwError(win, new Error('b'));
  await clock.advance(9999);
  assert.equal(sent.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent[1].events.map((e) => e.message), ['Error: a', 'Error: b']);
});

test('bounds fields to the server limits and works without sessionStorage', async () => {
  const win = fakeWindow();
  Object.defineProperty(win, 'sessionStorage', {
    get() {
      throw new Error('SecurityError');
    },
  });
  const clock = fakeClock(0);
  const sent = [];
  const cap = create(win);
  cap.start({ clock, send: async (b) => sent.push(b) });
  const err = new Error('é'.repeat(2000));
  err.stack = 'x'.repeat(20000);
  throwError(win, err);
  await clock.advance(0);
  const e = sent[0].events[0];
  assert.ok(Buffer.byteLength(e.message) <= 1024, 'message bytes ' + Buffer.byteLength(e.message));
  assert.ok(Buffer.byteLength(e.stack) <= 8192);
  assert.equal(cap.recent().length, 1);
});

test('ignores failures of its own intake, and stop removes every hook', async () => {
  const { win, clock, sent, cap } = setup();
  assert.notEqual(win.fetch, win.originalFetch, 'fetch is wrapped while started');
  win.fetchAnswers.push({ status: 503, headers: {} });
  await win.fetch('https://sb.example/api/v1/errors', { method: 'POST' });
  await clock.advance(0);
  assert.equal(sent.length, 0);
  cap.stop();
  assert.equal(win.listenerCount('error'), 0);
  assert.equal(win.listenerCount('unhandledrejection'), 0);
  assert.equal(win.fetch, win.originalFetch);
  assert.equal(win.XMLHttpRequest.prototype.open, win.originalOpen);
  assert.throws(() => create(fakeWindow()).start({}), TypeError);
});
