// The Forge side of the admin page's transport: the same {status, body, headers} contract as
// the Connect page's fetch transport (web/site-admin/connect.js), carried by @forge/bridge
// (see ../../shared/bridge.js for the two calls and what Forge adds to each). Forge adds the
// Forge Invocation Token (Authorization: Bearer <FIT>) itself, so no token is handled here;
// only invokeRemote, through the manifest's endpoint, also carries the app system token.
import { REMOTE_KEY, viaInvokeRemote, viaRequestRemote } from '../../shared/bridge.js';

export { REMOTE_KEY };

export function requestRemoteTransport(requestRemote, remoteKey = REMOTE_KEY) {
  return {
    call(method, path, body) {
      return viaRequestRemote(requestRemote, remoteKey, {
        path,
        method,
        headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
  };
}

export function invokeRemoteTransport(invokeRemote) {
  return {
    call(method, path, body) {
      return viaInvokeRemote(invokeRemote, {
        path,
        method,
        headers: { Accept: 'application/json, application/problem+json' },
        body,
      });
    },
  };
}
