// The code a scanned or typed text names, and the codes a record names: shared by the scan
// (main.js) and the queue's index of records by code (store.js).

// A label's code from its QR URL or as typed (hyphens, spaces and case as people type them),
// or a drum's HJ 1276 identifier as a scanner writes it: the gaps the server reads as gaps
// (Python's whitespace, wastetrack/batches/identifiers.normalize) are dropped, a scanner's
// group separator (GS, 0x1D) among them, which JavaScript's \s does not match.
export function codeOf(qr) {
  const match = /\/q\/([0-9A-Za-z-]+)\./.exec(qr);
  return (match ? match[1] : qr).replace(/[\s\x1c-\x1f\x85-]/g, '').toUpperCase();
}

// The codes a record names: its batch (or the label it tags) and the bags it packs.
export function namedIn(body) {
  const texts = [body.batch, ...(body.children || [])].filter((named) => typeof named === 'string');
  return [...new Set(texts.map(codeOf))];
}
