// exception: hands packets to Linux through the DPVI (TAP) of their INPUT port, frame unchanged
// (nodes decide exceptions before modifying a packet). Counted by reason on the input port when
// they enter; dpviPackets/dpviBytes when the DPVI took them, drop 'dpvi-full' otherwise
// (fastpath/bursts.ts: one io.toDpvi burst per input port).

import { EXC_BASE, PORT_STRIDE } from '../../shared-mem/stats';
import { PortBursts } from '../bursts';
import type { FpContext } from '../context';
import { GraphNode } from '../graph-node';
import { VEC, vmove, type Vector } from '../vector';

export class ExceptionNode extends GraphNode {
  readonly name = 'exception';
  private readonly bursts: PortBursts;

  constructor(ctx: FpContext) {
    super(ctx);
    this.bursts = new PortBursts(ctx, true);
  }

  /** Packet i of v goes to Linux; `reason` is an EXCEPTION_REASONS index (kept in aux). */
  add(v: Vector, i: number, reason: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    vmove(q, v, i, reason);
    this.ctx.counters[v.port[i] * PORT_STRIDE + EXC_BASE + reason]++;
  }

  run(): void {
    this.bursts.flush(this.input);
  }
}
