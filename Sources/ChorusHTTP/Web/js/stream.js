// Following a task's answer: EventSource on /v1/tasks/{id}/events, which replays from the start
// and resumes after a dropped connection with Last-Event-ID. Tasks still running are kept in
// localStorage, so a reload picks them up again.

import { get } from './api.js';

const KEY = 'chorus.inflight';

function load() {
  try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch { return {}; }
}
function save(all) {
  try { localStorage.setItem(KEY, JSON.stringify(all)); } catch { /* private mode: no resume */ }
}

export const inflight = {
  add(taskId, info) {
    const all = load();
    all[taskId] = { ...info, at: Date.now() };
    save(all);
  },
  remove(taskId) {
    const all = load();
    if (taskId in all) { delete all[taskId]; save(all); }
  },
  /** [[taskId, {conversationId, model, batchId, at}], …] for one conversation. */
  forConversation(conversationId) {
    return Object.entries(load()).filter(([, info]) => info.conversationId === conversationId);
  },
  conversations() {
    return new Set(Object.values(load()).map((info) => info.conversationId));
  },
  /** Forgets tasks that ended while no page followed them. */
  async prune() {
    for (const [taskId, info] of Object.entries(load())) {
      if (Date.now() - info.at < 60_000) continue;
      try {
        const task = await get(`/v1/tasks/${encodeURIComponent(taskId)}`);
        if (['SUCCESS', 'FAILURE', 'CANCELLED'].includes(task.state)) inflight.remove(taskId);
      } catch (err) {
        if (err.status === 404 || Date.now() - info.at > 86_400_000) inflight.remove(taskId);
      }
    }
  },
};

const EVENT_TYPES = ['thinking', 'answer', 'tool_calls', 'progress', 'finish', 'error'];

/** One task's answer as it arrives. Listeners get {kind: 'thinking'|'answer'|'restart'|'tools'|'end'|'connection'}. */
export class TaskStream {
  constructor(taskId, info) {
    this.id = taskId;
    this.model = info.model;
    this.conversationId = info.conversationId;
    this.answer = '';
    this.thinking = '';
    this.toolCalls = [];
    this.state = 'waiting';   // waiting | streaming | done | stopped | error
    this.error = null;
    this.result = null;
    this.lastSeq = 0;
    this.reconnecting = false;
    this.listeners = new Set();
    this.source = null;
    this.retryTimer = null;
  }

  get active() { return this.state === 'waiting' || this.state === 'streaming'; }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(event) {
    for (const fn of this.listeners) fn(event);
  }

  start() {
    if (this.source || !this.active) return this;
    const source = new EventSource(`/v1/tasks/${encodeURIComponent(this.id)}/events`);
    this.source = source;
    const handler = (e) => this.onEvent(e);
    for (const type of EVENT_TYPES) source.addEventListener(type, handler);
    source.onmessage = handler;
    source.onopen = () => {
      if (this.reconnecting) { this.reconnecting = false; this.emit({ kind: 'connection', ok: true }); }
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the task is gone, or the session ended): ask the task itself.
        this.source = null;
        this.checkState();
      } else if (!this.reconnecting) {
        // The browser reconnects by itself, sending Last-Event-ID.
        this.reconnecting = true;
        this.emit({ kind: 'connection', ok: false });
      }
    };
    return this;
  }

  close() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
  }

  onEvent(e) {
    let d;
    try { d = JSON.parse(e.data); } catch { return; }
    const seq = Number(d.seq ?? e.lastEventId) || 0;
    if (seq && seq <= this.lastSeq) return;  // already seen (a replay after a reconnect)
    if (seq) this.lastSeq = seq;
    if (this.reconnecting) { this.reconnecting = false; this.emit({ kind: 'connection', ok: true }); }
    switch (d.type || e.type) {
      case 'thinking':
        this.state = 'streaming';
        this.thinking += d.token || '';
        this.emit({ kind: 'thinking', delta: d.token || '' });
        break;
      case 'answer':
        this.state = 'streaming';
        this.answer += d.token || '';
        this.emit({ kind: 'answer', delta: d.token || '' });
        break;
      case 'tool_calls':
        this.toolCalls.push(d.data ?? d.token);
        this.emit({ kind: 'tools' });
        break;
      case 'progress':
        if (d.data?.restarted) {
          this.answer = '';
          this.thinking = '';
          this.emit({ kind: 'restart' });
        }
        break;
      case 'finish':
        this.end('done', d.data || {}, null);
        break;
      case 'error': {
        const error = d.data || {};
        this.end(error.type === 'cancelled' || error.code === 'cancelled' ? 'stopped' : 'error', null, error);
        break;
      }
    }
  }

  end(state, result, error) {
    this.close();
    this.state = state;
    this.result = result;
    this.error = error;
    if (result && typeof result.content === 'string' && result.content !== this.answer) {
      this.answer = result.content;
      this.emit({ kind: 'replace' });
    }
    if (result && typeof result.reasoning_content === 'string' && result.reasoning_content !== this.thinking) {
      this.thinking = result.reasoning_content;
      this.emit({ kind: 'replace' });
    }
    inflight.remove(this.id);
    this.emit({ kind: 'end', state });
  }

  async checkState() {
    try {
      const task = await get(`/v1/tasks/${encodeURIComponent(this.id)}`);
      if (task.state === 'SUCCESS') this.end('done', task.result || {}, null);
      else if (task.state === 'CANCELLED') this.end('stopped', null, { type: 'cancelled', code: 'cancelled' });
      else if (task.state === 'FAILURE') this.end('error', null, task.error || { message: 'The task failed.' });
      else this.retryLater();
    } catch (err) {
      if (err.status === 404) this.end('error', null, { message: 'This answer is no longer available.', code: 'not_found' });
      else if (err.status !== 401) this.retryLater();
    }
  }

  retryLater() {
    if (!this.reconnecting) { this.reconnecting = true; this.emit({ kind: 'connection', ok: false }); }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), 2000);
  }
}

// Streams being followed, by task id. Only the open conversation's streams stay connected
// (browsers allow few connections per server).
const streams = new Map();

export function follow(taskId, info) {
  let stream = streams.get(taskId);
  if (!stream) {
    stream = new TaskStream(taskId, info);
    streams.set(taskId, stream);
    stream.subscribe((e) => { if (e.kind === 'end') streams.delete(taskId); });
  }
  return stream.start();
}

export function activeStreams(conversationId) {
  return [...streams.values()].filter((s) => s.conversationId === conversationId && s.active);
}

/** Disconnects every stream but those of `conversationId` (they replay when it is opened again). */
export function detachOthers(conversationId) {
  for (const [id, stream] of streams) {
    if (stream.conversationId !== conversationId) {
      stream.close();
      stream.listeners.clear();
      streams.delete(id);
    }
  }
}

export function closeAll() {
  for (const stream of streams.values()) { stream.close(); stream.listeners.clear(); }
  streams.clear();
}
