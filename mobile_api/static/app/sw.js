// The app's service worker: the shell comes from the cache (refreshed in the background), the
// API always from the network (the page keeps its own queue and reference data in IndexedDB).
const CACHE = 'wastetrack-app-v8';
const SHELL = [
  '/app/',
  '/app/manifest.webmanifest',
  '/app/labels.json',
  '/static/app/app.css',
  '/static/app/main.js',
  '/static/app/api.js',
  '/static/app/checkchar.js',
  '/static/app/scanner.js',
  '/static/app/store.js',
  '/static/app/sync.js',
  '/static/app/icon-192.png',
  '/static/app/icon-512.png',
  '/static/vendor/idb.js',
  '/static/vendor/jsQR.js',
];

// Installed from the server itself, never from the browser's HTTP cache: an old api.js cached
// there beside a new main.js would fail to link offline.
self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/m/') || url.pathname.startsWith('/admin/')) {
    // Network first: the answer is the server's; offline the page says so and queues.
    return;
  }
  if (!SHELL.includes(url.pathname)) return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const cached = await cache.match(event.request);
      const fresh = fetch(event.request)
        .then((response) => {
          if (response.ok) cache.put(event.request, response.clone());
          return response;
        })
        .catch(() => cached);
      return cached || fresh;
    }),
  );
});
