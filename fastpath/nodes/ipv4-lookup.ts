// ipv4-lookup: the input port's VRF -> FIB (rules and tables, fastpath/fib.ts) -> next hop.
//   no route -> exception 'no-route' (Linux answers ICMP unreachable); route / rule types:
//   unicast goes on; local, broadcast, multicast, anycast -> exception 'local'; blackhole -> drop
//   'blackhole'; unreachable / prohibit -> exception of that name; others -> 'route-type';
//   shm entry busy -> exception 'shm-busy'.
//   ECMP group -> member chosen by the flow hash (addresses, protocol, TCP/UDP/SCTP ports).
// Output: ipv4-rewrite with aux = next-hop index.

import { FIB_GROUP, FIB_INDEX_MASK, RTN_ANYCAST, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_PROHIBIT,
  RTN_UNICAST, RTN_UNREACHABLE } from '../route-types';
import { RESOLVE_BLACKHOLE, RESOLVE_NONE, RESOLVE_PROHIBIT, RESOLVE_UNREACHABLE } from '../../shared-mem/reader';
import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { FOUND, type FibResolver } from '../fib';
import { flowHash4, hasPorts } from '../hash';
import { VEC, Vector } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';
import type { Ipv4RewriteNode } from './ipv4-rewrite';

const D_BLACKHOLE = dropReason('blackhole');
const X_NO_ROUTE = exceptionReason('no-route');
const X_LOCAL = exceptionReason('local');
const X_UNREACHABLE = exceptionReason('unreachable');
const X_PROHIBIT = exceptionReason('prohibit');
const X_ROUTE_TYPE = exceptionReason('route-type');
const X_SHM_BUSY = exceptionReason('shm-busy');

export class Ipv4LookupNode {
  readonly name = 'ipv4-lookup';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  private readonly fib: FibResolver;
  rewrite!: Ipv4RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, fib: FibResolver) {
    this.ctx = ctx;
    this.fib = fib;
  }

  run(): void {
    const v = this.input, ctx = this.ctx, m = ctx.mem, shm = ctx.shm, fib = this.fib, exc = this.exception;
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
        const f = fib.flow4;
        f.src = rd32(m, o + 12);
        f.tos = m[o + 1] & 0x1c;
        f.proto = proto;
        f.sport = ports >>> 16;
        f.dport = ports & 0xffff;
        f.iif = ctx.portName[port];
      }
      const res = fib.resolve4(vrf, dst);
      if (res !== FOUND) {
        const val = res;
        if (val === RESOLVE_NONE) exc.add(v, i, X_NO_ROUTE);
        else if (val === RESOLVE_BLACKHOLE) this.drop.add(v, i, D_BLACKHOLE);
        else if (val === RESOLVE_UNREACHABLE) exc.add(v, i, X_UNREACHABLE);
        else if (val === RESOLVE_PROHIBIT) exc.add(v, i, X_PROHIBIT);
        else exc.add(v, i, X_SHM_BUSY);
        continue;
      }
      const val = fib.value; // int32
      const type = shm.fibType(val);
      if (type !== RTN_UNICAST) {
        if (type === RTN_LOCAL || type === RTN_BROADCAST || type === RTN_MULTICAST || type === RTN_ANYCAST) exc.add(v, i, X_LOCAL);
        else if (type === RTN_BLACKHOLE) this.drop.add(v, i, D_BLACKHOLE);
        else if (type === RTN_UNREACHABLE) exc.add(v, i, X_UNREACHABLE);
        else if (type === RTN_PROHIBIT) exc.add(v, i, X_PROHIBIT);
        else exc.add(v, i, X_ROUTE_TYPE);
        continue;
      }
      let nh: number;
      if ((val >>> 30) === FIB_GROUP) {
        nh = shm.groupSelect(val & FIB_INDEX_MASK, flowHash4(rd32(m, o + 12), dst, proto, ports));
        if (nh < 0) { exc.add(v, i, X_SHM_BUSY); continue; }
      } else nh = val & FIB_INDEX_MASK;
      if (out.n === VEC) this.rewrite.run();
      const j = out.n++;
      out.mbuf[j] = v.mbuf[i]; out.off[j] = v.off[i]; out.len[j] = v.len[i]; out.port[j] = port; out.aux[j] = nh;
    }
    v.n = 0;
  }
}
