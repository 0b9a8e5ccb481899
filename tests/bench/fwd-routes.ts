// The route set and the traffic of `make bench-fwd` (tests/bench/bench-fwd.ts): one deterministic
// list of IPv4 prefixes (same seed → same routes in every process: the in-memory shared memory, the
// kernel of lfp's control plane, the kernel router, the generator) and the 64-byte UDP frames sent
// to random hosts of random routes.
import * as fs from 'fs';

export interface RouteSet {
  n: number;
  prefix: Uint32Array;
  plen: Uint8Array;
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
}

/**
 * n distinct prefixes spread over 1.0.0.0 - 223.255.255.255 without 10/8 (the link networks) and
 * 127/8: 80 % /24, 15 % /16../23, 5 % /25../32 (the mix of fastpath/bench.ts, without ECMP).
 */
export function makeRoutes(n: number, seed = 1): RouteSet {
  const rnd = xorshift(seed);
  const seen = new Set<number>();
  const prefix = new Uint32Array(n), plen = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    const r = rnd() % 100;
    const l = r < 80 ? 24 : r < 95 ? 16 + (rnd() % 8) : 25 + (rnd() % 8);
    let a = (((1 + (rnd() % 223)) << 24) | (rnd() & 0xffffff)) >>> 0;
    const o1 = a >>> 24;
    if (o1 === 10 || o1 === 127) continue;
    a = (a & (0xffffffff << (32 - l))) >>> 0;
    const key = a + l * 2 ** 32;
    if (seen.has(key)) continue;
    seen.add(key);
    prefix[i] = a; plen[i] = l; i++;
  }
  return { n, prefix, plen };
}

/** k destinations: a random host inside a random route. */
export function makeDestinations(rs: RouteSet, k: number, seed = 2): Uint32Array {
  const rnd = xorshift(seed);
  const dst = new Uint32Array(k);
  for (let i = 0; i < k; i++) {
    const j = rnd() % rs.n;
    const host = rs.plen[j] === 32 ? 0 : rnd() & ((2 ** (32 - rs.plen[j])) - 1);
    dst[i] = (rs.prefix[j] | host) >>> 0;
  }
  return dst;
}

export function ipStr(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** An `ip -batch` file adding every route of `rs` via `gw`. */
export function writeBatch(rs: RouteSet, file: string, gw: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk: string[] = [];
    for (let i = 0; i < rs.n; i++) {
      chunk.push(`route add ${ipStr(rs.prefix[i])}/${rs.plen[i]} via ${gw}`);
      if (chunk.length === 65536 || i === rs.n - 1) { fs.writeSync(fd, chunk.join('\n') + '\n'); chunk.length = 0; }
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function macBytes(mac: string): number[] {
  return mac.split(':').map((x) => parseInt(x, 16));
}

/** IPv4 header checksum of the benchmark frame (total length 46, TTL 64, UDP, source `src`). */
export function ipChecksum(src: number, dst: number): number {
  let s = 0x4500 + 0x002e + 0x4011 + (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export const FRAME_LEN = 60; // 64 bytes on the wire with the FCS

/**
 * The frames of the generator, 60 bytes each, back to back: Ethernet (dst, src, IPv4), IPv4
 * (46 bytes, TTL 64, UDP, src → dst[i]), UDP (random source port → 5001, no checksum), zero payload.
 */
export function makeFrames(dst: Uint32Array, dstMac: string, srcMac: string, src: number, seed = 3): Uint8Array {
  const rnd = xorshift(seed);
  const f = new Uint8Array(dst.length * FRAME_LEN);
  const dm = macBytes(dstMac), sm = macBytes(srcMac);
  for (let i = 0; i < dst.length; i++) {
    const o = i * FRAME_LEN, d = dst[i], sport = 1024 + (rnd() % 60000), c = ipChecksum(src, d);
    f.set(dm, o); f.set(sm, o + 6); f[o + 12] = 0x08; f[o + 13] = 0x00;
    f.set([0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, c >>> 8, c & 255,
      src >>> 24, (src >>> 16) & 255, (src >>> 8) & 255, src & 255, d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255], o + 14);
    f.set([sport >>> 8, sport & 255, 0x13, 0x89, 0x00, 0x1a, 0x00, 0x00], o + 34);
  }
  return f;
}
