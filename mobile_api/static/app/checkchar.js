// Batch codes as wastetrack/core/codes.py makes them: 8 characters of Crockford's base32 and a
// Luhn mod 32 check character. Ported from there; tests/app compares the two on many codes.
export const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const BODY_LENGTH = 8;
const TYPOS = { I: '1', L: '1', O: '0' };

export function checkCharacter(body) {
  let factor = 2;
  let total = 0;
  for (let i = body.length - 1; i >= 0; i -= 1) {
    const addend = factor * ALPHABET.indexOf(body[i]);
    factor = factor === 2 ? 1 : 2;
    total += Math.floor(addend / 32) + (addend % 32);
  }
  return ALPHABET[(32 - (total % 32)) % 32];
}

// Python's whitespace (str.strip, and re's \s on str), which the server reads a text with:
// JavaScript's \s less U+FEFF, with U+001C–U+001F (a scanner's group separator, GS, among them)
// and U+0085.
export const SPACE = '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const ENDS = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g');

// The text without the whitespace Python's str.strip() takes off its ends.
export function strip(text) {
  return text.replace(ENDS, '');
}

export function normalize(typed) {
  return strip(typed).toUpperCase().replace(/[- ]/g, '').replace(/[ILO]/g, (c) => TYPOS[c]);
}

export function isValidCode(code) {
  if (code.length !== BODY_LENGTH + 1 || [...code].some((c) => !ALPHABET.includes(c))) return false;
  return checkCharacter(code.slice(0, -1)) === code[BODY_LENGTH];
}

// What a typed entry is: {code} when it passes the check, {error} (Chinese · English) otherwise.
// Scanned QR URLs are not checked here: the server verifies their signature.
export function checkTyped(typed) {
  const code = normalize(typed);
  if (code.length !== BODY_LENGTH + 1) {
    return { error: `编码应为 9 位（现 ${code.length} 位）· a code has 9 characters` };
  }
  const bad = [...code].find((c) => !ALPHABET.includes(c));
  if (bad) return { error: `“${bad}” 不是编码字符 · not a code character` };
  if (!isValidCode(code)) return { error: '校验位不符，请核对 · check character does not match: a typo?' };
  return { code };
}
