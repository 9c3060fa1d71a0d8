// The queue's way to the server: photos first (events refer to them by content hash), then
// the pending entries the logged-in user recorded, in requests of at most 500, each entry's
// answer kept beside it. Another user's entries wait for them (a shared phone).
import { call, Offline, Problem, profile } from './api.js';
import { answerEntry, dropPhoto, entriesIn, photos, photosNamed } from './store.js';

export const BATCH = 500;
let running = null;

// A photo goes from the phone only once the server has it: it answered with the photo's own
// hash, or refused the file itself (too large, not an image), and then the record naming it
// comes back rejected on photo_sha256 for the collector to correct. A login that has ended
// (401, 403) stops the uploads and keeps every photo; any other answer keeps the photo for
// the next sync, and a page that is not the API's (a captive portal) counts as offline.
const REFUSED_PHOTO = [413, 415, 422];

// The server takes a photo as evidence for the uploader's organization alone: only the photos
// this user's waiting records name go. One only another user's waiting records name waits for
// that user's own sync (a shared phone), and one they name too stays on the phone after this
// user's upload. One no record names (chosen on a form closed without recording) is evidence
// of nothing: never sent, it goes from the phone at log-out.
async function uploadPhotos(me, pass) {
  // Entries still to be applied: an applied one names a photo the server has already.
  const queued = await entriesIn(['pending', 'rejected']);
  const named = (filter) => new Set(queued.filter(filter).flatMap((e) => photosNamed(e.body)));
  const ours = named((e) => mine(e, me));
  const theirs = named((e) => !mine(e, me));
  for (const [sha256, blob] of await photos()) {
    if (!ours.has(sha256)) continue;
    await pass.check();
    const form = new FormData();
    form.append('file', blob, `${sha256}.jpg`);
    let stored;
    try {
      stored = await call('/m/v1/photos', { method: 'POST', form, signal: pass.signal });
    } catch (error) {
      if (!(error instanceof Problem) || [401, 403, 429].includes(error.status) || error.status >= 500) throw error;
      if (REFUSED_PHOTO.includes(error.status)) await dropPhoto(sha256);
      continue;
    }
    if (!stored || typeof stored.sha256 !== 'string') throw new Offline('no answer from the API');
    if (stored.sha256 === sha256 && !theirs.has(sha256)) await dropPhoto(sha256);
  }
}

// A request the server refuses whole — for its size (a lower limit configured there: a 422
// naming `events`; a body over its cap: 413) or as a body it cannot read (a 422 naming no
// field: one record's text holding half of an emoji's surrogate pair, which no JSON carries) —
// is sent again in halves, down to single records; a single record refused so is answered
// refused on the phone, with the server's reason, and never holds back the queue behind it.
function refusedWhole(error) {
  return error instanceof Problem
    && (error.status === 413 || (error.status === 422 && [null, 'events'].includes(error.field)));
}

export function mine(entry, me) {
  // Entries queued before entries named their user are the user's who is logged in.
  return entry.user_id === undefined || entry.user_id === me.user_id;
}

// A pass is the user's who is logged in when it starts: it stops (Stopped) before any request
// once another user is logged in, nobody is, or log-out has begun in this tab (stopSync, which
// also aborts the request on its way). Answers are written back only to entries still queued
// as sent (store.answerEntry).
class Stopped extends Error {}
let generation = 0;
let controller = new AbortController();

async function run() {
  const started = generation;
  const { signal } = controller;
  const me = await profile();
  if (!me) return { sent: 0, refused: 0 };
  const pass = {
    signal,
    async check() {
      const now = await profile();
      if (started !== generation || !now || now.user_id !== me.user_id) throw new Stopped('logged out');
    },
  };
  // A pass sends the records queued before its photos went, the photos they name among them: a
  // record saved while the photos upload may name one taken after their list was read, and
  // would reach the server before its photo (refused on photo_sha256). It waits for the next
  // pass, which saving it asked for (syncNow), as do those discarded meanwhile.
  const mineBefore = (await entriesIn(['pending'])).filter((e) => mine(e, me));
  const before = new Set(mineBefore.map((e) => e.client_event_id));
  await uploadPhotos(me, pass);
  const pending = (await entriesIn(['pending'])).filter(
    (e) => mine(e, me) && before.has(e.client_event_id),
  );
  let sent = 0;
  let refused = 0;
  let size = BATCH;
  for (let start = 0; start < pending.length; start += size) {
    const chunk = pending.slice(start, start + size);
    let answer;
    await pass.check();
    try {
      answer = await call('/m/v1/sync', { method: 'POST', json: { events: chunk.map((e) => e.body) }, signal });
      if (!answer || !Array.isArray(answer.results)) throw new Offline('no answer from the API');
    } catch (error) {
      if (!refusedWhole(error)) throw error;
      if (chunk.length > 1) {
        size = Math.max(1, Math.floor(chunk.length / 2));
        start -= size; // the loop adds it back: the same start, half as many
        continue;
      }
      // One record the server takes in no request (over its body limit, or unreadable): refused
      // with the server's reason, to correct or discard, and the records after it still go.
      const [entry] = chunk;
      const result = {
        client_event_id: entry.client_event_id,
        status: 'rejected',
        error: { code: error.body.code || 'too_large', field: error.field, detail: error.message },
      };
      if (await answerEntry(entry, result)) refused += 1;
      sent += 1;
      continue;
    }
    // One result per entry, in the order sent.
    for (const [index, entry] of chunk.entries()) {
      const result = answer.results[index];
      if (!(await answerEntry(entry, result))) continue; // discarded or corrected meanwhile
      if (result.status === 'rejected' || result.status === 'conflict') refused += 1;
    }
    sent += chunk.length;
  }
  return { sent, refused };
}

// Log-out: the pass running stops (its request aborted) before the user's records go, and
// resolves before this does; a later syncNow starts afresh for whoever is logged in then.
export async function stopSync() {
  generation += 1;
  again = false;
  controller.abort();
  controller = new AbortController();
  if (running) await running.catch(() => null);
}

// Sync now if nothing else is; resolves to {sent, refused}, or null when offline. Asked while
// a sync runs (a record saved, a correction resent meanwhile), it runs another pass when that
// one ends, and both answer for the passes together.
let again = false;

async function passes() {
  const total = { sent: 0, refused: 0 };
  try {
    do {
      again = false;
      const done = await run();
      total.sent += done.sent;
      total.refused += done.refused;
    } while (again);
  } catch (error) {
    if (error instanceof Offline || error instanceof Stopped) return null;
    throw error;
  } finally {
    // In the same turn as the last look at `again`: a later ask starts a sync of its own.
    running = null;
  }
  return total;
}

export function syncNow() {
  if (running) again = true;
  else running = passes();
  return running;
}
