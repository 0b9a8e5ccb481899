// esp-decrypt (GraphOptions.ipsec): ESP to a local address, from ipv4-lookup / ipv6-lookup (route
// type local; headers validated by ipv4-input / ipv6-input: no IPv4 options, no IPv6 extension
// header, not a fragment). aux = offset of the ESP header from the IP header: IPv4 IHL*4 / IPv6 40
// for protocol 50, + 8 for ESP in UDP (RFC 3948: UDP to an SA's encap port, first word not zero;
// the lookup nodes hand NAT-T keepalives and non-ESP-marker IKE packets to Linux).
//   SAD (input port's VRF, outer destination, SPI, 50): none -> drop 'esp-bad-spi' (decided: Linux
//   would only drop it too, XfrmInNoStates, and handing unauthenticated traffic to the control plane
//   is a DoS vector); entry busy -> exception 'shm-busy'; an SA the fast path does not handle
//   (mark, if_id, algorithm) -> exception 'ipsec-unsupported' (Linux decrypts it); ESP in UDP for an
//   SA without encap, or plain ESP for an SA with it -> drop 'esp-encap'; transport mode -> exception
//   'ipsec-local' with the ESP frame unless transportDecrypt (see below).
//   Too short for header + IV + 2 + ICV -> drop 'esp-truncated'.
//   Anti-replay (before decryption, RFC 4303 §3.4.3; ESN high bits inferred, appendix A) -> 'esp-replay'.
//   One decryptBurst per SA per vector; ICV failure -> 'esp-icv'; bad length for the cipher -> 'esp-truncated'.
//   The window is updated only after a good ICV (and checked again: duplicates inside one vector).
//   Trailer: pad length + 2 > payload -> 'esp-truncated'. Tunnel mode: next header 4 (IPv4) or 41
//   (IPv6) with a header of that version, else -> 'esp-policy'; ECN decapsulation as Linux
//   (outer CE -> inner CE when the inner packet is ECT), outer DSCP copied with XFRM_STATE_DECAP_DSCP.
//   Transport mode: the IP header is moved up to the decrypted payload, protocol / next header =
//   the trailer's, lengths and checksum fixed.
//   Inner policy: the best-matching 'in' policy, or failing that 'fwd' policy, of the VRF for the
//   inner packet must be allow with an ESP template of the SA's mode whose reqid is 0 or the SA's;
//   otherwise -> drop 'esp-policy' (no policy at all: dropped for tunnel mode (XfrmInNoPols),
//   accepted for transport mode, as Linux does).
//   Then: Ethernet header (the received one, ethertype of the inner family) re-written in front of the
//   inner packet, which goes to ipv4-input / ipv6-input as if received on the same port (VRF), with
//   aux AUX_DECRYPTED (no clear-text policy drop for it; it may be encrypted again), and for IPv4 the
//   FIB answer forThisHost found for its destination (AUX_FIB | FibResolver.keep4 ticket: ipv4-lookup
//   uses it instead of resolving again, fastpath/fib.ts reuse4).
//   Except (forward4): a routed inner IPv4 packet (unicast route, not a fragment) whose destination
//   forThisHost resolved through a rule plan -- with localDeliver too, where it is resolved for this only and a
//   packet for this host goes on to ipv4-input -- is checked here as ipv4-input would (ipv4Verdict: same
//   reasons), given its next hop as ipv4-lookup would, and handed to ipv4-rewrite, or to esp-encrypt when an
//   'out' policy may apply to it (IpsecState.pOutDisjoint of the in policy it matched, else
//   EspEncryptNode.leavesClear4) or esp-encrypt holds packets. Order: once an inner IPv4 packet of a run went
//   to ipv4-input (or packets wait there), the later ones follow it.
// Local delivery: a decrypted packet for this host could only go to Linux in clear, and Linux's own
// 'in' policy check drops clear text that a policy requires to be ESP. So transport mode ESP (always
// for this host) goes to Linux undecrypted ('ipsec-local') unless the graph sets transportDecrypt
// (tests; useful once the fptun module can tell Linux the packet was decrypted). Tunnel mode: when
// the inner destination is this host (FIB of the VRF: local, broadcast, multicast, anycast; or a
// multicast address), the packet is re-encrypted in place with its own IV (GCM / CBC are
// deterministic given key and IV: the bytes are exactly the received ones again) and handed to Linux
// as received ('ipsec-local'), without updating the fast path's replay window (Linux checks its own)
// or the SA counters. (That re-encryption uses native/crypto's explicit-IV primitives, which make a
// few small views per such packet: local traffic only.)
// Per-SA counters (stats file): packets/bytes (accepted, decrypted payload), errors (length, trailer,
// policy, encap, crypto), replayDrops, authDrops (ICV), iseq.

import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { NOT_FOUND } from '../../shared-mem/reader';
import * as crypto from '../../native/crypto';
import { csumUpdate16, ipv4SetChecksum } from '../checksum';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { flowHash4, ports4 } from '../hash';
import { GraphNode } from '../graph-node';
import {
  ACT_ALLOW, DIR_FWD, DIR_IN, IPPROTO_ESP, MODE_TRANSPORT, MODE_TUNNEL, POL_NONE, SA_BUSY, SA_C_AUTH, SA_C_BYTES, SA_C_ERRORS,
  SA_C_PACKETS, SA_C_REPLAY, SA_OK, SA_STRIDE, SA_UNSUPPORTED, XFRM_STATE_DECAP_DSCP, portsAt, type IpsecState,
} from '../ipsec';
import { X_SHM_BUSY } from '../route';
import { FOUND, type FibResolver } from '../fib';
import { FIB_GROUP, FIB_INDEX_MASK, RTN_ANYCAST, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_UNICAST } from '../route-types';
import { VEC, vmove, vpush, vswap, Vector } from '../vector';
import type { DropNode } from './drop';
import { AUX_DECRYPTED, AUX_FIB, type EspEncryptNode } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import { V4_DROP, V4_OK, ipv4Verdict, type Ipv4InputNode } from './ipv4-input';
import type { Ipv4RewriteNode } from './ipv4-rewrite';
import type { Ipv6InputNode } from './ipv6-input';

const X_UNSUPPORTED = exceptionReason('ipsec-unsupported');
const X_LOCAL = exceptionReason('ipsec-local');
const D_REPLAY = dropReason('esp-replay');
const D_ICV = dropReason('esp-icv');
const D_BAD_SPI = dropReason('esp-bad-spi');
const D_TRUNCATED = dropReason('esp-truncated');
const D_POLICY = dropReason('esp-policy');
const D_CRYPTO = dropReason('esp-crypto-error');
const D_ENCAP = dropReason('esp-encap');

export class EspDecryptNode extends GraphNode {
  readonly name = 'esp-decrypt';
  private readonly ipsec: IpsecState;
  private readonly work = new Vector();
  private running = false;
  private readonly pSa = new Int32Array(VEC);
  private readonly espOff = new Uint32Array(VEC);
  private readonly encLen = new Uint32Array(VEC);
  private readonly seqHi = new Uint32Array(VEC);
  private readonly bOff = new Uint32Array(VEC);
  private readonly bLen = new Uint32Array(VEC);
  private readonly bHi = new Uint32Array(VEC);
  private readonly bStatus = new Uint8Array(VEC);
  private readonly status = new Uint8Array(VEC);
  private readonly sas = new Int32Array(VEC);
  private readonly d6 = new Uint32Array(4);
  private readonly aad12 = new Uint8Array(12);
  /** ctx.mem as a DataView: big-endian 32-bit header fields in one load / store each. */
  private readonly dv: DataView;
  private readonly fib: FibResolver;
  /** Decrypt transport-mode ESP too (default false: Linux gets it undecrypted, 'ipsec-local'). */
  transportDecrypt = false;
  /**
   * forThisHost: AUX_FIB when it resolved the inner IPv4 destination through a plan (no flow key) and it is not for
   * this host (the answer: fVal / fType), else 0.
   */
  private ticket = 0;
  private fVal = 0;
  private fType = 0;
  /** decapTunnel: the in / fwd policy the inner packet matched (forward4: IpsecState.pOutDisjoint). */
  private inPol = 0;
  /**
   * GraphOptions.ipsecLocalDecrypt (Linux trusts the DPVIs): tunnel-mode inner packets for this host go on
   * decrypted (ipv4/6-input -> lookup -> 'local' to Linux) instead of being re-encrypted for Linux.
   */
  localDeliver = false;
  input4!: Ipv4InputNode;
  input6!: Ipv6InputNode;
  /** Where forward4 hands the routed inner IPv4 packets it checked itself (ipv4-lookup's next nodes). */
  rewrite4!: Ipv4RewriteNode;
  encrypt: EspEncryptNode | null = null;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, ipsec: IpsecState, fib: FibResolver) {
    super(ctx);
    this.ipsec = ipsec;
    this.fib = fib;
    this.dv = new DataView(ctx.mem.buffer, ctx.mem.byteOffset, ctx.mem.byteLength);
  }

  /** Packet i of v; `espAt`: offset of the ESP header from the IP header. */
  add(v: Vector, i: number, espAt: number): void {
    const q = this.input;
    if (q.n === VEC) {
      if (this.running) { this.exception.add(v, i, X_UNSUPPORTED); return; } // bounded fan-in: not reached
      this.run();
    }
    vmove(q, v, i, espAt);
  }

  run(): void {
    if (this.input.n === 0 || this.running) return;
    this.running = true;
    const w = this.work, q = this.input;
    w.n = 0;
    vswap(w, q); // the input's packets become the work vector's (no copy); the input is empty after
    try { this.process(w); } finally { this.running = false; }
  }

  private process(w: Vector): void {
    const ctx = this.ctx, m = ctx.mem, shm = ctx.shm, ips = this.ipsec, exc = this.exception, drop = this.drop;
    const pSa = this.pSa, espOff = this.espOff, encLen = this.encLen, seqHi = this.seqHi, cnt = ips.saCounters, dv = this.dv;
    let nsas = 0;
    // SAD: the last (VRF, outer destination, SPI) -> SA entry of this vector (a vector mostly holds packets of
    // few SAs); valid for this vector only, like the SA cache of IpsecState (re-validated once per vector)
    let cFam = 0, cVrf = 0, cSpi = 0, cD0 = 0, cD1 = 0, cD2 = 0, cD3 = 0, cS = -1, nok = 0;
    // pass 1: SA, lengths, replay pre-check
    for (let i = 0; i < w.n; i++) {
      pSa[i] = -1;
      const o = w.off[i] + ETH_HLEN, port = w.port[i], eo = w.aux[i];
      const fam = m[o] >>> 4;
      const tot = fam === 4 ? (m[o + 2] << 8) | m[o + 3] : 40 + ((m[o + 4] << 8) | m[o + 5]);
      const udp = (fam === 4 ? m[o + 9] : m[o + 6]) === 17;
      if (tot < eo + 8) { drop.add(w, i, D_TRUNCATED); continue; }
      const e = o + eo;
      const spi = dv.getInt32(e);
      const vrf = ctx.portVrf[port];
      let s: number;
      if (fam === 4) {
        const dst = dv.getInt32(o + 16);
        if (cFam === 4 && dst === cD0 && spi === cSpi && vrf === cVrf) s = cS;
        else {
          s = shm.saLookup(vrf, dst, spi, IPPROTO_ESP);
          if (s >= 0) { cFam = 4; cVrf = vrf; cSpi = spi; cD0 = dst; cS = s; }
        }
      } else {
        const d = this.d6;
        for (let k = 0; k < 4; k++) { const a = o + 24 + k * 4; d[k] = (m[a] << 24) | (m[a + 1] << 16) | (m[a + 2] << 8) | m[a + 3]; }
        if (cFam === 6 && d[3] === cD3 && d[2] === cD2 && d[1] === cD1 && d[0] === cD0 && spi === cSpi && vrf === cVrf) s = cS;
        else {
          s = shm.saLookup(vrf, d, spi, IPPROTO_ESP);
          if (s >= 0) { cFam = 6; cVrf = vrf; cSpi = spi; cD0 = d[0]; cD1 = d[1]; cD2 = d[2]; cD3 = d[3]; cS = s; }
        }
      }
      if (s === NOT_FOUND) { drop.add(w, i, D_BAD_SPI); continue; }
      if (s < 0) { exc.add(w, i, X_SHM_BUSY); continue; }
      const st = ips.saUsable(s);
      if (st !== SA_OK) {
        if (st === SA_BUSY) exc.add(w, i, X_SHM_BUSY);
        else if (st === SA_UNSUPPORTED) exc.add(w, i, X_UNSUPPORTED);
        else drop.add(w, i, D_BAD_SPI);
        continue;
      }
      const cb = s * SA_STRIDE;
      if ((ips.saEncap[s] === 1) !== udp) { drop.add(w, i, D_ENCAP); cnt[cb + SA_C_ERRORS]++; continue; }
      if (ips.saMode[s] === MODE_TRANSPORT && !this.transportDecrypt) { exc.add(w, i, X_LOCAL); continue; }
      const el = tot - eo - 8 - ips.saIvLen[s] - ips.saIcvLen[s];
      if (el < 2) { drop.add(w, i, D_TRUNCATED); cnt[cb + SA_C_ERRORS]++; continue; }
      const sn = dv.getInt32(e + 4);
      const hi = ips.inferHi(s, sn);
      if (!ips.replayOk(s, hi, sn)) { drop.add(w, i, D_REPLAY); cnt[cb + SA_C_REPLAY]++; continue; }
      pSa[i] = s;
      espOff[i] = e;
      encLen[i] = el;
      seqHi[i] = hi;
      nok++;
      let seen = false;
      for (let j = 0; j < nsas; j++) if (this.sas[j] === s) { seen = true; break; }
      if (!seen) this.sas[nsas++] = s;
    }
    // pass 2: one decryptBurst per SA
    const status = this.status;
    if (nsas === 1 && nok === w.n) {
      // every packet of the vector is of this SA (the usual case): its own arrays are the burst
      const s = this.sas[0];
      try {
        crypto.decryptBurst(ips.saHandle[s], m, espOff, encLen, seqHi, w.n, ips.saEsn[s] === 1, status);
      } catch {
        status.fill(crypto.STATUS_CRYPTO_ERROR, 0, w.n);
      }
      nsas = 0;
    }
    for (let j = 0; j < nsas; j++) {
      const s = this.sas[j];
      let n = 0;
      for (let i = 0; i < w.n; i++) {
        if (pSa[i] !== s) continue;
        this.bOff[n] = espOff[i]; this.bLen[n] = encLen[i]; this.bHi[n] = seqHi[i];
        n++;
      }
      let ok = true;
      try {
        crypto.decryptBurst(ips.saHandle[s], m, this.bOff, this.bLen, this.bHi, n, ips.saEsn[s] === 1, this.bStatus);
      } catch {
        ok = false;
      }
      n = 0;
      for (let i = 0; i < w.n; i++) if (pSa[i] === s) status[i] = ok ? this.bStatus[n++] : crypto.STATUS_CRYPTO_ERROR;
    }
    this.deliver(w);
  }

  /** Pass 3 of process (its own function: V8 inlines the calls of a smaller function; status: decryptBurst's). */
  private deliver(w: Vector): void {
    const m = this.ctx.mem, ips = this.ipsec, exc = this.exception, drop = this.drop, status = this.status;
    const pSa = this.pSa, espOff = this.espOff, encLen = this.encLen, seqHi = this.seqHi, cnt = ips.saCounters, dv = this.dv;
    // pass 3: replay update, trailer, decapsulation, inner policy, hand over (in order); packets / bytes counted
    // per run of packets of one SA (aS: that SA, aP / aB: its packets / bytes not yet added)
    let aS = -1, aP = 0, aB = 0;
    // an inner IPv4 packet went to ipv4-input (or some wait there): the later ones follow it (order kept), none is
    // handed on by forward4
    let slow4 = this.input4.input.n !== 0;
    for (let i = 0; i < w.n; i++) {
      const s = pSa[i];
      if (s < 0) continue;
      const cb = s * SA_STRIDE;
      const st = status[i];
      if (st !== crypto.STATUS_OK) {
        if (st === crypto.STATUS_BAD_ICV) { cnt[cb + SA_C_AUTH]++; drop.add(w, i, D_ICV); } else {
          cnt[cb + SA_C_ERRORS]++;
          drop.add(w, i, st === crypto.STATUS_BAD_LENGTH ? D_TRUNCATED : D_CRYPTO);
        }
        continue;
      }
      const e = espOff[i], el = encLen[i];
      const sn = dv.getInt32(e + 4);
      if (!ips.replayOk(s, seqHi[i] | 0, sn)) { drop.add(w, i, D_REPLAY); cnt[cb + SA_C_REPLAY]++; continue; }
      const p = e + 8 + ips.saIvLen[s]; // plaintext
      const padLen = m[p + el - 2], nh = m[p + el - 1];
      const innerLen = el - 2 - padLen;
      this.ticket = 0;
      if (innerLen >= 0 && ips.saMode[s] === MODE_TUNNEL) {
        if (!this.localDeliver) {
          if (this.forThisHost(w.port[i], p, innerLen, nh)) {
            // for Linux: the ESP packet as received (re-encrypted in place), Linux decrypts it
            if (this.reencrypt(s, e, el, seqHi[i])) exc.add(w, i, X_LOCAL);
            else { drop.add(w, i, D_CRYPTO); cnt[cb + SA_C_ERRORS]++; }
            continue;
          }
        } else if (nh === 4) {
          // delivered decrypted: only the answer for a routed IPv4 packet (forward4); one for this host goes on to
          // ipv4-input / ipv4-lookup ('local')
          this.forThisHost(w.port[i], p, innerLen, nh);
        }
      }
      ips.replayUpdate(s, seqHi[i] | 0, sn);
      if (innerLen < 0) { drop.add(w, i, D_TRUNCATED); cnt[cb + SA_C_ERRORS]++; continue; }
      const r = ips.saMode[s] === MODE_TUNNEL ? this.decapTunnel(w, i, s, p, innerLen, nh) : this.decapTransport(w, i, s, p, innerLen, nh);
      if (r < 0) { drop.add(w, i, D_POLICY); cnt[cb + SA_C_ERRORS]++; continue; }
      if (s !== aS) {
        if (aS >= 0) { cnt[aS * SA_STRIDE + SA_C_PACKETS] += aP; cnt[aS * SA_STRIDE + SA_C_BYTES] += aB; }
        aS = s; aP = 0; aB = 0;
      }
      aP++;
      aB += innerLen; // as Linux: without ESP padding and trailer
      const f = w.off[i]; // the inner frame (decap* moved it)
      if ((m[f + ETH_HLEN] >>> 4) === 4) {
        const fib = this.ticket !== 0;
        if (fib && !slow4 && this.forward4(w, i)) continue;
        slow4 = true;
        const q = this.input4.input;
        if (q.n === VEC) this.input4.run();
        // with forThisHost's answer for ipv4-lookup (a FibResolver.keep4 ticket) when there is one
        vpush(q, w.mbuf[i], f, w.len[i], w.port[i], fib ? AUX_DECRYPTED | AUX_FIB | this.fib.keep4(f, this.fVal, this.fType) : AUX_DECRYPTED); // int32 (stored as uint32)
      } else {
        const q = this.input6.input;
        if (q.n === VEC) this.input6.run();
        vpush(q, w.mbuf[i], f, w.len[i], w.port[i], AUX_DECRYPTED);
      }
    }
    if (aS >= 0) { cnt[aS * SA_STRIDE + SA_C_PACKETS] += aP; cnt[aS * SA_STRIDE + SA_C_BYTES] += aB; }
    w.n = 0;
  }

  /**
   * Routed inner IPv4 packet i of w (tunnel mode, decapsulated; forThisHost's answer for its destination in fVal /
   * fType) handed on without ipv4-input and ipv4-lookup: their checks made here (ipv4Verdict: same drop / exception
   * reasons), the next hop (ECMP member by the flow hash, as ipv4-lookup), then esp-encrypt when an 'out' policy
   * may apply (or packets wait there: order kept), else ipv4-rewrite. False (nothing done): a fragment or a route
   * that is not unicast, for ipv4-input / ipv4-lookup.
   */
  private forward4(w: Vector, i: number): boolean {
    const m = this.ctx.mem, o = w.off[i] + ETH_HLEN;
    const r = ipv4Verdict(m, this.ctx.mem16, o, w.len[i] - ETH_HLEN);
    if (r !== V4_OK) {
      if (r >= V4_DROP) this.drop.add(w, i, r & (V4_DROP - 1)); else this.exception.add(w, i, r);
      return true;
    }
    if (((m[o + 6] & 0x3f) | m[o + 7]) !== 0 || this.fType !== RTN_UNICAST) return false;
    const val = this.fVal;
    let nh = val & FIB_INDEX_MASK;
    if ((val >>> 30) === FIB_GROUP) {
      const proto = m[o + 9];
      nh = this.ctx.shm.groupSelect(nh, flowHash4(rd32(m, o + 12), rd32(m, o + 16), proto, ports4(m, o, proto)));
      if (nh < 0) { this.exception.add(w, i, X_SHM_BUSY); return true; }
    }
    // SPD 'out': not when no out policy can match a packet of the in policy it matched (pOutDisjoint)
    const enc = this.encrypt;
    if (enc !== null && enc.spdActive(4) &&
      (enc.input.n !== 0 || (this.ipsec.pOutDisjoint[this.inPol] === 0 && !enc.leavesClear4(this.ctx.portVrf[w.port[i]], m, o)))) {
      enc.add(w, i, nh | AUX_DECRYPTED);
      return true;
    }
    const r4 = this.rewrite4, q = r4.input;
    if (q.n === VEC) r4.run();
    vmove(q, w, i, nh);
    return true;
  }

  /**
   * ipsecLocalDecrypt: true when the clear packet for this host at IP offset o (family fam, VRF vrf; not
   * from esp-decrypt) matches an 'in' policy that requires ESP or blocks — what Linux's own check would
   * refuse, which it no longer does for packets from a DPVI (disable_policy). IKE (UDP to port 500 or
   * 4500) passes, as the IKE daemon's per-socket bypass policies let it pass in Linux. `frag`: ports 0.
   */
  clearLocalBlocked(vrf: number, fam: number, m: Uint8Array, o: number, frag: boolean): boolean {
    const ips = this.ipsec;
    if (ips.npolIn === 0) return false;
    let proto: number, ports: number, f: number;
    if (fam === 4) {
      proto = m[o + 9];
      const hl = (m[o] & 15) << 2, tot = (m[o + 2] << 8) | m[o + 3];
      ports = frag ? 0 : portsAt(m, o + hl, o + tot, proto);
      if (proto === 17 && !frag && ((ports & 0xffff) === 500 || (ports & 0xffff) === 4500)) return false;
      f = ips.matchPolicy4(vrf, DIR_IN, rd32(m, o + 12), rd32(m, o + 16), proto, ports);
    } else {
      proto = frag ? m[o + 40] : m[o + 6];
      ports = frag ? 0 : portsAt(m, o + 40, o + 40 + ((m[o + 4] << 8) | m[o + 5]), proto);
      if (proto === 17 && !frag && ((ports & 0xffff) === 500 || (ports & 0xffff) === 4500)) return false;
      f = ips.matchPolicy6(vrf, DIR_IN, m, o, proto, ports);
    }
    if (f === POL_NONE) return false;
    if (ips.pAction[f] !== ACT_ALLOW) return true; // block, or a policy the fast path cannot apply: refuse clear text
    return ips.pBypass[f] === 0 && ips.pOptional[f] === 0;
  }

  /**
   * True when the tunnel-mode inner packet at m[p .. p+len) (next header nh) is for this host (FIB of the input port's
   * VRF). Sets `ticket` (AUX_FIB, else 0) and fVal / fType: the answer for a routed IPv4 packet (forward4, or
   * ipv4-lookup through a FibResolver.keep4 ticket).
   */
  private forThisHost(port: number, p: number, len: number, nh: number): boolean {
    const m = this.ctx.mem, fib = this.fib, vrf = this.ctx.portVrf[port];
    this.ticket = 0;
    let res: number;
    if (nh === 4 && len >= 20 && (m[p] >>> 4) === 4) {
      if (m[p + 16] >= 224) return true; // multicast / broadcast
      const hl = (m[p] & 15) << 2, proto = m[p + 9];
      const flow = fib.needsFlow(vrf, 4);
      if (flow) {
        fib.flow4.src = (m[p + 12] << 24) | (m[p + 13] << 16) | (m[p + 14] << 8) | m[p + 15];
        fib.setFlow(4, m[p + 1], proto, hl >= 20 ? portsAt(m, p + hl, p + len, proto) : 0, this.ctx.portName[port]);
      }
      res = fib.resolve4(vrf, (m[p + 16] << 24) | (m[p + 17] << 16) | (m[p + 18] << 8) | m[p + 19]);
      if (res === FOUND && !flow) {
        const t = fib.type;
        if (t === RTN_LOCAL || t === RTN_BROADCAST || t === RTN_MULTICAST || t === RTN_ANYCAST) return true;
        // not for this host: the answer (of the destination alone) goes with the packet (forward4, or ipv4-lookup)
        this.ticket = AUX_FIB;
        this.fVal = fib.value;
        this.fType = t;
        return false;
      }
    } else if (nh === 41 && len >= 40 && (m[p] >>> 4) === 6) {
      if (m[p + 24] === 0xff) return true;
      const d = this.d6;
      for (let k = 0; k < 4; k++) { const a = p + 24 + k * 4; d[k] = (m[a] << 24) | (m[a + 1] << 16) | (m[a + 2] << 8) | m[a + 3]; }
      if (fib.needsFlow(vrf, 6)) {
        const fs = fib.flow6.src as Uint32Array;
        for (let k = 0; k < 4; k++) { const a = p + 8 + k * 4; fs[k] = (m[a] << 24) | (m[a + 1] << 16) | (m[a + 2] << 8) | m[a + 3]; }
        fib.setFlow(6, ((m[p] & 15) << 4) | (m[p + 1] >>> 4), m[p + 6], portsAt(m, p + 40, p + len, m[p + 6]), this.ctx.portName[port]);
      }
      res = fib.resolve6(vrf, d);
    } else return false;
    if (res !== FOUND) return false;
    const t = fib.type;
    return t === RTN_LOCAL || t === RTN_BROADCAST || t === RTN_MULTICAST || t === RTN_ANYCAST;
  }

  /** Encrypts packet (SA s, ESP at e, encLen el) again with its own IV: its bytes become the received ones. */
  private reencrypt(s: number, e: number, el: number, hi: number): boolean {
    const ips = this.ipsec, m = this.ctx.mem, h = ips.saHandle[s], iv = ips.saIvLen[s], icv = ips.saIcvLen[s];
    try {
      if (iv === 8) {
        let aad = m.subarray(e, e + 8);
        if (ips.saEsn[s] === 1) {
          const a = this.aad12;
          for (let k = 0; k < 4; k++) { a[k] = m[e + k]; a[8 + k] = m[e + 4 + k]; }
          a[4] = hi >>> 24; a[5] = hi >>> 16; a[6] = hi >>> 8; a[7] = hi;
          aad = a;
        }
        return crypto.kat.gcm(h, true, m.subarray(e + 8, e + 16), aad, m.subarray(e + 16, e + 16 + el), m.subarray(e + 16 + el, e + 16 + el + icv));
      }
      if (iv === 16) return crypto.kat.cbc(h, true, m.subarray(e + 8, e + 24), m.subarray(e + 24, e + 24 + el));
      return iv === 0; // NULL encryption: nothing was changed
    } catch {
      return false;
    }
  }

  /** Tunnel mode: inner packet at m[p .. p+len); checks, ECN / DSCP, policy; sets w.off/len to the inner frame. -1: refused. */
  private decapTunnel(w: Vector, i: number, s: number, p: number, len: number, nh: number): number {
    const m = this.ctx.mem, ips = this.ipsec;
    const off = w.off[i], o = off + ETH_HLEN;
    const ofam = m[o] >>> 4, ifam = m[p] >>> 4;
    if (!((nh === 4 && ifam === 4 && len >= 20) || (nh === 41 && ifam === 6 && len >= 40))) return -1;
    const otc = ofam === 4 ? m[o + 1] : ((m[o] & 15) << 4) | (m[o + 1] >>> 4);
    const vrf = this.ctx.portVrf[w.port[i]];
    let k: number;
    if (ifam === 4) {
      const hl = (m[p] & 15) << 2, tot = (m[p + 2] << 8) | m[p + 3];
      const proto = m[p + 9];
      const src = this.dv.getInt32(p + 12), dst = this.dv.getInt32(p + 16);
      const ports = tot <= len && hl >= 20 && ips.nportSel !== 0 ? portsAt(m, p + hl, p + tot, proto) : 0;
      k = ips.matchPolicy4(vrf, DIR_IN, src, dst, proto, ports);
      if (k === POL_NONE) k = ips.matchPolicy4(vrf, DIR_FWD, src, dst, proto, ports);
    } else {
      const proto = m[p + 6], tot = 40 + ((m[p + 4] << 8) | m[p + 5]);
      const ports = tot <= len && ips.nportSel !== 0 ? portsAt(m, p + 40, p + tot, proto) : 0;
      k = ips.matchPolicy6(vrf, DIR_IN, m, p, proto, ports);
      if (k === POL_NONE) k = ips.matchPolicy6(vrf, DIR_FWD, m, p, proto, ports);
    }
    if (!this.policyOk(k, s, MODE_TUNNEL)) return -1;
    this.inPol = k;
    // ECN (Linux ipip_ecn_decapsulate / ipip6_ecn_decapsulate): outer CE -> inner CE when ECT; DSCP with DECAP_DSCP
    const dscp = (ips.saFlags[s] & XFRM_STATE_DECAP_DSCP) !== 0;
    const ce = (otc & 3) === 3;
    if (ifam === 4) {
      const old = m[p + 1];
      let tos = dscp ? (otc & 0xfc) | (old & 3) : old;
      if (ce && (tos & 3) !== 0) tos |= 3;
      if (tos !== old) {
        m[p + 1] = tos;
        const c = csumUpdate16((m[p + 10] << 8) | m[p + 11], (m[p] << 8) | old, (m[p] << 8) | tos);
        m[p + 10] = c >>> 8; m[p + 11] = c & 255;
      }
    } else {
      const old = ((m[p] & 15) << 4) | (m[p + 1] >>> 4);
      let tc = dscp ? (otc & 0xfc) | (old & 3) : old;
      if (ce && (tc & 3) !== 0) tc |= 3;
      if (tc !== old) { m[p] = 0x60 | (tc >>> 4); m[p + 1] = ((tc & 15) << 4) | (m[p + 1] & 15); }
    }
    const f = p - ETH_HLEN, dv = this.dv; // f >= off + 28 (IP header, ESP header, IV): the MACs do not overlap
    dv.setUint32(f, dv.getUint32(off)); dv.setUint32(f + 4, dv.getUint32(off + 4)); dv.setUint32(f + 8, dv.getUint32(off + 8));
    dv.setUint16(f + 12, ifam === 4 ? 0x0800 : 0x86dd);
    w.off[i] = f;
    w.len[i] = ETH_HLEN + len;
    return 0;
  }

  /** Transport mode: payload (upper layer, protocol nh) at m[p .. p+len); header moved up to it. -1: refused. */
  private decapTransport(w: Vector, i: number, s: number, p: number, len: number, nh: number): number {
    const m = this.ctx.mem, ips = this.ipsec;
    const off = w.off[i], o = off + ETH_HLEN;
    const fam = m[o] >>> 4, hl = fam === 4 ? (m[o] & 15) << 2 : 40;
    const h = p - hl, f = h - ETH_HLEN;
    m.copyWithin(f, off, o + hl); // Ethernet + IP header, moved towards the payload (memmove)
    const tot = hl + len;
    if (fam === 4) {
      m[h + 2] = tot >>> 8; m[h + 3] = tot; m[h + 9] = nh;
      ipv4SetChecksum(m, h, hl);
    } else {
      m[h + 4] = len >>> 8; m[h + 5] = len; m[h + 6] = nh;
    }
    w.off[i] = f;
    w.len[i] = ETH_HLEN + tot;
    const vrf = this.ctx.portVrf[w.port[i]];
    const ports = ips.nportSel !== 0 ? portsAt(m, p, p + len, nh) : 0;
    let k: number;
    if (fam === 4) {
      const src = (m[h + 12] << 24) | (m[h + 13] << 16) | (m[h + 14] << 8) | m[h + 15];
      const dst = (m[h + 16] << 24) | (m[h + 17] << 16) | (m[h + 18] << 8) | m[h + 19];
      k = ips.matchPolicy4(vrf, DIR_IN, src, dst, nh, ports);
      if (k === POL_NONE) k = ips.matchPolicy4(vrf, DIR_FWD, src, dst, nh, ports);
    } else {
      k = ips.matchPolicy6(vrf, DIR_IN, m, h, nh, ports);
      if (k === POL_NONE) k = ips.matchPolicy6(vrf, DIR_FWD, m, h, nh, ports);
    }
    if (k === POL_NONE) return 0; // transport mode without a policy: accepted (Linux: only tunnel SAs need one)
    return this.policyOk(k, s, MODE_TRANSPORT) ? 0 : -1;
  }

  private policyOk(k: number, s: number, mode: number): boolean {
    const ips = this.ipsec;
    if (k === POL_NONE || ips.pAction[k] !== ACT_ALLOW) return false;
    if (ips.pBypass[k] === 1) return mode === MODE_TRANSPORT; // Linux: only tunnel-mode states need a matching template
    if (ips.pMode[k] !== mode) return false;
    return ips.pReqid[k] === 0 || (ips.pReqid[k] >>> 0) === ips.saReqid[s];
  }
}
