// Entry of the Connect admin page. page.html carries what the server decided in <meta>
// elements (the page's CSP forbids inline script): the page token for the JSON calls, the
// API's base URL and an optional deep-linked request. The page lives in a third-party iframe,
// so it keeps nothing in cookies or storage; the token lives only in this module.

function meta(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.getAttribute('content') || '' : '';
}

// fetchTransport calls the API with the page token. Network failures become status 0 so the
// page can say "offline" instead of throwing.
export function fetchTransport(apiBase, token) {
  const base = apiBase.replace(/\/+$/, '');
  return {
    async call(method, path, body) {
      let res;
      try {
        res = await fetch(base + path, {
          method,
          headers: {
            Authorization: `Bearer ${token}`,
            'Content-Type': 'application/json',
            Accept: 'application/json, application/problem+json',
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: 'omit',
          cache: 'no-store',
          referrerPolicy: 'no-referrer',
        });
      } catch (_) {
        return { status: 0, body: null, headers: {} };
      }
      let parsed = null;
      try {
        const text = await res.text();
        parsed = text ? JSON.parse(text) : null;
      } catch (_) {
        parsed = null;
      }
      return { status: res.status, body: parsed, headers: { 'retry-after': res.headers.get('Retry-After') } };
    },
  };
}

// resize asks the host to fit the iframe to the page when all.js loaded; without it (blocked,
// failed, or a test host) the page still works at the iframe's own size.
function resize() {
  const ap = window.AP;
  if (ap && typeof ap.resize === 'function') ap.resize();
}

// app.js is loaded with connect.js's own query string, so a version the server put there
// (connect.js?v=…) reaches app.js too and a cached old app.js is never mixed with a new
// connect.js. A path-versioned URL (…/v123/connect.js) works the same way.
const here = new URL(import.meta.url);
const { mount } = await import(new URL(`./app.js${here.search}`, here).href);

const root = document.getElementById('sb-root');
if (root) {
  mount(root, fetchTransport(meta('sb-api-base') || window.location.origin, meta('sb-page-token')), {
    requestId: meta('sb-request') || undefined,
    onRender: resize,
  });
}
