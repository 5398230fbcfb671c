// The customer's "Support access" admin page: an administrator of the customer's Atlassian
// site sees what support agents ask of the app's logs, and approves (possibly for less time),
// denies, or revokes. The same module runs in the Connect admin page (connect.js) and in the
// Forge Custom UI (forge/static/site-admin/src/index.js); only the transport differs, so both
// hosts show the same texts and obey the same rules.
//
// mount(root, transport, {requestId, onRender}) draws into root. transport.call(method, path,
// body) resolves to {status, body, headers?} where body is the parsed JSON (or problem JSON)
// and status 0 means the network failed. Every piece of server data reaches the page through
// textContent or an attribute, never through innerHTML: the reason, names and log lines are
// written by people we do not control.

const API = '/api/v1/site';
const PAGE_SIZE = 20;
const MAX_NOTE = 1000;

// The durations an administrator can pick, shortest first. The request's own value is added
// when it is not one of these (the agent may ask for "36h").
const DURATION_CHOICES = ['1h', '4h', '8h', '24h', '72h', '168h', '720h', 'until-revoked'];

export const APPROVE_MEANING = 'The agent named above will be able to read these logs, only these, ' +
  'for at most this long, starting when you approve. Every read is recorded below and you can ' +
  'revoke access at any time.';

// ---- small DOM helpers: every string becomes a text node ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

// ---- words ----

// parseDuration reads the Go durations the service writes ("72h", "1h30m", "90m") into
// seconds; "until-revoked" is Infinity, anything unreadable NaN.
export function parseDuration(s) {
  if (s === 'until-revoked') return Infinity;
  if (typeof s !== 'string' || !/^(\d+h)?(\d+m)?(\d+s)?$/.test(s) || s === '') return NaN;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(s);
  return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
}

function plural(n, unit) {
  return n === 1 ? `1 ${unit}` : `${n} ${unit}s`;
}

// durationWords matches the service's wording: "90 minutes", "24 hours", "7 days".
export function durationWords(s) {
  const secs = parseDuration(s);
  if (secs === Infinity) return 'until you revoke it';
  if (!Number.isFinite(secs)) return String(s);
  if (secs % 86400 === 0 && secs > 86400) return plural(secs / 86400, 'day');
  if (secs % 3600 === 0) return plural(secs / 3600, 'hour');
  return plural(Math.round(secs / 60), 'minute');
}

// timeLeftWords turns seconds into the two largest units: "3 hours 12 minutes".
export function timeLeftWords(secs) {
  if (!Number.isFinite(secs) || secs <= 0) return 'no time';
  const d = Math.floor(secs / 86400);
  const hrs = Math.floor((secs % 86400) / 3600);
  const min = Math.floor((secs % 3600) / 60);
  const parts = [];
  if (d) parts.push(plural(d, 'day'));
  if (hrs) parts.push(plural(hrs, 'hour'));
  if (!d && min) parts.push(plural(min, 'minute'));
  if (parts.length === 0) parts.push('less than a minute');
  return parts.slice(0, 2).join(' ');
}

export function bytesWords(n) {
  if (!Number.isFinite(n)) return '';
  const exact = `${n.toLocaleString('en-US')} ${n === 1 ? 'byte' : 'bytes'}`;
  if (n < 1024) return exact;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]} (${exact})`;
}

const timeFormat = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});

function timeEl(iso) {
  if (!iso) return h('span', { text: '—' });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', { text: String(iso) });
  return h('time', { datetime: iso, text: timeFormat.format(d) });
}

const STATUS_WORDS = {
  pending: 'Waiting for your decision',
  approved: 'Approved',
  denied: 'Denied',
  cancelled: 'Withdrawn by the agent',
  expired: 'Expired without a decision',
};

const GRANT_WORDS = {
  active: 'Access is active',
  expired: 'Access has expired',
  revoked: 'Access was revoked',
  ended: 'Access has ended',
};

const ACTOR_WORDS = {
  agent: 'Support agent',
  admin: 'Support administrator',
  customer: 'Customer',
  'site-admin': 'Site administrator',
  siteAdmin: 'Site administrator',
  site_admin: 'Site administrator',
  system: 'supportbridge (automatic)',
};

function actorWords(a) {
  if (!a) return 'unknown';
  const kind = ACTOR_WORDS[a.kind] || a.kind || 'unknown';
  const who = [a.name, a.accountId ? `accountId ${a.accountId}` : ''].filter(Boolean).join(', ');
  return who ? `${kind} (${who})` : kind;
}

function actionWords(action) {
  const s = String(action || '').replace(/[_-]+/g, ' ').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : 'Event';
}

// problemMessage is the sentence the administrator reads for a failed call.
export function problemMessage(res) {
  const p = (res && res.body && typeof res.body === 'object') ? res.body : {};
  const detail = typeof p.detail === 'string' && p.detail ? p.detail : '';
  switch (res ? res.status : 0) {
    case 0:
      return 'The service could not be reached. Check your connection (you may be offline) and try again.';
    case 401:
      return 'Your session has expired. Reload the page to continue.';
    case 403:
      return 'Only administrators of this site can decide on support access.' + (detail ? ` ${detail}` : '');
    case 404:
      return 'This request was not found. It may belong to another site or have been removed.';
    case 409:
      return 'This request has already been decided. Reload the page to see the decision.';
    case 410:
      return 'This request has expired or was withdrawn by the agent, so it can no longer be decided.';
    case 503: {
      const ra = retryAfterSeconds(res);
      return 'The site could not confirm your permission right now. ' +
        (ra ? `Try again in ${plural(ra, 'second')}.` : 'Try again in a moment.');
    }
    case 400:
    case 422: {
      const errs = Array.isArray(p.errors) ? p.errors.map((e) => e && e.message).filter(Boolean) : [];
      return `The service did not accept this: ${errs.length ? errs.join('; ') : (detail || p.title || 'invalid input')}.`;
    }
    default:
      return 'Something went wrong on our side. Try again in a moment.';
  }
}

function retryAfterSeconds(res) {
  const raw = res && res.headers ? (res.headers['retry-after'] ?? res.headers['Retry-After']) : undefined;
  if (raw === undefined || raw === null || raw === '') return 0;
  const n = Number(raw);
  if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  const when = Date.parse(raw);
  return Number.isNaN(when) ? 0 : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

// durationOptions lists what the administrator may pick: the standard choices no longer than
// the cap, and the cap itself (normally the requested duration), longest first so the asked
// value is the default.
export function durationOptions(requested, maxDuration) {
  const asked = parseDuration(requested);
  const max = parseDuration(maxDuration);
  const cap = Number.isNaN(max) ? requested : (Number.isNaN(asked) || max < asked ? maxDuration : requested);
  const capSecs = parseDuration(cap);
  const values = DURATION_CHOICES.filter((d) => parseDuration(d) <= capSecs);
  if (!values.includes(cap)) values.push(cap);
  values.sort((a, b) => parseDuration(b) - parseDuration(a));
  return values.map((v) => ({
    value: v,
    label: v === 'until-revoked' ? 'Until you revoke it' : durationWords(v)[0].toUpperCase() + durationWords(v).slice(1),
    asked: v === requested,
  }));
}

// sortRequests puts pending requests first, then decided ones, each newest first.
export function sortRequests(items) {
  const t = (r) => Date.parse(r.createdAt) || 0;
  return [...items].sort((a, b) => {
    const pa = a.status === 'pending' ? 0 : 1;
    const pb = b.status === 'pending' ? 0 : 1;
    return pa - pb || t(b) - t(a);
  });
}

// ---- the app ----

export function mount(root, transport, options = {}) {
  const onRender = typeof options.onRender === 'function' ? options.onRender : () => {};
  const state = { items: [], nextCursor: undefined, loaded: false };

  root.textContent = '';
  root.classList.add('sb-app');
  const status = h('div', { class: 'sb-live', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const alert = h('div', { class: 'sb-alert', role: 'alert', 'aria-live': 'assertive', 'aria-atomic': 'true' });
  const heading = h('h1', { text: 'Support access' });
  const view = h('div', { class: 'sb-view' });
  append(root, [heading, status, alert, view]);

  function say(msg) {
    alert.textContent = '';
    alert.hidden = true;
    status.textContent = msg || '';
  }
  function fail(res) {
    status.textContent = '';
    alert.hidden = false;
    alert.textContent = problemMessage(res);
  }
  function rendered(focusEl) {
    if (focusEl) {
      if (!focusEl.hasAttribute('tabindex') && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(focusEl.tagName)) {
        focusEl.setAttribute('tabindex', '-1');
      }
      focusEl.focus({ preventScroll: false });
    }
    try { onRender(); } catch (_) { /* the host's resize is best effort */ }
  }

  async function call(method, path, body) {
    try {
      const res = await transport.call(method, path, body);
      return res && typeof res.status === 'number' ? res : { status: 0, body: null };
    } catch (_) {
      return { status: 0, body: null };
    }
  }

  function busy(button, on, label) {
    button.disabled = on;
    if (on) {
      button.dataset.label = button.textContent;
      button.textContent = label;
      button.setAttribute('aria-busy', 'true');
    } else {
      if (button.dataset.label) button.textContent = button.dataset.label;
      button.removeAttribute('aria-busy');
    }
  }

  // ---- list ----

  async function loadPage(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) q.set('cursor', cursor);
    const res = await call('GET', `${API}/access-requests?${q}`);
    if (res.status !== 200 || !res.body || !Array.isArray(res.body.items)) {
      fail(res.status === 200 ? { status: 500 } : res);
      return null;
    }
    return res.body;
  }

  async function showList({ focus = 'heading', reload = false } = {}) {
    if (!state.loaded || reload) {
      view.textContent = '';
      view.append(h('p', { class: 'sb-loading', text: 'Loading requests…' }));
      rendered();
      const page = await loadPage();
      if (!page) {
        view.textContent = '';
        view.append(retryBlock(() => showList({ reload: true })));
        rendered();
        return;
      }
      state.items = page.items;
      state.nextCursor = page.nextCursor || undefined;
      state.loaded = true;
    }
    renderList(focus);
  }

  function renderList(focus) {
    view.textContent = '';
    const intro = h('p', {
      text: 'Support agents of this app ask here to read your app\'s logs for a ticket. Nothing is ' +
        'shared until an administrator of this site approves, and you can revoke access at any time.',
    });
    const h2 = h('h2', { id: 'sb-list-heading', text: 'Requests for access to your logs' });
    view.append(h2, intro);

    const sorted = sortRequests(state.items);
    const pending = sorted.filter((r) => r.status === 'pending');
    const decided = sorted.filter((r) => r.status !== 'pending');
    let firstNew = null;

    const section = (title, items, empty) => {
      const id = `sb-h-${title.replace(/\W+/g, '-').toLowerCase()}`;
      const s = h('section', { 'aria-labelledby': id }, h('h3', { id, text: title }));
      if (items.length === 0) {
        s.append(h('p', { class: 'sb-muted', text: empty }));
      } else {
        const ul = h('ul', { class: 'sb-cards' });
        for (const r of items) {
          const li = requestCard(r);
          if (focus && typeof focus === 'object' && focus.firstNewId === r.id) firstNew = li.querySelector('a');
          ul.append(li);
        }
        s.append(ul);
      }
      return s;
    };
    view.append(section('Waiting for your decision', pending, 'No request is waiting for a decision.'));
    view.append(section('Decided', decided, 'No decided requests yet.'));

    if (state.nextCursor) {
      const more = h('button', { type: 'button', class: 'sb-button sb-secondary', text: 'Load more requests' });
      more.addEventListener('click', async () => {
        busy(more, true, 'Loading…');
        const page = await loadPage(state.nextCursor);
        busy(more, false);
        if (!page) { more.focus(); return; }
        const known = new Set(state.items.map((r) => r.id));
        const fresh = page.items.filter((r) => !known.has(r.id));
        state.items = state.items.concat(fresh);
        state.nextCursor = page.nextCursor || undefined;
        say(fresh.length ? `${plural(fresh.length, 'more request')} loaded.` : 'No more requests.');
        const next = sortRequests(fresh)[0];
        renderList(next ? { firstNewId: next.id } : 'heading');
      });
      view.append(h('p', {}, more));
    }
    let target = h2;
    if (firstNew) target = firstNew;
    else if (focus && typeof focus === 'object' && focus.requestId) {
      target = view.querySelector(`a[data-request-id="${CSS.escape(focus.requestId)}"]`) || h2;
    } else if (focus === 'none') target = null;
    rendered(target);
  }

  function requestCard(r) {
    const link = h('a', {
      href: `#request-${encodeURIComponent(r.id)}`,
      class: 'sb-card-link',
      dataset: { requestId: r.id },
    }, `Ticket ${r.ticketKey || '(no ticket)'}: ${r.agent && r.agent.name ? r.agent.name : 'an agent'} asks for ${r.durationWords || durationWords(r.duration)}`);
    link.addEventListener('click', (e) => {
      e.preventDefault();
      showDetail(r.id, { from: 'list' });
    });
    return h('li', { class: 'sb-card' },
      h('p', { class: 'sb-card-title' }, link),
      h('p', { class: 'sb-card-meta' },
        h('span', { class: `sb-badge sb-badge-${r.status}`, text: STATUS_WORDS[r.status] || r.status }),
        ' · asked ', timeEl(r.createdAt),
        r.status === 'pending' && r.expiresAt ? [' · answer by ', timeEl(r.expiresAt)] : null,
        Array.isArray(r.streams) && r.streams.length ? ` · logs: ${r.streams.join(', ')}` : null));
  }

  function retryBlock(again) {
    const b = h('button', { type: 'button', class: 'sb-button sb-secondary', text: 'Try again' });
    b.addEventListener('click', again);
    return h('p', {}, b);
  }

  // ---- detail ----

  async function showDetail(id, { focus = 'heading', keepMessage = false } = {}) {
    if (!keepMessage) say('');
    view.textContent = '';
    view.append(backLink(), h('p', { class: 'sb-loading', text: 'Loading the request…' }));
    rendered();
    const res = await call('GET', `${API}/access-requests/${encodeURIComponent(id)}`);
    if (res.status !== 200 || !res.body || !res.body.request) {
      fail(res.status === 200 ? { status: 500 } : res);
      view.textContent = '';
      view.append(backLink(), retryBlock(() => showDetail(id)));
      rendered(focus === 'none' ? null : view.querySelector('a'));
      return;
    }
    renderDetail(res.body, focus);
  }

  function backLink() {
    const a = h('a', { href: '#requests', class: 'sb-back', text: '← All requests' });
    a.addEventListener('click', (e) => {
      e.preventDefault();
      say('');
      showList({ reload: true, focus: { requestId: a.dataset.from || '' } });
    });
    return a;
  }

  function renderDetail(d, focus) {
    const r = d.request;
    view.textContent = '';
    const back = backLink();
    back.dataset.from = r.id;
    const title = h('h2', { id: 'sb-detail-heading', text: `Access request for ticket ${r.ticketKey || '(no ticket)'}` });
    view.append(back, title);

    const statusLine = h('p', { class: `sb-status sb-status-${r.status}`, id: 'sb-request-status' },
      h('strong', { text: STATUS_WORDS[r.status] || r.status }));
    if (r.status === 'pending') {
      append(statusLine, ['. Answer by ', timeEl(r.expiresAt), '; without an answer the request expires.']);
    } else if (r.decidedAt) {
      append(statusLine, [' on ', timeEl(r.decidedAt), r.decidedBy ? ` by ${actorWords(r.decidedBy)}` : '', '.']);
    }
    view.append(statusLine);
    if (r.status === 'denied' && r.denyReason) {
      view.append(h('p', {}, 'Note to the agent: ', h('span', { class: 'sb-pre-wrap', text: r.denyReason })));
    }
    if (r.status === 'cancelled' && r.cancelReason) {
      view.append(h('p', {}, 'The agent said: ', h('span', { class: 'sb-pre-wrap', text: r.cancelReason })));
    }
    if (r.reconfirms) {
      view.append(h('p', { class: 'sb-note', text: 'This request asks you to confirm standing access you gave earlier. Without your confirmation, that access ends.' }));
    }

    view.append(whatIsAsked(r), preview(d));

    if (r.status === 'pending') view.append(decision(r, d));
    if (d.grant) view.append(grantBlock(d.grant, d));
    view.append(readsBlock(d.accesses || []), auditBlock(d.audit || []));

    let target = title;
    if (focus === 'status') target = view.querySelector('#sb-grant-status') || statusLine;
    if (focus === 'none') target = null;
    rendered(target);
  }

  function row(term, ...desc) {
    return [h('dt', { text: term }), h('dd', {}, ...desc)];
  }

  function whatIsAsked(r) {
    const agent = r.agent || {};
    const streams = Array.isArray(r.streams) && r.streams.length
      ? h('ul', { class: 'sb-inline-list' }, r.streams.map((s) => h('li', {}, h('code', { text: s }))))
      : h('span', { text: 'none named' });
    return h('section', { 'aria-labelledby': 'sb-asked' },
      h('h3', { id: 'sb-asked', text: 'What is asked' }),
      h('dl', { class: 'sb-facts' },
        row('Who asks', h('span', { class: 'sb-strong', text: agent.name || 'Unknown agent' }),
          agent.email ? [' (', h('span', { class: 'sb-break', text: agent.email }), ')'] : null),
        row('Why', h('span', { class: 'sb-pre-wrap sb-reason', text: r.reason || '(no reason given)' })),
        row('Ticket', h('span', { text: r.ticketKey || '—' })),
        row('Which logs', streams),
        row('Which part of the logs', 'Lines written from ', timeEl(r.from), ' to ', timeEl(r.to)),
        row('For how long', h('span', { text: r.durationWords || durationWords(r.duration) }),
          r.duration === 'until-revoked' ? ' (standing access, to be re-confirmed every 90 days)' : ', from the moment you approve'),
        row('Personal data', r.personalData
          ? h('span', { class: 'sb-strong', text: 'Asked: lines that contain personal data (such as names or email addresses) are shown unredacted.' })
          : h('span', { text: 'Not asked: personal data is removed from every line before the agent reads it.' })),
        row('Asked on', timeEl(r.createdAt))));
  }

  function preview(d) {
    const p = d.preview || { available: false };
    const s = h('section', { 'aria-labelledby': 'sb-preview' },
      h('h3', { id: 'sb-preview', text: 'What the agent would see' }));
    if (!p.available) {
      s.append(h('p', { class: 'sb-note' }, 'Preview unavailable',
        p.reason ? [': ', h('span', { text: p.reason })] : null, '.'));
      return s;
    }
    const lines = Array.isArray(p.lines) ? p.lines : [];
    s.append(h('p', { text: `${lines.length === 1 ? 'The first line' : `The first ${lines.length} lines`} in scope, exactly as the agent would get them:` }));
    // One block per log stream, each line verbatim: the agent reads a stream at a time, and
    // anything we added to a line would no longer be what they get.
    const byStream = new Map();
    for (const l of lines) {
      const k = l && l.stream ? String(l.stream) : '';
      if (!byStream.has(k)) byStream.set(k, []);
      byStream.get(k).push(l && typeof l.line === 'string' ? l.line : '');
    }
    if (byStream.size === 0) s.append(h('p', { class: 'sb-muted', text: 'There are no lines in this part of the logs.' }));
    for (const [stream, texts] of byStream) {
      const label = stream ? `Preview of the ${stream} log` : 'Preview of the log';
      if (byStream.size > 1 || stream) s.append(h('h4', { class: 'sb-stream', text: stream ? `Log: ${stream}` : 'Log' }));
      const pre = h('pre', { class: 'sb-log', tabindex: '0', role: 'region', 'aria-label': label });
      pre.textContent = texts.join('\n');
      s.append(pre);
    }
    const scope = [];
    if (Number.isFinite(p.files)) scope.push(plural(p.files, 'file'));
    if (Number.isFinite(p.bytes)) scope.push(bytesWords(p.bytes));
    if (scope.length) s.append(h('p', { class: 'sb-muted', text: `In scope: ${scope.join(', ')}.` }));
    if (Number.isFinite(d.grantMaxBytes) && d.grantMaxBytes > 0) {
      s.append(h('p', { class: 'sb-muted', text: `The agent can read at most ${bytesWords(d.grantMaxBytes)} under one approval.` }));
    }
    return s;
  }

  function decision(r, d) {
    const s = h('section', { 'aria-labelledby': 'sb-decide', class: 'sb-decision' },
      h('h3', { id: 'sb-decide', text: 'Your decision' }),
      h('p', { class: 'sb-meaning', text: APPROVE_MEANING }));

    // Approve.
    const select = h('select', { id: 'sb-duration', name: 'duration', 'aria-describedby': 'sb-duration-hint' });
    for (const o of durationOptions(r.duration, d.maxDuration)) {
      const opt = h('option', { value: o.value, text: o.asked ? `${o.label} (as asked)` : o.label });
      if (o.asked) opt.selected = true;
      select.append(opt);
    }
    const approve = h('button', { type: 'submit', class: 'sb-button sb-primary', text: 'Approve access' });
    const approveForm = h('form', { class: 'sb-form', 'aria-labelledby': 'sb-approve-legend' },
      h('h4', { id: 'sb-approve-legend', text: 'Approve' }),
      h('label', { for: 'sb-duration', text: 'Allow access for' }),
      select,
      h('p', { class: 'sb-hint', id: 'sb-duration-hint', text: 'You can choose a shorter time than asked, not a longer one.' }),
      approve);
    approveForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      busy(approve, true, 'Approving…');
      const res = await call('POST', `${API}/access-requests/${encodeURIComponent(r.id)}/approve`, { duration: select.value });
      busy(approve, false);
      if (res.status === 200 || res.status === 201) {
        say(`Access approved for ${durationWords(select.value)}.`);
        await showDetail(r.id, { focus: 'status', keepMessage: true });
        return;
      }
      afterFailure(res, r.id, approve);
    });

    // Deny.
    const note = h('textarea', { id: 'sb-note', name: 'note', maxlength: String(MAX_NOTE), rows: '3', 'aria-describedby': 'sb-note-hint' });
    const count = h('span', { text: `${MAX_NOTE} characters left.` });
    note.addEventListener('input', () => { count.textContent = `${MAX_NOTE - note.value.length} characters left.`; });
    const deny = h('button', { type: 'submit', class: 'sb-button sb-danger', text: 'Deny access' });
    const denyForm = h('form', { class: 'sb-form', 'aria-labelledby': 'sb-deny-legend' },
      h('h4', { id: 'sb-deny-legend', text: 'Deny' }),
      h('label', { for: 'sb-note', text: 'Note to the agent (optional)' }),
      note,
      h('p', { class: 'sb-hint', id: 'sb-note-hint' }, 'The agent sees this note on the ticket. ', count),
      deny);
    denyForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      busy(deny, true, 'Denying…');
      const text = note.value.trim().slice(0, MAX_NOTE);
      const res = await call('POST', `${API}/access-requests/${encodeURIComponent(r.id)}/deny`, text ? { note: text } : {});
      busy(deny, false);
      if (res.status === 200) {
        say('Access denied. The agent is told on the ticket.');
        await showDetail(r.id, { focus: 'heading', keepMessage: true });
        return;
      }
      afterFailure(res, r.id, deny);
    });

    s.append(approveForm, denyForm);
    return s;
  }

  // afterFailure announces the problem; when the request changed under us (409, 410) it also
  // shows the current state, keeping the message.
  async function afterFailure(res, id, button) {
    fail(res);
    if (res.status === 409 || res.status === 410) {
      const keep = alert.textContent;
      await showDetail(id, { keepMessage: true });
      alert.hidden = false;
      alert.textContent = keep;
      return;
    }
    if (button && button.isConnected) button.focus();
  }

  function grantBlock(g, d) {
    const s = h('section', { 'aria-labelledby': 'sb-grant', class: 'sb-grant' },
      h('h3', { id: 'sb-grant', text: 'Access granted' }));
    const line = h('p', { id: 'sb-grant-status', class: `sb-status sb-grant-${g.status}` },
      h('strong', { text: GRANT_WORDS[g.status] || g.status }));
    if (g.status === 'active') {
      if (g.untilRevoked) {
        append(line, [' until you revoke it', g.reconfirmBy ? [' (confirm again by ', timeEl(g.reconfirmBy), ')'] : null, '.']);
      } else {
        // The server's count is preferred: the administrator's clock may be wrong.
        const left = Number.isFinite(d.timeLeftSeconds) ? d.timeLeftSeconds : (Date.parse(g.end) - Date.now()) / 1000;
        append(line, [`: ${timeLeftWords(left)} left`, g.end ? [', until ', timeEl(g.end)] : null, '.']);
      }
    } else if (g.endedAt) {
      append(line, [' since ', timeEl(g.endedAt), g.endReason ? ` (${actionWords(g.endReason).toLowerCase()})` : '', '.']);
    }
    s.append(line);
    const approver = g.approvedBy && g.approvedBy.accountId
      ? h('span', {}, 'Site administrator, accountId ', h('code', { class: 'sb-break', text: g.approvedBy.accountId }))
      : h('span', { text: 'Not recorded' });
    s.append(h('dl', { class: 'sb-facts' },
      row('Approved by', approver),
      row('Started', timeEl(g.start)),
      row('Ends', g.untilRevoked ? h('span', { text: 'When you revoke it' }) : timeEl(g.end)),
      row('Logs', h('span', { text: (g.streams || []).join(', ') || '—' })),
      row('Part of the logs', 'From ', timeEl(g.from), ' to ', timeEl(g.to))));
    if (g.status === 'active') {
      const revoke = h('button', { type: 'button', class: 'sb-button sb-danger', text: 'Revoke access now' });
      revoke.addEventListener('click', async () => {
        busy(revoke, true, 'Revoking…');
        const res = await call('POST', `${API}/grants/${encodeURIComponent(g.id)}/revoke`);
        busy(revoke, false);
        if (res.status === 200) {
          say('Access revoked. The agent can no longer read your logs.');
          await showDetail(g.requestId || d.request.id, { focus: 'status', keepMessage: true });
          return;
        }
        afterFailure(res, d.request.id, revoke);
      });
      s.append(h('p', {}, revoke));
    }
    return s;
  }

  function table(caption, headers, rows) {
    const t = h('table', {},
      h('caption', { class: 'sb-visually-hidden', text: caption }),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
    return h('div', { class: 'sb-table-wrap', tabindex: '0', role: 'region', 'aria-label': `${caption} (table, scrolls sideways)` }, t);
  }

  function readsBlock(accesses) {
    const s = h('section', { 'aria-labelledby': 'sb-reads' },
      h('h3', { id: 'sb-reads', text: 'Reads of your logs' }));
    if (accesses.length === 0) {
      s.append(h('p', { class: 'sb-muted', text: 'Nobody has read your logs under this request.' }));
      return s;
    }
    s.append(table('Reads of your logs', ['Time', 'Who', 'Log', 'Part of the logs', 'Lines', 'Bytes'],
      accesses.map((a) => [
        timeEl(a.time),
        h('span', { text: (a.agent && a.agent.name) || '—' }),
        h('code', { text: a.stream || '' }),
        [timeEl(a.from), ' to ', timeEl(a.to)],
        h('span', { text: Number(a.lines || 0).toLocaleString('en-US') }),
        h('span', { text: bytesWords(Number(a.bytes || 0)) }),
      ])));
    return s;
  }

  function auditBlock(audit) {
    const s = h('section', { 'aria-labelledby': 'sb-audit' },
      h('h3', { id: 'sb-audit', text: 'Audit log' }),
      h('p', { class: 'sb-muted', text: 'Every decision and every read, in order. Entries cannot be changed or removed.' }));
    if (audit.length === 0) {
      s.append(h('p', { class: 'sb-muted', text: 'No entries yet.' }));
      return s;
    }
    s.append(table('Audit log', ['#', 'Time', 'What', 'Who', 'Details'],
      audit.map((e) => [
        h('span', { text: String(e.seq ?? '') }),
        timeEl(e.time),
        h('span', { text: actionWords(e.action) }),
        h('span', { class: 'sb-break', text: actorWords(e.actor) }),
        h('span', { class: 'sb-break', text: detailsWords(e.details) }),
      ])));
    return s;
  }

  function detailsWords(details) {
    if (!details || typeof details !== 'object') return '';
    return Object.entries(details).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('; ');
  }

  // The first render moves no focus: the page is an iframe inside the host's page, and
  // taking the focus there would pull the administrator away from wherever they were.
  if (options.requestId) showDetail(String(options.requestId), { focus: 'none' });
  else showList({ focus: 'none' });

  return { showList: () => showList({ reload: true }), showDetail: (id) => showDetail(id) };
}
