// Usage tables (requests, tokens, cost by day, model, user or key), shared by the console's
// Usage section and the chat page's "Your usage" dialog. The dialog is loaded on first use, so
// the chat page stays light. Server text is set as text (dom.js), never parsed as HTML.

import { h, iconButton, clear } from './dom.js';
import { get } from './api.js';
import { table, errorBox, loading } from './admin-kit.js';

/** Dollars: cents from $1 up, two significant digits below (a turn often costs a fraction of a cent). */
export function formatCost(value) {
  if (value == null || !Number.isFinite(value)) return '—';
  const size = Math.abs(value);
  if (size >= 1 || size === 0) {
    return '$' + value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  const digits = Math.min(8, Math.max(2, 1 - Math.floor(Math.log10(size))));
  // Trailing zeros past the cents say nothing.
  return '$' + value.toFixed(digits).replace(/(\.\d\d\d*?)0+$/, '$1');
}

export function formatCount(value) {
  return value == null ? '—' : Number(value).toLocaleString();
}

/** The UTC day (`yyyy-MM-dd`) `offset` days from today, as the API counts days. */
export function utcDay(offset = 0) {
  return new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
}

const SUMMED = ['requests', 'prompt_tokens', 'completion_tokens', 'reasoning_tokens', 'total_tokens', 'cache_hits'];

/** One row of sums over `rows`: cost null when no row has one, time to first token weighted by requests. */
export function totals(rows) {
  const sum = Object.fromEntries(SUMMED.map((k) => [k, rows.reduce((n, r) => n + (r[k] || 0), 0)]));
  const priced = rows.filter((r) => r.cost != null);
  sum.cost = priced.length ? priced.reduce((n, r) => n + r.cost, 0) : null;
  const timed = rows.filter((r) => r.avg_time_to_first_token_ms != null && r.requests > 0);
  const weight = timed.reduce((n, r) => n + r.requests, 0);
  sum.avg_time_to_first_token_ms = weight ? timed.reduce((n, r) => n + r.avg_time_to_first_token_ms * r.requests, 0) / weight : null;
  return sum;
}

/**
 * The table of `rows` grouped by `dimensions` (of day, model, user, key). `emails` maps user ids
 * to emails where known; `compact` leaves out the less used columns (the chat page's dialog).
 */
export function usageTable(rows, dimensions, { testid, caption, emails = new Map(), compact = false, empty = 'No usage in these days.' }) {
  const known = {
    day: { label: 'Day (UTC)', key: 'day', cell: (r) => h('span', { class: 'nowrap', text: r.day }) },
    model: { label: 'Model', key: 'model', cell: (r) => r.model },
    user: { label: 'User', key: 'user', cell: (r) => r.user_id ? (emails.get(r.user_id) || r.user_id) : '' },
    // Turns made from the chat page or with a session token carry no key.
    key: { label: 'API key', key: 'key', cell: (r) => r.api_key_id ? h('code', { class: 'nowrap', text: r.api_key_id }) : 'session' },
  };
  const columns = dimensions.filter((d) => known[d]).map((d) => ({ ...known[d], total: () => '' }));
  const num = (label, key, format = formatCount) => ({ label, key, class: 'num', cell: (r) => format(r[key]), total: (t) => format(t[key]) });
  // The cost next to the requests: the columns to the right scroll out of sight first.
  columns.push(num('Requests', 'requests'), num('Cost', 'cost', formatCost));
  if (compact) columns.push(num('Tokens', 'total_tokens'));
  else {
    columns.push(num('Tokens', 'total_tokens'), num('Prompt', 'prompt_tokens'), num('Completion', 'completion_tokens'),
      num('Reasoning', 'reasoning_tokens'), num('Cache hits', 'cache_hits'),
      num('First token (avg)', 'avg_time_to_first_token_ms', (ms) => ms == null ? '—' : Math.round(ms).toLocaleString() + ' ms'));
  }
  // The footer's label sits in the first grouping column (none: the sums speak for themselves).
  if (columns[0].class !== 'num') columns[0].total = () => 'Total';
  return table({
    columns, rows, testid, caption, empty, total: totals(rows),
    rowProps: (r) => ({ day: r.day ?? '', model: r.model ?? '', user: r.user_id ?? '', key: r.api_key_id ?? '' }),
  });
}

/** The signed-in person's own usage of the last 30 days, by day and model, in a dialog. */
export function showOwnUsage() {
  const from = utcDay(-29);
  const body = h('div', { class: 'usage-body' }, loading());
  const dialog = h('dialog', { class: 'dialog usage-dialog', 'aria-labelledby': 'usage-title', dataset: { testid: 'usage-dialog' } },
    h('div', { class: 'usage-head' },
      h('h2', { id: 'usage-title', text: 'Your usage' }),
      iconButton('x', 'Close', () => dialog.close(), { dataset: { testid: 'usage-close' } })),
    h('p', { text: `Since ${from}, by UTC day and model.` }),
    body);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  get('/v1/usage?' + new URLSearchParams({ group_by: 'day,model', from }))
    .then((page) => {
      clear(body).append(usageTable(page.data || [], ['day', 'model'], {
        testid: 'my-usage', caption: 'Your usage by day and model', compact: true, empty: 'No requests in the last 30 days.' }));
    })
    .catch((err) => clear(body).append(errorBox(err)));
  return dialog;
}
