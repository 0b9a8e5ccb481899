// ipv6-fragment: IPv6 packets this box is the SOURCE of (routers never fragment IPv6; in the IPsec
// graph: the outer ESP packets of encrypt-then-fragment mode) that are longer than the egress MTU.
// RFC 8200 §4.5: the unfragmentable part (the IPv6 header, and a hop-by-hop / routing header chain
// with the destination options headers before a routing header) is repeated in every fragment,
// followed by a Fragment header (next header = the first fragmentable header, offset in 8-byte
// units, M on all but the last, identification from a per-worker 32-bit counter that starts at a
// random value) and a piece of the fragmentable part: a multiple of 8 bytes except in the last
// fragment; every fragment <= the MTU. The preceding header's next header becomes 44, payload
// lengths per fragment. Fragments go to new buffers (io.alloc), Ethernet header copied; the
// original is freed.
//
// Wiring (the graph assigns the fields):
//   input  IPv6 frames (Ethernet at off, IPv6 at off + 14) with aux = egress port | MTU << 16 (the
//          same convention as ipv4-fragment). A packet that fits the MTU goes to tx unchanged.
//   tx     PortTxNode (each fragment: same input port, egress port from aux).
//   drop   DropNode: no buffer -> 'no-mbuf'; MTU too small for the unfragmentable part + 8 + 8
//          bytes, more than 1024 fragments, a payload length of 0 (jumbogram) or past the frame,
//          a malformed or too long extension-header chain, a packet that already carries a
//          Fragment header -> 'frag-error' (both counted on the input port).

import { randomBytes } from 'crypto';
import { dropReason } from '../../shared-mem/stats';
import { ETH_HLEN, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import type { Vector } from '../vector';
import type { DropNode } from './drop';
import type { PortTxNode } from './port-tx';

const D_NO_MBUF = dropReason('no-mbuf');
const D_FRAG_ERROR = dropReason('frag-error');

/** At most this many fragments per packet. */
const MAX_FRAGS = 1024;
const NH_HOP = 0, NH_ROUTING = 43, NH_FRAGMENT = 44, NH_DSTOPTS = 60;

export class Ipv6FragmentNode extends GraphNode {
  readonly name = 'ipv6-fragment';
  tx!: PortTxNode;
  drop!: DropNode;
  private readonly fm = new Uint32Array(MAX_FRAGS);
  private readonly fo = new Uint32Array(MAX_FRAGS);
  /** The next identification (per worker: one node per worker graph). */
  private readonly nextId = new Int32Array(1);
  /** Fragments produced (statistics). */
  fragments = 0;

  /** idStart: first identification (default random). */
  constructor(ctx: FpContext, idStart?: number) {
    super(ctx);
    this.nextId[0] = idStart ?? randomBytes(4).readInt32LE(0);
  }

  run(): void {
    const v = this.input;
    for (let i = 0; i < v.n; i++) this.fragment(v, i);
    v.n = 0;
  }

  private fragment(v: Vector, i: number): void {
    const ctx = this.ctx, m = ctx.mem, io = ctx.io;
    const off = v.off[i], o = off + ETH_HLEN, port = v.port[i];
    const egress = v.aux[i] & 0xffff;
    let mtu = v.aux[i] >>> 16;
    if (mtu > io.bufSize - ETH_HLEN) mtu = io.bufSize - ETH_HLEN;
    if (v.len[i] < ETH_HLEN + 40) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const pl = (m[o + 4] << 8) | m[o + 5];
    const total = 40 + pl;
    if (pl === 0 || ETH_HLEN + total > v.len[i]) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    if (total <= mtu) { this.tx.add(v.mbuf[i], off, ETH_HLEN + total, port, egress); return; }
    // unfragmentable part: up to and including the last hop-by-hop / routing header
    let unf = 40, nhPos = o + 6, cur = m[o + 6], p = 40;
    while (cur === NH_HOP || cur === NH_ROUTING || cur === NH_DSTOPTS) {
      if (p + 8 > total) { this.drop.add(v, i, D_FRAG_ERROR); return; }
      const hlen = (m[o + p + 1] + 1) << 3;
      if (p + hlen > total) { this.drop.add(v, i, D_FRAG_ERROR); return; }
      if (cur !== NH_DSTOPTS) { unf = p + hlen; nhPos = o + p; }
      cur = m[o + p];
      p += hlen;
    }
    if (cur === NH_FRAGMENT) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const fnh = m[nhPos];
    const flen = total - unf;
    const maxp = ((mtu - unf - 8) >> 3) << 3;
    if (maxp < 8 || flen <= 0) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const nfrag = Math.ceil(flen / maxp);
    if (nfrag > MAX_FRAGS) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const fm = this.fm, fo = this.fo;
    const got = io.alloc(fm, fo, nfrag);
    if (got < nfrag) {
      if (got > 0) io.free(fm, got);
      this.drop.add(v, i, D_NO_MBUF);
      return;
    }
    const id = this.nextId[0];
    this.nextId[0] = (id + 1) | 0;
    const hcopy = ETH_HLEN + unf, nhRel = nhPos - off;
    let pos = 0;
    for (let f = 0; f < nfrag; f++) {
      const size = flen - pos > maxp ? maxp : flen - pos;
      const more = pos + size < flen;
      const d = fo[f], dh = d + ETH_HLEN;
      m.copyWithin(d, off, off + hcopy);
      m[d + nhRel] = NH_FRAGMENT;
      const fpl = unf - 40 + 8 + size;
      m[dh + 4] = fpl >>> 8;
      m[dh + 5] = fpl & 255;
      const fh = d + hcopy;
      m[fh] = fnh;
      m[fh + 1] = 0;
      m[fh + 2] = pos >>> 8;
      m[fh + 3] = (pos & 0xf8) | (more ? 1 : 0);
      m[fh + 4] = id >>> 24;
      m[fh + 5] = (id >>> 16) & 255;
      m[fh + 6] = (id >>> 8) & 255;
      m[fh + 7] = id & 255;
      m.copyWithin(fh + 8, o + unf + pos, o + unf + pos + size);
      this.tx.add(fm[f], d, hcopy + 8 + size, port, egress);
      pos += size;
    }
    this.fragments += nfrag;
    this.drop.addUncounted(v.mbuf[i]);
  }
}
