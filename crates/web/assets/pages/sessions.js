// Sessions: active ones (who, device, interface, since, bytes each way)
// with an End button, and ended ones with the end reason. Administrators
// see and may end every session (the broker decides).

import { del, get, seg } from '../api.js';
import { field, h, message, replace, syncRows } from '../dom.js';
import { bytes, when } from '../format.js';
import { isAdmin, session } from '../state.js';
import { describe } from './session.js';

export const POLL_MS = 3000;
/** Ended sessions, newest first (the platform's session history). */
export const HISTORY_PATH = '/api/v1/sessions/history';
/** A platform without it: administrators read them from the audit log (`session.ended`, detail = the record as JSON). */
export const AUDIT_PATH = '/api/v1/audit?limit=1000&kind=session.ended';
const HISTORY_LIMITS = ['25', '100', '500'];
const HISTORY_EVERY_MS = 10000;

const HEAD_ACTIVE = ['Session', 'User', 'Device', 'Interface', 'State', 'Since', 'Client → device', 'Device → client', 'Action'];
const HEAD_ENDED = ['Session', 'User', 'Device', 'Interface', 'Created', 'Ended', 'Client → device', 'Device → client', 'Local address', 'End reason'];

function thead(cols) {
  return h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c))));
}

/** The RAC's reported local address of a session record, or a dash (none reported, or a record from before it was kept). */
export function localAddress(r) {
  return r.client_address ? h('code', {}, r.client_address) : '—';
}

/** A record's end reason with its detail. */
export function endReason(r) {
  return `${r.reason || '—'}${r.detail ? `: ${r.detail}` : ''}`;
}

function cells(cols, values) {
  return values.map((v, i) => h('td', { 'data-label': cols[i] }, v));
}

export async function render(main, _params, ctx) {
  const problems = h('div');
  const out = h('div', { id: 'sessions-messages' });
  const activeBody = h('tbody');
  const endedBody = h('tbody');
  const historyNote = h('div');
  const fThing = h('input', { name: 'history-thing', autocomplete: 'off', placeholder: 'Pump1' });
  const fUser = h('input', { name: 'history-user', autocomplete: 'off' });
  const fLimit = h('select', { name: 'history-limit' }, HISTORY_LIMITS.map((n) => h('option', { value: n, selected: n === '100' }, n)));
  const filters = h('form', { class: 'card inline-form', role: 'search', 'aria-label': 'Filter ended sessions', id: 'history-filters' },
    h('div', { class: 'row' },
      field('Device', fThing, 'Exact name; empty: all.').wrap,
      field('User', fUser, 'Exact name; empty: all.').wrap,
      field('Newest to show', fLimit).wrap),
    h('div', { class: 'cluster' },
      h('button', { type: 'submit' }, 'Apply'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear')));
  let historyAvailable = true;
  let history = [];
  let historyAt = 0;
  let busy = false;
  // Sessions seen live on this page, to show those that end while it is open
  // (the broker forgets a session once it has ended).
  const seenLive = new Map();
  const vanished = new Map();

  replace(main,
    h('h1', {}, 'Sessions'),
    problems,
    out,
    h('section', { 'aria-labelledby': 'active-h' },
      h('h2', { id: 'active-h' }, 'Active'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'active-sessions' },
        h('caption', { class: 'sr-only' }, 'Active sessions'), thead(HEAD_ACTIVE), activeBody))),
    h('section', { 'aria-labelledby': 'ended-h' },
      h('h2', { id: 'ended-h' }, 'Ended sessions'),
      filters,
      historyNote,
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'ended-sessions' },
        h('caption', { class: 'sr-only' }, 'Ended sessions'), thead(HEAD_ENDED), endedBody))));

  async function end(v, button) {
    button.disabled = true;
    try {
      const fin = await del(`/api/v1/sessions/${seg(v.id)}`);
      seenLive.delete(v.id);
      if (fin) vanished.set(fin.id, { ...fin, reason: fin.end_reason, detail: fin.end_detail });
      historyAt = 0;
      replace(out, message('info', `Session ${v.id} to ${v.thing} ended.`));
    } catch (e) {
      replace(out, message('error', `Cannot end session ${v.id}: ${e.message}`));
      button.disabled = false;
    }
    await refresh();
  }

  function draw(list) {
    const me = session();
    const active = list.filter((v) => v.state !== 'ended');
    const endedLive = list.filter((v) => v.state === 'ended');
    syncRows(activeBody, active.map((v) => ({
      key: v.id,
      sig: JSON.stringify(v),
      build: () => {
        const b = h('button', { type: 'button', class: 'danger small', 'aria-label': `End session ${v.id} of ${v.user} to ${v.thing}` },
          me && v.user !== me.user ? 'End (admin)' : 'End');
        b.addEventListener('click', () => end(v, b));
        const tds = cells(HEAD_ACTIVE, [
          h('a', { href: `#/sessions/${encodeURIComponent(v.id)}` }, v.id.slice(0, 8)),
          v.user, v.thing, v.interface,
          describe(v).text.replace(/[.…]+$/, ''),
          when(v.started || v.created),
          bytes(v.bytes_client_to_server), bytes(v.bytes_server_to_client),
          b,
        ]);
        tds[0].setAttribute('data-keep', '');
        tds[tds.length - 1].setAttribute('data-keep', '');
        return h('tr', { dataset: { session: v.id } }, tds);
      },
    })), h('tr', {}, h('td', { colspan: HEAD_ACTIVE.length, class: 'empty' }, 'No active sessions.')));

    for (const [id, v] of seenLive) {
      if (!list.some((x) => x.id === id) && !vanished.has(id)) {
        vanished.set(id, { ...v, ended: null, reason: 'ended', detail: 'ended while this page was open' });
      }
    }
    for (const v of endedLive) vanished.set(v.id, { ...v, reason: v.end_reason, detail: v.end_detail });
    seenLive.clear();
    for (const v of active) seenLive.set(v.id, v);
    const known = new Set(history.map((r) => r.id));
    const thing = fThing.value.trim();
    const user = fUser.value.trim();
    const wanted = (r) => (!thing || r.thing === thing) && (!user || r.user === user);
    const ended = [
      ...[...vanished.values()].filter((v) => !known.has(v.id)).reverse(),
      ...history,
    ].filter(wanted);
    syncRows(endedBody, ended.map((r) => ({
      key: r.id,
      sig: JSON.stringify(r),
      build: () => h('tr', { dataset: { session: r.id } }, cells(HEAD_ENDED, [
        r.id.slice(0, 8), r.user, r.thing, r.interface, when(r.created), when(r.ended),
        bytes(r.bytes_client_to_server), bytes(r.bytes_server_to_client),
        localAddress(r),
        endReason(r),
      ])),
    })), h('tr', {}, h('td', { colspan: HEAD_ENDED.length, class: 'empty' }, 'No ended sessions to show.')));
  }

  function historyQuery() {
    const qs = new URLSearchParams({ limit: fLimit.value });
    if (fThing.value.trim()) qs.set('thing', fThing.value.trim());
    if (fUser.value.trim()) qs.set('user', fUser.value.trim());
    return qs;
  }

  async function loadHistory() {
    const table = endedBody.parentElement;
    if (historyAvailable) {
      try {
        const list = await get(`${HISTORY_PATH}?${historyQuery()}`);
        history = Array.isArray(list) ? list : [];
        table.dataset.source = 'history';
        replace(historyNote);
        return;
      } catch (e) {
        // 404: a platform without the history route (the broker then
        // answers for a session named "history"); 405 likewise.
        if (e.status !== 404 && e.status !== 405) throw e;
        historyAvailable = false;
      }
    }
    if (isAdmin()) {
      try {
        const entries = await get(AUDIT_PATH);
        history = entries
          .filter((e) => e.kind === 'session.ended')
          .map((e) => {
            try {
              return JSON.parse(e.detail);
            } catch {
              return null;
            }
          })
          .filter((r) => r && typeof r.id === 'string')
          .slice(0, Number(fLimit.value));
        table.dataset.source = 'audit';
        replace(historyNote, message('info', 'Ended sessions from the audit log (this platform has no session history).'));
        return;
      } catch (e) {
        if (e.status === 401) throw e;
      }
    }
    history = [];
    table.dataset.source = 'page';
    replace(historyNote, message('info', 'This platform does not list ended sessions to you; only sessions that end while this page is open are listed here.'));
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const list = await get('/api/v1/sessions');
      if (Date.now() - historyAt >= HISTORY_EVERY_MS) {
        historyAt = Date.now();
        await loadHistory();
      }
      if (!ctx.live()) return;
      replace(problems);
      draw(list);
    } catch (e) {
      if (e.status === 404 && e.noRoute) replace(problems, message('error', 'Remote access is not enabled on this platform (no session API).'));
      else if (e.status !== 401) replace(problems, message('error', `Cannot load sessions: ${e.message}`));
    } finally {
      busy = false;
    }
  }

  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    historyAt = 0;
    refresh();
  });
  filters.addEventListener('reset', () => setTimeout(() => {
    historyAt = 0;
    refresh();
  }, 0));

  ctx.poll(refresh, POLL_MS);
}
