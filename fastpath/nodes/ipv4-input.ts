// ipv4-input: validates the IPv4 header (RFC 1812 5.2.2) before forwarding.
//   drops: frame shorter than 14 + 20 'ipv4-truncated', version != 4 'ipv4-version', IHL < 5
//   'ipv4-bad-ihl', total length < IHL*4 or > frame 'ipv4-bad-length', header checksum
//   'ipv4-checksum', martians 'ipv4-martian' (source or destination 127/8, destination 0/8, source
//   0/8, multicast or 255.255.255.255 source).
//   exceptions (Linux handles them): destination 224/4 or 255.255.255.255 'ipv4-multicast', IHL > 5
//   'ip-options', TTL <= 1 'ttl-expired' (Linux sends time exceeded).
// Fragments (MF or fragment offset) go on to ipv4-lookup marked AUX_FRAGMENT: a transit fragment is
// forwarded as it is (ports taken as 0 for ECMP, rules and IPsec selectors, as Linux does for
// fragments); one addressed to this box goes to ipv4-reassembly (ESP, with IPsec) or to Linux
// ('fragment': Linux reassembles it).
// Ethernet padding (frame longer than 14 + total length) is allowed; ipv4-rewrite trims it.
// aux: the AUX_DECRYPTED mark of packets esp-decrypt produced is passed on to ipv4-lookup, with its
// hand-over of the inner destination's FIB answer (AUX_FIB | AUX_TICKET bits; the rest of aux is
// cleared); eth-input gives 0.
// A decrypted fragment (inner packet of a peer that fragments before encrypting) keeps its
// AUX_DECRYPTED mark too.
// ipv4Verdict: the same checks for one packet, for esp-decrypt (routed inner packets it hands on itself).

import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { ipv4ChecksumOk, ipv4ChecksumOk16 } from '../checksum';
import { ETH_HLEN } from '../context';
import { GraphNode } from '../graph-node';
import { vcopyWithin, vswap, handOn } from '../vector';
import type { DropNode } from './drop';
import { AUX_DECRYPTED, AUX_FIB, AUX_FRAGMENT, AUX_TICKET } from './esp-encrypt';
import type { ExceptionNode } from './exception';
import type { Ipv4LookupNode } from './ipv4-lookup';

const D_TRUNCATED = dropReason('ipv4-truncated');
const D_VERSION = dropReason('ipv4-version');
const D_BAD_IHL = dropReason('ipv4-bad-ihl');
const D_BAD_LENGTH = dropReason('ipv4-bad-length');
const D_CHECKSUM = dropReason('ipv4-checksum');
const D_MARTIAN = dropReason('ipv4-martian');
const X_MULTICAST = exceptionReason('ipv4-multicast');
const X_OPTIONS = exceptionReason('ip-options');
const X_TTL = exceptionReason('ttl-expired');

/** ipv4Verdict: the packet goes on. */
export const V4_OK = -1;
/** ipv4Verdict: this bit | a drop reason (without it: an exception reason). */
export const V4_DROP = 0x10000;

/**
 * The checks of Ipv4InputNode.run for one packet (IPv4 header at m[o..], l3 bytes after the Ethernet header; keep
 * the two in step: run keeps its own copy, a call per packet there costs the forwarding path 2-3 ns), for
 * esp-decrypt's inner packets that it hands on without this node: V4_OK, an exception reason, or V4_DROP | a drop
 * reason. Fragments (MF or offset) are V4_OK: the caller tests them.
 */
export function ipv4Verdict(m: Uint8Array, m16: Uint16Array, o: number, l3: number): number {
  if (l3 < 20) return V4_DROP | D_TRUNCATED;
  const b0 = m[o];
  if ((b0 >>> 4) !== 4) return V4_DROP | D_VERSION;
  const hl = (b0 & 15) << 2;
  if (hl < 20) return V4_DROP | D_BAD_IHL;
  const tot = (m[o + 2] << 8) | m[o + 3];
  if (tot < hl || tot > l3) return V4_DROP | D_BAD_LENGTH;
  if (!((o & 1) === 0 && o + hl <= m16.length * 2 ? ipv4ChecksumOk16(m16, o >>> 1, hl) : ipv4ChecksumOk(m, o, hl))) return V4_DROP | D_CHECKSUM;
  const s0 = m[o + 12], d0 = m[o + 16];
  if (d0 >= 224) {
    if (d0 < 240 || (d0 & m[o + 17] & m[o + 18] & m[o + 19]) === 255) return X_MULTICAST;
  }
  if (s0 === 127 || d0 === 127 || d0 === 0 || s0 === 0 || (s0 >= 224 && s0 < 240) ||
    (s0 === 255 && (m[o + 13] & m[o + 14] & m[o + 15]) === 255)) return V4_DROP | D_MARTIAN;
  if (hl > 20) return X_OPTIONS;
  if (m[o + 8] <= 1) return X_TTL;
  return V4_OK;
}

export class Ipv4InputNode extends GraphNode {
  readonly name = 'ipv4-input';
  lookup!: Ipv4LookupNode;
  exception!: ExceptionNode;
  drop!: DropNode;

  run(): void {
    const v = this.runVector, m = this.ctx.mem, m16 = this.ctx.mem16, m16End = m16.length * 2, exc = this.exception, drop = this.drop;
    vswap(this.input, v); // this run's packets (see GraphNode.runVector)
    let j = 0; // packets that go on stay in v, compacted to v[0 .. j)
    for (let i = 0; i < v.n; i++) {
      const o = v.off[i] + ETH_HLEN, l3 = v.len[i] - ETH_HLEN;
      if (l3 < 20) { drop.add(v, i, D_TRUNCATED); continue; }
      const b0 = m[o];
      if ((b0 >>> 4) !== 4) { drop.add(v, i, D_VERSION); continue; }
      const hl = (b0 & 15) << 2;
      if (hl < 20) { drop.add(v, i, D_BAD_IHL); continue; }
      const tot = (m[o + 2] << 8) | m[o + 3];
      if (tot < hl || tot > l3) { drop.add(v, i, D_BAD_LENGTH); continue; }
      if (!((o & 1) === 0 && o + hl <= m16End ? ipv4ChecksumOk16(m16, o >>> 1, hl) : ipv4ChecksumOk(m, o, hl))) { drop.add(v, i, D_CHECKSUM); continue; }
      const s0 = m[o + 12], d0 = m[o + 16];
      if (d0 >= 224) {
        if (d0 < 240 || (d0 & m[o + 17] & m[o + 18] & m[o + 19]) === 255) { exc.add(v, i, X_MULTICAST); continue; }
      }
      if (s0 === 127 || d0 === 127 || d0 === 0 || s0 === 0 || (s0 >= 224 && s0 < 240) ||
        (s0 === 255 && (m[o + 13] & m[o + 14] & m[o + 15]) === 255)) { drop.add(v, i, D_MARTIAN); continue; }
      if (hl > 20) { exc.add(v, i, X_OPTIONS); continue; }
      if (m[o + 8] <= 1) { exc.add(v, i, X_TTL); continue; }
      const aux = (v.aux[i] & (AUX_DECRYPTED | AUX_FIB | AUX_TICKET)) | (((m[o + 6] & 0x3f) | m[o + 7]) !== 0 ? AUX_FRAGMENT : 0);
      if (j !== i) vcopyWithin(v, j, i);
      v.aux[j++] = aux;
    }
    v.n = j;
    // hand the vector to ipv4-lookup (its earlier packets first)
    handOn(v, this.lookup);
  }
}
