// The sidebar: navigation, new chat, the conversations (newest first, paged as you scroll,
// searchable by title), rename and delete, and the account.

import { h, icon, iconButton, clear } from './dom.js';
import { get, patch, del, humanError } from './api.js';
import { toast, confirmDialog } from './ui.js';
import { inflight } from './stream.js';

const PAGE = 30;

function dayGroup(seconds) {
  const date = new Date(seconds * 1000);
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const days = Math.floor((today - date) / 86_400_000) + 1;
  if (date >= today) return 'Today';
  if (days <= 1) return 'Yesterday';
  if (days <= 7) return 'Previous 7 days';
  if (days <= 30) return 'Previous 30 days';
  return date.toLocaleDateString(undefined, { month: 'long', year: 'numeric' });
}

export class Sidebar {
  constructor({ user, auth, console: withConsole = false, onNew, onSignOut, onDeleted, onNavigate }) {
    this.items = [];
    this.next = null;
    this.hasMore = false;
    this.loading = false;
    this.query = '';
    this.filterLocally = false;
    this.activeId = null;
    this.generation = 0;
    this.onDeleted = onDeleted;
    this.onNavigate = onNavigate;

    this.search = h('input', { type: 'search', class: 'search-input', placeholder: 'Search chats', 'aria-label': 'Search conversations by title', dataset: { testid: 'search' } });
    let timer = 0;
    this.search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.query = this.search.value.trim(); this.reload(); }, 250);
    });
    this.list = h('div', { class: 'conv-list', role: 'list', 'aria-label': 'Conversations' });
    this.sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
    this.empty = h('p', { class: 'conv-empty', hidden: true });
    this.scroller = h('div', { class: 'conv-scroll' }, this.list, this.empty, this.sentinel);
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.more();
    }, { root: this.scroller, rootMargin: '200px' }).observe(this.sentinel);

    const name = user?.name || user?.email || 'Local user';
    // Everyone's own usage, in a dialog whose module loads on first use.
    const usage = iconButton('chart', 'Your usage', () => {
      import('./usage.js').then((m) => m.showOwnUsage()).catch((err) => toast(humanError(err), 'error'));
    }, { dataset: { testid: 'open-usage' } });
    const account = auth === 'disabled'
      ? h('div', { class: 'account' }, h('span', { class: 'avatar', text: 'L' }), h('div', { class: 'who' }, h('strong', { text: 'Local' }), h('small', { text: 'Accounts are off' })), usage)
      : h('div', { class: 'account' },
        h('span', { class: 'avatar', 'aria-hidden': 'true', text: (name[0] || '?').toUpperCase() }),
        h('div', { class: 'who' }, h('strong', { text: user?.name || 'Signed in' }), h('small', { text: user?.email || '' })),
        usage,
        iconButton('logout', 'Sign out', onSignOut, { dataset: { testid: 'sign-out' } }));

    this.el = h('aside', { class: 'sidebar', id: 'sidebar', 'aria-label': 'Sidebar' },
      h('div', { class: 'brand' }, icon('logo', 'logo'), h('span', { text: 'Chorus' }),
        iconButton('x', 'Close sidebar', () => this.onNavigate?.(), { class: 'icon-btn only-phone' })),
      this.nav = h('nav', { class: 'nav', 'aria-label': 'Sections' },
        h('a', { class: 'nav-item active', href: '#/', 'aria-current': 'page', dataset: { section: 'chat', testid: 'nav-chat' }, onclick: () => this.onNavigate?.() },
          icon('chat'), h('span', { text: 'Chat' })),
        // Administrators only (the API refuses everyone else anyway).
        withConsole ? h('a', { class: 'nav-item', href: '#/admin', dataset: { section: 'console', testid: 'nav-console' }, onclick: () => this.onNavigate?.() },
          icon('shield'), h('span', { text: 'Console' })) : null),
      h('button', { type: 'button', class: 'new-chat', dataset: { testid: 'new-chat' }, onclick: onNew }, icon('plus'), h('span', { text: 'New chat' })),
      h('div', { class: 'search' }, icon('search'), this.search),
      this.scroller,
      account);
  }

  async reload() {
    this.items = [];
    this.next = null;
    this.hasMore = true;
    this.filterLocally = false;
    this.generation++;
    this.render();
    await this.more();
  }

  async more() {
    if (this.loading || !this.hasMore) return;
    this.loading = true;
    const generation = this.generation;
    this.el.classList.add('loading');
    try {
      // Searching a server that ignores `q` pages through the titles here; stop after a few pages.
      for (let pages = 0; pages < (this.filterLocally ? 10 : 1); pages++) {
        const params = new URLSearchParams({ limit: String(PAGE) });
        if (this.next) params.set('before', this.next);
        if (this.query) params.set('q', this.query);
        const page = await get('/v1/conversations?' + params);
        if (generation !== this.generation) return;
        const data = page.data || [];
        if (this.query && data.some((c) => !this.matches(c))) this.filterLocally = true;
        const known = new Set(this.items.map((c) => c.id));
        this.items.push(...data.filter((c) => !known.has(c.id)));
        this.next = page.next_before ?? null;
        this.hasMore = Boolean(page.has_more && this.next);
        if (!this.hasMore || this.visible().length >= PAGE / 2 * (pages + 1)) break;
      }
      this.render();
    } catch (err) {
      if (generation === this.generation && err.status !== 401) toast(humanError(err), 'error');
      this.hasMore = false;
    } finally {
      this.loading = false;
      this.el.classList.remove('loading');
    }
    // Fill the column when the first page did not.
    if (generation === this.generation && this.hasMore && this.scroller.scrollHeight <= this.scroller.clientHeight + 200) this.more();
  }

  matches(conv) {
    return !this.query || (conv.title || '').toLowerCase().includes(this.query.toLowerCase());
  }

  visible() {
    return this.filterLocally ? this.items.filter((c) => this.matches(c)) : this.items;
  }

  render() {
    // Rows are kept while they show the same thing, so focus and hover survive a refresh.
    const busy = inflight.conversations();
    const rows = new Map();
    const nodes = [];
    let group = null;
    const items = this.visible();
    for (const conv of items) {
      const label = dayGroup(conv.updated_at || conv.created_at || Date.now() / 1000);
      if (label !== group) {
        group = label;
        const cached = this.rows?.get('group:' + label);
        const el = cached || h('div', { class: 'group-label', role: 'presentation', text: label });
        rows.set('group:' + label, el);
        nodes.push(el);
      }
      const key = [conv.title, busy.has(conv.id), conv.id === this.activeId].join('\u0000');
      let entry = this.rows?.get(conv.id);
      if (!entry || entry.key !== key || entry.conv !== conv) entry = { key, conv, el: this.row(conv, busy.has(conv.id)) };
      rows.set(conv.id, entry);
      nodes.push(entry.el);
    }
    this.rows = rows;
    const current = [...this.list.children];
    if (current.length !== nodes.length || current.some((el, k) => el !== nodes[k])) this.list.replaceChildren(...nodes);
    this.empty.hidden = items.length > 0 || this.hasMore;
    this.empty.textContent = this.query ? `No chats titled “${this.query}”.` : 'No chats yet. Say hello!';
  }

  row(conv, busy) {
    const title = conv.title || 'New chat';
    const link = h('a', { class: 'conv-link', href: '#/c/' + encodeURIComponent(conv.id), title, onclick: () => this.onNavigate?.() },
      h('span', { class: 'conv-title', text: title }), busy ? h('span', { class: 'busy-dot', title: 'Answering…' }) : null);
    const row = h('div', { class: 'conv' + (conv.id === this.activeId ? ' active' : ''), role: 'listitem', dataset: { testid: 'conversation', id: conv.id } },
      link,
      h('div', { class: 'conv-actions' },
        iconButton('edit', 'Rename conversation', () => this.rename(conv, row, link)),
        iconButton('trash', 'Delete conversation', () => this.remove(conv))));
    if (conv.id === this.activeId) link.setAttribute('aria-current', 'page');
    return row;
  }

  rename(conv, row, link) {
    const input = h('input', { class: 'rename-input', value: conv.title || '', 'aria-label': 'Conversation title', maxlength: 200 });
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title && title !== conv.title) {
        try {
          const updated = await patch('/v1/conversations/' + encodeURIComponent(conv.id), { title });
          conv.title = updated?.title || title;
        } catch (err) {
          toast(humanError(err), 'error');
        }
      }
      this.rows?.delete(conv.id);
      this.render();
      this.list.querySelector(`[data-id="${CSS.escape(conv.id)}"] .conv-link`)?.focus();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
    link.replaceWith(input);
    row.classList.add('editing');
    input.focus();
    input.select();
  }

  async remove(conv) {
    const ok = await confirmDialog({
      title: 'Delete this chat?',
      body: `“${(conv.title || 'New chat').slice(0, 120)}” and all its messages will be deleted. This cannot be undone.`,
      confirm: 'Delete', danger: true,
    });
    if (!ok) return;
    try {
      await del('/v1/conversations/' + encodeURIComponent(conv.id));
      this.items = this.items.filter((c) => c.id !== conv.id);
      this.render();
      for (const [taskId] of inflight.forConversation(conv.id)) inflight.remove(taskId);
      toast('Chat deleted.');
      this.onDeleted?.(conv.id);
    } catch (err) {
      toast(humanError(err), 'error');
    }
  }

  /** Marks `chat` or `console` as the section shown. */
  setSection(name) {
    for (const link of this.nav.querySelectorAll('.nav-item')) {
      const active = link.dataset.section === name;
      link.classList.toggle('active', active);
      if (active) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    }
  }

  setActive(id) {
    this.activeId = id;
    this.render();
  }

  /** A conversation just used: first in the list. */
  touch(conv) {
    const existing = this.items.find((c) => c.id === conv.id);
    const now = Math.floor(Date.now() / 1000);
    const item = { ...(existing || {}), ...conv, updated_at: now };  // a new object: its row is redrawn
    if (!item.created_at) item.created_at = now;
    this.items = [item, ...this.items.filter((c) => c.id !== conv.id)];
    this.render();
  }
}
