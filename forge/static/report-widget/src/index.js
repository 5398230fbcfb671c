// Forge Custom UI entry of "Report a problem" (jira:globalPage report-problem). It mounts the
// very module the Connect dialog uses, so both hosts show the same dialog; only the transport
// is Forge's.
import { requestRemote } from '@forge/bridge';
import { mount } from '../../../../web/report-widget/widget.js';
import { requestRemoteTransport } from './transport.js';

const root = document.getElementById('sbw-root');
if (root) mount(root, requestRemoteTransport(requestRemote), { open: true });
