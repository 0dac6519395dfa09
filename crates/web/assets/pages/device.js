// One device: its details, live property values (time and quality), its
// remote interfaces with a Connect button each, and its recent sessions.

import { get, post, seg } from '../api.js';
import { h, message, replace, syncRows } from '../dom.js';
import { ago, bytes, value, when } from '../format.js';
import { isAdmin, mayOperate, rememberLaunch } from '../state.js';
import { statusBadge } from './devices.js';
import { HISTORY_PATH, endReason, localAddress } from './sessions.js';

export const POLL_MS = 3000;
/** How many of the device's ended sessions to list. */
export const RECENT_LIMIT = 10;
const RECENT_EVERY_MS = 10000;
const HEAD_RECENT = ['Session', 'User', 'Interface', 'Created', 'Ended', 'Client → device', 'Device → client', 'Local address', 'End reason'];

/** Creates a session to `thing`/`iface`, then shows it. */
export async function connect(thing, iface, ctx, out, button) {
  button.disabled = true;
  const label = button.textContent;
  button.textContent = 'Connecting…';
  try {
    const created = await post('/api/v1/sessions', { thing, interface: iface });
    rememberLaunch(created.id, { ...created, thing, interface: iface });
    ctx.go(`#/sessions/${encodeURIComponent(created.id)}`);
  } catch (e) {
    let text = e.message;
    if (e.status === 404 && e.noRoute) text = 'Remote access is not enabled on this platform (no session API).';
    else if (e.status === 409) text = `${thing} is not connected: ${e.message}`;
    else if (e.status === 403) text = `Not allowed: ${e.message}`;
    replace(out, message('error', `Cannot connect to ${iface}: ${text}`));
    button.disabled = false;
    button.textContent = label;
  }
}

export async function render(main, params, ctx) {
  const name = params.name;
  const heading = h('h1', {}, name);
  const facts = h('dl', { class: 'facts' });
  const problems = h('div');
  const connectOut = h('div', { id: 'connect-messages' });
  const propsBody = h('tbody');
  const ifaceBox = h('div');
  const recentNote = h('div');
  const recentBody = h('tbody');
  let lastIfaces = '';
  let connected = false;
  // When the recent sessions were last asked for; whether this platform
  // and role list them at all.
  let recentAt = 0;
  let recentShown = true;

  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/devices' }, '← All devices')),
    heading,
    problems,
    facts,
    h('section', { 'aria-labelledby': 'ifaces-h' },
      h('h2', { id: 'ifaces-h' }, 'Remote interfaces'),
      connectOut,
      ifaceBox),
    h('section', { 'aria-labelledby': 'props-h' },
      h('h2', { id: 'props-h' }, 'Properties'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'properties' },
        h('caption', { class: 'sr-only' }, `Properties of ${name}`),
        h('thead', {}, h('tr', {}, ['Name', 'Value', 'Type', 'Time', 'Quality'].map((c) => h('th', { scope: 'col' }, c)))),
        propsBody))),
    h('section', { 'aria-labelledby': 'recent-h' },
      h('h2', { id: 'recent-h' }, 'Recent sessions'),
      recentNote,
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'recent-sessions' },
        h('caption', { class: 'sr-only' }, `Recent ended sessions to ${name}, newest first`),
        h('thead', {}, h('tr', {}, HEAD_RECENT.map((c) => h('th', { scope: 'col' }, c)))),
        recentBody))));

  function drawRecent(list) {
    syncRows(recentBody, list.map((r) => ({
      key: r.id,
      sig: JSON.stringify(r),
      build: () => h('tr', { dataset: { session: r.id } }, [
        h('code', { title: r.id }, r.id.slice(0, 8)), r.user, r.interface, when(r.created), when(r.ended),
        bytes(r.bytes_client_to_server), bytes(r.bytes_server_to_client),
        localAddress(r), endReason(r),
      ].map((v, i) => h('td', { 'data-label': HEAD_RECENT[i] }, v))),
    })), h('tr', {}, h('td', { colspan: HEAD_RECENT.length, class: 'empty' }, `No ended sessions to ${name} to show.`)));
  }

  /** The device's ended sessions (operators: their own; administrators: everyone's), at most every few seconds. */
  async function loadRecent() {
    if (!recentShown || Date.now() - recentAt < RECENT_EVERY_MS) return;
    recentAt = Date.now();
    const qs = new URLSearchParams({ thing: name, limit: String(RECENT_LIMIT) });
    const table = recentBody.parentElement;
    try {
      const list = await get(`${HISTORY_PATH}?${qs}`);
      if (!ctx.live()) return;
      table.dataset.source = 'history';
      replace(recentNote, h('p', { class: 'muted' }, isAdmin()
        ? `The newest ${RECENT_LIMIT} ended sessions to ${name}, of every user.`
        : `Your newest ${RECENT_LIMIT} ended sessions to ${name}.`));
      drawRecent(Array.isArray(list) ? list.filter((r) => r && typeof r.id === 'string' && r.thing === name) : []);
    } catch (e) {
      if (e.status === 401) return;
      // 403: a viewer sees no session history; 404/405: a platform without it.
      if (e.status === 403 || e.status === 404 || e.status === 405) {
        recentShown = false;
        table.dataset.source = 'none';
        drawRecent([]);
        replace(recentNote, message('info', e.status === 403
          ? 'Your role does not see session history.'
          : 'This platform keeps no session history.'));
        return;
      }
      recentAt = 0;
      replace(recentNote, message('error', `Cannot load recent sessions: ${e.message}`));
    }
  }

  function drawInterfaces(list) {
    const key = JSON.stringify([list, connected]);
    if (key === lastIfaces) return;
    lastIfaces = key;
    if (list.length === 0) {
      replace(ifaceBox, h('p', { class: 'muted' }, 'This device has no remote interfaces. An administrator can add them under Administration → Things.'));
      return;
    }
    const rows = list.map((i) => {
      const button = h('button', {
        type: 'button',
        class: 'primary',
        dataset: { connect: i.name },
        'aria-label': `Connect to ${i.name} on ${name}`,
        disabled: !mayOperate() || !connected,
        title: !mayOperate() ? 'Your role may not open sessions' : (!connected ? 'The device is not connected' : ''),
      }, 'Connect');
      button.addEventListener('click', () => connect(name, i.name, ctx, connectOut, button));
      return h('tr', {},
        h('td', { 'data-label': 'Interface' }, i.name),
        h('td', { 'data-label': 'Protocol' }, i.protocol),
        h('td', { 'data-label': 'Target on the device side' }, `${i.host}:${i.port}`),
        h('td', { 'data-label': 'Description' }, i.description || ''),
        h('td', { 'data-label': '' }, button));
    });
    const notes = [];
    if (!mayOperate()) notes.push(message('info', 'Your role (viewer) may look but not connect.'));
    else if (!connected) notes.push(message('info', 'The device is not connected: Connect is available once it is online.'));
    replace(ifaceBox, notes, h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'interfaces' },
      h('caption', { class: 'sr-only' }, `Remote interfaces of ${name}`),
      h('thead', {}, h('tr', {}, ['Interface', 'Protocol', 'Target on the device side', 'Description', 'Action'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))));
  }

  function drawProps(props) {
    const rows = [...props].sort((a, b) => a.name.localeCompare(b.name)).map((p) => h('tr', { dataset: { prop: p.name } },
      h('td', { 'data-label': 'Name' }, p.name),
      h('td', { 'data-label': 'Value', class: 'value' }, value(p.value)),
      h('td', { 'data-label': 'Type' }, p.baseType),
      h('td', { 'data-label': 'Time' }, h('time', { title: when(p.time) }, `${when(p.time)} (${ago(p.time)})`)),
      h('td', { 'data-label': 'Quality' }, h('span', { class: `badge ${p.quality === 'GOOD' ? 'ok' : 'warn'}` }, p.quality))));
    if (rows.length === 0) {
      rows.push(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No property values received yet.')));
    }
    replace(propsBody, rows);
  }

  ctx.poll(async () => {
    try {
      const t = await get(`/api/v1/things/${seg(name)}`);
      if (!ctx.live()) return;
      connected = t.isConnected;
      replace(problems);
      replace(heading, t.name, ' ', statusBadge(t.isConnected));
      replace(facts,
        h('dt', {}, 'Template'), h('dd', {}, t.template),
        h('dt', {}, 'Identifier'), h('dd', {}, t.identifier || '—'),
        h('dt', {}, 'Last connection'), h('dd', {}, t.lastConnection ? when(t.lastConnection) : 'never'),
        h('dt', {}, 'Description'), h('dd', {}, t.description || '—'),
        h('dt', {}, 'Values updated'), h('dd', {}, new Date().toLocaleTimeString()));
      drawInterfaces(t.interfaces || []);
      drawProps(t.properties || []);
      await loadRecent();
    } catch (e) {
      if (e.status === 404) replace(problems, message('error', `No device named ${name}.`));
      else if (e.status !== 401) replace(problems, message('error', `Cannot load ${name}: ${e.message}`));
    }
  }, POLL_MS);
}
