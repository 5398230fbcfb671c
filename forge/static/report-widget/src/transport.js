// The Forge side of the report widget's transport: the same {status, body, headers} contract
// as the Connect transport (web/report-widget/connect.js), carried by @forge/bridge (see
// ../../shared/bridge.js). Forge adds the Forge Invocation Token (Authorization: Bearer
// <FIT>) itself, so no token is handled here.
//
// Attachments are off (canAttach: false): requestRemote carries a FormData only as JSON with
// the file parts renamed to keys starting with "file", and the service takes the files of a
// report only from parts named "attachment". Until the intake accepts those names, a Forge
// report is JSON only and the dialog says so.
import { REMOTE_KEY, viaInvokeRemote, viaRequestRemote } from '../../shared/bridge.js';

export { REMOTE_KEY };

const accept = 'application/json, application/problem+json';

export function requestRemoteTransport(requestRemote, remoteKey = REMOTE_KEY) {
  return {
    canAttach: false,
    send({ report, idempotencyKey }) {
      return viaRequestRemote(requestRemote, remoteKey, {
        path: '/api/v1/reports',
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: accept, 'Idempotency-Key': idempotencyKey },
        body: JSON.stringify(report),
      });
    },
    status(id) {
      return viaRequestRemote(requestRemote, remoteKey, { path: `/api/v1/reports/${encodeURIComponent(id)}`, method: 'GET', headers: { Accept: accept } });
    },
  };
}

// invokeRemoteTransport carries the same contract through invokeRemote and the manifest's
// endpoint, which adds the app system token: with it the service can confirm the reporter's
// email with their site.
export function invokeRemoteTransport(invokeRemote) {
  return {
    canAttach: false,
    send({ report, idempotencyKey }) {
      return viaInvokeRemote(invokeRemote, {
        path: '/api/v1/reports',
        method: 'POST',
        headers: { Accept: accept, 'Idempotency-Key': idempotencyKey },
        body: report,
      });
    },
    status(id) {
      return viaInvokeRemote(invokeRemote, { path: `/api/v1/reports/${encodeURIComponent(id)}`, method: 'GET', headers: { Accept: accept } });
    },
  };
}
