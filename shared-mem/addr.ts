// Address, MAC and string codecs between the model's canonical strings and shared-memory words.
//
// An address occupies 4 u32 words. IPv4: word 0 = the address as a host-order u32 (10.0.0.1 =
// 0x0a000001), words 1..3 = 0. IPv6: words 0..3 = the 128 bits, most significant first (word 0 =
// the first 32 bits as a u32). Where a field can hold either family or be empty, a 2-bit "address
// kind" (ADDR_*) is stored alongside.

export const ADDR_ABSENT = 0; // optional field not set (undefined)
export const ADDR_V4 = 1;
export const ADDR_V6 = 2;
export const ADDR_EMPTY = 3; // the empty string ""

export type Words = Uint32Array;

/** Parses a dotted-quad IPv4 address; returns the u32 value or -1 when invalid. */
export function parse4(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let v = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) { // '.'
      if (digits === 0 || dots === 3) return -1;
      v = v * 256 + octet;
      octet = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return v * 256 + octet;
}

export function format4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groups6 = new Uint16Array(8);

/** Parses an IPv6 address into out[off..off+3]; returns false when invalid. */
export function parse6(s: string, out: Words, off: number): boolean {
  const g = groups6;
  g.fill(0);
  const n = s.length;
  if (n < 2 || n > 45) return false;
  let ng = 0; // groups written before "::" or in total
  let dbl = -1; // group index where "::" is
  let i = 0;
  if (s.charCodeAt(0) === 58) { // leading ':' must be "::"
    if (s.charCodeAt(1) !== 58) return false;
    dbl = 0; i = 2;
    if (i === n) { out[off] = 0; out[off + 1] = 0; out[off + 2] = 0; out[off + 3] = 0; return true; }
  }
  while (i < n) {
    // Find the end of this token.
    let j = i;
    let hasDot = false;
    while (j < n && s.charCodeAt(j) !== 58) { if (s.charCodeAt(j) === 46) hasDot = true; j++; }
    if (hasDot) {
      if (j !== n || ng > 6) return false;
      const v4 = parse4(s.substring(i, j));
      if (v4 < 0) return false;
      g[ng++] = v4 >>> 16; g[ng++] = v4 & 0xffff;
      i = n;
      break;
    }
    const len = j - i;
    if (len < 1 || len > 4 || ng >= 8) return false;
    let v = 0;
    for (let k = i; k < j; k++) {
      const h = hexVal(s.charCodeAt(k));
      if (h < 0) return false;
      v = v * 16 + h;
    }
    g[ng++] = v;
    if (j === n) { i = n; break; }
    // s[j] === ':'
    if (j + 1 < n && s.charCodeAt(j + 1) === 58) {
      if (dbl >= 0) return false;
      dbl = ng;
      i = j + 2;
    } else {
      if (j + 1 === n) return false; // trailing single ':'
      i = j + 1;
    }
  }
  if (dbl >= 0) {
    if (ng > 7) return false;
    const tail = ng - dbl;
    for (let k = 0; k < tail; k++) g[7 - k] = g[ng - 1 - k];
    for (let k = dbl; k < 8 - tail; k++) g[k] = 0;
  } else if (ng !== 8) return false;
  out[off] = ((g[0] << 16) | g[1]) >>> 0;
  out[off + 1] = ((g[2] << 16) | g[3]) >>> 0;
  out[off + 2] = ((g[4] << 16) | g[5]) >>> 0;
  out[off + 3] = ((g[6] << 16) | g[7]) >>> 0;
  return true;
}

/** RFC 5952 text form (lower case, longest zero run of 2+ groups compressed, ::ffff:a.b.c.d for v4-mapped). */
export function format6(w: Words, off: number): string {
  const g = groups6;
  for (let k = 0; k < 4; k++) {
    const v = w[off + k];
    g[2 * k] = v >>> 16;
    g[2 * k + 1] = v & 0xffff;
  }
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${format4(w[off + 3])}`;
  }
  let bestStart = -1, bestLen = 0;
  for (let k = 0; k < 8;) {
    if (g[k] !== 0) { k++; continue; }
    let e = k;
    while (e < 8 && g[e] === 0) e++;
    if (e - k > bestLen) { bestLen = e - k; bestStart = k; }
    k = e;
  }
  if (bestLen < 2) bestStart = -1;
  let s = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      s += k === 0 ? '::' : ':';
      k += bestLen - 1;
      continue;
    }
    s += g[k].toString(16);
    if (k < 7) s += ':';
  }
  return s;
}

/**
 * Encodes an address string (either family, "" or undefined) into out[off..off+3] and returns its
 * ADDR_* kind. Throws a TypeError for an unparsable string.
 */
export function encodeAddr(s: string | undefined, out: Words, off: number, what: string): number {
  if (s === undefined) { out[off] = 0; out[off + 1] = 0; out[off + 2] = 0; out[off + 3] = 0; return ADDR_ABSENT; }
  if (s === '') { out[off] = 0; out[off + 1] = 0; out[off + 2] = 0; out[off + 3] = 0; return ADDR_EMPTY; }
  const v4 = parse4(s);
  if (v4 >= 0) { out[off] = v4; out[off + 1] = 0; out[off + 2] = 0; out[off + 3] = 0; return ADDR_V4; }
  if (parse6(s, out, off)) return ADDR_V6;
  throw new TypeError(`invalid ${what} address "${s}"`);
}

export function decodeAddr(kind: number, w: Words, off: number): string | undefined {
  switch (kind) {
    case ADDR_V4: return format4(w[off]);
    case ADDR_V6: return format6(w, off);
    case ADDR_EMPTY: return '';
    default: return undefined;
  }
}

/** Address of a known family; throws when it does not parse as that family. */
export function encodeAddrOf(family: number, s: string, out: Words, off: number, what: string): void {
  const k = encodeAddr(s, out, off, what);
  if (k !== (family === 4 ? ADDR_V4 : ADDR_V6)) throw new TypeError(`invalid IPv${family} ${what} address "${s}"`);
}

/** Family (4 or 6) of an address string, 0 when it is neither. */
export function familyOf(s: string): 0 | 4 | 6 {
  if (parse4(s) >= 0) return 4;
  return s.indexOf(':') >= 0 ? 6 : 0;
}

/** Parses "aa:bb:cc" (1..max bytes) into u8[off..]; returns the byte count. Throws when invalid. */
export function encodeMac(s: string, u8: Uint8Array, off: number, max: number, what: string): number {
  if (s === '') return 0;
  const n = s.length;
  if ((n + 1) % 3 !== 0) throw new TypeError(`invalid ${what} "${s}"`);
  const len = (n + 1) / 3;
  if (len > max) throw new TypeError(`${what} "${s}" longer than ${max} bytes`);
  for (let b = 0; b < len; b++) {
    const i = b * 3;
    const h = hexVal(s.charCodeAt(i)), l = hexVal(s.charCodeAt(i + 1));
    if (h < 0 || l < 0 || (b < len - 1 && s.charCodeAt(i + 2) !== 58)) throw new TypeError(`invalid ${what} "${s}"`);
    u8[off + b] = h * 16 + l;
  }
  return len;
}

const HEX = '0123456789abcdef';

export function decodeMac(u8: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let b = 0; b < len; b++) {
    const v = u8[off + b];
    if (b > 0) s += ':';
    s += HEX[v >> 4] + HEX[v & 15];
  }
  return s;
}

/** Hex string (even length, no prefix) into u8[off..]; returns the byte count. */
export function encodeHex(s: string, u8: Uint8Array, off: number, max: number, what: string): number {
  if (s.length % 2 !== 0) throw new TypeError(`invalid ${what}: odd hex length`);
  const len = s.length / 2;
  if (len > max) throw new TypeError(`${what} longer than ${max} bytes`);
  for (let b = 0; b < len; b++) {
    const h = hexVal(s.charCodeAt(2 * b)), l = hexVal(s.charCodeAt(2 * b + 1));
    if (h < 0 || l < 0) throw new TypeError(`invalid ${what}: not hex`);
    u8[off + b] = h * 16 + l;
  }
  return len;
}

export function decodeHex(u8: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let b = 0; b < len; b++) { const v = u8[off + b]; s += HEX[v >> 4] + HEX[v & 15]; }
  return s;
}

/** UTF-8 string into u8[off..off+max); returns the byte length. Throws when it does not fit. */
export function encodeStr(s: string, u8: Uint8Array, off: number, max: number, what: string): number {
  let ascii = true;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) { ascii = false; break; }
  if (ascii) {
    if (s.length > max) throw new TypeError(`${what} "${s}" longer than ${max} bytes`);
    for (let i = 0; i < s.length; i++) u8[off + i] = s.charCodeAt(i);
    for (let i = s.length; i < max; i++) u8[off + i] = 0;
    return s.length;
  }
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new TypeError(`${what} "${s}" longer than ${max} bytes`);
  u8.set(b, off);
  for (let i = b.length; i < max; i++) u8[off + i] = 0;
  return b.length;
}

export function decodeStr(u8: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    const c = u8[off + i];
    if (c > 127) return Buffer.from(u8.subarray(off, off + len)).toString('utf8');
    s += String.fromCharCode(c);
  }
  return s;
}

/** True when the n bytes at u8[off..] equal the ASCII/Latin-1 string s (no allocation). */
export function strEquals(u8: Uint8Array, off: number, len: number, s: string): boolean {
  if (len !== s.length) return false;
  for (let i = 0; i < len; i++) if (u8[off + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** u64 decimal string <-> two u32 words (lo, hi). */
export function encodeU64(s: string, out: Words, off: number, what: string): void {
  let v: bigint;
  try { v = BigInt(s); } catch { throw new TypeError(`invalid ${what} "${s}"`); }
  if (v < 0n || v > 0xffffffffffffffffn) throw new TypeError(`${what} "${s}" out of u64 range`);
  out[off] = Number(v & 0xffffffffn);
  out[off + 1] = Number(v >> 32n);
}

export function decodeU64(w: Words, off: number): string {
  if (w[off + 1] === 0) return String(w[off]);
  return ((BigInt(w[off + 1]) << 32n) | BigInt(w[off])).toString();
}

/** Non-negative integer up to 2^53 as two words (lo, hi). */
export function encodeNum64(v: number, out: Words, off: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`invalid ${what} ${v}`);
  out[off] = v % 0x100000000;
  out[off + 1] = Math.floor(v / 0x100000000);
}

export function decodeNum64(w: Words, off: number): number {
  return w[off + 1] * 0x100000000 + w[off];
}

/** Masks the 4-word address a (in place) to plen bits of a 32 (v4) or 128 (v6) bit address. */
export function maskWords(w: Words, off: number, family: number, plen: number): void {
  if (family === 4) {
    w[off] = plen === 0 ? 0 : (w[off] & (0xffffffff << (32 - plen))) >>> 0;
    return;
  }
  for (let k = 0; k < 4; k++) {
    const bits = plen - 32 * k;
    if (bits >= 32) continue;
    w[off + k] = bits <= 0 ? 0 : (w[off + k] & (0xffffffff << (32 - bits))) >>> 0;
  }
}
