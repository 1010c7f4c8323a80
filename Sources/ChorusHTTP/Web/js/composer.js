// The composer: the prompt, attached files (uploaded at once, shown as chips), Send and Stop.
// Enter sends, Shift+Enter starts a new line.

import { h, icon, iconButton, clear, formatBytes } from './dom.js';
import { upload, humanError } from './api.js';
import { showImage } from './messages.js';

const DRAFT = 'chorus.draft';
const IMAGE = /^image\/(png|jpeg|gif|webp)$/;

export class Composer {
  constructor({ onSend, onStop }) {
    this.onSend = onSend;
    this.onStop = onStop;
    this.files = [];
    this.busy = false;

    this.input = h('textarea', {
      rows: 1, placeholder: 'Message Chorus…', 'aria-label': 'Message', dataset: { testid: 'prompt' },
      enterkeyhint: 'send', autocomplete: 'off',
    });
    this.input.addEventListener('input', () => { this.autosize(); this.saveDraft(); this.update(); });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        if (!this.busy) this.submit();
      }
    });
    this.input.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) { e.preventDefault(); this.addFiles(files); }
    });

    this.picker = h('input', { type: 'file', multiple: true, class: 'file-input', tabindex: '-1', 'aria-hidden': 'true', dataset: { testid: 'file-input' },
      accept: 'image/png,image/jpeg,image/gif,image/webp,text/*,.md,.txt,.csv,.json,.py,.js,.ts,.swift,.go,.rs,.java,.c,.h,.cpp,.rb,.sh,.yaml,.yml,.toml,.xml,.html,.css,.sql,.log' });
    this.picker.addEventListener('change', () => { this.addFiles([...this.picker.files]); this.picker.value = ''; });

    this.chips = h('div', { class: 'chips', 'aria-label': 'Attached files', role: 'list' });
    this.sendBtn = h('button', { type: 'submit', class: 'send-btn', 'aria-label': 'Send message', title: 'Send (Enter)', dataset: { testid: 'send' } }, icon('send'));
    this.stopBtn = h('button', { type: 'button', class: 'stop-btn', 'aria-label': 'Stop generating', title: 'Stop (Esc)', hidden: true, dataset: { testid: 'stop' }, onclick: () => this.onStop() }, icon('stop'));
    this.attachBtn = iconButton('clip', 'Attach files (images or text)', () => this.picker.click(), { dataset: { testid: 'attach' } });
    this.notice = h('p', { class: 'composer-notice', role: 'alert', hidden: true });

    this.form = h('form', { class: 'composer', 'aria-label': 'Send a message' },
      this.chips,
      this.input,
      h('div', { class: 'composer-bar' }, this.attachBtn, this.picker, h('span', { class: 'hint', text: 'Enter to send · Shift+Enter for a new line' }), this.stopBtn, this.sendBtn));
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    this.el = h('div', { class: 'composer-wrap' }, this.notice, this.form);

    this.restoreDraft();
    this.update();
  }

  get value() { return this.input.value; }

  set value(text) {
    this.input.value = text;
    this.autosize();
    this.saveDraft();
    this.update();
  }

  focus() {
    this.input.focus();
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
  }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = Math.min(this.input.scrollHeight, window.innerHeight * 0.4) + 'px';
  }

  saveDraft() {
    try {
      if (this.input.value) sessionStorage.setItem(DRAFT, this.input.value);
      else sessionStorage.removeItem(DRAFT);
    } catch { /* storage off */ }
  }

  restoreDraft() {
    try {
      const draft = sessionStorage.getItem(DRAFT);
      if (draft) { this.input.value = draft; requestAnimationFrame(() => this.autosize()); }
    } catch { /* storage off */ }
  }

  setBusy(busy) {
    this.busy = busy;
    this.stopBtn.hidden = !busy;
    this.sendBtn.hidden = busy;
    this.update();
  }

  setNotice(text) {
    this.notice.hidden = !text;
    clear(this.notice);
    if (text) this.notice.append(icon('alert'), h('span', { text }));
  }

  /** While a prompt is on its way: no second send. */
  setSending(sending) {
    this.sending = sending;
    this.form.classList.toggle('sending', sending);
    this.update();
  }

  update() {
    const uploading = this.files.some((f) => f.state === 'uploading');
    this.sendBtn.disabled = this.sending || uploading || !this.input.value.trim();
  }

  submit() {
    if (this.busy || this.sendBtn.disabled) return;
    this.setNotice('');
    this.onSend(this.input.value.trim(), this.files.filter((f) => f.state === 'ready'));
  }

  /** After a prompt is accepted. */
  clearAll() {
    this.value = '';
    this.files = [];
    clear(this.chips);
    this.update();
  }

  addFiles(list) {
    for (const file of list) {
      const item = { file, name: file.name || 'pasted image', size: file.size, id: null, state: 'uploading', url: IMAGE.test(file.type) ? URL.createObjectURL(file) : null };
      item.chip = this.chip(item);
      this.files.push(item);
      this.chips.append(item.chip);
      upload(file).then((res) => {
        item.id = res.id;
        item.state = 'ready';
        item.contentType = res.content_type;
      }).catch((err) => {
        item.state = 'error';
        item.error = humanError(err);
        this.setNotice(`${item.name}: ${item.error}`);
      }).finally(() => {
        item.chip.replaceWith(item.chip = this.chip(item));
        this.update();
      });
    }
    this.update();
    this.input.focus();
  }

  chip(item) {
    const remove = iconButton('x', `Remove ${item.name}`, () => {
      this.files = this.files.filter((f) => f !== item);
      item.chip.remove();
      if (item.url) URL.revokeObjectURL(item.url);
      this.update();
    });
    const preview = item.url
      ? h('button', { type: 'button', class: 'chip-thumb', 'aria-label': `Preview ${item.name}`, onclick: () => showImage(item.url, item.name) }, h('img', { src: item.url, alt: item.name }))
      : h('span', { class: 'chip-icon' }, icon('file'));
    return h('div', { class: 'chip ' + item.state, role: 'listitem', dataset: { testid: 'attachment', state: item.state } },
      preview,
      h('span', { class: 'chip-text' },
        h('span', { class: 'chip-name', text: item.name }),
        h('small', { text: item.state === 'uploading' ? 'Uploading…' : item.state === 'error' ? 'Failed' : formatBytes(item.size) })),
      remove);
  }
}
