// ipv6-lookup: the input port's VRF -> FIB (rules and tables, fastpath/fib.ts) -> next hop; the
// same route-type handling as ipv4-lookup (no route -> exception 'no-route', local/anycast/multicast
// -> 'local', blackhole -> drop, unreachable / prohibit -> exception, busy -> 'shm-busy'); ECMP
// member by the flow hash (addresses, next header, TCP/UDP/SCTP ports).
// Output: ipv6-rewrite with aux = next-hop index.

import { RESOLVE_BLACKHOLE, RESOLVE_NONE, RESOLVE_PROHIBIT, RESOLVE_UNREACHABLE } from '../../shared-mem/reader';
import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { FOUND, type FibResolver } from '../fib';
import { flowHash6, hasPorts } from '../hash';
import { FIB_GROUP, FIB_INDEX_MASK, RTN_ANYCAST, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_PROHIBIT,
  RTN_UNICAST, RTN_UNREACHABLE } from '../route-types';
import { VEC, Vector } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';
import type { Ipv6RewriteNode } from './ipv6-rewrite';

const D_BLACKHOLE = dropReason('blackhole');
const X_NO_ROUTE = exceptionReason('no-route');
const X_LOCAL = exceptionReason('local');
const X_UNREACHABLE = exceptionReason('unreachable');
const X_PROHIBIT = exceptionReason('prohibit');
const X_ROUTE_TYPE = exceptionReason('route-type');
const X_SHM_BUSY = exceptionReason('shm-busy');

export class Ipv6LookupNode {
  readonly name = 'ipv6-lookup';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  private readonly fib: FibResolver;
  private readonly dst = new Uint32Array(4);
  rewrite!: Ipv6RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext, fib: FibResolver) {
    this.ctx = ctx;
    this.fib = fib;
  }

  run(): void {
    const v = this.input, ctx = this.ctx, m = ctx.mem, shm = ctx.shm, fib = this.fib, exc = this.exception;
    const out = this.rewrite.input, dst = this.dst;
    fib.beginVector();
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, port = v.port[i];
      const vrf = ctx.portVrf[port];
      dst[0] = rd32(m, o + 24); dst[1] = rd32(m, o + 28); dst[2] = rd32(m, o + 32); dst[3] = rd32(m, o + 36);
      const nxt = m[o + 6];
      const ports = hasPorts(nxt) && ((m[o + 4] << 8) | m[o + 5]) >= 4 ? rd32(m, o + 40) : 0;
      if (fib.needsFlow(vrf, 6)) {
        const f = fib.flow6, src = f.src as Uint32Array;
        src[0] = rd32(m, o + 8); src[1] = rd32(m, o + 12); src[2] = rd32(m, o + 16); src[3] = rd32(m, o + 20);
        f.tos = ((((m[o] & 15) << 4) | (m[o + 1] >>> 4)) & 0x1c);
        f.proto = nxt;
        f.sport = ports >>> 16;
        f.dport = ports & 0xffff;
        f.iif = ctx.portName[port];
      }
      const res = fib.resolve6(vrf, dst);
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
        nh = shm.groupSelect(val & FIB_INDEX_MASK, flowHash6(m, o, nxt, ports));
        if (nh < 0) { exc.add(v, i, X_SHM_BUSY); continue; }
      } else nh = val & FIB_INDEX_MASK;
      if (out.n === VEC) this.rewrite.run();
      const j = out.n++;
      out.mbuf[j] = v.mbuf[i]; out.off[j] = v.off[i]; out.len[j] = v.len[i]; out.port[j] = port; out.aux[j] = nh;
    }
    v.n = 0;
  }
}
