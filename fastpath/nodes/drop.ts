// drop: frees packets. Every packet enters with a drop reason (DROP_REASONS index), counted on its
// input port (the caller charges 'tx-full' to the egress port itself, see port-tx).

import { DROP_BASE, PORT_STRIDE } from '../../shared-mem/stats';
import type { FpContext } from '../context';
import { VEC, Vector } from '../vector';

export class DropNode {
  readonly name = 'drop';
  readonly input = new Vector();
  private readonly ctx: FpContext;
  /** Packets freed (all reasons). */
  packets = 0;

  constructor(ctx: FpContext) {
    this.ctx = ctx;
  }

  /** Drops packet i of v, counting `reason` on its input port. */
  add(v: Vector, i: number, reason: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    const j = q.n++;
    q.mbuf[j] = v.mbuf[i];
    this.ctx.counters[v.port[i] * PORT_STRIDE + DROP_BASE + reason]++;
  }

  /** Drops an mbuf that is not in a vector, counting `reason` on `port`. */
  addMbuf(mbuf: number, port: number, reason: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    q.mbuf[q.n++] = mbuf;
    this.ctx.counters[port * PORT_STRIDE + DROP_BASE + reason]++;
  }

  /** Drops an mbuf without counting (the caller counted). */
  addUncounted(mbuf: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    q.mbuf[q.n++] = mbuf;
  }

  run(): void {
    const q = this.input;
    if (q.n === 0) return;
    this.packets += q.n;
    this.ctx.io.free(q.mbuf, q.n);
    q.n = 0;
  }
}
