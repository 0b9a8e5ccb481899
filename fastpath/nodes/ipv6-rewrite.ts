// ipv6-rewrite: like ipv4-rewrite (checks first, so exceptions carry the original frame): next hop
// -> egress port ('shm-busy', 'not-fp-port', 'egress-down'), neighbour (gateway, or the destination
// for a connected route) -> 'no-neighbour'; 40 + payload length > egress MTU -> exception 'too-big'
// (Linux sends packet too big; routers never fragment IPv6). Then MACs, hop limit - 1 (no header
// checksum in IPv6), padding trimmed, 'forwarded' counted. Output: port-tx (aux = egress port).

import { C_FORWARDED, PORT_STRIDE, exceptionReason } from '../../shared-mem/stats';
import type { Adjacency } from '../adjacency';
import { ETH_HLEN, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import type { ExceptionNode } from './exception';
import type { PortTxNode } from './port-tx';

const X_TOO_BIG = exceptionReason('too-big');

export class Ipv6RewriteNode extends GraphNode {
  readonly name = 'ipv6-rewrite';
  private readonly adj: Adjacency;
  tx!: PortTxNode;
  exception!: ExceptionNode;

  constructor(ctx: FpContext, adj: Adjacency) {
    super(ctx);
    this.adj = adj;
  }

  run(): void {
    const v = this.input, ctx = this.ctx, m = ctx.mem, c = ctx.counters, adj = this.adj, exc = this.exception;
    const nhResult = adj.nhResult, nhMtu = adj.nhMtu;
    adj.beginVector();
    for (let i = 0; i < v.n; i++) {
      const off = v.off[i], o = off + ETH_HLEN;
      const t = adj.resolve(v.aux[i], 6, m, o);
      if (t < 0) { exc.add(v, i, -1 - t); continue; }
      const s = adj.nhSlot;
      const tot = 40 + ((m[o + 4] << 8) | m[o + 5]);
      if (tot > nhMtu[s]) { exc.add(v, i, X_TOO_BIG); continue; }
      // --- from here on the packet is modified ---
      m[o + 7]--;
      adj.writeMacs(m, off, s, t);
      const port = v.port[i];
      c[port * PORT_STRIDE + C_FORWARDED]++;
      this.tx.add(v.mbuf[i], off, ETH_HLEN + tot, port, nhResult[s]);
    }
    v.n = 0;
  }
}
