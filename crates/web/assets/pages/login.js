// Log in: a password form. The platform answers with the user, the role and
// the CSRF token, and sets an HttpOnly SameSite cookie.

import { post } from '../api.js';
import { field, h, message, replace } from '../dom.js';
import { setSession } from '../state.js';

export async function render(main, _params, ctx) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const out = h('div', { id: 'login-messages' });
  const submit = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', {}, 'Log in to Tether'),
    field('User name', user).wrap,
    field('Password', pass).wrap,
    out,
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out);
    if (!user.value.trim() || !pass.value) {
      replace(out, message('error', 'Enter your user name and password.'));
      (user.value.trim() ? pass : user).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const r = await post('/api/v1/login', { username: user.value.trim(), password: pass.value }, { login: true });
      setSession({ user: r.user, role: r.role, csrfToken: r.csrfToken });
      ctx.notify('');
      const back = sessionStorage.getItem('tether.after-login') || '#/devices';
      sessionStorage.removeItem('tether.after-login');
      ctx.go(back);
    } catch (e) {
      let text = e.message;
      if (e.status === 429) {
        text = `Locked out: ${e.message}. Wait a few minutes before trying again.`;
      } else if (e.status === 401) {
        text = `Log-in refused: ${e.message}.`;
      }
      replace(out, message('error', text));
      pass.value = '';
      pass.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Log in';
    }
  });
  replace(main, form);
  user.focus();
}
