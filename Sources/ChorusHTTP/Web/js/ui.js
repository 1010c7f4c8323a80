// Toasts and a confirmation dialog.

import { h, icon, iconButton } from './dom.js';

let toasts = null;

export function toast(message, kind = 'info', ms = 6000) {
  if (!toasts || !toasts.isConnected) {
    toasts = h('div', { class: 'toasts', role: 'region', 'aria-label': 'Notifications' });
    document.body.append(toasts);
  }
  const item = h('div', { class: 'toast ' + kind, role: kind === 'error' ? 'alert' : 'status', dataset: { testid: 'toast' } },
    icon(kind === 'error' ? 'alert' : 'check'), h('span', { text: message }),
    iconButton('x', 'Dismiss', () => item.remove()));
  toasts.append(item);
  if (ms) setTimeout(() => item.remove(), ms);
  return item;
}

/** Resolves true when the person confirms. */
export function confirmDialog({ title, body, confirm = 'OK', danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = h('button', { type: 'button', class: danger ? 'btn danger' : 'btn primary', text: confirm, dataset: { testid: 'confirm' },
      onclick: () => { answer = true; dialog.close(); } });
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-title' },
      h('h2', { id: 'dialog-title', text: title }),
      body ? h('p', { text: body }) : null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => dialog.close() }), ok));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    ok.focus();
  });
}
