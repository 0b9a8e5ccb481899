// ipv6-reassembly: reassembles IPv6 fragments (RFC 8200 §4.5) addressed to this box — in the IPsec
// graph the ESP fragments of encrypt-then-fragment peers, so that ESP decryption sees whole packets.
// Only the common case is handled: the Fragment header directly after the fixed header (next header
// 44 in the IPv6 header: the unfragmentable part is the 40-byte header). Table, limits and drop
// semantics: fastpath/reassembly.ts.
//
// Wiring (the graph assigns the fields):
//   input      IPv6 frames (Ethernet header at off, IPv6 header at off + 14) that ipv6-input
//              validated (version, 40 + payload length <= frame, martians...), e.g. its 'ipv6-ext'
//              case narrowed to next header 44. aux is free (kept from the offset-0 fragment).
//   next       PacketSink (any node with `input` and `run()`): gets
//              (a) packets whose next header is not an extension header, unchanged;
//              (b) atomic fragments (offset 0, M clear; RFC 6946: processed in isolation): the
//                  Fragment header removed in place (the Ethernet + IPv6 headers move 8 bytes up:
//                  off + 8, len - 8), next header and payload length fixed;
//              (c) each reassembled datagram in a NEW pool buffer (io.alloc at its first fragment):
//                  the offset-0 fragment's Ethernet and IPv6 headers with next header = the Fragment
//                  header's next header, payload length = the fragmentable part's length, ECN CE if
//                  a fragment had CE, then the fragmentable part; off = the buffer's data start, len =
//                  14 + 40 + payload length; port and aux = the offset-0 fragment's.
//   exception  ExceptionNode: other extension-header chains (hop-by-hop, routing, destination
//              options... before a Fragment header, or not fragments at all) go to Linux unchanged,
//              exception 'ipv6-ext' (Linux reassembles those itself).
//   drop       DropNode. Fragments are copied into the datagram's buffer on arrival and freed at
//              once (uncounted); exact duplicates are freed uncounted (table.duplicates).
//   Key: (source, destination, identification, VRF of the input port).
// Drops: as ipv4-reassembly ('reasm-overlap', 'reasm-too-many-frags', 'reasm-too-big' (end past
// min(65535, bufSize - 54)), 'reasm-timeout', 'reasm-table-full', 'no-mbuf', 'frag-error' for a
// malformed fragment: payload length < 8, empty non-atomic fragment, M set and a length that is not
// a multiple of 8, inconsistent lengths). Linux would send ICMPv6 parameter problems for some of
// these; the fast path only drops (counted).
// Clock: run() calls tick() once per vector (reads the worker's heartbeat field, Graph.heartbeat(),
// no allocation; see ReassemblyOptions.now) and times out old datagrams. Incomplete datagrams pin a
// buffer each: the graph should also call tick() when idle, e.g. from Graph.heartbeat().
// Options (constructor): contexts (1024), timeoutMs (2000), maxFrags (64), now (injected clock).

import { dropReason, exceptionReason } from '../../shared-mem/stats';
import { ETH_HLEN, rd32, type FpContext } from '../context';
import { GraphNode } from '../graph-node';
import {
  ADMIT_DROP, ADMIT_DUP, D_FRAG_ERROR, D_REASM_TOO_BIG, ReassemblyTable, type PacketSink, type ReassemblyOptions,
} from '../reassembly';
import { VEC, vpush, type Vector } from '../vector';
import type { DropNode } from './drop';
import type { ExceptionNode } from './exception';

const X_EXT = exceptionReason('ipv6-ext');
const D_BAD_LENGTH = dropReason('ipv6-bad-length');
const NH_FRAGMENT = 44;
/** Ethernet + IPv6 fixed header. */
const HDR = ETH_HLEN + 40;

/** Next-header values that are extension headers (as ipv6-input). */
const EXT = new Uint8Array(256);
for (const nh of [0, 43, 44, 51, 60, 135, 139, 140, 253, 254]) EXT[nh] = 1;

export class Ipv6ReassemblyNode extends GraphNode {
  readonly name = 'ipv6-reassembly';
  next!: PacketSink;
  exception!: ExceptionNode;
  drop!: DropNode;
  readonly table: ReassemblyTable;
  /** Atomic fragments passed on (statistics). */
  atomic = 0;

  constructor(ctx: FpContext, opts: ReassemblyOptions = {}) {
    super(ctx);
    this.table = new ReassemblyTable(ctx, 10, HDR, HDR, 65535, opts);
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
    if (v.len[i] < HDR) { this.drop.add(v, i, D_BAD_LENGTH); return; }
    const nh = m[o + 6];
    if (nh !== NH_FRAGMENT) {
      if (EXT[nh] !== 0) this.exception.add(v, i, X_EXT);
      else this.pass(v, i, v.off[i], v.len[i]);
      return;
    }
    const pl = (m[o + 4] << 8) | m[o + 5];
    if (pl < 8 || HDR + pl > v.len[i]) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const fw = (m[o + 42] << 8) | m[o + 43];
    const start = fw & 0xfff8, last = (fw & 1) === 0, len = pl - 8;
    if (start === 0 && last) { this.atomicFragment(v, i, pl); return; }
    if (len === 0 || (!last && (len & 7) !== 0)) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    const k = t.k;
    for (let j = 0; j < 4; j++) {
      k[j] = rd32(m, o + 8 + 4 * j);
      k[4 + j] = rd32(m, o + 24 + 4 * j);
    }
    k[8] = rd32(m, o + 44);
    k[9] = this.ctx.portVrf[port];
    const c = t.admit(port, start, len, last);
    if (c === ADMIT_DUP) { this.drop.addUncounted(v.mbuf[i]); return; }
    if (c === ADMIT_DROP) { this.drop.add(v, i, t.dropWhy); return; }
    const complete = t.complete;
    m.copyWithin(t.bufOff[c] + HDR + start, o + 48, o + 48 + len);
    t.ecn[c] |= 1 << ((m[o + 1] >>> 4) & 3);
    if (start === 0) {
      const hs = c * HDR;
      for (let j = 0; j < HDR; j++) t.hdr[hs + j] = m[off + j];
      t.hdr[hs + ETH_HLEN + 6] = m[o + 40]; // next header of the fragmentable part
      t.hdrLen[c] = HDR;
      t.outPort[c] = port;
      t.outAux[c] = v.aux[i];
    }
    this.drop.addUncounted(v.mbuf[i]);
    if (complete) this.complete(c);
  }

  /** Writes the saved headers in front of the payload of complete context c and hands it to next. */
  private complete(c: number): void {
    const m = this.ctx.mem, t = this.table;
    const plen = t.total[c], base = t.bufOff[c], hs = c * HDR;
    for (let j = 0; j < HDR; j++) m[base + j] = t.hdr[hs + j];
    const o = base + ETH_HLEN;
    m[o + 4] = plen >>> 8;
    m[o + 5] = plen & 255;
    if ((t.ecn[c] & 8) !== 0 && (m[o + 1] & 0x30) !== 0) m[o + 1] |= 0x30;
    const q = this.next.input;
    if (q.n === VEC) this.next.run();
    if (q.n === VEC) { t.discard(c, D_FRAG_ERROR); return; } // next could not take it (re-entered): never seen
    vpush(q, t.buf[c], base, HDR + plen, t.outPort[c], t.outAux[c]);
    t.release(c);
  }

  /** Offset 0 and M clear: the Fragment header is removed in place and the packet goes on. */
  private atomicFragment(v: Vector, i: number, pl: number): void {
    const m = this.ctx.mem, off = v.off[i], o = off + ETH_HLEN;
    const nh = m[o + 40], npl = pl - 8;
    m.copyWithin(off + 8, off, off + HDR);
    const no = o + 8;
    m[no + 4] = npl >>> 8;
    m[no + 5] = npl & 255;
    m[no + 6] = nh;
    this.atomic++;
    this.pass(v, i, off + 8, HDR + npl);
  }

  private pass(v: Vector, i: number, off: number, len: number): void {
    const q = this.next.input;
    if (q.n === VEC) this.next.run();
    if (q.n === VEC) { this.drop.add(v, i, D_FRAG_ERROR); return; }
    vpush(q, v.mbuf[i], off, len, v.port[i], v.aux[i]);
  }
}
