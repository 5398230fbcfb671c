/*
 * error-capture.js: captures the browser errors of an app page for supportbridge.
 *
 * Include it with <script src="…/static/<version>/error-capture.js"></script> (no inline code,
 * no eval: it runs under a strict CSP) and start it with the transport of the host:
 *
 *   SupportbridgeErrors.start({
 *     // Connect: fetch with a context token from AP.context.getToken().
 *     // Forge:   requestRemote / invokeRemote to POST /api/v1/errors.
 *     send: async (batch) => { … POST JSON.stringify(batch) to /api/v1/errors … },
 *   });
 *
 * It records window "error" and "unhandledrejection" events and fetch / XMLHttpRequest
 * responses with status >= 500 (with their X-Request-Id), scrubs them here in the browser
 * (URL credentials and fragments, secret query values, bearer tokens, JWTs, email addresses),
 * keeps the last 50 in sessionStorage for the report dialog (SupportbridgeErrors.recent()),
 * and hands batches ({events: [...]}, the body of POST /api/v1/errors) to send at most once
 * every 10 seconds. The server scrubs everything again; this only keeps secrets from
 * leaving the page in the first place.
 *
 * send should reject only when a retry could help (network failure, 429, 5xx); the batch is
 * then sent again with the next one. It should resolve for anything else.
 */
(function (root) {
  'use strict';

  var KEEP = 50; // events kept for recent() and queued for sending, each
  var MIN_INTERVAL = 10000; // ms between two sends, at least
  var STORAGE_KEY = 'supportbridge.errors.recent';
  var MAX_MESSAGE = 1024; // bytes, as the server counts them
  var MAX_STACK = 8192;
  var MAX_URL = 2048;
  var MAX_REQUEST_ID = 128;
  var REQUEST_ID_HEADERS = ['x-request-id', 'x-correlation-id', 'atl-traceid', 'x-b3-traceid'];
  var INTAKE_PATH = '/api/v1/errors';

  // Query parameter names whose values are credentials. internal/errortrack/parse.go holds
  // the same lists: names are compared in lower case without "-" and "_".
  var SECRET_WORDS = ['key', 'code', 'sig', 'auth', 'pwd', 'pass', 'session', 'sid', 'otp', 'state', 'nonce'];
  var SECRET_PARTS = ['token', 'secret', 'passw', 'signature', 'jwt', 'apikey', 'credential', 'auth', 'session'];

  function isSecretParam(name) {
    var n = String(name).toLowerCase().replace(/[-_]/g, '');
    if (SECRET_WORDS.indexOf(n) >= 0) return true;
    for (var i = 0; i < SECRET_PARTS.length; i++) {
      if (n.indexOf(SECRET_PARTS[i]) >= 0) return true;
    }
    return false;
  }

  function decode(s) {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch (e) {
      return s;
    }
  }

  // scrubQuery replaces the value of every secret parameter of a raw query string.
  function scrubQuery(query) {
    return query
      .split('&')
      .map(function (pair) {
        var eq = pair.indexOf('=');
        if (eq < 0 || !isSecretParam(decode(pair.slice(0, eq)))) return pair;
        return pair.slice(0, eq) + '=[redacted]';
      })
      .join('&');
  }

  // scrubURL makes raw absolute against base and returns it without userinfo, without
  // fragment and with secret query values replaced; '' when it is no http(s) URL.
  function scrubURL(raw, base) {
    var u;
    try {
      u = new URL(String(raw), base || undefined);
    } catch (e) {
      return '';
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return '';
    var query = u.search ? '?' + scrubQuery(u.search.slice(1)) : '';
    // Built by hand: URL.toString() would percent-encode the brackets of [redacted].
    return truncate(u.protocol + '//' + u.host + u.pathname + query, MAX_URL);
  }

  var URL_IN_TEXT = /\bhttps?:\/\/[^\s'"<>()]+/g;
  var EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
  var JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
  var BEARER = /\b(Bearer|JWT|Basic)\s+[A-Za-z0-9._~+\/=-]{8,}/gi;
  var PAIR = /([A-Za-z0-9_-]+)=([^&\s'"#,;)]+)/g;

  // scrubText scrubs free text such as a message or a stack trace.
  function scrubText(s) {
    return String(s)
      .replace(URL_IN_TEXT, function (u) {
        // Keep the ":line:col" that stack frames append to a script URL.
        var m = /^(.*?)((?::\d+)*)$/.exec(u);
        return (scrubURL(m[1]) || '[url]') + m[2];
      })
      .replace(JWT, '[redacted]')
      .replace(BEARER, function (all, scheme) {
        return scheme + ' [redacted]';
      })
      .replace(EMAIL, '[email]')
      .replace(PAIR, function (all, name, value) {
        // A URL above already redacted its own values; keep the ":line:col" after them.
        if (value.indexOf('[redacted]') === 0) return all;
        return isSecretParam(name) ? name + '=[redacted]' : all;
      });
  }

  // truncate cuts s to at most max UTF-8 bytes, on a character boundary.
  function truncate(s, max) {
    s = String(s);
    if (s.length * 3 <= max) return s;
    var enc = typeof TextEncoder === 'function' ? new TextEncoder() : null;
    if (!enc) return s.slice(0, Math.floor(max / 3));
    if (enc.encode(s).length <= max) return s;
    var lo = 0;
    var hi = s.length;
    while (lo < hi) {
      var mid = Math.ceil((lo + hi) / 2);
      if (enc.encode(s.slice(0, mid)).length <= max) lo = mid;
      else hi = mid - 1;
    }
    var out = s.slice(0, lo);
    // Do not leave half a surrogate pair behind.
    if (/[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
    return out;
  }

  // create makes a capturer for one window; the browser build makes one for window.
  function create(win) {
    var sendFn = null;
    var started = false;
    var queue = [];
    var kept = null; // the recent events, loaded from sessionStorage on first use
    var lastSend = -Infinity;
    var timer = null;
    var inFlight = false;
    var interval = MIN_INTERVAL;
    var clock = {
      now: function () {
        return Date.now();
      },
      setTimeout: function (f, ms) {
        return win.setTimeout(f, ms);
      },
      clearTimeout: function (t) {
        return win.clearTimeout(t);
      },
    };
    var undo = [];

    function storage() {
      try {
        return win.sessionStorage || null;
      } catch (e) {
        return null; // blocked, as in some third-party iframes
      }
    }

    function load() {
      if (kept) return kept;
      kept = [];
      var st = storage();
      if (!st) return kept;
      try {
        var v = JSON.parse(st.getItem(STORAGE_KEY) || '[]');
        if (Array.isArray(v)) kept = v.slice(-KEEP);
      } catch (e) {
        /* unreadable: start afresh */
      }
      return kept;
    }

    function save() {
      var st = storage();
      if (!st) return;
      try {
        st.setItem(STORAGE_KEY, JSON.stringify(kept));
      } catch (e) {
        /* full or blocked: recent() still has them in memory */
      }
    }

    function pageURL() {
      try {
        return win.location ? String(win.location.href) : '';
      } catch (e) {
        return '';
      }
    }

    // record adds one event: to recent() and to the next batch.
    function record(ev) {
      var e = { kind: ev.kind, message: truncate(scrubText(ev.message || ''), MAX_MESSAGE) };
      if (!e.message.trim()) e.message = '(no message)';
      if (ev.stack) e.stack = truncate(scrubText(ev.stack), MAX_STACK);
      var url = scrubURL(ev.url || pageURL(), pageURL());
      if (url) e.url = url;
      if (ev.kind === 'http') e.status = ev.status;
      if (ev.requestId && /^[\x21-\x7e]+$/.test(ev.requestId)) e.requestId = truncate(ev.requestId, MAX_REQUEST_ID);
      e.time = new Date(clock.now()).toISOString();
      load().push(e);
      if (kept.length > KEEP) kept.splice(0, kept.length - KEEP);
      save();
      queue.push(e);
      if (queue.length > KEEP) queue.splice(0, queue.length - KEEP);
      schedule();
    }

    function schedule() {
      if (!started || timer !== null || inFlight || queue.length === 0) return;
      var wait = Math.max(0, lastSend + interval - clock.now());
      timer = clock.setTimeout(flush, wait);
    }

    function flush() {
      timer = null;
      if (inFlight || queue.length === 0) return;
      var events = queue.splice(0, queue.length);
      lastSend = clock.now();
      inFlight = true;
      Promise.resolve()
        .then(function () {
          return sendFn({ events: events });
        })
        .catch(function () {
          // Put the batch back before what came since, within the bound.
          queue = events.concat(queue).slice(-KEEP);
        })
        .then(function () {
          inFlight = false;
          schedule();
        });
    }

    function fromError(kind, err, fallback) {
      if (err && typeof err === 'object' && ('message' in err || 'stack' in err)) {
        var name = err.name ? String(err.name) + ': ' : '';
        return { kind: kind, message: name + String(err.message || ''), stack: err.stack ? String(err.stack) : '' };
      }
      var msg;
      try {
        msg = err === undefined ? fallback : typeof err === 'string' ? err : JSON.stringify(err);
      } catch (e) {
        msg = String(err);
      }
      return { kind: kind, message: msg || fallback || String(err) };
    }

    function onError(ev) {
      // A failed <img> or <script> load fires "error" on the element, not an ErrorEvent.
      if (!ev || (ev.target && ev.target !== win && !('message' in ev))) return;
      var e = fromError('error', ev.error, ev.message || 'Script error.');
      if (!e.stack && ev.filename) e.stack = '    at ' + ev.filename + ':' + (ev.lineno || 0) + ':' + (ev.colno || 0);
      if (!ev.error && ev.message) e.message = ev.message;
      record(e);
    }

    function onRejection(ev) {
      record(fromError('unhandledrejection', ev && ev.reason, 'Unhandled promise rejection'));
    }

    function isIntake(url) {
      var u = scrubURL(url, pageURL());
      return u && new URL(u).pathname.slice(-INTAKE_PATH.length) === INTAKE_PATH;
    }

    function requestIdOf(get) {
      for (var i = 0; i < REQUEST_ID_HEADERS.length; i++) {
        var v = null;
        try {
          v = get(REQUEST_ID_HEADERS[i]);
        } catch (e) {
          /* header not exposed (CORS) */
        }
        if (v) return String(v);
      }
      return '';
    }

    function failedResponse(method, url, status, requestId) {
      if (status < 500 || isIntake(url)) return;
      var target = scrubURL(url, pageURL());
      record({
        kind: 'http',
        status: status,
        message: String(method || 'GET').toUpperCase() + ' ' + (target ? new URL(target).pathname : '') + ' answered ' + status,
        url: target,
        requestId: requestId,
      });
    }

    function patchFetch() {
      var orig = win.fetch;
      if (typeof orig !== 'function') return;
      win.fetch = function (input, init) {
        var method = (init && init.method) || (input && typeof input === 'object' && input.method) || 'GET';
        var url = input && typeof input === 'object' && 'url' in input ? input.url : String(input);
        return orig.apply(this, arguments).then(function (res) {
          try {
            if (res && res.status >= 500) {
              failedResponse(method, url, res.status, requestIdOf(function (h) {
                return res.headers && res.headers.get(h);
              }));
            }
          } catch (e) {
            /* never break the app's fetch */
          }
          return res;
        });
      };
      undo.push(function () {
        win.fetch = orig;
      });
    }

    function patchXHR() {
      var X = win.XMLHttpRequest;
      if (typeof X !== 'function' || !X.prototype) return;
      var proto = X.prototype;
      var open = proto.open;
      var send = proto.send;
      proto.open = function (method, url) {
        this.__sbRequest = { method: method, url: url };
        return open.apply(this, arguments);
      };
      proto.send = function () {
        var xhr = this;
        if (xhr.__sbRequest && typeof xhr.addEventListener === 'function') {
          xhr.addEventListener('loadend', function () {
            try {
              failedResponse(xhr.__sbRequest.method, xhr.__sbRequest.url, xhr.status, requestIdOf(function (h) {
                return xhr.getResponseHeader(h);
              }));
            } catch (e) {
              /* never break the app's request */
            }
          });
        }
        return send.apply(this, arguments);
      };
      undo.push(function () {
        proto.open = open;
        proto.send = send;
      });
    }

    return {
      /**
       * start begins capturing. options.send(batch) delivers {events: [...]} to
       * POST /api/v1/errors and returns a promise; options.interval may only lengthen the
       * 10 s between sends. Calling start again only replaces send.
       */
      start: function (options) {
        if (!options || typeof options.send !== 'function') throw new TypeError('SupportbridgeErrors.start needs {send: async (batch) => …}');
        sendFn = options.send;
        if (options.interval > MIN_INTERVAL) interval = options.interval;
        if (options.clock) clock = options.clock;
        if (started) return;
        started = true;
        win.addEventListener('error', onError, true);
        win.addEventListener('unhandledrejection', onRejection);
        undo.push(function () {
          win.removeEventListener('error', onError, true);
          win.removeEventListener('unhandledrejection', onRejection);
        });
        patchFetch();
        patchXHR();
        schedule();
      },
      /** stop removes every hook; what was captured stays in recent(). */
      stop: function () {
        while (undo.length) undo.pop()();
        if (timer !== null) clock.clearTimeout(timer);
        timer = null;
        started = false;
      },
      /** recent returns copies of the last 50 events of this tab, oldest first. */
      recent: function () {
        return JSON.parse(JSON.stringify(load()));
      },
      /** capture records an error the app caught itself. */
      capture: function (err) {
        record(fromError('error', err, 'Error'));
      },
    };
  }

  var api = { create: create, scrubURL: scrubURL, scrubText: scrubText };
  if (typeof module === 'object' && module.exports) {
    module.exports = api; // Node tests
  } else if (root && typeof root.addEventListener === 'function') {
    root.SupportbridgeErrors = create(root);
  }
})(typeof window !== 'undefined' ? window : this);
