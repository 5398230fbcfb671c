// The Forge side of the admin page's transport: the same {status, body, headers} contract as
// the Connect page's fetch transport (web/site-admin/connect.js), carried by @forge/bridge.
// Forge adds the Forge Invocation Token (Authorization: Bearer <FIT>) itself, so no token is
// handled here.
//
// Two bridge calls can reach the remote:
//   requestRemote(remoteKey, {path, method, headers, body}) -> fetch Response. Needs only the
//     remote (operations: [fetch]); Forge sends the FIT but no OAuth token (no
//     x-forge-oauth-system), whatever the remote's auth says.
//   invokeRemote({path, method, headers, body}) -> {status, headers, body}. Needs an
//     `endpoint` module and the admin page's resolver: {endpoint}; Forge then adds the app
//     system token the endpoint asks for. It rejects on a 401 from the remote.
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
  return {
    async call(method, path, body) {
      let res;
      try {
        res = await requestRemote(remoteKey, {
          path,
          method,
          headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
          body: body === undefined ? undefined : JSON.stringify(body),
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
      return { status: res.status, body: parsed, headers: lowerHeaders(res.headers) };
    },
  };
}

export function invokeRemoteTransport(invokeRemote) {
  return {
    async call(method, path, body) {
      try {
        const res = await invokeRemote({
          path,
          method,
          headers: { Accept: 'application/json, application/problem+json' },
          body: body === undefined ? undefined : body,
        });
        return { status: res && typeof res.status === 'number' ? res.status : 0, body: res ? res.body ?? null : null, headers: lowerHeaders(res && res.headers) };
      } catch (err) {
        // Forge keeps 401 for itself ("Remote could not verify the Forge Invocation Token").
        const msg = String(err && err.message || err);
        return { status: /Invocation Token/i.test(msg) ? 401 : 0, body: null, headers: {} };
      }
    },
  };
}
