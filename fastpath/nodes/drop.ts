// drop: frees packets. Every packet enters with a drop reason (DROP_REASONS index), counted on its
// input port (the caller charges 'tx-full' to the egress port itself, see port-tx).

import { DROP_BASE, PORT_STRIDE } from '../../shared-mem/stats';
import { GraphNode } from '../graph-node';
import { VEC, type Vector } from '../vector';

export class DropNode extends GraphNode {
  readonly name = 'drop';
  /** Packets freed (all reasons). */
  packets = 0;

  /** Drops packet i of v, counting `reason` on its input port. */
  add(v: Vector, i: number, reason: number): void {
    this.addMbuf(v.mbuf[i], v.port[i], reason);
  }

  /** Drops an mbuf that is not in a vector, counting `reason` on `port`. */
  addMbuf(mbuf: number, port: number, reason: number): void {
    this.addUncounted(mbuf);
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
