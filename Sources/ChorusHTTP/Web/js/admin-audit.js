// The console's audit log: every request that changed something, newest first, filtered by
// user, action (method and path) and time, paged backwards.

import { h, clear } from './dom.js';
import { get, humanError } from './api.js';
import { allUsers, table, field, input, select, badge, errorBox, loading, formatTime } from './admin-kit.js';

const PAGE = 100;

/** A datetime-local value as Unix seconds, or null. */
function seconds(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms / 1000 : null;
}

export function auditView(container, ctx) {
  const byAdmin = ctx.permissions.includes('admin:users');
  // Without admin:users the user list is not readable: the filter takes an id instead.
  const user = byAdmin
    ? select([['', 'Anyone']], { dataset: { testid: 'audit-user' } })
    : input({ placeholder: 'user_…', autocomplete: 'off', dataset: { testid: 'audit-user' } });
  const method = select([['', 'Any'], ['POST', 'POST'], ['PATCH', 'PATCH'], ['PUT', 'PUT'], ['DELETE', 'DELETE'], ['GET', 'GET']], { dataset: { testid: 'audit-method' } });
  const path = input({ placeholder: '/v1/admin/users', autocomplete: 'off', spellcheck: 'false', dataset: { testid: 'audit-path' } });
  const since = input({ type: 'datetime-local', step: 1, dataset: { testid: 'audit-since' } });
  const until = input({ type: 'datetime-local', step: 1, dataset: { testid: 'audit-until' } });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const list = h('div', { class: 'admin-list' }, loading());
  const more = h('button', { type: 'button', class: 'btn small', text: 'Load older entries', hidden: true, dataset: { testid: 'audit-more' } });
  const count = h('p', { class: 'admin-note', role: 'status' });
  let entries = [];
  let emails = new Map();
  let generation = 0;
  let filters = null;

  const form = h('form', { class: 'admin-form filters', 'aria-label': 'Filter the audit log', novalidate: true },
    h('div', { class: 'admin-fields' },
      field('User', user), field('Method', method), field('Path starts with', path), field('From', since), field('Until', until)),
    error,
    h('div', { class: 'admin-actions' },
      h('button', { type: 'submit', class: 'btn primary', text: 'Apply filters', dataset: { testid: 'audit-apply' } }),
      h('button', { type: 'reset', class: 'btn', text: 'Clear', dataset: { testid: 'audit-clear' } })));

  const query = () => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    const who = user.value.trim();
    if (who) params.set('user_id', who);
    if (method.value) params.set('method', method.value);
    if (path.value.trim()) params.set('path_prefix', path.value.trim());
    const from = seconds(since.value);
    const to = seconds(until.value);
    if (from != null) params.set('since', String(from));
    if (to != null) params.set('until', String(to));
    if (from != null && to != null && to <= from) throw new Error('“Until” must be later than “From”.');
    return params;
  };

  const load = async (older) => {
    const mine = ++generation;
    const params = new URLSearchParams(filters);
    if (older && entries.length) params.set('before', entries[entries.length - 1].id);
    if (!older) clear(list).append(loading());
    let page;
    try {
      page = await get('/v1/admin/audit?' + params);
    } catch (err) {
      if (mine === generation) clear(list).append(errorBox(err));
      return;
    }
    if (mine !== generation) return;
    entries = older ? entries.concat(page.data || []) : page.data || [];
    more.hidden = !page.has_more;
    count.textContent = `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}${page.has_more ? ' shown; older ones below' : ''}.`;
    clear(list).append(table({
      testid: 'audit-entry', caption: 'Audit log', rows: entries, empty: 'No entries match these filters.',
      rowProps: (e) => ({ id: e.id, user: e.user_id || '', method: e.method, path: e.path }),
      columns: [
        { label: 'Time', cell: (e) => formatTime(e.created_at_ms / 1000) },
        { label: 'User', cell: (e) => e.user_id ? (emails.get(e.user_id) || e.user_id) : 'anonymous' },
        { label: 'Action', key: 'action', cell: (e) => h('span', { class: 'action' }, badge(e.method), ' ', h('code', { text: e.path })) },
        { label: 'Status', class: 'num', cell: (e) => badge(String(e.status), e.status >= 400 ? 'danger' : 'ok') },
        { label: 'Duration', class: 'num', cell: (e) => `${e.duration_ms} ms` },
        { label: 'Key', cell: (e) => e.api_key_id || 'session' },
        { label: 'IP', cell: (e) => e.ip || '' },
        { label: 'Request', cell: (e) => h('code', { class: 'small', text: e.request_id }) },
      ],
    }));
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    error.hidden = true;
    try { filters = query().toString(); } catch (err) {
      error.textContent = humanError(err);
      error.hidden = false;
      return;
    }
    load(false);
  });
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
  more.addEventListener('click', () => load(true));

  container.append(form, count, list, h('div', { class: 'admin-actions' }, more));
  filters = query().toString();
  allUsers(ctx).then((users) => {
    emails = new Map(users.map((u) => [u.id, u.email]));
    if (byAdmin) user.append(...users.map((u) => h('option', { value: u.id, text: u.email })));
  }).catch(() => {}).finally(() => load(false));
  return () => { generation++; };
}
