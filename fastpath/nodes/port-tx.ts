// port-tx: sends packets on their egress port (aux), one io.tx burst per egress port. Counts
// txPackets/txBytes on the egress port; what the port does not take is freed and counted as drop
// 'tx-full' on the egress port.

import { C_TX_BYTES, C_TX_PACKETS, DROP_BASE, PORT_STRIDE, dropReason } from '../../shared-mem/stats';
import type { FpContext } from '../context';
import { VEC, Vector, vcopyWithin } from '../vector';

const D_TX_FULL = dropReason('tx-full');

export class PortTxNode {
  readonly name = 'port-tx';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  private readonly batch = new Vector();
  private readonly unsent = new Uint32Array(VEC);

  constructor(ctx: FpContext) {
    this.ctx = ctx;
  }

  /** Queues a packet for egress port `egress` (input port `port` kept for the vector). */
  add(mbuf: number, off: number, len: number, port: number, egress: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    const j = q.n++;
    q.mbuf[j] = mbuf;
    q.off[j] = off;
    q.len[j] = len;
    q.port[j] = port;
    q.aux[j] = egress;
  }

  run(): void {
    const q = this.input;
    while (q.n > 0) {
      const egress = q.aux[0];
      let same = true;
      for (let i = 1; i < q.n; i++) if (q.aux[i] !== egress) { same = false; break; }
      if (same) {
        this.send(egress, q, q.n);
        q.n = 0;
        return;
      }
      const b = this.batch;
      b.n = 0;
      let m = 0;
      for (let i = 0; i < q.n; i++) {
        if (q.aux[i] === egress) {
          const j = b.n++;
          b.mbuf[j] = q.mbuf[i]; b.off[j] = q.off[i]; b.len[j] = q.len[i]; b.port[j] = q.port[i]; b.aux[j] = egress;
        } else vcopyWithin(q, m++, i);
      }
      q.n = m;
      this.send(egress, b, b.n);
      b.n = 0;
    }
  }

  private send(egress: number, v: Vector, n: number): void {
    const ctx = this.ctx;
    let sent = ctx.io.tx(egress, v, n) | 0;
    if (sent < 0) sent = 0; else if (sent > n) sent = n;
    const c = ctx.counters, base = egress * PORT_STRIDE;
    let bytes = 0;
    for (let i = 0; i < sent; i++) bytes += v.len[i];
    c[base + C_TX_PACKETS] += sent;
    c[base + C_TX_BYTES] += bytes;
    if (sent < n) {
      const u = this.unsent;
      for (let i = sent; i < n; i++) u[i - sent] = v.mbuf[i];
      ctx.io.free(u, n - sent);
      c[base + DROP_BASE + D_TX_FULL] += n - sent;
    }
  }
}
