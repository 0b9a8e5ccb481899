// Flow hashes for ECMP member selection (ShmReader.groupSelect uses the low 8 bits): addresses,
// protocol and TCP/UDP/SCTP ports. Results are int32 (no HeapNumber boxing, see context.ts rd32).

import { rd32 } from './context';

const SEED = 0x1f0c5;

/** Protocols whose first 4 payload bytes are source and destination ports. */
export function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132 || proto === 136;
}

/**
 * The ports word (source << 16 | destination) of the IPv4 packet whose header is at m[o..] for flowHash4 (the same
 * for ipv4-lookup and esp-decrypt's forward4, so a flow keeps its ECMP member whichever way it goes); 0 for a
 * protocol without ports or a packet too short for them. Callers pass 0 for fragments. int32.
 */
export function ports4(m: Uint8Array, o: number, proto: number): number {
  const hl = (m[o] & 15) << 2;
  return hasPorts(proto) && ((m[o + 2] << 8) | m[o + 3]) >= hl + 4 ? rd32(m, o + hl) : 0;
}

function mix(h: number, w: number): number {
  let k = Math.imul(w, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** MurmurHash3 of (src, dst, proto, ports); int32. */
export function flowHash4(src: number, dst: number, proto: number, ports: number): number {
  return fmix(mix(mix(mix(mix(SEED, src), dst), proto), ports));
}

/** Same over the IPv6 addresses of the header at m[o..]; int32. */
export function flowHash6(m: Uint8Array, o: number, proto: number, ports: number): number {
  let h = SEED + 6;
  for (let p = o + 8; p < o + 40; p += 4) h = mix(h, (m[p] << 24) | (m[p + 1] << 16) | (m[p + 2] << 8) | m[p + 3]);
  return fmix(mix(mix(h, proto), ports));
}
