// Tiny DOM helpers. Text always goes through text nodes (never HTML), so
// names and values from devices cannot inject markup.

/** Creates an element: h('button', {type: 'button', onclick: f}, 'Text', child). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value') {
      // Also the default, so that form.reset() goes back to it.
      if ('defaultValue' in el) el.defaultValue = v;
      el.value = v;
    } else if (k === 'selected') {
      el.defaultSelected = v;
      el.selected = v;
    } else if (k === 'checked' || k === 'disabled') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique element id. */
export function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: returns {wrap, input}. */
export function field(label, input, hint) {
  const id = input.id || newId('f');
  input.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h('small', { id: `${id}-hint`, class: 'hint' }, hint);
    input.setAttribute('aria-describedby', hintEl.id);
  }
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
  return { wrap, input };
}

/** An error or notice box inside the page (role=alert for errors). */
export function message(kind, text) {
  return h('p', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** Copies `text` to the clipboard; returns true on success. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A read-only code box with a Copy button. */
export function copyBox(label, text) {
  const id = newId('copy');
  const status = h('span', { class: 'copy-status', role: 'status' });
  const out = h('output', { id, class: 'code' }, text);
  return h('div', { class: 'copybox' },
    h('label', { for: id, class: 'copy-label' }, label),
    h('div', { class: 'copyrow' }, out,
      h('button', {
        type: 'button',
        class: 'secondary',
        onclick: async () => {
          const ok = await copy(text);
          status.textContent = ok ? 'Copied.' : 'Copy failed: select the text and copy it.';
        },
      }, 'Copy')),
    status);
}

/**
 * Updates the rows of `tbody` in place from `rows` ({key, sig, build}):
 * unchanged rows stay (so focus and clicks on them survive a refresh),
 * changed rows get fresh cell contents except cells marked `data-keep`
 * (links and buttons), new rows are built, gone rows removed. `empty` is
 * the row shown when there is none.
 */
export function syncRows(tbody, rows, empty) {
  const old = new Map();
  for (const tr of [...tbody.children]) {
    if (tr.dataset.rowKey !== undefined) old.set(tr.dataset.rowKey, tr);
    else tr.remove();
  }
  const wanted = new Set(rows.map((r) => r.key));
  for (const [k, tr] of old) if (!wanted.has(k)) tr.remove();
  let prev = null;
  for (const r of rows) {
    let tr = old.get(r.key);
    if (!tr) {
      tr = r.build();
      tr.dataset.rowKey = r.key;
      tr.dataset.sig = r.sig;
    } else if (tr.dataset.sig !== r.sig) {
      const fresh = r.build();
      [...tr.children].forEach((td, i) => {
        const src = fresh.children[i];
        if (!src || td.hasAttribute('data-keep')) return;
        td.replaceChildren(...src.childNodes);
      });
      tr.dataset.sig = r.sig;
    }
    const at = prev ? prev.nextSibling : tbody.firstChild;
    if (at !== tr) tbody.insertBefore(tr, at);
    prev = tr;
  }
  if (rows.length === 0 && empty) tbody.appendChild(empty);
}
