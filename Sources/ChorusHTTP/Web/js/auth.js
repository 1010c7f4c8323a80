// Sign in and create an account (open or invite-only registration).

import { h, icon, clear } from './dom.js';
import { api, humanError } from './api.js';

function field(label, props) {
  const input = h('input', { class: 'field-input', ...props });
  return { input, el: h('label', { class: 'field' }, h('span', { class: 'field-label', text: label }), input) };
}

const REGISTER_ERRORS = {
  registration_closed: 'Registration is closed on this server. Ask an administrator for an account.',
  invalid_invite: 'That invite code is not valid, or it has expired.',
  email_taken: 'An account with this email already exists. Sign in instead.',
};

/** Shows the sign-in card in `root`; resolves with the login answer once signed in. */
export function showAuth(root, { notice } = {}) {
  return new Promise((resolve) => {
    let mode = 'sign-in';
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const info = h('p', { class: 'form-info', role: 'status', hidden: !notice, text: notice || '' });
    const name = field('Name (optional)', { name: 'name', autocomplete: 'name', dataset: { testid: 'name' } });
    const email = field('Email', { name: 'email', type: 'email', required: true, autocomplete: 'username', dataset: { testid: 'email' } });
    const password = field('Password', { name: 'password', type: 'password', required: true, autocomplete: 'current-password', dataset: { testid: 'password' } });
    const invite = field('Invite code (if you were given one)', { name: 'invite', autocomplete: 'off', dataset: { testid: 'invite' } });
    const submit = h('button', { type: 'submit', class: 'btn primary wide', dataset: { testid: 'sign-in' } });
    const title = h('h1');
    const switchText = h('span');
    const switchBtn = h('button', { type: 'button', class: 'link-btn', dataset: { testid: 'toggle-register' } });
    const form = h('form', { class: 'auth-card', novalidate: true },
      h('div', { class: 'auth-logo' }, icon('logo', 'logo'), h('span', { text: 'Chorus' })),
      title, info, name.el, email.el, password.el, invite.el, error, submit,
      h('p', { class: 'auth-switch' }, switchText, ' ', switchBtn));

    const render = () => {
      const register = mode === 'register';
      title.textContent = register ? 'Create your account' : 'Sign in';
      submit.textContent = register ? 'Create account' : 'Sign in';
      submit.dataset.testid = register ? 'register' : 'sign-in';
      name.el.hidden = !register;
      invite.el.hidden = !register;
      password.input.autocomplete = register ? 'new-password' : 'current-password';
      password.input.placeholder = register ? 'At least 8 characters' : '';
      switchText.textContent = register ? 'Already have an account?' : 'New here?';
      switchBtn.textContent = register ? 'Sign in' : 'Create account';
      error.hidden = true;
    };
    switchBtn.addEventListener('click', () => { mode = mode === 'register' ? 'sign-in' : 'register'; render(); email.input.focus(); });

    const fail = (text) => {
      error.textContent = text;
      error.hidden = false;
      submit.disabled = false;
      form.classList.remove('busy');
    };

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const creds = { email: email.input.value.trim(), password: password.input.value };
      if (!creds.email || !creds.password) return fail('Enter your email and password.');
      submit.disabled = true;
      form.classList.add('busy');
      error.hidden = true;
      try {
        if (mode === 'register') {
          if (creds.password.length < 8) return fail('Choose a password of at least 8 characters.');
          const body = { ...creds };
          if (name.input.value.trim()) body.name = name.input.value.trim();
          if (invite.input.value.trim()) body.invite_code = invite.input.value.trim();
          try {
            await api('POST', '/v1/auth/register', body);
          } catch (err) {
            return fail(REGISTER_ERRORS[err.code] || humanError(err));
          }
        }
        const session = await api('POST', '/v1/auth/login', { ...creds, session: 'cookie' });
        resolve(session);
      } catch (err) {
        if (err.status === 401) fail('Wrong email or password.');
        else fail(humanError(err));
      }
    });

    render();
    clear(root).append(h('main', { class: 'auth' }, form));
    document.title = 'Sign in · Chorus';
    (email.input.value ? password.input : email.input).focus();
  });
}
