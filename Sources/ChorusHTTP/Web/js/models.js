// The model picker: one model, or several answering side by side.

import { h, icon, clear } from './dom.js';

const SAVED = 'chorus.models';
export const MAX_MODELS = 4;

export class ModelPicker {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.models = [];
    this.selected = [];
    this.label = h('span', { class: 'picker-label', text: 'Model' });
    this.button = h('button', {
      type: 'button', class: 'picker-btn', 'aria-haspopup': 'true', 'aria-expanded': 'false',
      'aria-label': 'Choose models', dataset: { testid: 'model-picker' },
    }, this.label, icon('down'));
    this.list = h('div', { class: 'picker-list' });
    this.menu = h('div', { class: 'picker-menu', role: 'group', 'aria-label': 'Models', hidden: true },
      h('div', { class: 'picker-title' }, h('strong', { text: 'Models' }), h('small', { text: `Pick up to ${MAX_MODELS} to compare answers side by side` })),
      this.list);
    this.el = h('div', { class: 'picker' }, this.button, this.menu);
    this.button.addEventListener('click', () => this.toggle());
    this.menu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.stopPropagation(); this.toggle(false); this.button.focus(); }
    });
    document.addEventListener('click', (e) => {
      if (!this.menu.hidden && !this.el.contains(e.target)) this.toggle(false);
    });
  }

  toggle(open = this.menu.hidden) {
    this.menu.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (open) this.list.querySelector('input')?.focus();
  }

  setModels(ids) {
    this.models = ids;
    let saved = [];
    try { saved = JSON.parse(localStorage.getItem(SAVED)) || []; } catch { saved = []; }
    this.setSelected(saved, false);
  }

  /** Selects the models still offered; falls back to the first model. */
  setSelected(ids, remember = false) {
    const valid = (ids || []).filter((m) => this.models.includes(m)).slice(0, MAX_MODELS);
    this.selected = valid.length ? valid : this.models.slice(0, 1);
    if (remember) {
      try { localStorage.setItem(SAVED, JSON.stringify(this.selected)); } catch { /* storage off */ }
    }
    this.render();
  }

  render() {
    clear(this.label);
    const names = this.selected;
    if (!this.models.length) this.label.append('No models');
    else if (names.length === 1) this.label.append(names[0]);
    else {
      this.label.append(icon('columns'), `${names.length} models`);
      this.button.title = names.join(' · ');
    }
    if (names.length <= 1) this.button.title = 'Choose models';
    this.el.classList.toggle('multi', names.length > 1);
    clear(this.list);
    for (const id of this.models) {
      const checked = this.selected.includes(id);
      const box = h('input', { type: 'checkbox', value: id, checked, dataset: { testid: 'model-option' } });
      box.disabled = !checked && this.selected.length >= MAX_MODELS;
      box.addEventListener('change', () => {
        let next = this.models.filter((m) => (m === id ? box.checked : this.selected.includes(m)));
        if (!next.length) next = [id];  // at least one model
        this.setSelected(next, true);
        this.list.querySelector(`input[value="${CSS.escape(id)}"]`)?.focus();
        this.onChange?.(this.selected);
      });
      this.list.append(h('label', { class: 'picker-option' + (checked ? ' checked' : '') }, box, h('span', { class: 'picker-name', text: id })));
    }
  }
}
