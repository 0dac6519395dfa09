// The console's entry point: hash routing, the header, polling helpers.

import { get, post, setUnauthorizedHandler } from './api.js';
import { replace } from './dom.js';
import { isAdmin, session, setSession } from './state.js';
import * as login from './pages/login.js';
import * as devices from './pages/devices.js';
import * as device from './pages/device.js';
import * as sessionPage from './pages/session.js';
import * as sessions from './pages/sessions.js';
import * as admin from './pages/admin.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');

let cleanups = [];
let generation = 0;

/** Shows a message in the banner under the header (empty text hides it). */
export function notify(text, kind = 'info') {
  banner.textContent = text || '';
  banner.className = `banner ${text ? kind : ''}`;
}

/** Navigates to a hash route. */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function routeOf(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const [a, b] = parts;
  if (a === 'login') return { page: login, nav: null, params: {} };
  if (a === 'devices' && b) return { page: device, nav: 'devices', params: { name: b } };
  if (a === 'sessions' && b) return { page: sessionPage, nav: 'sessions', params: { id: b } };
  if (a === 'sessions') return { page: sessions, nav: 'sessions', params: {} };
  if (a === 'admin') return { page: admin, nav: 'admin', params: { tab: b || 'users' }, admin: true };
  return { page: devices, nav: 'devices', params: {} };
}

function header() {
  const s = session();
  document.getElementById('nav').hidden = !s;
  document.getElementById('who').hidden = !s;
  for (const el of document.querySelectorAll('[data-admin]')) el.hidden = !isAdmin();
  if (s) document.getElementById('who-name').textContent = `${s.user} (${s.role})`;
}

function markNav(nav) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function makeContext(gen) {
  return {
    notify,
    go,
    /** Is this render still the current page? */
    live: () => gen === generation,
    /** Runs `fn` now and then every `ms` while the page is shown (paused while the tab is hidden). */
    poll(fn, ms) {
      let timer = null;
      let stopped = false;
      const tick = async () => {
        timer = null;
        if (stopped || gen !== generation) return;
        if (!document.hidden) {
          try {
            await fn();
          } catch (e) {
            console.warn('poll failed', e);
          }
        }
        if (!stopped && gen === generation) timer = setTimeout(tick, ms);
      };
      tick();
      const stop = () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      };
      cleanups.push(stop);
      return stop;
    },
    onLeave(f) {
      cleanups.push(f);
    },
  };
}

async function route() {
  for (const f of cleanups) {
    try { f(); } catch (e) { console.warn(e); }
  }
  cleanups = [];
  generation += 1;
  const gen = generation;
  const r = routeOf(location.hash);
  header();
  if (!session() && r.page !== login) {
    const back = location.hash && !location.hash.startsWith('#/login') ? location.hash : '';
    sessionStorage.setItem('tether.after-login', back);
    location.replace('#/login');
    return;
  }
  if (session() && r.page === login) {
    location.replace('#/devices');
    return;
  }
  markNav(r.nav);
  if (r.admin && !isAdmin()) {
    replace(main, ...forbidden());
    focusHeading();
    return;
  }
  replace(main);
  try {
    await r.page.render(main, r.params, makeContext(gen));
  } catch (e) {
    if (gen === generation) {
      console.error(e);
      notify(`This page failed: ${e.message}`, 'error');
    }
  }
  if (gen === generation && r.page !== login) focusHeading();
}

function forbidden() {
  const h1 = document.createElement('h1');
  h1.textContent = 'Administrators only';
  const p = document.createElement('p');
  p.className = 'msg error';
  p.setAttribute('role', 'alert');
  p.textContent = 'Your role does not allow administration. Ask an administrator if you need access.';
  return [h1, p];
}

function focusHeading() {
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: false });
  }
}

async function logout() {
  try {
    await post('/api/v1/logout');
  } catch (e) {
    if (e.status !== 401) {
      notify(`Logging out failed: ${e.message}`, 'error');
      return;
    }
  }
  setSession(null);
  notify('You are logged out.');
  go('#/login');
}

async function boot() {
  setUnauthorizedHandler((msg) => {
    notify(`Your session has ended (${msg}). Please log in again.`, 'error');
    header();
    go('#/login');
  });
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  if (session()) {
    try {
      const me = await get('/api/v1/me');
      setSession({ ...session(), user: me.user, role: me.role });
    } catch (e) {
      if (e.status !== 401) notify(e.message, 'error');
    }
  }
  await route();
}

boot();
