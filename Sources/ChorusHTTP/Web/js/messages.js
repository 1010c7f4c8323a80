// The conversation: turns of one user message and its answers, one column per model.

import { h, icon, iconButton, copyButton, clear, frameScheduler } from './dom.js';
import { MarkdownView } from './markdown.js';
import { humanError } from './api.js';

// Answers that changed since the last frame; rendered together once per frame.
const dirty = new Set();
let afterFrame = () => {};
const scheduleFrame = frameScheduler(() => {
  for (const view of dirty) view.flush();
  dirty.clear();
  afterFrame();
});

export function onFrame(fn) { afterFrame = fn; }

/** The text of a message's content (a string, or an array of content parts). */
export function contentParts(content) {
  if (typeof content === 'string' || content == null) return { text: content || '', images: [], files: [] };
  const texts = [];
  const images = [];
  const files = [];
  for (const part of content) {
    if (part?.type === 'text') {
      const m = /^Attached file ([^\n]*):\n/.exec(part.text || '');
      if (m && texts.length) files.push({ name: m[1], text: part.text.slice(m[0].length) });
      else texts.push(part.text || '');
    } else if (part?.type === 'image_url') {
      const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
      if (typeof url === 'string' && url.startsWith('data:image/')) images.push(url);
    }
  }
  return { text: texts.join('\n'), images, files };
}

export function showImage(src, alt) {
  const dialog = h('dialog', { class: 'lightbox', 'aria-label': alt || 'Image' },
    h('img', { alt: alt || 'Attached image', src }),
    iconButton('x', 'Close', () => dialog.close(), { class: 'icon-btn lightbox-close' }));
  dialog.addEventListener('close', () => dialog.remove());
  dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); });
  document.body.append(dialog);
  dialog.showModal();
}

function attachmentList(images, files) {
  if (!images.length && !files.length) return null;
  return h('div', { class: 'attachments' },
    images.map((src, k) => h('button', { type: 'button', class: 'thumb', 'aria-label': `Open image ${k + 1}`, onclick: () => showImage(src) },
      h('img', { src, alt: `Attached image ${k + 1}`, loading: 'lazy' }))),
    files.map((f) => h('details', { class: 'file-chip' },
      h('summary', null, icon('file'), h('span', { class: 'file-name', text: f.name })),
      f.text ? h('pre', { class: 'file-text', text: f.text.length > 20000 ? f.text.slice(0, 20000) + '\n…' : f.text }) : null)));
}

export class UserMessage {
  constructor({ text, images = [], files = [] }, actions) {
    this.text = text;
    this.el = h('article', { class: 'msg user', dataset: { testid: 'message', role: 'user' } },
      attachmentList(images, files),
      text ? h('div', { class: 'bubble', text }) : null,
      h('div', { class: 'msg-actions' },
        iconButton('edit', 'Edit and send again', () => actions.edit(text)),
        copyButton(() => text, 'Copy message')));
  }
}

function modelLabel(model) {
  return h('span', { class: 'model-name' }, icon('spark'), h('span', { text: model || 'assistant' }));
}

/** One answer: thinking (folding), the Markdown answer, its state and actions. */
export class AnswerView {
  constructor(model) {
    this.model = model;
    this.stream = null;
    this.unsubscribe = null;
    this.pending = { thinking: '', answer: '' };
    this.thinkingFolded = false;
    this.thinkStarted = 0;
    this.thinking = null;
    this.status = h('span', { class: 'status', role: 'status' });
    this.contentEl = h('div', { class: 'md content' });
    this.md = new MarkdownView(this.contentEl);
    this.errorEl = h('div', { class: 'msg-error', role: 'alert', hidden: true });
    this.pager = h('span', { class: 'pager' });
    this.copyBtn = copyButton(() => this.md.text, 'Copy answer');
    this.actions = h('div', { class: 'msg-actions' }, this.copyBtn);
    this.regenerateBtn = null;
    this.el = h('article', { class: 'msg assistant', dataset: { testid: 'message', role: 'assistant', model: model || '' } },
      h('header', { class: 'msg-head' }, modelLabel(model), this.status, this.pager),
      this.contentEl, this.errorEl, this.actions);
  }

  ensureThinking() {
    if (this.thinking) return this.thinking;
    const label = h('span', { class: 'think-label', text: 'Thinking…' });
    const body = h('div', { class: 'md think-body' });
    const details = h('details', { class: 'thinking', dataset: { testid: 'thinking' } },
      h('summary', null, icon('down', 'chev'), label), body);
    this.thinking = { details, label, md: new MarkdownView(body) };
    this.el.insertBefore(details, this.contentEl);
    return this.thinking;
  }

  setRegenerate(fn) {
    if (this.regenerateBtn) this.regenerateBtn.remove();
    this.regenerateBtn = fn ? iconButton('refresh', 'Regenerate', fn, { dataset: { testid: 'regenerate' } }) : null;
    if (fn) this.actions.append(this.regenerateBtn);
  }

  setStatus(kind, text) {
    this.el.dataset.status = kind;
    clear(this.status);
    this.status.className = 'status ' + kind;
    if (kind === 'streaming') this.status.append(h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', { class: 'sr-only', text: 'Generating' }));
    else if (text) this.status.append(text);
  }

  showError(text) {
    this.errorEl.hidden = !text;
    clear(this.errorEl);
    if (text) this.errorEl.append(icon('alert'), h('span', { text }));
  }

  /** A stored message from the history. */
  fromHistory(msg) {
    if (msg.reasoning_content) {
      const t = this.ensureThinking();
      t.md.setText(msg.reasoning_content);
      t.label.textContent = 'Thoughts';
    }
    this.md.setText(contentParts(msg.content).text);
    const meta = msg.metadata || {};
    if (msg.status === 'partial' || meta.partial) {
      if (meta.reason === 'cancelled') this.setStatus('stopped', 'Stopped');
      else {
        this.setStatus('partial', 'Interrupted');
        if (meta.error) this.showError(humanError(typeof meta.error === 'object' ? meta.error : { message: String(meta.error) }, this.model));
      }
    } else if (msg.status === 'streaming') {
      this.setStatus('streaming');
    } else {
      this.setStatus('complete');
      if (meta.finish_reason === 'length') this.setStatus('partial', 'Cut off (length limit)');
    }
    if (!this.md.text && !msg.reasoning_content && msg.tool_calls) this.md.setText('*(called tools)*');
    this.copyBtn.hidden = !this.md.text;
    return this;
  }

  /** Follows a live task. */
  bind(stream) {
    this.stream = stream;
    this.el.dataset.task = stream.id;
    this.started = performance.now();
    if (stream.thinking) {
      this.ensureThinking().details.open = !stream.answer;
      this.thinkStarted = performance.now();
      this.pending.thinking = stream.thinking;
    }
    this.pending.answer = stream.answer;
    this.setStatus('streaming');
    this.unsubscribe = stream.subscribe((e) => this.onStream(e));
    if (!stream.active) this.onStream({ kind: 'end', state: stream.state });
    else this.mark();
    return this;
  }

  onStream(e) {
    switch (e.kind) {
      case 'thinking':
        if (!this.thinking) { this.ensureThinking(); this.thinking.details.open = true; this.thinkStarted = performance.now(); }
        this.pending.thinking += e.delta;
        break;
      case 'answer':
        this.pending.answer += e.delta;
        break;
      case 'restart':
      case 'replace':
        this.md.reset();
        this.pending.answer = this.stream.answer;
        if (this.thinking) { this.thinking.md.reset(); this.pending.thinking = this.stream.thinking; }
        break;
      case 'connection':
        this.setStatus(e.ok ? 'streaming' : 'reconnecting', e.ok ? '' : 'Reconnecting…');
        return;
      case 'end':
        this.ended = e.state;
        break;
    }
    this.mark();
  }

  mark() {
    dirty.add(this);
    scheduleFrame();
  }

  flush() {
    if (this.pending.thinking) {
      const t = this.ensureThinking();
      t.md.append(this.pending.thinking);
      t.md.render();
      this.pending.thinking = '';
    }
    if (this.pending.answer) {
      this.md.append(this.pending.answer);
      this.pending.answer = '';
      this.md.render();
      if (this.thinking && !this.thinkingFolded) this.foldThinking();
    }
    if (this.ended) this.finish(this.ended);
  }

  foldThinking() {
    this.thinkingFolded = true;
    const t = this.thinking;
    t.details.open = false;
    const seconds = this.thinkStarted ? Math.max(1, Math.round((performance.now() - this.thinkStarted) / 1000)) : 0;
    t.label.textContent = seconds ? `Thought for ${seconds} s` : 'Thoughts';
  }

  finish(state) {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
    this.md.finish();
    if (this.thinking) {
      this.thinking.md.finish();
      if (!this.thinkingFolded) this.foldThinking();
    }
    const s = this.stream;
    if (state === 'stopped') this.setStatus('stopped', 'Stopped');
    else if (state === 'error') {
      this.setStatus(this.md.text ? 'partial' : 'error', this.md.text ? 'Interrupted' : 'Failed');
      this.showError(humanError(s?.error || {}, this.model));
    } else {
      this.setStatus('complete');
      if (s?.result?.finish_reason === 'length') this.setStatus('partial', 'Cut off (length limit)');
    }
    this.ended = null;
    this.copyBtn.hidden = !this.md.text;
    this.onDone?.(state);
  }
}

/** All answers of one model to one user message; shows one at a time (regenerated ones too). */
export class AnswerColumn {
  constructor(model) {
    this.model = model;
    this.variants = [];
    this.index = -1;
    this.el = h('div', { class: 'answer-col', dataset: { model: model || '' } });
  }

  add(view) {
    this.variants.push(view);
    this.show(this.variants.length - 1);
    return view;
  }

  get current() { return this.variants[this.index]; }

  show(index) {
    this.index = index;
    clear(this.el).append(this.current.el);
    for (const view of this.variants) clear(view.pager);
    if (this.variants.length > 1) {
      this.current.pager.append(
        iconButton('left', 'Previous answer', () => this.show(this.index - 1), { disabled: this.index === 0 }),
        h('span', { class: 'pager-text', text: `${this.index + 1} / ${this.variants.length}` }),
        iconButton('right', 'Next answer', () => this.show(this.index + 1), { disabled: this.index === this.variants.length - 1 }));
    }
  }
}

export class Turn {
  constructor(user) {
    this.user = user;
    this.columns = new Map();
    this.answers = h('div', { class: 'answers' });
    this.el = h('section', { class: 'turn' }, user ? user.el : null, this.answers);
  }

  column(model) {
    let col = this.columns.get(model);
    if (!col) {
      col = new AnswerColumn(model);
      this.columns.set(model, col);
      this.answers.append(col.el);
      this.answers.classList.toggle('multi', this.columns.size > 1);
      this.answers.dataset.columns = String(this.columns.size);
    }
    return col;
  }
}
