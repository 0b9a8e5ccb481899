// Per-port bursts for the two nodes that hand packets to the I/O layer: port-tx (one io.tx burst per
// egress port, aux) and exception (one io.toDpvi burst per INPUT port, port). Counts what the port
// took (packets, bytes) on that port; what it did not take is freed and counted as a drop there
// ('tx-full' / 'dpvi-full'). One instance per node, made once; nothing is allocated per packet.

import { C_DPVI_BYTES, C_DPVI_PACKETS, C_TX_BYTES, C_TX_PACKETS, DROP_BASE, PORT_STRIDE, dropReason } from '../shared-mem/stats';
import type { FpContext } from './context';
import { VEC, Vector, vcopyWithin, vmove } from './vector';

const D_TX_FULL = dropReason('tx-full');
const D_DPVI_FULL = dropReason('dpvi-full');

export class PortBursts {
  private readonly ctx: FpContext;
  /** true: io.toDpvi per input port (exception); false: io.tx per egress port in aux (port-tx). */
  private readonly dpvi: boolean;
  private readonly cPackets: number;
  private readonly cBytes: number;
  private readonly cDrop: number;
  private readonly batch = new Vector();
  private readonly unsent = new Uint32Array(VEC);

  constructor(ctx: FpContext, dpvi: boolean) {
    this.ctx = ctx;
    this.dpvi = dpvi;
    this.cPackets = dpvi ? C_DPVI_PACKETS : C_TX_PACKETS;
    this.cBytes = dpvi ? C_DPVI_BYTES : C_TX_BYTES;
    this.cDrop = DROP_BASE + (dpvi ? D_DPVI_FULL : D_TX_FULL);
  }

  /** The port packet i of q goes to (two load sites: each sees one typed-array kind). */
  private key(q: Vector, i: number): number {
    return this.dpvi ? q.port[i] : q.aux[i];
  }

  /** Sends q[0 .. q.n), one burst per port (vectors usually hold one port: one pass); q.n = 0 after. */
  flush(q: Vector): void {
    while (q.n > 0) {
      const port = this.key(q, 0);
      let same = true, bytes = q.len[0];
      for (let i = 1; i < q.n; i++) {
        if (this.key(q, i) !== port) { same = false; break; }
        bytes += q.len[i];
      }
      if (same) {
        this.send(port, q, q.n, bytes);
        q.n = 0;
        return;
      }
      // this port's packets into the batch, the others compacted to the front of q
      const b = this.batch;
      b.n = 0;
      let m = 0;
      for (let i = 0; i < q.n; i++) {
        if (this.key(q, i) === port) vmove(b, q, i, q.aux[i]);
        else vcopyWithin(q, m++, i);
      }
      q.n = m;
      this.send(port, b, b.n, -1);
      b.n = 0;
    }
  }

  /** Sends v[0 .. n) on `port`; `all`: the bytes of the n packets when the caller summed them, else -1. */
  private send(port: number, v: Vector, n: number, all: number): void {
    const ctx = this.ctx, io = ctx.io;
    let sent = (this.dpvi ? io.toDpvi(port, v, n) : io.tx(port, v, n)) | 0;
    if (sent < 0) sent = 0; else if (sent > n) sent = n;
    const c = ctx.counters, base = port * PORT_STRIDE;
    let bytes = 0;
    if (sent === n && all >= 0) bytes = all;
    else for (let i = 0; i < sent; i++) bytes += v.len[i];
    c[base + this.cPackets] += sent;
    c[base + this.cBytes] += bytes;
    if (sent < n) {
      const u = this.unsent;
      for (let i = sent; i < n; i++) u[i - sent] = v.mbuf[i];
      ctx.io.free(u, n - sent);
      c[base + this.cDrop] += n - sent;
    }
  }
}
