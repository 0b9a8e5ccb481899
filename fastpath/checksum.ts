// Internet checksum helpers (RFC 1071, RFC 1624) over packet memory.

/** One's complement sum of `len` bytes (even) at m[o..], folded to 16 bits (not complemented). */
export function csumSum(m: Uint8Array, o: number, len: number): number {
  let s = 0;
  const end = o + len;
  for (let p = o; p < end; p += 2) s += (m[p] << 8) | m[p + 1];
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** True when the IPv4 header at m[o..o+hlen) has a valid checksum. */
export function ipv4ChecksumOk(m: Uint8Array, o: number, hlen: number): boolean {
  return csumSum(m, o, hlen) === 0xffff;
}

/**
 * ipv4ChecksumOk over 16-bit words of a Uint16Array view of the same memory: m16[w .. w + hlen/2)
 * (the header starts at an even offset). The one's complement sum does not depend on the byte
 * order (RFC 1071 2.(B)), and 0xffff is its own byte swap: half the loads of the byte version.
 */
export function ipv4ChecksumOk16(m16: Uint16Array, w: number, hlen: number): boolean {
  let s = 0;
  const end = w + (hlen >>> 1);
  for (let p = w; p < end; p++) s += m16[p];
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

/** Computes and stores the checksum of the IPv4 header at m[o..o+hlen). */
export function ipv4SetChecksum(m: Uint8Array, o: number, hlen: number): void {
  m[o + 10] = 0;
  m[o + 11] = 0;
  const c = ~csumSum(m, o, hlen) & 0xffff;
  m[o + 10] = c >>> 8;
  m[o + 11] = c & 255;
}

/** RFC 1624 eqn. 3: checksum after a 16-bit word of the covered data changed from `old` to `now`. */
export function csumUpdate16(hc: number, old: number, now: number): number {
  let s = (~hc & 0xffff) + (~old & 0xffff) + now;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
