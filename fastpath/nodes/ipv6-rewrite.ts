// ipv6-rewrite: like ipv4-rewrite (checks first, so exceptions carry the original frame): next hop
// -> egress port ('shm-busy', 'not-fp-port', 'egress-down'), neighbour (gateway, or the destination
// for a connected route) -> 'no-neighbour'; 40 + payload length > egress MTU -> exception 'too-big'
// (Linux sends packet too big; routers never fragment IPv6). Then MACs, hop limit - 1 (no header
// checksum in IPv6), padding trimmed, 'forwarded' counted. Output: port-tx (aux = egress port).

import { C_FORWARDED, PORT_STRIDE, exceptionReason } from '../../shared-mem/stats';
import { GW_NONE, type Adjacency } from '../adjacency';
import { ETH_HLEN, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import type { ExceptionNode } from './exception';
import type { PortTxNode } from './port-tx';
import { vcopyWithin, vswap, handOn } from '../vector';

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
    const v = this.runVector, ctx = this.ctx, m = ctx.mem, c = ctx.counters, adj = this.adj, exc = this.exception;
    vswap(this.input, v); // this run's packets (see GraphNode.runVector)
    const nhResult = adj.nhResult, nhMtu = adj.nhMtu;
    adj.beginVector();
    // The previous packet's answer when it had the same next hop with a gateway (any gateway kind:
    // for IPv6 an empty one counts as ::), as in ipv4-rewrite.
    let lastNh = -1, lastT = 0, lastS = 0;
    let j = 0; // packets for port-tx stay in v, compacted to v[0 .. j) (aux = egress port, len trimmed)
    let fport = -1, fwd = 0; // 'forwarded' summed over runs of packets of one input port
    for (let i = 0; i < v.n; i++) {
      const off = v.off[i], o = off + ETH_HLEN, nh = v.aux[i];
      let t: number, s: number;
      if (nh === lastNh) { t = lastT; s = lastS; }
      else {
        t = adj.resolve(nh, 6, m, o);
        s = adj.nhSlot;
        lastNh = nhResult[s] >= 0 && adj.nhGwKind[s] !== GW_NONE ? nh : -1;
        lastT = t; lastS = s;
      }
      if (t < 0) { exc.add(v, i, -1 - t); continue; }
      const tot = 40 + ((m[o + 4] << 8) | m[o + 5]);
      if (tot > nhMtu[s]) { exc.add(v, i, X_TOO_BIG); continue; }
      // --- from here on the packet is modified ---
      m[o + 7]--;
      adj.writeMacs(m, off, s, t);
      const port = v.port[i];
      if (port !== fport) { if (fport >= 0) c[fport * PORT_STRIDE + C_FORWARDED] += fwd; fport = port; fwd = 0; }
      fwd++;
      if (j !== i) vcopyWithin(v, j, i);
      v.len[j] = ETH_HLEN + tot;
      v.aux[j++] = nhResult[s];
    }
    if (fport >= 0) c[fport * PORT_STRIDE + C_FORWARDED] += fwd;
    v.n = j;
    // hand the vector to port-tx (its earlier packets first)
    handOn(v, this.tx);
  }
}
