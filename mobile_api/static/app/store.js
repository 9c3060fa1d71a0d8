// What the phone keeps: tokens and profile (kv), reference data with its version (ref), the
// durable queue of recorded actions (queue) and photos waiting for upload (photos).
import { openDB, deleteDB } from '/static/vendor/idb.js';

const NAME = 'wastetrack-app';
let opened = null;

function db() {
  if (!opened) {
    opened = openDB(NAME, 1, {
      upgrade(database) {
        database.createObjectStore('kv');
        database.createObjectStore('ref');
        const queue = database.createObjectStore('queue', { keyPath: 'client_event_id' });
        queue.createIndex('seq', 'seq');
        database.createObjectStore('photos');
      },
    });
  }
  return opened;
}

export async function getKv(key) { return (await db()).get('kv', key); }
export async function setKv(key, value) { return (await db()).put('kv', value, key); }

export async function getRef(name) { return (await db()).get('ref', name); }
export async function setRef(name, value) { return (await db()).put('ref', value, name); }

export async function putPhoto(sha256, blob) { return (await db()).put('photos', blob, sha256); }
export async function photos() {
  const database = await db();
  const keys = await database.getAllKeys('photos');
  return Promise.all(keys.map(async (key) => [key, await database.get('photos', key)]));
}
export async function dropPhoto(sha256) { return (await db()).delete('photos', sha256); }

// A queue entry: {client_event_id, seq, user_id, body, summary, status, result}; status is
// `pending` until the server answers, then the result's status (applied, duplicate, conflict,
// rejected). `user_id` is who recorded it: only they send it (a shared phone). `seq` is the
// order made, sent in: past every entry already queued (read in the same transaction, so two
// tabs never share one), the clock's millisecond where that is later. A round queues several
// records within one millisecond, and the server keeps a batch's events in the order sent.
export async function enqueue(body, summary, userId) {
  const tx = (await db()).transaction('queue', 'readwrite');
  const last = await tx.store.index('seq').openCursor(null, 'prev');
  const entry = {
    client_event_id: body.client_event_id,
    seq: Math.max(Date.now(), last ? last.value.seq + 1 : 0),
    user_id: userId,
    body,
    summary,
    status: 'pending',
    result: null,
  };
  await Promise.all([tx.store.put(entry), tx.done]);
  return entry;
}
export async function entries() { return (await db()).getAllFromIndex('queue', 'seq'); }
export async function putEntry(entry) { return (await db()).put('queue', entry); }
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
    tx.objectStore('kv').clear(),
    tx.objectStore('ref').clear(),
    ...queued.filter((id) => !ids.has(id)).map((id) => tx.objectStore('queue').delete(id)),
    ...photoKeys.filter((sha) => !keep.has(sha)).map((sha) => tx.objectStore('photos').delete(sha)),
    tx.done,
  ]);
}

async function wipe() {
  if (opened) (await opened).close();
  opened = null;
  await deleteDB(NAME);
}
