// The "Report a problem" widget: one dependency-free ES module that draws the report dialog and
// files the report through a transport the host gives it, so the Connect dialog page
// (connect.js) and the Forge Custom UI (forge/static/report-widget) show the same dialog.
//
// mount(root, transport, options) draws a native <dialog> (focus moves in, Escape closes, the
// page behind is inert) with a summary, a description, attachments (file picker, drag and
// drop, pasted screenshots) and an opt-in to send this tab's recent browser errors, shown
// exactly as they will be sent. There is no email field: the service asks the user's site.
//
// transport = {
//   canAttach: boolean,                  // false: the host cannot carry files (see forge)
//   send({report, files, idempotencyKey, onProgress}) -> Promise<{status, body, headers}>,
//   status(id) -> Promise<{status, body, headers}>,
// }
// status 0 means the request never got an answer (offline, dropped); headers['retry-after']
// is the Retry-After header. The pure functions below are exported for node:test.

export const MAX_FILES = 5;
export const MAX_TOTAL_BYTES = 10 * 1024 * 1024; // the service's cap on a report's attachments
export const MAX_SUMMARY = 255;
export const MAX_DESCRIPTION_BYTES = 32768;
export const MAX_RECENT_ERRORS = 50;
const MAX_ERROR_MESSAGE_BYTES = 4096;
const MAX_SOURCE = 255;
const MAX_REQUEST_ID = 128;
const POLL_DELAYS = [1000, 2000, 4000, 8000, 15000]; // then 15 s until POLL_GIVE_UP
const POLL_GIVE_UP = 5 * 60 * 1000;
export const STORAGE_KEY = 'supportbridge.errors.recent'; // web/error-capture keeps them there

// The types the service accepts (it checks the content; this only spares a useless upload).
const ACCEPTED = {
  'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif', 'image/webp': '.webp',
  'application/pdf': '.pdf', 'text/plain': '.txt', 'application/json': '.json',
};
const ACCEPTED_EXT = ['.png', '.jpg', '.jpeg', '.gif', '.webp', '.pdf', '.txt', '.log', '.json'];
export const ACCEPT_ATTR = Object.keys(ACCEPTED).concat(ACCEPTED_EXT).join(',');

const utf8 = new TextEncoder();
const byteLength = (s) => utf8.encode(s).length;

// truncateBytes cuts s to at most max UTF-8 bytes without splitting a character.
export function truncateBytes(s, max) {
  if (byteLength(s) <= max) return s;
  let out = '';
  let n = 0;
  for (const ch of s) {
    const b = byteLength(ch);
    if (n + b > max - 3) break;
    out += ch;
    n += b;
  }
  return out + '…';
}

export function sizeWords(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

// waitWords says how long Retry-After asks us to wait.
export function waitWords(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.ceil(m / 60);
  return `${h} hour${h === 1 ? '' : 's'}`;
}

// retryAfterSeconds reads a Retry-After header (seconds or an HTTP date); NaN when absent.
export function retryAfterSeconds(value, now = Date.now()) {
  if (value === undefined || value === null || value === '') return NaN;
  const v = String(value).trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? NaN : Math.max(0, Math.ceil((t - now) / 1000));
}

function accepted(file) {
  if (file.type && ACCEPTED[file.type]) return true;
  if (file.type && !file.type.startsWith('text/') && file.type !== 'application/octet-stream') return false;
  const name = String(file.name || '').toLowerCase();
  return ACCEPTED_EXT.some((e) => name.endsWith(e));
}

// addFiles returns the attachments after adding incoming to current, and a sentence for each
// file left out: over the count, over the size in all, or of a type the service refuses.
export function addFiles(current, incoming) {
  const files = current.slice();
  const problems = [];
  let total = files.reduce((n, f) => n + f.size, 0);
  for (const f of incoming) {
    if (!accepted(f)) {
      problems.push(`${f.name} was not added: support accepts PNG, JPEG, GIF, WebP, PDF, text and JSON files.`);
    } else if (files.length >= MAX_FILES) {
      problems.push(`${f.name} was not added: at most ${MAX_FILES} files.`);
    } else if (total + f.size > MAX_TOTAL_BYTES) {
      problems.push(`${f.name} (${sizeWords(f.size)}) was not added: attachments may be ${sizeWords(MAX_TOTAL_BYTES)} in all.`);
    } else {
      files.push(f);
      total += f.size;
    }
  }
  return { files, problems };
}

// screenshotName names a pasted image, which arrives as "image.png" or with no name at all.
export function screenshotName(type, date) {
  const ext = ACCEPTED[type] || '.png';
  const p = (n) => String(n).padStart(2, '0');
  return `screenshot-${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}${ext}`;
}

const singleLine = (s) => String(s).replace(/[\r\n\t\u2028\u2029]+/g, ' ').trim();

// recentErrorsPayload turns error-capture's events into the report's recentErrors and the
// request ids they carry: exactly what the opt-in sends, and what the dialog shows.
export function recentErrorsPayload(events) {
  const recentErrors = [];
  const requestIds = [];
  for (const e of (Array.isArray(events) ? events : []).slice(-MAX_RECENT_ERRORS)) {
    if (!e || typeof e.message !== 'string' || !e.message.trim()) continue;
    let message = e.message;
    if (e.kind === 'http' && e.status && !message.includes(String(e.status))) message += ` (HTTP ${e.status})`;
    const item = { message: truncateBytes(message, MAX_ERROR_MESSAGE_BYTES) };
    if (typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time))) item.occurredAt = e.time;
    const source = singleLine(e.url || e.kind || '');
    if (source) item.source = source.length > MAX_SOURCE ? source.slice(0, MAX_SOURCE - 1) + '…' : source;
    recentErrors.push(item);
    const rid = typeof e.requestId === 'string' ? e.requestId : '';
    if (rid && rid.length <= MAX_REQUEST_ID && /^[\x21-\x7e]+$/.test(rid) && !requestIds.includes(rid)) requestIds.push(rid);
  }
  return { recentErrors, requestIds };
}

// readRecentErrors reads what web/error-capture keeps in this tab's sessionStorage (shared
// by the app's frames of our origin): the app page's own errors, not the dialog's.
export function readRecentErrors(win) {
  try {
    if (win.SupportbridgeErrors && typeof win.SupportbridgeErrors.recent === 'function') return win.SupportbridgeErrors.recent();
    const raw = win.sessionStorage && win.sessionStorage.getItem(STORAGE_KEY);
    const v = raw ? JSON.parse(raw) : [];
    return Array.isArray(v) ? v : [];
  } catch (_) {
    return [];
  }
}

// environmentOf is what the browser says about itself, in the shapes the service validates.
export function environmentOf(win) {
  const env = {};
  try {
    const lang = win.navigator && win.navigator.language;
    if (lang && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(lang) && lang.length <= 35) env.locale = lang;
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && tz.length <= 64) env.timezone = tz;
    const s = win.screen;
    if (s && s.width > 0 && s.height > 0) env.screen = `${Math.round(s.width)}x${Math.round(s.height)}`;
  } catch (_) { /* an environment is optional */ }
  return env;
}

// validateFields checks what the service would refuse, with the same limits.
export function validateFields({ summary, description }) {
  const errors = {};
  const s = String(summary || '').trim();
  if (!s) errors.summary = 'Enter a short summary of the problem.';
  else if ([...s].length > MAX_SUMMARY) errors.summary = `The summary may be at most ${MAX_SUMMARY} characters.`;
  else if (/[\r\n]/.test(s)) errors.summary = 'The summary must be a single line.';
  if (byteLength(String(description || '')) > MAX_DESCRIPTION_BYTES) {
    errors.description = 'The description is too long (at most 32 KB); attach longer text as a file.';
  }
  return errors;
}

// buildReport is the JSON report the service receives.
export function buildReport({ summary, description, includeErrors, errors, environment }) {
  const r = { summary: String(summary).trim() };
  if (description && description.trim()) r.description = description;
  if (includeErrors && errors) {
    if (errors.recentErrors.length) r.recentErrors = errors.recentErrors;
    if (errors.requestIds.length) r.operation = { requestIds: errors.requestIds };
  }
  if (environment && Object.keys(environment).length) r.environment = environment;
  return r;
}

const FIELD_OF = { '/summary': 'summary', '/description': 'description' };

// failure turns a refused or unanswered send into what the user reads: a message, the
// fields to mark, and how long to wait before sending again (seconds, 0 for none).
export function failure(res, now = Date.now()) {
  const body = res && res.body && typeof res.body === 'object' ? res.body : {};
  const wait = retryAfterSeconds(res && res.headers && res.headers['retry-after'], now);
  const ref = typeof body.requestId === 'string' && body.requestId ? ` (reference ${body.requestId})` : '';
  switch (res ? res.status : 0) {
    case 0:
      return { message: 'You seem to be offline, or the connection dropped. Your report is still here: send it again when you are back online. If it did arrive, sending again will not file it twice.', wait: 0, fields: {} };
    case 400: {
      const fields = {};
      const other = [];
      for (const e of Array.isArray(body.errors) ? body.errors : []) {
        const f = FIELD_OF[e.field];
        if (f) fields[f] = `This ${f} ${e.message}.`;
        else other.push(`${e.field ? e.field + ' ' : ''}${e.message}`);
      }
      const message = Object.keys(fields).length && !other.length
        ? 'Please correct the marked fields and send again.'
        : `The report was refused: ${other.join('; ') || body.detail || 'it is invalid'}.`;
      return { message, wait: 0, fields };
    }
    case 401:
      return { message: 'Your session with this app has expired. Close this dialog and open "Report a problem" again; what you typed here will need to be entered again.', wait: 0, fields: {} };
    case 403:
      return { message: `This app cannot file reports for you right now${body.detail ? ': ' + body.detail : '.'}`, wait: 0, fields: {} };
    case 409:
      return { message: 'Your report is still being received. Wait a few seconds and send again; it will not be filed twice.', wait: Number.isNaN(wait) ? 2 : wait, fields: {} };
    case 413:
      return { message: `The attachments are too large to send: at most ${MAX_FILES} files and ${sizeWords(MAX_TOTAL_BYTES)} in all. Remove a file or attach a smaller one, then send again.`, wait: 0, fields: {} };
    case 415:
      return { message: 'One attachment is a kind of file support cannot accept (PNG, JPEG, GIF, WebP, PDF, text and JSON only). Remove it and send again.', wait: 0, fields: {} };
    case 422:
      return { message: 'This dialog already sent a different report. Close it and open "Report a problem" again to send a new one.', wait: 0, fields: {} };
    case 429: {
      const w = Number.isNaN(wait) ? 60 : wait;
      return { message: `You have sent several reports in a short time, so this one was not filed. You can send it in ${waitWords(w)}.`, wait: w, fields: {} };
    }
    case 503: {
      const w = Number.isNaN(wait) ? 30 : wait;
      return { message: `Support cannot take reports at this moment; nothing was filed. Please send it again in ${waitWords(w)}.`, wait: w, fields: {} };
    }
    default:
      return { message: `Something went wrong on our side (error ${res.status}); nothing was lost here. Please try again in a moment${ref}.`, wait: 0, fields: {} };
  }
}

// pollDelay is how long to wait before the n-th status check (n from 0): growing, capped.
export function pollDelay(n, retryAfter) {
  const base = POLL_DELAYS[Math.min(n, POLL_DELAYS.length - 1)];
  return Number.isFinite(retryAfter) && retryAfter * 1000 > base ? retryAfter * 1000 : base;
}

// statusView describes a report status for the user.
export function statusView(st) {
  const v = { done: false, title: '', text: '', ticketKey: '', link: '', emailNote: '' };
  const portal = (st && (st.portalUrl || st.ticketUrl)) || '';
  if (/^https?:\/\//i.test(portal)) v.link = portal;
  if (st && st.emailSource === 'unverified') {
    v.emailNote = 'Your site did not confirm an email address for you, so support will reply on the ticket in the customer portal rather than by email.';
  }
  switch (st && st.status) {
    case 'delivered':
      v.done = true;
      v.ticketKey = st.ticketKey || '';
      v.title = v.ticketKey ? `Ticket ${v.ticketKey} created` : 'Ticket created';
      v.text = 'Support has your report. You can follow it on the ticket.';
      break;
    case 'failed':
      v.done = true;
      v.title = 'Report saved, ticket not created yet';
      v.text = 'Your report was received, but creating the ticket failed. Support can see it and will retry; you do not need to send it again.';
      break;
    case 'delivering':
      v.title = 'Report received';
      v.text = 'Creating your ticket…';
      break;
    default:
      v.title = 'Report received';
      v.text = 'Your report is queued; the ticket will be created in a moment.';
  }
  return v;
}

export function newIdempotencyKey(cryptoObj = globalThis.crypto) {
  if (cryptoObj && typeof cryptoObj.randomUUID === 'function') return cryptoObj.randomUUID();
  const b = cryptoObj.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- The dialog ----

function h(doc, tag, attrs = {}, children = []) {
  const el = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined || v === null) continue;
    if (k === 'text') el.textContent = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of [].concat(children)) if (c) el.append(c);
  return el;
}

// mount draws the widget in root. options: open (open the dialog at once, as the Connect
// dialog page does), onClose (the host closes its own dialog, e.g. AP.dialog.close),
// recentErrors() (this tab's captured errors), and for tests: setTimeout, now, idempotencyKey.
export function mount(root, transport, options = {}) {
  const doc = root.ownerDocument;
  const win = doc.defaultView;
  const setTimer = options.setTimeout || ((f, ms) => win.setTimeout(f, ms));
  const now = options.now || (() => Date.now());
  const recent = options.recentErrors || (() => readRecentErrors(win));
  const canAttach = transport.canAttach !== false;

  const state = {
    key: options.idempotencyKey || newIdempotencyKey(win.crypto),
    files: [], sending: false, sent: null, retryAt: 0, errors: { recentErrors: [], requestIds: [] },
  };

  const id = (s) => `sbw-${s}`;
  const opener = h(doc, 'button', { type: 'button', class: 'sbw-button sbw-primary sbw-opener', text: 'Report a problem' });
  const title = h(doc, 'h2', { id: id('title'), class: 'sbw-title', text: 'Report a problem' });
  const close = h(doc, 'button', { type: 'button', class: 'sbw-icon-button', 'aria-label': 'Close' }, [h(doc, 'span', { 'aria-hidden': 'true', text: '×' })]);
  const intro = h(doc, 'p', { id: id('intro'), class: 'sbw-hint', text: 'Tell support what went wrong. Your Atlassian site tells us who you are, so you do not need to give an email address.' });

  const summaryErr = h(doc, 'p', { id: id('summary-error'), class: 'sbw-field-error', hidden: true });
  const summary = h(doc, 'input', { id: id('summary'), name: 'summary', type: 'text', required: true, maxlength: MAX_SUMMARY, autocomplete: 'off', 'aria-describedby': id('summary-error') });
  const descErr = h(doc, 'p', { id: id('description-error'), class: 'sbw-field-error', hidden: true });
  const descHint = h(doc, 'p', { id: id('description-hint'), class: 'sbw-hint', text: 'What were you doing, what did you expect, and what happened instead?' });
  const description = h(doc, 'textarea', { id: id('description'), name: 'description', rows: 5, 'aria-describedby': `${id('description-hint')} ${id('description-error')}` });

  const fileInput = h(doc, 'input', { id: id('files'), type: 'file', multiple: true, accept: ACCEPT_ATTR, class: 'sbw-file-input', 'aria-describedby': id('attach-hint') });
  const fileList = h(doc, 'ul', { class: 'sbw-files', 'aria-label': 'Attached files' });
  const attachErr = h(doc, 'p', { id: id('attach-error'), class: 'sbw-field-error', hidden: true });
  const attach = canAttach
    ? h(doc, 'fieldset', { class: 'sbw-attach' }, [
      h(doc, 'legend', { text: 'Attachments' }),
      h(doc, 'p', { id: id('attach-hint'), class: 'sbw-hint', text: `Up to ${MAX_FILES} files, ${sizeWords(MAX_TOTAL_BYTES)} in all (PNG, JPEG, GIF, WebP, PDF, text, JSON). Drop files here, or paste a screenshot with Ctrl+V (⌘V).` }),
      h(doc, 'label', { for: id('files'), class: 'sbw-label', text: 'Choose files' }),
      fileInput, fileList, attachErr,
    ])
    : h(doc, 'p', { class: 'sbw-hint', text: 'Attachments cannot be sent from this app yet: describe what you see, and support may ask for files on the ticket.' });

  const errorsBox = h(doc, 'input', { id: id('include-errors'), type: 'checkbox', 'aria-describedby': id('errors-hint') });
  const errorsLabel = h(doc, 'label', { for: id('include-errors') });
  const errorsHint = h(doc, 'p', { id: id('errors-hint'), class: 'sbw-hint' });
  const preview = h(doc, 'pre', { class: 'sbw-preview', tabindex: '0', 'aria-label': 'Recent errors that will be sent' });
  const previewWrap = h(doc, 'div', { id: id('errors-preview'), hidden: true }, [
    h(doc, 'p', { class: 'sbw-hint', text: 'Exactly this is added to your report:' }), preview,
  ]);

  const progress = h(doc, 'progress', { max: '100', class: 'sbw-progress', hidden: true, 'aria-label': 'Upload progress' });
  const live = h(doc, 'p', { class: 'sbw-live', role: 'status', 'aria-live': 'polite' });
  const alert = h(doc, 'div', { class: 'sbw-alert', role: 'alert' });
  const cancel = h(doc, 'button', { type: 'button', class: 'sbw-button', text: 'Cancel' });
  const submit = h(doc, 'button', { type: 'submit', class: 'sbw-button sbw-primary', text: 'Send report' });

  const form = h(doc, 'form', { class: 'sbw-form', novalidate: true, 'aria-labelledby': id('title') }, [
    h(doc, 'div', { class: 'sbw-field' }, [h(doc, 'label', { for: id('summary'), class: 'sbw-label' }, ['Summary ', h(doc, 'span', { class: 'sbw-required', text: '(required)' })]), summary, summaryErr]),
    h(doc, 'div', { class: 'sbw-field' }, [h(doc, 'label', { for: id('description'), class: 'sbw-label', text: 'Description' }), descHint, description, descErr]),
    attach,
    h(doc, 'div', { class: 'sbw-field sbw-check' }, [errorsBox, errorsLabel]), errorsHint, previewWrap,
    progress, live, alert,
    h(doc, 'div', { class: 'sbw-actions' }, [cancel, submit]),
  ]);

  const resultTitle = h(doc, 'h3', { class: 'sbw-result-title', tabindex: '-1' });
  const resultText = h(doc, 'p', { class: 'sbw-result-text' });
  const resultLink = h(doc, 'a', { class: 'sbw-result-link', target: '_blank', rel: 'noopener noreferrer', hidden: true });
  const resultEmail = h(doc, 'p', { class: 'sbw-note', hidden: true });
  const done = h(doc, 'button', { type: 'button', class: 'sbw-button sbw-primary', text: 'Close' });
  const another = h(doc, 'button', { type: 'button', class: 'sbw-button', text: 'Report another problem' });
  const result = h(doc, 'section', { class: 'sbw-result', hidden: true, 'aria-live': 'polite' }, [
    resultTitle, resultText, h(doc, 'p', {}, [resultLink]), resultEmail, h(doc, 'div', { class: 'sbw-actions' }, [another, done]),
  ]);

  const dialog = h(doc, 'dialog', { class: 'sbw-dialog', 'aria-labelledby': id('title'), 'aria-describedby': id('intro') }, [
    h(doc, 'div', { class: 'sbw-header' }, [title, close]), intro, form, result,
  ]);
  root.replaceChildren(opener, dialog);

  // ---- rendering ----

  function renderFiles() {
    fileList.replaceChildren(...state.files.map((f, i) => {
      const rm = h(doc, 'button', { type: 'button', class: 'sbw-link-button', 'aria-label': `Remove ${f.name}`, text: 'Remove' });
      rm.addEventListener('click', () => {
        state.files.splice(i, 1);
        renderFiles();
        announce(`${f.name} removed.`);
        (fileList.querySelector('button') || fileInput).focus();
      });
      return h(doc, 'li', {}, [h(doc, 'span', { class: 'sbw-file-name', text: f.name }), h(doc, 'span', { class: 'sbw-hint', text: ` ${sizeWords(f.size)} ` }), rm]);
    }));
    fileList.hidden = state.files.length === 0;
  }

  function renderErrors() {
    state.errors = recentErrorsPayload(recent());
    const n = state.errors.recentErrors.length;
    errorsLabel.textContent = n ? `Include the recent errors from this page (${n})` : 'Include the recent errors from this page';
    errorsBox.disabled = n === 0;
    if (n === 0) errorsBox.checked = false;
    errorsHint.textContent = n
      ? 'Off unless you tick it. They help support find the cause; links are cleaned of tokens and email addresses.'
      : 'No errors were recorded on this page.';
    const payload = {};
    if (n) payload.recentErrors = state.errors.recentErrors;
    if (state.errors.requestIds.length) payload.operation = { requestIds: state.errors.requestIds };
    preview.textContent = JSON.stringify(payload, null, 2);
    previewWrap.hidden = !errorsBox.checked;
  }

  function setFieldError(input, el, msg) {
    el.textContent = msg || '';
    el.hidden = !msg;
    if (msg) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  function announce(msg) { live.textContent = msg; }
  function showAlert(msg) {
    // Emptied first so that the same message twice is announced twice.
    alert.textContent = '';
    if (msg) setTimer(() => { alert.textContent = msg; }, 50);
  }

  function setSending(on) {
    state.sending = on;
    submit.setAttribute('aria-disabled', on ? 'true' : 'false');
    submit.textContent = on ? 'Sending…' : 'Send report';
    form.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function showResult(st) {
    const v = statusView(st);
    form.hidden = true;
    result.hidden = false;
    resultTitle.textContent = v.title;
    resultText.textContent = v.text;
    resultLink.hidden = !v.link;
    if (v.link) {
      resultLink.href = v.link;
      resultLink.textContent = v.ticketKey ? `Open ${v.ticketKey} in the customer portal` : 'Open the ticket in the customer portal';
    }
    resultEmail.hidden = !v.emailNote;
    resultEmail.textContent = v.emailNote;
    return v;
  }

  // ---- actions ----

  function addIncoming(list) {
    const { files, problems } = addFiles(state.files, list);
    const added = files.length - state.files.length;
    state.files = files;
    renderFiles();
    setFieldError(fileInput, attachErr, problems.join(' '));
    if (added) announce(`${added} file${added === 1 ? '' : 's'} attached: ${files.slice(-added).map((f) => f.name).join(', ')}.`);
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    if (state.sending || state.sent) return; // a double click files once
    showAlert('');
    const fieldErrs = validateFields({ summary: summary.value, description: description.value });
    setFieldError(summary, summaryErr, fieldErrs.summary);
    setFieldError(description, descErr, fieldErrs.description);
    if (fieldErrs.summary || fieldErrs.description) {
      (fieldErrs.summary ? summary : description).focus();
      showAlert('Please correct the marked fields.');
      return;
    }
    const waitLeft = Math.ceil((state.retryAt - now()) / 1000);
    if (waitLeft > 0) {
      showAlert(`Please wait ${waitWords(waitLeft)} before sending again.`);
      return;
    }
    const report = buildReport({
      summary: summary.value, description: description.value, includeErrors: errorsBox.checked,
      errors: state.errors, environment: environmentOf(win),
    });
    setSending(true);
    const hasFiles = state.files.length > 0;
    progress.hidden = !hasFiles;
    progress.removeAttribute('value'); // indeterminate until the transport reports progress
    announce(hasFiles ? 'Uploading your report…' : 'Sending your report…');
    let res;
    try {
      res = await transport.send({
        report, files: state.files.slice(), idempotencyKey: state.key,
        onProgress: (loaded, total) => {
          if (total > 0) progress.value = Math.round((loaded / total) * 100);
        },
      });
    } catch (_) {
      res = { status: 0, body: null, headers: {} };
    }
    progress.hidden = true;
    setSending(false);
    if (res.status === 202 || res.status === 200) {
      const body = res.body || {};
      state.sent = { id: body.id };
      announce('Report sent.');
      showResult({ status: body.status || 'queued' });
      resultTitle.focus();
      if (body.id) poll(body.id, 0, now());
      return;
    }
    const f = failure(res, now());
    setFieldError(summary, summaryErr, f.fields.summary);
    setFieldError(description, descErr, f.fields.description);
    announce('');
    showAlert(f.message);
    if (f.wait > 0) {
      state.retryAt = now() + f.wait * 1000;
      setTimer(() => { if (!state.sent) announce('You can send your report now.'); }, f.wait * 1000);
    }
    if (f.fields.summary) summary.focus();
    else if (f.fields.description) description.focus();
  }

  function poll(reportId, n, started, retryAfter = NaN) {
    setTimer(async () => {
      // "Report another problem" starts over: the earlier report's status is no longer shown.
      if (!state.sent || state.sent.id !== reportId) return;
      let res;
      try {
        res = await transport.status(reportId);
      } catch (_) {
        res = { status: 0, headers: {} };
      }
      if (!state.sent || state.sent.id !== reportId) return;
      let retry = NaN;
      if (res.status === 200 && res.body) {
        const v = showResult(res.body);
        if (v.done) {
          announce(`${v.title}. ${v.emailNote}`.trim());
          return;
        }
      } else {
        retry = retryAfterSeconds(res.headers && res.headers['retry-after'], now());
      }
      if (now() - started > POLL_GIVE_UP) {
        resultText.textContent = 'Your report is safely queued; the ticket will be created when support\'s desk answers. You can close this dialog.';
        return;
      }
      poll(reportId, n + 1, started, retry);
    }, pollDelay(n, retryAfter));
  }

  function open() {
    renderErrors();
    if (!dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
    }
    opener.hidden = true;
    (form.hidden ? resultTitle : summary).focus();
  }

  function closeDialog() {
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener('close', () => {
    opener.hidden = false;
    if (typeof options.onClose === 'function') options.onClose();
    opener.focus();
  });
  // Escape fires "cancel" and then closes the dialog; nothing else needs doing.
  opener.addEventListener('click', open);
  close.addEventListener('click', closeDialog);
  cancel.addEventListener('click', closeDialog);
  done.addEventListener('click', closeDialog);
  another.addEventListener('click', () => {
    state.key = newIdempotencyKey(win.crypto);
    state.sent = null;
    state.files = [];
    summary.value = '';
    description.value = '';
    errorsBox.checked = false;
    renderFiles();
    renderErrors();
    result.hidden = true;
    form.hidden = false;
    announce('');
    summary.focus();
  });
  form.addEventListener('submit', onSubmit);
  errorsBox.addEventListener('change', () => { previewWrap.hidden = !errorsBox.checked; });
  summary.addEventListener('input', () => { if (summaryErr.textContent) setFieldError(summary, summaryErr, validateFields({ summary: summary.value }).summary); });
  if (canAttach) {
    fileInput.addEventListener('change', () => {
      addIncoming([...fileInput.files]);
      fileInput.value = '';
    });
    dialog.addEventListener('dragover', (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) {
        e.preventDefault();
        attach.classList.add('sbw-drop');
      }
    });
    dialog.addEventListener('dragleave', (e) => { if (e.target === dialog || !dialog.contains(e.relatedTarget)) attach.classList.remove('sbw-drop'); });
    dialog.addEventListener('drop', (e) => {
      attach.classList.remove('sbw-drop');
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      e.preventDefault();
      addIncoming([...e.dataTransfer.files]);
    });
    dialog.addEventListener('paste', (e) => {
      const items = e.clipboardData ? [...e.clipboardData.items] : [];
      const pasted = items.filter((it) => it.kind === 'file').map((it) => it.getAsFile()).filter(Boolean);
      if (!pasted.length) return; // text pastes into the field as usual
      e.preventDefault();
      const when = new Date(now());
      addIncoming(pasted.map((f) => (f.type.startsWith('image/') && (!f.name || f.name === 'image.png')
        ? new win.File([f], screenshotName(f.type, when), { type: f.type })
        : f)));
    });
  }

  renderFiles();
  renderErrors();
  if (options.open) open();
  return { open, close: closeDialog, dialog, get idempotencyKey() { return state.key; } };
}
