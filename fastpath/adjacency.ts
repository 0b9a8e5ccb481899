// Next hop -> (egress port, MTU, source MAC) and (next hop, neighbour address) -> destination MAC,
// for the rewrite nodes (per packet: resolve(), then writeMacs() once the checks passed). Both are
// read from shm (readNexthop, linkLookup/readLink, neighbourLookup/readNeighbour) into small
// direct-mapped caches that are valid for ONE vector only (an epoch stamp): the shm state is at
// most one vector old, and each next hop / neighbour is read (and its hit flag set) about once per
// vector instead of once per packet.

import { LINK_E, NEIGH_E, NH_E } from '../shared-mem/layout';
import { READ_BUSY, READ_OK, type ShmReader } from '../shared-mem/reader';
import { exceptionReason } from '../shared-mem/stats';
import { rd32, type FpContext } from './context';

const X_SHM_BUSY = exceptionReason('shm-busy');
const X_NOT_FP_PORT = exceptionReason('not-fp-port');
const X_EGRESS_DOWN = exceptionReason('egress-down');
const X_NO_NEIGHBOUR = exceptionReason('no-neighbour');

/** NUD states with a usable lladdr: REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT. */
export const NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;
const RTNH_F_DEAD = 1;

/** Next-hop gateway kinds (NH_E.META bits 16..17, shared-mem/addr.ts ADDR_*). */
export const GW_NONE = 0, GW_V4 = 1, GW_V6 = 2;

const NHC = 64; // next-hop cache slots
const NBC = 256; // neighbour cache slots

export class Adjacency {
  private readonly shm: ShmReader;
  private readonly ctx: FpContext;
  private epoch = 1;

  // next-hop cache (slot = nh & (NHC - 1))
  private readonly nhStamp = new Uint32Array(NHC);
  private readonly nhKey = new Int32Array(NHC);
  /** >= 0: egress port; < 0: -1 - exception reason. */
  readonly nhResult = new Int32Array(NHC);
  readonly nhVrf = new Uint32Array(NHC);
  readonly nhIfindex = new Uint32Array(NHC);
  readonly nhFamily = new Uint8Array(NHC); // family of the neighbour: gateway's, or the route's
  readonly nhGwKind = new Uint8Array(NHC);
  readonly nhGw = new Int32Array(NHC * 4); // int32: no boxing when passed on (context.ts rd32)
  readonly nhMtu = new Uint32Array(NHC); // min(link MTU, route MTU)
  readonly nhSrcMac = new Uint8Array(NHC * 6);

  // neighbour cache
  private readonly nbStamp = new Uint32Array(NBC);
  private readonly nbNh = new Int32Array(NBC);
  private readonly nbAddr = new Int32Array(NBC * 4);
  /** 0: ok, < 0: -1 - exception reason. */
  readonly nbResult = new Int32Array(NBC);
  readonly nbMac = new Uint8Array(NBC * 6);
  private readonly nbLast = new Uint16Array(NBC / 2); // way filled last, per set

  private readonly nhBuf = new Uint32Array(NH_E.WORDS);
  private readonly linkBuf = new Uint32Array(LINK_E.WORDS);
  private readonly linkBufU8 = new Uint8Array(this.linkBuf.buffer);
  private readonly nbBuf = new Uint32Array(NEIGH_E.WORDS);
  private readonly nbBufU8 = new Uint8Array(this.nbBuf.buffer);
  private readonly addr6 = new Uint32Array(4);

  /** Next-hop cache slot of the last resolve() (nhResult: egress port, nhMtu). */
  nhSlot = 0;
  /** Neighbour entries read from shm (statistics). */
  neighbourReads = 0;

  constructor(ctx: FpContext) {
    this.ctx = ctx;
    this.shm = ctx.shm;
  }

  /** Invalidates both caches (call at the start of every vector). */
  beginVector(): void {
    if (++this.epoch === 0x100000000) {
      this.epoch = 1;
      this.nhStamp.fill(0);
      this.nbStamp.fill(0);
    }
  }

  /**
   * Next hop `nh` of a packet of `family` (4 or 6) whose network header is at m[o..]: the next hop
   * (egress port, see nexthop) and its neighbour: the gateway (IPv4, or IPv6 as in RFC 5549), or
   * the packet's destination for a connected route. Returns the neighbour cache slot (>= 0; the
   * next-hop slot is left in nhSlot), or -1 - exception reason when either is unusable.
   */
  resolve(nh: number, family: number, m: Uint8Array, o: number): number {
    const s = this.nexthop(nh);
    this.nhSlot = s;
    const e = this.nhResult[s];
    if (e < 0) return e;
    const gk = this.nhGwKind[s], gw = this.nhGw, g = s * 4;
    let nf = family, a0: number, a1 = 0, a2 = 0, a3 = 0; // int32, like the cache keys
    if (gk === GW_V4) { nf = 4; a0 = gw[g]; } // (on an IPv6 route: not in Linux, harmless)
    // an empty gateway (ADDR_EMPTY, 3) counts as none for IPv4 routes and as :: for IPv6 ones
    else if (gk === GW_V6 || (gk !== GW_NONE && family === 6)) { nf = 6; a0 = gw[g]; a1 = gw[g + 1]; a2 = gw[g + 2]; a3 = gw[g + 3]; }
    else if (family === 4) a0 = rd32(m, o + 16);
    else { a0 = rd32(m, o + 24); a1 = rd32(m, o + 28); a2 = rd32(m, o + 32); a3 = rd32(m, o + 36); }
    const t = this.neighbour(s, nf, a0, a1, a2, a3);
    const r = this.nbResult[t];
    return r < 0 ? r : t;
  }

  /** Writes the Ethernet addresses of next-hop slot s / neighbour slot t into the frame at m[off..]. */
  writeMacs(m: Uint8Array, off: number, s: number, t: number): void {
    const dst = this.nbMac, src = this.nhSrcMac, d = t * 6, q = s * 6;
    m[off] = dst[d]; m[off + 1] = dst[d + 1]; m[off + 2] = dst[d + 2];
    m[off + 3] = dst[d + 3]; m[off + 4] = dst[d + 4]; m[off + 5] = dst[d + 5];
    m[off + 6] = src[q]; m[off + 7] = src[q + 1]; m[off + 8] = src[q + 2];
    m[off + 9] = src[q + 3]; m[off + 10] = src[q + 4]; m[off + 11] = src[q + 5];
  }

  /** Cache slot of next hop `nh`, read from shm if needed. Check nhResult[slot]. */
  nexthop(nh: number): number {
    const s = nh & (NHC - 1);
    if (this.nhStamp[s] === this.epoch && this.nhKey[s] === nh) return s;
    this.nhStamp[s] = this.epoch;
    this.nhKey[s] = nh;
    this.nhResult[s] = this.readNexthop(s, nh);
    return s;
  }

  private readNexthop(s: number, nh: number): number {
    const r = this.shm, b = this.nhBuf;
    if (r.readNexthop(nh, b) !== READ_OK) return -1 - X_SHM_BUSY; // freed or locked since the lookup
    if (b[NH_E.FLAGS] & RTNH_F_DEAD) return -1 - X_EGRESS_DOWN;
    const meta = b[NH_E.META];
    const vrf = b[NH_E.VRF], ifindex = b[NH_E.IFINDEX], gk = (meta >>> 16) & 3;
    this.nhVrf[s] = vrf;
    this.nhIfindex[s] = ifindex;
    this.nhGwKind[s] = gk;
    this.nhFamily[s] = gk === GW_V4 ? 4 : gk === GW_V6 ? 6 : (meta >>> 8) & 255;
    for (let k = 0; k < 4; k++) this.nhGw[s * 4 + k] = b[NH_E.GW + k];
    const li = r.linkLookup(vrf, ifindex);
    if (li < 0) return li === -2 ? -1 - X_SHM_BUSY : -1 - X_NOT_FP_PORT;
    const l = this.linkBuf;
    const res = r.readLink(li, l);
    if (res !== READ_OK) return res === READ_BUSY ? -1 - X_SHM_BUSY : -1 - X_NOT_FP_PORT;
    const port = l[LINK_E.PORT] | 0;
    if (port < 0 || port >= this.ctx.nports || ((l[LINK_E.LENS] >>> 16) & 255) !== 6) return -1 - X_NOT_FP_PORT;
    if ((l[LINK_E.BITS] & 1) === 0) return -1 - X_EGRESS_DOWN;
    let mtu = l[LINK_E.MTU];
    const rm = b[NH_E.MTU];
    if (rm > 0 && rm < mtu) mtu = rm;
    this.nhMtu[s] = mtu;
    const lb = this.linkBufU8;
    for (let k = 0; k < 6; k++) this.nhSrcMac[s * 6 + k] = lb[LINK_E.MAC * 4 + k];
    return port;
  }

  /**
   * Cache slot of the neighbour (family, a0..a3) on next hop slot `s` (its VRF and ifindex), read
   * from shm if needed; marks it hit when read. Check nbResult[slot].
   */
  neighbour(s: number, family: number, a0: number, a1: number, a2: number, a3: number): number {
    const nh = this.nhKey[s];
    // murmur3 finalizer over the key; 2-way set associative (slots t and t ^ 1)
    let h = Math.imul(nh, 0x9e3779b1) ^ a0 ^ Math.imul(a1 ^ a2, 0x85ebca6b) ^ Math.imul(a3, 0xc2b2ae35);
    h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
    const t0 = h & (NBC - 1), ep = this.epoch;
    if (this.nbStamp[t0] === ep && this.nbMatch(t0, nh, a0, a1, a2, a3)) return t0;
    const t1 = t0 ^ 1;
    if (this.nbStamp[t1] === ep && this.nbMatch(t1, nh, a0, a1, a2, a3)) return t1;
    // miss: a free way of the set, else the way not filled last
    const t = this.nbStamp[t0] !== ep ? t0 : this.nbStamp[t1] !== ep ? t1 : (this.nbLast[t0 >> 1] === t0 ? t1 : t0);
    this.nbLast[t0 >> 1] = t;
    const q = t * 4;
    this.nbStamp[t] = ep;
    this.nbNh[t] = nh;
    this.nbAddr[q] = a0; this.nbAddr[q + 1] = a1; this.nbAddr[q + 2] = a2; this.nbAddr[q + 3] = a3;
    this.nbResult[t] = this.readNeighbour(t, this.nhVrf[s], this.nhIfindex[s], family, a0, a1, a2, a3);
    return t;
  }

  private nbMatch(t: number, nh: number, a0: number, a1: number, a2: number, a3: number): boolean {
    const q = t * 4, a = this.nbAddr;
    return this.nbNh[t] === nh && a[q] === a0 && a[q + 1] === a1 && a[q + 2] === a2 && a[q + 3] === a3;
  }

  private readNeighbour(t: number, vrf: number, ifindex: number, family: number, a0: number, a1: number, a2: number, a3: number): number {
    const r = this.shm;
    this.neighbourReads++;
    let ni: number;
    if (family === 6) {
      const a = this.addr6;
      a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
      ni = r.neighbourLookup(vrf, ifindex, 6, a);
    } else ni = r.neighbourLookup(vrf, ifindex, 4, a0);
    if (ni < 0) return ni === -2 ? -1 - X_SHM_BUSY : -1 - X_NO_NEIGHBOUR;
    const b = this.nbBuf;
    const res = r.readNeighbour(ni, b);
    if (res !== READ_OK) return res === READ_BUSY ? -1 - X_SHM_BUSY : -1 - X_NO_NEIGHBOUR;
    const meta = b[NEIGH_E.META];
    if ((b[NEIGH_E.STATE] & NUD_USABLE) === 0 || (meta & (1 << 16)) === 0 || ((meta >>> 8) & 255) !== 6) return -1 - X_NO_NEIGHBOUR;
    const bb = this.nbBufU8;
    for (let k = 0; k < 6; k++) this.nbMac[t * 6 + k] = bb[NEIGH_E.LLADDR * 4 + k];
    if (this.ctx.markHits) r.markNeighbourHit(ni);
    return 0;
  }
}
