// fetch() wrapper for the platform and broker APIs: JSON in and out, the
// CSRF header on every state-changing call, a deadline, clear errors.

import { session, setSession } from './state.js';

const TIMEOUT_MS = 20000;

/** An API failure: `status` is 0 when the platform could not be reached. */
export class ApiError extends Error {
  constructor(status, message, noRoute) {
    super(message);
    this.status = status;
    this.noRoute = Boolean(noRoute);
  }

  /** The route does not exist on this platform (or the object is gone). */
  get notFound() {
    return this.status === 404;
  }
}

let onUnauthorized = () => {};

/** Called when a call answers 401 (session expired or logged out elsewhere). */
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

/** Calls `method path` with an optional JSON body; resolves to the JSON answer (null for 204). */
export async function api(method, path, body, opts = {}) {
  // X-Tether-Web: the platform then leaves out WWW-Authenticate on a 401,
  // so the browser does not open its own password dialog.
  const headers = { Accept: 'application/json', 'X-Tether-Web': '1' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const s = session();
  if (method !== 'GET' && method !== 'HEAD' && s && s.csrfToken) {
    headers['X-CSRF-Token'] = s.csrfToken;
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: abort.signal,
    });
  } catch (e) {
    const why = e && e.name === 'AbortError' ? 'no answer in time' : 'network error';
    throw new ApiError(0, `Cannot reach the platform (${why}). Check your connection and try again.`);
  } finally {
    clearTimeout(timer);
  }
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const msg = (data && typeof data.error === 'string' && data.error)
      || `${resp.status} ${resp.statusText || 'error'}`;
    const noRoute = resp.headers.get('x-tether-no-route') === '1';
    if (resp.status === 401 && !opts.login) {
      setSession(null);
      onUnauthorized(msg);
    }
    throw new ApiError(resp.status, msg, noRoute);
  }
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** `encodeURIComponent` for path segments. */
export const seg = (s) => encodeURIComponent(String(s));
