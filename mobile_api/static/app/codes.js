// The code a scanned or typed text names, and the codes a record names: shared by the scan
// (main.js) and the queue's index of records by code (store.js).
import { isValidCode, normalize } from './checkchar.js';

// Python's whitespace (str.strip, and re's \s on str), which the server reads a text with:
// JavaScript's \s less U+FEFF, with U+001C–U+001F (a scanner's group separator, GS, among them)
// and U+0085.
const SPACE = '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const GAPS = new RegExp(`[${SPACE}-]`, 'g');
const ENDS = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g');
// wastetrack/batches/identifiers.PATTERN, whole.
const IDENTIFIER = /^[0-9A-HJ-NP-RTUWXY]{18}[0-9]{8}(?:19|20)[0-9]{6}[0-9]{3}$/;
// wastetrack/core/codes._URL_RE: the last /q/CODE.SIG of the text.
const SIGNED_URL = /\/q\/([0-9A-Za-z-]+)\.([0-9A-Za-z]+)\/?$/;

// The code a text names as the server reads it (batches.service.ScanReader.code): a drum's HJ
// 1276 identifier (gaps and hyphens between its segments dropped), the code of a label's QR URL,
// or a typed code (spaces, hyphens and case as people type them, I/L/O read as 1/1/0). A text
// the server reads as no code is kept under itself, cleaned as typed, never under a code.
export function codeOf(text) {
  const identifier = text.replace(GAPS, '').toUpperCase();
  if (IDENTIFIER.test(identifier)) return identifier;
  const trimmed = text.replace(ENDS, '');
  const url = SIGNED_URL.exec(trimmed);
  if (url) return normalize(url[1]);
  if (!trimmed.includes('/') && !trimmed.includes('.') && isValidCode(normalize(trimmed))) {
    return normalize(trimmed);
  }
  return text.replace(/[\s-]/g, '').toUpperCase();
}

// The codes a record names: its batch (or the label it tags) and the bags it packs.
export function namedIn(body) {
  const texts = [body.batch, ...(body.children || [])].filter((named) => typeof named === 'string');
  return [...new Set(texts.map(codeOf))];
}
