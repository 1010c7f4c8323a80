// The console's usage: requests, tokens, cache hits, cost and time to first token of every
// user's turns, grouped by any of day, model, user and key, between two UTC days.

import { h, clear } from './dom.js';
import { get } from './api.js';
import { allUsers, field, input, select, errorBox, loading } from './admin-kit.js';
import { usageTable, utcDay } from './usage.js';

const DIMENSIONS = [['day', 'Day'], ['model', 'Model'], ['user', 'User'], ['key', 'API key']];

export function usageView(container, ctx) {
  const byAdmin = ctx.permissions.includes('admin:users');
  const boxes = DIMENSIONS.map(([value]) => h('input', {
    type: 'checkbox', value, checked: value !== 'key', dataset: { testid: 'usage-group-' + value } }));
  const groups = h('fieldset', { class: 'permissions' }, h('legend', { class: 'field-label', text: 'Group by' }),
    boxes.map((box, i) => h('label', { class: 'check' }, box, h('span', { text: DIMENSIONS[i][1] }))));
  const from = input({ type: 'date', value: utcDay(-29), dataset: { testid: 'usage-from' } });
  const to = input({ type: 'date', value: utcDay(), dataset: { testid: 'usage-to' } });
  // Without admin:users the user list is not readable: the filter takes an id instead.
  const user = byAdmin
    ? select([['', 'Everyone']], { dataset: { testid: 'usage-user' } })
    : input({ placeholder: 'user_…', autocomplete: 'off', dataset: { testid: 'usage-user' } });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const note = h('p', { class: 'admin-note', role: 'status' });
  const list = h('div', { class: 'admin-list' }, loading());
  let emails = new Map();
  let generation = 0;

  const form = h('form', { class: 'admin-form filters', 'aria-label': 'Choose the usage shown', novalidate: true },
    groups,
    h('div', { class: 'admin-fields' }, field('From (UTC day)', from), field('To (UTC day)', to), field('User', user)),
    error,
    h('div', { class: 'admin-actions' },
      h('button', { type: 'submit', class: 'btn primary', text: 'Show', dataset: { testid: 'usage-apply' } })));

  const load = async () => {
    error.hidden = true;
    if (from.value && to.value && to.value < from.value) {
      error.textContent = '“To” must not be before “From”.';
      error.hidden = false;
      return;
    }
    const dimensions = boxes.filter((b) => b.checked).map((b) => b.value);
    const params = new URLSearchParams({ group_by: dimensions.join(',') });
    if (from.value) params.set('from', from.value);
    if (to.value) params.set('to', to.value);
    if (user.value.trim()) params.set('user_id', user.value.trim());
    const mine = ++generation;
    clear(list).append(loading());
    let page;
    try {
      page = await get('/v1/admin/usage?' + params);
    } catch (err) {
      if (mine === generation) clear(list).append(errorBox(err));
      return;
    }
    if (mine !== generation) return;
    const rows = page.data || [];
    const span = from.value || to.value ? ` from ${from.value || 'the start'} to ${to.value || 'today'}` : '';
    note.textContent = `${rows.length} group${rows.length === 1 ? '' : 's'}${span}.`;
    clear(list).append(usageTable(rows, dimensions, { testid: 'admin-usage', caption: 'Usage', emails }));
  };

  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch((err) => clear(list).append(errorBox(err))); });
  // A new grouping shows at once; dates and the user wait for "Show" (typing a date would reload each digit).
  for (const box of boxes) box.addEventListener('change', () => form.requestSubmit());

  container.append(form, note, list);
  // Read again on each opening: usage names users made since the console first listed them.
  allUsers(ctx, true).then((users) => {
    emails = new Map(users.map((u) => [u.id, u.email]));
    if (byAdmin) user.append(...users.map((u) => h('option', { value: u.id, text: u.email })));
  }).catch(() => {}).finally(() => form.requestSubmit());
  return () => { generation++; };
}
