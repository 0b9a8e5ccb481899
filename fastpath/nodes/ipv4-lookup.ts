// ipv4-lookup: the input port's VRF -> FIB (rules and tables, fastpath/fib.ts) -> next hop.
//   no route -> exception 'no-route' (Linux answers ICMP unreachable); route / rule types:
//   unicast goes on; local, broadcast, multicast, anycast -> exception 'local'; blackhole -> drop
//   'blackhole'; unreachable / prohibit -> exception of that name; others -> 'route-type';
//   shm entry busy -> exception 'shm-busy' (fastpath/route.ts).
//   ECMP group -> member chosen by the flow hash (addresses, protocol, TCP/UDP/SCTP ports).
// Output: ipv4-rewrite with aux = next-hop index.
// With GraphOptions.ipsec: to a local address, protocol 50 -> esp-decrypt (aux = IHL*4), UDP to an
// SA's encap port (NAT-T, RFC 3948) with a first payload word not zero -> esp-decrypt (aux = IHL*4 +
// 8); NAT-T keepalives (one byte 0xff) and non-ESP-marker packets (IKE) go to Linux ('local'); a
// routed packet -> esp-encrypt when there are IPv4 policies (fwd clear-text check, SPD 'out'; the vector is
// handed on whole, as to ipv4-rewrite), with aux = next hop | the AUX_DECRYPTED mark ipv4-input passed on |
// AUX_FRAGMENT (ports 0 for the SPD, as Linux). Fragments (aux AUX_FRAGMENT from
// ipv4-input): to a local address, ESP with IPsec -> ipv4-reassembly (aux = IHL*4; the whole ESP
// packet then goes to esp-decrypt), anything else -> exception 'fragment' (Linux reassembles); in
// transit -> forwarded as they are, with ports 0 for the ECMP hash and rules (as Linux).
// Inbound ESP shortcuts: the ESP packets of a vector to the (VRF, destination) of the previous one that
// went to esp-decrypt follow it without a FIB lookup (the answer of this vector, through a rule plan);
// a decrypted packet marked AUX_FIB (esp-decrypt resolved its destination) takes that answer when
// FibResolver.reuse4 still vouches for it (same packet, same shm generation), else it is resolved.

import { ETH_HLEN, rd32, type FpContext } from '../context';
import type { FibResolver } from '../fib';
import { GraphNode } from '../graph-node';
import { flowHash4, ports4 } from '../hash';
import { FOUND } from '../fib';
import { X_SHM_BUSY, acceptRoute } from '../route';
import type { PacketSink } from '../reassembly';
import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { FIB_GROUP, FIB_INDEX_MASK, RTN_LOCAL } from '../route-types';
import { vcopyWithin, vmove, vswap, handOn } from '../vector';
import type { DropNode } from './drop';
import type { EspDecryptNode } from './esp-decrypt';
import { AUX_DECRYPTED, AUX_FIB, AUX_FRAGMENT, AUX_TICKET, type EspEncryptNode } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import type { Ipv4RewriteNode } from './ipv4-rewrite';

const X_FRAGMENT = exceptionReason('fragment');
const D_CLEAR_IN = dropReason('ipsec-clear-in');

export class Ipv4LookupNode extends GraphNode {
  readonly name = 'ipv4-lookup';
  private readonly fib: FibResolver;
  rewrite!: Ipv4RewriteNode;
  exception!: ExceptionNode;
  drop!: DropNode;
  /** IPsec nodes (null: IPsec off). */
  espEncrypt: EspEncryptNode | null = null;
  espDecrypt: EspDecryptNode | null = null;
  /** UDP destination ports that are NAT-T encap ports (IpsecState.encapPort; null: IPsec off). */
  encapPort: Uint8Array | null = null;
  /** ESP fragments to this box (aux AUX_FRAGMENT from ipv4-input) go here, with aux = IHL*4. */
  reassembly: PacketSink | null = null;
  /** GraphOptions.ipsecLocalDecrypt: clear packets for this host checked against 'in' policies (esp-decrypt). */
  localInCheck = false;
  /**
   * The touch pass below (on by default, run when the shared memory holds many routes: FibResolver.bigFib;
   * benchmarks switch it off to measure what it brings).
   */
  touchPass = true;

  constructor(ctx: FpContext, fib: FibResolver) {
    super(ctx);
    this.fib = fib;
  }

  run(): void {
    const v = this.runVector, ctx = this.ctx, m = ctx.mem, shm = ctx.shm, fib = this.fib, exc = this.exception, drop = this.drop;
    vswap(this.input, v); // this run's packets (see GraphNode.runVector)
    const portVrf = ctx.portVrf, esp = this.espEncrypt;
    // there are IPv4 policies: every routed packet goes to esp-encrypt (SPD), the vector is handed to it
    const toEsp = esp !== null && esp.spdActive(4);
    let j = 0; // routed packets stay in v, compacted to v[0 .. j) (aux = next hop; for esp-encrypt with its marks)
    fib.beginVector();
    // Touch every packet's FIB words first: their cache / TLB misses overlap (fib.ts touch4).
    if (this.touchPass && fib.bigFib) fib.touchVector4(v, m, portVrf);
    let lastVrf = -2, flow = false; // needsFlow of the VRF of the previous packet (vectors mostly hold one port)
    // ESP to this box: (VRF, destination) of the last ESP packet of this vector that resolved (through a plan: no
    // flow key) to a local route and went to esp-decrypt; the next ones of the same VRF and destination (one
    // tunnel endpoint, the usual case) go there without being resolved again (the answer is this vector's)
    let espVrf = -2, espDst = 0;
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, port = v.port[i];
      const vrf = portVrf[port];
      if (vrf !== lastVrf) { lastVrf = vrf; flow = fib.needsFlow(vrf, 4); }
      const dst = rd32(m, o + 16);
      const proto = m[o + 9];
      const a = v.aux[i];
      const frag = (a & AUX_FRAGMENT) !== 0; // a fragment: no ports (as Linux)
      if (proto === 50 && dst === espDst && vrf === espVrf && !frag) { (this.espDecrypt as EspDecryptNode).add(v, i, (m[o] & 15) << 2); continue; }
      if (flow) {
        fib.flow4.src = rd32(m, o + 12);
        fib.setFlow(4, m[o + 1], proto, frag ? 0 : ports4(m, o, proto), ctx.portName[port]);
      }
      // a decrypted packet whose destination esp-decrypt resolved (AUX_FIB): its answer, when still good
      const res = (a & AUX_FIB) !== 0 && fib.reuse4(a & AUX_TICKET, v.off[i]) ? FOUND : fib.resolve4(vrf, dst);
      if (this.localInCheck && res === FOUND && fib.type === RTN_LOCAL && (v.aux[i] & AUX_DECRYPTED) === 0 && proto !== 50 &&
        (this.espDecrypt as EspDecryptNode).clearLocalBlocked(vrf, 4, m, o, frag)) { drop.add(v, i, D_CLEAR_IN); continue; }
      if (frag && res === FOUND && fib.type === RTN_LOCAL) { // for this box: ESP -> reassembly (IPsec), else Linux
        const rs = this.reassembly;
        if (rs === null || proto !== 50 || esp === null) { exc.add(v, i, X_FRAGMENT); continue; }
        // reassembled at once: a completed ESP packet joins esp-decrypt's queue at the place of its last
        // fragment, not after the vector's whole ESP packets (order matters: Linux's ipfrag_max_dist at the
        // receiver of inner fragments, replay windows)
        vmove(rs.input, v, i, (m[o] & 15) << 2);
        rs.run();
        continue;
      }
      // a transit fragment goes on like any packet (forwarded as it is)
      if (esp !== null && !frag && res === FOUND && fib.type === RTN_LOCAL) {
        const hl = (m[o] & 15) << 2;
        if (proto === 50) {
          if (!flow) { espVrf = vrf; espDst = dst; }
          (this.espDecrypt as EspDecryptNode).add(v, i, hl);
          continue;
        }
        if (proto === 17 && (this.encapPort as Uint8Array)[ports4(m, o, proto) & 0xffff] === 1) {
          // ESP in UDP when the payload starts with a non-zero word (RFC 3948 §2.2); keepalive / IKE -> Linux
          const u = o + hl + 8, plen = ((m[o + 2] << 8) | m[o + 3]) - hl - 8;
          if (plen >= 4 && (m[u] | m[u + 1] | m[u + 2] | m[u + 3]) !== 0) { (this.espDecrypt as EspDecryptNode).add(v, i, hl + 8); continue; }
        }
      }
      if (!acceptRoute(fib, res, v, i, exc, drop)) continue;
      const val = fib.value; // int32
      const nh = (val >>> 30) === FIB_GROUP ? shm.groupSelect(val & FIB_INDEX_MASK, flowHash4(rd32(m, o + 12), dst, proto, frag ? 0 : ports4(m, o, proto))) : val & FIB_INDEX_MASK;
      if (nh < 0) { exc.add(v, i, X_SHM_BUSY); continue; }
      if (j !== i) vcopyWithin(v, j, i);
      v.aux[j++] = toEsp ? nh | (a & (AUX_DECRYPTED | AUX_FRAGMENT)) : nh; // a fragment: selectors see ports 0
    }
    v.n = j;
    // hand the vector to ipv4-rewrite or esp-encrypt (its earlier packets first)
    if (toEsp) handOn(v, esp as EspEncryptNode);
    else handOn(v, this.rewrite);
  }

  /** The first 4 bytes after the IPv4 header at m[o..] (TCP/UDP/SCTP/UDP-Lite ports) when present, else 0. */
}
