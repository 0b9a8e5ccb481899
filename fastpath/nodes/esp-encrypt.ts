// esp-encrypt (GraphOptions.ipsec): routed IPv4 packets (aux = next-hop index of the inner route) ->
// SPD 'out' of the input port's VRF (fastpath/ipsec.ts):
//   no policy / allow without template -> ipv4-rewrite unchanged (aux = next hop);
//   block -> drop 'ipsec-block'; a policy the fast path cannot apply -> exception 'ipsec-unsupported';
//   allow + ESP tunnel template without a usable SA -> exception 'no-sa' (Linux raises ACQUIRE);
//   all of these carry the original frame. Otherwise ESP tunnel mode (RFC 4303), in place:
//   [eth][outer IPv4 20][SPI SN][IV][inner IPv4 (TTL - 1, as Linux forwards before xfrm)][pad 1,2,3..][pad len][4][ICV]
//   outer: TOS copied from the inner header, ID from a worker counter, DF clear (not copied: the outer
//   packet is fragmented by ipv4-fragment when it exceeds the egress MTU, like an SA with
//   XFRM_STATE_NOPMTUDISC; no frag-needed towards the inner source), TTL 65 so that it leaves with 64
//   after ipv4-rewrite's decrement (Linux sends its own tunnel packets with TTL 64), protocol 50,
//   addresses from the SA. Encryption: one encryptBurst per SA per vector. The outer packet then goes
//   back to ipv4-lookup (aux = 1: already through the SPD) to be routed on the outer destination.
// Needs up to 20 + 8 + 16 bytes of headroom before the frame (rx buffers have 128) and the trailer +
// ICV within the buffer ('esp-no-room' otherwise).

import { dropReason, exceptionReason } from '../../shared-mem/stats';
import * as crypto from '../../native/crypto';
import { ETH_HLEN, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import { csumUpdate16, ipv4SetChecksum } from '../checksum';
import { IPPROTO_ESP, SA_BUSY, SA_CTR_BYTES, SA_CTR_ERRORS, SA_CTR_PACKETS, SA_CTR_STRIDE, SA_OK, SA_UNSUPPORTED, DIR_OUT, POL_NONE, type IpsecState } from '../ipsec';
import { X_SHM_BUSY } from '../route';
import { VEC, vmove, vpush, Vector } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';
import type { Ipv4LookupNode } from './ipv4-lookup';
import type { Ipv4RewriteNode } from './ipv4-rewrite';

const X_NO_SA = exceptionReason('no-sa');
const X_UNSUPPORTED = exceptionReason('ipsec-unsupported');
const X_NO_ROOM = exceptionReason('esp-no-room');
const D_BLOCK = dropReason('ipsec-block');
const D_SEQ_OVERFLOW = dropReason('esp-seq-overflow');
const D_CRYPTO = dropReason('esp-crypto-error');

/** aux of an outer packet handed back to ipv4-lookup: do not look it up in the SPD again. */
export const AUX_ENCAPSULATED = 1;

export class EspEncryptNode extends GraphNode {
  readonly name = 'esp-encrypt';
  private readonly ipsec: IpsecState;
  private readonly work = new Vector();
  private running = false;
  private ipId = 1;
  // per packet of `work` (after the first pass): SA index (-1: not for encryption), ESP offset, encLen
  private readonly pSa = new Int32Array(VEC);
  private readonly espOff = new Uint32Array(VEC);
  private readonly encLen = new Uint32Array(VEC);
  private readonly seqLo = new Uint32Array(VEC);
  private readonly seqHi = new Uint32Array(VEC);
  // one burst
  private readonly bOff = new Uint32Array(VEC);
  private readonly bLen = new Uint32Array(VEC);
  private readonly bLo = new Uint32Array(VEC);
  private readonly bHi = new Uint32Array(VEC);
  private readonly sas = new Int32Array(VEC);
  lookup!: Ipv4LookupNode;
  rewrite!: Ipv4RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, ipsec: IpsecState) {
    super(ctx);
    this.ipsec = ipsec;
  }

  /** True when there is an IPv4 policy at all (ipv4-lookup skips this node otherwise). */
  spdActive(): boolean { return this.ipsec.npol > 0; }

  /** Packet i of v (routed; `nh` its next hop) for the SPD check. */
  add(v: Vector, i: number, nh: number): void {
    const q = this.input;
    if (q.n === VEC) {
      if (this.running) { this.exception.add(v, i, X_UNSUPPORTED); return; } // cannot happen (bounded fan-in); never overflow
      this.run();
    }
    vmove(q, v, i, nh);
  }

  run(): void {
    if (this.input.n === 0 || this.running) return;
    this.running = true;
    const w = this.work, q = this.input;
    for (let i = 0; i < q.n; i++) copyPacket(w, q, i);
    w.n = q.n;
    q.n = 0;
    try { this.process(w); } finally { this.running = false; }
  }

  private process(w: Vector): void {
    const ctx = this.ctx, m = ctx.mem, ips = this.ipsec, exc = this.exception, drop = this.drop;
    const pSa = this.pSa, espOff = this.espOff, encLen = this.encLen, bufSize = ctx.io.bufSize;
    let nsas = 0;
    // pass 1: policy, SA, layout (nothing modified before every check passed)
    for (let i = 0; i < w.n; i++) {
      pSa[i] = -1;
      const off = w.off[i], o = off + ETH_HLEN, port = w.port[i];
      const proto = m[o + 9];
      const src = (m[o + 12] << 24) | (m[o + 13] << 16) | (m[o + 14] << 8) | m[o + 15];
      const dst = (m[o + 16] << 24) | (m[o + 17] << 16) | (m[o + 18] << 8) | m[o + 19];
      const ports = portsOf(m, o, proto);
      const k = ips.matchPolicy(ctx.portVrf[port], DIR_OUT, src, dst, proto, ports);
      if (k === POL_NONE || ips.pBypass[k] === 1) { pSa[i] = -2; continue; } // -> rewrite
      const act = ips.pAction[k];
      if (act === 1) { drop.add(w, i, D_BLOCK); continue; }
      if (act !== 0) { exc.add(w, i, X_UNSUPPORTED); continue; }
      const s = ips.pSa[k];
      if (s < 0) { exc.add(w, i, X_NO_SA); continue; }
      const st = ips.saUsable(s);
      if (st !== SA_OK) { exc.add(w, i, st === SA_BUSY ? X_SHM_BUSY : st === SA_UNSUPPORTED ? X_UNSUPPORTED : X_NO_SA); continue; }
      const tot = (m[o + 2] << 8) | m[o + 3];
      const ivLen = ips.saIvLen[s], icvLen = ips.saIcvLen[s], bs = ips.saBlock[s];
      const el = Math.ceil((tot + 2) / bs) * bs;
      const hdr = 20 + 8 + ivLen;
      if (ETH_HLEN + tot + (el - tot) + icvLen > bufSize || off < hdr) { exc.add(w, i, X_NO_ROOM); continue; }
      if (!ips.nextSeq(s)) { drop.add(w, i, D_SEQ_OVERFLOW); ips.saCounters[s * SA_CTR_STRIDE + SA_CTR_ERRORS]++; continue; }
      this.seqLo[i] = ips.outLo[s];
      this.seqHi[i] = ips.outHi[s];
      pSa[i] = s;
      espOff[i] = o - 8 - ivLen;
      encLen[i] = el;
      let seen = false;
      for (let j = 0; j < nsas; j++) if (this.sas[j] === s) { seen = true; break; }
      if (!seen) this.sas[nsas++] = s;
    }
    // pass 2: build the packets (inner TTL - 1, trailer, ESP header, outer header)
    for (let i = 0; i < w.n; i++) {
      const s = pSa[i];
      if (s < 0) continue;
      const o = w.off[i] + ETH_HLEN;
      const tot = (m[o + 2] << 8) | m[o + 3];
      // inner TTL - 1 (RFC 1624 incremental checksum: the word (TTL, proto) goes down by 0x100)
      const ttl = m[o + 8], old = (ttl << 8) | m[o + 9];
      m[o + 8] = ttl - 1;
      const c = csumUpdate16((m[o + 10] << 8) | m[o + 11], old, old - 0x100);
      m[o + 10] = c >>> 8; m[o + 11] = c & 255;
      const el = encLen[i], pad = el - tot - 2;
      let t = o + tot;
      for (let k = 1; k <= pad; k++) m[t++] = k;
      m[t++] = pad;
      m[t] = 4; // next header: IPv4 (tunnel)
      const e = espOff[i], spi = ips.saSpi[s];
      m[e] = spi >>> 24; m[e + 1] = spi >>> 16; m[e + 2] = spi >>> 8; m[e + 3] = spi;
      const h = e - 20, outerLen = 20 + 8 + ips.saIvLen[s] + el + ips.saIcvLen[s];
      m[h] = 0x45; m[h + 1] = m[o + 1];
      m[h + 2] = outerLen >>> 8; m[h + 3] = outerLen;
      const id = this.ipId; this.ipId = (id + 1) & 0xffff;
      m[h + 4] = id >>> 8; m[h + 5] = id;
      m[h + 6] = 0; m[h + 7] = 0;
      m[h + 8] = 65; m[h + 9] = IPPROTO_ESP;
      const sa = ips.saSrc[s], da = ips.saDst[s];
      m[h + 12] = sa >>> 24; m[h + 13] = sa >>> 16; m[h + 14] = sa >>> 8; m[h + 15] = sa;
      m[h + 16] = da >>> 24; m[h + 17] = da >>> 16; m[h + 18] = da >>> 8; m[h + 19] = da;
      ipv4SetChecksum(m, h, 20);
      // Ethernet header: a copy of the received one (destination = the port's MAC, ethertype IPv4)
      const off = w.off[i], f = h - ETH_HLEN;
      for (let k = 0; k < ETH_HLEN; k++) m[f + k] = m[off + k];
      w.off[i] = f;
      w.len[i] = ETH_HLEN + outerLen;
    }
    // pass 3: one encryptBurst per SA
    for (let j = 0; j < nsas; j++) {
      const s = this.sas[j];
      let n = 0;
      for (let i = 0; i < w.n; i++) {
        if (pSa[i] !== s) continue;
        this.bOff[n] = espOff[i]; this.bLen[n] = encLen[i]; this.bLo[n] = this.seqLo[i]; this.bHi[n] = this.seqHi[i];
        n++;
      }
      let ok = true;
      try {
        crypto.encryptBurst(ips.saHandle[s], m, this.bOff, this.bLen, this.bLo, this.bHi, n, ips.saEsn[s] === 1);
      } catch {
        ok = false; // layout refused (checked above) or OpenSSL failure: drop the burst (counted as SA errors)
      }
      const cb = s * SA_CTR_STRIDE;
      for (let i = 0; i < w.n; i++) {
        if (pSa[i] !== s) continue;
        if (!ok) { pSa[i] = -3; ips.saCounters[cb + SA_CTR_ERRORS]++; continue; }
        ips.saCounters[cb + SA_CTR_PACKETS]++;
        ips.saCounters[cb + SA_CTR_BYTES] += encLen[i];
      }
    }
    // pass 4: hand over (in order)
    const lk = this.lookup.input, rw = this.rewrite.input;
    for (let i = 0; i < w.n; i++) {
      const s = pSa[i];
      if (s === -2) {
        if (rw.n === VEC) this.rewrite.run();
        vmove(rw, w, i, w.aux[i]);
      } else if (s >= 0) {
        if (lk.n === VEC) this.lookup.run();
        vpush(lk, w.mbuf[i], w.off[i], w.len[i], w.port[i], AUX_ENCAPSULATED);
      } else if (s === -3) {
        drop.addMbuf(w.mbuf[i], w.port[i], D_CRYPTO);
      }
    }
    w.n = 0;
  }
}

function copyPacket(dst: Vector, src: Vector, i: number): void {
  dst.mbuf[i] = src.mbuf[i]; dst.off[i] = src.off[i]; dst.len[i] = src.len[i]; dst.port[i] = src.port[i]; dst.aux[i] = src.aux[i];
}

/** Selector ports of an IPv4 packet (header already validated): sport << 16 | dport; ICMP: type << 16 | code (int32). */
export function portsOf(m: Uint8Array, o: number, proto: number): number {
  const hl = (m[o] & 15) << 2, tot = (m[o + 2] << 8) | m[o + 3];
  if (proto === 6 || proto === 17 || proto === 132 || proto === 33 || proto === 136) {
    if (tot < hl + 4) return 0;
    return (m[o + hl] << 24) | (m[o + hl + 1] << 16) | (m[o + hl + 2] << 8) | m[o + hl + 3];
  }
  if (proto === 1) {
    if (tot < hl + 2) return 0;
    return (m[o + hl] << 16) | m[o + hl + 1];
  }
  return 0;
}
