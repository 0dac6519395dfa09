// Who is logged in, and the CSRF token of the session. Kept in
// sessionStorage (this tab only) so that a reload keeps the token the
// platform gave at login; the cookie itself is HttpOnly.

const KEY = 'tether.session';

let current = null;
try {
  current = JSON.parse(sessionStorage.getItem(KEY) || 'null');
} catch {
  current = null;
}

/** {user, role, csrfToken} or null. */
export function session() {
  return current;
}

export function setSession(s) {
  current = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

export function isAdmin() {
  return current !== null && current.role === 'administrator';
}

export function mayOperate() {
  return current !== null && (current.role === 'administrator' || current.role === 'operator');
}

// Launch URLs of sessions created in this tab (they carry a single-use
// nonce: memory only, never stored).
const launches = new Map();

export function rememberLaunch(id, created) {
  launches.set(id, created);
}

export function launchOf(id) {
  return launches.get(id) || null;
}
