// ipv6-rewrite: like ipv4-rewrite (checks first, so exceptions carry the original frame): next hop
// -> egress port ('shm-busy', 'not-fp-port', 'egress-down'), neighbour (gateway, or the destination
// for a connected route) -> 'no-neighbour'; 40 + payload length > egress MTU -> exception 'too-big'
// (Linux sends packet too big; routers never fragment IPv6). Then MACs, hop limit - 1 (no header
// checksum in IPv6), padding trimmed, 'forwarded' counted. Output: port-tx (aux = egress port).

import { C_FORWARDED, PORT_STRIDE, exceptionReason } from '../../shared-mem/stats';
import { GW_V4, type Adjacency } from '../adjacency';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { Vector } from '../vector';
import type { ExceptionNode } from './exception';
import type { PortTxNode } from './port-tx';

const X_TOO_BIG = exceptionReason('too-big');

export class Ipv6RewriteNode {
  readonly name = 'ipv6-rewrite';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  private readonly adj: Adjacency;
  tx!: PortTxNode;
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
      if (gk === GW_V4) t = adj.neighbour(s, 4, gw[s * 4], 0, 0, 0); // an IPv4 gateway for an IPv6 route: not in Linux, harmless
      else if (gk !== 0) t = adj.neighbour(s, 6, gw[s * 4], gw[s * 4 + 1], gw[s * 4 + 2], gw[s * 4 + 3]);
      else t = adj.neighbour(s, 6, rd32(m, o + 24), rd32(m, o + 28), rd32(m, o + 32), rd32(m, o + 36));
      const nr = nbResult[t];
      if (nr < 0) { exc.add(v, i, -1 - nr); continue; }
      const tot = 40 + ((m[o + 4] << 8) | m[o + 5]);
      if (tot > nhMtu[s]) { exc.add(v, i, X_TOO_BIG); continue; }
      // --- from here on the packet is modified ---
      m[o + 7]--;
      const d = t * 6, q = s * 6;
      m[off] = dstMac[d]; m[off + 1] = dstMac[d + 1]; m[off + 2] = dstMac[d + 2];
      m[off + 3] = dstMac[d + 3]; m[off + 4] = dstMac[d + 4]; m[off + 5] = dstMac[d + 5];
      m[off + 6] = srcMac[q]; m[off + 7] = srcMac[q + 1]; m[off + 8] = srcMac[q + 2];
      m[off + 9] = srcMac[q + 3]; m[off + 10] = srcMac[q + 4]; m[off + 11] = srcMac[q + 5];
      c[v.port[i] * PORT_STRIDE + C_FORWARDED]++;
      tx.add(v.mbuf[i], off, ETH_HLEN + tot, v.port[i], egress);
    }
    v.n = 0;
  }
}
