// Chorus's chat page: the entry module. It signs in (or not, with accounts off), then runs the
// chat: sidebar, conversation, composer, and answers that stream from tasks.

import { h, icon, iconButton, clear } from './dom.js';
import { me as fetchMe, get, post, setSession, authMode, onSessionExpired, humanError } from './api.js';
import { showAuth } from './auth.js';
import { Sidebar } from './sidebar.js';
import { Composer } from './composer.js';
import { ModelPicker } from './models.js';
import { Turn, UserMessage, AnswerView, contentParts, onFrame } from './messages.js';
import { inflight, follow, activeStreams, detachOthers, closeAll } from './stream.js';
import { toast } from './ui.js';

const root = document.getElementById('app');
let chat = null;
let signingIn = false;

// Who sees the admin console: anyone holding one of the permissions its sections need.
const CONSOLE_PERMISSIONS = ['admin:users', 'admin:ops', 'admin:audit'];

class Chat {
  constructor(user, models, permissions = []) {
    this.user = user;
    this.permissions = permissions;
    this.consoleAllowed = permissions.some((p) => CONSOLE_PERMISSIONS.includes(p));
    this.console = null;
    this.consoleGeneration = 0;
    this.chatTitle = 'Chorus';
    this.conversationId = null;
    this.loadedId = undefined;
    this.generation = 0;
    this.turns = [];
    this.stick = true;

    this.picker = new ModelPicker({});
    this.picker.setModels(models);
    this.composer = new Composer({ onSend: (text, files) => this.send(text, files), onStop: () => this.stop() });
    this.sidebar = new Sidebar({
      user, auth: authMode(), console: this.consoleAllowed,
      onNew: () => this.goNew(),
      onSignOut: () => signOut(),
      onDeleted: (id) => { if (id === this.conversationId) this.goNew(); },
      onNavigate: () => this.toggleSidebar(false),
    });

    this.inner = h('div', { class: 'thread-inner' });
    this.thread = h('div', { class: 'thread', tabindex: '-1', 'aria-label': 'Messages', role: 'region' }, this.inner);
    this.thread.addEventListener('scroll', () => {
      this.stick = this.thread.scrollHeight - this.thread.scrollTop - this.thread.clientHeight < 80;
      this.jump.hidden = this.stick;
    }, { passive: true });
    this.jump = h('button', { type: 'button', class: 'jump', hidden: true, 'aria-label': 'Scroll to the latest message', onclick: () => this.scrollToBottom(true) }, icon('arrowDown'));
    onFrame(() => { if (this.stick) this.scrollToBottom(); });

    const topbar = h('header', { class: 'topbar' },
      iconButton('menu', 'Open sidebar', () => this.toggleSidebar(true), { class: 'icon-btn only-phone', 'aria-controls': 'sidebar' }),
      this.picker.el,
      h('span', { class: 'spacer' }),
      iconButton('plus', 'New chat', () => this.goNew(), { class: 'icon-btn only-phone' }));
    this.main = h('main', { class: 'main' }, topbar, this.thread, this.jump, this.composer.el);
    this.scrim = h('div', { class: 'scrim', 'aria-hidden': 'true', onclick: () => this.toggleSidebar(false) });
    this.el = h('div', { class: 'app' }, this.sidebar.el, this.scrim, this.main);

    this.main.addEventListener('dragover', (e) => {
      if ([...(e.dataTransfer?.types || [])].includes('Files')) { e.preventDefault(); this.main.classList.add('dropping'); }
    });
    this.main.addEventListener('dragleave', (e) => { if (!this.main.contains(e.relatedTarget)) this.main.classList.remove('dropping'); });
    this.main.addEventListener('drop', (e) => {
      this.main.classList.remove('dropping');
      if (e.dataTransfer?.files?.length) { e.preventDefault(); this.composer.addFiles([...e.dataTransfer.files]); }
    });

    this.onKey = (e) => {
      if (e.key !== 'Escape' || e.defaultPrevented || document.querySelector('dialog[open]')) return;
      if (!this.picker.menu.hidden) { this.picker.toggle(false); return; }
      if (this.el.classList.contains('sidebar-open')) { this.toggleSidebar(false); return; }
      if (this.main.hidden) return;  // the console is shown: Esc does not stop hidden answers
      if (activeStreams(this.conversationId).length) { e.preventDefault(); this.stop(); }
    };
    this.onHash = () => this.route();
    document.addEventListener('keydown', this.onKey);
    window.addEventListener('hashchange', this.onHash);

    clear(root).append(this.el);
    this.sidebar.reload();
    this.route();
    this.composer.focus();
    inflight.prune();
  }

  destroy() {
    document.removeEventListener('keydown', this.onKey);
    window.removeEventListener('hashchange', this.onHash);
    this.generation++;
    this.console?.destroy();
    closeAll();
  }

  toggleSidebar(open) {
    this.el.classList.toggle('sidebar-open', open);
    if (open) this.sidebar.search.focus();
  }

  route() {
    const admin = /^#\/admin(?:\/(.*))?$/.exec(location.hash);
    if (admin && this.consoleAllowed) { this.openConsole(admin[1] || ''); return; }
    this.closeConsole();
    const m = /^#\/c\/(.+)$/.exec(location.hash);
    const id = m ? decodeURIComponent(m[1]) : null;
    if (id === this.loadedId) return;
    if (id) this.open(id);
    else this.newChat();
  }

  /** The admin console in place of the conversation (loaded on first use). */
  async openConsole(section) {
    const generation = ++this.consoleGeneration;
    if (!this.console) {
      let AdminConsole;
      try {
        ({ AdminConsole } = await import('./admin.js'));
      } catch (err) {
        toast(humanError(err), 'error');
        return;
      }
      if (generation !== this.consoleGeneration || this.console) return;
      this.console = new AdminConsole({ permissions: this.permissions, user: this.user, onMenu: () => this.toggleSidebar(true) });
      this.el.append(this.console.el);
    }
    if (generation !== this.consoleGeneration) return;
    if (!this.main.hidden) this.chatTitle = document.title;
    this.main.hidden = true;
    this.console.el.hidden = false;
    this.sidebar.setSection('console');
    this.toggleSidebar(false);
    this.console.show(section);
  }

  closeConsole() {
    this.consoleGeneration++;
    if (!this.console || this.console.el.hidden) return;
    this.console.stop();
    this.console.el.hidden = true;
    this.main.hidden = false;
    this.sidebar.setSection('chat');
    document.title = this.chatTitle;
  }

  goNew() {
    this.toggleSidebar(false);
    if (location.hash && location.hash !== '#/') location.hash = '#/';
    else this.newChat();
    this.composer.focus();
  }

  newChat() {
    this.generation++;
    this.conversationId = null;
    this.loadedId = null;
    this.turns = [];
    detachOthers(null);
    this.sidebar.setActive(null);
    this.picker.setModels(this.picker.models);
    document.title = 'Chorus';
    const models = this.picker.models;
    clear(this.inner).append(h('div', { class: 'welcome' },
      icon('logo', 'logo'),
      h('h1', { text: 'What can I help with?' }),
      h('p', { text: models.length
        ? 'Pick one model, or several to compare their answers side by side. Attach images or text files with the paper clip.'
        : 'No model is configured on this server yet.' })));
    this.refreshControls();
  }

  async open(id) {
    const generation = ++this.generation;
    this.conversationId = id;
    this.loadedId = id;
    this.turns = [];
    detachOthers(id);
    this.sidebar.setActive(id);
    this.composer.setNotice('');
    clear(this.inner).append(h('div', { class: 'loading-thread', role: 'status' }, h('span', { class: 'spinner' }), 'Loading…'));
    let history;
    try {
      history = await get(`/v1/conversations/${encodeURIComponent(id)}/history`);
    } catch (err) {
      if (generation !== this.generation) return;
      if (err.status === 404) {
        toast('That chat does not exist any more.', 'error');
        location.hash = '#/';
        return;
      }
      clear(this.inner).append(h('div', { class: 'thread-error', role: 'alert' },
        h('p', { text: humanError(err) }),
        h('button', { type: 'button', class: 'btn', text: 'Try again', onclick: () => { this.loadedId = undefined; this.route(); } })));
      return;
    }
    if (generation !== this.generation) return;
    this.renderHistory(history.data || []);
    const conv = this.sidebar.items.find((c) => c.id === id);
    document.title = (conv?.title ? conv.title.slice(0, 60) + ' · ' : '') + 'Chorus';
  }

  renderHistory(messages) {
    clear(this.inner);
    const tracked = new Map(inflight.forConversation(this.conversationId));
    let turn = null;
    for (const msg of messages) {
      if (msg.role === 'user') {
        turn = this.addTurn(this.userMessage(contentParts(msg.content)));
        continue;
      }
      if (msg.role !== 'assistant') continue;
      if (!turn) turn = this.addTurn(null);
      const model = msg.model || 'assistant';
      const taskId = typeof msg.id === 'string' && msg.id.startsWith('msg_task_') ? msg.id.slice(4) : null;
      // An answer still being written: render it from its task's events, not from the checkpoint.
      if (taskId && msg.status === 'streaming') {
        turn.column(model).add(this.followView(taskId, model));
        tracked.delete(taskId);
        continue;
      }
      if (taskId && tracked.has(taskId)) {
        inflight.remove(taskId);
        tracked.delete(taskId);
      }
      turn.column(model).add(new AnswerView(model).fromHistory(msg));
    }
    // Tasks started here whose answer is not stored yet.
    for (const [taskId, info] of tracked) {
      if (!turn) turn = this.addTurn(null);
      turn.column(info.model).add(this.followView(taskId, info.model));
    }
    const last = this.turns[this.turns.length - 1];
    if (last && last.columns.size) this.picker.setSelected([...last.columns.keys()]);
    this.refreshControls();
    this.stick = true;
    this.scrollToBottom(true);
  }

  userMessage(parts) {
    return new UserMessage(parts, {
      edit: (text) => {
        this.composer.value = text;
        this.composer.focus();
        this.composer.setNotice('');
        toast('Edit your message, then send it again.');
      },
    });
  }

  addTurn(user) {
    const turn = new Turn(user);
    this.turns.push(turn);
    this.inner.append(turn.el);
    return turn;
  }

  followView(taskId, model) {
    const stream = follow(taskId, { model, conversationId: this.conversationId });
    const view = new AnswerView(model).bind(stream);
    view.onDone = () => { this.refreshControls(); this.sidebar.render(); };
    return view;
  }

  /** Stop while answers stream; regenerate on the last answers once they are done. */
  refreshControls() {
    const busy = this.conversationId ? activeStreams(this.conversationId).length > 0 : false;
    this.composer.setBusy(busy);
    this.turns.forEach((turn, k) => {
      const last = k === this.turns.length - 1;
      for (const [model, col] of turn.columns) {
        for (const view of col.variants) {
          const streaming = view.stream && view.stream.active;
          view.setRegenerate(last && !busy && !streaming && view === col.current && this.picker.models.includes(model)
            ? () => this.regenerate(model) : null);
        }
      }
    });
  }

  async send(text, files) {
    const models = this.picker.selected;
    if (!models.length) { this.composer.setNotice('No model is available on this server.'); return; }
    const body = { prompt: text, models };
    if (this.conversationId) body.conversation_id = this.conversationId;
    if (files.length) body.files = files.map((f) => f.id);
    const generation = this.generation;
    this.composer.setSending(true);
    let res;
    try {
      res = await post('/v1/batches', body);
    } catch (err) {
      if (err.status !== 401) this.composer.setNotice(humanError(err, models.length === 1 ? models[0] : null));
      return;
    } finally {
      this.composer.setSending(false);
    }
    const tasks = res.tasks || [];
    const modelOf = (k) => tasks[k]?.model || models[k];
    if (generation !== this.generation) {
      // Another chat was opened meanwhile: the answers resume when this one is opened again.
      res.task_ids.forEach((taskId, k) => inflight.add(taskId, { conversationId: res.conversation_id, model: modelOf(k), batchId: res.batch_id }));
      this.composer.clearAll();
      this.sidebar.touch(body.conversation_id ? { id: res.conversation_id } : { id: res.conversation_id, title: text.slice(0, 200) });
      return;
    }
    const isNew = !this.conversationId;
    if (isNew) {
      this.conversationId = res.conversation_id;
      this.loadedId = res.conversation_id;
      clear(this.inner);
      this.turns = [];
      location.hash = '#/c/' + encodeURIComponent(res.conversation_id);
      this.sidebar.activeId = res.conversation_id;
      document.title = text.slice(0, 60) + ' · Chorus';
    }
    const turn = this.addTurn(this.userMessage({
      text,
      images: files.filter((f) => f.url).map((f) => f.url),
      files: files.filter((f) => !f.url).map((f) => ({ name: f.name, text: '' })),
    }));
    res.task_ids.forEach((taskId, k) => {
      const model = modelOf(k);
      inflight.add(taskId, { conversationId: res.conversation_id, model, batchId: res.batch_id });
      turn.column(model).add(this.followView(taskId, model));
    });
    this.composer.clearAll();
    this.sidebar.touch(isNew ? { id: res.conversation_id, title: text.slice(0, 200), model: models.join(',') } : { id: res.conversation_id });
    this.refreshControls();
    this.stick = true;
    this.scrollToBottom(true);
  }

  async regenerate(model) {
    const turn = this.turns[this.turns.length - 1];
    const conversationId = this.conversationId;
    if (!turn || !conversationId) return;
    const generation = this.generation;
    let res;
    try {
      res = await post('/v1/batches', { regenerate: true, conversation_id: conversationId, models: [model] });
    } catch (err) {
      if (err.status !== 401) toast(humanError(err, model), 'error');
      return;
    }
    const taskId = res.task_ids[0];
    inflight.add(taskId, { conversationId, model, batchId: res.batch_id });
    if (generation !== this.generation) return;
    turn.column(model).add(this.followView(taskId, model));
    this.sidebar.touch({ id: this.conversationId });
    this.refreshControls();
    this.scrollToBottom(true);
  }

  async stop() {
    const streams = activeStreams(this.conversationId);
    await Promise.all(streams.map((s) => post(`/v1/tasks/${encodeURIComponent(s.id)}/cancel`).catch((err) => {
      if (err.status !== 401) toast(humanError(err), 'error');
    })));
  }

  scrollToBottom(force = false) {
    if (force) this.stick = true;
    this.thread.scrollTop = this.thread.scrollHeight;
    this.jump.hidden = true;
  }
}

async function startChat(me) {
  let models = [];
  try {
    const list = await get('/v1/models');
    models = (list.data || []).map((m) => m.id);
  } catch (err) {
    if (err.status === 401) return;
    toast(humanError(err), 'error');
  }
  if (chat) chat.destroy();
  chat = new Chat(me.user, models, me.permissions || []);
}

async function signIn(notice) {
  if (signingIn) return;
  signingIn = true;
  if (chat) { chat.destroy(); chat = null; }
  setSession(null);
  const session = await showAuth(root, { notice });
  signingIn = false;
  let me;
  try { me = await fetchMe(); } catch { me = { user: session.user, csrf_token: session.csrf_token, auth: 'session' }; }
  setSession(me);
  await startChat(me);
}

async function signOut() {
  try { await post('/v1/auth/logout'); } catch (err) {
    if (err.status !== 401) { toast(humanError(err), 'error'); return; }
  }
  try {
    sessionStorage.removeItem('chorus.draft');
    localStorage.removeItem('chorus.inflight');
  } catch { /* storage off */ }
  location.hash = '';
  signIn();
}

// A request refused with 401 while signed in: the session ended. The typed prompt stays in
// sessionStorage and comes back in the composer after signing in again.
onSessionExpired(() => {
  if (chat) chat.composer.saveDraft();
  signIn('Your session has ended. Sign in again to go on; what you typed is kept.');
});

async function boot() {
  let me;
  try {
    me = await fetchMe();
  } catch (err) {
    if (err.status === 401) return signIn();
    clear(root).append(h('main', { class: 'auth' }, h('div', { class: 'auth-card' },
      h('h1', { text: 'Chorus is not answering' }),
      h('p', { class: 'form-error', text: humanError(err) }),
      h('button', { type: 'button', class: 'btn primary wide', text: 'Try again', onclick: boot }))));
    return;
  }
  setSession(me);
  startChat(me);
}

boot();
