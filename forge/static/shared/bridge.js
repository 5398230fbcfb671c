// The two ways a Forge Custom UI reaches the service through @forge/bridge, each turned into
// the {status, body, headers} answer that the Connect transports give too. Shared by the
// admin page and the report widget; esbuild bundles it into each.
//
//   requestRemote(remoteKey, {path, method, headers, body}) -> fetch Response. Needs only the
//     remote (operations: [fetch]); Forge sends the FIT but no OAuth token.
//   invokeRemote({path, method, headers, body}) -> {status, headers, body}. Goes through the
//     manifest's endpoint, which adds the app system token. Forge keeps a 401 from the remote
//     for itself ("Remote could not verify the Forge Invocation Token") and rejects instead.

export const REMOTE_KEY = 'supportbridge';

// lowerHeaders returns a Headers object or a plain one as a plain object with lower-case names.
export function lowerHeaders(h) {
  const out = {};
  if (!h) return out;
  if (typeof h.forEach === 'function' && typeof h.get === 'function') {
    h.forEach((v, k) => { out[k.toLowerCase()] = v; });
    return out;
  }
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

// viaRequestRemote sends init through requestRemote; a failed call is status 0, a body that
// is not JSON is null.
export async function viaRequestRemote(requestRemote, remoteKey, init) {
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

// viaInvokeRemote sends init through invokeRemote; a rejected Invocation Token is a 401, any
// other failure status 0.
export async function viaInvokeRemote(invokeRemote, init) {
  try {
    const res = await invokeRemote(init);
    return { status: res && typeof res.status === 'number' ? res.status : 0, body: res ? res.body ?? null : null, headers: lowerHeaders(res && res.headers) };
  } catch (err) {
    const msg = String((err && err.message) || err);
    return { status: /Invocation Token/i.test(msg) ? 401 : 0, body: null, headers: {} };
  }
}
