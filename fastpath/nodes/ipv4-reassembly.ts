// ipv4-reassembly: reassembles IPv4 fragments (RFC 791, RFC 815) addressed to this box — in the
// IPsec graph the ESP fragments of encrypt-then-fragment peers, so that esp-decrypt sees whole ESP
// packets. Table, limits and drop semantics: fastpath/reassembly.ts.
//
// Wiring (the graph assigns the fields):
//   input    IPv4 frames (Ethernet header at off, IPv4 header at off + 14) whose header ipv4-input
//            validated (version, IHL, total length <= frame, checksum); normally MF set or fragment
//            offset != 0. aux is free (kept from the offset-0 fragment onto the output packet).
//   next     PacketSink (any node with `input` and `run()`, e.g. esp-decrypt or ipv4-input): gets
//            (a) packets that are not fragments, unchanged (same mbuf, off, len, port, aux), and
//            (b) each reassembled datagram in a NEW pool buffer (io.alloc at its first fragment):
//            the offset-0 fragment's Ethernet header then its IPv4 header (options included) with MF
//            and the offset cleared (DF and the reserved bit kept), total length = header +
//            payload, new header checksum, ECN CE if a fragment had CE (RFC 3168 §5.3), then the
//            payload; off = the buffer's data start, len = 14 + total length; port and aux = the
//            offset-0 fragment's. Same offsets convention as every node: L3 at off + 14.
//   drop     DropNode. Fragments are copied into the datagram's buffer on arrival and freed at
//            once (uncounted: they live on in the reassembled packet); exact duplicates are freed
//            uncounted too (table.duplicates).
//   Key: (source, destination, identification, protocol, VRF of the input port).
// Drops (counted on the fragment's input port; a discarded datagram's earlier fragments on the
// port of its first fragment, see reassembly.ts): 'reasm-overlap', 'reasm-too-many-frags' (more than
// maxFrags, default 64), 'reasm-too-big' (end of a fragment past min(65515, bufSize - 34), or the
// datagram with its header does not fit one buffer), 'reasm-timeout' (not complete 2 s after its
// first fragment), 'reasm-table-full' (oldest of the 1024 contexts evicted), 'no-mbuf' (no buffer
// for a new datagram), 'frag-error' (malformed: empty fragment, non-last fragment not a multiple of
// 8 bytes, inconsistent lengths, bad header). (Names not yet in DROP_REASONS count as 'frag-error'.)
// Clock: run() calls tick() once per vector (reads the worker's heartbeat field, Graph.heartbeat(),
// no allocation; see ReassemblyOptions.now) and times out old datagrams. Incomplete datagrams pin a
// buffer each: the graph should also call tick() when idle, e.g. from Graph.heartbeat().
// Options (constructor): contexts (1024), timeoutMs (2000), maxFrags (64), now (injected clock).

import { ETH_HLEN, rd32, type FpContext } from '../context';
import { ipv4SetChecksum } from '../checksum';
import { GraphNode } from '../graph-node';
import {
  ADMIT_DROP, ADMIT_DUP, D_FRAG_ERROR, D_REASM_TOO_BIG, ReassemblyTable, type PacketSink, type ReassemblyOptions,
} from '../reassembly';
import { VEC, vmove, vpush, type Vector } from '../vector';
import type { DropNode } from './drop';

/** Ethernet + the largest IPv4 header. */
const HDR_MAX = ETH_HLEN + 60;
/** Payload byte 0 sits after an Ethernet header and a 20-byte IPv4 header (options: moved at completion). */
const PAYLOAD_AT = ETH_HLEN + 20;

export class Ipv4ReassemblyNode extends GraphNode {
  readonly name = 'ipv4-reassembly';
  next!: PacketSink;
  drop!: DropNode;
  readonly table: ReassemblyTable;

  constructor(ctx: FpContext, opts: ReassemblyOptions = {}) {
    super(ctx);
    this.table = new ReassemblyTable(ctx, 4, HDR_MAX, PAYLOAD_AT, 65535 - 20, opts);
  }

  run(): void {
    const v = this.input;
    this.table.tick();
    for (let i = 0; i < v.n; i++) this.one(v, i);
    v.n = 0;
  }

  /** Reads the clock and times out old datagrams (run() does it once per vector). */
  tick(): void {
    this.table.tick();
  }

  private one(v: Vector, i: number): void {
    const m = this.ctx.mem, t = this.table;
    const off = v.off[i], o = off + ETH_HLEN, port = v.port[i];
    const hl = (m[o] & 15) << 2;
    const tot = (m[o + 2] << 8) | m[o + 3];
    const fw = (m[o + 6] << 8) | m[o + 7];
    const start = (fw & 0x1fff) << 3, last = (fw & 0x2000) === 0;
    if (start === 0 && last) { this.pass(v, i); return; }
    const len = tot - hl;
    if (v.len[i] < ETH_HLEN + 20 || hl < 20 || len <= 0 || ETH_HLEN + tot > v.len[i] || (!last && (len & 7) !== 0)) {
      this.drop.add(v, i, D_FRAG_ERROR);
      return;
    }
    const k = t.k;
    k[0] = rd32(m, o + 12);
    k[1] = rd32(m, o + 16);
    k[2] = ((m[o + 4] << 8) | m[o + 5]) | (m[o + 9] << 16);
    k[3] = this.ctx.portVrf[port];
    const c = t.admit(port, start, len, last);
    if (c === ADMIT_DUP) { this.drop.addUncounted(v.mbuf[i]); return; }
    if (c === ADMIT_DROP) { this.drop.add(v, i, t.dropWhy); return; }
    const complete = t.complete;
    const dst = t.bufOff[c] + PAYLOAD_AT + start;
    m.copyWithin(dst, o + hl, o + tot);
    t.ecn[c] |= 1 << (m[o + 1] & 3);
    if (start === 0) {
      const hs = c * HDR_MAX;
      for (let j = 0; j < ETH_HLEN + hl; j++) t.hdr[hs + j] = m[off + j];
      t.hdrLen[c] = ETH_HLEN + hl;
      t.outPort[c] = port;
      t.outAux[c] = v.aux[i];
    }
    this.drop.addUncounted(v.mbuf[i]);
    if (complete) this.complete(c);
  }

  /** Writes the saved headers in front of the payload of complete context c and hands it to next. */
  private complete(c: number): void {
    const m = this.ctx.mem, t = this.table;
    const hlen = t.hdrLen[c], hl = hlen - ETH_HLEN, plen = t.total[c];
    const base = t.bufOff[c];
    if (hlen + plen > this.ctx.io.bufSize || hl + plen > 65535) { t.discard(c, D_REASM_TOO_BIG); return; }
    if (hl > 20) m.copyWithin(base + hlen, base + PAYLOAD_AT, base + PAYLOAD_AT + plen);
    const hs = c * HDR_MAX;
    for (let j = 0; j < hlen; j++) m[base + j] = t.hdr[hs + j];
    const o = base + ETH_HLEN, tot = hl + plen;
    m[o + 2] = tot >>> 8;
    m[o + 3] = tot & 255;
    m[o + 6] &= 0xc0; // DF and reserved bit kept; MF and offset cleared
    m[o + 7] = 0;
    if ((t.ecn[c] & 8) !== 0 && (m[o + 1] & 3) !== 0) m[o + 1] |= 3;
    ipv4SetChecksum(m, o, hl);
    const q = this.next.input;
    if (q.n === VEC) this.next.run();
    if (q.n === VEC) { t.discard(c, D_FRAG_ERROR); return; } // next could not take it (re-entered): never seen
    vpush(q, t.buf[c], base, hlen + plen, t.outPort[c], t.outAux[c]);
    t.release(c);
  }

  private pass(v: Vector, i: number): void {
    const q = this.next.input;
    if (q.n === VEC) this.next.run();
    if (q.n === VEC) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    vmove(q, v, i, v.aux[i]);
  }
}
