// The reassembly table shared by nodes/ipv4-reassembly.ts and nodes/ipv6-reassembly.ts (one table
// per node, per worker). Everything is preallocated in the constructor (typed arrays); adding a
// fragment, completing, expiring and evicting allocate nothing.
//
// A context = one datagram being reassembled, keyed by `kw` int32 words (the node builds the key:
// IPv4 src, dst, id | proto << 16, VRF; IPv6 src, dst, id, VRF) in a chained hash table. It owns ONE
// pool buffer (io.alloc when the context is created): each accepted fragment's payload is copied at
// once to bufOff + payloadAt + fragment offset and the fragment's own buffer is freed by the node, so
// a datagram pins one buffer, not one per fragment. The headers of the offset-0 fragment (Ethernet +
// IP) are saved in a per-context header store; the node writes them in front of the payload when
// the datagram is complete and hands the buffer on (ownership moves to the output packet).
//
// Per context: up to `maxFrags` received ranges [start, end) (bytes of the fragmentable part):
//   - exact duplicate of a received range: tolerated (status DUP, the node frees it uncounted);
//   - any other overlap (RFC 5722): the whole datagram is discarded ('reasm-overlap');
//   - more than maxFrags distinct fragments: discarded ('reasm-too-many-frags');
//   - inconsistent lengths (a last fragment that ends before received data, two different ends,
//     data past the known end): discarded ('frag-error', a malformed datagram).
// A discarded datagram's fragments received so far are counted as drops with the reason on the
// input port of its first received fragment; its buffer is freed; the context stays "dead" (key
// kept, no buffer) until its timeout so that the fragments still to come are dropped at once with
// the same reason instead of starting a new datagram that could only time out.
//
// Contexts are kept in creation order (a doubly linked FIFO): the oldest is the first to time out
// (timeoutMs after its first fragment, RFC 791's timer; Linux's ipfrag_time default is 30 s, the
// fast path uses 2 s by default; clock: ReassemblyOptions.now) and the one evicted when the table
// is full ('reasm-table-full' for its fragments). expire(now) walks the FIFO from the oldest and
// stops at the first one still young: O(expired), no scan. The key hash is seeded per table
// (random), so chains cannot be lengthened by crafted keys (and are bounded by the table size).

import { DROP_BASE, PORT_STRIDE, W_HEARTBEAT_MS, dropReason, type DropReason } from '../shared-mem/stats';
import type { FpContext } from './context';
import type { Vector } from './vector';

/** A DROP_REASONS index; `fallback` when `name` is not (yet) in shared-mem/stats.ts. */
export function dropReasonOr(name: string, fallback: DropReason): number {
  try {
    return dropReason(name as DropReason);
  } catch {
    return dropReason(fallback);
  }
}

export const D_REASM_TIMEOUT = dropReasonOr('reasm-timeout', 'frag-error');
export const D_REASM_OVERLAP = dropReasonOr('reasm-overlap', 'frag-error');
export const D_REASM_TOO_BIG = dropReasonOr('reasm-too-big', 'frag-error');
export const D_REASM_TABLE_FULL = dropReasonOr('reasm-table-full', 'frag-error');
export const D_REASM_TOO_MANY = dropReasonOr('reasm-too-many-frags', 'frag-error');
/** Malformed fragments / inconsistent datagrams. */
export const D_FRAG_ERROR = dropReason('frag-error');
export const D_NO_MBUF = dropReason('no-mbuf');

/** Where the output of a reassembly node goes: any node with an input vector and a run(). */
export interface PacketSink {
  readonly input: Vector;
  run(): void;
}

export interface ReassemblyOptions {
  /** Datagrams reassembled at the same time (default 1024). */
  contexts?: number;
  /** A datagram not complete this long after its first fragment is dropped (default 2000 ms). */
  timeoutMs?: number;
  /** Distinct fragments per datagram (default 64, at most 1024). */
  maxFrags?: number;
  /**
   * Millisecond clock, read once per run() / tick(). Default: this worker's heartbeat field (stats
   * W_HEARTBEAT_MS, Date.now() stored by Graph.heartbeat(), every 100 ms in fastpath/fp.ts): reading
   * a Float64Array allocates nothing, whereas Date.now() / performance.now() return a new HeapNumber
   * at each call; Date.now() only while no heartbeat was ever stored. Tests inject their own clock.
   */
  now?: () => number;
}

// add() results
export const ADD_OK = 0, ADD_COMPLETE = 1, ADD_DUP = 2, ADD_OVERLAP = 3, ADD_TOO_MANY = 4, ADD_MALFORMED = 5;
/** ReassemblyTable.admit() results besides a context index. */
export const ADMIT_DUP = -1, ADMIT_DROP = -2;

/** Context states (table.state). */
export const FREE = 0, LIVE = 1, DEAD = 2;

export class ReassemblyTable {
  readonly contexts: number;
  readonly timeoutMs: number;
  readonly maxFrags: number;
  /** The injected clock (null: the heartbeat field, see ReassemblyOptions.now). */
  readonly clock: (() => number) | null;
  /** Key words per context. */
  private readonly kw: number;
  /** Bytes of the header store per context. */
  readonly hdrMax: number;
  /** Offset of the fragmentable part's byte 0 from the buffer's start (bufOff). */
  readonly payloadAt: number;
  /** Largest fragmentable part (end of a fragment) accepted. */
  readonly maxPayload: number;

  private readonly ctx: FpContext;
  /** Scratch key the node fills before find/create. */
  readonly k: Int32Array;
  private readonly key: Int32Array;
  private readonly hashOf: Int32Array;
  private readonly bucket: Int32Array;
  private readonly chain: Int32Array;
  private readonly mask: number;
  private readonly seed = (Math.random() * 0x100000000) | 0;
  readonly state: Uint8Array;
  /** DEAD contexts: the reason their fragments are dropped with. */
  readonly deadReason: Int32Array;
  private readonly older: Int32Array;
  private readonly newer: Int32Array;
  private oldest = -1;
  private newest = -1;
  private readonly created: Float64Array;
  private readonly freeList: Int32Array;
  private nfree: number;
  /** The context's pool buffer (LIVE contexts). */
  readonly buf: Uint32Array;
  readonly bufOff: Uint32Array;
  /** Input port of the first fragment received (drop counters). */
  readonly port: Uint16Array;
  /** Input port and aux of the offset-0 fragment (the output packet's). */
  readonly outPort: Uint16Array;
  readonly outAux: Uint32Array;
  readonly nfrag: Int32Array;
  private readonly rs: Int32Array;
  private readonly re: Int32Array;
  /** Bytes received (distinct ranges). */
  private readonly got: Int32Array;
  /** Length of the fragmentable part once the last fragment was seen, else -1. */
  readonly total: Int32Array;
  /** Bytes saved in the header store (0: the offset-0 fragment has not been seen). */
  readonly hdrLen: Int32Array;
  /** Header store: hdrMax bytes per context. */
  readonly hdr: Uint8Array;
  /** ECN code points seen (bit 1 << ecn). */
  readonly ecn: Uint8Array;
  /** Contexts in use (LIVE or DEAD). */
  used = 0;
  private readonly oneM = new Uint32Array(1);
  private readonly oneO = new Uint32Array(1);
  /** Run time of the current vector (ms, from clock). */
  readonly nowMs = new Float64Array(1);

  /** Statistics (not in shm): datagrams completed, duplicates tolerated, evictions, timeouts. */
  completed = 0;
  duplicates = 0;
  evicted = 0;
  timedOut = 0;

  constructor(ctx: FpContext, keyWords: number, hdrMax: number, payloadAt: number, maxEnd: number, opts: ReassemblyOptions = {}) {
    const n = opts.contexts ?? 1024;
    if (!Number.isInteger(n) || n < 1 || n > 1 << 20) throw new RangeError(`reassembly contexts=${n}: must be in [1, 2^20]`);
    const mf = opts.maxFrags ?? 64;
    if (!Number.isInteger(mf) || mf < 1 || mf > 1024) throw new RangeError(`reassembly maxFrags=${mf}: must be in [1, 1024]`);
    const to = opts.timeoutMs ?? 2000;
    if (!(to > 0)) throw new RangeError(`reassembly timeoutMs=${to}: must be > 0`);
    const room = ctx.io.bufSize - payloadAt;
    if (room < 8) throw new RangeError(`reassembly: buffers of ${ctx.io.bufSize} bytes are too small`);
    this.ctx = ctx;
    this.contexts = n;
    this.maxFrags = mf;
    this.timeoutMs = to;
    this.clock = opts.now ?? null;
    this.kw = keyWords;
    this.hdrMax = hdrMax;
    this.payloadAt = payloadAt;
    this.maxPayload = Math.min(maxEnd, room);
    let nb = 1;
    while (nb < 2 * n) nb <<= 1;
    this.mask = nb - 1;
    this.k = new Int32Array(keyWords);
    this.key = new Int32Array(n * keyWords);
    this.hashOf = new Int32Array(n);
    this.bucket = new Int32Array(nb).fill(-1);
    this.chain = new Int32Array(n).fill(-1);
    this.state = new Uint8Array(n);
    this.deadReason = new Int32Array(n);
    this.older = new Int32Array(n).fill(-1);
    this.newer = new Int32Array(n).fill(-1);
    this.created = new Float64Array(n);
    this.freeList = new Int32Array(n);
    for (let i = 0; i < n; i++) this.freeList[i] = n - 1 - i;
    this.nfree = n;
    this.buf = new Uint32Array(n);
    this.bufOff = new Uint32Array(n);
    this.port = new Uint16Array(n);
    this.outPort = new Uint16Array(n);
    this.outAux = new Uint32Array(n);
    this.nfrag = new Int32Array(n);
    this.rs = new Int32Array(n * mf);
    this.re = new Int32Array(n * mf);
    this.got = new Int32Array(n);
    this.total = new Int32Array(n);
    this.hdrLen = new Int32Array(n);
    this.hdr = new Uint8Array(n * hdrMax);
    this.ecn = new Uint8Array(n);
  }

  /** Hash of the scratch key k. */
  hash(): number {
    const k = this.k;
    let h = this.seed;
    for (let j = 0; j < this.kw; j++) {
      h = Math.imul(h ^ k[j], 0x9e3779b1);
      h ^= h >>> 15;
    }
    return h;
  }

  /** The context (LIVE or DEAD) of the scratch key with hash h, or -1. */
  find(h: number): number {
    const k = this.k, key = this.key, kw = this.kw;
    for (let c = this.bucket[h & this.mask]; c >= 0; c = this.chain[c]) {
      if (this.hashOf[c] !== h) continue;
      const b = c * kw;
      let j = 0;
      while (j < kw && key[b + j] === k[j]) j++;
      if (j === kw) return c;
    }
    return -1;
  }

  /**
   * A new context for the scratch key (hash h), first fragment from `port`. Evicts the oldest when
   * the table is full. With a buffer (LIVE): -1 when the pool has none. Without (DEAD with `reason`).
   */
  create(h: number, port: number, dead: boolean, reason: number): number {
    if (this.nfree === 0) {
      const o = this.oldest;
      if (this.state[o] === LIVE) {
        this.countHeld(o, D_REASM_TABLE_FULL);
        this.freeBuf(o);
        this.evicted++;
      }
      this.remove(o);
    }
    const c = this.freeList[this.nfree - 1];
    if (!dead) {
      const io = this.ctx.io;
      if (io.alloc(this.oneM, this.oneO, 1) !== 1) return -1;
      this.buf[c] = this.oneM[0];
      this.bufOff[c] = this.oneO[0];
    }
    this.nfree--;
    this.state[c] = dead ? DEAD : LIVE;
    this.deadReason[c] = reason;
    const kw = this.kw, b = c * kw, k = this.k;
    for (let j = 0; j < kw; j++) this.key[b + j] = k[j];
    this.hashOf[c] = h;
    const bi = h & this.mask;
    this.chain[c] = this.bucket[bi];
    this.bucket[bi] = c;
    this.created[c] = this.nowMs[0];
    this.older[c] = this.newest;
    this.newer[c] = -1;
    if (this.newest >= 0) this.newer[this.newest] = c;
    else this.oldest = c;
    this.newest = c;
    this.port[c] = port;
    this.outPort[c] = port;
    this.outAux[c] = 0;
    this.nfrag[c] = 0;
    this.got[c] = 0;
    this.total[c] = -1;
    this.hdrLen[c] = 0;
    this.ecn[c] = 0;
    this.used++;
    return c;
  }

  /**
   * One fragment of the datagram whose key is in `k` (filled by the node), payload range
   * [start, start + len), `last` = no MF/M flag: finds or creates its context and records the range.
   * Returns the context (>= 0: the caller copies the payload to bufOff + payloadAt + start; `complete`
   * tells whether this was the missing piece), ADMIT_DUP (an exact duplicate: free it, not a drop) or
   * ADMIT_DROP (drop it, counted under `dropWhy`; the datagram is discarded where that is the rule).
   */
  admit(port: number, start: number, len: number, last: boolean): number {
    const h = this.hash();
    let c = this.find(h);
    if (c >= 0 && this.state[c] !== LIVE) { this.dropWhy = this.deadReason[c]; return ADMIT_DROP; }
    if (start + len > this.maxPayload) {
      if (c >= 0) this.discard(c, D_REASM_TOO_BIG);
      else this.create(h, port, true, D_REASM_TOO_BIG);
      this.dropWhy = D_REASM_TOO_BIG;
      return ADMIT_DROP;
    }
    if (c < 0) {
      c = this.create(h, port, false, 0);
      if (c < 0) { this.dropWhy = D_NO_MBUF; return ADMIT_DROP; }
    }
    const r = this.add(c, start, len, last);
    if (r === ADD_DUP) { this.duplicates++; return ADMIT_DUP; }
    if (r !== ADD_OK && r !== ADD_COMPLETE) {
      const reason = r === ADD_OVERLAP ? D_REASM_OVERLAP : r === ADD_MALFORMED ? D_FRAG_ERROR : D_REASM_TOO_MANY;
      this.discard(c, reason);
      this.dropWhy = reason;
      return ADMIT_DROP;
    }
    this.complete = r === ADD_COMPLETE;
    return c;
  }

  /** Set by admit(): the drop reason of ADMIT_DROP. */
  dropWhy = 0;
  /** Set by admit() when it returns a context: the datagram is now complete. */
  complete = false;

  /**
   * Records the range [start, start + len) of LIVE context c (last: the fragment without MF/M) and
   * returns ADD_*. On ADD_OK / ADD_COMPLETE the caller copies the payload (bufOff + payloadAt + start).
   */
  add(c: number, start: number, len: number, last: boolean): number {
    const end = start + len, mf = this.maxFrags, base = c * mf, n = this.nfrag[c];
    const rs = this.rs, re = this.re;
    for (let j = base; j < base + n; j++) {
      const s = rs[j], e = re[j];
      if (start < e && s < end) return s === start && e === end ? ADD_DUP : ADD_OVERLAP;
    }
    const tot = this.total[c];
    if (last) {
      if (tot >= 0 && tot !== end) return ADD_MALFORMED;
      // data already received past this end
      for (let j = base; j < base + n; j++) if (re[j] > end) return ADD_MALFORMED;
      this.total[c] = end;
    } else if (tot >= 0 && end > tot) {
      return ADD_MALFORMED;
    }
    if (n === mf) return ADD_TOO_MANY;
    rs[base + n] = start;
    re[base + n] = end;
    this.nfrag[c] = n + 1;
    const got = this.got[c] + len;
    this.got[c] = got;
    return got === this.total[c] ? ADD_COMPLETE : ADD_OK;
  }

  /**
   * Discards LIVE context c: its fragments so far counted as drops `reason` (on the port of its first
   * fragment), buffer freed; the context stays DEAD (same reason) until it times out.
   */
  discard(c: number, reason: number): void {
    this.countHeld(c, reason);
    this.freeBuf(c);
    this.state[c] = DEAD;
    this.deadReason[c] = reason;
  }

  /** Context c is complete and its buffer now belongs to the output packet: forget it. */
  release(c: number): void {
    this.completed++;
    this.remove(c);
  }

  /** Reads the clock (once per vector) and times out the contexts older than timeoutMs. */
  tick(): void {
    let now: number;
    if (this.clock !== null) now = this.clock();
    else {
      now = this.ctx.fields[W_HEARTBEAT_MS];
      if (!(now > 0)) now = Date.now();
    }
    this.nowMs[0] = now;
    this.expire(now);
  }

  /** Times out the contexts created at or before now - timeoutMs (LIVE ones: 'reasm-timeout'). */
  expire(now: number): void {
    const limit = now - this.timeoutMs;
    for (let c = this.oldest; c >= 0 && this.created[c] <= limit; c = this.oldest) {
      if (this.state[c] === LIVE) {
        this.countHeld(c, D_REASM_TIMEOUT);
        this.freeBuf(c);
        this.timedOut++;
      }
      this.remove(c);
    }
  }

  /** Frees every context's buffer without counting (shutdown, tests). */
  clear(): void {
    while (this.oldest >= 0) {
      const c = this.oldest;
      if (this.state[c] === LIVE) this.freeBuf(c);
      this.remove(c);
    }
  }

  private countHeld(c: number, reason: number): void {
    const n = this.nfrag[c];
    if (n > 0) this.ctx.counters[this.port[c] * PORT_STRIDE + DROP_BASE + reason] += n;
  }

  private freeBuf(c: number): void {
    this.oneM[0] = this.buf[c];
    this.ctx.io.free(this.oneM, 1);
  }

  /** Unlinks c from its hash chain and the FIFO; back to the free list. */
  private remove(c: number): void {
    const bi = this.hashOf[c] & this.mask;
    let p = this.bucket[bi];
    if (p === c) this.bucket[bi] = this.chain[c];
    else {
      while (p >= 0 && this.chain[p] !== c) p = this.chain[p];
      if (p >= 0) this.chain[p] = this.chain[c];
    }
    const o = this.older[c], nw = this.newer[c];
    if (o >= 0) this.newer[o] = nw;
    else this.oldest = nw;
    if (nw >= 0) this.older[nw] = o;
    else this.newest = o;
    this.state[c] = FREE;
    this.freeList[this.nfree++] = c;
    this.used--;
  }
}
