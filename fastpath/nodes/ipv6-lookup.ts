// ipv6-lookup: the input port's VRF -> FIB (rules and tables, fastpath/fib.ts) -> next hop; the
// same route-type handling as ipv4-lookup (fastpath/route.ts: no route -> exception 'no-route',
// local/anycast/multicast -> 'local', blackhole -> drop, unreachable / prohibit -> exception, busy
// -> 'shm-busy'); ECMP member by the flow hash (addresses, next header, TCP/UDP/SCTP ports).
// Output: ipv6-rewrite with aux = next-hop index.
// With GraphOptions.ipsec: as ipv4-lookup (ESP or ESP in UDP to a local address -> esp-decrypt with
// aux 40 / 48; a routed packet of a VRF with IPv6 policies -> esp-encrypt). ESP fragments (aux
// AUX_FRAGMENT, only with reassembly): to a local address -> ipv6-reassembly (aux 40), otherwise ->
// exception 'ipv6-ext' (unchanged).

import { ETH_HLEN, rd32, type FpContext } from '../context';
import type { FibResolver } from '../fib';
import { GraphNode } from '../graph-node';
import { flowHash6, hasPorts } from '../hash';
import { FOUND } from '../fib';
import { X_SHM_BUSY, acceptRoute } from '../route';
import type { PacketSink } from '../reassembly';
import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { FIB_GROUP, FIB_INDEX_MASK, RTN_LOCAL } from '../route-types';
import { vcopyWithin, vmove, vswap, handOn } from '../vector';
import type { DropNode } from './drop';
import type { EspDecryptNode } from './esp-decrypt';
import { AUX_DECRYPTED, AUX_FRAGMENT, type EspEncryptNode } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import type { Ipv6RewriteNode } from './ipv6-rewrite';

const X_EXT = exceptionReason('ipv6-ext');
const D_CLEAR_IN = dropReason('ipsec-clear-in');

export class Ipv6LookupNode extends GraphNode {
  readonly name = 'ipv6-lookup';
  private readonly fib: FibResolver;
  private readonly dst = new Uint32Array(4);
  rewrite!: Ipv6RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;
  /** IPsec nodes (null: IPsec off). */
  espEncrypt: EspEncryptNode | null = null;
  espDecrypt: EspDecryptNode | null = null;
  encapPort: Uint8Array | null = null;
  /** ESP fragments to this box (aux AUX_FRAGMENT from ipv6-input) go here, with aux = 40. */
  reassembly: PacketSink | null = null;
  /** GraphOptions.ipsecLocalDecrypt: clear packets for this host checked against 'in' policies (esp-decrypt). */
  localInCheck = false;

  constructor(ctx: FpContext, fib: FibResolver) {
    super(ctx);
    this.fib = fib;
  }

  run(): void {
    const v = this.runVector, ctx = this.ctx, m = ctx.mem, shm = ctx.shm, fib = this.fib, exc = this.exception, drop = this.drop;
    vswap(this.input, v); // this run's packets (see GraphNode.runVector)
    const dst = this.dst;
    let j = 0; // packets for ipv6-rewrite stay in v, compacted to v[0 .. j) (aux = next hop)
    fib.beginVector();
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, port = v.port[i];
      const vrf = ctx.portVrf[port];
      dst[0] = rd32(m, o + 24); dst[1] = rd32(m, o + 28); dst[2] = rd32(m, o + 32); dst[3] = rd32(m, o + 36);
      const frag = (v.aux[i] & AUX_FRAGMENT) !== 0;
      // a fragment (Fragment header first, ipv6-input): the upper protocol from it, no ports (as Linux)
      const nxt = frag ? m[o + 40] : m[o + 6];
      const ports = !frag && hasPorts(nxt) && ((m[o + 4] << 8) | m[o + 5]) >= 4 ? rd32(m, o + 40) : 0;
      if (fib.needsFlow(vrf, 6)) {
        const src = fib.flow6.src as Uint32Array;
        src[0] = rd32(m, o + 8); src[1] = rd32(m, o + 12); src[2] = rd32(m, o + 16); src[3] = rd32(m, o + 20);
        fib.setFlow(6, ((m[o] & 15) << 4) | (m[o + 1] >>> 4), nxt, ports, ctx.portName[port]);
      }
      const res = fib.resolve6(vrf, dst);
      const esp = this.espEncrypt;
      if (this.localInCheck && res === FOUND && fib.type === RTN_LOCAL && (v.aux[i] & AUX_DECRYPTED) === 0 && nxt !== 50 &&
        (this.espDecrypt as EspDecryptNode).clearLocalBlocked(vrf, 6, m, o, frag)) { drop.add(v, i, D_CLEAR_IN); continue; }
      if (frag && res === FOUND && fib.type === RTN_LOCAL) { // for this box: ESP -> reassembly (IPsec), else Linux
        const rs = this.reassembly;
        if (rs === null || nxt !== 50 || esp === null) { exc.add(v, i, X_EXT); continue; }
        vmove(rs.input, v, i, 40);
        rs.run(); // at once: the completed ESP packet keeps its place in esp-decrypt's queue (see ipv4-lookup)
        continue;
      }
      // a transit fragment goes on like any packet (forwarded as it is)
      if (esp !== null && res === FOUND && fib.type === RTN_LOCAL) {
        if (nxt === 50) { (this.espDecrypt as EspDecryptNode).add(v, i, 40); continue; }
        if (nxt === 17 && (this.encapPort as Uint8Array)[ports & 0xffff] === 1) {
          const u = o + 48, plen = ((m[o + 4] << 8) | m[o + 5]) - 8;
          if (plen >= 4 && (m[u] | m[u + 1] | m[u + 2] | m[u + 3]) !== 0) { (this.espDecrypt as EspDecryptNode).add(v, i, 48); continue; }
        }
      }
      if (!acceptRoute(fib, res, v, i, exc, drop)) continue;
      const val = fib.value; // int32
      const nh = (val >>> 30) === FIB_GROUP ? shm.groupSelect(val & FIB_INDEX_MASK, flowHash6(m, o, nxt, ports)) : val & FIB_INDEX_MASK;
      if (nh < 0) { exc.add(v, i, X_SHM_BUSY); continue; }
      if (esp !== null && esp.spdActive(6)) { esp.add(v, i, nh | (v.aux[i] & (AUX_DECRYPTED | AUX_FRAGMENT))); continue; }
      if (j !== i) vcopyWithin(v, j, i);
      v.aux[j++] = nh;
    }
    v.n = j;
    // hand the vector to ipv6-rewrite (its earlier packets first)
    handOn(v, this.rewrite);
  }
}
