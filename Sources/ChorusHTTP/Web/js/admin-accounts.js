// The console's account sections: users, every user's API keys, roles and invites.

import { h, clear, copyButton } from './dom.js';
import { get, post, patch, del, humanError } from './api.js';
import { toast, confirmDialog } from './ui.js';
import { allUsers, table, field, input, select, badge, errorBox, loading, formatTime, actionButton } from './admin-kit.js';

// Every permission a role may hold (Permission in ChorusCore), in the order they are listed.
const PERMISSIONS = ['chat', 'conversations', 'tasks', 'files', 'keys', 'admin:users', 'admin:ops', 'admin:audit', 'admin:data', 'admin:metrics'];

async function roleNames() {
  const roles = await get('/v1/admin/roles');
  return (roles.data || []).map((r) => r.name);
}

function formError() {
  return h('p', { class: 'form-error', role: 'alert', hidden: true });
}

function showError(el, err) {
  el.textContent = humanError(err);
  el.hidden = false;
}

// ---------------------------------------------------------------- users

export function usersView(container, ctx) {
  const list = h('div', { class: 'admin-list' }, loading());
  let roles = [];

  const email = input({ type: 'email', required: true, autocomplete: 'off', dataset: { testid: 'new-user-email' } });
  const name = input({ autocomplete: 'off', dataset: { testid: 'new-user-name' } });
  const password = input({ type: 'password', required: true, autocomplete: 'new-password', minlength: 8, dataset: { testid: 'new-user-password' } });
  const role = select([], { dataset: { testid: 'new-user-role' } });
  const error = formError();
  const form = h('form', { class: 'admin-form', 'aria-label': 'Create a user', novalidate: true },
    h('h2', { text: 'Create a user' }),
    h('div', { class: 'admin-fields' },
      field('Email', email), field('Name (optional)', name), field('Password (8 characters or more)', password), field('Role', role)),
    error,
    h('div', { class: 'admin-actions' }, h('button', { type: 'submit', class: 'btn primary', text: 'Create user', dataset: { testid: 'create-user' } })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      const user = await post('/v1/admin/users', { email: email.value.trim(), password: password.value, name: name.value.trim() || undefined, role: role.value || undefined });
      toast(`Created ${user.email}.`);
      form.reset();
      role.value = roles.includes('user') ? 'user' : roles[0] || '';
      await reload(true);
    } catch (err) {
      showError(error, err);
    }
  });

  const reload = async (refresh = false) => {
    let users;
    try {
      [users, roles] = await Promise.all([allUsers(ctx, true), roles.length && !refresh ? roles : roleNames()]);
    } catch (err) {
      clear(list).append(errorBox(err));
      return;
    }
    if (!role.options.length) {
      role.replaceChildren(...roles.map((r) => h('option', { value: r, text: r })));
      role.value = roles.includes('user') ? 'user' : roles[0] || '';
    }
    clear(list).append(table({
      testid: 'admin-user', caption: 'Users', rows: users, empty: 'No users.',
      rowProps: (u) => ({ id: u.id, email: u.email, disabled: String(u.disabled) }),
      columns: [
        { label: 'Email', cell: (u) => u.email },
        { label: 'Name', cell: (u) => u.name || '' },
        { label: 'Role', cell: (u) => roleSelect(u) },
        { label: 'Status', cell: (u) => u.disabled ? badge('disabled', 'danger') : badge('active', 'ok') },
        { label: 'Tokens used', key: 'tokens', class: 'num', cell: (u) => String(u.tokens_used ?? 0) + (u.token_budget != null ? ' / ' + u.token_budget : '') },
        { label: 'Created', cell: (u) => formatTime(u.created_at) },
        { label: 'Actions', cell: (u) => h('div', { class: 'row-actions' },
          actionButton(u.disabled ? 'Enable' : 'Disable', () => update(u, { disabled: !u.disabled }, u.disabled ? 'enabled' : 'disabled'),
            { dataset: { testid: 'user-toggle' }, 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}` }),
          h('a', { class: 'btn small', href: '#/admin/keys/' + encodeURIComponent(u.id), text: 'API keys', 'aria-label': `API keys of ${u.email}`, dataset: { testid: 'user-keys' } })) },
      ],
    }));
  };

  const roleSelect = (u) => {
    const options = roles.includes(u.role) ? roles : [...roles, u.role];
    const el = select(options.map((r) => [r, r]), { value: u.role, 'aria-label': `Role of ${u.email}`, dataset: { testid: 'user-role' } });
    el.addEventListener('change', () => update(u, { role: el.value }, `now ${el.value}`));
    return el;
  };

  // The table is drawn again either way, so a refused change shows the value that stands.
  const update = async (u, body, what) => {
    try {
      await patch('/v1/admin/users/' + encodeURIComponent(u.id), body);
      toast(`${u.email} is ${what}.`);
    } catch (err) {
      toast(humanError(err), 'error');
    }
    await reload();
  };

  container.append(form, h('h2', { text: 'All users' }), list);
  reload();
}

// ---------------------------------------------------------------- API keys

export function keysView(container, ctx, userID) {
  const list = h('div', { class: 'admin-list' }, loading());
  const who = select([['', 'All users']], { 'aria-label': 'Whose keys', dataset: { testid: 'keys-user' } });
  const showRevoked = h('input', { type: 'checkbox', dataset: { testid: 'keys-revoked' } });
  let users = [];
  let generation = 0;

  const reload = async () => {
    const mine = ++generation;
    clear(list).append(loading());
    let keys = [];
    try {
      const owners = who.value ? users.filter((u) => u.id === who.value) : users;
      // One request per user, a few at a time.
      for (let k = 0; k < owners.length; k += 6) {
        const pages = await Promise.all(owners.slice(k, k + 6).map((u) => get('/v1/api-keys?user_id=' + encodeURIComponent(u.id))));
        for (const page of pages) keys.push(...(page.data || []));
      }
    } catch (err) {
      if (mine === generation) clear(list).append(errorBox(err));
      return;
    }
    if (mine !== generation) return;
    if (!showRevoked.checked) keys = keys.filter((k) => k.revoked_at == null);
    keys.sort((a, b) => b.created_at - a.created_at);
    const emails = new Map(users.map((u) => [u.id, u.email]));
    clear(list).append(table({
      testid: 'admin-key', caption: 'API keys', rows: keys, empty: 'No API keys.',
      rowProps: (k) => ({ id: k.id, user: k.user_id }),
      columns: [
        { label: 'Owner', cell: (k) => emails.get(k.user_id) || k.user_id },
        { label: 'Name', cell: (k) => k.name },
        { label: 'Key', cell: (k) => h('code', { class: 'nowrap', text: k.prefix + '…' }) },
        { label: 'Scopes', cell: (k) => k.scopes ? k.scopes.join(' ') : 'all of the owner’s' },
        { label: 'Created', cell: (k) => formatTime(k.created_at) },
        { label: 'Last used', cell: (k) => k.last_used_at ? formatTime(k.last_used_at) : 'never' },
        { label: 'Expires', cell: (k) => k.expires_at ? formatTime(k.expires_at) : 'never' },
        { label: 'Status', cell: (k) => k.revoked_at ? badge('revoked', 'danger') : badge('active', 'ok') },
        { label: 'Actions', cell: (k) => k.revoked_at ? '' : actionButton('Revoke', () => revoke(k, emails.get(k.user_id)),
          { class: 'btn small danger-outline', 'aria-label': `Revoke the key ${k.name} of ${emails.get(k.user_id) || k.user_id}`, dataset: { testid: 'key-revoke' } }) },
      ],
    }));
  };

  const revoke = async (key, email) => {
    const ok = await confirmDialog({
      title: 'Revoke this API key?',
      body: `“${key.name}” (${key.prefix}…) of ${email || key.user_id} stops working at once. This cannot be undone.`,
      confirm: 'Revoke', danger: true,
    });
    if (!ok) return;
    try {
      await del('/v1/api-keys/' + encodeURIComponent(key.id));
      toast('Key revoked.');
    } catch (err) {
      toast(humanError(err), 'error');
    }
    await reload();
  };

  who.addEventListener('change', () => {
    history.replaceState(null, '', '#/admin/keys' + (who.value ? '/' + encodeURIComponent(who.value) : ''));
    reload();
  });
  showRevoked.addEventListener('change', reload);
  container.append(
    h('div', { class: 'admin-toolbar' }, field('Whose keys', who),
      h('label', { class: 'check' }, showRevoked, h('span', { text: 'Show revoked keys' }))),
    list);
  allUsers(ctx).then((loaded) => {
    users = loaded;
    who.append(...users.map((u) => h('option', { value: u.id, text: u.email })));
    if (userID && users.some((u) => u.id === userID)) who.value = userID;
    reload();
  }, (err) => clear(list).append(errorBox(err)));
  return () => { generation++; };
}

// ---------------------------------------------------------------- roles

function permissionBoxes(selected, prefix) {
  const boxes = PERMISSIONS.map((p) => h('input', { type: 'checkbox', value: p, checked: selected.includes(p), dataset: { testid: prefix + '-permission' } }));
  const el = h('fieldset', { class: 'permissions' }, h('legend', { class: 'field-label', text: 'Permissions' }),
    boxes.map((box) => h('label', { class: 'check' }, box, h('span', { text: box.value }))));
  return { el, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

export function rolesView(container) {
  const list = h('div', { class: 'admin-list' }, loading());
  const name = input({ required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_:.\\-]+', dataset: { testid: 'new-role-name' } });
  const perms = permissionBoxes(['chat', 'conversations', 'tasks', 'files', 'keys'], 'new-role');
  const error = formError();
  const form = h('form', { class: 'admin-form', 'aria-label': 'Create a role', novalidate: true },
    h('h2', { text: 'Create a role' }),
    h('div', { class: 'admin-fields' }, field('Name (letters, digits, - _ : .)', name)), perms.el, error,
    h('div', { class: 'admin-actions' }, h('button', { type: 'submit', class: 'btn primary', text: 'Create role', dataset: { testid: 'create-role' } })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      const role = await post('/v1/admin/roles', { name: name.value.trim(), permissions: perms.value() });
      toast(`Created the role ${role.name}.`);
      name.value = '';
      await reload();
    } catch (err) {
      showError(error, err);
    }
  });

  const reload = async () => {
    let roles;
    try { roles = (await get('/v1/admin/roles')).data || []; } catch (err) {
      clear(list).append(errorBox(err));
      return;
    }
    clear(list).append(table({
      testid: 'admin-role', caption: 'Roles', rows: roles, rowProps: (r) => ({ name: r.name }),
      columns: [
        { label: 'Name', cell: (r) => h('strong', { text: r.name }) },
        { label: 'Permissions', cell: (r) => h('div', { class: 'chips-inline' }, r.permissions.map((p) => badge(p, p.startsWith('admin:') ? 'warn' : ''))) },
        { label: 'Kind', cell: (r) => r.builtin ? 'built in' : 'custom' },
        { label: 'Actions', cell: (r) => r.builtin ? '' : h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'btn small', text: 'Edit', 'aria-label': `Edit the role ${r.name}`, onclick: (e) => edit(r, e.target.closest('tr')) }),
          actionButton('Delete', () => remove(r), { class: 'btn small danger-outline', 'aria-label': `Delete the role ${r.name}` })) },
      ],
    }));
  };

  const edit = (role, row) => {
    const boxes = permissionBoxes(role.permissions, 'edit-role');
    const cell = row.querySelector('[data-col="permissions"]');
    const actions = row.querySelector('[data-col="actions"]');
    clear(cell).append(boxes.el);
    clear(actions).append(h('div', { class: 'row-actions' },
      actionButton('Save', async () => {
        try {
          await patch('/v1/admin/roles/' + encodeURIComponent(role.name), { permissions: boxes.value() });
          toast(`Saved the role ${role.name}.`);
        } catch (err) { toast(humanError(err), 'error'); }
        await reload();
      }, { class: 'btn small primary' }),
      h('button', { type: 'button', class: 'btn small', text: 'Cancel', onclick: reload })));
    cell.querySelector('input')?.focus();
  };

  const remove = async (role) => {
    if (!await confirmDialog({ title: `Delete the role ${role.name}?`, body: 'A role still given to users cannot be deleted.', confirm: 'Delete', danger: true })) return;
    try {
      await del('/v1/admin/roles/' + encodeURIComponent(role.name));
      toast(`Deleted the role ${role.name}.`);
    } catch (err) { toast(humanError(err), 'error'); }
    await reload();
  };

  container.append(form, h('h2', { text: 'All roles' }), list);
  reload();
}

// ---------------------------------------------------------------- invites

export function invitesView(container) {
  const role = select([], { dataset: { testid: 'invite-role' } });
  const days = input({ type: 'number', min: 1, max: 365, value: '7', inputmode: 'numeric', dataset: { testid: 'invite-days' } });
  const error = formError();
  const result = h('div', { class: 'invite-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'admin-form', 'aria-label': 'Create an invite', novalidate: true },
    h('p', { class: 'admin-note', text: 'An invite code lets one person register with the role you choose. The code is shown only once, here.' }),
    h('div', { class: 'admin-fields' }, field('Role', role), field('Valid for (days)', days)), error,
    h('div', { class: 'admin-actions' }, h('button', { type: 'submit', class: 'btn primary', text: 'Create invite', dataset: { testid: 'create-invite' } })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    const n = Number(days.value);
    if (!Number.isInteger(n) || n < 1 || n > 365) {
      showError(error, { message: 'The number of days must be a whole number from 1 to 365.' });
      return;
    }
    try {
      const invite = await post('/v1/admin/invites', { role: role.value || undefined, expires_in: n * 86400 });
      const code = input({ readonly: true, value: invite.code, 'aria-label': 'Invite code', dataset: { testid: 'invite-code' } });
      clear(result).append(h('div', { class: 'invite-card', role: 'status' },
        h('strong', { text: `Invite for the role ${invite.role}, valid until ${formatTime(invite.expires_at)}` }),
        h('div', { class: 'invite-code' }, code, copyButton(() => invite.code, 'Copy the invite code', true)),
        h('p', { class: 'admin-note', text: 'Copy it now: Chorus keeps only its hash and cannot show it again.' })));
      code.focus();
      code.select();
    } catch (err) {
      showError(error, err);
    }
  });
  container.append(form, result);
  roleNames().then((roles) => {
    role.replaceChildren(...roles.map((r) => h('option', { value: r, text: r })));
    role.value = roles.includes('user') ? 'user' : roles[0] || '';
  }, (err) => showError(error, err));
}
