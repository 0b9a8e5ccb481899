// FIB resolution for the lookup nodes: the same answers as ShmReader.resolve4/resolve6, faster.
//
// Per (VRF, family), a "plan" is computed once per shm generation: when every rule of the VRF is
// an unconditional `lookup TABLE` (the Linux defaults: local, main, default) or `nop`, the plan is
// the list of FIB table slots (with their suppress_prefixlength) and a packet costs one lookup per
// table until one answers. Otherwise (selectors: from/to, iif, fwmark, tos, ipproto, ports, not;
// goto, blackhole...) the packet goes through ShmReader.resolve4/6 with its flow key. No rule
// mirrored for the VRF: tables local, main, default (as resolve4 does).

import { FIB_PLEN_SHIFT, FR_ACT_NOP, FR_ACT_TO_TBL, LOOKUP_BUSY, RTN_THROW, RULE_E } from '../shared-mem/layout';
import { READ_OK, RESOLVE_BUSY, RESOLVE_NONE, type FlowKey, type ShmReader } from '../shared-mem/reader';
import type { Vector } from './vector';

/** Tables in a plan at most; more makes the VRF "complex". */
const MAX_PLAN = 8;
const PLAN_COMPLEX = -1;
const DEFAULT_TABLES = [255, 254, 253];

/** Routes from which the lookup node runs the touch pass (FibResolver.bigFib). */
export const TOUCH_MIN_ROUTES = 65536;

/** resolve4/6 found a route: its FIB value is in FibResolver.value, its type in FibResolver.type. */
export const FOUND = 1;

/** Answers FibResolver.keep4 holds at most (a ring: a ticket is good until HANDOVER_SLOTS later keeps). */
export const HANDOVER_SLOTS = 1024;

/** resolve()'s IPv6 destination argument for IPv4 (not read). */
const NO_DST6 = new Uint32Array(4);

export class FibResolver {
  private readonly shm: ShmReader;
  private readonly maxVrfs: number;
  private gen = -1;
  private epoch = 1;
  // plans, index = vrf * 2 + (family === 6 ? 1 : 0)
  private readonly stamp: Uint32Array;
  private readonly count: Int32Array; // tables in the plan, or PLAN_COMPLEX
  private readonly slots: Int32Array; // MAX_PLAN per plan
  private readonly suppress: Int32Array;
  // IPv4 plans: the offsets of each table for ShmReader.lookup4o / peek4o, MAX_PLAN per plan
  private readonly sumBase: Int32Array;
  private readonly t24Base: Int32Array;
  private readonly defIdx: Int32Array;
  private readonly ruleIdx: Int32Array;
  private readonly ruleBuf = new Uint32Array(RULE_E.WORDS);
  /** Flow keys reused for the rule-based (complex) path. */
  readonly flow4: FlowKey = { src: 0, iif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0 };
  readonly flow6: FlowKey = { src: new Uint32Array(4), iif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0 };
  /** The FIB value found by the last resolve4/6 that returned FOUND, as an int32 (kind bits via >>> 30). */
  value = 0;
  /** Its route type (RTN_*, ShmReader.fibType of value). */
  type = 0;
  /**
   * resolve4's / resolve's memo of ShmReader.fibType for the last FIB value (kind and next hop / group index: the
   * prefix length does not matter), dropped at each vector: consecutive packets mostly share a next hop.
   */
  private typeKey = -1;
  private typeVal = 0;
  /**
   * True when the shared memory holds at least TOUCH_MIN_ROUTES routes (updated by beginVector): then
   * the FIB's tbl24 words are spread far beyond the caches and the touch pass (touchVector4) pays; with
   * fewer it only costs (~7 ns per packet with 1,000 routes).
   */
  bigFib = false;
  /** The threshold of bigFib (tests set it to 0 to run the touch pass on small tables). */
  touchMinRoutes = TOUCH_MIN_ROUTES;
  /**
   * keep4 / reuse4: answers handed from esp-decrypt (which resolves a decrypted packet's inner destination to tell
   * whether it is for this host) to ipv4-lookup (which would resolve it again), per ticket: the packet's frame
   * offset, the answer and the shm generation of the plans it came through.
   */
  private readonly hoOff = new Int32Array(HANDOVER_SLOTS).fill(-1);
  private readonly hoValue = new Int32Array(HANDOVER_SLOTS);
  private readonly hoType = new Int32Array(HANDOVER_SLOTS);
  private readonly hoGen = new Int32Array(HANDOVER_SLOTS);
  private hoNext = 0;
  /** Packets resolved through the plan / through ShmReader.resolve (statistics). */
  fast = 0;
  slow = 0;

  constructor(shm: ShmReader) {
    this.shm = shm;
    this.maxVrfs = shm.config.maxVrfs;
    const n = this.maxVrfs * 2;
    this.stamp = new Uint32Array(n);
    this.count = new Int32Array(n);
    this.slots = new Int32Array(n * MAX_PLAN);
    this.suppress = new Int32Array(n * MAX_PLAN);
    this.sumBase = new Int32Array(n * MAX_PLAN);
    this.t24Base = new Int32Array(n * MAX_PLAN);
    this.defIdx = new Int32Array(n * MAX_PLAN);
    this.ruleIdx = new Int32Array(shm.config.maxRules);
  }

  /** Call once per vector: plans are dropped when the shm generation moved. */
  beginVector(): void {
    this.typeKey = -1;
    const g = this.shm.generation();
    if (g === this.gen) return;
    this.gen = g;
    this.bigFib = this.shm.kindCount('route') >= this.touchMinRoutes;
    if (++this.epoch === 0x100000000) { this.epoch = 1; this.stamp.fill(0); }
  }

  /** Plan index of (vrf, family), computed if needed. */
  private plan(vrf: number, family: number): number {
    const p = vrf * 2 + (family === 6 ? 1 : 0);
    if (this.stamp[p] !== this.epoch) this.build(p, vrf, family);
    return p;
  }

  private build(p: number, vrf: number, family: number): void {
    const r = this.shm;
    this.stamp[p] = this.epoch;
    const n = r.rules(vrf, family, this.ruleIdx);
    let k = 0;
    const add = (table: number, sup: number): boolean => {
      const slot = family === 4 ? r.fib4Slot(vrf, table) : r.fib6Slot(vrf, table);
      if (slot < 0) return true; // no such table: the rule continues with the next one
      if (k === MAX_PLAN) return false;
      this.slots[p * MAX_PLAN + k] = slot;
      this.suppress[p * MAX_PLAN + k] = sup;
      if (family === 4) {
        this.sumBase[p * MAX_PLAN + k] = r.fib4SumBase(slot);
        this.t24Base[p * MAX_PLAN + k] = r.tbl24Base(slot);
        this.defIdx[p * MAX_PLAN + k] = r.fib4DefaultIndex(slot);
      }
      k++;
      return true;
    };
    if (n < 0) { this.count[p] = PLAN_COMPLEX; return; }
    if (n === 0) {
      for (const t of DEFAULT_TABLES) add(t, -1);
      this.count[p] = k;
      return;
    }
    const w = this.ruleBuf;
    for (let i = 0; i < n; i++) {
      if (r.readRule(this.ruleIdx[i], w) !== READ_OK) { this.count[p] = PLAN_COMPLEX; return; }
      const m = w[RULE_E.META], action = (m >>> 8) & 255;
      const selectors = ((m >>> 16) & 255) !== 0 || (m >>> 24) !== 0 || w[RULE_E.TOS] !== 0 || w[RULE_E.FWMASK] !== 0 ||
        (w[RULE_E.BITS] & (16 | 32 | 64 | 128 | 256)) !== 0 || w[RULE_E.IPPROTO] !== 0;
      if (action === FR_ACT_NOP) continue; // matching or not, a nop does nothing
      if (selectors || action !== FR_ACT_TO_TBL) { this.count[p] = PLAN_COMPLEX; return; }
      if (!add(w[RULE_E.TABLE], w[RULE_E.SUPPRESS] | 0)) { this.count[p] = PLAN_COMPLEX; return; }
    }
    this.count[p] = k;
  }

  /** True when packets of (vrf, family) need the flow key (set flow4 / flow6 before resolve). */
  needsFlow(vrf: number, family: number): boolean {
    if (!(vrf >= 0 && vrf < this.maxVrfs)) return false;
    return this.count[this.plan(vrf, family)] === PLAN_COMPLEX;
  }

  /**
   * Sets the flow key fields but the source (set by the caller: flow4.src, flow6.src words) for the
   * rule-based path: `tos` is the header's TOS / traffic class byte (only its 0x1c bits match rules,
   * as in Linux), `ports` the first 4 payload bytes (TCP/UDP/SCTP ports) or 0, `iif` the input link.
   */
  setFlow(family: number, tos: number, proto: number, ports: number, iif: string): void {
    const f = family === 4 ? this.flow4 : this.flow6;
    f.tos = tos & 0x1c;
    f.proto = proto;
    f.sport = ports >>> 16;
    f.dport = ports & 0xffff;
    f.iif = iif;
  }

  /**
   * Reads the tbl24 words resolve4(vrf, dst) will read, discarding them (into `sink`): called for
   * every packet of a vector before the vector is resolved, so that the cache and TLB misses of
   * independent packets overlap (memory-level parallelism) — with 1M routes each lookup is a miss
   * into a 64 MB table. Rule-based VRFs are not touched.
   */
  touch4(vrf: number, dst: number): void {
    if (!(vrf >= 0 && vrf < this.maxVrfs)) return;
    const p = this.plan(vrf, 4);
    const n = this.count[p];
    for (let k = 0; k < n; k++) this.sink ^= this.shm.peek4o(this.sumBase[p * MAX_PLAN + k], this.t24Base[p * MAX_PLAN + k], dst);
  }

  /**
   * touch4 for every packet of a vector (IPv4 header at off + 14; the plan looked up once per run
   * of packets of the same VRF).
   */
  touchVector4(v: Vector, m: Uint8Array, portVrf: Int32Array): void {
    const r = this.shm, sumBase = this.sumBase, t24Base = this.t24Base;
    let last = -2, p = 0, n = 0, sink = this.sink;
    for (let i = 0; i < v.n; i++) {
      const vrf = portVrf[v.port[i]];
      if (vrf !== last) {
        last = vrf;
        n = 0;
        if (vrf >= 0 && vrf < this.maxVrfs) { p = this.plan(vrf, 4); n = this.count[p]; }
      }
      if (n <= 0) continue;
      const o = v.off[i] + 30; // IPv4 destination
      const dst = (m[o] << 24) | (m[o + 1] << 16) | (m[o + 2] << 8) | m[o + 3];
      for (let k = 0, q = p * MAX_PLAN; k < n; k++, q++) sink ^= r.peek4o(sumBase[q], t24Base[q], dst);
    }
    this.sink = sink;
  }

  /** XOR of the words touch4 read (keeps the loads from being optimized away). */
  sink = 0;

  /**
   * Resolves an IPv4 destination (int32 or u32): FOUND (the FIB value is in `value`, its route
   * type in `type`) or a RESOLVE_* code (<= 0). flow4 must be set when needsFlow().
   */
  resolve4(vrf: number, dst: number): number {
    if (!(vrf >= 0 && vrf < this.maxVrfs)) return RESOLVE_NONE;
    const p = this.plan(vrf, 4);
    const n = this.count[p];
    if (n < 0) return this.resolve(vrf, 4, dst, NO_DST6);
    // the plan's loop of resolve(), IPv4 only (small enough to be inlined into the lookup node)
    this.fast++;
    const r = this.shm;
    for (let k = 0; k < n; k++) {
      const q = p * MAX_PLAN + k;
      const v = r.lookup4o(this.sumBase[q], this.t24Base[q], this.defIdx[q], dst);
      if (v === 0) continue;
      if (v === (LOOKUP_BUSY | 0)) return RESOLVE_BUSY;
      const key = v & ~(255 << FIB_PLEN_SHIFT);
      let type: number;
      if (key === this.typeKey) type = this.typeVal;
      else { type = r.fibType(v); this.typeKey = key; this.typeVal = type; }
      if (type === RTN_THROW) continue;
      const s = this.suppress[p * MAX_PLAN + k];
      if (s >= 0 && ((v >>> 22) & 255) <= s) continue;
      this.value = v;
      this.type = type;
      return FOUND;
    }
    return RESOLVE_NONE;
  }

  /**
   * Keeps the answer of the last resolve4 (FOUND, through a plan: the caller checked !needsFlow(vrf, 4)), or the
   * value / type of such an answer of this vector, for the packet whose frame starts at `off`: returns its ticket
   * (0 .. HANDOVER_SLOTS-1) for reuse4.
   */
  keep4(off: number, value = this.value, type = this.type): number {
    const k = this.hoNext;
    this.hoNext = (k + 1) & (HANDOVER_SLOTS - 1);
    this.hoOff[k] = off;
    this.hoValue[k] = value;
    this.hoType[k] = type;
    this.hoGen[k] = this.gen | 0;
    return k;
  }

  /**
   * resolve4 answered by ticket k of keep4 (value and type set, true) when the ticket still holds the answer kept
   * for the packet at frame offset `off` and the shared memory did not change since (the generation read by the
   * last beginVector is the one of that answer); else false (resolve4 then). A ticket is used once.
   */
  reuse4(k: number, off: number): boolean {
    if (this.hoOff[k] !== (off | 0) || this.hoGen[k] !== (this.gen | 0)) return false; // (offsets as int32)
    this.hoOff[k] = -1;
    this.value = this.hoValue[k];
    this.type = this.hoType[k];
    return true;
  }

  /** resolve4 for IPv6 (dst: 4 words); flow6 must be set when needsFlow(). */
  resolve6(vrf: number, dst: Uint32Array): number {
    return this.resolve(vrf, 6, 0, dst);
  }

  /** resolve4 (family 4, dst4) or resolve6 (family 6, dst6). */
  private resolve(vrf: number, family: number, dst4: number, dst6: Uint32Array): number {
    if (!(vrf >= 0 && vrf < this.maxVrfs)) return RESOLVE_NONE;
    const p = this.plan(vrf, family);
    const n = this.count[p];
    const r = this.shm;
    if (n < 0) {
      this.slow++;
      const v = family === 4 ? r.resolve4(vrf, dst4, this.flow4) : r.resolve6(vrf, dst6, this.flow6);
      if (v <= 0) return v;
      this.value = v | 0;
      this.type = r.fibType(this.value);
      return FOUND;
    }
    this.fast++;
    for (let k = 0; k < n; k++) {
      const slot = this.slots[p * MAX_PLAN + k];
      const v = family === 4 ? r.lookup4i(slot, dst4) : r.lookup6(slot, dst6) | 0;
      if (v === 0) continue;
      if (v === (LOOKUP_BUSY | 0)) return RESOLVE_BUSY;
      const key = v & ~(255 << FIB_PLEN_SHIFT);
      let type: number;
      if (key === this.typeKey) type = this.typeVal;
      else { type = r.fibType(v); this.typeKey = key; this.typeVal = type; }
      if (type === RTN_THROW) continue;
      const s = this.suppress[p * MAX_PLAN + k];
      if (s >= 0 && ((v >>> 22) & 255) <= s) continue;
      this.value = v;
      this.type = type;
      return FOUND;
    }
    return RESOLVE_NONE;
  }
}
