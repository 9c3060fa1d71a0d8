// The mobile API as the app calls it: OAuth2 password login, the access token on every call,
// refreshed silently with the one-use refresh token when it has expired.
import { forgetAnother, getKv, replaceTokens, setKv } from './store.js';

export class Offline extends Error {}

// A request the network holds without an answer (a dead cell that keeps the connection open, a
// proxy that never replies) is given up after `requestMs`, body included, and counts as
// offline: a sync is tried again later, and a resend of what did arrive is answered
// `duplicate`. Without it one stalled request would hold the sync, or the renewal lock every
// tab waits on, until the app is closed.
export const limits = { requestMs: 120 * 1000 };

// The request's signal: aborted by `init.signal` (a sync pass's, at log-out) or once `ms` have
// passed, whichever comes first. Made by hand, not with AbortSignal.any or .timeout, which the
// older phones' browsers lack.
function send(path, init = {}, ms = limits.requestMs) {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException('no answer in time', 'TimeoutError')), ms);
  const { signal } = init;
  if (signal && signal.aborted) controller.abort(signal.reason);
  else if (signal) signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  return fetch(path, { ...init, signal: controller.signal });
}

export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.field = this.body.field || null;
  }
}

// Says `ended` when the server has refused the refresh token (spent, revoked, or expired after
// long offline): the user must log in again; what they recorded stays on the phone. Every tab
// of the app says it: the tab whose renewal was refused tells the others (their tokens were
// the same), which otherwise kept showing the user logged in and queued records no sync sent.
export const session = new EventTarget();
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('wastetrack-session') : null;
if (tabs) tabs.onmessage = (message) => { if (message.data === 'ended') session.dispatchEvent(new Event('ended')); };

function loginEnded() {
  session.dispatchEvent(new Event('ended'));
  if (tabs) tabs.postMessage('ended');
}

function claims(accessToken) {
  const part = accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function profileOf(tokens) {
  const who = claims(tokens.access_token);
  return { user_id: Number(who.sub), username: who.name, role: who.role, organization_id: who.org };
}

async function keep(tokens) {
  const profile = profileOf(tokens);
  await forgetAnother(profile.user_id);
  await setKv('tokens', { access: tokens.access_token, refresh: tokens.refresh_token });
  await setKv('profile', profile);
  return profile;
}

export async function logIn(username, password) {
  const form = new URLSearchParams({ grant_type: 'password', username, password });
  let response;
  try {
    response = await send('/m/v1/auth/token', { method: 'POST', body: form });
  } catch (error) {
    throw new Offline('offline');
  }
  const body = await answerOf(response);
  if (!response.ok) throw new Problem(response.status, body);
  return keep(tokensIn(body));
}

// The tokens of a log-in or a renewal: JSON that holds none is no answer of the service's.
function tokensIn(body) {
  if (!body || typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string') {
    throw new Offline('not the service');
  }
  return body;
}

// What the service answered, as JSON: an answer with no JSON is not the service's — a Wi-Fi
// login page answering every request with its own HTML, a proxy's or gateway's error page
// (403, 502, 504) on a weak network — and Offline, for a log-in, a renewal and every call
// alike: never a batch nobody knows, nor the service refusing a password, a refresh token or a
// record. A body too large (413) is the one status that says the same whoever answers it (the
// sync sends less); a 204 has no body.
async function answerOf(response) {
  const answer = await response.json().catch(() => null);
  if (answer === null && ![204, 413].includes(response.status)) throw new Offline('not the service');
  return answer;
}

let refreshing = null;

// One refresh at a time, across the app's tabs too: the refresh token is single-use, and
// presenting it twice revokes the whole login. `used` is the access token the server refused:
// once this tab holds the lock, tokens another tab renewed meanwhile are simply used. The
// answer is kept only while the refresh token sent is still the stored one: one that arrives
// after log-out (or after a new login) writes nothing back.
async function renew(used) {
  const tokens = await getKv('tokens');
  if (!tokens) throw new Problem(401, { detail: '请先登录 · please log in' });
  if (tokens.access !== used) return; // renewed meanwhile
  const response = await send('/m/v1/auth/refresh', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: tokens.refresh }),
  });
  const body = await answerOf(response);
  // A renewal carries no body a proxy could find too large: its 413 page is no refusal.
  if (body === null && !response.ok) throw new Offline('not the service');
  if (!response.ok) {
    // The service refuses a token spent, revoked or expired with a 401: log in again. Any
    // other answer refused nothing of the login (a busy server's 429 or 5xx, a gateway's own
    // 403 in JSON): the tokens stay, and the next call tries again.
    if (response.status === 401 && (await replaceTokens(tokens.refresh, null))) loginEnded();
    throw new Problem(response.status, body);
  }
  const renewed = tokensIn(body);
  if (!(await replaceTokens(tokens.refresh, { access: renewed.access_token, refresh: renewed.refresh_token }, profileOf(renewed)))) {
    throw new Problem(401, { detail: '已退出登录 · logged out' });
  }
}

function refresh(used) {
  if (!refreshing) {
    const locked = navigator.locks
      ? navigator.locks.request('wastetrack-refresh', () => renew(used))
      : renew(used);
    refreshing = locked.finally(() => { refreshing = null; });
  }
  return refreshing;
}

// fetch with the user's token; Offline when the network is unreachable (or `signal` aborted
// the request) or what answered is not the service, Problem on the service's error answer.
export async function call(path, options = {}) {
  return (await exchange(path, options)).answer;
}

// Every row of a list: a paged one (its path asks for `limit=`) page by page, each page's
// `Link: <…>; rel="next"` header naming the next one, the last page none. The API refuses a
// query parameter a route does not take, so only the caller knows to ask for a page size.
export async function callAll(path) {
  const rows = [];
  for (let next = path; next;) {
    const page = await exchange(next);
    if (!Array.isArray(page.answer)) throw new Offline('not the service');
    rows.push(...page.answer);
    next = page.next;
  }
  return rows;
}

function nextPage(response) {
  const link = response.headers.get('Link') || '';
  const found = /<([^>]+)>;\s*rel="next"/.exec(link);
  return found ? found[1] : null;
}

async function exchange(path, { method = 'GET', json, form, signal } = {}) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const tokens = await getKv('tokens');
    const headers = { Accept: 'application/json' };
    if (tokens) headers.Authorization = `Bearer ${tokens.access}`;
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    let response;
    try {
      response = await send(path, { method, headers, body, signal });
    } catch (error) {
      throw new Offline(String(error));
    }
    if (response.status === 401 && attempt === 0 && tokens && tokens.refresh) {
      try {
        await refresh(tokens.access);
      } catch (error) {
        if (!(error instanceof Problem)) throw new Offline(String(error));
        // A renewal refused (401) ended the login: this call's own answer (401) stands; any
        // other answer to it is the call's answer (a busy server's says to try again later).
        throw error;
      }
      continue;
    }
    const answer = await answerOf(response);
    if (!response.ok) throw new Problem(response.status, answer);
    return { answer, next: nextPage(response) };
  }
  throw new Problem(401, { detail: '请重新登录 · please log in again' });
}

// Log-out ends this login on the server too (RFC 7009), when the network answers within a few
// seconds: offline or refused, the phone forgets its tokens all the same.
export async function endLogin() {
  const tokens = await getKv('tokens');
  if (tokens && tokens.refresh && navigator.onLine) {
    try {
      await send('/m/v1/auth/logout', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: tokens.refresh }),
      }, 5000);
    } catch (error) { /* offline or slow: the login ends with its refresh token's expiry */ }
  }
  await setKv('tokens', null);
  await setKv('profile', null);
}

export async function profile() { return getKv('profile'); }
export async function loggedIn() { return Boolean(await getKv('tokens')); }
