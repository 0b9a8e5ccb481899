// ShmReader: read access to the lfp shared memory from any process (fast path, fpctl, daemons).
// Hot-path functions (lookup4/6, readNexthop, groupSelect, neighbourLookup, saLookup, ...) never
// allocate; list() and the other object-returning helpers do. See README.md.

import type { AnyObject, Family, Neighbour, ObjectKind, Route, Rule } from '../lib/model';
import {
  ADDR_E, COUNTER_NAMES, DEFAULT_SHM_PATH, FIB4D_E, FIB4_SUM_WORDS, FIB6D_E, FIB6E, FIB6_EMPTY, FIB6_USED, FIB_GROUP, FIB_INDEX_MASK,
  FIB_NEXTHOP, FIB_TBL8, FR_ACT_BLACKHOLE, FR_ACT_GOTO, FR_ACT_NOP, FR_ACT_PROHIBIT, FR_ACT_TO_TBL,
  FR_ACT_UNREACHABLE, GROUP_BUCKETS, GROUP_E, HASH_HDR_WORDS, HASH_TOMB, HDR, LINK_E, LOOKUP_BUSY, NEIGH_E, NH_E,
  POLICY_E, ROUTE_E, RTN_THROW, RULE_E, RULE_ORDER, SA_E, SHM_MAGIC, STAT_KINDS, TBL24_ENTRIES, TBL8_ENTRIES,
  VRF_E, hashFib6, hashLink, hashNeigh, hashPolicy, hashSa, loadNative, validateHeader, type CounterName, type Layout,
  type RegionName, type ShmConfig, type StatKind,
} from './layout';
import {
  decodeAddress, decodeLink, decodeNeighbour, decodeNexthop, decodePolicy, decodeRouteBase, decodeRule, decodeSa,
  decodeVrf, modelNexthop, type NexthopInfo,
} from './entries';
import { ADDR_V4, ADDR_V6, strEquals } from './addr';

/** An entry stayed write-locked (odd sequence) for longer than the retry bound. */
export class ShmBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShmBusyError';
  }
}

/** Results of the read*(index, out) functions. */
export const READ_OK = 1;
export const READ_FREE = 0; // the entry is not in use
export const READ_BUSY = -1; // still being written after the retry bound

/** Index lookups (neighbourLookup, linkLookup, saLookup, policyLookup) return an index, NOT_FOUND or BUSY. */
export const NOT_FOUND = -1;
export const BUSY = -2;

/** resolve4/resolve6 results besides a FIB value (> 0). */
export const RESOLVE_NONE = 0; // no route: ENETUNREACH
export const RESOLVE_BLACKHOLE = -1; // rule action blackhole (EINVAL)
export const RESOLVE_UNREACHABLE = -2; // rule action unreachable (ENETUNREACH)
export const RESOLVE_PROHIBIT = -3; // rule action prohibit (EACCES)
export const RESOLVE_BUSY = -4;

/** Spins on an odd sequence word before giving up (hot path). */
export const MAX_SPINS = 1 << 16;

/** Flow fields the rules can match on (all optional; numbers in host order). */
export interface FlowKey {
  src?: number | Uint32Array; // IPv4 u32 or 4 IPv6 words
  iif?: string; // input interface name ("lo" for locally generated traffic, as in Linux)
  oif?: string;
  mark?: number;
  tos?: number;
  proto?: number;
  sport?: number;
  dport?: number;
}

export interface KindStat { generation: number; count: number }

export interface ShmHeaderInfo {
  name: string;
  layoutVersion: number;
  totalSize: number;
  config: ShmConfig;
  writerPid: number;
  created: number; // unix seconds
  heartbeatMs: number; // unix milliseconds of the writer's last heartbeat
  generation: number;
  epoch: number;
  syncing: boolean;
  dirty: boolean; // the writer is inside a write operation (or died in one)
  kinds: Record<StatKind, KindStat>;
  counters: Record<CounterName, number>;
}

export interface FibTableInfo { family: Family; slot: number; vrf: number; table: number }

export interface GroupInfo { members: { nexthop: number; weight: number }[]; buckets: number[] }

export type KindObject<K extends ObjectKind> = Extract<AnyObject, { kind: K }>;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export class ShmReader {
  readonly layout: Layout;
  readonly config: ShmConfig;
  readonly name: string;
  readonly writable: boolean;
  /** Sequence-lock retries observed by this reader (statistics). */
  retries = 0;

  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly u64: BigUint64Array;
  private readonly base: Record<RegionName, number>; // word offsets
  private readonly scratch: Uint32Array;
  private readonly scratchU8: Uint8Array;
  private readonly nhScratch = new Uint32Array(NH_E.WORDS);
  private readonly grScratch = new Uint32Array(GROUP_E.WORDS);
  private readonly ruleIdx: Int32Array;
  private readonly ruleBuf = new Uint32Array(RULE_E.WORDS);
  private readonly ruleBufU8 = new Uint8Array(this.ruleBuf.buffer);
  private readonly addrBuf = new Uint32Array(4);
  private readonly srcBuf = new Uint32Array(4);

  private constructor(sab: SharedArrayBuffer, layout: Layout, name: string, writable: boolean) {
    this.layout = layout;
    this.config = layout.config;
    this.name = name;
    this.writable = writable;
    this.u32 = new Uint32Array(sab, 0, layout.totalSize / 4);
    this.i32 = new Int32Array(sab, 0, layout.totalSize / 4);
    this.u8 = new Uint8Array(sab, 0, layout.totalSize);
    this.u64 = new BigUint64Array(sab, 0, HDR.WORDS / 2);
    // An object literal with every region: a fast-properties object (built key by key from {}, its 22
    // properties would turn it into a dictionary, and every this.base.X of the hot path into a slow
    // LoadIC call).
    const b: Record<RegionName, number> = {
      header: 0, vrfs: 0, links: 0, linkHash: 0, addrs: 0, routes: 0, nexthops: 0, groups: 0, fib4Desc: 0,
      tbl24: 0, tbl8: 0, fib4Sum: 0, fib6Desc: 0, fib6Hash: 0, rules: 0, ruleOrder: 0, neighs: 0, neighHash: 0, policies: 0,
      policyHash: 0, sas: 0, saHash: 0,
    };
    for (const r of Object.values(layout.regions)) b[r.name] = r.offset / 4;
    this.base = b;
    this.scratch = new Uint32Array(Math.max(SA_E.WORDS, POLICY_E.WORDS, GROUP_E.WORDS));
    this.scratchU8 = new Uint8Array(this.scratch.buffer);
    this.ruleIdx = new Int32Array(layout.config.maxRules);
  }

  /** Attaches to a mapping; validates magic, layout version and size. */
  static attach(sab: SharedArrayBuffer, opts: { name?: string; readonly?: boolean } = {}): ShmReader {
    const name = opts.name ?? 'shared memory';
    return new ShmReader(sab, validateHeader(sab, name), name, !opts.readonly);
  }

  /** Maps `path` with the native addon (read-only unless writable: hit flags need a writable map). */
  static open(path = DEFAULT_SHM_PATH, opts: { writable?: boolean } = {}): ShmReader {
    const sab = loadNative().shm.map(path, { size: 0, create: false, readonly: !opts.writable });
    return ShmReader.attach(sab, { name: path, readonly: !opts.writable });
  }

  // -------------------------------------------------------------------------------------------
  // Header

  generation(): number { return Atomics.load(this.u32, HDR.GEN); }

  kindGeneration(kind: StatKind): number { return Atomics.load(this.u32, HDR.KIND_GEN + STAT_KINDS.indexOf(kind)); }
  /** Entries of a kind in use (header counter). */
  kindCount(kind: StatKind): number { return Atomics.load(this.u32, HDR.KIND_COUNT + STAT_KINDS.indexOf(kind)); }

  /** Milliseconds since the writer's last heartbeat. */
  heartbeatAgeMs(now = Date.now()): number {
    return now - Number(Atomics.load(this.u64, HDR.HEARTBEAT_MS_U64));
  }

  header(): ShmHeaderInfo {
    const u = this.u32;
    const kinds = {} as Record<StatKind, KindStat>;
    STAT_KINDS.forEach((k, i) => {
      kinds[k] = { generation: Atomics.load(u, HDR.KIND_GEN + i), count: Atomics.load(u, HDR.KIND_COUNT + i) };
    });
    const counters = {} as Record<CounterName, number>;
    COUNTER_NAMES.forEach((n, i) => { counters[n] = Number(Atomics.load(this.u64, HDR.COUNTERS_U64 + i)); });
    return {
      name: this.name,
      layoutVersion: u[HDR.VERSION],
      totalSize: this.layout.totalSize,
      config: { ...this.config },
      writerPid: Atomics.load(u, HDR.WRITER_PID),
      created: u[HDR.CREATED],
      heartbeatMs: Number(Atomics.load(this.u64, HDR.HEARTBEAT_MS_U64)),
      generation: Atomics.load(u, HDR.GEN),
      epoch: Atomics.load(u, HDR.EPOCH),
      syncing: Atomics.load(u, HDR.SYNCING) !== 0,
      dirty: Atomics.load(u, HDR.DIRTY) !== 0,
      kinds,
      counters,
    };
  }

  /** True while the mapping still carries the lfp magic (a fresh file replaces the old one). */
  valid(): boolean { return Atomics.load(this.u32, HDR.MAGIC) === SHM_MAGIC; }

  // -------------------------------------------------------------------------------------------
  // Sequence-locked copies

  /** Copies `words` words of the entry at word offset `off` into out: READ_OK / READ_FREE / READ_BUSY. */
  private copy(off: number, words: number, out: Uint32Array | Int32Array): number {
    const u = this.u32;
    for (let spin = 0; spin < MAX_SPINS; spin++) {
      const s1 = Atomics.load(u, off);
      if ((s1 & 1) === 0) {
        for (let i = 1; i < words; i++) out[i] = u[off + i];
        if (Atomics.load(u, off) === s1) {
          out[0] = s1;
          return out[1] === 1 ? READ_OK : READ_FREE;
        }
      }
      this.retries++;
    }
    return READ_BUSY;
  }

  /** copy() that waits up to ~1 s (sleeping) for a busy entry, then throws ShmBusyError. */
  private copySlow(off: number, words: number, out: Uint32Array, what: string): number {
    const deadline = Date.now() + 1000;
    for (;;) {
      const r = this.copy(off, words, out);
      if (r !== READ_BUSY) return r;
      if (Date.now() > deadline) throw new ShmBusyError(`${this.name}: ${what} stayed locked for 1 s (writer stuck or dead mid-write?)`);
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }

  readNexthop(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxNexthops)) return READ_FREE;
    return this.copy(this.base.nexthops + index * NH_E.WORDS, NH_E.WORDS, out);
  }
  readNeighbour(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxNeigh)) return READ_FREE;
    return this.copy(this.base.neighs + index * NEIGH_E.WORDS, NEIGH_E.WORDS, out);
  }
  readLink(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxLinks)) return READ_FREE;
    return this.copy(this.base.links + index * LINK_E.WORDS, LINK_E.WORDS, out);
  }
  readRule(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxRules)) return READ_FREE;
    return this.copy(this.base.rules + index * RULE_E.WORDS, RULE_E.WORDS, out);
  }
  readSa(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxSas)) return READ_FREE;
    return this.copy(this.base.sas + index * SA_E.WORDS, SA_E.WORDS, out);
  }
  readPolicy(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxPolicies)) return READ_FREE;
    return this.copy(this.base.policies + index * POLICY_E.WORDS, POLICY_E.WORDS, out);
  }
  readRoute(index: number, out: Int32Array | Uint32Array): number {
    if (!(index >= 0 && index < this.config.maxRoutes)) return READ_FREE;
    return this.copy(this.base.routes + index * ROUTE_E.WORDS, ROUTE_E.WORDS, out);
  }

  // -------------------------------------------------------------------------------------------
  // Objects (allocating; for fpctl and the daemons)

  /** Every object of a kind (optionally of one VRF); each entry is a consistent snapshot. */
  list<K extends ObjectKind>(kind: K, opts: { vrf?: number } = {}): KindObject<K>[] {
    const out: AnyObject[] = [];
    const vrf = opts.vrf;
    const sc = this.scratch, b = this.scratchU8, u = this.u32;
    const scan = (region: RegionName, words: number, n: number, vrfWord: number, push: () => void): void => {
      const base = this.base[region];
      for (let i = 0; i < n; i++) {
        const off = base + i * words;
        if (u[off + 1] !== 1 && (u[off] & 1) === 0) continue; // free (and not being written)
        if (this.copySlow(off, words, sc, `${kind} entry ${i}`) !== READ_OK) continue;
        if (vrf !== undefined && sc[vrfWord] !== vrf) continue;
        push();
      }
    };
    const c = this.config;
    switch (kind) {
      case 'vrf': scan('vrfs', VRF_E.WORDS, c.maxVrfs, VRF_E.VRF, () => out.push({ kind: 'vrf', obj: decodeVrf(sc, b) })); break;
      case 'link': scan('links', LINK_E.WORDS, c.maxLinks, LINK_E.VRF, () => out.push({ kind: 'link', obj: decodeLink(sc, b) })); break;
      case 'address': scan('addrs', ADDR_E.WORDS, c.maxAddrs, ADDR_E.VRF, () => out.push({ kind: 'address', obj: decodeAddress(sc) })); break;
      case 'neighbour': scan('neighs', NEIGH_E.WORDS, c.maxNeigh, NEIGH_E.VRF, () => out.push({ kind: 'neighbour', obj: decodeNeighbour(sc, b) })); break;
      case 'policy': scan('policies', POLICY_E.WORDS, c.maxPolicies, POLICY_E.VRF, () => out.push({ kind: 'policy', obj: decodePolicy(sc) })); break;
      case 'sa': scan('sas', SA_E.WORDS, c.maxSas, SA_E.VRF, () => out.push({ kind: 'sa', obj: decodeSa(sc, b) })); break;
      case 'rule': {
        const tmp: { r: Rule; serial: number }[] = [];
        scan('rules', RULE_E.WORDS, c.maxRules, RULE_E.VRF, () => tmp.push({ r: decodeRule(sc, b), serial: sc[RULE_E.SERIAL] }));
        tmp.sort((x, y) => x.r.vrf - y.r.vrf || x.r.family - y.r.family || x.r.priority - y.r.priority || x.serial - y.serial);
        for (const t of tmp) out.push({ kind: 'rule', obj: t.r });
        break;
      }
      case 'route': {
        const base = this.base.routes;
        for (let i = 0; i < c.maxRoutes; i++) {
          const off = base + i * ROUTE_E.WORDS;
          if (u[off + 1] !== 1 && (u[off] & 1) === 0) continue;
          if (vrf !== undefined && u[off + ROUTE_E.VRF] !== vrf) continue;
          const r = this.routeAt(i);
          if (r) out.push({ kind: 'route', obj: r });
        }
        break;
      }
      default: throw new TypeError(`unknown object kind "${kind as string}"`);
    }
    return out as KindObject<K>[];
  }

  /** The route of entry `index` with its next hops (consistent with the route entry), or null. */
  routeAt(index: number): Route | null {
    const off = this.base.routes + index * ROUTE_E.WORDS;
    const sc = this.scratch, u = this.u32;
    const deadline = Date.now() + 1000;
    for (;;) {
      if (this.copySlow(off, ROUTE_E.WORDS, sc, `route entry ${index}`) !== READ_OK) return null;
      const s1 = sc[0];
      const r = decodeRouteBase(sc);
      const n = (sc[ROUTE_E.META2] >>> 16) & 255;
      const ref = sc[ROUTE_E.REF], ri = ref & FIB_INDEX_MASK;
      let ok = true;
      if ((ref >>> 30) === FIB_NEXTHOP) {
        ok = this.readNexthop(ri, this.nhScratch) === READ_OK;
        if (ok && n === 1) r.nexthops.push(modelNexthop(this.nhScratch, sc[ROUTE_E.WEIGHT]));
      } else if ((ref >>> 30) === FIB_GROUP && ri < this.config.maxGroups) {
        const g = this.grScratch;
        ok = this.copy(this.base.groups + ri * GROUP_E.WORDS, GROUP_E.WORDS, g) === READ_OK;
        for (let k = 0; ok && k < g[GROUP_E.COUNT] && k < 16; k++) {
          ok = this.readNexthop(g[GROUP_E.MEMBERS + k], this.nhScratch) === READ_OK;
          if (ok) r.nexthops.push(modelNexthop(this.nhScratch, g[GROUP_E.WEIGHTS + k]));
        }
      } else ok = false;
      // The next hop / group is valid for this route only if the route did not change meanwhile.
      if (ok && Atomics.load(u, off) === s1) return r;
      this.retries++;
      if (Date.now() > deadline) throw new ShmBusyError(`${this.name}: route entry ${index} kept changing for 1 s`);
    }
  }

  /** Decoded next hop (null when the index is not in use). */
  nexthop(index: number): NexthopInfo | null {
    const r = this.readNexthop(index, this.nhScratch);
    if (r === READ_BUSY) throw new ShmBusyError(`${this.name}: next hop ${index} busy`);
    return r === READ_OK ? decodeNexthop(this.nhScratch) : null;
  }

  group(index: number): GroupInfo | null {
    if (!(index >= 0 && index < this.config.maxGroups)) return null;
    const g = this.grScratch;
    if (this.copySlow(this.base.groups + index * GROUP_E.WORDS, GROUP_E.WORDS, g, `group ${index}`) !== READ_OK) return null;
    const members: GroupInfo['members'] = [];
    for (let k = 0; k < g[GROUP_E.COUNT]; k++) members.push({ nexthop: g[GROUP_E.MEMBERS + k], weight: g[GROUP_E.WEIGHTS + k] });
    const bytes = new Uint8Array(g.buffer, GROUP_E.BUCKETS * 4, GROUP_BUCKETS);
    return { members, buckets: Array.from(bytes) };
  }

  /** FIB tables in use. */
  fibTables(): FibTableInfo[] {
    const out: FibTableInfo[] = [];
    const sc = this.scratch;
    for (let s = 0; s < this.config.fib4Tables; s++) {
      if (this.copySlow(this.base.fib4Desc + s * FIB4D_E.WORDS, FIB4D_E.WORDS, sc, 'fib4 descriptor') === READ_OK) {
        out.push({ family: 4, slot: s, vrf: sc[FIB4D_E.VRF], table: sc[FIB4D_E.TABLE] });
      }
    }
    for (let s = 0; s < this.config.fib6Tables; s++) {
      if (this.copySlow(this.base.fib6Desc + s * FIB6D_E.WORDS, FIB6D_E.WORDS, sc, 'fib6 descriptor') === READ_OK) {
        out.push({ family: 6, slot: s, vrf: sc[FIB6D_E.VRF], table: sc[FIB6D_E.TABLE] });
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // FIB (no allocation)

  private slotOf(descBase: number, words: number, n: number, vrf: number, table: number): number {
    const u = this.u32;
    for (let s = 0; s < n; s++) {
      const off = descBase + s * words;
      for (let spin = 0; spin < MAX_SPINS; spin++) {
        const s1 = Atomics.load(u, off);
        if (s1 & 1) { this.retries++; continue; }
        const hit = u[off + 1] === 1 && u[off + 2] === vrf && u[off + 3] === table;
        if (Atomics.load(u, off) !== s1) { this.retries++; continue; }
        if (hit) return s;
        break;
      }
    }
    return -1;
  }

  /** Slot of the IPv4 FIB of (vrf, table), -1 when it has no IPv4 route. */
  fib4Slot(vrf: number, table: number): number {
    return this.slotOf(this.base.fib4Desc, FIB4D_E.WORDS, this.config.fib4Tables, vrf, table);
  }

  /** Slot of the IPv6 FIB of (vrf, table), -1 when it has no IPv6 route. */
  fib6Slot(vrf: number, table: number): number {
    return this.slotOf(this.base.fib6Desc, FIB6D_E.WORDS, this.config.fib6Tables, vrf, table);
  }

  /**
   * Longest-prefix match of an IPv4 address (host-order u32): the FIB value (0 = no route,
   * LOOKUP_BUSY when the word kept changing). A 0 in tbl24 / tbl8 means "no prefix longer than /0":
   * the table's default-route word answers then.
   */
  lookup4(slot: number, addr: number): number {
    return this.lookup4i(slot, addr) >>> 0;
  }

  /**
   * lookup4 returning the word as an int32 (LOOKUP_BUSY is -1): for the fast path, where a uint32
   * of 2^31 or more (ECMP values, tbl8 pointers) would be a heap number in Node 20 at every call.
   */
  lookup4i(slot: number, addr: number): number {
    if (slot < 0) return 0;
    return this.lookup4o(this.fib4SumBase(slot), this.tbl24Base(slot), this.fib4DefaultIndex(slot), addr);
  }

  /** Word offset of the summary bitmap of IPv4 table `slot` (for lookup4o / peek4o; slot >= 0). */
  fib4SumBase(slot: number): number { return this.base.fib4Sum + slot * FIB4_SUM_WORDS; }
  /** Word offset of the tbl24 of IPv4 table `slot` (for lookup4o / peek4o; slot >= 0). */
  tbl24Base(slot: number): number { return this.base.tbl24 + slot * TBL24_ENTRIES; }
  /** Word index of the DEFAULT word of IPv4 table `slot` (for lookup4o; slot >= 0). */
  fib4DefaultIndex(slot: number): number { return this.base.fib4Desc + slot * FIB4D_E.WORDS + FIB4D_E.DEFAULT; }

  /**
   * lookup4i of a table given by the three offsets above (the fast path computes them once per plan):
   * the one implementation of the IPv4 lookup protocol.
   */
  lookup4o(sumBase: number, t24Base: number, defIdx: number, addr: number): number {
    const u = this.i32;
    // Summary bit of the /16 clear: no tbl24 word of it is non-zero, DEFAULT is the answer and tbl24
    // is not touched. Two plain loads, in either order (layout.ts: the one race outcome, "no route in
    // this table", sends the packet on to the next table or to Linux).
    if (((u[sumBase + (addr >>> 21)] >>> ((addr >>> 16) & 31)) & 1) === 0) return u[defIdx];
    const i24 = t24Base + (addr >>> 8);
    let w = u[i24];
    if ((w >>> 30) === FIB_TBL8) {
      // The group may have been freed and reused (a stalled reader): its entry counts only if the
      // tbl24 word still holds the same pointer (group index and incarnation) after it was read.
      const p = w;
      w = Atomics.load(u, this.base.tbl8 + (p & FIB_INDEX_MASK) * TBL8_ENTRIES + (addr & 255));
      if (Atomics.load(u, i24) !== p) w = this.word4(i24, addr);
    }
    if (w !== 0) return w;
    // The default word is returned only when the tbl24 / tbl8 word was 0 both before and after it
    // was read (ordered loads): otherwise a lookup racing two updates (add a more specific prefix,
    // delete the default) could answer "no route" although one of the two routes always existed.
    w = this.word4(i24, addr);
    if (w !== 0) return w;
    const d = Atomics.load(u, defIdx);
    w = this.word4(i24, addr);
    return w !== 0 ? w : d;
  }

  /**
   * The tbl24 word lookup4i(slot, addr) would read (0 when the summary bit of its /16 is clear): no
   * ordering, no answer — the fast path reads it for a whole vector before resolving it, so that
   * the cache / TLB misses of independent packets overlap instead of being waited for one by one.
   */
  peek4(slot: number, addr: number): number {
    return this.peek4o(this.fib4SumBase(slot), this.tbl24Base(slot), addr);
  }

  /** peek4 of a table given by its offsets (fib4SumBase, tbl24Base). */
  peek4o(sumBase: number, t24Base: number, addr: number): number {
    const u = this.i32;
    if (((u[sumBase + (addr >>> 21)] >>> ((addr >>> 16) & 31)) & 1) === 0) return 0;
    return u[t24Base + (addr >>> 8)];
  }

  /** tbl24 / tbl8 word of an address with ordered (Atomics) loads, the tbl8 pointer re-checked (int32). */
  private word4(i24: number, addr: number): number {
    const u = this.i32;
    for (let spin = 0; spin < MAX_SPINS; spin++) {
      const p = Atomics.load(u, i24);
      if ((p >>> 30) !== FIB_TBL8) return p;
      const w = Atomics.load(u, this.base.tbl8 + (p & FIB_INDEX_MASK) * TBL8_ENTRIES + (addr & 255));
      if (Atomics.load(u, i24) === p) return w;
      this.retries++;
    }
    return LOOKUP_BUSY | 0;
  }

  /**
   * Longest-prefix match of an IPv6 address (4 words): the FIB value (0 = no route, LOOKUP_BUSY).
   * Probes the present prefix lengths longest first; retried when the table changed meanwhile (its
   * CHG word) or the hash was rebuilt, so that the answer is the table's at one moment.
   */
  lookup6(slot: number, addr: Uint32Array): number {
    if (slot < 0) return 0;
    const u = this.u32;
    const hdr = this.base.fib6Hash;
    const slots = this.layout.fib6Slots, mask = slots - 1;
    const lens = this.base.fib6Desc + slot * FIB6D_E.WORDS + FIB6D_E.LENS;
    const chg = this.base.fib6Desc + slot * FIB6D_E.WORDS + FIB6D_E.CHG;
    const a0 = addr[0], a1 = addr[1], a2 = addr[2], a3 = addr[3];
    for (let attempt = 0, waits = 0; attempt < 64;) {
      const c1 = Atomics.load(u, chg);
      if (c1 & 1) { // the writer is changing a prefix of this table
        this.retries++;
        if (++waits > MAX_SPINS) return LOOKUP_BUSY;
        continue;
      }
      const gen = Atomics.load(u, hdr);
      const arr = hdr + HASH_HDR_WORDS + (gen & 1) * slots * FIB6E.WORDS;
      let result = 0;
      let busy = false;
      search: for (let k = 4; k >= 0; k--) {
        let bits = Atomics.load(u, lens + k);
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits);
          bits = (bits & ~(1 << b)) >>> 0;
          const plen = k * 32 + b;
          const m0 = plen >= 32 ? a0 : plen === 0 ? 0 : (a0 & (0xffffffff << (32 - plen))) >>> 0;
          const m1 = plen >= 64 ? a1 : plen <= 32 ? 0 : (a1 & (0xffffffff << (64 - plen))) >>> 0;
          const m2 = plen >= 96 ? a2 : plen <= 64 ? 0 : (a2 & (0xffffffff << (96 - plen))) >>> 0;
          const m3 = plen >= 128 ? a3 : plen <= 96 ? 0 : (a3 & (0xffffffff << (128 - plen))) >>> 0;
          const want = plen | (slot << 8) | (FIB6_USED << 16);
          let i = hashFib6(slot, plen, m0, m1, m2, m3) & mask;
          for (let probes = 0, spins = 0; probes < slots;) {
            const e = arr + i * FIB6E.WORDS;
            const s1 = Atomics.load(u, e);
            if (s1 & 1) {
              this.retries++;
              if (++spins > MAX_SPINS) { busy = true; break search; }
              continue;
            }
            const meta = u[e + FIB6E.META];
            const hit = meta === want && u[e + 2] === m0 && u[e + 3] === m1 && u[e + 4] === m2 && u[e + 5] === m3;
            const v = u[e + FIB6E.VALUE];
            if (Atomics.load(u, e) !== s1) { this.retries++; continue; }
            if (hit) { result = v; break search; }
            if (meta === FIB6_EMPTY) break;
            i = (i + 1) & mask;
            probes++;
          }
        }
      }
      if (busy) return LOOKUP_BUSY;
      if (Atomics.load(u, hdr) === gen && Atomics.load(u, chg) === c1) return result;
      this.retries++;
      attempt++;
    }
    return LOOKUP_BUSY;
  }

  /** RTN_* type of the next hop(s) a FIB value refers to (0 when none). */
  fibType(value: number): number {
    const kind = value >>> 30;
    let nh = value & FIB_INDEX_MASK;
    if (kind === FIB_GROUP) nh = this.u32[this.base.groups + nh * GROUP_E.WORDS + GROUP_E.MEMBERS];
    else if (kind !== FIB_NEXTHOP) return 0;
    return this.u32[this.base.nexthops + nh * NH_E.WORDS + NH_E.META] & 255;
  }

  /** Next-hop index selected by a flow hash in ECMP group `group` (-1 when busy / free). */
  groupSelect(group: number, hash: number): number {
    const u = this.u32;
    const off = this.base.groups + group * GROUP_E.WORDS;
    for (let spin = 0; spin < MAX_SPINS; spin++) {
      const s1 = Atomics.load(u, off);
      if ((s1 & 1) === 0) {
        const slot = this.u8[(off + GROUP_E.BUCKETS) * 4 + (hash & (GROUP_BUCKETS - 1))];
        const nh = u[off + GROUP_E.MEMBERS + slot];
        const used = u[off + GROUP_E.USED];
        if (Atomics.load(u, off) === s1) return used === 1 ? nh : -1;
      }
      this.retries++;
    }
    return -1;
  }

  /** Next-hop index of a FIB value: the next hop itself, or the group member chosen by `hash`. */
  nexthopOf(value: number, hash: number): number {
    const kind = value >>> 30;
    if (kind === FIB_NEXTHOP) return value & FIB_INDEX_MASK;
    if (kind === FIB_GROUP) return this.groupSelect(value & FIB_INDEX_MASK, hash);
    return -1;
  }

  // -------------------------------------------------------------------------------------------
  // Hash lookups (no allocation): index, NOT_FOUND or BUSY

  /** Key check of an entry under its sequence lock: 1 match, 0 no match, -1 busy. */
  private keyCheck(off: number, k: number, vrf: number, x: number, y: number, a0: number, a1: number, a2: number, a3: number): number {
    const u = this.u32;
    for (let spin = 0; spin < MAX_SPINS; spin++) {
      const s1 = Atomics.load(u, off);
      if ((s1 & 1) === 0) {
        let ok = u[off + 1] === 1;
        switch (k) {
          case 0: // link
            ok = ok && u[off + LINK_E.VRF] === vrf && u[off + LINK_E.IFINDEX] === x;
            break;
          case 1: { // neighbour (x = ifindex, y = family)
            const a = off + NEIGH_E.ADDR;
            ok = ok && u[off + NEIGH_E.VRF] === vrf && u[off + NEIGH_E.IFINDEX] === x && (u[off + NEIGH_E.META] & 255) === y &&
              u[a] === a0 && u[a + 1] === a1 && u[a + 2] === a2 && u[a + 3] === a3;
            break;
          }
          case 2: // policy (x = index)
            ok = ok && u[off + POLICY_E.VRF] === vrf && u[off + POLICY_E.INDEX] === x;
            break;
          default: { // sa (x = spi, y = proto | addrKind << 8)
            const a = off + SA_E.DADDR;
            ok = ok && u[off + SA_E.VRF] === vrf && u[off + SA_E.SPI] === x && (u[off + SA_E.META] & 255) === (y & 255) &&
              ((u[off + SA_E.BITS] >>> 8) & 3) === (y >>> 8) && u[a] === a0 && u[a + 1] === a1 && u[a + 2] === a2 && u[a + 3] === a3;
          }
        }
        if (Atomics.load(u, off) === s1) return ok ? 1 : 0;
      }
      this.retries++;
    }
    return -1;
  }

  private probe(region: RegionName, slots: number, entries: RegionName, words: number, cap: number, h: number,
    k: number, vrf: number, x: number, y: number, a0: number, a1: number, a2: number, a3: number): number {
    const u = this.u32, hdr = this.base[region], ebase = this.base[entries], mask = slots - 1;
    for (let attempt = 0; attempt < 64; attempt++) {
      const gen = Atomics.load(u, hdr);
      const arr = hdr + HASH_HDR_WORDS + (gen & 1) * slots;
      for (let i = h & mask, n = 0; n < slots; i = (i + 1) & mask, n++) {
        const v = u[arr + i];
        if (v === 0) break;
        if (v === HASH_TOMB || v > cap) continue;
        const m = this.keyCheck(ebase + (v - 1) * words, k, vrf, x, y, a0, a1, a2, a3);
        if (m === 1) return v - 1;
        if (m < 0) return BUSY;
      }
      if (Atomics.load(u, hdr) === gen) return NOT_FOUND; // no rebuild happened during the probe
      this.retries++;
    }
    return BUSY;
  }

  /** Link entry index of (vrf, ifindex). */
  linkLookup(vrf: number, ifindex: number): number {
    return this.probe('linkHash', this.layout.linkHashSlots, 'links', LINK_E.WORDS, this.config.maxLinks,
      hashLink(vrf, ifindex), 0, vrf, ifindex, 0, 0, 0, 0, 0);
  }

  /** Neighbour entry index of (vrf, ifindex, family, address); IPv4: addr[0] (or a number). */
  neighbourLookup(vrf: number, ifindex: number, family: number, addr: Uint32Array | number): number {
    let a0: number, a1 = 0, a2 = 0, a3 = 0;
    if (typeof addr === 'number') a0 = addr >>> 0;
    else { a0 = addr[0]; if (family === 6) { a1 = addr[1]; a2 = addr[2]; a3 = addr[3]; } }
    return this.probe('neighHash', this.layout.neighHashSlots, 'neighs', NEIGH_E.WORDS, this.config.maxNeigh,
      hashNeigh(vrf, ifindex, family, a0, a1, a2, a3), 1, vrf, ifindex, family, a0, a1, a2, a3);
  }

  /** Policy entry index of (vrf, index). */
  policyLookup(vrf: number, index: number): number {
    return this.probe('policyHash', this.layout.policyHashSlots, 'policies', POLICY_E.WORDS, this.config.maxPolicies,
      hashPolicy(vrf, index), 2, vrf, index, 0, 0, 0, 0, 0);
  }

  /** SA entry index of (vrf, daddr, spi, proto); daddr: IPv4 u32 or 4 IPv6 words. */
  saLookup(vrf: number, daddr: number | Uint32Array, spi: number, proto: number): number {
    let a0: number, a1 = 0, a2 = 0, a3 = 0, ak: number;
    if (typeof daddr === 'number') { a0 = daddr >>> 0; ak = ADDR_V4; } else { a0 = daddr[0]; a1 = daddr[1]; a2 = daddr[2]; a3 = daddr[3]; ak = ADDR_V6; }
    spi >>>= 0;
    return this.probe('saHash', this.layout.saHashSlots, 'sas', SA_E.WORDS, this.config.maxSas,
      hashSa(vrf, ak, a0, a1, a2, a3, spi, proto), 3, vrf, spi, proto | (ak << 8), a0, a1, a2, a3);
  }

  // -------------------------------------------------------------------------------------------
  // Neighbour hit flags

  /** Marks a neighbour as used by the fast path (cheap when already marked). */
  markNeighbourHit(index: number): void {
    if (!this.writable) throw new Error(`${this.name} is mapped read-only: open it writable to set hit flags`);
    const off = this.base.neighs + index * NEIGH_E.WORDS + NEIGH_E.HIT;
    if (this.u32[off] === 0) Atomics.store(this.u32, off, 1);
  }

  /** Neighbours marked since the last call; clears their marks (hitflags daemon). */
  takeNeighbourHits(): Neighbour[] {
    if (!this.writable) throw new Error(`${this.name} is mapped read-only: open it writable to take hit flags`);
    const u = this.u32, base = this.base.neighs, out: Neighbour[] = [];
    for (let i = 0; i < this.config.maxNeigh; i++) {
      const off = base + i * NEIGH_E.WORDS;
      if (u[off + NEIGH_E.HIT] === 0 || Atomics.exchange(u, off + NEIGH_E.HIT, 0) === 0) continue;
      if (this.copySlow(off, NEIGH_E.WORDS, this.scratch, `neighbour entry ${i}`) === READ_OK) {
        out.push(decodeNeighbour(this.scratch, this.scratchU8));
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Rules and resolution

  /**
   * Rule entry indices of (vrf, family) in evaluation order (priority, then insertion) into out;
   * returns the count, or -1 when the order array stayed busy.
   */
  rules(vrf: number, family: number, out: Int32Array): number {
    const u = this.u32, b = this.base.ruleOrder, rb = this.base.rules;
    for (let spin = 0; spin < MAX_SPINS; spin++) {
      const s1 = Atomics.load(u, b + RULE_ORDER.SEQ);
      if ((s1 & 1) === 0) {
        const n = Math.min(u[b + RULE_ORDER.COUNT], this.config.maxRules);
        let k = 0;
        for (let i = 0; i < n && k < out.length; i++) {
          const idx = u[b + RULE_ORDER.IDX + i];
          if (idx >= this.config.maxRules) continue;
          const off = rb + idx * RULE_E.WORDS;
          if (u[off + RULE_E.VRF] === vrf && (u[off + RULE_E.META] & 255) === family) out[k++] = idx;
        }
        if (Atomics.load(u, b + RULE_ORDER.SEQ) === s1) return k;
      }
      this.retries++;
    }
    return -1;
  }

  /**
   * Resolves an IPv4 destination in a VRF like Linux's fib_lookup for the simple cases: the VRF's
   * rules in order (selectors: from/to prefixes, tos, fwmark/mask, iif/oif names, ipproto,
   * sport/dport ranges, not; actions: lookup table, goto, nop, blackhole, unreachable, prohibit;
   * suppress_prefixlength), a route of type throw or a missing table continuing with the next rule.
   * Without any rule mirrored for the VRF, tables local, main, default are tried (Linux defaults).
   * Returns a FIB value (> 0; its next hop's type tells unicast/local/blackhole/...), RESOLVE_NONE
   * or a negative RESOLVE_* code. Not handled: routes with tos != 0 (not in the FIB), l3mdev, uid
   * ranges, tun_id, suppress_ifgroup, multipath hash policies (see nexthopOf).
   */
  resolve4(vrf: number, dst: number, flow?: FlowKey): number {
    this.addrBuf[0] = dst >>> 0;
    return this.resolve(vrf, 4, this.addrBuf, flow);
  }

  /** resolve4 for IPv6 (dst: 4 words). */
  resolve6(vrf: number, dst: Uint32Array, flow?: FlowKey): number {
    return this.resolve(vrf, 6, dst, flow);
  }

  private lookupTable(vrf: number, table: number, family: number, dst: Uint32Array): number {
    const slot = family === 4 ? this.fib4Slot(vrf, table) : this.fib6Slot(vrf, table);
    if (slot < 0) return 0;
    return family === 4 ? this.lookup4(slot, dst[0]) : this.lookup6(slot, dst);
  }

  private resolve(vrf: number, family: number, dst: Uint32Array, flow?: FlowKey): number {
    const n = this.rules(vrf, family, this.ruleIdx);
    if (n < 0) return RESOLVE_BUSY;
    if (n === 0) {
      for (const table of DEFAULT_TABLES) {
        const v = this.lookupTable(vrf, table, family, dst);
        if (v === LOOKUP_BUSY) return RESOLVE_BUSY;
        if (v !== 0 && this.fibType(v) !== RTN_THROW) return v;
      }
      return RESOLVE_NONE;
    }
    const w = this.ruleBuf;
    const src = this.srcBuf;
    src[0] = 0; src[1] = 0; src[2] = 0; src[3] = 0;
    if (flow?.src !== undefined) {
      if (typeof flow.src === 'number') src[0] = flow.src >>> 0;
      else { src[0] = flow.src[0]; src[1] = flow.src[1]; src[2] = flow.src[2]; src[3] = flow.src[3]; }
    }
    for (let i = 0; i < n; i++) {
      const r = this.readRule(this.ruleIdx[i], w);
      if (r === READ_BUSY) return RESOLVE_BUSY;
      if (r !== READ_OK) continue;
      if (!this.ruleMatches(w, family, src, dst, flow)) continue;
      const action = (w[RULE_E.META] >>> 8) & 255;
      switch (action) {
        case FR_ACT_TO_TBL: {
          const v = this.lookupTable(vrf, w[RULE_E.TABLE], family, dst);
          if (v === LOOKUP_BUSY) return RESOLVE_BUSY;
          if (v === 0 || this.fibType(v) === RTN_THROW) continue;
          const suppress = w[RULE_E.SUPPRESS] | 0;
          if (suppress >= 0 && ((v >>> 22) & 255) <= suppress) continue;
          return v;
        }
        case FR_ACT_GOTO: {
          const target = w[RULE_E.GOTO];
          let j = i + 1;
          for (; j < n; j++) if (this.u32[this.base.rules + this.ruleIdx[j] * RULE_E.WORDS + RULE_E.PRIORITY] === target) break;
          if (j < n) i = j - 1; // the loop's i++ lands on the target
          continue;
        }
        case FR_ACT_NOP: continue;
        case FR_ACT_BLACKHOLE: return RESOLVE_BLACKHOLE;
        case FR_ACT_UNREACHABLE: return RESOLVE_UNREACHABLE;
        case FR_ACT_PROHIBIT: return RESOLVE_PROHIBIT;
        default: continue;
      }
    }
    return RESOLVE_NONE;
  }

  private ruleMatches(w: Uint32Array, family: number, src: Uint32Array, dst: Uint32Array, flow?: FlowKey): boolean {
    const m = w[RULE_E.META], bits = w[RULE_E.BITS];
    let ok = prefixMatch(family, src, w, RULE_E.SRC, (m >>> 16) & 255) && prefixMatch(family, dst, w, RULE_E.DST, m >>> 24);
    if (ok && w[RULE_E.TOS] !== 0 && w[RULE_E.TOS] !== (flow?.tos ?? 0)) ok = false;
    if (ok && ((w[RULE_E.FWMARK] ^ ((flow?.mark ?? 0) >>> 0)) & w[RULE_E.FWMASK]) !== 0) ok = false;
    const lens = w[RULE_E.LENS];
    if (ok && (bits & 16) && (flow?.iif === undefined || !strEquals(this.ruleBufU8, RULE_E.IIF * 4, lens & 255, flow.iif))) ok = false;
    if (ok && (bits & 32) && (flow?.oif === undefined || !strEquals(this.ruleBufU8, RULE_E.OIF * 4, (lens >>> 8) & 255, flow.oif))) ok = false;
    if (ok && w[RULE_E.IPPROTO] !== 0 && w[RULE_E.IPPROTO] !== (flow?.proto ?? 0)) ok = false;
    if (ok && (bits & 64)) { const p = flow?.sport ?? 0; ok = p >= (w[RULE_E.SPORT] & 0xffff) && p <= (w[RULE_E.SPORT] >>> 16); }
    if (ok && (bits & 128)) { const p = flow?.dport ?? 0; ok = p >= (w[RULE_E.DPORT] & 0xffff) && p <= (w[RULE_E.DPORT] >>> 16); }
    return (bits & 256) ? !ok : ok;
  }
}

const DEFAULT_TABLES = [255, 254, 253];

function prefixMatch(family: number, a: Uint32Array, w: Uint32Array, off: number, plen: number): boolean {
  if (plen === 0) return true;
  const words = family === 4 ? 1 : 4;
  for (let k = 0; k < words; k++) {
    const bits = plen - 32 * k;
    if (bits <= 0) break;
    const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if (((a[k] ^ w[off + k]) & mask) !== 0) return false;
  }
  return true;
}

export type { NexthopInfo };
