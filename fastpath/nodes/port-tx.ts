// port-tx: sends packets on their egress port (aux), one io.tx burst per egress port. Counts
// txPackets/txBytes on the egress port; what the port does not take is freed and counted as drop
// 'tx-full' on the egress port (fastpath/bursts.ts).

import { PortBursts } from '../bursts';
import type { FpContext } from '../context';
import { GraphNode } from '../graph-node';
import { VEC, vpush } from '../vector';

export class PortTxNode extends GraphNode {
  readonly name = 'port-tx';
  private readonly bursts: PortBursts;

  constructor(ctx: FpContext) {
    super(ctx);
    this.bursts = new PortBursts(ctx, false);
  }

  /** Queues a packet for egress port `egress` (input port `port` kept for the vector). */
  add(mbuf: number, off: number, len: number, port: number, egress: number): void {
    const q = this.input;
    if (q.n === VEC) this.run();
    vpush(q, mbuf, off, len, port, egress);
  }

  run(): void {
    this.bursts.flush(this.input);
  }
}
