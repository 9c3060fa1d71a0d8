// What the phone keeps: tokens and profile (kv), reference data with its version (ref), the
// durable queue of recorded actions (queue) and photos waiting for upload (photos).
import { openDB, deleteDB } from '/static/vendor/idb.js';
import { namedIn } from './codes.js';

const NAME = 'wastetrack-app';
const VERSION = 2; // 2: the queue's `named` and `status` indexes
const ANSWERS = 'answers'; // kv: how many sync answers the phone has taken (rewrite)
let opened = null;

// Another tab deleting the database (log-out) or opening a newer version waits until every
// tab lets go: this one closes its connection at once and opens a new one on its next use (the
// delete runs first, so nothing made meanwhile is deleted with it). A connection the browser
// closed (storage cleared) is opened again the same way.
function db() {
  if (!opened) {
    const opening = openDB(NAME, VERSION, {
      async upgrade(database, oldVersion, newVersion, transaction) {
        if (oldVersion < 1) {
          database.createObjectStore('kv');
          database.createObjectStore('ref');
          database.createObjectStore('queue', { keyPath: 'client_event_id' }).createIndex('seq', 'seq');
          database.createObjectStore('photos');
        }
        if (oldVersion < 2) {
          // A scan, the count of waiting records and a sync read the records they need by
          // index, not the whole queue, which keeps every applied record until log-out.
          const queue = transaction.objectStore('queue');
          queue.createIndex('named', 'named', { multiEntry: true });
          queue.createIndex('status', 'status');
          for (let cursor = await queue.openCursor(); cursor; cursor = await cursor.continue()) {
            await cursor.update({ ...cursor.value, named: namedIn(cursor.value.body) });
          }
        }
      },
      blocking(oldVersion, newVersion, event) {
        event.target.close();
        if (opened === opening) opened = null;
        // The app was updated in another tab, whose database this page's code cannot open:
        // what it recorded is kept; it comes back as the new version (the service worker's).
        if (newVersion !== null && newVersion > VERSION) window.location.reload();
      },
      terminated() {
        if (opened === opening) opened = null;
      },
    });
    opened = opening;
    opening.catch(() => { if (opened === opening) opened = null; });
  }
  return opened;
}

export async function getKv(key) { return (await db()).get('kv', key); }
export async function setKv(key, value) { return (await db()).put('kv', value, key); }
// New tokens (and their profile) kept only while the stored refresh token is still `sent`, the
// one presented for them, read and written in one transaction: a renewal answered after
// log-out, or after another tab renewed, writes nothing. `tokens` null forgets the login.
export async function replaceTokens(sent, tokens, profile) {
  const tx = (await db()).transaction('kv', 'readwrite');
  const [kept] = await Promise.all([
    tx.store.get('tokens').then(async (now) => {
      if (!now || now.refresh !== sent) return false;
      await tx.store.put(tokens, 'tokens');
      if (profile !== undefined) await tx.store.put(profile, 'profile');
      return true;
    }),
    tx.done,
  ]);
  return kept;
}

// What the phone kept for the user before — scans, reference lists, their profile — once
// another user logs in after that login ended without a log-out (revoked, or expired): only the
// queue, each record its recorder's, and its photos stay, as at a log-out.
export async function forgetAnother(userId) {
  const database = await db();
  const before = await database.get('kv', 'profile');
  if (!before || before.user_id === userId) return;
  const tx = database.transaction(['kv', 'ref'], 'readwrite');
  await Promise.all([clearKv(tx.objectStore('kv')), tx.objectStore('ref').clear(), tx.done]);
}

// The kept data goes, but the count of sync answers stays: the records left on the phone hold
// numbers it gave, and a count begun again would read them as answered after any new scan.
async function clearKv(kv) {
  const answers = await kv.get(ANSWERS);
  await kv.clear();
  if (answers !== undefined) await kv.put(answers, ANSWERS);
}

export async function getRef(name) { return (await db()).get('ref', name); }
export async function setRef(name, value) { return (await db()).put('ref', value, name); }

export async function putPhoto(sha256, blob) { return (await db()).put('photos', blob, sha256); }
export async function photos() {
  const database = await db();
  const keys = await database.getAllKeys('photos');
  return Promise.all(keys.map(async (key) => [key, await database.get('photos', key)]));
}
export async function dropPhoto(sha256) { return (await db()).delete('photos', sha256); }

// A queue entry: {client_event_id, seq, user_id, body, named, summary, status, result,
// revision}; `named` is the codes its body names (`namedIn`, indexed);
// status is `pending` until the server answers, then the result's status (applied, duplicate,
// conflict, rejected). `user_id` is who recorded it: only they send it (a shared phone).
// `revision` counts its corrections (none: absent). `seq` is the order made, sent in: past
// every entry already queued (read in the same transaction, so two tabs never share one), the
// clock's millisecond where that is later. A round queues several records within one
// millisecond, and the server keeps a batch's events in the order sent.
export async function enqueue(body, summary, userId) {
  const tx = (await db()).transaction('queue', 'readwrite');
  const last = await tx.store.index('seq').openCursor(null, 'prev');
  const entry = {
    client_event_id: body.client_event_id,
    seq: Math.max(Date.now(), last ? last.value.seq + 1 : 0),
    user_id: userId,
    body,
    named: namedIn(body),
    summary,
    status: 'pending',
    result: null,
  };
  await Promise.all([tx.store.put(entry), tx.done]);
  return entry;
}
export async function entries() { return (await db()).getAllFromIndex('queue', 'seq'); }

function inOrder(found) {
  const byId = new Map(found.flat().map((e) => [e.client_event_id, e]));
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}
// The entries in these statuses, in the order made.
export async function entriesIn(statuses) {
  const database = await db();
  return inOrder(await Promise.all(statuses.map((s) => database.getAllFromIndex('queue', 'status', s))));
}
// The entries whose bodies name any of these codes (`namedIn`), in the order made.
export async function entriesNaming(codes) {
  const database = await db();
  return inOrder(await Promise.all(codes.map((c) => database.getAllFromIndex('queue', 'named', c))));
}
export async function putEntry(entry) { return (await db()).put('queue', entry); }
// Both writes below read and write the stored entry in one transaction; an entry no longer
// stored (discarded, or its user logged out) is not re-created. `revision` counts the
// entry's corrections: a sync's answer is about the revision it sent. An answer is numbered
// (`answered`) in the order the phone took answers in, whatever its clock says.
async function rewrite(id, change, { answer = false } = {}) {
  const tx = (await db()).transaction(['queue', 'kv'], 'readwrite');
  const queue = tx.objectStore('queue');
  const kv = tx.objectStore('kv');
  const [kept] = await Promise.all([
    queue.get(id).then(async (stored) => {
      const changed = stored && change(stored);
      if (!changed) return false;
      if (answer) {
        changed.answered = ((await kv.get(ANSWERS)) || 0) + 1;
        await kv.put(changed.answered, ANSWERS);
      }
      await queue.put(changed);
      return true;
    }),
    tx.done,
  ]);
  return kept;
}
// The server's answer to `sent`, kept only while the entry is still the revision sent: a late
// answer (another tab's sync, or this one's, still on its way) never undoes a correction made
// meanwhile.
export function answerEntry(sent, result) {
  return rewrite(sent.client_event_id, (stored) => ((stored.revision || 0) !== (sent.revision || 0)
    ? null
    : { ...stored, status: result.status, result, synced_at: new Date().toISOString() }), { answer: true });
}
// How many answers the phone has taken: an entry answered later has a greater `answered`.
export async function answersSoFar() { return (await getKv(ANSWERS)) || 0; }
// A corrected body, queued again as a new revision.
export function correctEntry(entry) {
  return rewrite(entry.client_event_id, (stored) => ({
    ...stored,
    body: entry.body,
    named: namedIn(entry.body),
    revision: (stored.revision || 0) + 1,
    status: 'pending',
    result: null,
  }));
}
export async function getEntry(id) { return (await db()).get('queue', id); }
export async function dropEntry(id) { return (await db()).delete('queue', id); }

// The photos a record names: its content hashes, wherever in the body they stand.
export function photosNamed(value) {
  if (typeof value === 'string') return /^[0-9a-f]{64}$/.test(value) ? [value] : [];
  if (value && typeof value === 'object') return Object.values(value).flatMap(photosNamed);
  return [];
}

// Log-out on a shared phone: the user's entries go, with the photos no other user's entry
// names, the kept data and the tokens; another user's entries stay for them. With none left,
// the whole database goes.
export async function leave(isTheirs) {
  const database = await db();
  const kept = (await database.getAll('queue')).filter((e) => !isTheirs(e));
  if (!kept.length) {
    await wipe();
    return;
  }
  const keep = new Set(kept.flatMap((e) => photosNamed(e.body)));
  const ids = new Set(kept.map((e) => e.client_event_id));
  const tx = database.transaction(['kv', 'ref', 'queue', 'photos'], 'readwrite');
  const queued = await tx.objectStore('queue').getAllKeys();
  const photoKeys = await tx.objectStore('photos').getAllKeys();
  await Promise.all([
    clearKv(tx.objectStore('kv')),
    tx.objectStore('ref').clear(),
    ...queued.filter((id) => !ids.has(id)).map((id) => tx.objectStore('queue').delete(id)),
    ...photoKeys.filter((sha) => !keep.has(sha)).map((sha) => tx.objectStore('photos').delete(sha)),
    tx.done,
  ]);
}

async function wipe() {
  const open = opened;
  opened = null;
  if (open) await open.then((database) => database.close(), () => {});
  await deleteDB(NAME);
}
