// Devices: every thing, searchable and sortable, with its connection
// status refreshed every few seconds.

import { get } from '../api.js';
import { field, h, message, replace, syncRows } from '../dom.js';
import { ago, when } from '../format.js';

export const POLL_MS = 4000;

const COLUMNS = [
  { key: 'name', label: 'Name' },
  { key: 'isConnected', label: 'Status' },
  { key: 'lastConnection', label: 'Last connection' },
  { key: 'template', label: 'Template' },
  { key: 'description', label: 'Description' },
];

export function statusBadge(connected) {
  return h('span', { class: `badge ${connected ? 'ok' : 'off'}` }, connected ? 'Connected' : 'Disconnected');
}

export async function render(main, _params, ctx) {
  let things = [];
  let sort = { key: 'name', dir: 1 };
  const search = h('input', { type: 'search', name: 'q', autocomplete: 'off', placeholder: 'Name, template, description' });
  const summary = h('p', { class: 'muted', id: 'devices-summary' });
  const problems = h('div');
  const tbody = h('tbody');
  const headButtons = new Map();
  const ths = COLUMNS.map((c) => {
    const b = h('button', { type: 'button', class: 'sort', onclick: () => sortBy(c.key) }, c.label);
    headButtons.set(c.key, b);
    return h('th', { scope: 'col', dataset: { key: c.key } }, b);
  });
  const tableEl = h('table', { class: 'cards', id: 'devices' },
    h('caption', { class: 'sr-only' }, 'Devices'),
    h('thead', {}, h('tr', {}, ths)),
    tbody);

  replace(main,
    h('h1', {}, 'Devices'),
    h('div', { class: 'toolbar' }, field('Search devices', search).wrap, summary),
    problems,
    h('div', { class: 'table-wrap' }, tableEl));

  function sortBy(key) {
    sort = { key, dir: sort.key === key ? -sort.dir : 1 };
    draw();
  }

  function compare(a, b) {
    const x = a[sort.key];
    const y = b[sort.key];
    if (x === y) return a.name.localeCompare(b.name);
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    if (typeof x === 'string') return x.localeCompare(y) * sort.dir;
    return (x > y ? 1 : -1) * sort.dir;
  }

  function draw() {
    for (const th of ths) {
      const key = th.dataset.key;
      if (key === sort.key) th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    const q = search.value.trim().toLowerCase();
    const shown = things
      .filter((t) => !q || [t.name, t.template, t.description, t.identifier || '']
        .some((s) => String(s).toLowerCase().includes(q)))
      .sort(compare);
    syncRows(tbody, shown.map((t) => {
      const since = t.lastConnection ? ago(t.lastConnection) : 'never';
      return {
        key: t.name,
        sig: JSON.stringify([t, since]),
        build: () => h('tr', { dataset: { thing: t.name } },
          h('td', { 'data-label': 'Name', 'data-keep': true }, h('a', { href: `#/devices/${encodeURIComponent(t.name)}` }, t.name)),
          h('td', { 'data-label': 'Status' }, statusBadge(t.isConnected)),
          h('td', { 'data-label': 'Last connection' }, t.lastConnection ? h('time', { title: when(t.lastConnection) }, since) : since),
          h('td', { 'data-label': 'Template' }, t.template),
          h('td', { 'data-label': 'Description' }, t.description || '')),
      };
    }), h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'empty' },
      things.length ? 'No device matches the search.' : 'No devices yet.')));
    const connected = things.filter((t) => t.isConnected).length;
    summary.textContent = `${shown.length} of ${things.length} devices shown, ${connected} connected. Updated ${new Date().toLocaleTimeString()}.`;
  }

  for (const ev of ['input', 'change', 'search']) search.addEventListener(ev, draw);

  ctx.poll(async () => {
    try {
      things = await get('/api/v1/things');
      replace(problems);
      draw();
    } catch (e) {
      if (e.status !== 401) replace(problems, message('error', `Cannot load devices: ${e.message}`));
    }
  }, POLL_MS);
}
