// Forge Custom UI entry of "Report a problem" (jira:globalPage report-problem). It mounts the
// very module the Connect dialog uses, so both hosts show the same dialog; only the transport
// is Forge's: invokeRemote through the manifest's endpoint by default, which forwards the app
// system token the service needs to confirm the reporter's email; SB_TRANSPORT=requestRemote
// (build time) uses requestRemote, which carries no token.
import { requestRemote, invokeRemote } from '@forge/bridge';
import { mount } from '../../../../web/report-widget/widget.js';
import { requestRemoteTransport, invokeRemoteTransport } from './transport.js';

// eslint-disable-next-line no-undef
const mode = typeof SB_TRANSPORT === 'string' ? SB_TRANSPORT : 'invokeRemote';
const transport = mode === 'invokeRemote' ? invokeRemoteTransport(invokeRemote) : requestRemoteTransport(requestRemote);

const root = document.getElementById('sbw-root');
if (root) mount(root, transport, { open: true });
