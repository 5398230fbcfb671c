// Stands in for @forge/bridge in the Forge admin page test (e2e/forge-admin.spec.js): the
// Custom UI is built with this module in place of the real bridge, and it forwards each call
// to the mock site API (e2e/mock-site-api.js, which also serves the page) over fetch, adding
// the bearer token Forge would add (a FIT). It keeps the real bridge's shapes: requestRemote
// resolves to a fetch Response; invokeRemote to {status, headers: {name: [values]}, body} and
// rejects on a 401, as Forge does. Every call is recorded in window.__sbBridgeCalls.
const FIT = 'mock-forge-fit';

function record(call) {
  window.__sbBridgeCalls = window.__sbBridgeCalls || [];
  window.__sbBridgeCalls.push(call);
}

export async function requestRemote(remoteKey, options = {}) {
  record({ api: 'requestRemote', remoteKey, path: options.path, method: options.method || 'GET', body: options.body });
  if (remoteKey !== 'supportbridge') throw new Error(`unknown remote ${remoteKey}`);
  const headers = new Headers(options.headers || {});
  if (headers.has('authorization')) throw new Error('the page must not set Authorization; Forge sets the FIT');
  headers.set('Authorization', `Bearer ${FIT}`);
  const res = await fetch(new URL(options.path, window.location.origin), {
    method: options.method || 'GET', headers, body: options.body,
  });
  return new Response(await res.text(), { status: res.status, statusText: res.statusText, headers: res.headers });
}

export async function invokeRemote(input) {
  record({ api: 'invokeRemote', path: input.path, method: input.method, body: input.body === undefined ? undefined : JSON.stringify(input.body) });
  const res = await fetch(new URL(input.path, window.location.origin), {
    method: input.method,
    headers: { ...(input.headers || {}), 'Content-Type': 'application/json', Authorization: `Bearer ${FIT}` },
    body: input.body === undefined ? undefined : JSON.stringify(input.body),
  });
  if (res.status === 401) throw new Error('Remote could not verify the Forge Invocation Token');
  const text = await res.text();
  const headers = {};
  res.headers.forEach((v, k) => { headers[k] = [v]; });
  return { status: res.status, headers, body: text ? JSON.parse(text) : undefined };
}

export const view = {
  async getContext() {
    return { moduleKey: 'support-access', extension: { type: 'jira:adminPage' } };
  },
};
