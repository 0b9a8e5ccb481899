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
import type { Adjacency } from '../adjacency';
import { csumUpdate16 } from '../checksum';
import { ETH_HLEN, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import { VEC, vpush } from '../vector';
import type { ExceptionNode } from './exception';
import type { Ipv4FragmentNode } from './ipv4-fragment';
import type { PortTxNode } from './port-tx';

const X_FRAG_NEEDED = exceptionReason('frag-needed');

export class Ipv4RewriteNode extends GraphNode {
  readonly name = 'ipv4-rewrite';
  private readonly adj: Adjacency;
  tx!: PortTxNode;
  fragment!: Ipv4FragmentNode;
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
      const t = adj.resolve(v.aux[i], 4, m, o);
      if (t < 0) { exc.add(v, i, -1 - t); continue; }
      const s = adj.nhSlot;
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
      adj.writeMacs(m, off, s, t);
      const len = ETH_HLEN + tot, port = v.port[i], egress = nhResult[s];
      c[port * PORT_STRIDE + C_FORWARDED]++;
      if (frag) {
        const fq = this.fragment.input;
        if (fq.n === VEC) this.fragment.run();
        vpush(fq, v.mbuf[i], off, len, port, (egress | (mtu << 16)) >>> 0);
      } else this.tx.add(v.mbuf[i], off, len, port, egress);
    }
    v.n = 0;
  }
}
