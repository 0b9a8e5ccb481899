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

export function vfull(v: Vector): boolean {
  return v.n >= VEC;
}
