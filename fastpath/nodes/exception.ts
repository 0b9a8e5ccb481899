// exception: hands packets to Linux through the DPVI (TAP) of their INPUT port, frame unchanged
// (nodes decide exceptions before modifying a packet). Counted by reason on the input port when
// they enter; dpviPackets/dpviBytes when the DPVI took them, drop 'dpvi-full' otherwise.

import { C_DPVI_BYTES, C_DPVI_PACKETS, DROP_BASE, EXC_BASE, PORT_STRIDE, dropReason } from '../../shared-mem/stats';
import type { FpContext } from '../context';
import { VEC, Vector, vcopyWithin } from '../vector';

const D_DPVI_FULL = dropReason('dpvi-full');

export class ExceptionNode {
  readonly name = 'exception';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  private readonly batch = new Vector();
  private readonly unsent = new Uint32Array(VEC);

  constructor(ctx: FpContext) {
    this.ctx = ctx;
  }

  /** Packet i of v goes to Linux; `reason` is an EXCEPTION_REASONS index. */
  add(v: Vector, i: number, reason: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    const j = q.n++;
    const port = v.port[i];
    q.mbuf[j] = v.mbuf[i];
    q.off[j] = v.off[i];
    q.len[j] = v.len[i];
    q.port[j] = port;
    q.aux[j] = reason;
    this.ctx.counters[port * PORT_STRIDE + EXC_BASE + reason]++;
  }

  run(): void {
    const q = this.input;
    while (q.n > 0) {
      // one burst per input port (vectors usually come from one port: one pass)
      const port = q.port[0];
      let same = true;
      for (let i = 1; i < q.n; i++) if (q.port[i] !== port) { same = false; break; }
      if (same) {
        this.send(port, q, q.n);
        q.n = 0;
        return;
      }
      const b = this.batch;
      b.n = 0;
      let m = 0;
      for (let i = 0; i < q.n; i++) {
        if (q.port[i] === port) {
          const j = b.n++;
          b.mbuf[j] = q.mbuf[i]; b.off[j] = q.off[i]; b.len[j] = q.len[i]; b.port[j] = port; b.aux[j] = q.aux[i];
        } else vcopyWithin(q, m++, i);
      }
      q.n = m;
      this.send(port, b, b.n);
      b.n = 0;
    }
  }

  private send(port: number, v: Vector, n: number): void {
    const ctx = this.ctx;
    let sent = ctx.io.toDpvi(port, v, n) | 0;
    if (sent < 0) sent = 0; else if (sent > n) sent = n;
    const c = ctx.counters, base = port * PORT_STRIDE;
    let bytes = 0;
    for (let i = 0; i < sent; i++) bytes += v.len[i];
    c[base + C_DPVI_PACKETS] += sent;
    c[base + C_DPVI_BYTES] += bytes;
    if (sent < n) {
      const u = this.unsent;
      for (let i = sent; i < n; i++) u[i - sent] = v.mbuf[i];
      ctx.io.free(u, n - sent);
      c[base + DROP_BASE + D_DPVI_FULL] += n - sent;
    }
  }
}
