// esp-decrypt (GraphOptions.ipsec): IPv4 protocol 50 to a local address (ipv4-lookup: route type
// local; the header was validated by ipv4-input: no options, not a fragment).
//   SAD (input port's VRF, outer destination, SPI, 50): none -> drop 'esp-bad-spi' (decided: Linux
//   would only drop it too, XfrmInNoStates, and handing unauthenticated traffic to the control plane
//   is a DoS vector); entry busy -> exception 'shm-busy'; an SA the fast path does not handle
//   (transport, NAT-T, IPv6, algorithm) -> exception 'ipsec-unsupported' (Linux decrypts it).
//   Too short for header + IV + 2 + ICV -> drop 'esp-truncated'.
//   Anti-replay (before decryption, RFC 4303 §3.4.3; ESN high bits inferred, appendix A) -> 'esp-replay'.
//   One decryptBurst per SA per vector; ICV failure -> 'esp-icv'; bad length for the cipher -> 'esp-truncated'.
//   The window is updated only after a good ICV (and checked again: duplicates inside one vector).
//   Trailer: pad length + 2 > payload -> 'esp-truncated'; next header other than 4 (IPv4) -> 'esp-policy'
//   (tunnel mode, IPv4 inner only).
//   Inner policy: the best-matching IPv4 'in' policy, or failing that 'fwd' policy, of the VRF for
//   the inner header must be allow with an ESP tunnel template whose reqid is 0 or the SA's;
//   otherwise -> drop 'esp-policy'.
//   Then: Ethernet header (the received one) re-written in front of the inner packet, which goes to
//   ipv4-input as if received on the same port (VRF).
// Per-SA counters: packets/bytes (good), errors (ICV, length, trailer, policy), replay.

import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { NOT_FOUND } from '../../shared-mem/reader';
import * as crypto from '../../native/crypto';
import { ETH_HLEN, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import {
  DIR_FWD, DIR_IN, IPPROTO_ESP, POL_NONE, SA_BUSY, SA_CTR_BYTES, SA_CTR_ERRORS, SA_CTR_PACKETS, SA_CTR_REPLAY, SA_CTR_STRIDE,
  SA_OK, SA_UNSUPPORTED, type IpsecState,
} from '../ipsec';
import { X_SHM_BUSY } from '../route';
import { VEC, vmove, vpush, Vector } from '../vector';
import type { DropNode } from './drop';
import { portsOf } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import type { Ipv4InputNode } from './ipv4-input';

const X_UNSUPPORTED = exceptionReason('ipsec-unsupported');
const D_REPLAY = dropReason('esp-replay');
const D_ICV = dropReason('esp-icv');
const D_BAD_SPI = dropReason('esp-bad-spi');
const D_TRUNCATED = dropReason('esp-truncated');
const D_POLICY = dropReason('esp-policy');
const D_CRYPTO = dropReason('esp-crypto-error');

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
  input4!: Ipv4InputNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, ipsec: IpsecState) {
    super(ctx);
    this.ipsec = ipsec;
  }

  add(v: Vector, i: number): void {
    const q = this.input;
    if (q.n === VEC) {
      if (this.running) { this.exception.add(v, i, X_UNSUPPORTED); return; } // bounded fan-in: not reached
      this.run();
    }
    vmove(q, v, i, 0);
  }

  run(): void {
    if (this.input.n === 0 || this.running) return;
    this.running = true;
    const w = this.work, q = this.input;
    for (let i = 0; i < q.n; i++) {
      w.mbuf[i] = q.mbuf[i]; w.off[i] = q.off[i]; w.len[i] = q.len[i]; w.port[i] = q.port[i]; w.aux[i] = q.aux[i];
    }
    w.n = q.n;
    q.n = 0;
    try { this.process(w); } finally { this.running = false; }
  }

  private process(w: Vector): void {
    const ctx = this.ctx, m = ctx.mem, shm = ctx.shm, ips = this.ipsec, exc = this.exception, drop = this.drop;
    const pSa = this.pSa, espOff = this.espOff, encLen = this.encLen, seqHi = this.seqHi, cnt = ips.saCounters;
    let nsas = 0;
    // pass 1: SA, lengths, replay pre-check
    for (let i = 0; i < w.n; i++) {
      pSa[i] = -1;
      const o = w.off[i] + ETH_HLEN, port = w.port[i];
      const hl = (m[o] & 15) << 2, tot = (m[o + 2] << 8) | m[o + 3];
      if (tot < hl + 8) { drop.add(w, i, D_TRUNCATED); continue; }
      const e = o + hl;
      const spi = (m[e] << 24) | (m[e + 1] << 16) | (m[e + 2] << 8) | m[e + 3];
      const dst = (m[o + 16] << 24) | (m[o + 17] << 16) | (m[o + 18] << 8) | m[o + 19];
      const s = shm.saLookup(ctx.portVrf[port], dst, spi, IPPROTO_ESP);
      if (s === NOT_FOUND) { drop.add(w, i, D_BAD_SPI); continue; }
      if (s < 0) { exc.add(w, i, X_SHM_BUSY); continue; }
      const st = ips.saUsable(s);
      if (st !== SA_OK) {
        if (st === SA_BUSY) exc.add(w, i, X_SHM_BUSY);
        else if (st === SA_UNSUPPORTED) exc.add(w, i, X_UNSUPPORTED);
        else drop.add(w, i, D_BAD_SPI);
        continue;
      }
      const cb = s * SA_CTR_STRIDE;
      const el = tot - hl - 8 - ips.saIvLen[s] - ips.saIcvLen[s];
      if (el < 2) { drop.add(w, i, D_TRUNCATED); cnt[cb + SA_CTR_ERRORS]++; continue; }
      const sn = (m[e + 4] << 24) | (m[e + 5] << 16) | (m[e + 6] << 8) | m[e + 7]; // int32
      const hi = ips.inferHi(s, sn);
      if (!ips.replayOk(s, hi, sn)) { drop.add(w, i, D_REPLAY); cnt[cb + SA_CTR_REPLAY]++; continue; }
      pSa[i] = s;
      espOff[i] = e;
      encLen[i] = el;
      seqHi[i] = hi;
      let seen = false;
      for (let j = 0; j < nsas; j++) if (this.sas[j] === s) { seen = true; break; }
      if (!seen) this.sas[nsas++] = s;
    }
    // pass 2: one decryptBurst per SA
    const status = this.status;
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
    // pass 3: replay update, trailer, inner policy, hand over to ipv4-input (in order)
    const out = this.input4.input;
    for (let i = 0; i < w.n; i++) {
      const s = pSa[i];
      if (s < 0) continue;
      const cb = s * SA_CTR_STRIDE, port = w.port[i];
      const st = status[i];
      if (st !== crypto.STATUS_OK) {
        cnt[cb + SA_CTR_ERRORS]++;
        drop.add(w, i, st === crypto.STATUS_BAD_ICV ? D_ICV : st === crypto.STATUS_BAD_LENGTH ? D_TRUNCATED : D_CRYPTO);
        continue;
      }
      const e = espOff[i], el = encLen[i];
      const sn = (m[e + 4] << 24) | (m[e + 5] << 16) | (m[e + 6] << 8) | m[e + 7]; // int32
      if (!ips.replayOk(s, seqHi[i] | 0, sn)) { drop.add(w, i, D_REPLAY); cnt[cb + SA_CTR_REPLAY]++; continue; }
      ips.replayUpdate(s, seqHi[i] | 0, sn);
      const p = e + 8 + ips.saIvLen[s]; // plaintext
      const padLen = m[p + el - 2], nh = m[p + el - 1];
      const innerLen = el - 2 - padLen;
      if (innerLen < 0) { drop.add(w, i, D_TRUNCATED); cnt[cb + SA_CTR_ERRORS]++; continue; }
      if (nh !== 4 || innerLen < 20 || (m[p] >>> 4) !== 4) { drop.add(w, i, D_POLICY); cnt[cb + SA_CTR_ERRORS]++; continue; }
      // inner policy check (ipv4-input validates the rest of the inner header afterwards)
      const proto = m[p + 9];
      const src = (m[p + 12] << 24) | (m[p + 13] << 16) | (m[p + 14] << 8) | m[p + 15];
      const dst = (m[p + 16] << 24) | (m[p + 17] << 16) | (m[p + 18] << 8) | m[p + 19];
      const ports = ((m[p + 2] << 8) | m[p + 3]) <= innerLen ? portsOf(m, p, proto) : 0;
      const vrf = ctx.portVrf[port];
      let k = ips.matchPolicy(vrf, DIR_IN, src, dst, proto, ports);
      if (k === POL_NONE) k = ips.matchPolicy(vrf, DIR_FWD, src, dst, proto, ports);
      if (k === POL_NONE || ips.pAction[k] !== 0 || ips.pBypass[k] === 1 ||
        (ips.pReqid[k] !== 0 && (ips.pReqid[k] >>> 0) !== ips.saReqid[s])) {
        drop.add(w, i, D_POLICY); cnt[cb + SA_CTR_ERRORS]++; continue;
      }
      cnt[cb + SA_CTR_PACKETS]++;
      cnt[cb + SA_CTR_BYTES] += el;
      const off = w.off[i], f = p - ETH_HLEN;
      for (let b = ETH_HLEN - 1; b >= 0; b--) m[f + b] = m[off + b]; // f > off: no overlap hazard either way
      if (out.n === VEC) this.input4.run();
      vpush(out, w.mbuf[i], f, ETH_HLEN + innerLen, port, 0);
    }
    w.n = 0;
  }
}
