// One remote-access session: opens the tether:// launch link (an installed
// RAC joins), shows the session's state live, the command to join by hand,
// and ends it.

import { del, get, seg } from '../api.js';
import { copyBox, h, message, replace } from '../dom.js';
import { bytes, when } from '../format.js';
import { launchOf } from '../state.js';

export const POLL_MS = 2000;

const launched = new Set();

/** Shell-quotes `s` for a POSIX shell (single quotes). */
export function shellQuote(s) {
  return `'${String(s).replace(/'/g, "'\\''")}'`;
}

/** What the session is waiting for, in words. */
export function describe(v) {
  switch (v.state) {
    case 'active': return { step: 3, text: 'Connected: the device and your client are both attached.' };
    case 'ended': return { step: 4, text: `Ended: ${v.end_detail || v.end_reason || 'no reason given'}.` };
    default:
      if (!v.server_attached) return { step: 1, text: 'Waiting for the device to attach…' };
      return { step: 2, text: 'Waiting for the client (the Tether RAC) to attach…' };
  }
}

function openLaunch(url) {
  // A link click hands the tether:// URL to the operating system (the RAC
  // is registered for it); the page stays.
  const a = document.createElement('a');
  a.href = url;
  a.rel = 'noopener';
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

export async function render(main, params, ctx) {
  const id = params.id;
  const created = launchOf(id);
  const heading = h('h1', {}, created ? `Session to ${created.thing} · ${created.interface}` : 'Session');
  const stateEl = h('p', { id: 'session-state', class: 'state', role: 'status', 'aria-live': 'polite' }, 'Loading…');
  const steps = h('ol', { class: 'steps', 'aria-label': 'Progress' },
    ['Device attached', 'Client attached', 'Connected'].map((s, i) => h('li', { dataset: { step: String(i + 1) } }, s)));
  const facts = h('dl', { class: 'facts' });
  // Where the RAC listens, once it reports it (client-info).
  const clientBox = h('section', { 'aria-labelledby': 'client-h', class: 'card', id: 'client-address', hidden: true });
  let shownAddress = null;
  const problems = h('div');
  const endOut = h('div');
  const endButton = h('button', { type: 'button', class: 'danger', id: 'end-session' }, 'End session');
  let ended = false;
  let seen = false;

  const launch = [];
  if (created && created.launch_url) {
    const cmd = `tether-rac open ${shellQuote(created.launch_url)}`;
    launch.push(h('section', { 'aria-labelledby': 'launch-h', class: 'card', id: 'launch' },
      h('h2', { id: 'launch-h' }, 'Join with the Tether RAC'),
      h('p', {}, 'The RAC should start on its own. If it does not, ',
        h('a', { href: created.launch_url, id: 'launch-link' }, 'open the launch link'),
        ' or run this command on this computer:'),
      copyBox('Command', cmd),
      h('p', { class: 'muted' }, `The link works once, until ${when(created.expires)}. Once joined, the RAC shows the local address to connect your tool to (for example ssh -p PORT user@127.0.0.1).`)));
  } else {
    launch.push(message('info', 'The launch link is shown only in the tab that created the session. To join from another place, start a new session, or use tether-rac connect with an app key.'));
  }

  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/sessions' }, '← All sessions')),
    heading,
    problems,
    stateEl,
    steps,
    clientBox,
    h('div', { class: 'actions' }, endButton),
    endOut,
    launch,
    h('section', { 'aria-labelledby': 'details-h' }, h('h2', { id: 'details-h' }, 'Details'), facts));

  function draw(v) {
    if (created === null) replace(heading, `Session to ${v.thing} · ${v.interface}`);
    const d = describe(v);
    stateEl.textContent = d.text;
    stateEl.dataset.state = v.state;
    stateEl.className = `state ${v.state}`;
    for (const li of steps.children) {
      const n = Number(li.dataset.step);
      const done = (n === 1 && v.server_attached) || (n === 2 && v.client_attached) || (n === 3 && v.state === 'active');
      li.className = done ? 'done' : (n === d.step ? 'current' : '');
      if (n === d.step && v.state !== 'ended') li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
    const local = v.client_address || null;
    drawClient(v, local);
    replace(facts,
      h('dt', {}, 'Session'), h('dd', {}, h('code', {}, v.id)),
      h('dt', {}, 'Device · interface'), h('dd', {}, h('a', { href: `#/devices/${encodeURIComponent(v.thing)}` }, v.thing), ` · ${v.interface}`),
      h('dt', {}, 'User'), h('dd', {}, v.user),
      h('dt', {}, 'Local address'), h('dd', { id: 'local-address' }, local ? h('code', {}, local) : 'Shown by the RAC once it listens.'),
      h('dt', {}, 'Created'), h('dd', {}, when(v.created)),
      h('dt', {}, 'Connected since'), h('dd', {}, v.started ? when(v.started) : '—'),
      v.state !== 'active' && v.state !== 'ended' ? [h('dt', {}, 'Attach deadline'), h('dd', {}, when(v.expires))] : null,
      v.ended ? [h('dt', {}, 'Ended'), h('dd', {}, when(v.ended))] : null,
      h('dt', {}, 'Client → device'), h('dd', { id: 'bytes-up' }, bytes(v.bytes_client_to_server)),
      h('dt', {}, 'Device → client'), h('dd', { id: 'bytes-down' }, bytes(v.bytes_server_to_client)),
      h('dt', {}, 'Streams'), h('dd', {}, `${v.streams_open} open, ${v.streams_opened} opened`));
    // The launch link is single use: once the client is in (or the
    // session is over) it is of no more use.
    const join = main.querySelector('#launch');
    if (join && (v.client_attached || v.state === 'active' || v.state === 'ended')) join.hidden = true;
    if (v.state === 'ended') finish();
  }

  function drawClient(v, local) {
    if (!local || v.state === 'ended') {
      clientBox.hidden = true;
      return;
    }
    clientBox.hidden = false;
    if (local === shownAddress) return;
    shownAddress = local;
    const port = local.slice(local.lastIndexOf(':') + 1);
    const host = local.slice(0, local.lastIndexOf(':'));
    const iface = String(v.interface).toLowerCase();
    let hint = null;
    if (iface.includes('ssh')) hint = `For example: ssh -p ${port} USER@${host.replace(/^\[|\]$/g, '')}`;
    else if (iface.includes('vnc')) hint = `For example: a VNC viewer on ${local}`;
    replace(clientBox,
      h('h2', { id: 'client-h' }, 'Your RAC listens on'),
      copyBox('Local address', local),
      hint ? h('p', { class: 'muted' }, hint) : null);
  }

  function finish() {
    ended = true;
    const join = main.querySelector('#launch');
    if (join) join.hidden = true;
    endButton.disabled = true;
    endButton.hidden = true;
  }

  endButton.addEventListener('click', async () => {
    endButton.disabled = true;
    endButton.textContent = 'Ending…';
    try {
      const v = await del(`/api/v1/sessions/${seg(id)}`);
      if (v) draw(v);
      finish();
      replace(endOut, message('info', 'Session ended.'));
    } catch (e) {
      endButton.disabled = false;
      endButton.textContent = 'End session';
      if (e.status === 404) {
        finish();
        replace(endOut, message('info', 'The session had already ended.'));
      } else {
        replace(endOut, message('error', `Cannot end the session: ${e.message}`));
      }
    }
  });

  if (created && created.launch_url && !launched.has(id)) {
    launched.add(id);
    openLaunch(created.launch_url);
  }

  ctx.poll(async () => {
    if (ended) return;
    try {
      const v = await get(`/api/v1/sessions/${seg(id)}`);
      if (!ctx.live()) return;
      seen = true;
      replace(problems);
      draw(v);
    } catch (e) {
      if (e.status === 404) {
        if (e.noRoute) {
          replace(problems, message('error', 'Remote access is not enabled on this platform (no session API).'));
        } else {
          stateEl.textContent = seen ? 'Ended: the session is over (the broker no longer lists it).' : 'No such session: it ended or never existed.';
          stateEl.dataset.state = 'ended';
          stateEl.className = 'state ended';
        }
        finish();
      } else if (e.status !== 401) {
        replace(problems, message('error', `Cannot load the session: ${e.message}`));
      }
    }
  }, POLL_MS);
}
