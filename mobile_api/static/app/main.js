// The collector's phone: log in, scan, record each action into a durable queue, sync it.
import { call, callAll, endLogin, logIn, loggedIn, Offline, Problem, profile, session } from './api.js';
import { checkTyped } from './checkchar.js';
import { codeOf } from './codes.js';
import { Scanner } from './scanner.js';
import {
  answersSoFar, correctEntry, dropEntry, enqueue, entries, entriesIn, entriesNaming, getEntry, getKv, getRef, leave,
  putPhoto, setKv, setRef,
} from './store.js';
import { mine, stopSync, syncNow } from './sync.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['login-view', 'scan-view', 'result-view', 'round-view', 'queue-view'];
const UNITS = { kg: '千克 kg', count: '件 count', m3: '立方米 m³' };
const OUTCOMES = { accepted: '接收 accepted', partially_accepted: '部分接收 partly accepted', rejected: '拒收 rejected' };
const STATUS = {
  pending: '待同步 pending',
  applied: '已记录 applied',
  duplicate: '已记录（重复） duplicate',
  conflict: '冲突 conflict',
  rejected: '被拒 rejected',
};
// Forms the app offers for these scan actions; the others (corrections) stay with the API.
const FORM_ACTIONS = ['tagged', 'collected', 'handed_over', 'in_transit', 'stored', 'received', 'treated', 'cancelled', 'pickup', 'delivery'];
const OFFLINE_ACTIONS = ['collected', 'handed_over', 'in_transit', 'stored'];

let labels = { events: {}, states: {} };
let me = null;
let scanner = null;
let current = null; // the scan being acted on: {qr, found, offline, since}
let round = null; // {load: {qr, code, found}, bags: [{qr, code, found, pin}]}

// ---- small helpers -------------------------------------------------------------------------

let shown = null; // the view on screen
let moves = 0; // how many times the screen changed: an answer awaited on one is dropped on another
let asked = 0; // the look-ups asked: an answer to one asked before the latest is dropped

function show(view) {
  for (const id of VIEWS) $(id).hidden = id !== view;
  // A reading camera hands its code to the view that started it (a scan looks the code up, a
  // round adds it): leaving that view stops it, and what it read is no longer shown there.
  if (view !== shown) {
    if (scanner) scanner.stop();
    moves += 1;
  }
  shown = view;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) node.append(child);
  return node;
}

function status(text) { $('status').textContent = text; }

function eventLabel(type) {
  if (type === 'pickup') return '上门收集 pickup';
  if (type === 'delivery') return '船舶送交 delivery';
  return labels.events[type] || type;
}

function stateLabel(state) { return labels.states[state] || state; }
// Times as the city reads them (its zone comes with the labels), whatever zone the phone is set
// to: shown, and typed into a form, in the city's wall-clock time.
function cityTime(iso) {
  const zone = labels.timezone ? { timeZone: labels.timezone } : {};
  return new Date(iso).toLocaleString('zh-CN', zone);
}
// How far the city's clock is ahead of UTC at an instant, in ms (the phone's own zone without one).
function cityOffset(instant) {
  if (!labels.timezone) return -instant.getTimezoneOffset() * 60000;
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: labels.timezone, hourCycle: 'h23', year: 'numeric', month: 'numeric',
    day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(instant);
  const v = Object.fromEntries(parts.map((p) => [p.type, Number(p.value)]));
  const wall = Date.UTC(v.year, v.month - 1, v.day, v.hour, v.minute, v.second);
  return wall - Math.floor(instant.getTime() / 1000) * 1000;
}
// An instant as a datetime-local input holds it, in the city's time, to the second ('' if none).
function cityInput(iso) {
  const instant = new Date(iso);
  if (Number.isNaN(instant.getTime())) return '';
  return new Date(instant.getTime() + cityOffset(instant)).toISOString().slice(0, 19);
}
// The instant a datetime-local value names in the city's time, ISO 8601 in UTC.
function fromCityInput(text) {
  const wall = Date.parse(`${text.length === 16 ? `${text}:00` : text}Z`);
  return new Date(wall - cityOffset(new Date(wall))).toISOString();
}

async function reference(name) { return ((await getRef(name)) || { items: [] }).items; }

async function categoryName(key) {
  const found = (await reference('categories')).find((c) => c.key === key);
  return found ? `${found.name_zh} ${found.name_en} (${found.waste_code || found.code})` : key;
}

async function streamName(code) {
  const found = (await reference('streams')).find((s) => s.code === code);
  return found ? `${found.name_zh} ${found.name_en}` : code;
}

// A refusal of what the user typed, naming the field (its label) and why.
class FieldError extends Error {
  constructor(field, message) { super(`${field}: ${message}`); this.field = field; }
}

// A number as typed: digits with one decimal point; full-width forms read as their ASCII ones.
// Never guessed: a comma (a decimal or a thousands separator?), a sign, an exponent or a
// Chinese numeral is refused, naming the field (`label`). Empty: null.
function decimal(value, label) {
  const text = String(value ?? '').normalize('NFKC').trim();
  if (text === '') return null;
  if (!/^(\d+(\.\d+)?|\.\d+)$/.test(text)) {
    throw new FieldError(label, `请填数字，小数用点，如 7.5 · type a number with a decimal point, such as 7.5 (not ${text})`);
  }
  return text;
}

// The input a number is typed in: text, so that what was typed reaches `decimal` as typed (a
// number input drops a comma or a Chinese numeral without a word), with the decimal keypad.
function numberInput(attributes = {}) {
  return el('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', ...attributes });
}

// The phone's position when the user has granted it, within three seconds; none otherwise.
function position() {
  if (!navigator.geolocation) return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 3000);
    navigator.geolocation.getCurrentPosition(
      (p) => { clearTimeout(timer); resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude }); },
      () => { clearTimeout(timer); resolve(null); },
      { enableHighAccuracy: true, timeout: 3000, maximumAge: 60000 },
    );
  });
}

// A photo downscaled to at most 1600 px and re-encoded as JPEG, kept until the next sync and
// named by the SHA-256 of its bytes (the photo route stores it under the same hash).
async function keepPhoto(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.8));
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  const sha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  await putPhoto(sha256, blob);
  return { sha256, preview: canvas.toDataURL('image/jpeg', 0.6) };
}

// Device times strictly increase, so the server applies a round's events in the order made;
// a clock read more than a second before its last reading was set right, not jittering: its
// time is taken. (The last reading, not the last time given, which a round's bumps push on.)
let lastTime = 0;
let lastClock = 0;
function deviceTime() {
  const now = Date.now();
  lastTime = now > lastTime || lastClock - now > 1000 ? now : lastTime + 1;
  lastClock = now;
  return new Date(lastTime).toISOString();
}

// ---- network state, reference data and sync ------------------------------------------------

function paintNetwork() {
  const online = navigator.onLine;
  $('net').textContent = online ? '在线 online' : '离线 offline';
  $('net').classList.toggle('offline', !online);
}

async function versionOf(items) {
  const bytes = new TextEncoder().encode(JSON.stringify(items));
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest).slice(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// The city's names and time zone (labels.json, which the service worker serves offline too): a
// step of its own, first, so that no answer from the API keeps the phone on its own zone.
async function refreshLabels() {
  try {
    const response = await fetch('/app/labels.json');
    if (!response.ok) return;
    const fresh = await response.json();
    labels = fresh;
    await setRef('labels', { version: await versionOf(fresh), items: fresh });
  } catch (error) { /* offline and not cached: the kept names stay */ }
}

// What the server answered is kept for the login that asked for it (`asker`, this tab's `me`
// when it asked): an answer that comes after its user logged out, even if they logged in again
// meanwhile, or after the login ended and another user's log-in emptied the phone (the profile
// kept is then none, or theirs), is kept for nobody.
async function keepFor(asker, write) {
  if (!me || me !== asker) return false;
  const kept = await profile();
  if (!kept || kept.user_id !== asker.user_id) return false;
  await write();
  return true;
}

function keepRef(name, value, asker) {
  return keepFor(asker, () => setRef(name, value));
}

// The reference data the forms need, each kept with a version (a hash of its content).
async function refreshReference() {
  if (!me) return;
  const asker = me;
  await refreshLabels();
  const sources = {
    streams: '/m/v1/catalog/streams',
    categories: '/m/v1/catalog/categories',
    methods: '/m/v1/catalog/methods',
    vessels: '/admin/v1/vessels?limit=500',
    agreements: '/admin/v1/service-agreements?limit=500',
    vehicles: '/m/v1/vehicles?limit=500',
  };
  if (me && ['manager', 'admin'].includes(me.role)) {
    sources.organizations = '/admin/v1/organizations?limit=500';
    sources.sites = '/admin/v1/sites?limit=500';
  }
  if (me && me.role === 'port_operator') sources.berths = `/m/v1/ports/${me.organization_id}/berths`;
  let changed = 0;
  for (const [name, path] of Object.entries(sources)) {
    try {
      const listed = await callAll(path);
      const old = await getRef(name);
      // The vessels looked up by registration number (a visiting vessel, which the port may not
      // list) stay kept with the listed ones, to be offered offline too.
      const lookedUp = (name === 'vessels' && old && old.looked_up) || [];
      const items = withVessels(listed, lookedUp);
      const version = await versionOf(items);
      if (!old || old.version !== version) changed += 1;
      const kept = { version, fetched_at: new Date().toISOString(), items };
      if (lookedUp.length) kept.looked_up = lookedUp;
      if (!(await keepRef(name, kept, asker))) return;
    } catch (error) {
      if (error instanceof Offline) return;
      if (!(error instanceof Problem) || error.status !== 403) throw error;
    }
  }
  await setKv('reference_checked', new Date().toISOString());
  if (changed) status(`参考数据已更新 reference data updated (${changed})`);
}

// `vessels` with `more` the list lacks (by id) after them.
function withVessels(vessels, more) {
  const ids = new Set(vessels.map((v) => v.id));
  return [...vessels, ...more.filter((v) => !ids.has(v.id))];
}

// A vessel looked up by its registration number, kept in the `vessels` reference (and across
// its refreshes, see refreshReference): the delivery form offers it from then on, offline too.
async function keepVessel(vessel, asker) {
  const old = (await getRef('vessels')) || { items: [] };
  const listed = old.items.some((v) => v.id === vessel.id) && !(old.looked_up || []).some((v) => v.id === vessel.id);
  const items = withVessels(old.items.map((v) => (v.id === vessel.id ? vessel : v)), [vessel]);
  const kept = { ...old, version: await versionOf(items), items };
  // One the port lists comes again with the list; another is kept as looked up.
  if (!listed) kept.looked_up = [...(old.looked_up || []).filter((v) => v.id !== vessel.id), vessel];
  await keepRef('vessels', kept, asker);
}

async function paintQueueCount() {
  const pending = (await entriesIn(['pending'])).filter((e) => !me || mine(e, me)).length;
  $('queue-count').textContent = String(pending);
  return pending;
}

// A sync that did not go through (no network though the phone says online, a busy or failing
// server) is tried again while any of the user's records wait: after 30 s, doubling up to 10
// min; one that went through starts the wait afresh. Coming back to the app tries at once.
const RETRY_FIRST = 30 * 1000;
const RETRY_MOST = 10 * 60 * 1000;
let retryDelay = RETRY_FIRST;
let retryTimer = null;

function retryLater(failed, waiting) {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (!failed) retryDelay = RETRY_FIRST;
  if (!waiting) return;
  retryTimer = setTimeout(() => { retryTimer = null; sync(); }, retryDelay);
  if (failed) retryDelay = Math.min(retryDelay * 2, RETRY_MOST);
}

function stopRetrying() {
  clearTimeout(retryTimer);
  retryTimer = null;
  retryDelay = RETRY_FIRST;
}

async function sync() {
  if (!(await loggedIn())) {
    // Logged in here, yet the login is gone: ended in another tab (a browser without
    // BroadcastChannel did not say so) or cleared by it. Said, never a silent no-op.
    if (me) showLoginEnded();
    return;
  }
  $('sync-status').textContent = '同步中… syncing';
  let failed = true;
  try {
    const done = await syncNow();
    failed = done === null;
    if (done === null) {
      $('sync-status').textContent = '离线，稍后同步 offline: will sync when online';
    } else {
      $('sync-status').textContent = `已同步 ${done.sent} 条，被拒 ${done.refused} 条 synced ${done.sent}, refused ${done.refused}`;
      // A refusal needs the collector: said where they are, not only in the queue.
      if (done.refused) status(`${done.refused} 条被拒，请在队列中修改 ${done.refused} refused: see the queue`);
    }
  } catch (error) {
    $('sync-status').textContent = `同步失败 sync failed: ${error.message}`;
  }
  const waiting = await paintQueueCount();
  if (me && (await loggedIn())) retryLater(failed, waiting > 0);
  if (!$('queue-view').hidden) await paintQueue();
}

async function record(body, summary, userId = me.user_id) {
  await enqueue(body, summary, userId);
  status(`已保存，待同步 saved to the queue: ${summary}`);
  await paintQueueCount();
  if (navigator.onLine) sync();
}

// ---- log in and out ------------------------------------------------------------------------

// A shared phone: records another user left are theirs to send; said last, so it stays shown.
async function noteOthers() {
  const others = (await entriesIn(['pending'])).filter((e) => !mine(e, me)).length;
  if (others) status(`本机还有他人的 ${others} 条未同步记录，待其登录后同步 ${others} records of another user wait for them`);
}

// The queue lives in the browser's storage, which the browser may clear when space runs low
// unless the site's storage is persistent: asked once logged in, the user warned if refused.
async function keepStorage() {
  if (!navigator.storage || !navigator.storage.persist) return;
  const kept = (await navigator.storage.persisted()) || (await navigator.storage.persist());
  $('storage-warning').hidden = kept;
}

async function start() {
  paintNetwork();
  const cached = await getRef('labels');
  if (cached) labels = cached.items;
  if (!labels.timezone) refreshLabels();
  if (!(await loggedIn())) {
    show('login-view');
    return;
  }
  me = await profile();
  $('who').textContent = me.username;
  $('logout').hidden = false;
  show('scan-view');
  keepStorage().catch(() => {});
  await paintQueueCount();
  await noteOthers();
  if (navigator.onLine) {
    refreshReference().catch((error) => status(error.message)).finally(noteOthers);
    sync();
  }
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    me = await logIn($('username').value.trim(), $('password').value);
  } catch (error) {
    $('login-error').textContent = error instanceof Offline
      ? '离线时无法登录 · cannot log in offline'
      : `登录失败 · ${error.message}`;
    return;
  }
  $('password').value = '';
  await start();
});

// The login has ended without a log-out (the server refused to renew it: revoked, or expired
// after a long time offline): the user logs in again, and what they recorded stays queued for
// their next login.
function showLoginEnded() {
  if (me) $('username').value = me.username;
  stopRetrying();
  $('who').textContent = '';
  $('logout').hidden = true;
  $('login-error').textContent = '登录已失效，请重新登录；记录仍保存在本机 · your login has ended: log in again, your records are kept';
  show('login-view');
}
session.addEventListener('ended', showLoginEnded);

$('logout').addEventListener('click', async () => {
  // Not yet applied: waiting to be sent, or refused and waiting for a correction. Only the
  // user's own go; another user's records stay on a shared phone for them.
  const open = ['pending', 'rejected', 'conflict'];
  const all = await entries();
  const waiting = all.filter((e) => mine(e, me) && open.includes(e.status)).length;
  const others = all.filter((e) => !mine(e, me)).length;
  const kept = others ? `\n他人的 ${others} 条记录保留在本机。${others} records of other users stay on the phone for them.` : '';
  if (waiting && !window.confirm(`您还有 ${waiting} 条未同步或被拒的记录，退出将删除。Log out and delete your ${waiting} records not applied?${kept}`)) return;
  const leaving = me;
  stopRetrying();
  // The sync running stops first (its request aborted): no late answer writes back the
  // records about to go, and no later request goes with whoever logs in next.
  await stopSync();
  await endLogin();
  me = null; // before the phone is emptied: a late answer keeps nothing for nobody (keepFor)
  await leave((e) => mine(e, leaving));
  $('who').textContent = '';
  $('logout').hidden = true;
  $('storage-warning').hidden = true;
  $('login-error').textContent = '';
  show('login-view');
  if (others) status(`他人的 ${others} 条记录保留在本机 · ${others} records of other users stay on the phone`);
});

// ---- scanning ------------------------------------------------------------------------------

function startCamera(onCode) {
  scanner = scanner || new Scanner($('video'), $('frame'));
  return scanner.start(onCode).then(
    () => { $('reader').textContent = `识别方式 reader: ${scanner.reader}`; },
    (error) => { $('scan-error').textContent = `无法打开相机 camera unavailable: ${error.message}`; },
  );
}

$('camera').addEventListener('click', () => {
  $('scan-error').textContent = '';
  startCamera((text) => lookUp(text));
});

$('typed-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const checked = checkTyped($('typed').value);
  $('typed-error').textContent = checked.error || '';
  if (checked.code) lookUp(checked.code);
});

async function scanQr(qr) {
  let found;
  let offline = false;
  try {
    const asker = me;
    const after = await answersSoFar(); // the sync answers the server's answer may not show
    found = { ...(await call(`/m/v1/scan?qr=${encodeURIComponent(qr)}`)), kept_after: after };
    await keepScan(qr, found, asker);
  } catch (error) {
    if (!(error instanceof Offline)) throw error;
    found = (await keptScan(qr)) || (await keptBerth(qr));
    offline = true;
  }
  return { qr, found, offline, since: await recordedSince(qr, found) };
}

// What the server answered, kept under every code it goes by (the code scanned, its batch's
// code and a drum's HJ 1276 identifier), with how many sync answers the phone had taken when
// it was asked (`kept_after`): a record answered later may not show in it.
function keepScan(qr, found, asker) {
  return keepFor(asker, async () => {
    for (const code of namesOf(qr, found)) await setKv(`scan:${code}`, found);
  });
}

// Every code a scanned text and the server's answer to it name, one way (codeOf).
function namesOf(qr, found) {
  const named = found && (found.batch || found.label || found.berth || found.site);
  const texts = [qr, ...(named ? [named.code, named.identifier] : [])];
  return [...new Set(texts.filter(Boolean).map(codeOf))];
}

// The logged-in user's own records on a code that the answer the phone has does not show:
// waiting to be sent, or answered after the answer was asked for (an answer kept before
// answers were numbered shows none). A refused record changed nothing, and another user's
// waits for them. What the phone knows of a code is that answer and these: a label it tagged
// as a round's load is no longer unused, though the kept answer says so.
async function recordedSince(qr, found) {
  const after = found && found.kept_after !== undefined ? found.kept_after : -1;
  const shown = (e) => e.status === 'pending'
    || (['applied', 'duplicate'].includes(e.status) && (e.answered || 0) > after);
  return (await entriesNaming(namesOf(qr, found)))
    .filter((e) => me && mine(e, me) && shown(e))
    .map((e) => e.body);
}

// What the phone learned of a code by an earlier scan. The app kept it under the text scanned
// before it kept it under the code: such an answer is found once there and moved.
async function keptScan(qr) {
  const code = codeOf(qr);
  const found = await getKv(`scan:${code}`);
  if (found || code === qr) return found;
  const before = await getKv(`scan:${qr}`);
  if (before) await setKv(`scan:${code}`, before);
  return before;
}

// A plate of one of the port's own berths, which the phone keeps for the forms, opens the
// delivery form offline as it does online (the server listed the berths as the port's).
async function keptBerth(qr) {
  const code = codeOf(qr);
  const berth = (await reference('berths')).find((b) => b.code === code);
  return berth ? { kind: 'berth', berth, actions: ['delivery'] } : null;
}

// Why a code was not looked up: no such code only when the service says so (404); any other
// refusal (a login ended, a busy service) in the service's own words.
function lookUpFailed(error) {
  if (error instanceof Problem && error.status === 404) return `查无此码 · ${error.message}`;
  return `查询失败 · look-up failed · ${error.message}`;
}

async function lookUp(qr) {
  $('scan-error').textContent = '';
  const on = moves;
  const ask = ++asked;
  // Shown only while it is the latest code asked and the user is still where it was asked:
  // gone elsewhere meanwhile (a round, say), the answer is dropped.
  const wanted = () => ask === asked && moves === on;
  let found;
  try {
    found = await scanQr(qr);
  } catch (error) {
    if (!wanted()) return;
    $('scan-error').textContent = lookUpFailed(error);
    show('scan-view');
    return;
  }
  if (!wanted()) return;
  current = found;
  await paintResult();
}

// What a scanned or typed text names, one way: the code of a label's QR URL, or the text as
// typed, without blanks or hyphens, in upper case. The phone keeps what it learned of a code
// under it, so a bag scanned by camera is known when its 9 characters are typed, and back.
async function paintResult() {
  const { found, offline, qr, since } = current;
  const summary = $('summary');
  summary.replaceChildren();
  const card = el('div', { class: 'card' });
  const rows = [];
  // Once the phone recorded on the code past what the server answered, the answer's actions
  // are no longer the code's: the usual field actions are offered, checked on sync.
  let actions = since.length ? OFFLINE_ACTIONS : found && found.actions;
  if (since.length) {
    const done = [...new Set(since.map((body) => body.event_type))].map(eventLabel).join('、');
    card.append(el('p', { class: 'hint', text: `本机已记录、待核对 · recorded on this phone since: ${done}` }));
  }
  if (!found) {
    card.append(el('p', { text: `离线：暂不能查询此码，可先记录，联网后核对。Offline: recorded now, checked on sync. (${codeOf(qr)})` }));
    actions = OFFLINE_ACTIONS;
  } else {
    if (offline) card.append(el('p', { class: 'hint', text: '离线：显示上次查询结果 · offline: last known' }));
    if (found.kind === 'batch') {
      const b = found.batch;
      rows.push(['批次 Batch', b.code], ['状态 State', stateLabel(b.state)],
        ['类别 Category', await categoryName(b.category)], ['废物流 Stream', await streamName(b.stream)],
        ['数量 Quantity', `${b.quantity} ${UNITS[b.unit] || b.unit}`], ['贴标 Tagged', cityTime(b.tagged_at)]);
    } else if (found.kind === 'label') {
      rows.push(['空白标签 Unused label', found.label.code], ['废物流 Stream', await streamName(found.label.stream)]);
    } else if (found.kind === 'berth') {
      rows.push(['泊位 Berth', found.berth.name], ['编码 Code', found.berth.code]);
    } else if (found.kind === 'site') {
      rows.push(['收集点 Collection point', found.site.name], ['编码 Code', found.site.code || '']);
    }
    const list = el('dl');
    for (const [term, value] of rows) list.append(el('dt', { text: term }), el('dd', { text: value }));
    card.append(list);
  }
  summary.append(card);
  const buttons = $('actions');
  buttons.replaceChildren();
  const offered = actions.filter((a) => FORM_ACTIONS.includes(a));
  for (const action of offered) {
    const button = el('button', { type: 'button', class: 'primary', 'data-action': action, text: eventLabel(action) });
    button.addEventListener('click', () => openForm(action));
    buttons.append(button);
  }
  if (!offered.length) buttons.append(el('p', { class: 'hint', text: '您在此无可做的操作 · nothing you may record here' }));
  $('action-form').hidden = true;
  show('result-view');
  // A berth or collection-point plate opens its form at once.
  if (found && ['berth', 'site'].includes(found.kind) && offered.length === 1) openForm(offered[0]);
}

$('back').addEventListener('click', () => show('scan-view'));

// ---- the action forms ----------------------------------------------------------------------

function field(name, text, input) {
  input.name = name;
  input.id = `f-${name}`;
  return el('label', { for: input.id }, text, input);
}

function select(options, { blank } = {}) {
  const node = el('select');
  if (blank !== undefined) node.append(el('option', { value: '', text: blank }));
  for (const [value, text] of options) node.append(el('option', { value, text }));
  return node;
}

async function organizations() {
  const known = new Map();
  for (const o of await reference('organizations')) known.set(o.id, `${o.name} (#${o.id})`);
  for (const a of await reference('agreements')) {
    for (const id of [a.provider_organization_id, a.client_organization_id]) {
      if (!known.has(id)) known.set(id, `#${id}`);
    }
  }
  const b = current && current.found && current.found.batch;
  if (b) {
    for (const id of [b.producer_id, b.holder_id, b.carrier_id, b.destination_id]) {
      if (id && !known.has(id)) known.set(id, `#${id}`);
    }
  }
  const l = current && current.found && current.found.label;
  if (l && !known.has(l.organization_id)) known.set(l.organization_id, `#${l.organization_id}`);
  if (me) known.delete(me.organization_id);
  return [...known.entries()].map(([id, text]) => [String(id), text]);
}

async function categoriesOf(stream) {
  return (await reference('categories'))
    .filter((c) => !stream || c.stream === stream)
    .map((c) => [c.key, `${c.name_zh} ${c.name_en}${c.waste_code ? ` (${c.waste_code})` : ''}`]);
}

async function openForm(action) {
  const form = $('action-form');
  form.replaceChildren(el('h2', { text: eventLabel(action) }));
  form.dataset.action = action;
  const found = current.found;
  const stream = found && (found.batch ? found.batch.stream : found.label ? found.label.stream : null);
  const add = (...nodes) => form.append(...nodes);
  if (action === 'tagged') {
    const streamCode = stream || 'household';
    const unit = ((await reference('streams')).find((s) => s.code === streamCode) || {}).default_unit || 'kg';
    add(field('category', '类别 Category', select(await categoriesOf(streamCode))));
    add(field('quantity', '数量 Quantity', numberInput({ required: true })));
    const units = select(Object.entries(UNITS));
    units.value = unit;
    add(field('unit', '单位 Unit', units));
    const producer = select(await organizations(), { blank: '本单位 my organization' });
    // Another organization's pre-printed label tags that organization's waste.
    const owner = found && found.label ? found.label.organization_id : null;
    if (owner && !(me && owner === me.organization_id)) producer.value = String(owner);
    add(field('producer_organization_id', '产生单位 Producer (optional)', producer));
  }
  if (action === 'handed_over') {
    add(field('to_organization_id', '交给 To organization', select(await organizations())));
  }
  if (action === 'in_transit') {
    add(field('destination_organization_id', '目的地 Destination (optional)', select(await organizations(), { blank: '—' })));
  }
  if (action === 'received') {
    add(field('outcome', '结果 Outcome', select(Object.entries(OUTCOMES))));
    add(field('refused_kg', '拒收重量 Refused kg (if partly accepted)', numberInput()));
    add(field('reason', '原因 Reason (if rejected)', el('input')));
  }
  if (action === 'treated') {
    const methods = (await reference('methods')).map((m) => [m.code, `${m.code} ${m.name_zh} ${m.name_en}`]);
    add(field('method', '处置方式 Method', select(methods)));
  }
  if (action === 'cancelled') add(field('reason', '作废原因 Reason', el('input', { required: true })));
  if (['collected', 'in_transit', 'handed_over'].includes(action)) {
    // The carrier's vehicle: its registered plates offered, any plate typed (the server checks it).
    const plates = el('datalist', { id: 'vehicle-plates' });
    for (const v of await reference('vehicles')) if (!v.retired_at) plates.append(el('option', { value: v.plate }));
    add(field('vehicle_plate', '车牌 Vehicle plate', el('input', { list: 'vehicle-plates', maxlength: '16', autocapitalize: 'characters' })), plates);
  }
  if (action === 'collected') {
    // A producer without the app confirms the collection with a one-time PIN from its printed
    // list (a handover is recorded by the giver: from the producer's hands, its own record).
    add(field('producer_pin', '产生单位确认码 Producer PIN', el('input', { inputmode: 'numeric', pattern: '\\d{6}', maxlength: '6', autocomplete: 'off' })));
  }
  if (action === 'pickup') {
    add(field('category', '类别 Category', select(await categoriesOf('household'))));
    add(field('quality_passed', '分类合格 Sorted correctly', select([['', '未检查 not checked'], ['yes', '合格 passed'], ['no', '不合格 failed']])));
    add(field('contamination_share', '混入比例 Contamination share (0–1)', numberInput()));
  }
  if (action === 'delivery') {
    // The vessels kept on the phone (the port's own, and those looked up before) are offered,
    // none chosen: a visiting vessel's waste is never filed under the first one by default.
    // Any other vessel is looked up by its registration number (the API finds any vessel for a
    // port operator, since a port receives every vessel's waste).
    const vessels = select((await reference('vessels')).map(vesselOption), { blank: '— 请选择船舶 choose the vessel —' });
    add(field('vessel_id', '船舶 Vessel', vessels));
    const registration = el('input', { maxlength: '64', autocomplete: 'off', enterkeyhint: 'search' });
    const lookUp = el('button', { type: 'button', id: 'vessel-lookup', text: '查找 Look up' });
    const said = el('p', { id: 'vessel-found', class: 'hint', role: 'status' });
    add(el('div', { class: 'lookup' }, field('registration_number', '船舶登记号 Registration number', registration), lookUp), said);
    lookUp.addEventListener('click', () => lookUpVessel(form, vessels, registration, said));
    registration.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault(); // Enter looks the vessel up, it records nothing
      lookUpVessel(form, vessels, registration, said);
    });
    add(field('category', '类别 Category', select(await categoriesOf('marine'))));
    add(field('volume_m3', '体积 Volume (m³)', numberInput()));
  }
  if (action !== 'cancelled') {
    const required = action === 'pickup';
    add(field('weight_kg', '称重 Weight (kg)', numberInput({ required })));
  }
  if (!['pickup', 'delivery'].includes(action)) add(field('note', '备注 Note', el('input', { maxlength: '1000' })));
  form.photoKept = null; // the chosen photo's hash, to come (null: no photo chosen)
  // A photo is offered only where the record carries it: a custody event's own, a pickup's
  // sorting check's (so only once a check is chosen); a delivery carries none.
  if (action !== 'delivery') {
    const photo = el('input', { type: 'file', accept: 'image/*', capture: 'environment' });
    const preview = el('img', { class: 'photo-preview', alt: '', hidden: true });
    // Keeping a photo (decoding, resizing, hashing) takes a second or more on a slow phone: a
    // tap on Record meanwhile waits for the photo chosen before it (recordAction), and a photo
    // kept after its form was closed, or after it was let go, goes to no form.
    photo.addEventListener('change', () => {
      if (!photo.files.length) return;
      const keeping = keepPhoto(photo.files[0]).then((kept) => {
        if (!photo.isConnected || form.photoKept !== keeping) return null;
        preview.src = kept.preview;
        preview.hidden = false;
        return kept.sha256;
      }).catch(() => null); // a file the phone cannot read as an image: the record goes without it
      form.photoKept = keeping;
    });
    const label = action === 'pickup' ? '检查照片 Photo of the sorting check (optional)' : '照片 Photo (optional)';
    const wrapped = field('photo', label, photo);
    add(wrapped, preview);
    if (action === 'pickup') {
      // No check, no photo: the choice made before the check was set back to none is let go.
      const check = form.elements.quality_passed;
      const offer = () => {
        const checked = Boolean(check.value);
        wrapped.hidden = !checked;
        if (checked) return;
        form.photoKept = null;
        photo.value = '';
        preview.hidden = true;
        preview.removeAttribute('src');
      };
      check.addEventListener('change', offer);
      offer();
    }
  }
  add(el('p', { id: 'form-error', class: 'error', role: 'alert' }));
  add(el('button', { type: 'submit', id: 'save', class: 'primary', text: '记录 Record' }));
  form.hidden = false;
}

function vesselOption(v) { return [String(v.id), `${v.name} ${v.registration_number}`]; }

// The delivery form's vessel by its registration number (exact, trimmed): online, asked of the
// API, chosen and kept on the phone; offline, found among the vessels kept on the phone, or
// the user is told that a vessel not on the phone needs the network. Not found: none chosen.
async function lookUpVessel(form, vessels, registration, said) {
  const number = registration.value.trim();
  const tell = (text, error = false) => {
    said.textContent = text;
    said.className = error ? 'error' : 'hint';
  };
  if (!number) {
    tell('请输入船舶登记号 · type the registration number', true);
    return;
  }
  const asking = (form.vesselAsked = (form.vesselAsked || 0) + 1);
  const asker = me;
  // An answer is the form's that asked it, the last asked's and its login's: a form closed or
  // asked again, or a log-out, meanwhile takes none.
  const stale = () => !vessels.isConnected || form.vesselAsked !== asking || !me || me !== asker;
  tell(`查找中… looking up ${number}…`);
  let vessel;
  let offline = false;
  try {
    const rows = await callAll(`/admin/v1/vessels?registration_number=${encodeURIComponent(number)}`);
    vessel = rows.find((v) => v.registration_number === number);
    if (vessel && !stale()) await keepVessel(vessel, asker);
  } catch (error) {
    if (stale()) return;
    if (error instanceof Problem) {
      vessels.value = '';
      tell(`查找失败 · the look-up was refused (${error.status}): ${error.message}`, true);
      return;
    }
    if (!(error instanceof Offline)) throw error;
    offline = true;
    vessel = (await reference('vessels')).find((v) => v.registration_number === number);
  }
  if (stale()) return;
  if (!vessel) {
    vessels.value = '';
    tell(offline
      ? `离线：查找手机上没有的船舶需要联网，可从已保存的船舶中选择 · Offline: looking up a vessel not kept on the phone needs the network; the vessels kept on the phone can still be chosen (${number})`
      : `未找到登记号为 ${number} 的船舶 · no vessel is registered as ${number}`, true);
    return;
  }
  const [value, text] = vesselOption(vessel);
  const option = [...vessels.options].find((o) => o.value === value);
  if (option) option.textContent = text;
  else vessels.append(el('option', { value, text }));
  vessels.value = value;
  tell(`已选择 chosen: ${text}`);
}

$('action-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector('button[type=submit]');
  // A second tap while the position is read would record the action twice.
  if (button.disabled) return;
  button.disabled = true;
  $('form-error').textContent = '';
  try {
    await recordAction(form);
  } catch (error) {
    if (!(error instanceof FieldError)) throw error;
    $('form-error').textContent = error.message; // nothing was recorded
  } finally {
    button.disabled = false;
  }
});

// A form field's name as the form labels it.
function labelOf(form, name) { return form.elements[name].closest('label').firstChild.textContent; }

// Everything the record names (the scan, the form's values, the user) is read at the tap,
// before the position is awaited (up to 3 s): a tap on Back and another scan meanwhile
// changes none of it.
async function recordAction(form) {
  const scan = current;
  const on = moves;
  const userId = me.user_id;
  const action = form.dataset.action;
  const value = (name) => (form.elements[name] ? form.elements[name].value : '');
  // A number as typed, refused (FieldError) naming the field as the form labels it.
  const number = (name) => decimal(value(name), labelOf(form, name));
  const body = { client_event_id: crypto.randomUUID() };
  const qr = scan.qr;
  const photoKept = form.photoKept;
  if (action === 'pickup') {
    Object.assign(body, { kind: 'pickup', site: qr, category: value('category'), weight_kg: number('weight_kg'), device_time: deviceTime() });
    if (value('quality_passed')) {
      const passed = value('quality_passed') === 'yes';
      const share = number('contamination_share');
      // A failed check's share is what was typed, never a share of 0 made up for it.
      if (share === null && !passed) throw new FieldError(labelOf(form, 'contamination_share'), '不合格须填混入比例 · a failed check needs its share (0–1)');
      body.quality = { passed, contamination_share: share || '0', photo_sha256: null };
    }
  } else if (action === 'delivery') {
    // No vessel chosen is refused here: never a delivery of vessel 0, nor of a vessel guessed.
    if (!value('vessel_id')) throw new FieldError(labelOf(form, 'vessel_id'), '请选择船舶，或输入登记号查找 · choose the vessel, or look it up by its registration number');
    const now = deviceTime();
    Object.assign(body, {
      kind: 'delivery', berth: qr, vessel_id: Number(value('vessel_id')), started_at: now, ended_at: now,
      lines: [{ category: value('category'), volume_m3: number('volume_m3'), mass_kg: number('weight_kg') }],
    });
  } else {
    Object.assign(body, { event_type: action, batch: qr, device_time: deviceTime() });
    for (const name of ['weight_kg', 'quantity', 'refused_kg']) if (value(name)) body[name] = number(name);
    for (const name of ['note', 'reason', 'outcome', 'method', 'category', 'unit', 'producer_pin', 'vehicle_plate']) if (value(name)) body[name] = value(name);
    for (const name of ['to_organization_id', 'destination_organization_id', 'producer_organization_id']) {
      if (value(name)) body[name] = Number(value(name));
    }
  }
  const photoSha = await photoKept;
  // A photo goes with its record, or the record is not made: a pickup carries one only in
  // its sorting check, a delivery none (its form offers no photo).
  if (photoSha && action === 'pickup' && !body.quality) {
    throw new FieldError(labelOf(form, 'photo'), '照片随分类检查记录，请选择检查结果 · a pickup\'s photo goes with its sorting check: choose the check');
  }
  if (photoSha && body.quality) body.quality.photo_sha256 = photoSha;
  else if (photoSha && action !== 'delivery') body.photo_sha256 = photoSha;
  const where = await position();
  if (!me || me.user_id !== userId) return; // logged out meanwhile: recorded for nobody
  if (where) Object.assign(body, where);
  await record(body, `${eventLabel(action)} · ${codeOf(qr)}`, userId);
  if (current !== scan) return; // another scan is on the screen now: it stays
  form.hidden = true;
  if (moves === on) show('scan-view'); // gone elsewhere meanwhile (a round, the queue): it stays
}

// ---- a carrier's round: bags into one load -------------------------------------------------

function paintRound() {
  $('round-load').textContent = round.load ? round.load.code : '—';
  const list = $('round-bags');
  list.replaceChildren();
  for (const [index, bag] of round.bags.entries()) {
    const remove = el('button', { type: 'button', text: '移除 Remove' });
    remove.addEventListener('click', () => { round.bags.splice(index, 1); paintRound(); });
    const item = el('li', { 'data-code': bag.code }, `${bag.code} `);
    if (toCollect(bag)) {
      // Optional: only a producer without the app confirms with a PIN (the server says when).
      const pin = el('input', {
        class: 'round-pin', 'aria-label': `产生单位确认码 Producer PIN · ${bag.code}`, placeholder: '确认码 PIN',
        inputmode: 'numeric', pattern: '\\d{6}', maxlength: '6', autocomplete: 'off',
      });
      pin.value = bag.pin || '';
      pin.addEventListener('input', () => { bag.pin = pin.value; });
      item.append(pin, ' ');
    }
    item.append(remove);
    list.append(item);
  }
  $('round-scan').textContent = round.load ? '扫袋 Scan a bag' : '扫装车标签 Scan the load label';
}

// A bag the round collects before it goes into the load: one the server offered to collect
// (still with its producer, tagged or back in its hands: the custody spec's rule, not a copy of
// it) or one the phone knows nothing of, which this phone has not moved on since (collected,
// handed over) itself.
function toCollect(bag) {
  const offered = !(bag.found && bag.found.batch) || (bag.found.actions || []).includes('collected');
  return offered && bag.since.every((body) => body.event_type === 'tagged');
}

$('round-start').addEventListener('click', async () => {
  round = { load: null, bags: [] };
  $('round-tag').hidden = true;
  $('round-error').textContent = '';
  $('round-plate').value = '';
  // The carrier's vehicle for the whole round: its registered plates offered, any plate typed.
  const plates = $('round-plates');
  plates.replaceChildren();
  const started = round;
  paintRound();
  show('round-view');
  const vehicles = await reference('vehicles');
  if (round !== started) return; // started again meanwhile: that one offers the plates
  for (const v of vehicles) if (!v.retired_at) plates.append(el('option', { value: v.plate }));
});

async function addToRound(qr) {
  $('round-error').textContent = '';
  const started = round;
  const scanned = await scanQr(qr).catch((error) => ({ error }));
  if (!started || round !== started) return; // the round was left, or another begun, meanwhile
  if (scanned.error) {
    $('round-error').textContent = lookUpFailed(scanned.error);
    return;
  }
  const { found, since } = scanned;
  const item = { qr, code: codeOf(qr), found, since };
  // A plate (a collection point's, a berth's) is no waste: a round takes batches and labels.
  if (found && !['batch', 'label'].includes(found.kind)) {
    $('round-error').textContent = '这是地点码，不是袋或装车标签 · a place\'s plate, not a bag or a load';
    return;
  }
  // An unused label names no batch yet: a bag is tagged before a round collects it, and a
  // load is tagged on the carrier's own stock (another's label is that producer's waste).
  // A code this phone tagged names a batch, whatever the answer kept from before said: the
  // waste of the producer the tagging named, else the user's own (as the server reads it), on
  // a label of the user's organization or of that producer (else the server refuses it).
  const tagging = since.find((body) => body.event_type === 'tagged');
  const tagged = Boolean(tagging);
  const label = found && found.kind === 'label' && !tagged ? found.label : null;
  const producer = tagging && Number(tagging.producer_organization_id || (me && me.organization_id));
  const owner = found && found.kind === 'label' ? found.label.organization_id : null;
  if (label && (round.load || !me || label.organization_id !== me.organization_id)) {
    $('round-error').textContent = round.load
      ? '未登记的标签：先贴标登记 · an unused label: tag the bag first'
      : '他单位的标签不能作装车标签 · another organization\'s label cannot be the load';
    return;
  }
  // A batch is the load only where the scan offers to pack into it (a load this organization
  // tagged itself, not another producer's waste): else Finish would queue a refused packing.
  const batch = found && found.kind === 'batch';
  // A load is the user's own organization's waste, on its own label.
  const notOurs = tagging && !(me && producer === me.organization_id && [null, producer].includes(owner));
  if (!round.load && ((batch && !(found.actions || []).includes('aggregated')) || notOurs)) {
    $('round-error').textContent = '此批次现不能装入废物（他单位的废物，或已装箱、已在途）· this batch takes no waste now: another producer\'s, or packed, or under way';
    return;
  }
  if (!round.load) {
    round.load = item;
    if (label || (!found && !tagged)) {
      // A new load on a pre-printed label is tagged first. Offline the app cannot tell a
      // new label from a batch: the user says which.
      const tag = $('round-tag');
      tag.replaceChildren(
        field('load_category', '装车类别 Load category', select(await categoriesOf(label ? label.stream : null))),
        field('load_quantity', '袋数或重量 Bags or weight', numberInput({ required: true })),
        field('load_unit', '单位 Unit', select(Object.entries(UNITS))),
      );
      if (!label) {
        const fresh = el('input', { type: 'checkbox', checked: true });
        tag.prepend(field('load_new', '离线未知：这是新标签，登记装车 Offline: a new label, tag the load', fresh));
      }
      tag.hidden = false;
    }
  } else if (item.code === round.load.code || round.bags.some((b) => b.code === item.code)) {
    $('round-error').textContent = '已扫过 · already in this round';
    return;
  } else {
    round.bags.push(item);
  }
  paintRound();
}

$('round-scan').addEventListener('click', () => startCamera((text) => addToRound(text)));

$('round-typed-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const checked = checkTyped($('round-typed').value);
  $('round-error').textContent = checked.error || '';
  if (checked.code) {
    $('round-typed').value = '';
    addToRound(checked.code);
  }
});

$('round-cancel').addEventListener('click', () => { round = null; show('scan-view'); });

$('round-finish').addEventListener('click', async () => {
  const button = $('round-finish');
  if (button.disabled) return; // a second tap would queue the round twice
  button.disabled = true;
  try {
    await finishRound();
  } finally {
    button.disabled = false;
  }
});

async function finishRound() {
  // The round as it stands at the tap: the position is awaited (up to 3 s) before it is
  // queued, and a new round or another scan meanwhile changes nothing of this one.
  const done = round;
  const on = moves;
  const userId = me.user_id;
  if (!done.load || !done.bags.length) {
    $('round-error').textContent = '请先扫装车标签和至少一袋 · scan the load and at least one bag';
    return;
  }
  const bags = done.bags.map((b) => ({ ...b }));
  const pins = bags.map((b) => (toCollect(b) ? (b.pin || '').trim() : ''));
  const wrong = bags.find((b, i) => pins[i] && !/^\d{6}$/.test(pins[i]));
  if (wrong) {
    $('round-error').textContent = `确认码为6位数字 · a producer PIN has 6 digits (${wrong.code})`;
    return;
  }
  const plate = $('round-plate').value.trim();
  const load = done.load.qr;
  const loadCode = done.load.code;
  const fresh = $('f-load_new');
  const tags = !$('round-tag').hidden && (!fresh || fresh.checked);
  let quantity = null;
  try {
    // The load's quantity is what was typed, in the unit chosen: never made up from the bag
    // count (2 bags are not 2 kg), so a load tagged here needs it.
    const named = '袋数或重量 Bags or weight';
    if (tags) quantity = decimal($('f-load_quantity').value, named);
    if (tags && quantity === null) throw new FieldError(named, '请填写装车数量 · type the load\'s quantity');
  } catch (error) {
    if (!(error instanceof FieldError)) throw error;
    $('round-error').textContent = error.message; // nothing is queued
    return;
  }
  const tagging = tags ? {
    quantity,
    category: $('f-load_category').value,
    unit: $('f-load_unit').value,
  } : null;
  const where = (await position()) || {};
  if (!me || me.user_id !== userId) return; // logged out meanwhile: recorded for nobody
  if (tagging) {
    await enqueue({
      client_event_id: crypto.randomUUID(), event_type: 'tagged', batch: load, device_time: deviceTime(),
      ...tagging, ...where,
    }, `${eventLabel('tagged')} · ${loadCode}`, userId);
  }
  // Each clinic's bag is collected on its own, then goes into the load whole.
  // The round's plate and the bag's PIN go with its collection, each only when typed.
  for (const [index, bag] of bags.entries()) {
    if (toCollect(bag)) {
      const body = { client_event_id: crypto.randomUUID(), event_type: 'collected', batch: bag.qr, device_time: deviceTime(), ...where };
      if (plate) body.vehicle_plate = plate;
      if (pins[index]) body.producer_pin = pins[index];
      await enqueue(body, `${eventLabel('collected')} · ${bag.code}`, userId);
    }
  }
  await record({
    client_event_id: crypto.randomUUID(), event_type: 'aggregated', batch: load, device_time: deviceTime(),
    children: bags.map((b) => b.qr), ...where,
  }, `${eventLabel('aggregated')} · ${loadCode} ← ${bags.length}`, userId);
  if (round !== done) return; // a new round started meanwhile: it stays
  round = null;
  if (moves === on) show('scan-view'); // gone elsewhere meanwhile: it stays
}

// ---- the queue: results, correction and resend ---------------------------------------------

function resultText(entry) {
  const r = entry.result;
  if (!r) return STATUS[entry.status];
  const parts = [STATUS[r.status] || r.status];
  if (r.state) parts.push(stateLabel(r.state));
  if (r.batch_code) parts.push(r.batch_code);
  if (r.error) parts.push(`${r.error.field ? `字段 field ${r.error.field}: ` : ''}${r.error.detail}`);
  return parts.join(' · ');
}

// The logged-in user's own records only (a shared phone): another user's are neither shown nor
// corrected nor discarded here, only counted; they wait for that user.
async function paintQueue() {
  const list = $('queue');
  list.replaceChildren();
  const all = (await entries()).reverse();
  const own = all.filter((e) => me && mine(e, me));
  const others = all.length - own.length;
  $('queue-others').hidden = !others;
  $('queue-others').textContent = others
    ? `本机另有他人的 ${others} 条记录，待其登录后处理 · ${others} records of other users wait on this phone for them`
    : '';
  for (const entry of own) {
    const item = el('li', { class: entry.status, 'data-id': entry.client_event_id },
      el('div', { text: entry.summary }),
      el('div', { class: 'status', text: resultText(entry) }));
    // A rejected record can be corrected and sent again under its id; a conflicting one
    // cannot (the server keeps other content under that id), only discarded.
    if (entry.status === 'rejected') {
      const fix = el('button', { type: 'button', class: 'fix', text: '修改并重发 Correct and resend' });
      fix.addEventListener('click', () => editEntry(entry.client_event_id));
      item.append(fix);
    }
    if (entry.status === 'rejected' || entry.status === 'conflict') {
      const discard = el('button', { type: 'button', class: 'discard', text: '放弃 Discard' });
      discard.addEventListener('click', async () => {
        await dropEntry(entry.client_event_id);
        await paintQueue();
      });
      item.append(discard);
    }
    list.append(item);
  }
}

// A record's instants: its time (device_time, event_time) and any other `…_at` (a delivery's
// started_at and ended_at), corrected in the city's time.
function isInstant(key) { return key === 'device_time' || key === 'event_time' || /_at$/.test(key); }
// The numbers the app keeps as decimal strings (decimal), wherever they stand in a record.
const DECIMALS = ['weight_kg', 'quantity', 'refused_kg', 'contamination_share', 'volume_m3', 'mass_kg', 'total_weight_kg'];
// Such a number as typed inside a field kept as JSON, until it is read (decimal).
class Typed { constructor(value) { this.value = value; } }

// A rejected entry's fields, the one the server named first; lists one item a line. The
// record's time is offered only when the server named it (a phone clock that was wrong).
async function editEntry(id) {
  const entry = await getEntry(id);
  if (!entry || !me || !mine(entry, me)) return;
  const form = $('edit-form');
  form.replaceChildren(el('h3', { text: `修改 Correct: ${entry.summary}` }));
  form.dataset.id = id;
  const named = entry.result && entry.result.error && entry.result.error.field;
  // The body's own key: `quality` for `quality.photo_sha256`, `children` for `children[3]`.
  const namedRoot = named ? named.split(/[.[]/)[0] : null;
  const keys = Object.keys(entry.body).filter((k) => !['client_event_id', 'kind', 'device_time'].includes(k));
  if (namedRoot === 'device_time' && 'device_time' in entry.body) keys.push('device_time');
  // The field the server named may be one the record lacks (a plate, a PIN): it gets an
  // input. Only a top-level name: a part of one (`quality.photo_sha256`) is corrected in it.
  delete form.dataset.added;
  if (namedRoot && named === namedRoot && !keys.includes(namedRoot) && namedRoot !== 'device_time') {
    keys.push(namedRoot);
    form.dataset.added = namedRoot;
  }
  keys.sort((a, b) => (b === namedRoot) - (a === namedRoot));
  let noZone = false;
  for (const key of keys) {
    const value = entry.body[key];
    let input;
    if (isInstant(key) && !labels.timezone) {
      // The city's zone is not known yet (never online since the app was installed): a time
      // typed in the phone's own zone would be sent wrong, so the time is only shown (UTC).
      input = el('input', { readonly: true });
      input.value = value === null || value === undefined ? '' : String(value);
      noZone = true;
    } else if (isInstant(key)) {
      const given = value !== null && value !== undefined && value !== '';
      input = el('input', { type: 'datetime-local', step: '1', required: given });
      input.value = given ? cityInput(value) : '';
      input.dataset.shown = input.value; // left as shown: the instant as it was, to the ms
    } else if (Array.isArray(value)) {
      input = el('textarea', { rows: String(Math.max(2, value.length)) });
      input.value = value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : v)).join('\n');
    } else {
      input = el('input');
      input.value = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
    }
    const wrapped = field(`edit-${key}`, key === namedRoot ? `${key} — ${entry.result.error.detail}` : key, input);
    if (key === namedRoot) wrapped.classList.add('error');
    form.append(wrapped);
  }
  if (noZone) {
    form.append(el('p', { class: 'hint', id: 'no-zone', text: '城市时区未知，联网打开一次后再改时间 · the city\'s time zone is not known yet: open the app online once, then correct the time' }));
  }
  form.append(el('button', { type: 'submit', id: 'resend', class: 'primary', text: '重新发送 Resend' }));
  form.hidden = false;
}

// A corrected field's value as typed in its input (`old`: the value it replaces, whose type
// it keeps); FieldError naming the field when the text cannot be one. A number kept as a
// decimal string, here or inside a field kept as JSON, is read as the forms read it (decimal).
function edited(key, old, input) {
  const text = input.value.trim();
  const parsed = (part) => {
    let read;
    try {
      // A number typed bare in the JSON is read from its text where the browser gives it
      // (`1e3` is refused, not read as 1000), kept as the decimal string the forms make.
      read = JSON.parse(part, (name, value, context) => {
        if (!DECIMALS.includes(name) || value === null) return value;
        return new Typed(typeof value === 'number' && context && context.source ? context.source : value);
      });
    } catch {
      throw new FieldError(key, `不是有效的 JSON · not valid JSON: ${part}`);
    }
    const decimals = (value, path) => {
      if (Array.isArray(value)) return value.map((v, i) => decimals(v, `${path}[${i}]`));
      if (value instanceof Typed) {
        if (!['string', 'number'].includes(typeof value.value)) throw new FieldError(path, `请填数字 · type a number (not ${JSON.stringify(value.value)})`);
        return decimal(value.value, path);
      }
      if (value === null || typeof value !== 'object') return value;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decimals(v, `${path}.${k}`)]));
    };
    return decimals(read, key);
  };
  if (input.type === 'datetime-local') {
    if (text === (input.dataset.shown ?? null)) return old; // as shown: the instant as it was
    if (text === '') {
      if (old === null || old === undefined || old === '') return null;
      throw new FieldError(key, '请填时间 · type the time');
    }
    // Typed in the city's time, sent as the instant it names (ISO 8601 in UTC).
    const instant = Date.parse(`${text.length === 16 ? `${text}:00` : text}Z`);
    if (Number.isNaN(instant)) throw new FieldError(key, `不是时间 · not a time: ${text}`);
    return fromCityInput(text);
  }
  if (DECIMALS.includes(key) && (old === null || old === undefined || ['string', 'number'].includes(typeof old))) {
    return decimal(text, key); // empty: null, as the forms leave it
  }
  if (Array.isArray(old)) {
    return text.split('\n').map((s) => s.trim()).filter(Boolean)
      .map((s) => (s.startsWith('{') ? parsed(s) : s));
  }
  if (typeof old === 'number') {
    // An id or a coordinate, read as typed (full-width digits as their ASCII ones): never a
    // guess such as `0x10` for 16 or `1e1` for 10.
    const typed = text.normalize('NFKC');
    if (typed === '') return null;
    if (!/^-?(\d+(\.\d+)?|\.\d+)$/.test(typed)) throw new FieldError(key, `请填数字 · type a number (not ${text})`);
    return Number(typed);
  }
  if (old !== null && typeof old === 'object') return parsed(text);
  return text === '' ? null : text;
}

$('edit-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const entry = await getEntry(form.dataset.id);
  if (!entry || !me || !mine(entry, me)) {
    form.hidden = true; // discarded meanwhile, or another user's
    return;
  }
  if (form.dataset.added && !(form.dataset.added in entry.body)) entry.body[form.dataset.added] = '';
  let shown = $('edit-error');
  if (!shown) {
    shown = el('p', { id: 'edit-error', class: 'error', role: 'alert' });
    form.querySelector('#resend').before(shown);
  }
  shown.textContent = '';
  try {
    for (const key of Object.keys(entry.body)) {
      const input = form.elements[`edit-${key}`];
      if (!input || input.readOnly) continue;
      entry.body[key] = edited(key, entry.body[key], input);
    }
  } catch (error) {
    if (!(error instanceof FieldError)) throw error;
    shown.textContent = error.message; // nothing is queued again
    return;
  }
  // Never applied (a rejection is not stored), so it keeps its client_event_id, queued again
  // as a new revision unless discarded meanwhile.
  await correctEntry(entry);
  form.hidden = true;
  await paintQueue();
  await paintQueueCount();
  if (navigator.onLine) await sync();
});

$('show-queue').addEventListener('click', async () => {
  $('edit-form').hidden = true;
  show('queue-view');
  await paintQueue();
});
$('queue-back').addEventListener('click', () => show('scan-view'));
$('sync').addEventListener('click', () => sync());

window.addEventListener('online', () => {
  paintNetwork();
  refreshReference().catch(() => {});
  sync();
});
window.addEventListener('offline', paintNetwork);
document.addEventListener('visibilitychange', async () => {
  if (document.visibilityState !== 'visible' || !me) return;
  if ((await paintQueueCount()) > 0) sync();
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch((error) => status(`离线缓存不可用 no offline cache: ${error.message}`));
}

start().catch((error) => status(error.message));
