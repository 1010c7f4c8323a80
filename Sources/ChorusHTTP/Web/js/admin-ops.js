// The console's operations sections: workers, queues (live), dead letters, deployments.

import { h, clear } from './dom.js';
import { get, post, del, humanError } from './api.js';
import { toast, confirmDialog } from './ui.js';
import { table, field, select, badge, errorBox, loading, formatTime, formatAgo, every, actionButton } from './admin-kit.js';

const LIVE_MS = 3000;

/** A live section: a status line ("updated at …") and a body redrawn every few seconds. */
function live(container, intervalMs, load, render) {
  const stamp = h('span', { class: 'live-stamp', dataset: { testid: 'live-stamp' } });
  const body = h('div', { class: 'admin-list' }, loading());
  container.append(h('p', { class: 'live-line' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
    h('span', { text: `Refreshes every ${intervalMs / 1000} s. ` }), stamp), body);
  let failed = false;
  return every(intervalMs, async () => {
    let data;
    try {
      data = await load();
    } catch (err) {
      // Keep the last table; say it is stale.
      if (!failed || !body.firstChild) clear(body).append(errorBox(err));
      failed = true;
      stamp.textContent = 'Could not refresh: ' + humanError(err);
      throw err;
    }
    failed = false;
    clear(body).append(render(data));
    stamp.textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
  });
}

// ---------------------------------------------------------------- workers

export function workersView(container) {
  return live(container, LIVE_MS, () => get('/v1/admin/workers'), (page) => table({
    testid: 'admin-worker', caption: 'Workers', rows: page.data || [], empty: 'No worker has reported in yet.',
    rowProps: (w) => ({ id: w.id }),
    columns: [
      { label: 'Worker', cell: (w) => h('strong', { text: w.id }) },
      { label: 'Host', cell: (w) => `${w.host} (pid ${w.pid})` },
      { label: 'Queues', cell: (w) => w.queues.join(', ') },
      { label: 'Started', cell: (w) => formatTime(w.started_at) },
      { label: 'Heartbeat', cell: (w) => {
        // More than half a minute without a heartbeat: likely gone (leases are shorter).
        const stale = w.last_heartbeat_ms_ago > 30_000;
        return h('span', { class: stale ? 'stale' : 'fresh', text: formatAgo(w.last_heartbeat_ms_ago) + (stale ? ' (stale)' : '') });
      } },
      { label: 'Current tasks', key: 'tasks', cell: (w) => w.current_tasks?.length
        ? h('ul', { class: 'task-list' }, w.current_tasks.map((t) => h('li', { dataset: { testid: 'worker-task', id: t.id } },
          h('code', { text: t.id }), ` ${t.model} · ${t.state.toLowerCase()}` + (t.attempts > 1 ? ` · attempt ${t.attempts}` : ''))))
        : 'idle' },
    ],
  }));
}

// ---------------------------------------------------------------- queues

export function queuesView(container) {
  container.append(h('p', { class: 'admin-note', text: 'Depth: entries in the queue. Pending: delivered to a worker and not yet acknowledged. Lag: entries no worker has read yet. Pending tasks: tasks in the database waiting for a worker.' }));
  return live(container, LIVE_MS, () => get('/v1/admin/queues'), (page) => table({
    testid: 'admin-queue', caption: 'Queues', rows: page.data || [], empty: 'No queues.',
    rowProps: (q) => ({ queue: q.queue }),
    columns: [
      { label: 'Queue', cell: (q) => h('strong', { text: q.queue === '_tasks' ? '_tasks (generic tasks)' : q.queue }) },
      { label: 'Depth', class: 'num', cell: (q) => String(q.depth) },
      { label: 'Pending', class: 'num', cell: (q) => String(q.pending) },
      { label: 'Lag', class: 'num', cell: (q) => String(q.lag) },
      { label: 'Pending tasks', key: 'pending_tasks', class: 'num', cell: (q) => String(q.pending_tasks) },
    ],
  }));
}

// ---------------------------------------------------------------- deployments

export function deploymentsView(container) {
  container.append(h('p', { class: 'admin-note', text: 'As this process sees them: the breaker state, calls in flight, and the calls of the last five minutes.' }));
  const stateKind = { closed: 'ok', half_open: 'warn', open: 'danger', unhealthy: 'danger' };
  return live(container, 5000, () => get('/v1/admin/deployments'), (page) => table({
    testid: 'admin-deployment', caption: 'Deployments', rows: page.data || [], empty: 'No deployments.',
    rowProps: (d) => ({ model: d.model, key: d.key }),
    columns: [
      { label: 'Model', cell: (d) => h('strong', { text: d.model }) },
      { label: 'Deployment', cell: (d) => h('div', { class: 'stack' }, h('span', { text: d.key }), h('small', { text: `${d.upstream_model} at ${d.base_url}` })) },
      { label: 'State', cell: (d) => badge(d.state.replace('_', ' '), stateKind[d.state] || '') },
      { label: 'In flight', key: 'in_flight', class: 'num', cell: (d) => String(d.in_flight) + (d.max_concurrency != null ? ' / ' + d.max_concurrency : '') },
      { label: 'Calls (5 min)', key: 'calls', class: 'num', cell: (d) => String(d.recent_calls) },
      { label: 'Error rate', key: 'error_rate', class: 'num', cell: (d) => (d.recent_error_rate * 100).toFixed(1) + ' %' },
      { label: 'Latency p50', key: 'latency', class: 'num', cell: (d) => d.latency_p50_seconds == null ? '' : (d.latency_p50_seconds * 1000).toFixed(0) + ' ms' },
      { label: 'Failures in a row', key: 'failures', class: 'num', cell: (d) => String(d.consecutive_failures) },
      { label: 'Weight', class: 'num', cell: (d) => String(d.weight) },
    ],
  }));
}

// ---------------------------------------------------------------- dead letters

function pretty(value) {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

export function deadLettersView(container) {
  const list = h('div', { class: 'admin-list' }, loading());
  const detail = h('section', { class: 'dl-detail', hidden: true, 'aria-label': 'Dead letter', tabindex: '-1', dataset: { testid: 'dead-letter-detail' } });
  const purge = actionButton('Purge all…', () => purgeAll(), { class: 'btn small danger-outline', dataset: { testid: 'dead-letters-purge' } });
  const queue = select([['', 'All queues']], { dataset: { testid: 'dead-letters-queue' } });
  const LIMIT = 500;
  let letters = [];
  let watching = 0;

  const reload = async () => {
    const params = new URLSearchParams({ limit: String(LIMIT) });
    if (queue.value) params.set('queue', queue.value);
    try {
      letters = (await get('/v1/admin/dead-letters?' + params)).data || [];
    } catch (err) {
      clear(list).append(errorBox(err));
      return;
    }
    purge.hidden = letters.length === 0;
    purge.textContent = queue.value ? `Purge ${queue.value}…` : 'Purge all…';
    clear(list).append(table({
      testid: 'dead-letter', caption: 'Dead letters', rows: letters, empty: 'No dead letters: every task was processed or is still queued.',
      rowProps: (d) => ({ id: d.id, task: d.task_id || '' }),
      columns: [
        { label: 'Given up', cell: (d) => formatTime(d.created_at) },
        { label: 'Queue', cell: (d) => d.queue },
        { label: 'Task', cell: (d) => d.task_id ? h('code', { text: d.task_id }) : 'none' },
        { label: 'Reason', cell: (d) => d.reason },
        { label: 'Deliveries', class: 'num', cell: (d) => String(d.deliveries) },
        { label: 'Actions', cell: (d) => h('button', { type: 'button', class: 'btn small', text: 'Inspect', 'aria-label': `Inspect the dead letter ${d.id}`,
          dataset: { testid: 'dead-letter-inspect' }, onclick: () => inspect(d.id) }) },
      ],
    }));
  };

  const inspect = async (id) => {
    watching++;
    detail.hidden = false;
    clear(detail).append(loading());
    let letter;
    try {
      letter = await get('/v1/admin/dead-letters/' + encodeURIComponent(id));
    } catch (err) {
      clear(detail).append(errorBox(err));
      return;
    }
    const task = letter.task;
    const taskState = h('span', { dataset: { testid: 'dead-letter-task-state' }, text: task ? task.state : 'no such task' });
    const taskError = h('pre', { class: 'payload', dataset: { testid: 'dead-letter-error' }, text: pretty(task?.error) || 'none' });
    const actions = h('div', { class: 'admin-actions' },
      actionButton('Replay', () => replay(letter, { taskState, taskError, actions }), { class: 'btn small primary', dataset: { testid: 'dead-letter-replay' } }),
      actionButton('Delete', () => removeOne(letter), { class: 'btn small danger-outline', dataset: { testid: 'dead-letter-delete' } }),
      h('button', { type: 'button', class: 'btn small', text: 'Close', onclick: () => { watching++; detail.hidden = true; } }));
    clear(detail).append(
      h('h2', { text: 'Dead letter ' }, h('code', { text: letter.id })),
      h('dl', { class: 'facts' },
        h('dt', { text: 'Queue' }), h('dd', { text: letter.queue }),
        h('dt', { text: 'Queue entry' }), h('dd', { text: letter.entry_id }),
        h('dt', { text: 'Given up' }), h('dd', { text: `${formatTime(letter.created_at)} after ${letter.deliveries} deliver${letter.deliveries === 1 ? 'y' : 'ies'}` }),
        h('dt', { text: 'Reason' }), h('dd', { text: letter.reason, dataset: { testid: 'dead-letter-reason' } }),
        h('dt', { text: 'Task' }), h('dd', null, letter.task_id ? h('code', { text: letter.task_id }) : 'none', task ? ` (${task.model || 'generic'}, ${task.attempts} attempts)` : ''),
        h('dt', { text: 'Task state' }), h('dd', null, taskState)),
      h('h3', { text: 'Payload' }),
      h('pre', { class: 'payload', dataset: { testid: 'dead-letter-payload' }, text: letter.payload }),
      h('h3', { text: 'Task error' }),
      taskError,
      actions);
    detail.focus();
  };

  const replay = async (letter, { taskState, taskError, actions }) => {
    let res;
    try {
      res = await post('/v1/admin/dead-letters/' + encodeURIComponent(letter.id) + '/replay');
    } catch (err) {
      toast(humanError(err), 'error');
      return;
    }
    toast(`Replayed: the task ${res.task.id} is queued again.`);
    actions.querySelectorAll('button').forEach((b) => { if (b.dataset.testid) b.hidden = true; });
    taskState.textContent = res.task.state;
    reload();
    // Follow the task until it ends, so the replay's outcome shows here.
    const mine = ++watching;
    for (let k = 0; k < 300 && mine === watching; k++) {
      await new Promise((r) => setTimeout(r, 1000));
      if (mine !== watching) return;
      try {
        const task = await get('/v1/tasks/' + encodeURIComponent(res.task.id));
        taskState.textContent = task.state + ' (replayed)';
        taskError.textContent = pretty(task.error) || 'none';
        if (['SUCCESS', 'FAILURE', 'CANCELLED'].includes(task.state)) return;
      } catch {
        taskState.textContent = res.task.state + ' (follow it in the owner’s chat)';
        return;
      }
    }
  };

  const removeOne = async (letter) => {
    if (!await confirmDialog({ title: 'Delete this dead letter?', body: 'Its task stays failed and is not run again.', confirm: 'Delete', danger: true })) return;
    try {
      await del('/v1/admin/dead-letters/' + encodeURIComponent(letter.id));
      toast('Dead letter deleted.');
      watching++;
      detail.hidden = true;
    } catch (err) { toast(humanError(err), 'error'); }
    await reload();
  };

  const purgeAll = async () => {
    const which = queue.value;
    const count = letters.length >= LIMIT ? `${LIMIT} or more` : String(letters.length);
    const ok = await confirmDialog({
      title: which ? `Purge the ${count} dead letter(s) of ${which}?` : `Purge all ${count} dead letter(s)?`,
      body: `Every dead letter ${which ? 'of this queue' : 'of every queue'} is deleted; their tasks stay failed and are not run again. This cannot be undone.`,
      confirm: 'Purge', danger: true,
    });
    if (!ok) return;
    try {
      const res = await del('/v1/admin/dead-letters?' + (which ? 'queue=' + encodeURIComponent(which) : 'all=true'));
      toast(`Purged ${res.deleted} dead letter(s).`);
      watching++;
      detail.hidden = true;
    } catch (err) { toast(humanError(err), 'error'); }
    await reload();
  };

  queue.addEventListener('change', reload);
  container.append(
    h('p', { class: 'admin-note', text: 'Queue entries given up on after too many deliveries. Replay queues the task again as new; purge deletes them.' }),
    h('div', { class: 'admin-toolbar' }, field('Queue', queue),
      h('div', { class: 'row-actions' }, actionButton('Refresh', reload, { dataset: { testid: 'dead-letters-refresh' } }), purge)),
    list, detail);
  get('/v1/admin/queues').then((page) => {
    queue.append(...(page.data || []).map((q) => h('option', { value: q.queue, text: q.queue })));
  }, () => { /* the list still works unfiltered */ });
  reload();
  return () => { watching++; };
}
