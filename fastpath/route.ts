// What the lookup nodes do with a FIB answer (fib.ts), the same for IPv4 and IPv6: a unicast route
// goes on; no route -> exception 'no-route' (Linux answers ICMP unreachable); route / rule types:
// local, broadcast, multicast, anycast -> exception 'local'; blackhole -> drop 'blackhole';
// unreachable / prohibit -> exception of that name; other types -> 'route-type'; shm entry busy ->
// 'shm-busy'. (The next hop is then the FIB value's own, or the ECMP group member the flow hash picks.)

import { RESOLVE_BLACKHOLE, RESOLVE_NONE, RESOLVE_PROHIBIT, RESOLVE_UNREACHABLE } from '../shared-mem/reader';
import { dropReason, exceptionReason } from '../shared-mem/stats';
import { FOUND, type FibResolver } from './fib';
import type { DropNode } from './nodes/drop';
import type { ExceptionNode } from './nodes/exception';
import { RTN_ANYCAST, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_PROHIBIT,
  RTN_UNICAST, RTN_UNREACHABLE } from './route-types';
import type { Vector } from './vector';

const D_BLACKHOLE = dropReason('blackhole');
const X_NO_ROUTE = exceptionReason('no-route');
const X_LOCAL = exceptionReason('local');
const X_UNREACHABLE = exceptionReason('unreachable');
const X_PROHIBIT = exceptionReason('prohibit');
const X_ROUTE_TYPE = exceptionReason('route-type');
export const X_SHM_BUSY = exceptionReason('shm-busy');

/**
 * `res`: what fib.resolve4/6 returned for packet i of v. True for a unicast route (its FIB value is
 * fib.value, int32); otherwise the packet has been handed to exc or drop, and false.
 */
export function acceptRoute(fib: FibResolver, res: number, v: Vector, i: number, exc: ExceptionNode, drop: DropNode): boolean {
  const type = res === FOUND ? fib.type : -1;
  if (type === RTN_UNICAST) return true;
  rejectRoute(res, type, v, i, exc, drop);
  return false;
}

/** The rest of acceptRoute (kept out of it so that it stays small enough to be inlined). */
function rejectRoute(res: number, type: number, v: Vector, i: number, exc: ExceptionNode, drop: DropNode): void {
  if (res !== FOUND) {
    if (res === RESOLVE_NONE) exc.add(v, i, X_NO_ROUTE);
    else if (res === RESOLVE_BLACKHOLE) drop.add(v, i, D_BLACKHOLE);
    else if (res === RESOLVE_UNREACHABLE) exc.add(v, i, X_UNREACHABLE);
    else if (res === RESOLVE_PROHIBIT) exc.add(v, i, X_PROHIBIT);
    else exc.add(v, i, X_SHM_BUSY);
  } else if (type === RTN_LOCAL || type === RTN_BROADCAST || type === RTN_MULTICAST || type === RTN_ANYCAST) exc.add(v, i, X_LOCAL);
  else if (type === RTN_BLACKHOLE) drop.add(v, i, D_BLACKHOLE);
  else if (type === RTN_UNREACHABLE) exc.add(v, i, X_UNREACHABLE);
  else if (type === RTN_PROHIBIT) exc.add(v, i, X_PROHIBIT);
  else exc.add(v, i, X_ROUTE_TYPE);
}
