// ipv6-lookup: the input port's VRF -> FIB (rules and tables, fastpath/fib.ts) -> next hop; the
// same route-type handling as ipv4-lookup (fastpath/route.ts: no route -> exception 'no-route',
// local/anycast/multicast -> 'local', blackhole -> drop, unreachable / prohibit -> exception, busy
// -> 'shm-busy'); ECMP member by the flow hash (addresses, next header, TCP/UDP/SCTP ports).
// Output: ipv6-rewrite with aux = next-hop index.

import { ETH_HLEN, rd32, type FpContext } from '../context';
import type { FibResolver } from '../fib';
import { GraphNode } from '../graph-node';
import { flowHash6, hasPorts } from '../hash';
import { X_SHM_BUSY, acceptRoute } from '../route';
import { FIB_GROUP, FIB_INDEX_MASK } from '../route-types';
import { VEC, vmove } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';
import type { Ipv6RewriteNode } from './ipv6-rewrite';

export class Ipv6LookupNode extends GraphNode {
  readonly name = 'ipv6-lookup';
  private readonly fib: FibResolver;
  private readonly dst = new Uint32Array(4);
  rewrite!: Ipv6RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, fib: FibResolver) {
    super(ctx);
    this.fib = fib;
  }

  run(): void {
    const v = this.input, ctx = this.ctx, m = ctx.mem, shm = ctx.shm, fib = this.fib, exc = this.exception, drop = this.drop;
    const out = this.rewrite.input, dst = this.dst;
    fib.beginVector();
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, port = v.port[i];
      const vrf = ctx.portVrf[port];
      dst[0] = rd32(m, o + 24); dst[1] = rd32(m, o + 28); dst[2] = rd32(m, o + 32); dst[3] = rd32(m, o + 36);
      const nxt = m[o + 6];
      const ports = hasPorts(nxt) && ((m[o + 4] << 8) | m[o + 5]) >= 4 ? rd32(m, o + 40) : 0;
      if (fib.needsFlow(vrf, 6)) {
        const src = fib.flow6.src as Uint32Array;
        src[0] = rd32(m, o + 8); src[1] = rd32(m, o + 12); src[2] = rd32(m, o + 16); src[3] = rd32(m, o + 20);
        fib.setFlow(6, ((m[o] & 15) << 4) | (m[o + 1] >>> 4), nxt, ports, ctx.portName[port]);
      }
      if (!acceptRoute(fib, fib.resolve6(vrf, dst), v, i, exc, drop)) continue;
      const val = fib.value; // int32
      const nh = (val >>> 30) === FIB_GROUP ? shm.groupSelect(val & FIB_INDEX_MASK, flowHash6(m, o, nxt, ports)) : val & FIB_INDEX_MASK;
      if (nh < 0) { exc.add(v, i, X_SHM_BUSY); continue; }
      if (out.n === VEC) this.rewrite.run();
      vmove(out, v, i, nh);
    }
    v.n = 0;
  }
}
