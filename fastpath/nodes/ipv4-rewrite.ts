// ipv4-rewrite: next hop (aux) -> egress port and neighbour -> new Ethernet header, TTL - 1.
//   Every check happens BEFORE the packet is modified, so that exceptions carry the original frame:
//   next hop gone / entry busy -> exception 'shm-busy'; egress link not a fast-path port (or no
//   6-byte MAC) -> 'not-fp-port'; egress link admin down / next hop dead -> 'egress-down';
//   neighbour (the gateway, or the destination itself for a connected route; an IPv6 gateway for
//   RFC 5549 routes) missing, not REACHABLE/STALE/DELAY/PROBE/PERMANENT/NOARP or without a 6-byte
//   lladdr -> 'no-neighbour' (Linux resolves it; the entry syncs back); total length > egress MTU
//   (min of link MTU and route MTU) with DF -> 'frag-needed' (Linux sends ICMP frag needed).
//   Then: dst MAC = neighbour lladdr, src MAC = egress port MAC, TTL - 1 with an incremental
//   checksum update (RFC 1624), Ethernet padding trimmed; 'forwarded' counted on the input port.
//   Output: port-tx (aux = egress port), or ipv4-fragment (aux = egress | mtu << 16) when longer
//   than the MTU without DF.
// Neighbours used are marked hit (markNeighbourHit), about once per vector each (fastpath/adjacency.ts).

import { C_FORWARDED, PORT_STRIDE, exceptionReason } from '../../shared-mem/stats';
import { GW_V4, GW_V6, type Adjacency } from '../adjacency';
import { csumUpdate16 } from '../checksum';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { VEC, Vector } from '../vector';
import type { ExceptionNode } from './exception';
import type { Ipv4FragmentNode } from './ipv4-fragment';
import type { PortTxNode } from './port-tx';

const X_FRAG_NEEDED = exceptionReason('frag-needed');

export class Ipv4RewriteNode {
  readonly name = 'ipv4-rewrite';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  private readonly adj: Adjacency;
  tx!: PortTxNode;
  fragment!: Ipv4FragmentNode;
  exception!: ExceptionNode;

  constructor(ctx: FpContext, adj: Adjacency) {
    this.ctx = ctx;
    this.adj = adj;
  }

  run(): void {
    const v = this.input, ctx = this.ctx, m = ctx.mem, c = ctx.counters, adj = this.adj, exc = this.exception, tx = this.tx;
    const nhResult = adj.nhResult, nbResult = adj.nbResult, gwKind = adj.nhGwKind, gw = adj.nhGw;
    const srcMac = adj.nhSrcMac, dstMac = adj.nbMac, nhMtu = adj.nhMtu;
    adj.beginVector();
    for (let i = 0; i < v.n; i++) {
      const off = v.off[i], o = off + ETH_HLEN;
      const s = adj.nexthop(v.aux[i]);
      const egress = nhResult[s];
      if (egress < 0) { exc.add(v, i, -1 - egress); continue; }
      const gk = gwKind[s];
      let t: number;
      if (gk === GW_V4) t = adj.neighbour(s, 4, gw[s * 4], 0, 0, 0);
      else if (gk === GW_V6) t = adj.neighbour(s, 6, gw[s * 4], gw[s * 4 + 1], gw[s * 4 + 2], gw[s * 4 + 3]);
      else t = adj.neighbour(s, 4, rd32(m, o + 16), 0, 0, 0); // int32, like the cache keys
      const nr = nbResult[t];
      if (nr < 0) { exc.add(v, i, -1 - nr); continue; }
      const tot = (m[o + 2] << 8) | m[o + 3];
      const mtu = nhMtu[s];
      const frag = tot > mtu;
      if (frag && (m[o + 6] & 0x40) !== 0) { exc.add(v, i, X_FRAG_NEEDED); continue; }
      // --- from here on the packet is modified ---
      // TTL - 1: the 16-bit word (TTL, protocol) at o+8 goes down by 0x100
      const ttl = m[o + 8], old = (ttl << 8) | m[o + 9];
      m[o + 8] = ttl - 1;
      const hc = csumUpdate16((m[o + 10] << 8) | m[o + 11], old, old - 0x100);
      m[o + 10] = hc >>> 8;
      m[o + 11] = hc & 255;
      const d = t * 6, q = s * 6;
      m[off] = dstMac[d]; m[off + 1] = dstMac[d + 1]; m[off + 2] = dstMac[d + 2];
      m[off + 3] = dstMac[d + 3]; m[off + 4] = dstMac[d + 4]; m[off + 5] = dstMac[d + 5];
      m[off + 6] = srcMac[q]; m[off + 7] = srcMac[q + 1]; m[off + 8] = srcMac[q + 2];
      m[off + 9] = srcMac[q + 3]; m[off + 10] = srcMac[q + 4]; m[off + 11] = srcMac[q + 5];
      const len = ETH_HLEN + tot;
      c[v.port[i] * PORT_STRIDE + C_FORWARDED]++;
      if (frag) {
        const fq = this.fragment.input;
        if (fq.n === VEC) this.fragment.run();
        const j = fq.n++;
        fq.mbuf[j] = v.mbuf[i]; fq.off[j] = off; fq.len[j] = len; fq.port[j] = v.port[i]; fq.aux[j] = (egress | (mtu << 16)) >>> 0;
      } else tx.add(v.mbuf[i], off, len, v.port[i], egress);
    }
    v.n = 0;
  }
}
