// The app's service worker: the shell comes from the cache of one version, the API always from
// the network (the page keeps its own queue and reference data in IndexedDB).
//
// The server writes into VERSION a hash of every file of the shell (mobile_api/routers/app.py):
// a deploy that changes any of them changes this script, so the browser installs a new worker,
// which fetches the whole shell from the server itself (never the browser's HTTP cache) into a
// cache of its own and takes over only once every file has come, each checked to be the app's.
// Files are never refreshed one at a time: an old api.js beside a new main.js fails to link,
// and a Wi-Fi login page answering 200 would take the app's place offline.
const VERSION = '__APP_VERSION__';
const CACHE = `wastetrack-app-${VERSION}`;
const SHELL = [
  '/app/',
  '/app/manifest.webmanifest',
  '/app/labels.json',
  '/static/app/app.css',
  '/static/app/main.js',
  '/static/app/api.js',
  '/static/app/checkchar.js',
  '/static/app/codes.js',
  '/static/app/scanner.js',
  '/static/app/store.js',
  '/static/app/sync.js',
  '/static/app/icon-192.png',
  '/static/app/icon-512.png',
  '/static/vendor/idb.js',
  '/static/vendor/jsQR.js',
];
// What each kind of static file is served as: a captive portal's page is HTML whatever was asked.
const TYPES = { js: 'javascript', css: 'text/css', png: 'image/png' };

// The server's answer for this version of the file, not a portal's, a proxy's or an older one:
// the pages the app's router serves name their version; the others have their own type.
function genuine(url, response) {
  if (!response.ok || response.redirected || response.type !== 'basic') return false;
  const type = response.headers.get('Content-Type') || '';
  if (url.startsWith('/app/')) {
    return response.headers.get('X-App-Version') === VERSION;
  }
  return type.includes(TYPES[url.split('.').pop()]);
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const fetched = await Promise.all(SHELL.map(async (url) => {
      const response = await fetch(new Request(url, { cache: 'reload' }));
      if (!genuine(url, response)) {
        throw new Error(`${url} is not version ${VERSION} of the app (${response.status})`);
      }
      return [url, response];
    }));
    // All or nothing: a file that failed leaves the worker in place with its own version.
    const cache = await caches.open(CACHE);
    await Promise.all(fetched.map(([url, response]) => cache.put(url, response)));
    await self.skipWaiting();
  })());
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
  // This version's file; the network only if the browser dropped it from the cache.
  event.respondWith(
    caches.open(CACHE).then(async (cache) => (await cache.match(url.pathname)) || fetch(event.request)),
  );
});
