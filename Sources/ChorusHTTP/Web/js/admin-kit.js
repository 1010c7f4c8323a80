// Helpers the console's sections share: tables, fields, live refresh, the user list.

import { h } from './dom.js';
import { get, humanError } from './api.js';
import { toast } from './ui.js';

/** Every user (pages of 200), cached for the console's life: emails for ids in other views. */
export function allUsers(ctx, refresh = false) {
  if (!ctx.permissions.includes('admin:users')) return Promise.resolve([]);
  if (!ctx.usersPromise || refresh) {
    ctx.usersPromise = (async () => {
      const users = [];
      let after = null;
      for (let pages = 0; pages < 25; pages++) {
        const params = new URLSearchParams({ limit: '200' });
        if (after) params.set('after', after);
        const page = await get('/v1/admin/users?' + params);
        users.push(...(page.data || []));
        if (!page.has_more || !page.data?.length) break;
        after = page.data[page.data.length - 1].id;
      }
      return users;
    })();
    ctx.usersPromise.catch(() => { ctx.usersPromise = null; });
  }
  return ctx.usersPromise;
}

export function formatTime(seconds) {
  if (seconds == null) return '—';
  // Compact: the year only when it is not this one.
  const date = new Date(seconds * 1000);
  const options = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' };
  if (date.getFullYear() !== new Date().getFullYear()) options.year = 'numeric';
  return date.toLocaleString(undefined, options);
}

export function formatAgo(ms) {
  if (ms == null) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

/**
 * A table. columns: [{ label, cell: (row) => Node | string, class?, total? }]; each row gets
 * `data-testid` = testid and the attributes `rowProps(row)` returns. With `total`, a footer row
 * (`data-testid` = testid + '-total') shows each column's `total(total)`, blank where none.
 */
export function table({ columns, rows, testid, rowProps, empty = 'Nothing here.', caption, total }) {
  const head = h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class, text: c.label }))));
  const body = h('tbody', null, rows.map((row) => h('tr', { dataset: { testid, ...(rowProps ? rowProps(row) : {}) } },
    columns.map((c) => {
      const value = c.cell(row);
      return h('td', { class: c.class, dataset: { col: c.key || c.label.toLowerCase() } }, value == null || value === '' ? '—' : value);
    }))));
  const foot = total ? h('tfoot', null, h('tr', { class: 'total', dataset: { testid: testid + '-total' } },
    columns.map((c) => h('td', { class: c.class, dataset: { col: c.key || c.label.toLowerCase() } }, c.total ? c.total(total) : '')))) : null;
  const el = h('table', { class: 'admin-table' }, caption ? h('caption', { class: 'sr-only', text: caption }) : null, head, body, foot);
  return h('div', { class: 'table-scroll' }, rows.length ? el : h('p', { class: 'admin-empty', text: empty }));
}

/** A labelled form control. */
export function field(label, control, { wide = false } = {}) {
  return h('label', { class: 'admin-field' + (wide ? ' wide' : '') }, h('span', { class: 'field-label', text: label }), control);
}

export function input(props) {
  return h('input', { class: 'field-input', ...props });
}

export function select(options, props = {}) {
  const el = h('select', { class: 'field-input', ...props },
    options.map(([value, label]) => h('option', { value, text: label })));
  if (props.value != null) el.value = props.value;
  return el;
}

export function badge(text, kind = '') {
  return h('span', { class: 'badge' + (kind ? ' ' + kind : ''), text });
}

/** A line that says what went wrong, in place of a section's content. */
export function errorBox(err) {
  return h('p', { class: 'form-error', role: 'alert', text: humanError(err) });
}

export function loading() {
  return h('div', { class: 'loading-thread admin-loading', role: 'status' }, h('span', { class: 'spinner' }), 'Loading…');
}

/**
 * Calls fn now and every `ms` while the tab is visible; a slow call is never overlapped by the
 * next one. Returns the function that stops it.
 */
export function every(ms, fn) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch { /* the section shows its own error */ }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/** A button that shows it is busy while its async action runs, and is not clicked twice. */
export function actionButton(label, action, props = {}) {
  const btn = h('button', { type: 'button', class: 'btn small', text: label, ...props });
  btn.addEventListener('click', async () => {
    if (btn.disabled) return;
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    try { await action(); } catch (err) {
      toast(humanError(err), 'error');
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
    }
  });
  return btn;
}
