// ipv4-fragment: rewritten IPv4 packets longer than the egress MTU, DF clear (aux = egress port |
// MTU << 16; DF set never comes here: ipv4-rewrite sent those to Linux unmodified, 'frag-needed').
// Fragments (RFC 791) go to new buffers (io.alloc): the Ethernet header is copied; the first
// fragment carries the whole IP header, the others only the options with the copied flag (padded
// to 4 bytes); payload sizes are multiples of 8 except the last; offsets continue the original's
// (a fragment of a fragment keeps MF on its last piece if the original had it); total length and
// checksum per fragment. The original is freed. No buffer -> drop 'no-mbuf'; MTU smaller than the
// header + 8 -> drop 'frag-error' (both counted on the input port).

import { dropReason } from '../../shared-mem/stats';
import { ipv4SetChecksum } from '../checksum';
import { ETH_HLEN } from '../context';
import { GraphNode } from '../graph-node';
import type { Vector } from '../vector';
import type { DropNode } from './drop';
import type { PortTxNode } from './port-tx';

const D_NO_MBUF = dropReason('no-mbuf');
const D_FRAG_ERROR = dropReason('frag-error');

/** At most this many fragments per packet (64 KiB / 8-byte units over the smallest MTU, 68). */
const MAX_FRAGS = 1024;

export class Ipv4FragmentNode extends GraphNode {
  readonly name = 'ipv4-fragment';
  tx!: PortTxNode;
  drop!: DropNode;
  private readonly fm = new Uint32Array(MAX_FRAGS);
  private readonly fo = new Uint32Array(MAX_FRAGS);
  /** Header of the 2nd and later fragments (20 bytes + copied options). */
  private readonly hdr2 = new Uint8Array(60);
  /** Fragments produced (statistics). */
  fragments = 0;

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
    const hl = (m[o] & 15) << 2;
    const tot = (m[o + 2] << 8) | m[o + 3];
    const payload = tot - hl;
    const hl2 = this.copiedHeader(m, o, hl);
    const maxFirst = ((mtu - hl) >> 3) << 3;
    const maxRest = ((mtu - hl2) >> 3) << 3;
    if (maxFirst < 8 || maxRest < 8) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const nfrag = payload <= maxFirst ? 1 : 1 + Math.ceil((payload - maxFirst) / maxRest);
    if (nfrag > MAX_FRAGS) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const fm = this.fm, fo = this.fo;
    const got = io.alloc(fm, fo, nfrag);
    if (got < nfrag) {
      if (got > 0) io.free(fm, got);
      this.drop.add(v, i, D_NO_MBUF);
      return;
    }
    const fw = (m[o + 6] << 8) | m[o + 7];
    const origOff = fw & 0x1fff, origMf = fw & 0x2000, keep = fw & 0x8000; // reserved bit kept; DF is clear here
    const h2 = this.hdr2;
    let pos = 0;
    for (let f = 0; f < nfrag; f++) {
      const h = f === 0 ? hl : hl2;
      const size = f === 0 ? Math.min(maxFirst, payload) : Math.min(maxRest, payload - pos);
      const last = pos + size === payload;
      const d = fo[f], dh = d + ETH_HLEN;
      m.copyWithin(d, off, off + ETH_HLEN);
      if (f === 0) m.copyWithin(dh, o, o + hl);
      else for (let k = 0; k < hl2; k++) m[dh + k] = h2[k];
      const ftot = h + size;
      m[dh + 2] = ftot >>> 8;
      m[dh + 3] = ftot & 255;
      const nfw = keep | (last ? origMf : 0x2000) | (origOff + (pos >>> 3));
      m[dh + 6] = nfw >>> 8;
      m[dh + 7] = nfw & 255;
      ipv4SetChecksum(m, dh, h);
      m.copyWithin(dh + h, o + hl + pos, o + hl + pos + size);
      this.tx.add(fm[f], d, ETH_HLEN + ftot, port, egress);
      pos += size;
    }
    this.fragments += nfrag;
    this.drop.addUncounted(v.mbuf[i]);
  }

  /** Builds hdr2 (the header of non-first fragments) from the header at m[o..o+hl); returns its length. */
  private copiedHeader(m: Uint8Array, o: number, hl: number): number {
    const h = this.hdr2;
    for (let k = 0; k < 20; k++) h[k] = m[o + k];
    let q = 20;
    for (let p = 20; p < hl;) {
      const t = m[o + p];
      if (t === 0) break; // end of options
      if (t === 1) { p++; continue; } // NOP: copied flag clear
      if (p + 1 >= hl) break;
      const l = m[o + p + 1];
      if (l < 2 || p + l > hl) break; // malformed: stop copying
      if (t & 0x80) { for (let k = 0; k < l; k++) h[q + k] = m[o + p + k]; q += l; }
      p += l;
    }
    while (q & 3) h[q++] = 0; // pad with end-of-options
    h[0] = 0x40 | (q >>> 2);
    return q;
  }
}
