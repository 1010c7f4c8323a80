// The admin console: one section per kind of thing an operator steers (users, keys, roles,
// invites, workers, queues, dead letters, deployments, usage, the audit log). Loaded only when an
// administrator opens it, so the chat page stays light. Each section shows the sections its
// permission allows; the API refuses the rest anyway. Text from the server is always set with
// textContent (dom.js), never parsed as HTML.

import { h, icon, iconButton, clear } from './dom.js';
import { usersView, keysView, rolesView, invitesView } from './admin-accounts.js';
import { workersView, queuesView, deadLettersView, deploymentsView } from './admin-ops.js';
import { auditView } from './admin-audit.js';
import { usageView } from './admin-usage.js';

const VIEWS = [
  { name: 'users', label: 'Users', permission: 'admin:users', render: usersView },
  { name: 'keys', label: 'API keys', permission: 'admin:users', render: keysView },
  { name: 'roles', label: 'Roles', permission: 'admin:users', render: rolesView },
  { name: 'invites', label: 'Invites', permission: 'admin:users', render: invitesView },
  { name: 'workers', label: 'Workers', permission: 'admin:ops', render: workersView },
  { name: 'queues', label: 'Queues', permission: 'admin:ops', render: queuesView },
  { name: 'dead-letters', label: 'Dead letters', permission: 'admin:ops', render: deadLettersView },
  { name: 'deployments', label: 'Deployments', permission: 'admin:ops', render: deploymentsView },
  { name: 'usage', label: 'Usage', permission: 'admin:ops', render: usageView },
  { name: 'audit', label: 'Audit log', permission: 'admin:audit', render: auditView },
];

export class AdminConsole {
  constructor({ permissions, user, onMenu }) {
    this.views = VIEWS.filter((v) => permissions.includes(v.permission));
    this.ctx = { permissions, user, usersPromise: null };
    this.cleanup = null;
    this.current = null;
    this.links = new Map();
    for (const view of this.views) {
      // The open section's tab loads it again (the address does not change, so no hashchange).
      this.links.set(view.name, h('a', { class: 'admin-tab', href: '#/admin/' + view.name, dataset: { testid: 'admin-tab-' + view.name },
        onclick: (e) => { if (this.current === view.name) { e.preventDefault(); this.show(view.name); } } }, view.label));
    }
    this.title = h('h1', { class: 'admin-title', id: 'admin-title', tabindex: '-1' });
    this.body = h('div', { class: 'admin-body' });
    this.el = h('section', { class: 'admin', 'aria-labelledby': 'admin-title', dataset: { testid: 'admin-console' } },
      h('header', { class: 'admin-top' },
        iconButton('menu', 'Open sidebar', onMenu, { class: 'icon-btn only-phone', 'aria-controls': 'sidebar' }),
        icon('shield', 'admin-logo'), h('span', { class: 'admin-brand', text: 'Console' })),
      this.tabs = h('nav', { class: 'admin-tabs', 'aria-label': 'Console sections' }, [...this.links.values()]),
      h('div', { class: 'admin-scroll' }, h('div', { class: 'admin-inner' }, this.title, this.body)));
  }

  /** Shows a section by name (the first one allowed when the name is unknown). */
  show(name) {
    const [base, arg] = (name || '').split('/');
    const view = this.views.find((v) => v.name === base) || this.views[0];
    if (!view) return;
    this.stop();
    this.current = view.name;
    for (const [key, link] of this.links) {
      const active = key === view.name;
      link.classList.toggle('active', active);
      if (active) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    }
    this.title.textContent = view.label;
    document.title = view.label + ' · Console · Chorus';
    clear(this.body);
    const container = h('div', { class: 'admin-view', dataset: { testid: 'admin-view-' + view.name } });
    this.body.append(container);
    this.cleanup = view.render(container, this.ctx, arg ? decodeURIComponent(arg) : null) || null;
    // The tab in view in the bar (scrollIntoView would scroll the whole layout on a phone).
    const tab = this.links.get(view.name).getBoundingClientRect();
    const bar = this.tabs.getBoundingClientRect();
    if (tab.left < bar.left || tab.right > bar.right) this.tabs.scrollLeft += tab.left - bar.left - 16;
  }

  stop() {
    if (typeof this.cleanup === 'function') this.cleanup();
    this.cleanup = null;
  }

  destroy() { this.stop(); }
}
