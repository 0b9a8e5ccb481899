// ShmWriter: the single writer of the lfp shared memory (used by fpmd). See README.md.

import * as fs from 'fs';
import {
  objectKey, type Address, type AnyObject, type Link, type Neighbour, type ObjectKind, type Route,
  type Rule, type Vrf, type XfrmPolicy, type XfrmSa,
} from '../lib/model';
import {
  ADDR_E, COUNTER_NAMES, DEFAULT_SHM_PATH, FIB4D_E, FIB4_SUM_WORDS, FIB6D_E, FIB6E, FIB6_EMPTY, FIB6_TOMB, FIB6_USED, FIB_GROUP,
  FIB_INDEX_MASK, FIB_NEXTHOP, FIB_TBL8, GROUP_BUCKETS, GROUP_E, HASH_HDR_WORDS, HASH_TOMB, HDR, LINK_E, NEIGH_E,
  NH_E, POLICY_E, ROUTE_E, ROUTE_MAX_NEXTHOPS, RULE_E, RULE_ORDER, SA_E, STAT, TBL24_ENTRIES, TBL8_ENTRIES, VRF_E,
  computeLayout, fibValue, hashEnd, hashFib6, hashMix, hashStart, hashLink, hashNeigh, hashPolicy, hashSa, loadNative, validateHeader,
  writeHeader, type CounterName, type Layout, type ShmConfig,
} from './layout';
import {
  decodeRule, encodeAddress, encodeLink, encodeNeighbour, encodeNexthop, encodePolicy, encodeRoute, encodeRule,
  encodeSa, encodeVrf, decodeRouteBase, modelNexthop,
} from './entries';
import { ADDR_V4, ADDR_V6, decodeAddr, encodeAddrOf, format6, maskWords, parse4, parse6 } from './addr';

/** Thrown when a table is full; the shared memory is left as it was before the call. */

/** Mode of the shared-memory file: it holds key material (SA keys). */
export const SHM_FILE_MODE = 0o600;
export class ShmFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShmFullError';
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** FIFO of free indices: a freed index is reused as late as possible. */
class Fifo {
  private buf: Int32Array;
  private head = 0;
  length = 0;
  constructor(readonly cap: number) { this.buf = new Int32Array(Math.max(1, cap)); }
  push(v: number): void {
    let t = this.head + this.length;
    if (t >= this.cap) t -= this.cap;
    this.buf[t] = v;
    this.length++;
  }
  shift(): number {
    const v = this.buf[this.head];
    if (++this.head === this.cap) this.head = 0;
    this.length--;
    return v;
  }
  clear(): void { this.head = 0; this.length = 0; }
}

/** Index allocator. Freed indices become allocatable after the current write operation. */
class Pool {
  readonly free: Fifo;
  private pending: number[] = [];
  used = 0;
  constructor(private readonly owner: { freed: boolean }, readonly cap: number, readonly what: string, readonly cfgName: string,
    readonly unit = 'entries') {
    this.free = new Fifo(cap);
    for (let i = 0; i < cap; i++) this.free.push(i);
  }
  full(): ShmFullError { return new ShmFullError(`${this.what} full (${this.cap} ${this.unit}): raise ${this.cfgName}`); }
  check(n: number): void { if (this.free.length < n) throw this.full(); }
  alloc(): number {
    if (this.free.length === 0) throw this.full();
    this.used++;
    return this.free.shift();
  }
  /** `owner.freed` tells the writer to flush its pools at the end of the operation. */
  release(i: number): void { this.used--; this.pending.push(i); this.owner.freed = true; }
  flush(): void {
    for (const i of this.pending) this.free.push(i);
    this.pending.length = 0;
  }
  /** Rebuilds the free list from a predicate (attach). */
  reset(isUsed: (i: number) => boolean): void {
    this.free.clear();
    this.pending.length = 0;
    this.used = 0;
    for (let i = 0; i < this.cap; i++) if (isUsed(i)) this.used++; else this.free.push(i);
  }
}

/** Writer side of a hash index region (see layout.ts). */
class HashIndex {
  live = 0;
  tombs = 0;
  private readonly mask: number;
  constructor(private readonly u: Uint32Array, private readonly hdr: number, readonly slots: number) {
    this.mask = slots - 1;
  }
  private arr(): number { return this.hdr + HASH_HDR_WORDS + (this.u[this.hdr] & 1) * this.slots; }
  insert(h: number, idx: number): void {
    const u = this.u, a = this.arr(), m = this.mask;
    for (let i = h & m; ; i = (i + 1) & m) {
      const v = u[a + i];
      if (v === 0 || v === HASH_TOMB) {
        if (v === HASH_TOMB) this.tombs--;
        Atomics.store(u, a + i, idx + 1);
        this.live++;
        return;
      }
    }
  }
  remove(h: number, idx: number): void {
    const u = this.u, a = this.arr(), m = this.mask;
    for (let i = h & m, n = 0; n <= m; i = (i + 1) & m, n++) {
      const v = u[a + i];
      if (v === idx + 1) {
        Atomics.store(u, a + i, HASH_TOMB);
        this.live--;
        this.tombs++;
        return;
      }
      if (v === 0) break;
    }
    throw new Error(`shm hash index: entry ${idx} not found (corrupt index)`);
  }
  needsRebuild(): boolean { return this.live + this.tombs > this.slots * 0.75; }
  /** Rebuilds into the inactive array and publishes it. */
  rebuild(entries: Iterable<number>, hashOf: (idx: number) => number): void {
    const u = this.u, m = this.mask;
    const gen = u[this.hdr];
    const other = this.hdr + HASH_HDR_WORDS + ((gen & 1) ^ 1) * this.slots;
    u.fill(0, other, other + this.slots);
    let n = 0;
    for (const idx of entries) {
      for (let i = hashOf(idx) & m; ; i = (i + 1) & m) {
        if (u[other + i] === 0) { u[other + i] = idx + 1; break; }
      }
      n++;
    }
    Atomics.store(u, this.hdr, (gen + 1) >>> 0);
    this.live = n;
    this.tombs = 0;
  }
}

/** One model kind stored in an entry table. */
interface KindTable {
  kind: ObjectKind;
  stat: number;
  base: number; // word offset of the region
  words: number;
  cap: number;
  vrfWord: number;
  skip: number; // word excluded from compare / rewrite (neighbour HIT), -1 if none
  map: Map<string, number>;
  pool: Pool | null; // null: indexed directly (VRFs)
  epochs: Int32Array;
  hash: HashIndex | null;
  hashOf: ((idx: number) => number) | null;
  scratch: Uint32Array;
  scratchU8: Uint8Array;
}

type PrefixMap<K> = Map<K, number | number[]>;

/** pfx[plen]: routes by masked prefix (as int32, a small integer key for V8) of that length. */
interface Fib4State { slot: number; vrf: number; table: number; routes: number; pfx: PrefixMap<number>[]; tbl24: number }
interface Fib6State { slot: number; vrf: number; table: number; routes: number; pfx: PrefixMap<string>; lenCount: Int32Array; desc: number }

export type SweepCounts = Record<ObjectKind, number>;

const KINDS: ObjectKind[] = ['vrf', 'link', 'address', 'route', 'rule', 'neighbour', 'policy', 'sa'];
/** Sweep / removeVrf order: dependents first. */
const REMOVE_ORDER: ObjectKind[] = ['policy', 'sa', 'neighbour', 'route', 'rule', 'address', 'link', 'vrf'];

function newPfx4(): PrefixMap<number>[] {
  const a: PrefixMap<number>[] = [];
  for (let l = 0; l <= 32; l++) a.push(new Map());
  return a;
}

function prefixAdd<K>(m: PrefixMap<K>, k: K, idx: number): void {
  const v = m.get(k);
  if (v === undefined) m.set(k, idx);
  else if (typeof v === 'number') m.set(k, [v, idx]);
  else v.push(idx);
}

function prefixRemove<K>(m: PrefixMap<K>, k: K, idx: number): void {
  const v = m.get(k);
  if (v === undefined) return;
  if (typeof v === 'number') { if (v === idx) m.delete(k); return; }
  const i = v.indexOf(idx);
  if (i >= 0) v.splice(i, 1);
  if (v.length === 1) m.set(k, v[0]);
  else if (v.length === 0) m.delete(k);
}

/** Hash of a next-hop entry's content (words META..GW+3), as a small integer Map key. */
function nhHash(w: Uint32Array, off: number): number {
  let h = hashStart(7);
  for (let k = NH_E.META; k < NH_E.GW + 4; k++) h = hashMix(h, w[off + k]);
  return hashEnd(h) | 0;
}

/** ECMP group identity: member next-hop indices and weights. */
function groupKey(members: ArrayLike<number>, weights: ArrayLike<number>, n: number, mOff = 0, wOff = 0): string {
  let k = `${members[mOff]}#${weights[wOff]}`;
  for (let i = 1; i < n; i++) k += `|${members[mOff + i]}#${weights[wOff + i]}`;
  return k;
}

/** Buckets (member slot per bucket) proportional to the weights, every member at least one. */
function fillBuckets(weights: ArrayLike<number>, n: number, out: Uint8Array, off: number): void {
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i];
  const counts: number[] = [];
  const frac: number[] = [];
  let given = 0;
  for (let i = 0; i < n; i++) {
    const exact = (weights[i] * GROUP_BUCKETS) / total;
    counts.push(Math.floor(exact));
    frac.push(exact - Math.floor(exact));
    given += counts[i];
  }
  const order = [...Array(n).keys()].sort((a, b) => frac[b] - frac[a] || a - b);
  for (let k = 0; given < GROUP_BUCKETS; k++, given++) counts[order[k % n]]++;
  for (let i = 0; i < n; i++) {
    if (counts[i] > 0) continue;
    let big = 0;
    for (let j = 1; j < n; j++) if (counts[j] > counts[big]) big = j;
    counts[big]--;
    counts[i]++;
  }
  let pos = 0;
  for (let i = 0; i < n; i++) for (let c = 0; c < counts[i]; c++) out[off + pos++] = i;
}

function sameWords(a: Uint32Array, b: Uint32Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

const m6 = new Uint32Array(4);

/** Canonical form of the key addresses of an object (IPv6 spelled differently would make two keys). */
function canonV6(s: string): string {
  if (parse4(s) >= 0 || s.indexOf(':') < 0) return s;
  if (!parse6(s, m6, 0)) return s; // the encoder reports the error
  return format6(m6, 0);
}

// ---------------------------------------------------------------------------------------------

export interface OpenWriterOptions {
  config?: Partial<ShmConfig>;
  /** Remove any existing file and create a new one. Default: attach when a file exists. */
  fresh?: boolean;
}

export class ShmWriter {
  readonly layout: Layout;
  readonly config: ShmConfig;
  /** True when this writer re-attached to a populated file (attach / open of an existing file). */
  attached = false;
  private readonly u32: Uint32Array;
  private readonly u8: Uint8Array;
  private readonly counters: BigUint64Array;

  private readonly tables: Record<ObjectKind, KindTable>;
  private epoch = 0;
  private syncing = false;
  private ports: string[] = [];
  private ruleSerial = 0;

  // next hops and groups
  private readonly nhBase: number;
  private readonly nhPool: Pool;
  /** Next-hop dedup: content hash -> index(es); entries compared word by word. */
  private readonly nhByHash = new Map<number, number | number[]>();
  private readonly nhHashOf: Int32Array;
  private readonly nhUsed: Uint8Array;
  private readonly nhRef: Int32Array;
  private readonly grBase: number;
  private readonly grPool: Pool;
  private readonly grByKey = new Map<string, number>();
  private readonly grKeys: string[];
  private readonly grRef: Int32Array;

  // FIBs
  private readonly fib4Pool: Pool;
  private readonly fib4 = new Map<string, Fib4State>();
  private readonly fib4BySlot: (Fib4State | undefined)[] = [];
  private readonly fib4Desc: number;
  private readonly tbl24Base: number;
  /** Word offset of the IPv4 summary bitmaps (FIB4_SUM_WORDS per table slot, layout.ts). */
  private readonly fib4SumBase: number;
  private readonly tbl8Base: number;
  private readonly tbl8Pool: Pool;
  /** Incarnation of each tbl8 group (8 bits), +1 at every allocation; part of the tbl24 pointer word. */
  private readonly tbl8Inc: Uint8Array;
  private readonly fib6Pool: Pool;
  private readonly fib6 = new Map<string, Fib6State>();
  private readonly fib6BySlot: (Fib6State | undefined)[] = [];
  private readonly fib6Desc: number;
  private readonly f6Hdr: number;
  private readonly f6Slots: number;
  private f6Live = 0;
  private f6Tombs = 0;
  private readonly ruleOrderBase: number;

  // scratch
  private readonly sNh: Uint32Array[] = [];
  private readonly sNhIdx = new Int32Array(ROUTE_MAX_NEXTHOPS);
  private readonly sWeights = new Uint32Array(ROUTE_MAX_NEXTHOPS);
  private readonly sGroup = new Uint32Array(GROUP_E.WORDS);
  private readonly sGroupU8 = new Uint8Array(this.sGroup.buffer);
  private readonly sMask = new Uint32Array(4);
  private readonly sKey = new Uint32Array(ROUTE_E.WORDS);
  /** objectKey of each IPv6 route entry (IPv4 routes are found through the prefix maps). */
  private readonly route6Keys = new Map<number, string>();
  private last4: Fib4State | undefined;

  // operation bookkeeping
  private readonly freed = { freed: false };
  private opDepth = 0;
  private opKinds = 0;

  private constructor(sab: SharedArrayBuffer, layout: Layout) {
    this.layout = layout;
    this.config = layout.config;
    const cfg = layout.config;
    this.u32 = new Uint32Array(sab, 0, layout.totalSize / 4);
    this.u8 = new Uint8Array(sab, 0, layout.totalSize);
    this.counters = new BigUint64Array(sab, 0, HDR.WORDS / 2);
    const R = layout.regions;
    const w = (name: keyof Layout['regions']): number => R[name].offset / 4;
    const mk = (kind: ObjectKind, stat: number, region: keyof Layout['regions'], words: number, cap: number, vrfWord: number,
      pool: Pool | null, hash: HashIndex | null, hashOf: ((idx: number) => number) | null, skip = -1): KindTable => {
      const scratch = new Uint32Array(words);
      return {
        kind, stat, base: w(region), words, cap, vrfWord, skip, map: new Map(), pool, epochs: new Int32Array(cap), hash,
        hashOf, scratch, scratchU8: new Uint8Array(scratch.buffer),
      };
    };
    const u = this.u32;
    const hashIdx = (region: keyof Layout['regions'], slots: number): HashIndex => new HashIndex(u, w(region), slots);
    const linkBase = w('links'), neighBase = w('neighs'), polBase = w('policies'), saBase = w('sas');
    this.tables = {
      vrf: mk('vrf', STAT.vrf, 'vrfs', VRF_E.WORDS, cfg.maxVrfs, VRF_E.VRF, null, null, null),
      link: mk('link', STAT.link, 'links', LINK_E.WORDS, cfg.maxLinks, LINK_E.VRF,
        new Pool(this.freed, cfg.maxLinks, 'link table', 'maxLinks'), hashIdx('linkHash', layout.linkHashSlots), (i) => {
          const o = linkBase + i * LINK_E.WORDS;
          return hashLink(u[o + LINK_E.VRF], u[o + LINK_E.IFINDEX]);
        }),
      address: mk('address', STAT.address, 'addrs', ADDR_E.WORDS, cfg.maxAddrs, ADDR_E.VRF,
        new Pool(this.freed, cfg.maxAddrs, 'address table', 'maxAddrs'), null, null),
      route: mk('route', STAT.route, 'routes', ROUTE_E.WORDS, cfg.maxRoutes, ROUTE_E.VRF,
        new Pool(this.freed, cfg.maxRoutes, 'route table', 'maxRoutes'), null, null),
      rule: mk('rule', STAT.rule, 'rules', RULE_E.WORDS, cfg.maxRules, RULE_E.VRF,
        new Pool(this.freed, cfg.maxRules, 'rule table', 'maxRules'), null, null),
      neighbour: mk('neighbour', STAT.neighbour, 'neighs', NEIGH_E.WORDS, cfg.maxNeigh, NEIGH_E.VRF,
        new Pool(this.freed, cfg.maxNeigh, 'neighbour table', 'maxNeigh'), hashIdx('neighHash', layout.neighHashSlots), (i) => {
          const o = neighBase + i * NEIGH_E.WORDS, a = o + NEIGH_E.ADDR;
          return hashNeigh(u[o + NEIGH_E.VRF], u[o + NEIGH_E.IFINDEX], u[o + NEIGH_E.META] & 255, u[a], u[a + 1], u[a + 2], u[a + 3]);
        }, NEIGH_E.HIT),
      policy: mk('policy', STAT.policy, 'policies', POLICY_E.WORDS, cfg.maxPolicies, POLICY_E.VRF,
        new Pool(this.freed, cfg.maxPolicies, 'policy table', 'maxPolicies'), hashIdx('policyHash', layout.policyHashSlots), (i) => {
          const o = polBase + i * POLICY_E.WORDS;
          return hashPolicy(u[o + POLICY_E.VRF], u[o + POLICY_E.INDEX]);
        }),
      sa: mk('sa', STAT.sa, 'sas', SA_E.WORDS, cfg.maxSas, SA_E.VRF,
        new Pool(this.freed, cfg.maxSas, 'SA table', 'maxSas'), hashIdx('saHash', layout.saHashSlots), (i) => {
          const o = saBase + i * SA_E.WORDS, a = o + SA_E.DADDR;
          return hashSa(u[o + SA_E.VRF], (u[o + SA_E.BITS] >>> 8) & 3, u[a], u[a + 1], u[a + 2], u[a + 3], u[o + SA_E.SPI], u[o + SA_E.META] & 255);
        }),
    };
    this.nhBase = w('nexthops');
    this.nhPool = new Pool(this.freed, cfg.maxNexthops, 'next-hop table', 'maxNexthops');
    this.nhHashOf = new Int32Array(cfg.maxNexthops);
    this.nhUsed = new Uint8Array(cfg.maxNexthops);
    this.nhRef = new Int32Array(cfg.maxNexthops);
    this.grBase = w('groups');
    this.grPool = new Pool(this.freed, cfg.maxGroups, 'ECMP group table', 'maxGroups');
    this.grKeys = new Array<string>(cfg.maxGroups).fill('');
    this.grRef = new Int32Array(cfg.maxGroups);
    this.fib4Pool = new Pool(this.freed, cfg.fib4Tables, 'IPv4 FIB table set', 'fib4Tables', 'tables');
    this.fib4Desc = w('fib4Desc');
    this.tbl24Base = w('tbl24');
    this.tbl8Base = w('tbl8');
    this.fib4SumBase = w('fib4Sum');
    this.tbl8Pool = new Pool(this.freed, cfg.tbl8Groups, 'IPv4 tbl8 group pool', 'tbl8Groups', 'groups');
    this.tbl8Inc = new Uint8Array(cfg.tbl8Groups);
    this.fib6Pool = new Pool(this.freed, cfg.fib6Tables, 'IPv6 FIB table set', 'fib6Tables', 'tables');
    this.fib6Desc = w('fib6Desc');
    this.f6Hdr = w('fib6Hash');
    this.f6Slots = layout.fib6Slots;
    this.ruleOrderBase = w('ruleOrder');
    for (let i = 0; i < ROUTE_MAX_NEXTHOPS; i++) this.sNh.push(new Uint32Array(NH_E.WORDS));
  }

  // -------------------------------------------------------------------------------------------
  // Construction

  /** Initialises a zero-filled mapping (a fresh file or a new SharedArrayBuffer). */
  static create(sab: SharedArrayBuffer, cfg: Partial<ShmConfig> = {}): ShmWriter {
    const layout = computeLayout(cfg);
    if (sab.byteLength < layout.totalSize) {
      throw new Error(`shared memory mapping is ${sab.byteLength} bytes, the layout needs ${layout.totalSize}`);
    }
    const hdr = new Uint32Array(sab, 0, HDR.WORDS);
    if (Atomics.load(hdr, HDR.MAGIC) !== 0) {
      throw new Error('ShmWriter.create() needs a zero-filled mapping (a fresh file); use attach() for an existing one');
    }
    const wr = new ShmWriter(sab, layout);
    writeHeader(wr.u32, layout, process.pid);
    wr.heartbeat();
    return wr;
  }

  /**
   * Re-attaches to a populated mapping (fpmd restart): forwarding data is left in place and every
   * in-memory index is rebuilt from the tables. After a crash in the middle of a write (DIRTY set),
   * half-written entries are dropped and the FIBs are rebuilt from the route table.
   */
  static attach(sab: SharedArrayBuffer, name = 'shared memory'): ShmWriter {
    const layout = validateHeader(sab, name);
    const wr = new ShmWriter(sab, layout);
    wr.rebuild();
    wr.attached = true;
    return wr;
  }

  /**
   * Maps `path` with the native addon: attaches to a valid existing file, else creates a new one. The file holds the
   * IPsec SAs' keys: it is the owner's only (mode 0600, also set on a file attached to), like the kernel's XFRM
   * state, which only CAP_NET_ADMIN reads.
   */
  static open(path = DEFAULT_SHM_PATH, opts: OpenWriterOptions = {}): ShmWriter {
    const native = loadNative();
    if (!opts.fresh && fs.existsSync(path)) {
      const sab = native.shm.map(path, { size: 0, create: false, readonly: false });
      const wr = ShmWriter.attach(sab, path);
      fs.chmodSync(path, SHM_FILE_MODE);
      return wr;
    }
    fs.rmSync(path, { force: true });
    const layout = computeLayout(opts.config ?? {});
    const sab = native.shm.map(path, { size: layout.totalSize, create: true, readonly: false, mode: SHM_FILE_MODE });
    return ShmWriter.create(sab, opts.config ?? {});
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  /** Adds or replaces an object; true when the shared memory changed. */
  upsert(o: AnyObject): boolean {
    switch (o.kind) {
      case 'vrf': return this.upsertVrf(o.obj);
      case 'link': return this.upsertLink(o.obj);
      case 'address': return this.upsertAddress(o.obj);
      case 'route': return this.upsertRoute(o.obj);
      case 'rule': return this.upsertRule(o.obj);
      case 'neighbour': return this.upsertNeighbour(o.obj);
      case 'policy': return this.upsertPolicy(o.obj);
      case 'sa': return this.upsertSa(o.obj);
      default: throw new TypeError(`unknown object kind "${(o as { kind: string }).kind}"`);
    }
  }

  /** Removes an object (only its key fields matter); true when it existed. */
  remove(o: AnyObject): boolean {
    if (!(o.kind in this.tables)) throw new TypeError(`unknown object kind "${o.kind}"`);
    const t = this.tables[o.kind];
    const key = o.kind === 'route' ? '' : objectKey(canonKeyObject(o));
    const idx = o.kind === 'route' ? this.routeLocate(o.obj) : t.map.get(key) ?? -1;
    if (idx < 0) return false;
    this.beginOp();
    try {
      this.removeIdx(t, key, idx);
    } finally {
      this.endOp();
    }
    return true;
  }

  /** Drops every object of a VRF (its routes, FIB tables, links, ... and the VRF itself). */
  removeVrf(vrf: number): number {
    let n = 0;
    this.beginOp();
    try {
      for (const kind of REMOVE_ORDER) {
        const t = this.tables[kind];
        const base = t.base, u = this.u32;
        if (kind === 'route') {
          for (let i = 0; i < t.cap; i++) {
            const off = base + i * ROUTE_E.WORDS;
            if (u[off + 1] === 1 && u[off + ROUTE_E.VRF] === vrf) { this.removeRoute(i); n++; }
          }
          continue;
        }
        for (const [key, idx] of t.map) {
          if (u[base + idx * t.words + t.vrfWord] !== vrf) continue;
          this.removeIdx(t, key, idx);
          n++;
        }
      }
    } finally {
      this.endOp();
    }
    return n;
  }

  /** Links of VRF 0 named in `names` get port = index in the list, every other link -1. */
  setPorts(names: string[]): void {
    this.ports = names.slice();
    const t = this.tables.link;
    const u = this.u32;
    this.beginOp();
    try {
      for (const idx of t.map.values()) {
        const off = t.base + idx * LINK_E.WORDS;
        const name = this.linkName(off);
        const port = this.portOf(u[off + LINK_E.VRF], name);
        if ((u[off + LINK_E.PORT] | 0) === port) continue;
        Atomics.add(u, off, 1);
        u[off + LINK_E.PORT] = port >>> 0;
        Atomics.add(u, off, 1);
        this.changed(STAT.link);
      }
    } finally {
      this.endOp();
    }
  }

  /** Starts a mark-and-sweep epoch. */
  beginSync(): void {
    this.epoch = (this.epoch + 1) | 0;
    if (this.epoch === 0) this.epoch = 1;
    this.syncing = true;
    Atomics.store(this.u32, HDR.EPOCH, this.epoch >>> 0);
    Atomics.store(this.u32, HDR.SYNCING, 1);
  }

  /** Removes every object not upserted since beginSync(); returns the counts removed per kind. */
  endSync(): SweepCounts {
    if (!this.syncing) throw new Error('endSync() without beginSync()');
    const counts = { vrf: 0, link: 0, address: 0, route: 0, rule: 0, neighbour: 0, policy: 0, sa: 0 } as SweepCounts;
    this.beginOp();
    try {
      for (const kind of REMOVE_ORDER) {
        const t = this.tables[kind];
        if (kind === 'route') {
          const u = this.u32;
          for (let i = 0; i < t.cap; i++) {
            if (u[t.base + i * ROUTE_E.WORDS + 1] !== 1 || t.epochs[i] === this.epoch) continue;
            this.removeRoute(i);
            counts.route++;
          }
          continue;
        }
        for (const [key, idx] of t.map) {
          if (t.epochs[idx] === this.epoch) continue;
          this.removeIdx(t, key, idx);
          counts[kind]++;
        }
      }
    } finally {
      this.endOp();
    }
    this.syncing = false;
    Atomics.store(this.u32, HDR.SYNCING, 0);
    return counts;
  }

  get inSync(): boolean { return this.syncing; }

  /** Stores the current time (unix seconds) in the header heartbeat word. */
  heartbeat(now = Date.now()): void {
    Atomics.store(this.u32, HDR.HEARTBEAT, Math.floor(now / 1000));
    Atomics.store(this.counters, HDR.HEARTBEAT_MS_U64, BigInt(Math.floor(now)));
  }

  /** Adds to one of the 16 general counters (COUNTER_NAMES). */
  addCounter(name: CounterName | number, n = 1): void {
    Atomics.add(this.counters, HDR.COUNTERS_U64 + this.counterIndex(name), BigInt(n));
  }

  setCounter(name: CounterName | number, v: number | bigint): void {
    Atomics.store(this.counters, HDR.COUNTERS_U64 + this.counterIndex(name), BigInt(v));
  }

  /** Number of objects of a kind. */
  count(kind: ObjectKind): number { return kind === 'route' ? this.tables.route.pool!.used : this.tables[kind].map.size; }

  /** Entry index of an object (by its key fields), -1 when absent. */
  indexOf(o: AnyObject): number {
    if (o.kind === 'route') return this.routeLocate(o.obj);
    return this.tables[o.kind].map.get(objectKey(canonKeyObject(o))) ?? -1;
  }

  // -------------------------------------------------------------------------------------------
  // Operation bookkeeping

  private beginOp(): void {
    if (this.opDepth++ === 0) {
      this.opKinds = 0;
      Atomics.store(this.u32, HDR.DIRTY, 1);
    }
  }

  private endOp(): void {
    if (--this.opDepth !== 0) return;
    const u = this.u32;
    if (this.opKinds !== 0) {
      Atomics.add(u, HDR.GEN, 1);
      for (let k = 0; k < 16; k++) {
        if (!(this.opKinds & (1 << k))) continue;
        Atomics.add(u, HDR.KIND_GEN + k, 1);
        Atomics.store(u, HDR.KIND_COUNT + k, this.statCount(k));
      }
    }
    this.opKinds = 0;
    if (this.freed.freed) {
      this.freed.freed = false;
      this.nhPool.flush();
      this.grPool.flush();
      this.tbl8Pool.flush();
      this.fib4Pool.flush();
      this.fib6Pool.flush();
      for (const k of KINDS) this.tables[k].pool?.flush();
    }
    Atomics.store(u, HDR.DIRTY, 0);
  }

  private changed(stat: number): void { this.opKinds |= 1 << stat; }

  private statCount(k: number): number {
    switch (k) {
      case STAT.nexthop: return this.nhPool.used;
      case STAT.group: return this.grPool.used;
      case STAT.fib4Table: return this.fib4Pool.used;
      case STAT.tbl8: return this.tbl8Pool.used;
      case STAT.fib6Table: return this.fib6Pool.used;
      case STAT.fib6Prefix: return this.f6Live;
      default: return this.count(KINDS[k]);
    }
  }

  private counterIndex(name: CounterName | number): number {
    const i = typeof name === 'number' ? name : (COUNTER_NAMES as readonly string[]).indexOf(name);
    if (!(i >= 0 && i < 16)) throw new RangeError(`unknown counter ${name}`);
    return i;
  }

  private checkVrf(vrf: number): void {
    if (!Number.isInteger(vrf) || vrf < 0) throw new TypeError(`invalid vrf ${vrf}`);
    if (vrf >= this.config.maxVrfs) throw new ShmFullError(`VRF ${vrf} out of range (maxVrfs ${this.config.maxVrfs}): raise maxVrfs`);
  }

  // -------------------------------------------------------------------------------------------
  // Entry primitives (sequence lock)

  private writeEntry(off: number, src: Uint32Array, words: number, skip: number): void {
    const u = this.u32;
    Atomics.add(u, off, 1);
    for (let i = 1; i < words; i++) if (i !== skip) u[off + i] = src[i];
    Atomics.add(u, off, 1);
  }

  private sameEntry(off: number, src: Uint32Array, words: number, skip: number): boolean {
    const u = this.u32;
    for (let i = 1; i < words; i++) if (i !== skip && u[off + i] !== src[i]) return false;
    return true;
  }

  private freeEntry(off: number): void {
    const u = this.u32;
    Atomics.add(u, off, 1);
    u[off + 1] = 0;
    Atomics.add(u, off, 1);
  }

  /** Generic upsert of an encoded entry (t.scratch) under `key`. */
  private upsertEncoded(t: KindTable, key: string, fixedIdx = -1): boolean {
    const src = t.scratch;
    const existing = t.map.get(key);
    if (existing !== undefined) {
      const off = t.base + existing * t.words;
      if (this.sameEntry(off, src, t.words, t.skip)) {
        t.epochs[existing] = this.epoch;
        return false;
      }
      this.beginOp();
      try {
        this.writeEntry(off, src, t.words, t.skip);
        t.epochs[existing] = this.epoch;
        this.changed(t.stat);
      } finally {
        this.endOp();
      }
      return true;
    }
    if (t.pool && fixedIdx < 0) t.pool.check(1);
    this.beginOp();
    try {
      const idx = fixedIdx >= 0 ? fixedIdx : t.pool!.alloc();
      const off = t.base + idx * t.words;
      if (t.skip >= 0) this.u32[off + t.skip] = 0; // a new neighbour starts with no hit
      this.writeEntry(off, src, t.words, -1);
      t.map.set(key, idx);
      t.hash?.insert(t.hashOf!(idx), idx);
      if (t.hash?.needsRebuild()) t.hash.rebuild(t.map.values(), t.hashOf!);
      t.epochs[idx] = this.epoch;
      this.changed(t.stat);
      if (t.kind === 'rule') this.writeRuleOrder();
    } finally {
      this.endOp();
    }
    return true;
  }

  /** Removes entry idx of table t (inside an operation). */
  private removeIdx(t: KindTable, key: string, idx: number): void {
    if (t.kind === 'route') { this.removeRoute(idx); return; }
    const off = t.base + idx * t.words;
    if (t.hash) {
      t.hash.remove(t.hashOf!(idx), idx);
      if (t.hash.needsRebuild()) { t.map.delete(key); t.hash.rebuild(t.map.values(), t.hashOf!); }
    }
    this.freeEntry(off);
    t.map.delete(key);
    t.pool?.release(idx);
    this.changed(t.stat);
    if (t.kind === 'rule') this.writeRuleOrder();
  }

  // -------------------------------------------------------------------------------------------
  // Simple kinds

  private upsertVrf(o: Vrf): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.vrf;
    encodeVrf(o, t.scratch, t.scratchU8);
    return this.upsertEncoded(t, objectKey({ kind: 'vrf', obj: o }), o.vrf);
  }

  private linkName(off: number): string {
    const len = this.u32[off + LINK_E.LENS] & 255;
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(this.u8[(off + LINK_E.NAME) * 4 + i]);
    return s;
  }

  private portOf(vrf: number, name: string): number {
    return vrf === 0 ? this.ports.indexOf(name) : -1;
  }

  private upsertLink(o: Link): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.link;
    encodeLink(o, this.portOf(o.vrf, o.name), t.scratch, t.scratchU8);
    return this.upsertEncoded(t, objectKey({ kind: 'link', obj: o }));
  }

  private upsertAddress(o: Address): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.address;
    encodeAddress(o, t.scratch);
    return this.upsertEncoded(t, objectKey(canonKeyObject({ kind: 'address', obj: o })));
  }

  private upsertRule(o: Rule): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.rule;
    const key = objectKey({ kind: 'rule', obj: o });
    const existing = t.map.get(key);
    const serial = existing !== undefined ? this.u32[t.base + existing * t.words + RULE_E.SERIAL] : this.ruleSerial + 1;
    encodeRule(o, serial, t.scratch, t.scratchU8);
    const changed = this.upsertEncoded(t, key);
    if (existing === undefined) this.ruleSerial = serial;
    return changed;
  }

  private upsertNeighbour(o: Neighbour): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.neighbour;
    encodeNeighbour(o, t.scratch, t.scratchU8);
    return this.upsertEncoded(t, objectKey(canonKeyObject({ kind: 'neighbour', obj: o })));
  }

  private upsertPolicy(o: XfrmPolicy): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.policy;
    encodePolicy(o, t.scratch);
    return this.upsertEncoded(t, objectKey({ kind: 'policy', obj: o }));
  }

  private upsertSa(o: XfrmSa): boolean {
    this.checkVrf(o.vrf);
    const t = this.tables.sa;
    encodeSa(o, t.scratch, t.scratchU8);
    return this.upsertEncoded(t, objectKey(canonKeyObject({ kind: 'sa', obj: o })));
  }

  /** Rewrites the rule order array: indices sorted by (vrf, family, priority, serial). */
  private writeRuleOrder(): void {
    const t = this.tables.rule, u = this.u32, b = this.ruleOrderBase;
    const idx = [...t.map.values()];
    const key = (i: number, w: number): number => u[t.base + i * t.words + w];
    idx.sort((x, y) => key(x, RULE_E.VRF) - key(y, RULE_E.VRF) || (key(x, RULE_E.META) & 255) - (key(y, RULE_E.META) & 255) ||
      key(x, RULE_E.PRIORITY) - key(y, RULE_E.PRIORITY) || key(x, RULE_E.SERIAL) - key(y, RULE_E.SERIAL));
    Atomics.add(u, b + RULE_ORDER.SEQ, 1);
    u[b + RULE_ORDER.COUNT] = idx.length;
    for (let i = 0; i < idx.length; i++) u[b + RULE_ORDER.IDX + i] = idx[i];
    Atomics.add(u, b + RULE_ORDER.SEQ, 1);
  }

  // -------------------------------------------------------------------------------------------
  // Routes

  private upsertRoute(r0: Route): boolean {
    const r = r0.family === 6 ? canonRoute(r0) : r0;
    this.checkVrf(r.vrf);
    const t = this.tables.route;
    const w = t.scratch;
    const family = encodeRoute(r, w);
    const n = r.nexthops.length;
    if (n > ROUTE_MAX_NEXTHOPS) throw new TypeError(`route with ${n} next hops: at most ${ROUTE_MAX_NEXTHOPS} supported`);
    const type = w[ROUTE_E.META] >>> 24;
    const plen = (w[ROUTE_E.META] >>> 8) & 255;
    const mtu = r.mtu ?? 0;
    const idx = this.sNhIdx, weights = this.sWeights, sNh = this.sNh;
    for (let i = 0; i < n; i++) {
      const nh = r.nexthops[i];
      encodeNexthop(type, family, r.vrf, nh, mtu, sNh[i]);
      const wt = nh.weight;
      if (!Number.isInteger(wt) || wt < 1 || wt > 0xffff) throw new TypeError(`invalid next-hop weight ${wt}`);
      weights[i] = wt;
      idx[i] = this.nhFind(sNh[i]);
    }
    if (n === 0) {
      encodeNexthop(type, family, r.vrf, undefined, mtu, sNh[0]);
      idx[0] = this.nhFind(sNh[0]);
    }
    w[ROUTE_E.WEIGHT] = n === 1 ? weights[0] : 0;

    // Current reference, if the next hop / group already exists.
    let ref = -1;
    let newNh = 0, newGroup = 0;
    if (n <= 1) {
      if (idx[0] >= 0) ref = fibValue(FIB_NEXTHOP, 0, idx[0]);
      else newNh = 1;
    } else {
      let missing = false;
      for (let i = 0; i < n; i++) {
        if (idx[i] >= 0) continue;
        missing = true;
        let dup = false;
        for (let j = 0; j < i && !dup; j++) dup = idx[j] < 0 && sameWords(sNh[j], sNh[i], NH_E.WORDS);
        if (!dup) newNh++;
      }
      const g = missing ? undefined : this.grByKey.get(groupKey(idx, weights, n));
      if (g !== undefined) ref = fibValue(FIB_GROUP, 0, g);
      else newGroup = 1;
    }

    // Prefix identity in the FIB; the existing entry of this route, if any. IPv4 routes are found
    // through the prefix maps (all their key fields are there); IPv6 ones by objectKey (the key may
    // include the device).
    const table = r.table, vrf = r.vrf;
    const mk = this.sMask;
    mk[0] = w[ROUTE_E.DST]; mk[1] = w[ROUTE_E.DST + 1]; mk[2] = w[ROUTE_E.DST + 2]; mk[3] = w[ROUTE_E.DST + 3];
    maskWords(mk, 0, family, plen);
    if (mk[0] !== w[ROUTE_E.DST] || mk[1] !== w[ROUTE_E.DST + 1] || mk[2] !== w[ROUTE_E.DST + 2] || mk[3] !== w[ROUTE_E.DST + 3]) {
      throw new TypeError(`route destination ${r.dst}/${plen} has host bits set`);
    }
    let st4: Fib4State | undefined, st6: Fib6State | undefined;
    let pk4 = 0, pk6 = '', key = '';
    let existing: number;
    if (family === 4) {
      st4 = this.fib4Of(vrf, table);
      pk4 = mk[0] | 0;
      existing = this.findRoute4(st4, w, plen, pk4);
    } else {
      st6 = this.fib6.get(`${vrf}/${table}`);
      pk6 = `${mk[0]},${mk[1]},${mk[2]},${mk[3]}/${plen}`;
      key = objectKey({ kind: 'route', obj: r });
      existing = t.map.get(key) ?? -1;
    }
    if (existing >= 0 && ref >= 0) {
      w[ROUTE_E.REF] = ref;
      if (this.sameEntry(t.base + existing * ROUTE_E.WORDS, w, ROUTE_E.WORDS, -1)) {
        t.epochs[existing] = this.epoch;
        return false;
      }
    }

    // Capacity checks: nothing is modified before all of them passed.
    if (existing < 0) t.pool!.check(1);
    this.nhPool.check(newNh);
    this.grPool.check(newGroup);
    if (family === 4) {
      if (!st4) this.fib4Pool.check(1);
      if (plen > 24 && (!st4 || (this.u32[st4.tbl24 + (mk[0] >>> 8)] >>> 30) !== FIB_TBL8)) this.tbl8Pool.check(1);
    } else {
      if (!st6) this.fib6Pool.check(1);
      if ((!st6 || !st6.pfx.has(pk6)) && this.f6Live >= this.layout.fib6Capacity) {
        throw new ShmFullError(`IPv6 FIB full (${this.layout.fib6Capacity} prefixes in ${this.f6Slots} slots): raise fib6Entries`);
      }
    }

    this.beginOp();
    try {
      // Acquire the new reference (creates next hops / group as needed).
      let newRef: number;
      if (n <= 1) newRef = fibValue(FIB_NEXTHOP, 0, this.nhGet(sNh[0]));
      else newRef = fibValue(FIB_GROUP, 0, this.groupGet(n));
      w[ROUTE_E.REF] = newRef;
      let idx: number;
      let oldRef = -1;
      if (family === 4 && !st4) st4 = this.fib4Create(vrf, table);
      if (family === 6 && !st6) st6 = this.fib6Create(vrf, table);
      const oldBest = family === 4 ? this.bestWord(st4!.pfx[plen], pk4) : this.bestWord(st6!.pfx, pk6);
      if (existing < 0) {
        idx = t.pool!.alloc();
        this.writeEntry(t.base + idx * ROUTE_E.WORDS, w, ROUTE_E.WORDS, -1);
        if (family === 4) { prefixAdd(st4!.pfx[plen], pk4, idx); st4!.routes++; } else {
          t.map.set(key, idx);
          this.route6Keys.set(idx, key);
          prefixAdd(st6!.pfx, pk6, idx);
          st6!.routes++;
        }
      } else {
        idx = existing;
        oldRef = this.u32[t.base + idx * ROUTE_E.WORDS + ROUTE_E.REF];
        this.writeEntry(t.base + idx * ROUTE_E.WORDS, w, ROUTE_E.WORDS, -1);
      }
      if (family === 4) {
        const nb = this.bestWord(st4!.pfx[plen], pk4);
        if (nb !== oldBest) this.program4(st4!, mk[0], plen, nb !== 0 ? nb : this.covering4(st4!, mk[0], plen));
      } else {
        const nb = this.bestWord(st6!.pfx, pk6);
        if (nb !== oldBest) this.fib6Set(st6!, mk, plen, nb);
      }
      if (oldRef >= 0) this.refRelease(oldRef);
      t.epochs[idx] = this.epoch;
      this.changed(STAT.route);
    } finally {
      this.endOp();
    }
    return true;
  }

  private fib4Of(vrf: number, table: number): Fib4State | undefined {
    const l = this.last4;
    if (l !== undefined && l.vrf === vrf && l.table === table && this.fib4BySlot[l.slot] === l) return l;
    const st = this.fib4.get(`${vrf}/${table}`);
    if (st) this.last4 = st;
    return st;
  }

  /** Entry index of the IPv4 route with the key of `w` (dst, plen, tos, priority) in table st, -1. */
  private findRoute4(st: Fib4State | undefined, w: Uint32Array, plen: number, pk: number): number {
    if (!st) return -1;
    const v = st.pfx[plen].get(pk);
    if (v === undefined) return -1;
    const u = this.u32, base = this.tables.route.base;
    const dst = w[ROUTE_E.DST], meta = w[ROUTE_E.META] & 0xffffff, prio = w[ROUTE_E.PRIORITY];
    if (typeof v === 'number') {
      const off = base + v * ROUTE_E.WORDS;
      return u[off + ROUTE_E.DST] === dst && (u[off + ROUTE_E.META] & 0xffffff) === meta && u[off + ROUTE_E.PRIORITY] === prio ? v : -1;
    }
    for (const i of v) {
      const off = base + i * ROUTE_E.WORDS;
      if (u[off + ROUTE_E.DST] === dst && (u[off + ROUTE_E.META] & 0xffffff) === meta && u[off + ROUTE_E.PRIORITY] === prio) return i;
    }
    return -1;
  }

  /** Entry index of a route given its key fields, -1 when absent. */
  private routeLocate(r: Route): number {
    if (r.family === 6) return this.tables.route.map.get(objectKey(canonKeyObject({ kind: 'route', obj: r }))) ?? -1;
    const w = this.sKey;
    encodeAddrOf(4, r.dst, w, ROUTE_E.DST, 'route destination');
    if (!Number.isInteger(r.plen) || r.plen < 0 || r.plen > 32) throw new TypeError(`invalid route prefix length ${r.plen}`);
    w[ROUTE_E.META] = (4 | (r.plen << 8) | ((r.tos & 255) << 16)) >>> 0;
    w[ROUTE_E.PRIORITY] = r.priority >>> 0;
    const p = r.plen === 0 ? 0 : w[ROUTE_E.DST] & (0xffffffff << (32 - r.plen));
    return this.findRoute4(this.fib4Of(r.vrf, r.table), w, r.plen, p | 0);
  }

  /** FIB word of the best route among those of a prefix: tos 0, lowest priority. 0 when none. */
  private bestWord<K>(pfx: PrefixMap<K>, k: K): number {
    const v = pfx.get(k);
    if (v === undefined) return 0;
    const u = this.u32, base = this.tables.route.base;
    let best = -1, bestPrio = 0;
    if (typeof v === 'number') {
      best = v;
      if ((u[base + v * ROUTE_E.WORDS + ROUTE_E.META] >>> 16) & 255) return 0;
    } else {
      for (const i of v) {
        const off = base + i * ROUTE_E.WORDS;
        if ((u[off + ROUTE_E.META] >>> 16) & 255) continue;
        const p = u[off + ROUTE_E.PRIORITY];
        if (best < 0 || p < bestPrio || (p === bestPrio && this.tieBefore(off, base + best * ROUTE_E.WORDS))) { best = i; bestPrio = p; }
      }
      if (best < 0) return 0;
    }
    const off = base + best * ROUTE_E.WORDS;
    return (u[off + ROUTE_E.REF] | (((u[off + ROUTE_E.META] >>> 8) & 255) << 22)) >>> 0;
  }

  /**
   * Order between two routes of the same prefix and priority (IPv6 device routes such as fe80::/64
   * on several links): the lower next-hop ifindex wins, then the lower reference. Content based, so
   * the choice does not depend on entry allocation order.
   */
  private tieBefore(a: number, b: number): boolean {
    const ia = this.refIfindex(this.u32[a + ROUTE_E.REF]), ib = this.refIfindex(this.u32[b + ROUTE_E.REF]);
    if (ia !== ib) return ia < ib;
    return this.u32[a + ROUTE_E.REF] < this.u32[b + ROUTE_E.REF];
  }

  private refIfindex(ref: number): number {
    let nh = ref & FIB_INDEX_MASK;
    if ((ref >>> 30) === FIB_GROUP) nh = this.u32[this.grBase + nh * GROUP_E.WORDS + GROUP_E.MEMBERS];
    return this.u32[this.nhBase + nh * NH_E.WORDS + NH_E.IFINDEX];
  }

  private removeRoute(idx: number): void {
    const t = this.tables.route, u = this.u32;
    const off = t.base + idx * ROUTE_E.WORDS;
    const meta = u[off + ROUTE_E.META];
    const family = meta & 255, plen = (meta >>> 8) & 255;
    const vrf = u[off + ROUTE_E.VRF], table = u[off + ROUTE_E.TABLE];
    const mk = this.sMask;
    for (let k = 0; k < 4; k++) mk[k] = u[off + ROUTE_E.DST + k];
    maskWords(mk, 0, family, plen);
    const ref = u[off + ROUTE_E.REF];
    if (family === 4) {
      const st = this.fib4Of(vrf, table)!;
      const pk = mk[0] | 0, pm = st.pfx[plen];
      const oldBest = this.bestWord(pm, pk);
      prefixRemove(pm, pk, idx);
      const nb = this.bestWord(pm, pk);
      if (nb !== oldBest) this.program4(st, mk[0], plen, nb !== 0 ? nb : this.covering4(st, mk[0], plen));
      if (--st.routes === 0) this.fib4Free(st);
    } else {
      const st = this.fib6.get(`${vrf}/${table}`)!;
      const pk = `${mk[0]},${mk[1]},${mk[2]},${mk[3]}/${plen}`;
      const oldBest = this.bestWord(st.pfx, pk);
      prefixRemove(st.pfx, pk, idx);
      const nb = this.bestWord(st.pfx, pk);
      if (nb !== oldBest) this.fib6Set(st, mk, plen, nb);
      if (--st.routes === 0) this.fib6Free(st);
      t.map.delete(this.route6Keys.get(idx)!);
      this.route6Keys.delete(idx);
    }
    this.freeEntry(off);
    t.pool!.release(idx);
    this.refRelease(ref);
    this.changed(STAT.route);
  }

  // -------------------------------------------------------------------------------------------
  // Next hops and groups

  /** Index of the next hop whose entry equals `src` (USED = 1 included), -1 when none. */
  private nhFind(src: Uint32Array): number {
    const v = this.nhByHash.get(nhHash(src, 0));
    if (v === undefined) return -1;
    if (typeof v === 'number') return this.sameEntry(this.nhBase + v * NH_E.WORDS, src, NH_E.WORDS, -1) ? v : -1;
    for (const i of v) if (this.sameEntry(this.nhBase + i * NH_E.WORDS, src, NH_E.WORDS, -1)) return i;
    return -1;
  }

  private nhIndexAdd(i: number): void {
    const h = nhHash(this.u32, this.nhBase + i * NH_E.WORDS);
    this.nhHashOf[i] = h;
    this.nhUsed[i] = 1;
    prefixAdd(this.nhByHash, h, i);
  }

  /** Index of the next hop equal to `src`, created if missing; takes a reference. */
  private nhGet(src: Uint32Array): number {
    let i = this.nhFind(src);
    if (i < 0) {
      i = this.nhPool.alloc();
      this.writeEntry(this.nhBase + i * NH_E.WORDS, src, NH_E.WORDS, -1);
      this.nhIndexAdd(i);
      this.nhRef[i] = 0;
      this.changed(STAT.nexthop);
    }
    this.nhRef[i]++;
    return i;
  }

  /** Index of the ECMP group of members sNh / sWeights (0..n-1), created if missing; takes a reference. */
  private groupGet(n: number): number {
    const idx = this.sNhIdx;
    for (let i = 0; i < n; i++) idx[i] = this.nhGet(this.sNh[i]); // member references, kept by a new group
    const gkey = groupKey(idx, this.sWeights, n);
    let g = this.grByKey.get(gkey);
    if (g !== undefined) {
      for (let i = 0; i < n; i++) this.nhRef[idx[i]]--; // the existing group already holds them
      this.grRef[g]++;
      return g;
    }
    g = this.grPool.alloc();
    const s = this.sGroup;
    s.fill(0);
    s[GROUP_E.USED] = 1;
    s[GROUP_E.COUNT] = n;
    let total = 0;
    for (let i = 0; i < n; i++) {
      s[GROUP_E.MEMBERS + i] = idx[i];
      s[GROUP_E.WEIGHTS + i] = this.sWeights[i];
      total += this.sWeights[i];
    }
    s[GROUP_E.TOTAL] = total;
    fillBuckets(this.sWeights, n, this.sGroupU8, GROUP_E.BUCKETS * 4);
    this.writeEntry(this.grBase + g * GROUP_E.WORDS, s, GROUP_E.WORDS, -1);
    this.grByKey.set(gkey, g);
    this.grKeys[g] = gkey;
    this.grRef[g] = 1;
    this.changed(STAT.group);
    return g;
  }

  private refRelease(ref: number): void {
    const kind = ref >>> 30, i = ref & FIB_INDEX_MASK;
    if (kind === FIB_NEXTHOP) {
      if (--this.nhRef[i] > 0) return;
      this.freeEntry(this.nhBase + i * NH_E.WORDS);
      prefixRemove(this.nhByHash, this.nhHashOf[i], i);
      this.nhUsed[i] = 0;
      this.nhPool.release(i);
      this.changed(STAT.nexthop);
    } else if (kind === FIB_GROUP) {
      if (--this.grRef[i] > 0) return;
      const off = this.grBase + i * GROUP_E.WORDS;
      const n = this.u32[off + GROUP_E.COUNT];
      this.freeEntry(off);
      this.grByKey.delete(this.grKeys[i]);
      this.grKeys[i] = '';
      this.grPool.release(i);
      this.changed(STAT.group);
      for (let k = 0; k < n; k++) this.refRelease(fibValue(FIB_NEXTHOP, 0, this.u32[off + GROUP_E.MEMBERS + k]));
    }
  }

  // -------------------------------------------------------------------------------------------
  // IPv4 DIR-24-8

  private fib4Create(vrf: number, table: number): Fib4State {
    const slot = this.fib4Pool.alloc();
    const st: Fib4State = { slot, vrf, table, routes: 0, pfx: newPfx4(), tbl24: this.tbl24Base + slot * TBL24_ENTRIES };
    const off = this.fib4Desc + slot * FIB4D_E.WORDS, u = this.u32;
    this.clearSummary4(slot); // bits of an earlier table in this slot (its tbl24 is all zero again)
    Atomics.add(u, off, 1);
    u[off + FIB4D_E.VRF] = vrf; u[off + FIB4D_E.TABLE] = table; u[off + FIB4D_E.DEFAULT] = 0; u[off + FIB4D_E.USED] = 1;
    Atomics.add(u, off, 1);
    this.fib4.set(`${vrf}/${table}`, st);
    this.fib4BySlot[slot] = st;
    this.changed(STAT.fib4Table);
    return st;
  }

  /** Clears the summary bitmap of a table slot (only when its tbl24 is all zero / being rebuilt). */
  private clearSummary4(slot: number): void {
    const sum = this.fib4SumBase + slot * FIB4_SUM_WORDS;
    this.u32.fill(0, sum, sum + FIB4_SUM_WORDS);
  }

  /** Frees a slot whose last route went (its tbl24 is all zero again). */
  private fib4Free(st: Fib4State): void {
    this.freeEntry(this.fib4Desc + st.slot * FIB4D_E.WORDS);
    this.fib4.delete(`${st.vrf}/${st.table}`);
    this.fib4BySlot[st.slot] = undefined;
    this.fib4Pool.release(st.slot);
    this.changed(STAT.fib4Table);
  }

  /**
   * Word of the longest installed prefix strictly shorter than plen covering p, not counting /0:
   * 0 when none (the default route lives in the descriptor's DEFAULT word, which a lookup returns
   * when the tbl24 / tbl8 word is 0, so the range must go back to 0, not to the default's value).
   */
  private covering4(st: Fib4State, p: number, plen: number): number {
    for (let l = plen - 1; l >= 1; l--) {
      const pm = st.pfx[l];
      if (pm.size === 0) continue;
      const wd = this.bestWord(pm, p & (0xffffffff << (32 - l)));
      if (wd !== 0) return wd;
    }
    return 0;
  }

  /**
   * Sets every word of the range of p/plen whose depth is <= plen to `word` (an add or replace
   * when word's depth is plen; a delete restoring the covering prefix otherwise, 0 when only the
   * default route covers it). plen 0 (the default route) is the descriptor's DEFAULT word only: one
   * store, never a tbl24 / tbl8 word, so words of depth 0 in tbl24 / tbl8 are always 0.
   */
  private program4(st: Fib4State, p: number, plen: number, word: number): void {
    const u = this.u32, t24 = st.tbl24, t8 = this.tbl8Base;
    if (plen === 0) {
      Atomics.store(u, this.fib4Desc + st.slot * FIB4D_E.WORDS + FIB4D_E.DEFAULT, word);
      return;
    }
    if (word !== 0) {
      // Summary bits of the /16s the range touches, before any of its tbl24 words (layout.ts).
      const sum = this.fib4SumBase + st.slot * FIB4_SUM_WORDS;
      const first = p >>> 16, last = plen >= 16 ? first : first + (1 << (16 - plen)) - 1;
      for (let b = first; b <= last; b++) {
        const m = 1 << (b & 31);
        if ((u[sum + (b >>> 5)] & m) === 0) Atomics.or(u, sum + (b >>> 5), m);
      }
    }
    if (plen <= 24) {
      const start = p >>> 8, end = start + (1 << (24 - plen));
      for (let i = start; i < end; i++) {
        const e = u[t24 + i];
        if ((e >>> 30) === FIB_TBL8) {
          const g = t8 + (e & FIB_INDEX_MASK) * TBL8_ENTRIES;
          for (let j = 0; j < TBL8_ENTRIES; j++) {
            const x = u[g + j];
            if (((x >>> 22) & 255) <= plen && x !== word) Atomics.store(u, g + j, word);
          }
        } else if (((e >>> 22) & 255) <= plen && e !== word) {
          Atomics.store(u, t24 + i, word);
        }
      }
      return;
    }
    const i24 = t24 + (p >>> 8);
    const e = u[i24];
    let gi: number;
    if ((e >>> 30) !== FIB_TBL8) {
      if (((word >>> 22) & 255) !== plen) return; // nothing installed below this /24
      gi = this.tbl8Pool.alloc();
      const g = t8 + gi * TBL8_ENTRIES;
      for (let j = 0; j < TBL8_ENTRIES; j++) u[g + j] = e; // fill completely before publishing
      // A new incarnation number in the pointer: a reader that read an older pointer to this group
      // (stalled while the group was freed and reused) sees the tbl24 word differ when it re-checks.
      const inc = (this.tbl8Inc[gi] + 1) & 255;
      this.tbl8Inc[gi] = inc;
      Atomics.store(u, i24, fibValue(FIB_TBL8, inc, gi));
      this.changed(STAT.tbl8);
    } else gi = e & FIB_INDEX_MASK;
    const g = t8 + gi * TBL8_ENTRIES;
    const start = p & 255, end = start + (1 << (32 - plen));
    for (let j = start; j < end; j++) {
      const x = u[g + j];
      if (((x >>> 22) & 255) <= plen && x !== word) Atomics.store(u, g + j, word);
    }
    if (((word >>> 22) & 255) <= 24) {
      // Collapse the group when nothing longer than /24 is left in it.
      const first = u[g];
      if (((first >>> 22) & 255) > 24) return;
      for (let j = 1; j < TBL8_ENTRIES; j++) if (u[g + j] !== first) return;
      Atomics.store(u, i24, first); // unpublish, then free (reused only after this operation)
      this.tbl8Pool.release(gi);
      this.changed(STAT.tbl8);
    }
  }

  // -------------------------------------------------------------------------------------------
  // IPv6 hash

  private fib6Create(vrf: number, table: number): Fib6State {
    const slot = this.fib6Pool.alloc();
    const desc = this.fib6Desc + slot * FIB6D_E.WORDS;
    const st: Fib6State = { slot, vrf, table, routes: 0, pfx: new Map(), lenCount: new Int32Array(129), desc };
    const u = this.u32;
    Atomics.add(u, desc, 1);
    for (let k = 0; k < 5; k++) u[desc + FIB6D_E.LENS + k] = 0;
    u[desc + FIB6D_E.VRF] = vrf; u[desc + FIB6D_E.TABLE] = table; u[desc + FIB6D_E.USED] = 1;
    Atomics.add(u, desc, 1);
    this.fib6.set(`${vrf}/${table}`, st);
    this.fib6BySlot[slot] = st;
    this.changed(STAT.fib6Table);
    return st;
  }

  private fib6Free(st: Fib6State): void {
    this.freeEntry(st.desc);
    this.fib6.delete(`${st.vrf}/${st.table}`);
    this.fib6BySlot[st.slot] = undefined;
    this.fib6Pool.release(st.slot);
    this.changed(STAT.fib6Table);
  }

  private f6Arr(): number {
    return this.f6Hdr + HASH_HDR_WORDS + (this.u32[this.f6Hdr] & 1) * this.f6Slots * FIB6E.WORDS;
  }

  /** Word offset of the live entry for (slot, plen, masked prefix), -1 when absent. */
  private f6Find(slot: number, plen: number, m: Uint32Array): number {
    const u = this.u32, a = this.f6Arr(), mask = this.f6Slots - 1;
    const want = plen | (slot << 8) | (FIB6_USED << 16);
    for (let i = hashFib6(slot, plen, m[0], m[1], m[2], m[3]) & mask; ; i = (i + 1) & mask) {
      const e = a + i * FIB6E.WORDS;
      const meta = u[e + FIB6E.META];
      if (meta === FIB6_EMPTY) return -1;
      if (meta === want && u[e + 2] === m[0] && u[e + 3] === m[1] && u[e + 4] === m[2] && u[e + 5] === m[3]) return e;
    }
  }

  private f6Put(a: number, slot: number, plen: number, m: ArrayLike<number>, value: number): void {
    const u = this.u32, mask = this.f6Slots - 1;
    for (let i = hashFib6(slot, plen, m[0], m[1], m[2], m[3]) & mask; ; i = (i + 1) & mask) {
      const e = a + i * FIB6E.WORDS;
      const state = u[e + FIB6E.META] >>> 16;
      if (state === FIB6_USED) continue;
      if (state === FIB6_TOMB) this.f6Tombs--;
      Atomics.add(u, e, 1);
      u[e + FIB6E.META] = plen | (slot << 8) | (FIB6_USED << 16);
      u[e + 2] = m[0]; u[e + 3] = m[1]; u[e + 4] = m[2]; u[e + 5] = m[3];
      u[e + FIB6E.VALUE] = value;
      Atomics.add(u, e, 1);
      this.f6Live++;
      return;
    }
  }

  /** Sets (word != 0) or deletes (word == 0) the FIB entry of a prefix. */
  private fib6Set(st: Fib6State, m: Uint32Array, plen: number, word: number): void {
    const u = this.u32;
    const e = this.f6Find(st.slot, plen, m);
    if (word === 0 && e < 0) return;
    const lw = st.desc + FIB6D_E.LENS + (plen >>> 5), bit = 1 << (plen & 31);
    const chg = st.desc + FIB6D_E.CHG;
    Atomics.add(u, chg, 1); // odd: lookups of this table retry
    if (word === 0) {
      if (--st.lenCount[plen] === 0) Atomics.and(u, lw, ~bit);
      Atomics.add(u, e, 1);
      u[e + FIB6E.META] = (u[e + FIB6E.META] & 0xffff) | (FIB6_TOMB << 16);
      Atomics.add(u, e, 1);
      this.f6Live--;
      this.f6Tombs++;
    } else if (e >= 0) {
      Atomics.add(u, e, 1);
      u[e + FIB6E.VALUE] = word;
      Atomics.add(u, e, 1);
      Atomics.add(u, chg, 1);
      return;
    } else {
      this.f6Put(this.f6Arr(), st.slot, plen, m, word);
      if (st.lenCount[plen]++ === 0) Atomics.or(u, lw, bit);
    }
    Atomics.add(u, chg, 1);
    this.changed(STAT.fib6Prefix);
    if (this.f6Live + this.f6Tombs > this.f6Slots * 0.8) this.f6Rebuild(false);
  }

  /** Rebuilds the IPv6 hash into the inactive array (from the active one, or from the routes). */
  private f6Rebuild(fromRoutes: boolean): void {
    const u = this.u32, W = FIB6E.WORDS;
    const gen = u[this.f6Hdr];
    const cur = this.f6Arr();
    const other = this.f6Hdr + HASH_HDR_WORDS + ((gen & 1) ^ 1) * this.f6Slots * W;
    // Clear while keeping sequence words moving forward (a very late reader sees a changed SEQ).
    for (let i = 0; i < this.f6Slots; i++) {
      const e = other + i * W;
      if (u[e] & 1) Atomics.add(u, e, 1); // left odd by a crash
      if (u[e + FIB6E.META] !== 0) { Atomics.add(u, e, 1); u[e + FIB6E.META] = 0; Atomics.add(u, e, 1); }
    }
    this.f6Live = 0;
    this.f6Tombs = 0;
    const pre = new Uint32Array(4);
    if (!fromRoutes) {
      for (let i = 0; i < this.f6Slots; i++) {
        const e = cur + i * W;
        const meta = u[e + FIB6E.META];
        if ((meta >>> 16) !== FIB6_USED) continue;
        pre[0] = u[e + 2]; pre[1] = u[e + 3]; pre[2] = u[e + 4]; pre[3] = u[e + 5];
        this.f6Put(other, (meta >>> 8) & 255, meta & 255, pre, u[e + FIB6E.VALUE]);
      }
    } else {
      for (const st of this.fib6.values()) {
        st.lenCount.fill(0);
        const lens = new Uint32Array(5);
        for (const pk of st.pfx.keys()) {
          const wd = this.bestWord(st.pfx, pk);
          if (wd === 0) continue;
          const [addr, pl] = pk.split('/');
          const parts = addr.split(',');
          for (let k = 0; k < 4; k++) pre[k] = Number(parts[k]);
          const plen = Number(pl);
          this.f6Put(other, st.slot, plen, pre, wd);
          st.lenCount[plen]++;
          lens[plen >>> 5] |= 1 << (plen & 31);
        }
        for (let k = 0; k < 5; k++) Atomics.store(u, st.desc + FIB6D_E.LENS + k, lens[k]);
      }
    }
    Atomics.store(u, this.f6Hdr, (gen + 1) >>> 0);
  }

  // -------------------------------------------------------------------------------------------
  // attach(): rebuild every in-memory index from the tables

  private rebuild(): void {
    const u = this.u32;
    const dirty = u[HDR.DIRTY] !== 0;
    this.epoch = u[HDR.EPOCH] | 0;
    this.opDepth = 1; // we are inside an operation until the end (DIRTY stays as found)
    this.opKinds = 0;

    // 1. Entries left half-written by a crash: make the lock even and drop the entry.
    const fixOdd = (base: number, words: number, n: number): void => {
      for (let i = 0; i < n; i++) {
        const off = base + i * words;
        if (u[off] & 1) { u[off + 1] = 0; Atomics.add(u, off, 1); }
      }
    };
    for (const k of KINDS) fixOdd(this.tables[k].base, this.tables[k].words, this.tables[k].cap);
    fixOdd(this.nhBase, NH_E.WORDS, this.config.maxNexthops);
    fixOdd(this.grBase, GROUP_E.WORDS, this.config.maxGroups);
    fixOdd(this.fib4Desc, FIB4D_E.WORDS, this.config.fib4Tables);
    fixOdd(this.fib6Desc, FIB6D_E.WORDS, this.config.fib6Tables);
    for (let s = 0; s < this.config.fib6Tables; s++) {
      const chg = this.fib6Desc + s * FIB6D_E.WORDS + FIB6D_E.CHG;
      if (u[chg] & 1) Atomics.add(u, chg, 1); // left odd by a crash inside fib6Set
    }

    // 2. Simple kinds.
    const keyed: [ObjectKind, (off: number) => string][] = [
      ['vrf', (o) => `${u[o + VRF_E.VRF]}`],
      ['link', (o) => `${u[o + LINK_E.VRF]}/${u[o + LINK_E.IFINDEX]}`],
      ['address', (o) => {
        const fam = u[o + ADDR_E.META] & 255;
        return `${u[o + ADDR_E.VRF]}/${u[o + ADDR_E.IFINDEX]}/${decodeAddr(fam === 4 ? ADDR_V4 : ADDR_V6, u, o + ADDR_E.ADDR)}/${(u[o + ADDR_E.META] >>> 8) & 255}`;
      }],
      ['rule', (o) => objectKey({ kind: 'rule', obj: this.ruleAt(o) })],
      ['neighbour', (o) => {
        const fam = u[o + NEIGH_E.META] & 255;
        return `${u[o + NEIGH_E.VRF]}/${u[o + NEIGH_E.IFINDEX]}/${decodeAddr(fam === 4 ? ADDR_V4 : ADDR_V6, u, o + NEIGH_E.ADDR)}`;
      }],
      ['policy', (o) => `${u[o + POLICY_E.VRF]}/${u[o + POLICY_E.INDEX]}`],
      ['sa', (o) => `${u[o + SA_E.VRF]}/${decodeAddr((u[o + SA_E.BITS] >>> 8) & 3, u, o + SA_E.DADDR)}/${u[o + SA_E.SPI]}/${u[o + SA_E.META] & 255}`],
    ];
    for (const [kind, keyOf] of keyed) {
      const t = this.tables[kind];
      t.map.clear();
      for (let i = 0; i < t.cap; i++) {
        const off = t.base + i * t.words;
        if (u[off + 1] !== 1) continue;
        const key = keyOf(off);
        if (t.map.has(key)) { this.freeEntry(off); continue; } // duplicate (crash): keep the first
        t.map.set(key, i);
      }
      t.pool?.reset((i) => u[t.base + i * t.words + 1] === 1);
      if (t.hash) t.hash.rebuild(t.map.values(), t.hashOf!);
    }
    // Rule serials and order; ports from the links.
    const rt = this.tables.rule;
    this.ruleSerial = 0;
    if (u[this.ruleOrderBase + RULE_ORDER.SEQ] & 1) Atomics.add(u, this.ruleOrderBase + RULE_ORDER.SEQ, 1);
    for (const i of rt.map.values()) this.ruleSerial = Math.max(this.ruleSerial, u[rt.base + i * rt.words + RULE_E.SERIAL]);
    this.writeRuleOrder();
    this.ports = [];
    const lt = this.tables.link;
    for (const i of lt.map.values()) {
      const off = lt.base + i * lt.words;
      const port = u[off + LINK_E.PORT] | 0;
      if (u[off + LINK_E.VRF] === 0 && port >= 0 && port < 65536) this.ports[port] = this.linkName(off);
    }
    for (let i = 0; i < this.ports.length; i++) if (this.ports[i] === undefined) this.ports[i] = '';

    // 3. Next hops and groups.
    this.nhByHash.clear();
    this.nhRef.fill(0);
    this.nhUsed.fill(0);
    for (let i = 0; i < this.config.maxNexthops; i++) {
      const off = this.nhBase + i * NH_E.WORDS;
      if (u[off + 1] !== 1) continue;
      if (this.nhFind(u.subarray(off, off + NH_E.WORDS)) >= 0) { this.freeEntry(off); continue; } // duplicate (crash)
      this.nhIndexAdd(i);
    }
    this.grByKey.clear();
    this.grRef.fill(0);
    for (let g = 0; g < this.config.maxGroups; g++) {
      const off = this.grBase + g * GROUP_E.WORDS;
      this.grKeys[g] = '';
      if (u[off + 1] !== 1) continue;
      const n = u[off + GROUP_E.COUNT];
      let ok = n >= 2 && n <= ROUTE_MAX_NEXTHOPS;
      for (let k = 0; ok && k < n; k++) {
        const m = u[off + GROUP_E.MEMBERS + k];
        ok = m < this.config.maxNexthops && this.nhUsed[m] === 1;
      }
      const key = ok ? groupKey(u, u, n, off + GROUP_E.MEMBERS, off + GROUP_E.WEIGHTS) : '';
      if (!ok || this.grByKey.has(key)) { this.freeEntry(off); continue; }
      this.grByKey.set(key, g);
      this.grKeys[g] = key;
    }

    // 4. Routes (drop those whose reference is invalid), FIB table slots.
    this.fib4.clear(); this.fib6.clear();
    this.fib4BySlot.length = 0; this.fib6BySlot.length = 0;
    for (let s = 0; s < this.config.fib4Tables; s++) {
      const off = this.fib4Desc + s * FIB4D_E.WORDS;
      if (u[off + 1] !== 1) continue;
      const st: Fib4State = { slot: s, vrf: u[off + FIB4D_E.VRF], table: u[off + FIB4D_E.TABLE], routes: 0, pfx: newPfx4(), tbl24: this.tbl24Base + s * TBL24_ENTRIES };
      this.fib4.set(`${st.vrf}/${st.table}`, st);
      this.fib4BySlot[s] = st;
    }
    for (let s = 0; s < this.config.fib6Tables; s++) {
      const desc = this.fib6Desc + s * FIB6D_E.WORDS;
      if (u[desc + 1] !== 1) continue;
      const st: Fib6State = { slot: s, vrf: u[desc + FIB6D_E.VRF], table: u[desc + FIB6D_E.TABLE], routes: 0, pfx: new Map(), lenCount: new Int32Array(129), desc };
      this.fib6.set(`${st.vrf}/${st.table}`, st);
      this.fib6BySlot[s] = st;
    }
    this.fib4Pool.reset((s) => this.fib4BySlot[s] !== undefined);
    this.fib6Pool.reset((s) => this.fib6BySlot[s] !== undefined);
    const t = this.tables.route;
    t.map.clear();
    this.route6Keys.clear();
    this.last4 = undefined;
    const mk = this.sMask;
    const w = t.scratch;
    let rebuild4 = dirty;
    for (let i = 0; i < t.cap; i++) {
      const off = t.base + i * ROUTE_E.WORDS;
      if (u[off + 1] !== 1) continue;
      const ref = u[off + ROUTE_E.REF], kind = ref >>> 30, ri = ref & FIB_INDEX_MASK;
      const meta = u[off + ROUTE_E.META];
      const family = meta & 255, plen = (meta >>> 8) & 255;
      let ok = (family === 4 && plen <= 32) || (family === 6 && plen <= 128);
      if (kind === FIB_NEXTHOP) ok &&= ri < this.config.maxNexthops && this.nhUsed[ri] === 1;
      else if (kind === FIB_GROUP) ok &&= ri < this.config.maxGroups && this.grKeys[ri] !== '';
      else ok = false;
      if (!ok) { this.freeEntry(off); rebuild4 = true; continue; }
      for (let k = 0; k < ROUTE_E.WORDS; k++) w[k] = u[off + k];
      const vrf = w[ROUTE_E.VRF], table = w[ROUTE_E.TABLE];
      for (let k = 0; k < 4; k++) mk[k] = w[ROUTE_E.DST + k];
      maskWords(mk, 0, family, plen);
      if (family === 4) {
        let st = this.fib4Of(vrf, table);
        if (st && this.findRoute4(st, w, plen, mk[0] | 0) >= 0) { this.freeEntry(off); rebuild4 = true; continue; } // duplicate
        if (!st) { st = this.fib4Create(vrf, table); rebuild4 = true; }
        prefixAdd(st.pfx[plen], mk[0] | 0, i);
        st.routes++;
      } else {
        const key = this.routeKeyAt(w);
        if (t.map.has(key)) { this.freeEntry(off); continue; }
        t.map.set(key, i);
        this.route6Keys.set(i, key);
        let st = this.fib6.get(`${vrf}/${table}`);
        if (!st) st = this.fib6Create(vrf, table);
        prefixAdd(st.pfx, `${mk[0]},${mk[1]},${mk[2]},${mk[3]}/${plen}`, i);
        st.routes++;
      }
      if (kind === FIB_NEXTHOP) this.nhRef[ri]++; else this.grRef[ri]++;
    }
    t.pool!.reset((i) => u[t.base + i * ROUTE_E.WORDS + 1] === 1);
    // Group members hold next-hop references.
    for (const g of this.grByKey.values()) {
      const off = this.grBase + g * GROUP_E.WORDS;
      for (let k = 0; k < u[off + GROUP_E.COUNT]; k++) this.nhRef[u[off + GROUP_E.MEMBERS + k]]++;
    }
    // Unreferenced groups, then next hops (leaks of a crash).
    for (const [key, g] of this.grByKey) {
      if (this.grRef[g] > 0) continue;
      const off = this.grBase + g * GROUP_E.WORDS;
      for (let k = 0; k < u[off + GROUP_E.COUNT]; k++) this.nhRef[u[off + GROUP_E.MEMBERS + k]]--;
      this.freeEntry(off);
      this.grByKey.delete(key);
      this.grKeys[g] = '';
    }
    for (let i = 0; i < this.config.maxNexthops; i++) {
      if (this.nhUsed[i] !== 1 || this.nhRef[i] > 0) continue;
      this.freeEntry(this.nhBase + i * NH_E.WORDS);
      prefixRemove(this.nhByHash, this.nhHashOf[i], i);
      this.nhUsed[i] = 0;
    }
    this.nhPool.reset((i) => this.nhUsed[i] === 1);
    this.grPool.reset((g) => this.grKeys[g] !== '');
    for (const st of [...this.fib4.values()]) {
      if (st.routes !== 0) continue;
      // Every route of this table was dropped: clear what it left so that the slot is clean for reuse.
      this.u32.fill(0, st.tbl24, st.tbl24 + TBL24_ENTRIES);
      this.clearSummary4(st.slot);
      Atomics.store(u, this.fib4Desc + st.slot * FIB4D_E.WORDS + FIB4D_E.DEFAULT, 0);
      this.fib4Free(st);
      rebuild4 = true;
    }
    for (const st of [...this.fib6.values()]) if (st.routes === 0) this.fib6Free(st);

    // 5. IPv4 FIB: trust it unless the writer died mid-operation; find the tbl8 groups in use.
    if (rebuild4) {
      for (const st of this.fib4.values()) { this.u32.fill(0, st.tbl24, st.tbl24 + TBL24_ENTRIES); this.clearSummary4(st.slot); }
      this.tbl8Pool.reset(() => false);
      for (const st of this.fib4.values()) {
        for (let plen = 1; plen <= 32; plen++) {
          for (const pk of st.pfx[plen].keys()) {
            const wd = this.bestWord(st.pfx[plen], pk);
            if (wd !== 0) this.program4(st, pk >>> 0, plen, wd);
          }
        }
      }
    } else {
      const used = new Uint8Array(this.config.tbl8Groups);
      for (const st of this.fib4.values()) {
        for (let plen = 25; plen <= 32; plen++) for (const pk of st.pfx[plen].keys()) {
          const e = u[st.tbl24 + (pk >>> 8)];
          if ((e >>> 30) === FIB_TBL8) { used[e & FIB_INDEX_MASK] = 1; this.tbl8Inc[e & FIB_INDEX_MASK] = (e >>> 22) & 255; }
        }
      }
      this.tbl8Pool.reset((g) => used[g] === 1);
    }
    // Default routes: one word per table, recomputed from the routes in any case.
    for (const st of this.fib4.values()) this.program4(st, 0, 0, this.bestWord(st.pfx[0], 0));
    // 6. IPv6 FIB: always rebuilt from the routes (into the inactive array, then published).
    this.f6Rebuild(true);

    // 7. Header counts, writer identity.
    for (const k of KINDS) this.tables[k].epochs.fill(0);
    this.syncing = false;
    u[HDR.SYNCING] = 0;
    for (let k = 0; k < 14; k++) Atomics.store(u, HDR.KIND_COUNT + k, this.statCount(k));
    Atomics.store(u, HDR.WRITER_PID, process.pid);
    this.heartbeat();
    this.opKinds = 0;
    this.opDepth = 1;
    this.endOp();
  }

  /** objectKey of a route entry (copied in w); IPv6 keys may include the device of the next hop. */
  private routeKeyAt(w: Uint32Array): string {
    const r = decodeRouteBase(w);
    const n = (w[ROUTE_E.META2] >>> 16) & 255;
    const ref = w[ROUTE_E.REF];
    if (r.family === 6 && n === 1 && (ref >>> 30) === FIB_NEXTHOP) {
      const off = this.nhBase + (ref & FIB_INDEX_MASK) * NH_E.WORDS;
      r.nexthops = [modelNexthop(this.u32.subarray(off, off + NH_E.WORDS), w[ROUTE_E.WEIGHT])];
    }
    return objectKey({ kind: 'route', obj: r });
  }

  private ruleAt(off: number): Rule {
    const t = this.tables.rule;
    for (let k = 0; k < t.words; k++) t.scratch[k] = this.u32[off + k];
    return decodeRule(t.scratch, t.scratchU8);
  }
}

// ---------------------------------------------------------------------------------------------
// Canonical keys

function canonRoute(r: Route): Route {
  const dst = canonV6(r.dst);
  return dst === r.dst ? r : { ...r, dst };
}

/** The object with its key addresses in canonical form (same object when already canonical). */
function canonKeyObject(o: AnyObject): AnyObject {
  switch (o.kind) {
    case 'route': {
      const r = canonRoute(o.obj);
      return r === o.obj ? o : { kind: 'route', obj: r };
    }
    case 'address': {
      const addr = canonV6(o.obj.addr);
      return addr === o.obj.addr ? o : { kind: 'address', obj: { ...o.obj, addr } };
    }
    case 'neighbour': {
      const addr = canonV6(o.obj.addr);
      return addr === o.obj.addr ? o : { kind: 'neighbour', obj: { ...o.obj, addr } };
    }
    case 'sa': {
      const daddr = canonV6(o.obj.daddr);
      return daddr === o.obj.daddr ? o : { kind: 'sa', obj: { ...o.obj, daddr } };
    }
    default: return o;
  }
}
