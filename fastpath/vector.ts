// Packet vectors (docs/fastpath-design.md): a batch of up to VEC packets in structure-of-arrays
// form, allocated once. A packet is (mbuf index, off, len, input port); `aux` is per-node scratch
// (next hop, egress port, reason code ...). Nodes copy the 5 integers of a packet from one vector
// into the next node's vector: no objects per packet.

export const VEC = 256;

export class Vector {
  /** Packets in the vector: entries 0..n-1 are valid. */
  n = 0;
  readonly mbuf = new Uint32Array(VEC);
  /** Absolute offset of the packet's first byte in the pool memory. */
  readonly off = new Uint32Array(VEC);
  readonly len = new Uint32Array(VEC);
  /** Input port. */
  readonly port = new Uint16Array(VEC);
  readonly aux = new Uint32Array(VEC);
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

export function vfull(v: Vector): boolean {
  return v.n >= VEC;
}
