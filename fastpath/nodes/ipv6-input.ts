// ipv6-input: validates the IPv6 header before forwarding.
//   drops: frame shorter than 14 + 40 'ipv6-truncated', version != 6 'ipv6-version', 40 + payload
//   length > frame 'ipv6-bad-length', martians 'ipv6-martian' (destination :: or ::1; source ::1,
//   :: or multicast).
//   exceptions: destination ff00::/8 'ipv6-multicast'; link-local (fe80::/10) source or destination
//   'ipv6-link-local'; hop limit <= 1 'ttl-expired' (Linux sends time exceeded); an extension header
//   (hop-by-hop 0, routing 43, fragment 44, destination options 60, AH 51, mobility 135, HIP 139,
//   shim6 140, experimental 253/254) 'ipv6-ext'.
// Ethernet padding is allowed; ipv6-rewrite trims it.
// aux: the AUX_DECRYPTED mark of packets esp-decrypt produced is passed on to ipv6-lookup (the rest
// of aux is cleared); eth-input gives 0.
// A Fragment header right after the fixed header (the usual fragment) is not an exception here: the
// packet goes on to ipv6-lookup marked AUX_FRAGMENT, which forwards it as it is when in transit
// (protocol = the Fragment header's next header, ports 0, as Linux's flow key of a fragment) and,
// when addressed to this box, sends ESP fragments to ipv6-reassembly (IPsec) and others to Linux
// ('ipv6-ext'). Other extension headers, or a Fragment header after one, are 'ipv6-ext'.

import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { ETH_HLEN } from '../context';
import { GraphNode } from '../graph-node';
import { vcopyWithin, vswap, handOn } from '../vector';
import type { DropNode } from './drop';
import { AUX_DECRYPTED, AUX_FRAGMENT } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import type { Ipv6LookupNode } from './ipv6-lookup';

const D_TRUNCATED = dropReason('ipv6-truncated');
const D_VERSION = dropReason('ipv6-version');
const D_BAD_LENGTH = dropReason('ipv6-bad-length');
const D_MARTIAN = dropReason('ipv6-martian');
const X_MULTICAST = exceptionReason('ipv6-multicast');
const X_LINK_LOCAL = exceptionReason('ipv6-link-local');
const X_TTL = exceptionReason('ttl-expired');
const X_EXT = exceptionReason('ipv6-ext');

/** Next-header values that are extension headers (1 = extension header). */
const EXT = new Uint8Array(256);
for (const nh of [0, 43, 44, 51, 60, 135, 139, 140, 253, 254]) EXT[nh] = 1;

export class Ipv6InputNode extends GraphNode {
  readonly name = 'ipv6-input';
  lookup!: Ipv6LookupNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  run(): void {
    const v = this.runVector, m = this.ctx.mem, exc = this.exception, drop = this.drop;
    vswap(this.input, v); // this run's packets (see GraphNode.runVector)
    let j = 0; // packets that go on stay in v, compacted to v[0 .. j)
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, l3 = v.len[i] - ETH_HLEN;
      if (l3 < 40) { drop.add(v, i, D_TRUNCATED); continue; }
      if ((m[o] >>> 4) !== 6) { drop.add(v, i, D_VERSION); continue; }
      if (40 + ((m[o + 4] << 8) | m[o + 5]) > l3) { drop.add(v, i, D_BAD_LENGTH); continue; }
      const s0 = m[o + 8], d0 = m[o + 24];
      // :: and ::1 (first 15 bytes zero, last 0 or 1)
      let dz = 0, sz = 0;
      for (let k = 0; k < 15; k++) { dz |= m[o + 24 + k]; sz |= m[o + 8 + k]; }
      if ((dz === 0 && m[o + 39] <= 1) || (sz === 0 && m[o + 23] <= 1) || s0 === 0xff) { drop.add(v, i, D_MARTIAN); continue; }
      if (d0 === 0xff) { exc.add(v, i, X_MULTICAST); continue; }
      if ((d0 === 0xfe && (m[o + 25] & 0xc0) === 0x80) || (s0 === 0xfe && (m[o + 9] & 0xc0) === 0x80)) { exc.add(v, i, X_LINK_LOCAL); continue; }
      if (m[o + 7] <= 1) { exc.add(v, i, X_TTL); continue; }
      let frag = 0;
      if (EXT[m[o + 6]] !== 0) {
        if (m[o + 6] !== 44 || 40 + ((m[o + 4] << 8) | m[o + 5]) < 48 || EXT[m[o + 40]] !== 0) { exc.add(v, i, X_EXT); continue; }
        frag = AUX_FRAGMENT;
      }
      const aux = (v.aux[i] & AUX_DECRYPTED) | frag;
      if (j !== i) vcopyWithin(v, j, i);
      v.aux[j++] = aux;
    }
    v.n = j;
    // hand the vector to ipv6-lookup (its earlier packets first)
    handOn(v, this.lookup);
  }
}
