// Administration (administrators only; the platform refuses others too):
// users and roles, app keys, things and their remote interfaces, the audit log.

import { del, get, patch, post, seg } from '../api.js';
import { copyBox, field, h, message, replace } from '../dom.js';
import { when } from '../format.js';
import { session } from '../state.js';

const TABS = [
  ['users', 'Users'],
  ['appkeys', 'App keys'],
  ['things', 'Things'],
  ['audit', 'Audit log'],
];

const ROLES = ['administrator', 'operator', 'viewer'];
const TEMPLATES = ['RemoteThing', 'RemoteThingWithTunnels', 'EMSGateway'];
const PROTOCOLS = ['ssh', 'vnc', 'tcp'];

function select(name, options, selected) {
  return h('select', { name }, options.map((o) => h('option', { value: o, selected: o === selected }, o)));
}

function list(text) {
  return text.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
}

/** Runs an admin action, reporting the outcome in `out`; returns true on success. */
async function act(out, what, f) {
  try {
    await f();
    replace(out, message('info', `${what}: done.`));
    return true;
  } catch (e) {
    if (e.status === 403) replace(out, message('error', `${what}: refused (${e.message}).`));
    else if (e.noRoute || e.status === 405) replace(out, message('error', `${what}: this platform does not support it.`));
    else replace(out, message('error', `${what}: ${e.message}`));
    return false;
  }
}

export async function render(main, params) {
  const tab = TABS.some(([k]) => k === params.tab) ? params.tab : 'users';
  const body = h('div', { id: `admin-${tab}` });
  replace(main,
    h('h1', {}, 'Administration'),
    h('nav', { class: 'tabs', 'aria-label': 'Administration sections' }, h('ul', {},
      TABS.map(([k, label]) => h('li', {}, h('a', { href: `#/admin/${k}`, 'aria-current': k === tab ? 'page' : null }, label))))),
    body);
  const pages = { users, appkeys, things, audit };
  await pages[tab](body);
}

// ---------------------------------------------------------------- users

async function users(root) {
  const out = h('div');
  const tableBox = h('div');
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const role = select('role', ROLES, 'operator');
  const pw = h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const create = h('form', { class: 'card inline-form', 'aria-labelledby': 'new-user-h' },
    h('h2', { id: 'new-user-h' }, 'Add a user'),
    h('div', { class: 'row' }, field('Name', name).wrap, field('Role', role).wrap,
      field('Password', pw, 'At least 8 characters.').wrap),
    h('button', { type: 'submit' }, 'Add user'));
  const pwUser = h('select', { name: 'user' });
  const pwNew = h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const setPw = h('form', { class: 'card inline-form', 'aria-labelledby': 'set-pw-h' },
    h('h2', { id: 'set-pw-h' }, 'Set a password'),
    h('div', { class: 'row' }, field('User', pwUser).wrap, field('New password', pwNew, 'At least 8 characters.').wrap),
    h('button', { type: 'submit' }, 'Set password'));
  replace(root, h('h2', {}, 'Users and roles'), out, tableBox, create, setPw);

  async function load() {
    let rows;
    try {
      rows = await get('/api/v1/users');
    } catch (e) {
      replace(tableBox, message('error', `Cannot load users: ${e.message}`));
      return;
    }
    replace(pwUser, rows.map((u) => h('option', { value: u.name }, u.name)));
    const me = session() && session().user;
    replace(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'users' },
      h('caption', { class: 'sr-only' }, 'Users'),
      h('thead', {}, h('tr', {}, ['Name', 'Role', 'Created', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((u) => {
        const r = select('role', ROLES, u.role);
        r.setAttribute('aria-label', `Role of ${u.name}`);
        const save = h('button', { type: 'button', class: 'secondary small' }, 'Save role');
        save.addEventListener('click', async () => {
          if (await act(out, `Role of ${u.name}`, () => patch(`/api/v1/users/${seg(u.name)}`, { role: r.value }))) load();
        });
        const remove = h('button', { type: 'button', class: 'danger small', disabled: u.name === me, 'aria-label': `Delete user ${u.name}` }, 'Delete');
        remove.addEventListener('click', async () => {
          if (!window.confirm(`Delete user ${u.name}?`)) return;
          if (await act(out, `Delete ${u.name}`, () => del(`/api/v1/users/${seg(u.name)}`))) load();
        });
        return h('tr', { dataset: { user: u.name } },
          h('td', { 'data-label': 'Name' }, u.name),
          h('td', { 'data-label': 'Role' }, h('div', { class: 'cluster' }, r, save)),
          h('td', { 'data-label': 'Created' }, when(u.created_at)),
          h('td', { 'data-label': 'Actions' }, remove));
      })))));
  }

  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!name.value.trim() || pw.value.length < 8) {
      replace(out, message('error', 'A user needs a name and a password of at least 8 characters.'));
      return;
    }
    if (await act(out, `Add ${name.value.trim()}`, () => post('/api/v1/users', { name: name.value.trim(), role: role.value, password: pw.value }))) {
      create.reset();
      load();
    }
  });
  setPw.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (pwNew.value.length < 8) {
      replace(out, message('error', 'The password needs at least 8 characters.'));
      return;
    }
    if (await act(out, `Password of ${pwUser.value}`, () => patch(`/api/v1/users/${seg(pwUser.value)}`, { password: pwNew.value }))) setPw.reset();
  });
  await load();
}

// ---------------------------------------------------------------- app keys

/** ms since the epoch as a `datetime-local` value (local time). */
function localInput(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function keyStatus(k) {
  if (k.revoked) return ['revoked', 'off'];
  if (k.expires_at !== null && k.expires_at !== undefined && k.expires_at <= Date.now()) return ['expired', 'off'];
  return ['active', 'ok'];
}

async function appkeys(root) {
  const out = h('div');
  const shown = h('div', { id: 'new-key' });
  const tableBox = h('div');
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const user = h('input', { name: 'user', value: (session() && session().user) || '', autocomplete: 'off' });
  const expires = h('input', { name: 'expires', type: 'datetime-local' });
  const addrs = h('input', { name: 'addresses', autocomplete: 'off', placeholder: '10.0.0.0/8, 192.0.2.7' });
  const patterns = h('input', { name: 'patterns', autocomplete: 'off', placeholder: 'Pump*, Line2-*' });
  const create = h('form', { class: 'card inline-form', 'aria-labelledby': 'new-key-h' },
    h('h2', { id: 'new-key-h' }, 'Create an app key'),
    h('div', { class: 'row' },
      field('Name', name).wrap,
      field('Acts as user', user).wrap,
      field('Expires (optional)', expires, 'Local time; empty: never.').wrap),
    h('div', { class: 'row' },
      field('Allowed client addresses', addrs, 'Addresses or CIDR blocks, comma separated; empty: any.').wrap,
      field('Things it may bind', patterns, 'Name patterns with *, comma separated; empty: any.').wrap),
    h('button', { type: 'submit' }, 'Create key'));
  const expiryBox = h('div', { id: 'appkey-expiry' });
  replace(root, h('h2', {}, 'App keys'), out, shown, tableBox, expiryBox, create);

  /** The expiry editor of key `k` (opened from its row's button `from`). */
  function editExpiry(k, from) {
    const input = h('input', { name: 'expires_at', type: 'datetime-local', value: k.expires_at ? localInput(k.expires_at) : '' });
    const close = () => {
      replace(expiryBox);
      from.setAttribute('aria-expanded', 'false');
      from.focus();
    };
    const save = async (expiresAt) => {
      if (await act(out, `Expiry of ${k.name}`, () => patch(`/api/v1/appkeys/${seg(k.name)}`, { expires_at: expiresAt }))) {
        replace(expiryBox);
        load();
      }
    };
    const never = h('button', { type: 'button', class: 'secondary' }, 'Never expires');
    never.addEventListener('click', () => save(null));
    const now = h('button', { type: 'button', class: 'danger' }, 'Expire now');
    now.addEventListener('click', () => save(Date.now()));
    const cancel = h('button', { type: 'button', class: 'link' }, 'Cancel');
    cancel.addEventListener('click', close);
    const form = h('form', { class: 'card inline-form', 'aria-labelledby': 'expiry-h', dataset: { key: k.name } },
      h('h3', { id: 'expiry-h' }, `Expiry of app key ${k.name}`),
      h('p', { class: 'muted' }, k.expires_at ? `Now: expires ${when(k.expires_at)}.` : 'Now: never expires.'),
      h('div', { class: 'row' }, field('Expires at', input, 'Local time. The key is refused from then on.').wrap),
      h('div', { class: 'cluster' }, h('button', { type: 'submit' }, 'Set expiry'), never, now, cancel));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = new Date(input.value).getTime();
      if (!input.value || Number.isNaN(t)) {
        replace(out, message('error', 'Choose a date and time, or "Never expires".'));
        input.focus();
        return;
      }
      save(t);
    });
    form.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') close();
    });
    for (const b of tableBox.querySelectorAll('[aria-expanded]')) b.setAttribute('aria-expanded', 'false');
    from.setAttribute('aria-expanded', 'true');
    replace(expiryBox, form);
    input.focus();
  }

  async function load() {
    let keys;
    try {
      keys = await get('/api/v1/appkeys');
    } catch (e) {
      replace(tableBox, message('error', `Cannot load app keys: ${e.message}`));
      return;
    }
    const rows = keys.map((k) => {
      const [status, cls] = keyStatus(k);
      const revoke = h('button', { type: 'button', class: 'secondary small', disabled: k.revoked, 'aria-label': `Revoke app key ${k.name}` }, 'Revoke');
      revoke.addEventListener('click', async () => {
        if (!window.confirm(`Revoke app key ${k.name}? Edges and scripts using it are refused from now on.`)) return;
        if (await act(out, `Revoke ${k.name}`, () => post(`/api/v1/appkeys/${seg(k.name)}/revoke`))) load();
      });
      const expire = h('button', { type: 'button', class: 'secondary small', disabled: k.revoked, 'aria-label': `Change the expiry of app key ${k.name}`, 'aria-expanded': 'false' }, 'Expiry…');
      expire.addEventListener('click', () => editExpiry(k, expire));
      const remove = h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete app key ${k.name}` }, 'Delete');
      remove.addEventListener('click', async () => {
        if (!window.confirm(`Delete app key ${k.name}?`)) return;
        if (await act(out, `Delete ${k.name}`, () => del(`/api/v1/appkeys/${seg(k.name)}`))) load();
      });
      return h('tr', { dataset: { key: k.name } },
        h('td', { 'data-label': 'Name' }, k.name),
        h('td', { 'data-label': 'User' }, k.user),
        h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${cls}` }, status)),
        h('td', { 'data-label': 'Expires' }, k.expires_at ? when(k.expires_at) : 'never'),
        h('td', { 'data-label': 'Addresses' }, (k.allowed_addresses || []).join(', ') || 'any'),
        h('td', { 'data-label': 'Things' }, (k.thing_patterns || []).join(', ') || 'any'),
        h('td', { 'data-label': 'Created' }, when(k.created_at)),
        h('td', { 'data-label': 'Actions' }, h('div', { class: 'cluster' }, revoke, expire, remove)));
    });
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No app keys.')));
    replace(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'appkeys' },
      h('caption', { class: 'sr-only' }, 'App keys'),
      h('thead', {}, h('tr', {}, ['Name', 'User', 'Status', 'Expires', 'Addresses', 'Things', 'Created', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))));
  }

  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(shown);
    if (!name.value.trim()) {
      replace(out, message('error', 'An app key needs a name.'));
      name.focus();
      return;
    }
    const req = {
      name: name.value.trim(),
      allowedAddresses: list(addrs.value),
      thingPatterns: list(patterns.value),
    };
    if (user.value.trim()) req.user = user.value.trim();
    if (expires.value) {
      const t = new Date(expires.value).getTime();
      if (Number.isNaN(t)) {
        replace(out, message('error', 'The expiry date is not valid.'));
        return;
      }
      req.expiresAt = t;
    }
    let created = null;
    if (await act(out, `Create ${req.name}`, async () => { created = await post('/api/v1/appkeys', req); })) {
      replace(shown, h('div', { class: 'card secret', role: 'region', 'aria-label': 'New app key' },
        h('h3', {}, `App key ${created.name}`),
        h('p', {}, h('strong', {}, 'Copy it now: it is shown only once.')),
        copyBox('Key', created.key)));
      create.reset();
      user.value = (session() && session().user) || '';
      load();
      shown.querySelector('button')?.focus();
    }
  });
  await load();
}

// ---------------------------------------------------------------- things

async function things(root) {
  const out = h('div');
  const tableBox = h('div');
  const ifaceBox = h('section', { 'aria-labelledby': 'iface-h' });
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const ident = h('input', { name: 'identifier', autocomplete: 'off' });
  const template = select('template', TEMPLATES, 'RemoteThingWithTunnels');
  const desc = h('input', { name: 'description', autocomplete: 'off' });
  const create = h('form', { class: 'card inline-form', 'aria-labelledby': 'new-thing-h' },
    h('h2', { id: 'new-thing-h' }, 'Add a thing'),
    h('div', { class: 'row' }, field('Name', name).wrap, field('Identifier (optional)', ident).wrap,
      field('Template', template).wrap, field('Description', desc).wrap),
    h('button', { type: 'submit' }, 'Add thing'));
  let selected = null;
  replace(root, h('h2', {}, 'Things'), out, tableBox, ifaceBox, create);

  async function load() {
    let list;
    try {
      list = await get('/api/v1/things');
    } catch (e) {
      replace(tableBox, message('error', `Cannot load things: ${e.message}`));
      return;
    }
    const rows = list.map((t) => {
      const edit = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remote interfaces of ${t.name}` }, 'Interfaces');
      edit.addEventListener('click', () => { selected = t.name; loadIfaces(); });
      const remove = h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete thing ${t.name}` }, 'Delete');
      remove.addEventListener('click', async () => {
        if (!window.confirm(`Delete thing ${t.name} and its stored values?`)) return;
        if (await act(out, `Delete ${t.name}`, () => del(`/api/v1/things/${seg(t.name)}`))) {
          if (selected === t.name) { selected = null; replace(ifaceBox); }
          load();
        }
      });
      return h('tr', { dataset: { thing: t.name } },
        h('td', { 'data-label': 'Name' }, h('a', { href: `#/devices/${encodeURIComponent(t.name)}` }, t.name)),
        h('td', { 'data-label': 'Status' }, t.isConnected ? 'connected' : 'disconnected'),
        h('td', { 'data-label': 'Template' }, t.template),
        h('td', { 'data-label': 'Identifier' }, t.identifier || '—'),
        h('td', { 'data-label': 'Description' }, t.description || ''),
        h('td', { 'data-label': 'Actions' }, h('div', { class: 'cluster' }, edit, remove)));
    });
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No things.')));
    replace(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'things' },
      h('caption', { class: 'sr-only' }, 'Things'),
      h('thead', {}, h('tr', {}, ['Name', 'Status', 'Template', 'Identifier', 'Description', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))));
  }

  async function loadIfaces() {
    const thing = selected;
    let ifaces;
    try {
      ifaces = await get(`/api/v1/things/${seg(thing)}/interfaces`);
    } catch (e) {
      replace(ifaceBox, message('error', `Cannot load the interfaces of ${thing}: ${e.message}`));
      return;
    }
    const iname = h('input', { name: 'name', required: true, autocomplete: 'off', placeholder: 'ssh' });
    const host = h('input', { name: 'host', required: true, value: '127.0.0.1', autocomplete: 'off' });
    const port = h('input', { name: 'port', type: 'number', min: 1, max: 65535, required: true, value: '22' });
    const proto = select('protocol', PROTOCOLS, 'ssh');
    const idesc = h('input', { name: 'description', autocomplete: 'off' });
    const form = h('form', { class: 'inline-form' },
      h('h3', {}, 'Add or replace an interface'),
      h('div', { class: 'row' }, field('Name', iname).wrap, field('Host (device side)', host).wrap,
        field('Port', port).wrap, field('Protocol', proto).wrap, field('Description', idesc).wrap),
      h('button', { type: 'submit' }, 'Save interface'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const p = Number(port.value);
      if (!iname.value.trim() || !host.value.trim() || !(p >= 1 && p <= 65535)) {
        replace(out, message('error', 'An interface needs a name, a host and a port between 1 and 65535.'));
        return;
      }
      const body = { name: iname.value.trim(), host: host.value.trim(), port: p, protocol: proto.value, description: idesc.value };
      if (await act(out, `Interface ${body.name} of ${thing}`, () => post(`/api/v1/things/${seg(thing)}/interfaces`, body))) loadIfaces();
    });
    const rows = ifaces.map((i) => {
      const remove = h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete interface ${i.name} of ${thing}` }, 'Delete');
      remove.addEventListener('click', async () => {
        if (!window.confirm(`Delete interface ${i.name} of ${thing}?`)) return;
        if (await act(out, `Delete interface ${i.name}`, () => del(`/api/v1/things/${seg(thing)}/interfaces/${seg(i.name)}`))) loadIfaces();
      });
      return h('tr', {},
        h('td', { 'data-label': 'Name' }, i.name),
        h('td', { 'data-label': 'Protocol' }, i.protocol),
        h('td', { 'data-label': 'Target' }, `${i.host}:${i.port}`),
        h('td', { 'data-label': 'Description' }, i.description || ''),
        h('td', { 'data-label': 'Actions' }, remove));
    });
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No remote interfaces.')));
    replace(ifaceBox, h('div', { class: 'card' },
      h('h2', { id: 'iface-h', tabindex: '-1' }, `Remote interfaces of ${thing}`),
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'thing-interfaces' },
        h('caption', { class: 'sr-only' }, `Remote interfaces of ${thing}`),
        h('thead', {}, h('tr', {}, ['Name', 'Protocol', 'Target', 'Description', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows))),
      form));
    ifaceBox.querySelector('h2')?.focus();
  }

  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) {
      replace(out, message('error', 'A thing needs a name.'));
      return;
    }
    const body = { name: name.value.trim(), template: template.value, description: desc.value };
    if (ident.value.trim()) body.identifier = ident.value.trim();
    if (await act(out, `Add ${body.name}`, () => post('/api/v1/things', body))) {
      create.reset();
      load();
    }
  });
  await load();
}

// ---------------------------------------------------------------- audit

async function audit(root) {
  const out = h('div');
  const tableBox = h('div');
  const pager = h('div', { class: 'cluster', id: 'audit-pager' });
  const kind = h('input', { name: 'kind', autocomplete: 'off', placeholder: 'login, session.*' });
  const actor = h('input', { name: 'actor', autocomplete: 'off' });
  const subject = h('input', { name: 'subject', autocomplete: 'off' });
  const text = h('input', { name: 'q', type: 'search', autocomplete: 'off' });
  const since = h('input', { name: 'since', type: 'datetime-local' });
  const until = h('input', { name: 'until', type: 'datetime-local' });
  const limit = select('limit', ['50', '100', '500', '1000'], '100');
  const form = h('form', { class: 'card inline-form', role: 'search', 'aria-label': 'Filter the audit log' },
    h('div', { class: 'row' },
      field('Kind', kind, 'Exact, or a prefix ending in * (session.*).').wrap,
      field('Actor', actor, 'Exact.').wrap,
      field('Subject', subject, 'Exact.').wrap,
      field('Text anywhere', text).wrap),
    h('div', { class: 'row' },
      field('From', since).wrap,
      field('Until', until).wrap,
      field('Entries per page', limit).wrap),
    h('div', { class: 'cluster' },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear')));
  replace(root, h('h2', {}, 'Audit log'), form, out, tableBox, pager);
  let offset = 0;

  const ms = (el) => {
    const t = el.value ? new Date(el.value).getTime() : NaN;
    return Number.isNaN(t) ? null : t;
  };

  // The platform filters; the same rules are applied here as well, so
  // that a platform which ignores a filter still shows only what matches.
  function match(e) {
    const k = kind.value.trim();
    if (k) {
      if (k.endsWith('*') ? !e.kind.startsWith(k.slice(0, -1)) : e.kind !== k) return false;
    }
    if (actor.value.trim() && e.actor !== actor.value.trim()) return false;
    if (subject.value.trim() && e.subject !== subject.value.trim()) return false;
    const s = ms(since);
    const u = ms(until);
    if (s !== null && e.time < s) return false;
    if (u !== null && e.time >= u) return false;
    const q = text.value.trim().toLowerCase();
    if (q && ![e.kind, e.actor, e.subject, e.detail, e.peer].some((x) => String(x).toLowerCase().includes(q))) return false;
    return true;
  }

  function query() {
    const qs = new URLSearchParams({ limit: limit.value, offset: String(offset) });
    for (const [k, el] of [['kind', kind], ['actor', actor], ['subject', subject], ['q', text]]) {
      if (el.value.trim()) qs.set(k, el.value.trim());
    }
    if (ms(since) !== null) qs.set('since', String(ms(since)));
    if (ms(until) !== null) qs.set('until', String(ms(until)));
    return qs;
  }

  async function load() {
    let entries;
    try {
      entries = await get(`/api/v1/audit?${query()}`);
    } catch (e) {
      replace(tableBox, message('error', e.noRoute ? 'This platform has no audit log API.' : `Cannot load the audit log: ${e.message}`));
      replace(pager);
      return;
    }
    const shown = entries.filter(match);
    const first = entries.length ? offset + 1 : 0;
    replace(out, h('p', { class: 'muted', role: 'status', id: 'audit-count' },
      shown.length === entries.length
        ? `Entries ${first}–${offset + entries.length} shown (newest first).`
        : `${shown.length} of ${entries.length} entries shown.`));
    const rows = shown.map((e) => h('tr', { dataset: { kind: e.kind } },
      h('td', { 'data-label': 'Time' }, when(e.time)),
      h('td', { 'data-label': 'Kind' }, h('code', {}, e.kind)),
      h('td', { 'data-label': 'Actor' }, e.actor),
      h('td', { 'data-label': 'Subject' }, e.subject),
      h('td', { 'data-label': 'Detail', class: 'detail' }, e.detail),
      h('td', { 'data-label': 'Peer' }, e.peer)));
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No entry matches.')));
    replace(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'audit' },
      h('caption', { class: 'sr-only' }, 'Audit log'),
      h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Actor', 'Subject', 'Detail', 'Peer'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))));
    const per = Number(limit.value);
    const newer = h('button', { type: 'button', class: 'secondary', disabled: offset === 0 }, '← Newer');
    newer.addEventListener('click', () => { offset = Math.max(0, offset - per); load(); });
    const older = h('button', { type: 'button', class: 'secondary', disabled: entries.length < per }, 'Older →');
    older.addEventListener('click', () => { offset += per; load(); });
    replace(pager, newer, older);
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); offset = 0; load(); });
  form.addEventListener('reset', () => setTimeout(() => { offset = 0; load(); }, 0));
  await load();
}
