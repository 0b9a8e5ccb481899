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
//   than the MTU without DF, run at once so that the fragments leave in the packet's place (order kept).
// Neighbours used are marked hit (markNeighbourHit), about once per vector each (fastpath/adjacency.ts).

import { C_FORWARDED, PORT_STRIDE, exceptionReason } from '../../shared-mem/stats';
import { GW_V4, GW_V6, type Adjacency } from '../adjacency';
import { csumUpdate16 } from '../checksum';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import { VEC, vcopyWithin, vpush, vswap, handOn } from '../vector';
import type { ExceptionNode } from './exception';
import type { Ipv4FragmentNode } from './ipv4-fragment';
import type { PortTxNode } from './port-tx';

const X_FRAG_NEEDED = exceptionReason('frag-needed');
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

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
    const v = this.runVector, ctx = this.ctx, m = ctx.mem, c = ctx.counters, adj = this.adj, exc = this.exception;
    vswap(this.input, v); // this run's packets (see GraphNode.runVector)
    const nhResult = adj.nhResult, nhMtu = adj.nhMtu;
    adj.beginVector();
    // The previous packet's answer when it had the same next hop with a gateway (the neighbour then
    // does not depend on the packet), or the same connected next hop and the same destination (e.g. the
    // ESP packets of one tunnel to a directly connected peer): consecutive packets mostly share them.
    // w0..w5: its Ethernet addresses as 16-bit words in host order (little-endian hosts: written with
    // 6 stores through mem16 when the frame starts at an even offset).
    const m16 = ctx.mem16, m16End = m16.length * 2, nbMac = adj.nbMac, srcMac = adj.nhSrcMac;
    let lastNh = -1, lastT = 0, lastS = 0, w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0;
    let lastConn = false, lastDst = 0; // lastNh is connected: its answer holds for lastDst only
    let fport = -1, fwd = 0; // 'forwarded' summed over runs of packets of one input port
    let j = 0; // packets for port-tx stay in v, compacted to v[0 .. j) (aux = egress port, len trimmed)
    for (let i = 0; i < v.n; i++) {
      const off = v.off[i], o = off + ETH_HLEN, nh = v.aux[i];
      let t: number, s: number;
      if (nh === lastNh && (!lastConn || rd32(m, o + 16) === lastDst)) { t = lastT; s = lastS; }
      else {
        t = adj.resolve(nh, 4, m, o);
        s = adj.nhSlot;
        const gk = adj.nhGwKind[s];
        lastNh = adj.nhResult[s] >= 0 ? nh : -1;
        lastConn = !(gk === GW_V4 || gk === GW_V6);
        if (lastConn) lastDst = rd32(m, o + 16);
        lastT = t; lastS = s;
        if (t >= 0) {
          const d = t * 6, q = s * 6;
          w0 = nbMac[d] | (nbMac[d + 1] << 8); w1 = nbMac[d + 2] | (nbMac[d + 3] << 8); w2 = nbMac[d + 4] | (nbMac[d + 5] << 8);
          w3 = srcMac[q] | (srcMac[q + 1] << 8); w4 = srcMac[q + 2] | (srcMac[q + 3] << 8); w5 = srcMac[q + 4] | (srcMac[q + 5] << 8);
        }
      }
      if (t < 0) { exc.add(v, i, -1 - t); continue; }
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
      if (LITTLE_ENDIAN && (off & 1) === 0 && off + 12 <= m16End) {
        const w = off >>> 1;
        m16[w] = w0; m16[w + 1] = w1; m16[w + 2] = w2; m16[w + 3] = w3; m16[w + 4] = w4; m16[w + 5] = w5;
      } else adj.writeMacs(m, off, s, t);
      const len = ETH_HLEN + tot, port = v.port[i], egress = nhResult[s];
      if (port !== fport) { if (fport >= 0) c[fport * PORT_STRIDE + C_FORWARDED] += fwd; fport = port; fwd = 0; }
      fwd++;
      if (frag) {
        // the packets before it first, then its fragments, cut at once: they take the packet's place in
        // port-tx. Sent after every packet of the vector that fits, they would be reordered (a receiver
        // drops a datagram whose fragments are > 64 fragments apart, Linux's ipfrag_max_dist).
        const tx = this.tx;
        for (let k = 0; k < j; k++) tx.add(v.mbuf[k], v.off[k], v.len[k], v.port[k], v.aux[k]);
        j = 0;
        const fq = this.fragment.input;
        if (fq.n === VEC) this.fragment.run();
        vpush(fq, v.mbuf[i], off, len, port, (egress | (mtu << 16)) >>> 0);
        this.fragment.run();
        continue;
      }
      if (j !== i) vcopyWithin(v, j, i);
      v.len[j] = len;
      v.aux[j++] = egress;
    }
    if (fport >= 0) c[fport * PORT_STRIDE + C_FORWARDED] += fwd;
    v.n = j;
    // hand the vector to port-tx (its earlier packets first)
    handOn(v, this.tx);
  }
}
