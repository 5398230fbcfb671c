// The Forge side of the report widget's transport: the same {status, body, headers} contract
// as the Connect transport (web/report-widget/connect.js), carried by @forge/bridge's
// requestRemote through the manifest's `supportbridge` remote. Forge adds the Forge
// Invocation Token (Authorization: Bearer <FIT>) itself, so no token is handled here.
//
// Attachments are off (canAttach: false): requestRemote carries a FormData only as JSON with
// the file parts renamed to keys starting with "file", and the service takes the files of a
// report only from parts named "attachment". Until the intake accepts those names, a Forge
// report is JSON only and the dialog says so.
export const REMOTE_KEY = 'supportbridge';

function lowerHeaders(h) {
  const out = {};
  if (!h) return out;
  if (typeof h.forEach === 'function' && typeof h.get === 'function') {
    h.forEach((v, k) => { out[k.toLowerCase()] = v; });
    return out;
  }
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

export function requestRemoteTransport(requestRemote, remoteKey = REMOTE_KEY) {
  async function call(init) {
    let res;
    try {
      res = await requestRemote(remoteKey, init);
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
    return { status: res.status, body: parsed, headers: lowerHeaders(res.headers) };
  }
  return {
    canAttach: false,
    send({ report, idempotencyKey }) {
      return call({
        path: '/api/v1/reports',
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json', 'Idempotency-Key': idempotencyKey },
        body: JSON.stringify(report),
      });
    },
    status(id) {
      return call({ path: `/api/v1/reports/${encodeURIComponent(id)}`, method: 'GET', headers: { Accept: 'application/json, application/problem+json' } });
    },
  };
}

// invokeRemoteTransport carries the same contract through invokeRemote and the manifest's
// endpoint, which adds the app system token: with it the service can confirm the reporter's
// email with their site. Forge keeps a 401 from the remote for itself and rejects instead.
export function invokeRemoteTransport(invokeRemote) {
  async function call(init) {
    try {
      const res = await invokeRemote(init);
      return { status: res && typeof res.status === 'number' ? res.status : 0, body: res ? res.body ?? null : null, headers: lowerHeaders(res && res.headers) };
    } catch (err) {
      const msg = String((err && err.message) || err);
      return { status: /Invocation Token/i.test(msg) ? 401 : 0, body: null, headers: {} };
    }
  }
  return {
    canAttach: false,
    send({ report, idempotencyKey }) {
      return call({
        path: '/api/v1/reports',
        method: 'POST',
        headers: { Accept: 'application/json, application/problem+json', 'Idempotency-Key': idempotencyKey },
        body: report,
      });
    },
    status(id) {
      return call({ path: `/api/v1/reports/${encodeURIComponent(id)}`, method: 'GET', headers: { Accept: 'application/json, application/problem+json' } });
    },
  };
}
