// ipv4-lookup: the input port's VRF -> FIB (rules and tables, fastpath/fib.ts) -> next hop.
//   no route -> exception 'no-route' (Linux answers ICMP unreachable); route / rule types:
//   unicast goes on; local, broadcast, multicast, anycast -> exception 'local'; blackhole -> drop
//   'blackhole'; unreachable / prohibit -> exception of that name; others -> 'route-type';
//   shm entry busy -> exception 'shm-busy' (fastpath/route.ts).
//   ECMP group -> member chosen by the flow hash (addresses, protocol, TCP/UDP/SCTP ports).
// Output: ipv4-rewrite with aux = next-hop index.
// With GraphOptions.ipsec (off by default): protocol 50 to a local address -> esp-decrypt; a routed
// packet -> esp-encrypt (SPD 'out' check) unless it is an outer packet esp-encrypt built (aux 1).

import { ETH_HLEN, rd32, type FpContext } from '../context';
import type { FibResolver } from '../fib';
import { GraphNode } from '../graph-node';
import { flowHash4, hasPorts } from '../hash';
import { FOUND } from '../fib';
import { X_SHM_BUSY, acceptRoute } from '../route';
import { FIB_GROUP, FIB_INDEX_MASK, RTN_LOCAL } from '../route-types';
import { VEC, vmove } from '../vector';
import type { DropNode } from './drop';
import type { EspDecryptNode } from './esp-decrypt';
import type { EspEncryptNode } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import type { Ipv4RewriteNode } from './ipv4-rewrite';

export class Ipv4LookupNode extends GraphNode {
  readonly name = 'ipv4-lookup';
  private readonly fib: FibResolver;
  rewrite!: Ipv4RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;
  /** IPsec nodes (null: IPsec off, the default). */
  espEncrypt: EspEncryptNode | null = null;
  espDecrypt: EspDecryptNode | null = null;

  constructor(ctx: FpContext, fib: FibResolver) {
    super(ctx);
    this.fib = fib;
  }

  run(): void {
    const v = this.input, ctx = this.ctx, m = ctx.mem, shm = ctx.shm, fib = this.fib, exc = this.exception, drop = this.drop;
    const out = this.rewrite.input;
    fib.beginVector();
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, port = v.port[i];
      const vrf = ctx.portVrf[port];
      const dst = rd32(m, o + 16);
      const proto = m[o + 9];
      const hl = (m[o] & 15) << 2;
      const ports = hasPorts(proto) && ((m[o + 2] << 8) | m[o + 3]) >= hl + 4 ? rd32(m, o + hl) : 0;
      if (fib.needsFlow(vrf, 4)) {
        fib.flow4.src = rd32(m, o + 12);
        fib.setFlow(4, m[o + 1], proto, ports, ctx.portName[port]);
      }
      const res = fib.resolve4(vrf, dst);
      const esp = this.espEncrypt;
      if (esp !== null && proto === 50 && res === FOUND && fib.type === RTN_LOCAL && v.aux[i] === 0) {
        (this.espDecrypt as EspDecryptNode).add(v, i);
        continue;
      }
      if (!acceptRoute(fib, res, v, i, exc, drop)) continue;
      const val = fib.value; // int32
      const nh = (val >>> 30) === FIB_GROUP ? shm.groupSelect(val & FIB_INDEX_MASK, flowHash4(rd32(m, o + 12), dst, proto, ports)) : val & FIB_INDEX_MASK;
      if (nh < 0) { exc.add(v, i, X_SHM_BUSY); continue; }
      if (esp !== null && v.aux[i] === 0 && esp.spdActive()) { esp.add(v, i, nh); continue; }
      if (out.n === VEC) this.rewrite.run();
      vmove(out, v, i, nh);
    }
    v.n = 0;
  }
}
