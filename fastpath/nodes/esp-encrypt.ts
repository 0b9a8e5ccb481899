// esp-encrypt (GraphOptions.ipsec): routed IPv4 and IPv6 packets from ipv4-lookup / ipv6-lookup
// (aux = next hop of the packet's route | AUX_DECRYPTED when esp-decrypt produced it | AUX_FRAGMENT for an
// IPv4 fragment: selectors see ports 0).
//   Clear-text check first (Linux's forward policy check): a packet that the fast path did not decrypt
//   and that matches a 'fwd' policy of the input port's VRF -> block: drop 'ipsec-block'; allow with a
//   non-optional ESP template: drop 'ipsec-clear-in' (Linux: XfrmInTmplMismatch); unsupported
//   policy: exception 'ipsec-unsupported'. (Not looked up when the packet's 'out' policy can meet no fwd
//   policy: IpsecState.pFwdDisjoint.)
//   Then SPD 'out' (fastpath/ipsec.ts): no policy / allow without template -> ipv4-rewrite /
//   ipv6-rewrite unchanged (aux = next hop); block -> drop 'ipsec-block'; a policy or SA the fast
//   path cannot apply -> exception 'ipsec-unsupported'; no usable SA -> exception 'no-sa' (Linux
//   raises ACQUIRE). Every exception carries the original frame: all checks (policy, SA, the outer
//   route, next hop and neighbour, MTU, buffer room) run before a byte is written.
// Tunnel mode (RFC 4303 §3.1.2), inner and outer IPv4 or IPv6 in any combination, in place:
//   [eth][outer IP][UDP 8 with NAT-T][SPI SN][IV][inner packet (TTL / hop limit - 1)][pad 1,2,3..][pad len][4 | 41][ICV]
//   Outer header as Linux builds it: DSCP copied from the inner header, ECN per RFC 6040 / Linux's
//   INET_ECN_encapsulate (CE -> ECT(0); XFRM_STATE_NOECN: not-ECT); IPv4: ID from a worker counter,
//   DF copied from an IPv4 inner header (clear with XFRM_STATE_NOPMTUDISC or an IPv6 inner one), TTL 65;
//   IPv6: flow label copied from an IPv6 inner header, hop limit 65 (both leave with 64 after the
//   rewrite node's decrement, as Linux sends its own tunnel packets); protocol 50, or UDP 17 to the
//   SA's encap ports with NAT-T (RFC 3948: UDP checksum 0 over IPv4, computed over IPv6); addresses
//   from the SA. The outer destination is routed here (FIB of the input port's VRF, once per SA per
//   vector), its next hop and neighbour checked (-> their exception reasons, or 'esp-outer-route' when
//   the FIB has no unicast route): the ESP packet then goes straight to the rewrite node of the outer
//   family (aux = outer next hop). An IPv4 ESP packet that fits the MTU is built ready to send instead
//   (the outer neighbour's and egress port's MACs, kept per SA with its outer route; TTL 64) and goes to
//   port-tx (aux = egress port; 'forwarded' counted here), unless a packet of the batch went to a rewrite
//   node before it or packets wait in ipv4-rewrite (then ipv4-rewrite, TTL 65: order kept).
// Transport mode (RFC 4303 §3.1.1), IPv4 and IPv6 (SA addresses = the packet's, see ipsec.ts): the
//   IP header moves to the front, ESP [+ UDP] is inserted after it, protocol / next header 50 (17),
//   lengths and the IPv4 checksum fixed; trailer next header = the original protocol. The packet
//   keeps its route (rewrite node of its family, aux = its next hop, TTL - 1 there).
// MTU (egress of the outer next hop, min of link and route MTU), checked before encryption:
//   the ESP packet fits -> go on; otherwise an IPv4 inner packet with DF (and no NOPMTUDISC), or an
//   IPv6 inner packet unless tunnel mode with after-encrypt (then its ESP packet, ours, is fragmented as
//   below) -> exception 'frag-needed' / 'too-big' with the original frame (Linux answers with its own
//   PMTU: ICMP frag needed / packet too big). An IPv4 inner packet without DF:
//   fragMode 'before-encrypt' (tunnel mode): fragmented first (the ipv4-fragment node's code, into
//   new buffers), each fragment encrypted on its own, in the packet's place (the packets before it are
//   finished first: order and sequence numbers as received); 'after-encrypt' (and transport mode): the
//   IPv4 ESP packet (DF clear) is fragmented by ipv4-rewrite -> ipv4-fragment; an IPv6 ESP packet
//   by ipv6-fragment (its own instance, before ipv6-rewrite: each fragment is then rewritten; run per
//   packet so that the fragments keep its place), or without one, exception 'esp-too-big' (original frame to Linux).
// Encryption: one encryptBurst per SA per vector (before-encrypt: per run of packets between two
// fragmented ones) (native/crypto); per-SA counters (stats file):
// packets, bytes (encrypted payload), errors, oseq.
// Room: up to 40 + 8 + 8 + 16 bytes of headroom before the frame (rx buffers have 128) and the
// trailer + ICV within the buffer ('esp-no-room' otherwise).

import { C_FORWARDED, PORT_STRIDE, dropReason, exceptionReason } from '../../shared-mem/stats';
import * as crypto from '../../native/crypto';
import { GW_NONE, GW_V4, GW_V6, type Adjacency } from '../adjacency';
import { ETH_HLEN, type FpContext } from '../context';
import { FOUND, type FibResolver } from '../fib';
import { GraphNode } from '../graph-node';
import { csumSum, csumUpdate16, ipv4SetChecksum } from '../checksum';
import {
  ACT_ALLOW, ACT_BLOCK, DIR_FWD, DIR_OUT, IPPROTO_ESP, MODE_TUNNEL, POL_NONE, SA_BUSY, SA_C_BYTES, SA_C_ERRORS, SA_C_PACKETS,
  SA_OK, SA_STRIDE, SA_UNSUPPORTED, XFRM_STATE_NOECN, XFRM_STATE_NOPMTUDISC, portsAt, type IpsecState,
} from '../ipsec';
import { X_SHM_BUSY } from '../route';
import { FIB_GROUP, FIB_INDEX_MASK, RTN_UNICAST } from '../route-types';
import { VEC, vmove, vpush, vswap, Vector } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';
import type { Ipv4FragmentNode } from './ipv4-fragment';
import type { Ipv4RewriteNode } from './ipv4-rewrite';
import type { Ipv6FragmentNode } from './ipv6-fragment';
import type { Ipv6RewriteNode } from './ipv6-rewrite';
import type { PortTxNode } from './port-tx';

const X_NO_SA = exceptionReason('no-sa');
const X_UNSUPPORTED = exceptionReason('ipsec-unsupported');
const X_NO_ROOM = exceptionReason('esp-no-room');
const X_OUTER_ROUTE = exceptionReason('esp-outer-route');
const X_TOO_BIG_ESP = exceptionReason('esp-too-big');
const X_FRAG_NEEDED = exceptionReason('frag-needed');
const X_TOO_BIG = exceptionReason('too-big');
const D_BLOCK = dropReason('ipsec-block');
const D_CLEAR_IN = dropReason('ipsec-clear-in');
const D_SEQ_OVERFLOW = dropReason('esp-seq-overflow');
const D_CRYPTO = dropReason('esp-crypto-error');

/** aux bit of a packet that esp-decrypt produced (ipv4-input / ipv6-input / lookup keep it; the rest of aux is the next hop). */
export const AUX_DECRYPTED = 0x80000000;
/** aux bit (ipv4-input / ipv6-input -> lookup) of an ESP fragment for ipv4-reassembly / ipv6-reassembly. */
export const AUX_FRAGMENT = 0x40000000;
/**
 * aux bit of a packet esp-decrypt produced whose inner IPv4 destination it resolved already (not for this host):
 * the low bits (AUX_TICKET) are a FibResolver.keep4 ticket; ipv4-input passes both on, ipv4-lookup uses the answer
 * (FibResolver.reuse4) instead of resolving again when it is still good.
 */
export const AUX_FIB = 0x20000000;
export const AUX_TICKET = 0x3ff; // HANDOVER_SLOTS - 1

export type IpsecFragmentMode = 'after-encrypt' | 'before-encrypt';

/** Packets of a batch and what pass 1 decided for each (-1: handed to exception / drop; -2: clear -> rewrite). */
class Batch {
  readonly v = new Vector();
  readonly sa = new Int32Array(VEC);
  /** Next hop the packet leaves by (outer route for tunnel mode; its own for transport / clear). */
  readonly nh = new Int32Array(VEC);
  readonly espOff = new Uint32Array(VEC);
  readonly encLen = new Uint32Array(VEC);
  /** Protected payload bytes (inner packet in tunnel mode, IP payload in transport mode): what Linux counts per SA. */
  readonly plLen = new Uint32Array(VEC);
  readonly seqLo = new Uint32Array(VEC);
  readonly seqHi = new Uint32Array(VEC);
  /** IPv6 ESP packet longer than the egress MTU (after-encrypt): that MTU (-> ipv6-fragment before the rewrite); 0 otherwise. */
  readonly fmtu = new Uint32Array(VEC);
  /**
   * Pass 1: 1 for a tunnel-mode packet whose ESP packet fits the MTU; finish: 1 when it is built ready to send (IPv4
   * outer; -> port-tx, not ipv4-rewrite).
   */
  readonly direct = new Uint8Array(VEC);
}

/** Receives the fragments of ipv4-fragment (before-encrypt mode) in place of port-tx. */
class FragmentSink {
  constructor(private readonly enc: EspEncryptNode) {}
  add(mbuf: number, off: number, len: number, port: number, egress: number): void {
    this.enc.fragmentOut(mbuf, off, len, port, egress);
  }
}

/** Receives the fragments of ipv6-fragment (IPv6 ESP packets, after-encrypt) in place of port-tx: -> ipv6-rewrite. */
class Fragment6Sink {
  constructor(private readonly enc: EspEncryptNode) {}
  add(mbuf: number, off: number, len: number, port: number, egress: number): void {
    this.enc.fragment6Out(mbuf, off, len, port, egress);
  }
}

export class EspEncryptNode extends GraphNode {
  readonly name = 'esp-encrypt';
  private readonly ipsec: IpsecState;
  private readonly fib: FibResolver;
  private readonly adj: Adjacency;
  private readonly work = new Batch();
  private readonly frags = new Batch();
  private running = false;
  private ipId = 1;
  private epoch = 1;
  // outer route per SA, valid for one run (epoch)
  private readonly rStamp: Uint32Array;
  private readonly rNh: Int32Array;
  private readonly rMtu: Uint32Array;
  /** Its egress port and Ethernet header words (destination MAC = the neighbour's, source MAC = the egress port's). */
  private readonly rEgress: Int32Array;
  private readonly rMac: Uint32Array;
  private readonly d6 = new Uint32Array(4);
  /** ctx.mem as a DataView: big-endian 16 / 32-bit header fields in one store each. */
  private readonly dv: DataView;
  // one burst
  private readonly bOff = new Uint32Array(VEC);
  private readonly bLen = new Uint32Array(VEC);
  private readonly bLo = new Uint32Array(VEC);
  private readonly bHi = new Uint32Array(VEC);
  private readonly sas = new Int32Array(VEC);
  /** 'after-encrypt' (default) or 'before-encrypt' (IPv4 inner packets without DF, tunnel mode). */
  fragMode: IpsecFragmentMode = 'after-encrypt';
  /** The ipv4-fragment code for before-encrypt (its own instance: fragments come back here). */
  fragmenter: Ipv4FragmentNode | null = null;
  /** ipv6-fragment for IPv6 ESP packets longer than the MTU (after-encrypt; its own instance, tx = fragment6Sink()). */
  fragmenter6: Ipv6FragmentNode | null = null;
  /** The batch whose IPv6 ESP packets fragmenter6 is cutting (fragment6Out: next hop by batch index). */
  private f6batch: Batch | null = null;
  rewrite4!: Ipv4RewriteNode;
  rewrite6!: Ipv6RewriteNode;
  /** IPv4 tunnel-mode ESP packets that fit go here directly (built with the rewrite node's work done: MACs, TTL 64). */
  tx!: PortTxNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, ipsec: IpsecState, fib: FibResolver, adj: Adjacency) {
    super(ctx);
    this.ipsec = ipsec;
    this.fib = fib;
    this.adj = adj;
    this.dv = new DataView(ctx.mem.buffer, ctx.mem.byteOffset, ctx.mem.byteLength);
    const n = ipsec.maxSas;
    this.rStamp = new Uint32Array(n);
    this.rNh = new Int32Array(n);
    this.rMtu = new Uint32Array(n);
    this.rEgress = new Int32Array(n);
    this.rMac = new Uint32Array(n * 3);
  }

  /** The sink to give the before-encrypt fragmenter as its `tx`. */
  fragmentSink(): PortTxNode { return new FragmentSink(this) as unknown as PortTxNode; }
  /** The sink to give the IPv6 ESP fragmenter as its `tx`. */
  fragment6Sink(): PortTxNode { return new Fragment6Sink(this) as unknown as PortTxNode; }

  /** True when there is a policy of the family at all (the lookup nodes skip this node otherwise). */
  spdActive(family: number): boolean { return this.ipsec.hasPolicies(family); }

  /**
   * For esp-decrypt's routed inner IPv4 packets (decrypted: no clear-text check; not fragments; IPv4 header at m[o..]):
   * true when no 'out' policy of `vrf` applies to it, or an allow bypass one -- pass 1 would hand it to ipv4-rewrite
   * unchanged.
   */
  leavesClear4(vrf: number, m: Uint8Array, o: number): boolean {
    const ips = this.ipsec, dv = this.dv;
    const proto = m[o + 9], ports = ips.nportSel === 0 ? 0 : portsAt(m, o + ((m[o] & 15) << 2), o + ((m[o + 2] << 8) | m[o + 3]), proto);
    const k = ips.matchPolicy4(vrf, DIR_OUT, dv.getInt32(o + 12), dv.getInt32(o + 16), proto, ports);
    return k === POL_NONE || (ips.pBypass[k] === 1 && ips.pAction[k] === ACT_ALLOW);
  }

  /** Packet i of v (routed; aux: next hop | AUX_DECRYPTED) for the SPD checks. */
  add(v: Vector, i: number, aux: number): void {
    const q = this.input;
    if (q.n === VEC) {
      if (this.running) { this.exception.add(v, i, X_UNSUPPORTED); return; } // cannot happen (bounded fan-in); never overflow
      this.run();
    }
    vmove(q, v, i, aux);
  }

  run(): void {
    if (this.input.n === 0 || this.running) return;
    this.running = true;
    const w = this.work.v, q = this.input;
    w.n = 0;
    vswap(w, q); // the input's packets become the work vector's (no copy); the input is empty after
    try { this.process(this.work); } finally { this.running = false; }
  }

  private process(b: Batch): void {
    const ctx = this.ctx, m = ctx.mem, ips = this.ipsec, exc = this.exception, drop = this.drop, w = b.v;
    const bufSize = ctx.io.bufSize;
    if (++this.epoch === 0x100000000) { this.epoch = 1; this.rStamp.fill(0); }
    this.adj.beginVector();
    // b[start ..) is not finished yet (before-encrypt: the packets before a fragmented one are finished first)
    let start = 0;
    // a packet of b[start ..) waits for finish (ESP): clear packets after it wait too (order kept); before the
    // first one, they go to the rewrite node at once
    let held = false;
    // the last tunnel SA (and VRF) that passed its checks in this vector, with its outer next hop, MTU and sizes
    let tS = -1, tVrf = -1, tOnh = 0, tMtu = 0, tIv = 0, tIcv = 0, tBs = 0, tUlen = 0, tOhl = 0;
    const fq = this.fragmenter !== null ? this.fragmenter.input : null;
    // the SA whose nextSeq ran in this vector (its later packets: nextSeqAgain; seqSync: its oseq to write)
    let seqS = -1, seqSync = false;
    // pass 1: policies, SA, outer route, MTU, room (nothing modified before every check passed)
    for (let i = 0; i < w.n; i++) {
      b.sa[i] = -1;
      b.fmtu[i] = 0;
      const off = w.off[i], o = off + ETH_HLEN, port = w.port[i], aux = w.aux[i];
      const nh = aux & 0x3fffffff, vrf = ctx.portVrf[port];
      const fam = m[o] >>> 4;
      let proto: number, hl: number, tot: number, src = 0, dst = 0;
      if (fam === 4) {
        proto = m[o + 9]; hl = (m[o] & 15) << 2; tot = (m[o + 2] << 8) | m[o + 3];
        src = this.dv.getInt32(o + 12); dst = this.dv.getInt32(o + 16);
      } else {
        // a fragment (AUX_FRAGMENT: Fragment header first): the selector protocol is the one it carries
        proto = (aux & AUX_FRAGMENT) !== 0 ? m[o + 40] : m[o + 6]; hl = 40; tot = 40 + ((m[o + 4] << 8) | m[o + 5]);
      }
      // fragments (ipv4-input's AUX_FRAGMENT) match selectors with ports 0, as in Linux (decode_session4); no
      // selector with ports: not read
      const ports = (aux & AUX_FRAGMENT) !== 0 || ips.nportSel === 0 ? 0 : portsAt(m, o + hl, o + tot, proto);
      const k = !ips.hasPolicies(fam) ? POL_NONE
        : fam === 4 ? ips.matchPolicy4(vrf, DIR_OUT, src, dst, proto, ports) : ips.matchPolicy6(vrf, DIR_OUT, m, o, proto, ports);
      // clear text matching a fwd policy that requires ESP (Linux checks the fwd policy of forwarded packets; its
      // verdict comes first); not looked up when no fwd policy can match a packet of the out policy it matched
      if ((aux & AUX_DECRYPTED) === 0 && ips.npolIn > 0 && (k === POL_NONE || ips.pFwdDisjoint[k] === 0)) {
        const f = fam === 4 ? ips.matchPolicy4(vrf, DIR_FWD, src, dst, proto, ports) : ips.matchPolicy6(vrf, DIR_FWD, m, o, proto, ports);
        if (f !== POL_NONE) {
          const act = ips.pAction[f];
          if (act === ACT_BLOCK) { drop.add(w, i, D_BLOCK); continue; }
          if (act !== ACT_ALLOW) { exc.add(w, i, X_UNSUPPORTED); continue; }
          if (ips.pBypass[f] === 0 && ips.pOptional[f] === 0) { drop.add(w, i, D_CLEAR_IN); continue; }
        }
      }
      if (k === POL_NONE || (ips.pBypass[k] === 1 && ips.pAction[k] === ACT_ALLOW)) { // -> rewrite
        if (held) { b.sa[i] = -2; b.nh[i] = nh; continue; }
        if (fam === 6) { const r6 = this.rewrite6, q6 = r6.input; if (q6.n === VEC) r6.run(); vmove(q6, w, i, nh); }
        else { const r4 = this.rewrite4, q4 = r4.input; if (q4.n === VEC) r4.run(); vmove(q4, w, i, nh); }
        continue;
      }
      const act = ips.pAction[k];
      if (act === ACT_BLOCK) { drop.add(w, i, D_BLOCK); continue; }
      if (act !== ACT_ALLOW) { exc.add(w, i, X_UNSUPPORTED); continue; }
      const s = ips.outSa(k, m, o, fam);
      if (s < 0) { exc.add(w, i, X_NO_SA); continue; }
      let tunnel: boolean, onh: number, mtu: number, ivLen: number, icvLen: number, bs: number, ulen: number, ohl: number;
      if (s === tS && vrf === tVrf) {
        // the tunnel SA of the previous ESP packet (checked and routed for this vector): same answers
        tunnel = true; onh = tOnh; mtu = tMtu; ivLen = tIv; icvLen = tIcv; bs = tBs; ulen = tUlen; ohl = tOhl;
      } else {
        const st = ips.saUsable(s);
        if (st !== SA_OK) { exc.add(w, i, st === SA_BUSY ? X_SHM_BUSY : st === SA_UNSUPPORTED ? X_UNSUPPORTED : X_NO_SA); continue; }
        tunnel = ips.saMode[s] === MODE_TUNNEL;
        if (!tunnel && ips.saFam[s] !== fam) { exc.add(w, i, X_UNSUPPORTED); continue; }
        // the next hop the ESP packet leaves by, and its MTU
        if (tunnel) {
          onh = this.outerRoute(s, vrf);
          if (onh < 0) { exc.add(w, i, -1 - onh); continue; }
          mtu = this.rMtu[s];
        } else {
          const t = this.adj.resolve(nh, fam, m, o);
          if (t < 0) { exc.add(w, i, -1 - t); continue; }
          onh = nh;
          mtu = this.adj.nhMtu[this.adj.nhSlot];
        }
        ivLen = ips.saIvLen[s]; icvLen = ips.saIcvLen[s]; bs = ips.saBlock[s];
        ulen = ips.saEncap[s] === 1 ? 8 : 0;
        ohl = tunnel ? (ips.saFam[s] === 4 ? 20 : 40) : hl; // outer IP header
        if (tunnel) { tS = s; tVrf = vrf; tOnh = onh; tMtu = mtu; tIv = ivLen; tIcv = icvLen; tBs = bs; tUlen = ulen; tOhl = ohl; }
      }
      const pl = tunnel ? tot : tot - hl; // protected payload
      const el = padTo(pl + 2, bs);
      const outerTot = ohl + ulen + 8 + ivLen + el + icvLen;
      const head = tunnel ? ohl + ulen + 8 + ivLen : ulen + 8 + ivLen; // bytes pushed in front
      if (ETH_HLEN + tot + (el - pl) + icvLen > bufSize || off < head) { exc.add(w, i, X_NO_ROOM); continue; }
      if (outerTot > mtu) {
        // IPv6 inner packets are never fragmented by a router: too big -> Linux (packet too big), except in
        // tunnel mode with after-encrypt, where the ESP packet (ours: we are its source) is fragmented instead
        const df = fam === 6 ? !(tunnel && this.fragMode === 'after-encrypt')
          : (m[o + 6] & 0x40) !== 0 && (!tunnel || (ips.saFlags[s] & XFRM_STATE_NOPMTUDISC) === 0);
        if (df) { exc.add(w, i, fam === 4 ? X_FRAG_NEEDED : X_TOO_BIG); continue; }
        // fragments of at most innerMax bytes fit once encrypted (padding counted at its largest)
        const innerMax = mtu - (ohl + ulen + 8 + ivLen + icvLen + 2 + bs - 1);
        if (tunnel && this.fragMode === 'before-encrypt' && fq !== null && fam === 4 && innerMax >= 28) {
          b.sa[i] = -3; b.nh[i] = onh; b.espOff[i] = s; // espOff: the SA, for fragmentOut
          // order kept (and sequence numbers in sending order): the packets before this one leave
          // first, then its encrypted fragments, then the rest (fragments queued until the end of the
          // vector would follow every packet that fits: reordering beyond a receiver's ipfrag_max_dist)
          this.finish(b, start, i);
          start = i + 1;
          held = false;
          vpush(fq, w.mbuf[i], off, w.len[i], port, (i | (innerMax << 16)) >>> 0);
          (this.fragmenter as Ipv4FragmentNode).run(); // -> fragmentOut -> this.frags
          this.finish(this.frags);
          continue;
        }
        if (ips.saFam[s] === 6) {
          if (this.fragmenter6 === null) { exc.add(w, i, X_TOO_BIG_ESP); continue; }
          b.fmtu[i] = mtu; // the ESP packet is fragmented before ipv6-rewrite (finish)
        }
      }
      b.direct[i] = tunnel && outerTot <= mtu ? 1 : 0;
      let seqOk: boolean;
      if (s === seqS) { seqOk = ips.nextSeqAgain(s) || ips.nextSeq(s); seqSync = true; } else {
        if (seqSync) { ips.syncSeq(seqS); seqSync = false; }
        seqOk = ips.nextSeq(s);
        if (seqOk) seqS = s;
      }
      if (!seqOk) { drop.add(w, i, D_SEQ_OVERFLOW); ips.saCounters[s * SA_STRIDE + SA_C_ERRORS]++; continue; }
      b.seqLo[i] = ips.outLo[s];
      b.seqHi[i] = ips.outHi[s];
      b.sa[i] = s;
      held = true;
      b.nh[i] = onh;
      b.espOff[i] = tunnel ? o - 8 - ivLen : o + hl - 8 - ivLen;
      b.encLen[i] = el;
      b.plLen[i] = pl;
    }
    if (seqSync) ips.syncSeq(seqS);
    // nothing held (no ESP packet since `start`: every packet was handed over, dropped or sent to Linux in pass 1,
    // e.g. a vector of decrypted packets that match no policy): no pass over the batch
    if (held) this.finish(b, start, w.n);
    else w.n = 0;
  }

  /** A fragment of packet `idx` of the work batch (before-encrypt): laid out for its SA, queued in `frags`. */
  fragmentOut(mbuf: number, off: number, len: number, port: number, idx: number): void {
    const f = this.frags, v = f.v, wb = this.work, ips = this.ipsec, m = this.ctx.mem;
    if (v.n === VEC) this.finish(f);
    const s = wb.espOff[idx], j = vpush(v, mbuf, off, len, port, 0);
    f.sa[j] = -1;
    f.fmtu[j] = 0; // each fragment fits once encrypted
    f.direct[j] = 1;
    if (!ips.nextSeq(s)) { this.drop.add(v, j, D_SEQ_OVERFLOW); ips.saCounters[s * SA_STRIDE + SA_C_ERRORS]++; return; }
    const o = off + ETH_HLEN, tot = (m[o + 2] << 8) | m[o + 3], bs = ips.saBlock[s];
    f.sa[j] = s;
    f.nh[j] = wb.nh[idx];
    f.seqLo[j] = ips.outLo[s];
    f.seqHi[j] = ips.outHi[s];
    f.espOff[j] = o - 8 - ips.saIvLen[s];
    f.encLen[j] = padTo(tot + 2, bs);
  }

  /**
   * Passes 2-4 over packets [from, to) of a batch whose pass 1 is done: build, encrypt (one burst per SA),
   * hand over in order; empties the batch when `to` is its end.
   */
  private finish(b: Batch, from = 0, to = b.v.n): void {
    const m = this.ctx.mem, ips = this.ipsec, w = b.v, cnt = ips.saCounters;
    let nsas = 0, last = -1, nesp = 0;
    // IPv4 tunnel-mode ESP packets that fit the MTU go to port-tx without ipv4-rewrite (built with its work done) as
    // long as no packet waits for a rewrite node before them (order kept): none queued in ipv4-rewrite, none of this
    // batch before them handed to one (clear, too big, transport mode, IPv6 outer)
    let clear = this.rewrite4.input.n !== 0;
    // pass 2: build the packets
    for (let i = from; i < to; i++) {
      const s = b.sa[i];
      if (s < 0) { if (s === -2) clear = true; continue; }
      nesp++;
      if (ips.saMode[s] === MODE_TUNNEL) {
        const d = b.direct[i] === 1 && !clear && ips.saFam[s] === 4 && b.nh[i] === this.rNh[s];
        b.direct[i] = d ? 1 : 0;
        if (!d) clear = true;
        this.buildTunnel(b, i, s, m, d);
      } else {
        b.direct[i] = 0;
        clear = true;
        this.buildTransport(b, i, s, m);
      }
      if (s === last) continue;
      last = s;
      let seen = false;
      for (let j = 0; j < nsas; j++) if (this.sas[j] === s) { seen = true; break; }
      if (!seen) this.sas[nsas++] = s;
    }
    // pass 3: one encryptBurst per SA
    for (let j = 0; j < nsas; j++) {
      const s = this.sas[j];
      let n = 0, bOff = this.bOff, bLen = this.bLen, bLo = this.bLo, bHi = this.bHi;
      if (nsas === 1 && from === 0 && nesp === to) {
        // every packet of the batch is ESP of this SA (the usual case): the batch's own arrays are the burst
        n = to; bOff = b.espOff; bLen = b.encLen; bLo = b.seqLo; bHi = b.seqHi;
      } else {
        for (let i = from; i < to; i++) {
          if (b.sa[i] !== s) continue;
          bOff[n] = b.espOff[i]; bLen[n] = b.encLen[i]; bLo[n] = b.seqLo[i]; bHi[n] = b.seqHi[i];
          n++;
        }
      }
      let ok = true;
      try {
        crypto.encryptBurst(ips.saHandle[s], m, bOff, bLen, bLo, bHi, n, ips.saEsn[s] === 1);
      } catch {
        ok = false; // layout refused (checked above) or OpenSSL failure: drop the burst (counted as SA errors)
      }
      const cb = s * SA_STRIDE;
      if (!ok) {
        for (let i = from; i < to; i++) if (b.sa[i] === s) b.sa[i] = -4;
        cnt[cb + SA_C_ERRORS] += n;
        continue;
      }
      // counters once per burst: packets, and bytes as Linux counts them (without ESP padding and trailer)
      let bytes = 0;
      if (ips.saEncap[s] === 1 && ips.saFam[s] === 6) {
        for (let i = from; i < to; i++) {
          if (b.sa[i] !== s) continue;
          bytes += b.plLen[i];
          udp6Checksum(m, w.off[i] + ETH_HLEN, b.espOff[i] - 8);
        }
      } else {
        for (let i = from; i < to; i++) if (b.sa[i] === s) bytes += b.plLen[i];
      }
      cnt[cb + SA_C_PACKETS] += n;
      cnt[cb + SA_C_BYTES] += bytes;
    }
    // pass 4: hand over (in order); 'forwarded' counted for the packets sent directly (as ipv4-rewrite does), per
    // run of packets of one input port
    const r4 = this.rewrite4, r6 = this.rewrite6, q4 = r4.input, q6 = r6.input, tx = this.tx, c = this.ctx.counters;
    let fport = -1, fwd = 0;
    for (let i = from; i < to; i++) {
      const s = b.sa[i];
      if (s === -2) {
        const six = (m[w.off[i] + ETH_HLEN] >>> 4) === 6;
        if (six) { if (q6.n === VEC) r6.run(); vmove(q6, w, i, b.nh[i]); } else { if (q4.n === VEC) r4.run(); vmove(q4, w, i, b.nh[i]); }
      } else if (s >= 0) {
        if (b.direct[i] === 1) {
          const port = w.port[i];
          if (port !== fport) { if (fport >= 0) c[fport * PORT_STRIDE + C_FORWARDED] += fwd; fport = port; fwd = 0; }
          fwd++;
          tx.add(w.mbuf[i], w.off[i], w.len[i], port, this.rEgress[s]);
        } else if (b.fmtu[i] !== 0) this.fragment6(b, i); // its fragments -> ipv6-rewrite, in its place
        else if (ips.saFam[s] === 6) { if (q6.n === VEC) r6.run(); vmove(q6, w, i, b.nh[i]); } else { if (q4.n === VEC) r4.run(); vmove(q4, w, i, b.nh[i]); }
      } else if (s === -4) {
        this.drop.add(w, i, D_CRYPTO);
      }
      // -1: already handed over; -3: fragmented (the original was freed by the fragmenter)
    }
    if (fport >= 0) c[fport * PORT_STRIDE + C_FORWARDED] += fwd;
    if (to === w.n) w.n = 0;
  }

  /**
   * IPv6 ESP packet i of b, longer than the MTU (b.fmtu[i]): cut by ipv6-fragment at once, so that its
   * fragments reach ipv6-rewrite in the packet's place (queued until the end of the batch, they would
   * leave after every packet of the batch that fits).
   */
  private fragment6(b: Batch, i: number): void {
    const fr = this.fragmenter6 as Ipv6FragmentNode;
    vmove(fr.input, b.v, i, (i | (b.fmtu[i] << 16)) >>> 0);
    this.f6batch = b;
    fr.run(); // -> fragment6Out -> ipv6-rewrite
    this.f6batch = null;
  }

  /** A fragment of the IPv6 ESP packet at index `idx` of the batch being finished: to ipv6-rewrite (its next hop). */
  fragment6Out(mbuf: number, off: number, len: number, port: number, idx: number): void {
    const r6 = this.rewrite6, q6 = r6.input;
    if (q6.n === VEC) r6.run();
    vpush(q6, mbuf, off, len, port, (this.f6batch as Batch).nh[idx]);
  }

  /** direct: the packet goes to port-tx (final MACs, outer TTL 64), else to the rewrite node (received MACs, TTL 65). */
  private buildTunnel(b: Batch, i: number, s: number, m: Uint8Array, direct: boolean): void {
    const ips = this.ipsec, w = b.v;
    const off = w.off[i], o = off + ETH_HLEN;
    const dv = this.dv;
    const fam = m[o] >>> 4;
    let tot: number, tc: number, df = 0, flow = 0;
    if (fam === 4) {
      tot = (m[o + 2] << 8) | m[o + 3];
      tc = m[o + 1];
      df = m[o + 6] & 0x40;
      // inner TTL - 1 (RFC 1624: the word (TTL, proto) goes down by 0x100), as Linux forwards before xfrm
      const ttl = m[o + 8], old = (ttl << 8) | m[o + 9];
      m[o + 8] = ttl - 1;
      const c = csumUpdate16((m[o + 10] << 8) | m[o + 11], old, old - 0x100);
      m[o + 10] = c >>> 8; m[o + 11] = c & 255;
    } else {
      tot = 40 + ((m[o + 4] << 8) | m[o + 5]);
      tc = ((m[o] & 15) << 4) | (m[o + 1] >>> 4);
      flow = ((m[o + 1] & 15) << 16) | (m[o + 2] << 8) | m[o + 3];
      m[o + 7]--;
    }
    const flags = ips.saFlags[s];
    const ecn = (flags & XFRM_STATE_NOECN) !== 0 ? 0 : (tc & 3) === 3 ? 2 : tc & 3;
    const otc = (tc & 0xfc) | ecn;
    if ((flags & XFRM_STATE_NOPMTUDISC) !== 0) df = 0;
    // trailer
    const el = b.encLen[i], pad = el - tot - 2;
    let t = o + tot;
    for (let k = 1; k <= pad; k++) m[t++] = k;
    m[t++] = pad;
    m[t] = fam === 4 ? 4 : 41;
    const e = b.espOff[i];
    const encap = ips.saEncap[s] === 1;
    const u = encap ? e - 8 : e;
    const ofam = ips.saFam[s], q = s * 4;
    const h = u - (ofam === 4 ? 20 : 40);
    // Ethernet header: the received one, with the outer ethertype (the rewrite node sets the MACs); copied before the
    // ESP header is written: that may begin before `off` (GCM: 2 bytes before) and overlap the received MACs (the
    // copy would take SPI bytes, and its load would wait for the SPI store to a line not yet in cache)
    const f = h - ETH_HLEN; // at least 28 bytes before off: no overlap
    if (direct) {
      const r = this.rMac, k = s * 3;
      dv.setUint32(f, r[k]); dv.setUint32(f + 4, r[k + 1]); dv.setUint32(f + 8, r[k + 2]);
    } else {
      dv.setUint32(f, dv.getUint32(off)); dv.setUint32(f + 4, dv.getUint32(off + 4)); dv.setUint32(f + 8, dv.getUint32(off + 8));
    }
    dv.setUint16(f + 12, ofam === 4 ? 0x0800 : 0x86dd);
    // ESP header (SPI; the SN is written by the addon)
    dv.setUint32(e, ips.saSpi[s]);
    const espLen = 8 + ips.saIvLen[s] + el + ips.saIcvLen[s];
    if (encap) writeUdp(m, u, ips.saEncSport[s], ips.saEncDport[s], 8 + espLen);
    const proto = encap ? 17 : IPPROTO_ESP;
    let olen: number;
    if (ofam === 4) {
      olen = 20 + (encap ? 8 : 0) + espLen;
      const id = this.ipId; this.ipId = (id + 1) & 0xffff;
      const sa = ips.saSrc[q], da = ips.saDst[q], ol = olen & 0xffff, ttl = direct ? 64 : 65;
      // header checksum from the field values (no second pass over the header)
      let c = (0x4500 | otc) + ol + id + (df << 8) + ((ttl << 8) | proto) + (sa >>> 16) + (sa & 0xffff) + (da >>> 16) + (da & 0xffff);
      c = (c & 0xffff) + (c >>> 16);
      c = (c & 0xffff) + (c >>> 16);
      c = ~c & 0xffff;
      dv.setUint32(h, 0x45000000 | (otc << 16) | ol); // version, IHL, TOS, total length
      dv.setUint32(h + 4, ((id << 16) | (df << 8)) >>> 0); // ID, flags (DF), fragment offset 0
      dv.setUint32(h + 8, (ttl << 24) | (proto << 16) | c); // TTL, protocol, checksum
      dv.setInt32(h + 12, sa); dv.setInt32(h + 16, da);
    } else {
      olen = 40 + (encap ? 8 : 0) + espLen;
      const plen = olen - 40;
      m[h] = 0x60 | (otc >>> 4); m[h + 1] = ((otc & 15) << 4) | (flow >>> 16); m[h + 2] = flow >>> 8; m[h + 3] = flow;
      m[h + 4] = plen >>> 8; m[h + 5] = plen; m[h + 6] = proto; m[h + 7] = 65;
      for (let k = 0; k < 4; k++) { wr32(m, h + 8 + k * 4, ips.saSrc[q + k]); wr32(m, h + 24 + k * 4, ips.saDst[q + k]); }
    }
    w.off[i] = f;
    w.len[i] = ETH_HLEN + olen;
  }

  private buildTransport(b: Batch, i: number, s: number, m: Uint8Array): void {
    const ips = this.ipsec, w = b.v;
    const off = w.off[i], o = off + ETH_HLEN;
    const fam = m[o] >>> 4;
    const hl = fam === 4 ? (m[o] & 15) << 2 : 40;
    const tot = fam === 4 ? (m[o + 2] << 8) | m[o + 3] : 40 + ((m[o + 4] << 8) | m[o + 5]);
    const proto = fam === 4 ? m[o + 9] : m[o + 6];
    const el = b.encLen[i], pad = el - (tot - hl) - 2;
    let t = o + tot;
    for (let k = 1; k <= pad; k++) m[t++] = k;
    m[t++] = pad;
    m[t] = proto;
    const encap = ips.saEncap[s] === 1, ulen = encap ? 8 : 0;
    const e = b.espOff[i], spi = ips.saSpi[s];
    const espLen = 8 + ips.saIvLen[s] + el + ips.saIcvLen[s];
    const shift = ulen + 8 + ips.saIvLen[s];
    const f = off - shift, h = o - shift;
    m.copyWithin(f, off, o + hl); // Ethernet + IP header move to the front
    m[e] = spi >>> 24; m[e + 1] = spi >>> 16; m[e + 2] = spi >>> 8; m[e + 3] = spi;
    if (encap) writeUdp(m, e - 8, ips.saEncSport[s], ips.saEncDport[s], 8 + espLen);
    const nproto = encap ? 17 : IPPROTO_ESP;
    const olen = hl + ulen + espLen;
    if (fam === 4) {
      m[h + 2] = olen >>> 8; m[h + 3] = olen; m[h + 9] = nproto;
      ipv4SetChecksum(m, h, hl);
    } else {
      const plen = olen - 40;
      m[h + 4] = plen >>> 8; m[h + 5] = plen; m[h + 6] = nproto;
    }
    w.off[i] = f;
    w.len[i] = ETH_HLEN + olen;
  }

  /**
   * Next hop for SA s's outer destination in `vrf` (once per SA per run): FIB (unicast only), ECMP member, next hop
   * usable, neighbour usable; its MTU in rMtu[s]. Returns the next hop, or -1 - exception reason.
   */
  private outerRoute(s: number, vrf: number): number {
    if (this.rStamp[s] === this.epoch) return this.rNh[s];
    this.rStamp[s] = this.epoch;
    const r = this.resolveOuter(s, vrf);
    this.rNh[s] = r;
    return r;
  }

  private resolveOuter(s: number, vrf: number): number {
    const ips = this.ipsec, fib = this.fib, q = s * 4, fam = ips.saFam[s];
    const proto = ips.saEncap[s] === 1 ? 17 : IPPROTO_ESP;
    let res: number;
    if (fam === 4) {
      if (fib.needsFlow(vrf, 4)) { fib.flow4.src = ips.saSrc[q]; fib.setFlow(4, 0, proto, 0, ''); }
      res = fib.resolve4(vrf, ips.saDst[q]);
    } else {
      const d = this.d6;
      for (let k = 0; k < 4; k++) d[k] = ips.saDst[q + k];
      if (fib.needsFlow(vrf, 6)) {
        const fs = fib.flow6.src as Uint32Array;
        for (let k = 0; k < 4; k++) fs[k] = ips.saSrc[q + k];
        fib.setFlow(6, 0, proto, 0, '');
      }
      res = fib.resolve6(vrf, d);
    }
    if (res !== FOUND || fib.type !== RTN_UNICAST) return -1 - X_OUTER_ROUTE;
    const val = fib.value;
    const nh = (val >>> 30) === FIB_GROUP ? this.ctx.shm.groupSelect(val & FIB_INDEX_MASK, Math.imul(ips.saSpi[s] | 0, 0x9e3779b1) ^ ips.saDst[q + 3]) : val & FIB_INDEX_MASK;
    if (nh < 0) return -1 - X_SHM_BUSY;
    const a = this.adj, t = a.nexthop(nh), e = a.nhResult[t];
    if (e < 0) return e;
    const gk = a.nhGwKind[t], gw = a.nhGw, g = t * 4;
    let nf = fam, a0: number, a1 = 0, a2 = 0, a3 = 0;
    if (gk === GW_V4) { nf = 4; a0 = gw[g]; } else if (gk === GW_V6 || (gk !== GW_NONE && fam === 6)) {
      nf = 6; a0 = gw[g]; a1 = gw[g + 1]; a2 = gw[g + 2]; a3 = gw[g + 3];
    } else if (fam === 4) a0 = ips.saDst[q];
    else { a0 = ips.saDst[q]; a1 = ips.saDst[q + 1]; a2 = ips.saDst[q + 2]; a3 = ips.saDst[q + 3]; }
    const nb = a.neighbour(t, nf, a0, a1, a2, a3);
    if (a.nbResult[nb] < 0) return a.nbResult[nb];
    this.rMtu[s] = a.nhMtu[t];
    // what ipv4-rewrite would write (kept here: the adjacency caches may be reused before the packets are built)
    this.rEgress[s] = e;
    const d = a.nbMac, sm = a.nhSrcMac, p = nb * 6, r = t * 6, k = s * 3;
    this.rMac[k] = ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
    this.rMac[k + 1] = ((d[p + 4] << 24) | (d[p + 5] << 16) | (sm[r] << 8) | sm[r + 1]) >>> 0;
    this.rMac[k + 2] = ((sm[r + 2] << 24) | (sm[r + 3] << 16) | (sm[r + 4] << 8) | sm[r + 5]) >>> 0;
    return nh;
  }
}

/** n rounded up to a multiple of bs (the cipher's block: 4 or 16, a power of two; a float division otherwise). */
function padTo(n: number, bs: number): number {
  return (bs & (bs - 1)) === 0 ? (n + bs - 1) & -bs : Math.ceil(n / bs) * bs;
}

function wr32(m: Uint8Array, o: number, v: number): void {
  m[o] = v >>> 24; m[o + 1] = v >>> 16; m[o + 2] = v >>> 8; m[o + 3] = v;
}

function writeUdp(m: Uint8Array, u: number, sport: number, dport: number, len: number): void {
  m[u] = sport >>> 8; m[u + 1] = sport; m[u + 2] = dport >>> 8; m[u + 3] = dport;
  m[u + 4] = len >>> 8; m[u + 5] = len; m[u + 6] = 0; m[u + 7] = 0; // IPv4: checksum 0 (RFC 3948 §3.1)
}

/** UDP checksum of an IPv6 packet (header at m[o..], UDP at m[u..]): mandatory over IPv6 (RFC 8200 §8.1). */
function udp6Checksum(m: Uint8Array, o: number, u: number): void {
  const len = (m[u + 4] << 8) | m[u + 5];
  m[u + 6] = 0; m[u + 7] = 0;
  let s = csumSum(m, o + 8, 32) + len + 17;
  const even = len & ~1;
  s += csumSum(m, u, even);
  if ((len & 1) !== 0) s += m[u + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  let c = ~s & 0xffff;
  if (c === 0) c = 0xffff;
  m[u + 6] = c >>> 8; m[u + 7] = c & 255;
}
