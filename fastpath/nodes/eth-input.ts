// eth-input: first node of the graph. Counts rx per input port; Ethernet II only.
//   destination MAC: the port's MAC goes on; broadcast / multicast -> exception (after the
//   ethertype checks below: ARP / NDP keep their own reason); another unicast MAC -> drop 'not-for-us'.
//   source MAC: the port's own -> drop 'own-mac' (our own frame seen again).
//   ethertype: IPv4 -> ipv4-input, IPv6 -> ipv6-input (NDP, ICMPv6 133..137 -> exception 'ndp'),
//   ARP -> exception 'arp', 802.1Q / 802.1ad / QinQ -> exception 'vlan', other -> 'unsupported-l2'.
//   A port no shm link entry carries -> exception 'port-unknown'.

import { C_RX_BYTES, C_RX_PACKETS, PORT_STRIDE, dropReason, exceptionReason } from '../../shared-mem/stats';
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, type FpContext } from '../context';
import { VEC, handOn, vcopyWithin, vpush, type Vector } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';
import type { Ipv4InputNode } from './ipv4-input';
import type { Ipv6InputNode } from './ipv6-input';

const D_RUNT = dropReason('runt');
const D_NOT_FOR_US = dropReason('not-for-us');
const D_OWN_MAC = dropReason('own-mac');
const X_PORT_UNKNOWN = exceptionReason('port-unknown');
const X_ARP = exceptionReason('arp');
const X_NDP = exceptionReason('ndp');
const X_VLAN = exceptionReason('vlan');
const X_UNSUPPORTED_L2 = exceptionReason('unsupported-l2');
const X_L2_BROADCAST = exceptionReason('l2-broadcast');
const X_L2_MULTICAST = exceptionReason('l2-multicast');

export class EthInputNode {
  readonly name = 'eth-input';
  private readonly ctx: FpContext;
  private readonly badPort = new Uint32Array(VEC);
  ipv4!: Ipv4InputNode;
  ipv6!: Ipv6InputNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  constructor(ctx: FpContext) {
    this.ctx = ctx;
  }

  /**
   * Classifies v[0 .. v.n) into the next nodes' vectors: IPv4 packets stay in v (compacted) and are
   * handed to ipv4-input (handOn: v's arrays exchanged with its input's; v is left empty).
   */
  process(v: Vector): void {
    const ctx = this.ctx, m = ctx.mem, c = ctx.counters, mac = ctx.portMac, vrfOf = ctx.portVrf, nports = ctx.nports;
    const m16 = ctx.mem16, m16End = m16.length * 2, mac16 = ctx.portMac16;
    const exc = this.exception, drop = this.drop;
    const v6 = this.ipv6.input;
    let nbad = 0, j = 0; // IPv4 packets stay in v, compacted to v[0 .. j)
    // rx counters summed over runs of packets of one port (a vector is mostly one port's burst)
    let cport = -1, cpkts = 0, cbytes = 0;
    for (let i = 0; i < v.n; i++) {
      const port = v.port[i], len = v.len[i], o = v.off[i];
      if (port >= nports) { this.badPort[nbad++] = v.mbuf[i]; ctx.badPort(); continue; }
      if (port !== cport) {
        if (cport >= 0) { c[cport * PORT_STRIDE + C_RX_PACKETS] += cpkts; c[cport * PORT_STRIDE + C_RX_BYTES] += cbytes; }
        cport = port; cpkts = 0; cbytes = 0;
      }
      cpkts++;
      cbytes += len;
      if (len < ETH_HLEN) { drop.add(v, i, D_RUNT); continue; }
      if (vrfOf[port] < 0) { exc.add(v, i, X_PORT_UNKNOWN); continue; }
      const group = (m[o] & 1) !== 0;
      if ((o & 1) === 0 && o + ETH_HLEN <= m16End) { // 16-bit words (half the loads)
        const w = o >>> 1, q = port * 3;
        if (m16[w + 3] === mac16[q] && m16[w + 4] === mac16[q + 1] && m16[w + 5] === mac16[q + 2]) { drop.add(v, i, D_OWN_MAC); continue; }
        if (!group && (m16[w] !== mac16[q] || m16[w + 1] !== mac16[q + 1] || m16[w + 2] !== mac16[q + 2])) { drop.add(v, i, D_NOT_FOR_US); continue; }
      } else {
        const p = port * 6;
        // A frame from our own MAC is one we sent, coming back (an AF_PACKET port also sees its own tx;
        // a loop): handing it to Linux would look like a duplicate address.
        if (m[o + 6] === mac[p] && m[o + 7] === mac[p + 1] && m[o + 8] === mac[p + 2] && m[o + 9] === mac[p + 3] &&
          m[o + 10] === mac[p + 4] && m[o + 11] === mac[p + 5]) { drop.add(v, i, D_OWN_MAC); continue; }
        if (!group) {
          if (m[o] !== mac[p] || m[o + 1] !== mac[p + 1] || m[o + 2] !== mac[p + 2] || m[o + 3] !== mac[p + 3] ||
            m[o + 4] !== mac[p + 4] || m[o + 5] !== mac[p + 5]) { drop.add(v, i, D_NOT_FOR_US); continue; }
        }
      }
      const et = (m[o + 12] << 8) | m[o + 13];
      if (et === ETH_P_IP) {
        if (group) { exc.add(v, i, groupReason(m, o)); continue; }
        if (j !== i) vcopyWithin(v, j, i);
        v.aux[j++] = 0;
      } else if (et === ETH_P_IPV6) {
        // NDP: ICMPv6 (next header 58 right after the fixed header) of type 133..137
        if (len >= ETH_HLEN + 41 && m[o + ETH_HLEN + 6] === 58) {
          const t = m[o + ETH_HLEN + 40];
          if (t >= 133 && t <= 137) { exc.add(v, i, X_NDP); continue; }
        }
        if (group) { exc.add(v, i, groupReason(m, o)); continue; }
        if (v6.n === VEC) this.ipv6.run();
        vpush(v6, v.mbuf[i], o, len, port, 0);
      } else if (et === ETH_P_ARP) exc.add(v, i, X_ARP);
      else if (et === 0x8100 || et === 0x88a8 || et === 0x9100) exc.add(v, i, X_VLAN);
      else exc.add(v, i, X_UNSUPPORTED_L2);
    }
    if (cport >= 0) { c[cport * PORT_STRIDE + C_RX_PACKETS] += cpkts; c[cport * PORT_STRIDE + C_RX_BYTES] += cbytes; }
    if (nbad > 0) ctx.io.free(this.badPort, nbad);
    v.n = j;
    handOn(v, this.ipv4);
  }
}

function groupReason(m: Uint8Array, o: number): number {
  return (m[o] & m[o + 1] & m[o + 2] & m[o + 3] & m[o + 4] & m[o + 5]) === 255 ? X_L2_BROADCAST : X_L2_MULTICAST;
}
