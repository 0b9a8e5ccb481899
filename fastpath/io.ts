// The packet I/O the graph is given (docs/fastpath-design.md "Ports"). The native addon (DPDK /
// AF_PACKET / TAP) implements it for real; fastpath/mem-io.ts implements it in memory for tests and
// the in-process benchmark. Every call handles a whole burst and starts at index 0 of its arrays.

import type { Vector } from './vector';

export interface PacketIo {
  /** The packet pool memory: packet bytes are mem[off .. off + len). */
  readonly mem: Uint8Array;
  /** Bytes usable from an alloc()'d offset (buffer size minus headroom). */
  readonly bufSize: number;
  /**
   * Sends v[0 .. count) (mbuf, off, len) on fast-path port `port`. Returns how many were taken (a
   * prefix: v[0 .. sent)); those now belong to the I/O layer. v[sent .. count) stay the caller's.
   */
  tx(port: number, v: Vector, count: number): number;
  /** Same as tx, towards the DPVI (Linux TAP) of `port`: exceptions, original frames. */
  toDpvi(port: number, v: Vector, count: number): number;
  /** Returns mbuf[0 .. count) to the pool. */
  free(mbuf: Uint32Array, count: number): void;
  /**
   * Allocates up to `count` buffers: mbuf[i] = index, off[i] = absolute offset of the data start
   * (after the headroom). Returns how many were allocated (fewer when the pool runs out).
   */
  alloc(mbuf: Uint32Array, off: Uint32Array, count: number): number;
}
