// Forge Custom UI entry of the "Support access" admin page (jira:adminPage). It mounts the
// very module the Connect page uses, so both hosts show the same page; only the transport is
// Forge's. SB_TRANSPORT is set at build time (build.mjs): "invokeRemote" by default, through
// the manifest's endpoint, which forwards the app system token the service needs.
import { requestRemote, invokeRemote } from '@forge/bridge';
import { mount } from '../../../../web/site-admin/app.js';
import { requestRemoteTransport, invokeRemoteTransport } from './transport.js';

// eslint-disable-next-line no-undef
const mode = typeof SB_TRANSPORT === 'string' ? SB_TRANSPORT : 'invokeRemote';
const transport = mode === 'invokeRemote' ? invokeRemoteTransport(invokeRemote) : requestRemoteTransport(requestRemote);

const root = document.getElementById('sb-root');
if (root) {
  // A deep link to one request may come as ?request=<id> (the admin page's own URL).
  const requestId = new URLSearchParams(window.location.search).get('request') || undefined;
  mount(root, transport, { requestId });
}
