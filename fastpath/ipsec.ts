// IPsec state of one worker's graph (GraphOptions.ipsec): the SPD of IPv4 policies in typed arrays
// (rebuilt when the shm policy or SA generation changes), the SAD cache (native crypto context per SA
// entry index, keyed by the entry's sequence word = its generation), outbound sequence numbers, the
// inbound anti-replay windows (ring bitmap of 4096 bits, RFC 4303 §3.4.3 and appendix A for ESN) and
// per-SA counters. Rebuilds allocate (cold path); the per-packet calls (matchPolicy, saUsable,
// replayCheck, replayUpdate) do not.
//
// Policy semantics (Linux xfrm): per VRF and direction, the matching policy of lowest priority value
// wins (ties: lower policy index). A policy matches an IPv4 packet when its selector family is 4 and
// addresses / protocol / ports (TCP, UDP, SCTP, DCCP; ICMP type/code in sport/dport as Linux does)
// match under the selector's prefix lengths and port masks, and its mark matches mark 0. Policies the
// fast path cannot apply (selector ifindex, if_id, more than one template, a template that is not
// ESP tunnel IPv4, SAs with NAT-T, transport mode...) are flagged "unsupported": a packet they match
// goes to Linux ('ipsec-unsupported'), never out in clear.
// Out SA of a template: the template's SPI when set (saLookup(vrf, tmpl daddr, spi, 50)), else the
// SAs of the VRF with proto 50, the template's daddr, reqid (when the template's is not 0) and saddr
// (when set); several (rekeying): the one with the highest entry index, an approximation of Linux's
// "newest state" choice. Sequence numbers: the fast path numbers outbound packets from 1 by itself, so
// Linux and the fast path must not both send on one outbound SA (GCM IV = sequence number).

import * as crypto from '../native/crypto';
import type { XfrmPolicy, XfrmSa, XfrmSelector } from '../lib/model';
import { parse4 } from '../shared-mem/addr';
import { decodeSa } from '../shared-mem/entries';
import { SA_E } from '../shared-mem/layout';
import { NOT_FOUND, READ_BUSY, READ_OK, type ShmReader } from '../shared-mem/reader';

export const IPPROTO_ESP = 50;
/** Largest anti-replay window kept (bits); bigger kernel windows are clamped to it. */
export const REPLAY_MAX = 4096;
const RING_WORDS = REPLAY_MAX / 32;

/** Policy actions as matched. */
export const POL_NONE = -1;
export const DIR_IN = 0, DIR_OUT = 1, DIR_FWD = 2;

/** Per-SA counters (IpsecState.saCounters, SA_CTR_STRIDE per SA entry index). */
export const SA_CTR_PACKETS = 0, SA_CTR_BYTES = 1, SA_CTR_ERRORS = 2, SA_CTR_REPLAY = 3, SA_CTR_STRIDE = 4;

/** saUsable results. */
export const SA_OK = 0, SA_BUSY = -1, SA_GONE = -2, SA_UNSUPPORTED = -3;

function maskOf(plen: number): number {
  return plen <= 0 ? 0 : plen >= 32 ? -1 : (-1 << (32 - plen)) | 0;
}
function addr4(s: string): number {
  if (s === '' || s === undefined) return 0;
  const v = parse4(s);
  return v < 0 ? 0 : v | 0;
}

export class IpsecState {
  private readonly shm: ShmReader;
  private readonly maxSas: number;
  private polGen = -1;
  private saGen = -1;
  private readonly buf: Uint32Array;
  private readonly buf8: Uint8Array;

  // ---- SPD (IPv4), sorted by (dir, vrf, priority, index); arrays sized at rebuild ----
  npol = 0;
  pVrf = new Int32Array(0);
  pDir = new Int8Array(0);
  /** 0 allow, 1 block, 2 unsupported */
  pAction = new Int8Array(0);
  pSaddr = new Int32Array(0); pSmask = new Int32Array(0);
  pDaddr = new Int32Array(0); pDmask = new Int32Array(0);
  pSport = new Int32Array(0); pSportMask = new Int32Array(0);
  pDport = new Int32Array(0); pDportMask = new Int32Array(0);
  pProto = new Int32Array(0);
  /** Out: resolved SA entry index, -1 none. In/fwd: template reqid (0 = any). */
  pSa = new Int32Array(0);
  pReqid = new Int32Array(0);
  /** Allow policies without templates (bypass): 1. */
  pBypass = new Int8Array(0);

  // ---- SAD cache, per SA entry index ----
  /** 0 not loaded, 1 usable, 2 unsupported */
  readonly saState: Uint8Array;
  readonly saSeq: Uint32Array;
  readonly saHandle: Int32Array;
  readonly saIvLen: Uint8Array;
  readonly saIcvLen: Uint8Array;
  readonly saBlock: Uint8Array;
  readonly saEsn: Uint8Array;
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
  /** Identity of the SA behind a cache slot when it was loaded (vrf/daddr/spi + key), to keep the counters across rewrites. */
  private readonly saIdent: (string | null)[];
  /** Counters per SA entry index: packets, bytes, errors, replayed (fast path only; stats section later). */
  readonly saCounters: Float64Array;

  constructor(shm: ShmReader) {
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
    this.saSrc = new Int32Array(n);
    this.saDst = new Int32Array(n);
    this.saSpi = new Uint32Array(n);
    this.saReqid = new Uint32Array(n);
    this.saWindow = new Uint16Array(n);
    this.outHi = new Uint32Array(n);
    this.outLo = new Uint32Array(n);
    this.topHi = new Uint32Array(n);
    this.topLo = new Uint32Array(n);
    this.rings = new Array<Uint32Array | null>(n).fill(null);
    this.saIdent = new Array<string | null>(n).fill(null);
    this.saCounters = new Float64Array(n * SA_CTR_STRIDE);
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
      if (r !== READ_OK || this.buf[0] !== this.saSeq[i]) this.release(i, r === READ_OK);
    }
    return ok;
  }

  private release(i: number, keepIfSame: boolean): void {
    if (this.saHandle[i] > 0) crypto.destroySa(this.saHandle[i]);
    this.saHandle[i] = 0;
    this.saState[i] = 0;
    if (!keepIfSame) {
      // a different SA may come in this slot: forget the sequence state
      this.saIdent[i] = null;
      this.outHi[i] = 0; this.outLo[i] = 0; this.topHi[i] = 0; this.topLo[i] = 0;
      const ring = this.rings[i];
      if (ring) ring.fill(0);
      this.saCounters.fill(0, i * SA_CTR_STRIDE, (i + 1) * SA_CTR_STRIDE);
    }
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
    const r = this.shm.readSa(i, this.buf);
    if (r === READ_BUSY) return SA_BUSY;
    if (r !== READ_OK) return SA_GONE;
    const sa: XfrmSa = decodeSa(this.buf, this.buf8);
    const ident = `${sa.vrf}/${sa.daddr}/${sa.spi}/${sa.proto}/${sa.aead?.key ?? ''}/${sa.enc?.key ?? ''}/${sa.auth?.key ?? ''}`;
    if (this.saIdent[i] !== ident) this.release(i, false); // another SA (or other keys) in this slot: fresh state
    this.saIdent[i] = ident;
    this.saSeq[i] = this.buf[0];
    this.saState[i] = 2;
    if (sa.proto !== IPPROTO_ESP || sa.family !== 4 || sa.mode !== 'tunnel' || sa.encap !== undefined ||
      (sa.mark !== undefined && sa.mark.value !== 0) || sa.ifId !== 0) return SA_UNSUPPORTED;
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
    this.saSrc[i] = addr4(sa.saddr);
    this.saDst[i] = addr4(sa.daddr);
    this.saSpi[i] = sa.spi >>> 0;
    this.saReqid[i] = sa.reqid >>> 0;
    this.saWindow[i] = Math.min(sa.replayWindow, REPLAY_MAX);
    if (this.rings[i] === null) this.rings[i] = new Uint32Array(RING_WORDS);
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
    const v4 = pols.filter((p) => p.selector.family === 4);
    const dirCode = (d: string): number => (d === 'in' ? DIR_IN : d === 'out' ? DIR_OUT : DIR_FWD);
    v4.sort((a, b) => dirCode(a.dir) - dirCode(b.dir) || a.vrf - b.vrf || a.priority - b.priority || a.index - b.index);
    const n = v4.length;
    this.pVrf = new Int32Array(n); this.pDir = new Int8Array(n); this.pAction = new Int8Array(n);
    this.pSaddr = new Int32Array(n); this.pSmask = new Int32Array(n); this.pDaddr = new Int32Array(n); this.pDmask = new Int32Array(n);
    this.pSport = new Int32Array(n); this.pSportMask = new Int32Array(n); this.pDport = new Int32Array(n); this.pDportMask = new Int32Array(n);
    this.pProto = new Int32Array(n); this.pSa = new Int32Array(n); this.pReqid = new Int32Array(n); this.pBypass = new Int8Array(n);
    for (let k = 0; k < n; k++) {
      const p = v4[k], s: XfrmSelector = p.selector;
      this.pVrf[k] = p.vrf;
      this.pDir[k] = dirCode(p.dir);
      const sm = maskOf(s.splen), dm = maskOf(s.dplen);
      this.pSaddr[k] = addr4(s.saddr) & sm; this.pSmask[k] = sm;
      this.pDaddr[k] = addr4(s.daddr) & dm; this.pDmask[k] = dm;
      this.pSport[k] = s.sport & s.sportMask; this.pSportMask[k] = s.sportMask;
      this.pDport[k] = s.dport & s.dportMask; this.pDportMask[k] = s.dportMask;
      this.pProto[k] = s.proto;
      this.pSa[k] = -1;
      let action = p.action === 'block' ? 1 : 0;
      // mark: the fast path's packets have mark 0
      const markMiss = p.mark !== undefined && (0 & p.mark.mask) !== p.mark.value;
      if (markMiss) { this.pProto[k] = -2; continue; } // never matches (proto can't be -2)
      if (action === 0) {
        const t = p.tmpls;
        if (s.ifindex !== 0 || p.ifId !== 0 || t.length > 1) action = 2;
        else if (t.length === 0) this.pBypass[k] = 1;
        else if (t[0].proto !== IPPROTO_ESP || t[0].mode !== 'tunnel' || t[0].family !== 4) action = 2;
        else {
          this.pReqid[k] = t[0].reqid;
          if (this.pDir[k] === DIR_OUT) this.pSa[k] = this.resolveOutSa(p.vrf, t[0].daddr, t[0].saddr, t[0].spi, t[0].reqid, sas);
        }
      }
      this.pAction[k] = action;
    }
    this.npol = n;
    return true;
  }

  private resolveOutSa(vrf: number, daddr: string, saddr: string, spi: number, reqid: number, sas: XfrmSa[]): number {
    if (spi !== 0) {
      const i = this.shm.saLookup(vrf, addr4(daddr) >>> 0, spi, IPPROTO_ESP);
      return i >= 0 ? i : -1;
    }
    let best = -1;
    for (const sa of sas) {
      if (sa.vrf !== vrf || sa.proto !== IPPROTO_ESP || sa.family !== 4 || sa.daddr !== daddr) continue;
      if (reqid !== 0 && sa.reqid !== reqid) continue;
      if (saddr !== '' && saddr !== '0.0.0.0' && sa.saddr !== saddr) continue;
      const i = this.shm.saLookup(vrf, addr4(sa.daddr) >>> 0, sa.spi, IPPROTO_ESP);
      if (i !== NOT_FOUND && i > best) best = i;
    }
    return best;
  }

  /** True when the VRF has IPv4 policies of direction `dir` (cheap pre-check per packet). */
  hasPolicies(): boolean { return this.npol > 0; }

  /**
   * Best matching IPv4 policy of (vrf, dir) for the packet fields, or POL_NONE. `ports`: sport << 16 | dport
   * (0 without ports; ICMP: type << 16 | code as Linux's selector does).
   */
  matchPolicy(vrf: number, dir: number, src: number, dst: number, proto: number, ports: number): number {
    const n = this.npol, pv = this.pVrf, pd = this.pDir;
    const sport = ports >>> 16, dport = ports & 0xffff;
    for (let k = 0; k < n; k++) {
      if (pd[k] !== dir || pv[k] !== vrf) continue;
      if ((src & this.pSmask[k]) !== this.pSaddr[k] || (dst & this.pDmask[k]) !== this.pDaddr[k]) continue;
      const pp = this.pProto[k];
      if (pp !== 0 && pp !== proto) continue;
      if ((sport & this.pSportMask[k]) !== this.pSport[k] || (dport & this.pDportMask[k]) !== this.pDport[k]) continue;
      return k;
    }
    return POL_NONE;
  }

  // -------------------------------------------------------------------------------------------
  // Sequence numbers and anti-replay

  /** Next outbound sequence number of SA i into outHi/outLo; false when the space is exhausted (no ESN: 2^32 - 1). */
  nextSeq(i: number): boolean {
    const lo = this.outLo[i];
    if (lo === 0xffffffff) {
      if (this.saEsn[i] === 0 || this.outHi[i] === 0xffffffff) return false;
      this.outHi[i]++;
      this.outLo[i] = 0;
      return true;
    }
    this.outLo[i] = lo + 1;
    return true;
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

  /** True when (hi, sn) (int32 arguments) is acceptable: new, or inside the window and not seen. */
  replayOk(i: number, hiI: number, snI: number): boolean {
    const hi = hiI >>> 0, sn = snI >>> 0;
    if (this.saEsn[i] === 0 && sn === 0) return false;
    const th = this.topHi[i], tl = this.topLo[i];
    if (hi > th || (hi === th && sn > tl)) return true;
    const diff = (th - hi) * 4294967296 + (tl - sn);
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
      const d = (hi - th) * 4294967296 + (sn - tl);
      if (d >= REPLAY_MAX) ring.fill(0);
      else for (let k = 1; k <= d; k++) { const b = (tl + k) & (REPLAY_MAX - 1); ring[b >>> 5] &= ~(1 << (b & 31)); }
      this.topHi[i] = hi; this.topLo[i] = sn;
    }
    const b = sn & (REPLAY_MAX - 1);
    ring[b >>> 5] |= 1 << (b & 31);
  }
}
