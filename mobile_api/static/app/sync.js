// The queue's way to the server: photos first (events refer to them by content hash), then
// the pending entries in requests of at most 500, each entry's answer kept beside it.
import { call, Offline } from './api.js';
import { dropPhoto, entries, photos, putEntry } from './store.js';

export const BATCH = 500;
let running = null;

async function uploadPhotos() {
  for (const [sha256, blob] of await photos()) {
    const form = new FormData();
    form.append('file', blob, `${sha256}.jpg`);
    await call('/m/v1/photos', { method: 'POST', form });
    await dropPhoto(sha256);
  }
}

async function run() {
  await uploadPhotos();
  const pending = (await entries()).filter((e) => e.status === 'pending');
  let sent = 0;
  for (let start = 0; start < pending.length; start += BATCH) {
    const chunk = pending.slice(start, start + BATCH);
    const answer = await call('/m/v1/sync', { method: 'POST', json: { events: chunk.map((e) => e.body) } });
    // One result per entry, in the order sent.
    for (const [index, entry] of chunk.entries()) {
      const result = answer.results[index];
      entry.status = result.status;
      entry.result = result;
      entry.synced_at = new Date().toISOString();
      await putEntry(entry);
    }
    sent += chunk.length;
  }
  return sent;
}

// Sync now if nothing else is; resolves to the number sent, or null when offline.
export async function syncNow() {
  if (!running) {
    running = run()
      .catch((error) => {
        if (error instanceof Offline) return null;
        throw error;
      })
      .finally(() => { running = null; });
  }
  return running;
}
