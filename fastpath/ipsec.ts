// IPsec state of one worker's graph (GraphOptions.ipsec): the SPD in typed arrays (IPv4 and IPv6
// selectors; rebuilt when the shm policy or SA generation changes), the SAD cache (native crypto
// context per SA entry index, keyed by the entry's sequence word), outbound sequence numbers, the
// inbound anti-replay windows (ring bitmap of 4096 bits, RFC 4303 §3.4.3 and appendix A for ESN) and
// the per-SA counters (a view on this worker's block of the stats file, shared-mem/stats.ts SA_*).
// Rebuilds allocate (cold path); the per-packet calls (matchPolicy4/6, outSa, saUsable, nextSeq,
// inferHi, replayOk, replayUpdate) do not.
//
// Policy semantics (Linux xfrm): per VRF and direction, the matching policy of lowest priority value
// wins (ties: lower policy index). A policy matches a packet when its selector family is the packet's
// and addresses / protocol / ports (TCP, UDP, SCTP, DCCP, UDP-Lite; ICMP type/code in sport/dport as
// Linux does) match under the selector's prefix lengths and port masks. Marks: packets in the fast
// path carry mark 0, so a policy or SA whose (0 & mask) != value never applies (policies: skipped;
// SAs: not chosen for output, 'ipsec-unsupported' on input: Linux may mark packets itself).
// Policies the fast path cannot apply are "unsupported" (a packet they match goes to Linux,
// 'ipsec-unsupported', never out in clear): selector ifindex, if_id (xfrm interfaces), more than one
// template (bundles), a template that is not ESP tunnel / transport, transport templates whose family
// is not the selector's.
// Out SA of a template (Linux xfrm_tmpl_resolve_one):
//   tunnel: the template's SPI when set (saLookup(vrf, tmpl daddr, spi, 50)), else the SAs of the VRF
//   with proto 50, mode tunnel, the template's daddr, reqid (when the template's is not 0) and saddr
//   (when set), resolved when the SPD is rebuilt;
//   transport: the packet's own addresses (template addresses are not used by Linux either): the
//   SAs with the template's reqid / SPI and mode transport are the policy's candidates, matched per
//   packet on (destination, source).
//   Several (rekeying): the one with the highest entry index, an approximation of Linux's "newest".
// Sequence numbers: when an SA is loaded, numbering goes on from max(the kernel's oseq as cmgrd read it,
// in the SA entry; the previous fast path's oseq for this very SA: the stats block's when its tag and ident
// are the entry's, else a kept block with the SA's ident, `kept`), so that a restarted fast path never
// reuses a sequence number (a GCM nonce) of an SA it used before, also over a re-created shared memory. When Linux
// sends on the SA too (exceptions, locally originated traffic), the stats daemon writes the kernel's
// oseq as a "floor" into the stats file (shared-mem/stats.ts FLOOR_*; tagged with the entry's sequence
// word): nextSeq numbers above it (fastpath/README.md, docs/stats-daemon.md).

import { createHash } from 'crypto';
import * as crypto from '../native/crypto';
import type { XfrmPolicy, XfrmSa, XfrmSelector } from '../lib/model';
import { parse4, parse6 } from '../shared-mem/addr';
import { decodeSa } from '../shared-mem/entries';
import { SA_E } from '../shared-mem/layout';
import { NOT_FOUND, READ_BUSY, READ_OK, type ShmReader } from '../shared-mem/reader';
import { FL_OSEQ, FL_TAG, FLOOR_STRIDE, StatsFile } from '../shared-mem/stats';
import * as stats from '../shared-mem/stats';

export const IPPROTO_ESP = 50;
/** Largest anti-replay window kept (bits); bigger kernel windows are clamped to it. */
export const REPLAY_MAX = 4096;
const RING_WORDS = REPLAY_MAX / 32;

/** No policy matched. */
export const POL_NONE = -1;
export const DIR_IN = 0, DIR_OUT = 1, DIR_FWD = 2;
/** Policy actions (pAction). */
export const ACT_ALLOW = 0, ACT_BLOCK = 1, ACT_UNSUPPORTED = 2;
/** Template / SA modes. */
export const MODE_TUNNEL = 0, MODE_TRANSPORT = 1;
/** XFRM_STATE_* flags used. */
export const XFRM_STATE_NOECN = 1, XFRM_STATE_DECAP_DSCP = 2, XFRM_STATE_NOPMTUDISC = 4;

/**
 * Per-SA counters: the stats file's block (shared-mem/stats.ts); old names kept for the tests. Plain constants, not
 * `export { X } from`: TypeScript's CommonJS re-export turns a data property of `exports` into an accessor, which
 * puts this module's exports object in dictionary mode, and every `ipsec_1.X` in the hot loops of the ESP nodes
 * then costs a LoadIC call (~8-10 % of the outbound path, perf).
 */
export const SA_C_TAG = stats.SA_C_TAG, SA_C_PACKETS = stats.SA_C_PACKETS, SA_C_BYTES = stats.SA_C_BYTES, SA_C_ERRORS = stats.SA_C_ERRORS,
  SA_C_REPLAY = stats.SA_C_REPLAY, SA_C_AUTH = stats.SA_C_AUTH, SA_C_OSEQ = stats.SA_C_OSEQ, SA_C_ISEQ = stats.SA_C_ISEQ, SA_C_IDENT = stats.SA_C_IDENT,
  SA_STRIDE = stats.SA_STRIDE;
export const SA_CTR_PACKETS = SA_C_PACKETS, SA_CTR_BYTES = SA_C_BYTES, SA_CTR_ERRORS = SA_C_ERRORS, SA_CTR_REPLAY = SA_C_REPLAY,
  SA_CTR_STRIDE = SA_STRIDE;

/** saUsable results. */
export const SA_OK = 0, SA_BUSY = -1, SA_GONE = -2, SA_UNSUPPORTED = -3;

const TWO32 = 4294967296;

function maskWord(plen: number, word: number): number {
  const b = plen - word * 32;
  return b <= 0 ? 0 : b >= 32 ? -1 : (-1 << (32 - b)) | 0;
}
/** An address string into 4 int32 words at out[o..o+3] (IPv4: word 0). Empty / unparsable: zeros. */
function addrWords(s: string, family: number, out: Int32Array, o: number): void {
  out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 0;
  if (s === '' || s === undefined) return;
  if (family === 4) {
    const v = parse4(s);
    out[o] = v < 0 ? 0 : v | 0;
    return;
  }
  const w = new Uint32Array(4);
  if (parse6(s, w, 0)) for (let k = 0; k < 4; k++) out[o + k] = w[k] | 0;
}
function isAny(s: string): boolean {
  return s === '' || s === undefined || s === '0.0.0.0' || s === '::';
}
function markMisses(m: { value: number; mask: number } | undefined): boolean {
  return m !== undefined && ((0 & m.mask) >>> 0) !== (m.value >>> 0);
}

export class IpsecState {
  private readonly shm: ShmReader;
  readonly maxSas: number;
  private polGen = -1;
  private saGen = -1;
  private readonly buf: Uint32Array;
  private readonly buf8: Uint8Array;
  private readonly w6 = new Uint32Array(4);
  /** Inbound ESP-in-UDP: 1 for UDP destination ports that are the encap port of some SA (RFC 3948). */
  readonly encapPort = new Uint8Array(65536);

  // ---- SPD, sorted by (dir, vrf, priority, index); both families; arrays sized at rebuild ----
  npol = 0;
  /** Policies per family (cheap checks: no IPv6 policy -> no IPv6 lookup). */
  npol4 = 0;
  npol6 = 0;
  /** Policies of direction in / fwd (clear-text check). */
  npolIn = 0;
  /** Policies whose selector has a port (or ICMP type / code) mask: without any, callers may pass ports 0. */
  nportSel = 0;
  /** The policies of direction d are k in [dirStart[d], dirStart[d + 1]) (sorted by direction first). */
  readonly dirStart = new Int32Array(4);
  pFam = new Int8Array(0);
  pVrf = new Int32Array(0);
  pDir = new Int8Array(0);
  pAction = new Int8Array(0);
  /** 4 words per policy (IPv4: word 0 only). */
  pSaddr = new Int32Array(0); pSmask = new Int32Array(0);
  pDaddr = new Int32Array(0); pDmask = new Int32Array(0);
  pSport = new Int32Array(0); pSportMask = new Int32Array(0);
  pDport = new Int32Array(0); pDportMask = new Int32Array(0);
  /** Selector protocol; 0 any; -2 never matches (mark that cannot match mark 0). */
  pProto = new Int32Array(0);
  /** Out tunnel: resolved SA entry index, -1 none. */
  pSa = new Int32Array(0);
  /** Template reqid (0 = any). */
  pReqid = new Int32Array(0);
  /** Template mode (MODE_*). */
  pMode = new Int8Array(0);
  /** Allow policy without templates (bypass): 1. */
  pBypass = new Int8Array(0);
  /** In / fwd: template optional (level use: clear text allowed). */
  pOptional = new Int8Array(0);
  /** Out transport: candidate SA entry indices cand[pCandStart[k] .. + pCandCount[k]). */
  pCandStart = new Int32Array(0);
  pCandCount = new Int32Array(0);
  /**
   * In / fwd policies: 1 when no 'out' policy of the same VRF and family can match a packet this one matches (their
   * selectors are disjoint: addresses, protocol or ports), so that a packet decrypted under it needs no SPD 'out'
   * lookup (esp-decrypt forward4); 0 otherwise, and for out policies.
   */
  pOutDisjoint: Int8Array = new Int8Array(0);
  /**
   * Out policies: 1 when no 'fwd' policy of the same VRF and family can match a packet this one matches, so that a
   * clear packet it matches needs no clear-text ('fwd') lookup (esp-encrypt); 0 otherwise, and for in / fwd policies.
   */
  pFwdDisjoint: Int8Array = new Int8Array(0);
  cand = new Int32Array(0);

  // ---- SAD cache, per SA entry index ----
  /** 0 not loaded, 1 usable, 2 unsupported */
  readonly saState: Uint8Array;
  readonly saSeq: Uint32Array;
  readonly saHandle: Int32Array;
  readonly saIvLen: Uint8Array;
  readonly saIcvLen: Uint8Array;
  readonly saBlock: Uint8Array;
  readonly saEsn: Uint8Array;
  /** Outer (SA) family 4 / 6, mode MODE_*. */
  readonly saFam: Uint8Array;
  readonly saMode: Uint8Array;
  readonly saFlags: Uint32Array;
  /** 1: UDP encapsulation (NAT-T, RFC 3948) with ports saEncSport / saEncDport. */
  readonly saEncap: Uint8Array;
  readonly saEncSport: Uint16Array;
  readonly saEncDport: Uint16Array;
  /** SA addresses, 4 int32 words each (IPv4: word 0). */
  readonly saSrc: Int32Array;
  readonly saDst: Int32Array;
  readonly saSpi: Uint32Array;
  readonly saReqid: Uint32Array;
  readonly saWindow: Uint16Array;
  /** Outbound: last sequence number used (64 bits: hi, lo). */
  readonly outHi: Uint32Array;
  readonly outLo: Uint32Array;
  /** Inbound: highest authenticated sequence number (hi, lo) and 4096-bit ring bitmaps. */
  readonly topHi: Uint32Array;
  readonly topLo: Uint32Array;
  private readonly rings: (Uint32Array | null)[];
  /** Identity of the SA behind a cache slot when it was loaded (vrf/daddr/spi + keys), to keep the counters across rewrites. */
  private readonly saIdent: (string | null)[];
  /** Per-SA counters: SA_STRIDE per SA entry index (shared-mem/stats.ts SA_C_*): the worker slice's `sa` when it has room. */
  readonly saCounters: Float64Array;
  /**
   * Outbound sequence floors (FLOOR_STRIDE per SA entry index: tag, oseq), written by the stats daemon only:
   * the stats file's floor region, found from `counters`' buffer, or `floors`; private zeros otherwise.
   */
  readonly saFloors: Float64Array;
  /**
   * The previous fast path's sequence state per SA ident (SA_C_IDENT -> [oseq, iseq]), read from the blocks `counters`
   * held at construction (StatsFile.createFile keepSas): an SA found under another entry (a re-created shared memory)
   * goes on from it; each is taken once.
   */
  private readonly kept = new Map<number, [number, number]>();

  /**
   * `counters`: this worker's per-SA block of the stats file (WorkerSlice.sa); private counters when too small.
   * `floors`: the oseq floor region (StatsFile.floors()); by default the one of the stats file `counters` lies in.
   */
  constructor(shm: ShmReader, counters?: Float64Array, floors?: Float64Array) {
    this.shm = shm;
    const n = this.maxSas = shm.config.maxSas;
    this.buf = new Uint32Array(SA_E.WORDS);
    this.buf8 = new Uint8Array(this.buf.buffer);
    this.saState = new Uint8Array(n);
    this.saSeq = new Uint32Array(n);
    this.saHandle = new Int32Array(n);
    this.saIvLen = new Uint8Array(n);
    this.saIcvLen = new Uint8Array(n);
    this.saBlock = new Uint8Array(n);
    this.saEsn = new Uint8Array(n);
    this.saFam = new Uint8Array(n);
    this.saMode = new Uint8Array(n);
    this.saFlags = new Uint32Array(n);
    this.saEncap = new Uint8Array(n);
    this.saEncSport = new Uint16Array(n);
    this.saEncDport = new Uint16Array(n);
    this.saSrc = new Int32Array(n * 4);
    this.saDst = new Int32Array(n * 4);
    this.saSpi = new Uint32Array(n);
    this.saReqid = new Uint32Array(n);
    this.saWindow = new Uint16Array(n);
    this.outHi = new Uint32Array(n);
    this.outLo = new Uint32Array(n);
    this.topHi = new Uint32Array(n);
    this.topLo = new Uint32Array(n);
    this.rings = new Array<Uint32Array | null>(n).fill(null);
    this.saIdent = new Array<string | null>(n).fill(null);
    this.saCounters = counters !== undefined && counters.length >= n * SA_STRIDE ? counters : new Float64Array(n * SA_STRIDE);
    if (floors === undefined && counters !== undefined && counters.buffer instanceof SharedArrayBuffer) {
      try { floors = StatsFile.attach(counters.buffer).floors(); } catch { floors = undefined; } // not a stats file
    }
    this.saFloors = floors !== undefined && floors.length >= n * FLOOR_STRIDE ? floors : new Float64Array(n * FLOOR_STRIDE);
    const c = this.saCounters;
    for (let b = 0; b < c.length; b += SA_STRIDE) {
      if (c[b + SA_C_IDENT] !== 0 && c[b + SA_C_TAG] !== 0) this.kept.set(c[b + SA_C_IDENT], [c[b + SA_C_OSEQ], c[b + SA_C_ISEQ]]);
    }
  }

  /** Once per vector: re-validates the SA cache and rebuilds the SPD when the shm changed. */
  sync(): void {
    const sg = this.shm.kindGeneration('sa'), pg = this.shm.kindGeneration('policy');
    if (sg === this.saGen && pg === this.polGen) return;
    let ok = true;
    if (sg !== this.saGen) ok = this.revalidate() && ok;
    ok = this.rebuildSpd() && ok;
    if (ok) { this.saGen = sg; this.polGen = pg; }
  }

  /** Drops the cache slots whose entry changed (its sequence word) or was freed. */
  private revalidate(): boolean {
    let ok = true;
    for (let i = 0; i < this.maxSas; i++) {
      if (this.saState[i] === 0) continue;
      const r = this.shm.readSa(i, this.buf);
      if (r === READ_BUSY) { ok = false; continue; }
      if (r !== READ_OK || this.buf[0] !== this.saSeq[i]) {
        // the same SA rewritten in place: its counters go on, under the entry's new sequence word (at once,
        // so that the stats daemon, which ignores blocks whose tag is not the entry's, keeps following it)
        if (r === READ_OK && identOf(decodeSa(this.buf, this.buf8)) === this.saIdent[i]) this.saCounters[i * SA_STRIDE + SA_C_TAG] = this.buf[0];
        this.release(i, r === READ_OK);
      }
    }
    return ok;
  }

  /** Frees slot i's native context; `keepIfSame`: keep its sequence state and counters for a reload of the same SA. */
  private release(i: number, keepIfSame: boolean): void {
    if (this.saHandle[i] > 0) crypto.destroySa(this.saHandle[i]);
    this.saHandle[i] = 0;
    this.saState[i] = 0;
    if (!keepIfSame) this.saIdent[i] = null; // the next load decides (stats tag) whether the state is fresh
  }

  /** Sequence state of SA i from a previous fast path's: outbound after oseq, inbound everything up to iseq seen. */
  private goOn(i: number, oseq: number, iseq: number): void {
    this.outHi[i] = Math.floor(oseq / TWO32); this.outLo[i] = oseq % TWO32;
    this.topHi[i] = Math.floor(iseq / TWO32); this.topLo[i] = iseq % TWO32;
    (this.rings[i] as Uint32Array).fill(iseq > 0 ? 0xffffffff : 0);
  }

  private freshState(i: number): void {
    this.outHi[i] = 0; this.outLo[i] = 0; this.topHi[i] = 0; this.topLo[i] = 0;
    const ring = this.rings[i];
    if (ring) ring.fill(0);
    this.saCounters.fill(0, i * SA_STRIDE, (i + 1) * SA_STRIDE);
  }

  /** Frees every native context (graph teardown, tests). */
  close(): void {
    for (let i = 0; i < this.maxSas; i++) if (this.saState[i] !== 0) this.release(i, false);
  }

  /**
   * Makes SA entry `i` usable (native context created on first use). SA_OK, SA_BUSY (entry being
   * written), SA_GONE (free) or SA_UNSUPPORTED (Linux must handle it).
   */
  saUsable(i: number): number {
    const st = this.saState[i];
    if (st === 1) return SA_OK;
    if (st === 2) return SA_UNSUPPORTED;
    return this.load(i);
  }

  private load(i: number): number {
    if (!(i >= 0 && i < this.maxSas)) return SA_GONE;
    const r = this.shm.readSa(i, this.buf);
    if (r === READ_BUSY) return SA_BUSY;
    if (r !== READ_OK) return SA_GONE;
    const sa: XfrmSa = decodeSa(this.buf, this.buf8);
    const seq = this.buf[0];
    const ident = identOf(sa);
    const c = this.saCounters, b = i * SA_STRIDE;
    if (this.rings[i] === null) this.rings[i] = new Uint32Array(RING_WORDS);
    const idh = identDigest(ident);
    if (this.saIdent[i] === null && c[b + SA_C_TAG] === seq && seq !== 0 && c[b + SA_C_IDENT] === idh) {
      // first load by this worker of the very entry (and SA) the stats block counted (a restarted fast path):
      // go on from its sequence numbers; every inbound number up to iseq counts as seen
      this.goOn(i, c[b + SA_C_OSEQ], c[b + SA_C_ISEQ]);
      this.kept.delete(idh);
    } else if (this.saIdent[i] !== ident) {
      this.freshState(i); // another SA (or other keys) in this slot
      // the previous fast path's state of this SA under another entry (the shared memory was re-created)
      const k = this.kept.get(idh);
      if (k !== undefined) { this.goOn(i, k[0], k[1]); this.kept.delete(idh); }
    }
    c[b + SA_C_IDENT] = idh;
    this.saIdent[i] = ident;
    // the kernel's outbound sequence number when cmgrd read the SA (its own packets, fpsd's pushes, an HA peer's)
    const kseq = sa.oseq;
    if (typeof kseq === 'number' && kseq > this.outHi[i] * TWO32 + this.outLo[i]) {
      this.outHi[i] = Math.floor(kseq / TWO32); this.outLo[i] = kseq % TWO32;
    }
    c[b + SA_C_TAG] = seq;
    c[b + SA_C_OSEQ] = this.outHi[i] * TWO32 + this.outLo[i];
    this.saSeq[i] = seq;
    this.saState[i] = 2;
    this.saFam[i] = sa.family;
    addrWords(sa.saddr, sa.family, this.saSrc, i * 4);
    addrWords(sa.daddr, sa.family, this.saDst, i * 4);
    const mode = sa.mode === 'tunnel' ? MODE_TUNNEL : sa.mode === 'transport' ? MODE_TRANSPORT : -1;
    if (sa.proto !== IPPROTO_ESP || (sa.family !== 4 && sa.family !== 6) || mode < 0 || markMisses(sa.mark) || sa.ifId !== 0) return SA_UNSUPPORTED;
    if (sa.encap !== undefined && (sa.encap.type !== 2 || sa.encap.sport === 0 || sa.encap.dport === 0)) return SA_UNSUPPORTED;
    let h = 0;
    try {
      h = crypto.createSa(crypto.saAlgorithms(sa));
    } catch {
      return SA_UNSUPPORTED; // the error message never holds key bytes; Linux handles this SA
    }
    const info = crypto.saInfo(h);
    this.saHandle[i] = h;
    this.saIvLen[i] = info.ivLen;
    this.saIcvLen[i] = info.icvLen;
    this.saBlock[i] = info.blockSize;
    this.saEsn[i] = sa.esn ? 1 : 0;
    this.saMode[i] = mode;
    this.saFlags[i] = sa.flags >>> 0;
    this.saEncap[i] = sa.encap !== undefined ? 1 : 0;
    this.saEncSport[i] = sa.encap?.sport ?? 0;
    this.saEncDport[i] = sa.encap?.dport ?? 0;
    this.saSpi[i] = sa.spi >>> 0;
    this.saReqid[i] = sa.reqid >>> 0;
    this.saWindow[i] = Math.min(sa.replayWindow, REPLAY_MAX);
    this.saState[i] = 1;
    return SA_OK;
  }

  // -------------------------------------------------------------------------------------------
  // SPD

  private rebuildSpd(): boolean {
    let pols: XfrmPolicy[], sas: XfrmSa[];
    try {
      pols = this.shm.list('policy').map((o) => o.obj);
      sas = this.shm.list('sa').map((o) => o.obj);
    } catch {
      return false; // busy for a long time: keep the old SPD, retry next vector
    }
    // encap ports: the destination port of the inbound SAs (destination = a local address; all SAs when the
    // addresses cannot be read), so that the peer's port of an outbound SA is not taken for ours
    let local: Set<string> | null = null;
    try { local = new Set(this.shm.list('address').map((o) => `${o.obj.vrf}/${o.obj.addr}`)); } catch { local = null; }
    this.encapPort.fill(0);
    for (const sa of sas) {
      if (sa.encap === undefined || !(sa.encap.dport > 0 && sa.encap.dport < 65536)) continue;
      if (local === null || local.size === 0 || local.has(`${sa.vrf}/${sa.daddr}`)) this.encapPort[sa.encap.dport] = 1;
    }
    const all = pols.filter((p) => p.selector.family === 4 || p.selector.family === 6);
    const dirCode = (d: string): number => (d === 'in' ? DIR_IN : d === 'out' ? DIR_OUT : DIR_FWD);
    all.sort((a, b) => dirCode(a.dir) - dirCode(b.dir) || a.vrf - b.vrf || a.priority - b.priority || a.index - b.index);
    const n = all.length;
    this.pFam = new Int8Array(n); this.pVrf = new Int32Array(n); this.pDir = new Int8Array(n); this.pAction = new Int8Array(n);
    this.pSaddr = new Int32Array(n * 4); this.pSmask = new Int32Array(n * 4); this.pDaddr = new Int32Array(n * 4); this.pDmask = new Int32Array(n * 4);
    this.pSport = new Int32Array(n); this.pSportMask = new Int32Array(n); this.pDport = new Int32Array(n); this.pDportMask = new Int32Array(n);
    this.pProto = new Int32Array(n); this.pSa = new Int32Array(n).fill(-1); this.pReqid = new Int32Array(n); this.pBypass = new Int8Array(n);
    this.pMode = new Int8Array(n); this.pOptional = new Int8Array(n);
    this.pCandStart = new Int32Array(n); this.pCandCount = new Int32Array(n);
    const cand: number[] = [];
    let n4 = 0, n6 = 0, nin = 0;
    for (let k = 0; k < n; k++) {
      const p = all[k], s: XfrmSelector = p.selector, fam = s.family;
      if (fam === 4) n4++; else n6++;
      this.pFam[k] = fam;
      this.pVrf[k] = p.vrf;
      this.pDir[k] = dirCode(p.dir);
      if (this.pDir[k] !== DIR_OUT) nin++;
      const sw = new Int32Array(4), dw = new Int32Array(4);
      addrWords(s.saddr, fam, sw, 0);
      addrWords(s.daddr, fam, dw, 0);
      for (let j = 0; j < 4; j++) {
        const sm = fam === 4 ? (j === 0 ? maskWord(s.splen, 0) : 0) : maskWord(s.splen, j);
        const dm = fam === 4 ? (j === 0 ? maskWord(s.dplen, 0) : 0) : maskWord(s.dplen, j);
        this.pSmask[k * 4 + j] = sm; this.pSaddr[k * 4 + j] = sw[j] & sm;
        this.pDmask[k * 4 + j] = dm; this.pDaddr[k * 4 + j] = dw[j] & dm;
      }
      this.pSport[k] = s.sport & s.sportMask; this.pSportMask[k] = s.sportMask;
      this.pDport[k] = s.dport & s.dportMask; this.pDportMask[k] = s.dportMask;
      this.pProto[k] = s.proto;
      let action = p.action === 'block' ? ACT_BLOCK : ACT_ALLOW;
      if (markMisses(p.mark)) { this.pProto[k] = -2; continue; } // never matches (a protocol is never -2)
      if (action === ACT_ALLOW) {
        const t = p.tmpls;
        if (s.ifindex !== 0 || p.ifId !== 0 || t.length > 1) action = ACT_UNSUPPORTED;
        else if (t.length === 0) this.pBypass[k] = 1;
        else if (t[0].proto !== IPPROTO_ESP || (t[0].mode !== 'tunnel' && t[0].mode !== 'transport')) action = ACT_UNSUPPORTED;
        else if (t[0].mode === 'tunnel' && t[0].family !== 4 && t[0].family !== 6) action = ACT_UNSUPPORTED;
        else {
          const tm = t[0];
          this.pReqid[k] = tm.reqid;
          this.pOptional[k] = tm.optional ? 1 : 0;
          this.pMode[k] = tm.mode === 'tunnel' ? MODE_TUNNEL : MODE_TRANSPORT;
          if (this.pDir[k] === DIR_OUT) {
            if (tm.mode === 'tunnel') this.pSa[k] = this.resolveOutSa(p.vrf, tm.family, tm.daddr, tm.saddr, tm.spi, tm.reqid, sas);
            else {
              this.pCandStart[k] = cand.length;
              for (const sa of sas) {
                if (sa.vrf !== p.vrf || sa.proto !== IPPROTO_ESP || sa.mode !== 'transport' || sa.family !== fam || markMisses(sa.mark)) continue;
                if (tm.spi !== 0 ? sa.spi !== tm.spi : tm.reqid !== 0 && sa.reqid !== tm.reqid) continue;
                const i = this.entryOf(sa);
                if (i >= 0) cand.push(i);
              }
              this.pCandCount[k] = cand.length - this.pCandStart[k];
            }
          }
        }
      }
      this.pAction[k] = action;
    }
    this.cand = Int32Array.from(cand);
    let nps = 0;
    for (let k = 0; k < n; k++) if (this.pSportMask[k] !== 0 || this.pDportMask[k] !== 0) nps++;
    this.nportSel = nps;
    const ds = this.dirStart;
    for (let d = 0; d <= 3; d++) { let k = 0; while (k < n && this.pDir[k] < d) k++; ds[d] = k; }
    this.npol = n; this.npol4 = n4; this.npol6 = n6; this.npolIn = nin;
    const out = new Int8Array(n), fwd = new Int8Array(n), o0 = ds[DIR_OUT], o1 = ds[DIR_OUT + 1];
    disjoint(this, out, 0, o0, o0, o1); // in
    disjoint(this, out, o1, n, o0, o1); // fwd
    disjoint(this, fwd, o0, o1, ds[DIR_FWD], ds[DIR_FWD + 1]);
    this.pOutDisjoint = out;
    this.pFwdDisjoint = fwd;
    return true;
  }

  private entryOf(sa: XfrmSa): number {
    if (sa.family === 4) return this.shm.saLookup(sa.vrf, parse4(sa.daddr) >>> 0, sa.spi, sa.proto);
    const w = this.w6;
    if (!parse6(sa.daddr, w, 0)) return -1;
    return this.shm.saLookup(sa.vrf, w, sa.spi, sa.proto);
  }

  private resolveOutSa(vrf: number, family: number, daddr: string, saddr: string, spi: number, reqid: number, sas: XfrmSa[]): number {
    let best = -1;
    for (const sa of sas) {
      if (sa.vrf !== vrf || sa.proto !== IPPROTO_ESP || sa.family !== family || sa.mode !== 'tunnel' || markMisses(sa.mark)) continue;
      if (!sameAddr(sa.daddr, daddr, family)) continue;
      if (spi !== 0 ? sa.spi !== spi : reqid !== 0 && sa.reqid !== reqid) continue;
      if (!isAny(saddr) && !sameAddr(sa.saddr, saddr, family)) continue;
      const i = this.entryOf(sa);
      if (i >= 0 && i !== NOT_FOUND && i > best) best = i;
    }
    return best;
  }

  /** True when there is a policy of the family (4 / 6) at all. */
  hasPolicies(family: number): boolean { return family === 4 ? this.npol4 > 0 : this.npol6 > 0; }

  /**
   * Best matching IPv4 policy of (vrf, dir) for the packet fields, or POL_NONE. `ports`: sport << 16 | dport
   * (0 without ports; ICMP: type << 16 | code as Linux's selector does).
   */
  matchPolicy4(vrf: number, dir: number, src: number, dst: number, proto: number, ports: number): number {
    const pv = this.pVrf, pf = this.pFam;
    const sport = ports >>> 16, dport = ports & 0xffff;
    for (let k = this.dirStart[dir], n = this.dirStart[dir + 1]; k < n; k++) {
      if (pv[k] !== vrf || pf[k] !== 4) continue;
      const q = k * 4;
      if ((src & this.pSmask[q]) !== this.pSaddr[q] || (dst & this.pDmask[q]) !== this.pDaddr[q]) continue;
      const pp = this.pProto[k];
      if (pp !== 0 && pp !== proto) continue;
      if ((sport & this.pSportMask[k]) !== this.pSport[k] || (dport & this.pDportMask[k]) !== this.pDport[k]) continue;
      return k;
    }
    return POL_NONE;
  }

  /** matchPolicy4 for an IPv6 header at m[o..] (addresses read from it); proto: the upper-layer protocol. */
  matchPolicy6(vrf: number, dir: number, m: Uint8Array, o: number, proto: number, ports: number): number {
    const pv = this.pVrf, pf = this.pFam;
    const sport = ports >>> 16, dport = ports & 0xffff;
    const sm = this.pSmask, sa = this.pSaddr, dm = this.pDmask, da = this.pDaddr;
    for (let k = this.dirStart[dir], n = this.dirStart[dir + 1]; k < n; k++) {
      if (pv[k] !== vrf || pf[k] !== 6) continue;
      const pp = this.pProto[k];
      if (pp !== 0 && pp !== proto) continue;
      if ((sport & this.pSportMask[k]) !== this.pSport[k] || (dport & this.pDportMask[k]) !== this.pDport[k]) continue;
      let j = 0;
      for (; j < 4; j++) {
        const q = k * 4 + j, a = o + 8 + j * 4, b = o + 24 + j * 4;
        const s = (m[a] << 24) | (m[a + 1] << 16) | (m[a + 2] << 8) | m[a + 3];
        const d = (m[b] << 24) | (m[b + 1] << 16) | (m[b + 2] << 8) | m[b + 3];
        if ((s & sm[q]) !== sa[q] || (d & dm[q]) !== da[q]) break;
      }
      if (j === 4) return k;
    }
    return POL_NONE;
  }

  /**
   * Out SA of policy k for the packet whose IP header is at m[o..] (family `fam`): the resolved tunnel SA, or for
   * transport the candidate whose addresses are the packet's (highest entry index). -1: none.
   */
  outSa(k: number, m: Uint8Array, o: number, fam: number): number {
    if (this.pMode[k] === MODE_TUNNEL) return this.pSa[k];
    const start = this.pCandStart[k], end = start + this.pCandCount[k], c = this.cand;
    const so = fam === 4 ? o + 12 : o + 8, dso = fam === 4 ? o + 16 : o + 24, words = fam === 4 ? 1 : 4;
    let best = -1;
    for (let j = start; j < end; j++) {
      const i = c[j];
      if (i <= best) continue;
      if (this.saState[i] === 0 && this.load(i) === SA_BUSY) continue;
      if (this.saState[i] !== 0 && this.addrsMatch(i, m, so, dso, words)) best = i; // unsupported ones too: -> Linux
    }
    return best;
  }

  private addrsMatch(i: number, m: Uint8Array, so: number, dso: number, words: number): boolean {
    const q = i * 4;
    for (let k = 0; k < words; k++) if (rd(m, so + k * 4) !== this.saSrc[q + k] || rd(m, dso + k * 4) !== this.saDst[q + k]) return false;
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Sequence numbers and anti-replay

  /** Next outbound sequence number of SA i into outHi/outLo (and the stats block's oseq); false when exhausted (no ESN: 2^32 - 1). */
  nextSeq(i: number): boolean {
    // the kernel's floor (stats daemon) for this very SA entry: go on above what Linux sent itself
    const fb = i * FLOOR_STRIDE, fl = this.saFloors[fb + FL_OSEQ];
    if (fl > 0 && this.saFloors[fb + FL_TAG] === this.saSeq[i] && fl > this.outHi[i] * TWO32 + this.outLo[i]) {
      const hi = Math.floor(fl / TWO32);
      if (hi > 0 && this.saEsn[i] === 0) return false; // no ESN: nothing above 2^32 - 1
      this.outHi[i] = hi; this.outLo[i] = fl % TWO32;
    }
    const lo = this.outLo[i];
    if (lo === 0xffffffff) {
      if (this.saEsn[i] === 0 || this.outHi[i] === 0xffffffff) return false;
      this.outHi[i]++;
      this.outLo[i] = 0;
    } else this.outLo[i] = lo + 1;
    this.saCounters[i * SA_STRIDE + SA_C_OSEQ] = this.outHi[i] * TWO32 + this.outLo[i];
    return true;
  }

  /**
   * nextSeq for SA i when nextSeq already ran for it in this vector (its floor was checked then): the low half
   * incremented, nothing else; false when it would wrap (call nextSeq then). The stats block's oseq is not written:
   * call syncSeq(i) once the vector's numbers are taken.
   */
  nextSeqAgain(i: number): boolean {
    const lo = this.outLo[i];
    if (lo === 0xffffffff) return false;
    this.outLo[i] = lo + 1;
    return true;
  }

  /** Writes SA i's last outbound sequence number to the stats block (oseq; after nextSeqAgain). */
  syncSeq(i: number): void {
    this.saCounters[i * SA_STRIDE + SA_C_OSEQ] = this.outHi[i] * TWO32 + this.outLo[i];
  }

  /**
   * ESN high bits for a received low half `sn` (RFC 4303 appendix A); 0 for SAs without ESN. Arguments and
   * result are int32 (a uint32 >= 2^31 crossing a call is boxed: an allocation); read them with `>>> 0`.
   */
  inferHi(i: number, snI: number): number {
    if (this.saEsn[i] === 0) return 0;
    const sn = snI >>> 0;
    const w = this.saWindow[i] > 0 ? this.saWindow[i] : 1;
    const tl = this.topLo[i], th = this.topHi[i];
    const bl = (tl - w + 1) >>> 0; // bottom of the window, low half
    if (tl >= w - 1) return (sn >= bl ? th : th + 1) | 0; // window inside one subspace
    return (sn >= bl ? th - 1 : th) | 0; // window spans two subspaces
  }

  /**
   * True when (hi, sn) (int32 arguments) is acceptable: new, or inside the window and not seen. An SA with
   * a replay window of 0 (the `ip xfrm state` default) has no replay check at all, as in Linux
   * (xfrm_replay_check_legacy / _esn return 0 when the window is 0).
   */
  replayOk(i: number, hiI: number, snI: number): boolean {
    if (this.saWindow[i] === 0) return true;
    const hi = hiI >>> 0, sn = snI >>> 0;
    if (this.saEsn[i] === 0 && sn === 0) return false;
    const th = this.topHi[i], tl = this.topLo[i];
    if (hi > th || (hi === th && sn > tl)) return true;
    const diff = (th - hi) * TWO32 + (tl - sn);
    if (diff >= this.saWindow[i]) return false;
    const ring = this.rings[i] as Uint32Array, b = sn & (REPLAY_MAX - 1);
    return (ring[b >>> 5] & (1 << (b & 31))) === 0;
  }

  /** Records an authenticated (hi, sn) (int32 arguments; call replayOk first, after the ICV check). */
  replayUpdate(i: number, hiI: number, snI: number): void {
    const hi = hiI >>> 0, sn = snI >>> 0;
    const ring = this.rings[i] as Uint32Array;
    const th = this.topHi[i], tl = this.topLo[i];
    if (hi > th || (hi === th && sn > tl)) {
      const d = (hi - th) * TWO32 + (sn - tl);
      if (d >= REPLAY_MAX) ring.fill(0);
      else for (let k = 1; k <= d; k++) { const b = (tl + k) & (REPLAY_MAX - 1); ring[b >>> 5] &= ~(1 << (b & 31)); }
      this.topHi[i] = hi; this.topLo[i] = sn;
      this.saCounters[i * SA_STRIDE + SA_C_ISEQ] = hi * TWO32 + sn;
    }
    const b = sn & (REPLAY_MAX - 1);
    ring[b >>> 5] |= 1 << (b & 31);
  }
}

/**
 * r[k] for policies k in [k0, k1): 1 when the selector of no policy in [t0, t1) (another direction) of k's VRF and
 * family meets k's (some packet could match both), else 0 (IpsecState.pOutDisjoint / pFwdDisjoint). Left 0 (no
 * shortcut) when that would take more than DISJOINT_MAX pair checks (a rebuild stays cheap).
 */
function disjoint(s: IpsecState, r: Int8Array, k0: number, k1: number, t0: number, t1: number): void {
  if ((k1 - k0) * (t1 - t0) > DISJOINT_MAX) return;
  const sa = s.pSaddr, sm = s.pSmask, da = s.pDaddr, dm = s.pDmask;
  for (let k = k0; k < k1; k++) {
    let d = 1;
    for (let o = t0; o < t1 && d === 1; o++) {
      if (s.pVrf[o] !== s.pVrf[k] || s.pFam[o] !== s.pFam[k] || s.pProto[o] === -2) continue; // cannot match its packets
      const pk = s.pProto[k], po = s.pProto[o];
      if (pk !== 0 && po !== 0 && pk !== po) continue;
      if (((s.pSport[k] ^ s.pSport[o]) & s.pSportMask[k] & s.pSportMask[o]) !== 0) continue;
      if (((s.pDport[k] ^ s.pDport[o]) & s.pDportMask[k] & s.pDportMask[o]) !== 0) continue;
      let meet = true; // both prefixes of o intersect k's: some packet may match both
      for (let j = 0; j < 4 && meet; j++) {
        const q = k * 4 + j, p = o * 4 + j;
        if (((sa[q] ^ sa[p]) & sm[q] & sm[p]) !== 0 || ((da[q] ^ da[p]) & dm[q] & dm[p]) !== 0) meet = false;
      }
      if (meet) d = 0;
    }
    r[k] = d;
  }
}
const DISJOINT_MAX = 4_000_000;

/** SA_C_IDENT of an identity: the first 32 bits of its SHA-256 (the keys cannot be told from it), never 0. */
function identDigest(ident: string): number {
  return createHash('sha256').update(ident).digest().readUInt32BE(0) || 1;
}

/** What makes two SA entries the same SA (its sequence state and counters carry over): identity and keys. */
function identOf(sa: XfrmSa): string {
  return `${sa.vrf}/${sa.family}/${sa.daddr}/${sa.spi}/${sa.proto}/${sa.aead?.key ?? ''}/${sa.enc?.key ?? ''}/${sa.auth?.key ?? ''}`;
}

function rd(m: Uint8Array, o: number): number {
  return (m[o] << 24) | (m[o + 1] << 16) | (m[o + 2] << 8) | m[o + 3];
}

function sameAddr(a: string, b: string, family: number): boolean {
  const x = new Int32Array(8);
  addrWords(a, family, x, 0); addrWords(b, family, x, 4);
  return x[0] === x[4] && x[1] === x[5] && x[2] === x[6] && x[3] === x[7];
}

/** Selector ports of a transport header at m[t..] (limit: end of packet): sport << 16 | dport; ICMP / ICMPv6: type << 16 | code (int32). */
export function portsAt(m: Uint8Array, t: number, end: number, proto: number): number {
  if (proto === 6 || proto === 17 || proto === 132 || proto === 33 || proto === 136) {
    if (end < t + 4) return 0;
    return (m[t] << 24) | (m[t + 1] << 16) | (m[t + 2] << 8) | m[t + 3];
  }
  if (proto === 1 || proto === 58) {
    if (end < t + 2) return 0;
    return (m[t] << 16) | m[t + 1];
  }
  return 0;
}
