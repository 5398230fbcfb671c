// Entry of the Connect "Report a problem" dialog (GET /connect/report-dialog). dialog.html
// carries what the server decided in <meta> elements (the page's CSP forbids inline script):
// the API's base path and, only on local runs where Atlassian's all.js cannot load, a context
// token the server minted in its place. In a real site every call asks all.js for a fresh
// context token (AP.context.getToken), which the service checks (qsh "context-qsh").
//
// The transport uses XMLHttpRequest for the report so that the upload can show progress.

function meta(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.getAttribute('content') || '' : '';
}

// contextToken asks all.js for a context token; without all.js (local runs) it uses the
// token the server put in the page.
export function contextToken(win, fallback) {
  const ap = win.AP;
  if (ap && ap.context && typeof ap.context.getToken === 'function') {
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (t) => { if (!settled) { settled = true; t ? resolve(t) : reject(new Error('no context token')); } };
      const p = ap.context.getToken(done);
      if (p && typeof p.then === 'function') p.then(done, reject);
    });
  }
  return fallback ? Promise.resolve(fallback) : Promise.reject(new Error('no context token'));
}

function headersOf(xhr) {
  return { 'retry-after': xhr.getResponseHeader('Retry-After') };
}

// xhrCall sends one request and resolves {status, body, headers}; status 0 when no answer came.
function xhrCall(win, { method, url, token, body, headers = {}, onProgress }) {
  return new Promise((resolve) => {
    const xhr = new win.XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader('Authorization', `JWT ${token}`);
    xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress && xhr.upload) {
      xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
    }
    xhr.addEventListener('load', () => {
      let parsed = null;
      try { parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch (_) { parsed = null; }
      resolve({ status: xhr.status, body: parsed, headers: headersOf(xhr) });
    });
    for (const ev of ['error', 'abort', 'timeout']) xhr.addEventListener(ev, () => resolve({ status: 0, body: null, headers: {} }));
    xhr.send(body);
  });
}

// connectTransport files reports with the report JSON alone, or as multipart with a "report"
// part and one "attachment" part per file.
export function connectTransport(win, apiBase, fallbackToken) {
  const base = String(apiBase || '').replace(/\/+$/, '');
  const token = () => contextToken(win, fallbackToken);
  return {
    canAttach: true,
    async send({ report, files, idempotencyKey, onProgress }) {
      let t;
      try { t = await token(); } catch (_) { return { status: 401, body: null, headers: {} }; }
      const headers = { 'Idempotency-Key': idempotencyKey };
      let body;
      if (files && files.length) {
        body = new win.FormData();
        body.append('report', JSON.stringify(report));
        for (const f of files) body.append('attachment', f, f.name);
      } else {
        body = JSON.stringify(report);
        headers['Content-Type'] = 'application/json';
      }
      return xhrCall(win, { method: 'POST', url: `${base}/api/v1/reports`, token: t, body, headers, onProgress });
    },
    async status(id) {
      let t;
      try { t = await token(); } catch (_) { return { status: 401, body: null, headers: {} }; }
      return xhrCall(win, { method: 'GET', url: `${base}/api/v1/reports/${encodeURIComponent(id)}`, token: t, body: null });
    },
  };
}

// Only in a browser page: node:test imports this file for contextToken and the transport.
if (typeof document !== 'undefined' && document.getElementById('sbw-root')) {
  // widget.js is loaded from this file's own directory with its own query string, so both
  // always come from one release (the directory is versioned: /static/<version>/).
  const here = new URL(import.meta.url);
  const { mount } = await import(new URL(`./widget.js${here.search}`, here).href);
  const ap = window.AP;
  mount(document.getElementById('sbw-root'), connectTransport(window, meta('sb-api-base'), meta('sb-context-token')), {
    open: true,
    // In the site the dialog is Atlassian's: closing ours closes theirs.
    onClose: () => { if (ap && ap.dialog && typeof ap.dialog.close === 'function') ap.dialog.close(); },
  });
}
