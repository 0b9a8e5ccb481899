// Packet vectors (docs/fastpath-design.md): a batch of up to VEC packets in structure-of-arrays
// form, allocated once. A packet is (mbuf index, off, len, input port); `aux` is per-node scratch
// (next hop, egress port, reason code ...). Nodes copy the 5 integers of a packet from one vector
// into the next node's vector, or (the nodes of the forwarding path, when every packet goes on) keep
// them in place and hand the whole vector on with vswap: no objects per packet.

export const VEC = 256;

export class Vector {
  /** Packets in the vector: entries 0..n-1 are valid. */
  n = 0;
  mbuf = new Uint32Array(VEC);
  /** Absolute offset of the packet's first byte in the pool memory. */
  off = new Uint32Array(VEC);
  len = new Uint32Array(VEC);
  /** Input port. */
  port = new Uint16Array(VEC);
  aux = new Uint32Array(VEC);
}

export function createVector(): Vector {
  return new Vector();
}

/** Appends a packet; the caller checks `v.n < VEC` first (see `full`). Returns its slot. */
export function vpush(v: Vector, mbuf: number, off: number, len: number, port: number, aux: number): number {
  const i = v.n++;
  v.mbuf[i] = mbuf;
  v.off[i] = off;
  v.len[i] = len;
  v.port[i] = port;
  v.aux[i] = aux;
  return i;
}

/** Appends packet `i` of `src` to `dst` with a new aux value. The caller checks `dst.n < VEC`. */
export function vmove(dst: Vector, src: Vector, i: number, aux: number): void {
  const j = dst.n++;
  dst.mbuf[j] = src.mbuf[i];
  dst.off[j] = src.off[i];
  dst.len[j] = src.len[i];
  dst.port[j] = src.port[i];
  dst.aux[j] = aux;
}

/** Copies packet `i` of `v` to slot `j` of the same vector (compaction). */
export function vcopyWithin(v: Vector, j: number, i: number): void {
  v.mbuf[j] = v.mbuf[i];
  v.off[j] = v.off[i];
  v.len[j] = v.len[i];
  v.port[j] = v.port[i];
  v.aux[j] = v.aux[i];
}

/**
 * Exchanges the contents of two vectors (their arrays and counts; the objects stay where they are, so
 * references to a node's input vector stay valid): a node hands the packets it kept in place to the
 * next node without copying them. Callers: `b` empty (run its node first), neither being iterated.
 */
export function vswap(a: Vector, b: Vector): void {
  const mbuf = a.mbuf, off = a.off, len = a.len, port = a.port, aux = a.aux, n = a.n;
  a.mbuf = b.mbuf; a.off = b.off; a.len = b.len; a.port = b.port; a.aux = b.aux; a.n = b.n;
  b.mbuf = mbuf; b.off = off; b.len = len; b.port = port; b.aux = aux; b.n = n;
}

/** A node that takes packets: its input vector, its run() and what to do with packets it cannot take (GraphNode). */
export interface PacketTaker { readonly input: Vector; run(): void; spill(v: Vector, from: number): void }

/**
 * Hands every packet of `v` (a node's private work vector, or the received vector) to `next`, in order
 * after what `next.input` already holds: by exchanging the arrays when next.input is empty (the usual
 * case: no copy), by copying when they fit together, else by running `next` first. `v` is empty after.
 * `v` must be a vector nobody else appends to meanwhile (not a node's input: see GraphNode.runVector), so
 * that a node that runs again while its packets are handed on (a chain of early runs) cannot hand on
 * packets it has not processed.
 */
export function handOn(v: Vector, next: PacketTaker): void {
  for (let tries = 0; v.n > 0; tries++) {
    const q = next.input;
    if (q.n === 0) { vswap(v, q); return; }
    const room = VEC - q.n;
    if (v.n <= room || tries > 0) {
      // (a second try: next's run did not empty its input, i.e. next is running further up this chain of
      // early runs; what does not fit is dropped and counted, 'vector-full')
      const k = v.n <= room ? v.n : room;
      for (let i = 0; i < k; i++) vmove(q, v, i, v.aux[i]);
      if (k < v.n) next.spill(v, k);
      v.n = 0;
      return;
    }
    next.run();
  }
}

export function vfull(v: Vector): boolean {
  return v.n >= VEC;
}
