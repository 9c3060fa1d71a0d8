// The code a scanned or typed text names, and the codes a record names: shared by the scan
// (main.js) and the queue's index of records by code (store.js).
import { SPACE, isValidCode, normalize, strip } from './checkchar.js';

const GAPS = new RegExp(`[${SPACE}-]`, 'g');
// wastetrack/batches/identifiers.PATTERN, whole.
const IDENTIFIER = /^[0-9A-HJ-NP-RTUWXY]{18}[0-9]{8}(?:19|20)[0-9]{6}[0-9]{3}$/;
// wastetrack/core/commands.SCANNED: the characters a scanned text may not hold (the service's
// controls but the group separator GS), refused before the server reads it, as is a text of
// more than 512 characters.
const REFUSED = /[\x00-\x08\x0b\x0c\x0e-\x1c\x1e\x1f\x7f-\x9f\ufffe\uffff]/;
// wastetrack/core/codes._URL_RE: the last /q/CODE.SIG of the text.
const SIGNED_URL = /\/q\/([0-9A-Za-z-]+)\.([0-9A-Za-z]+)\/?$/;

// The code a text names as the server reads it (batches.service.ScanReader.code): a drum's HJ
// 1276 identifier (gaps and hyphens between its segments dropped), the code of a label's QR URL,
// or a typed code (spaces, hyphens and case as people type them, I/L/O read as 1/1/0). A text
// the server refuses (`Scanned`) or reads as no code is kept under itself as written, never
// under a code.
export function codeOf(text) {
  if (!text || text.length > 512 || REFUSED.test(text)) return text;
  const identifier = text.replace(GAPS, '').toUpperCase();
  if (IDENTIFIER.test(identifier)) return identifier;
  const trimmed = strip(text);
  const url = SIGNED_URL.exec(trimmed);
  if (url) return normalize(url[1]);
  if (!trimmed.includes('/') && !trimmed.includes('.') && isValidCode(normalize(trimmed))) {
    return normalize(trimmed);
  }
  return text;
}

// The codes a record names: its batch (or the label it tags) and the bags it packs.
export function namedIn(body) {
  const texts = [body.batch, ...(body.children || [])].filter((named) => typeof named === 'string');
  return [...new Set(texts.map(codeOf))];
}
