// What the nodes with an input vector have in common (all but eth-input, which is given the received
// vector): the input vector (filled by the previous nodes) and the worker's context. Only state and
// the constructor live here (and spill, a cold path): every node keeps its own hot methods, so that
// their property loads and calls only ever see one class (monomorphic).

import { DROP_BASE, PORT_STRIDE, dropReason } from '../shared-mem/stats';
import type { FpContext } from './context';
import { Vector } from './vector';

const D_VECTOR_FULL = dropReason('vector-full');

export class GraphNode {
  /** Packets for this node (other nodes append to it, or hand it whole vectors: vector.ts handOn). */
  readonly input = new Vector();
  /**
   * The packets of a run, taken out of `input` at its start (vswap): the nodes that keep packets in
   * place and hand them on (handOn) work on this private vector, so that packets appended to `input`
   * while they run (early runs of other nodes) wait for their next run instead of being handed on
   * unprocessed.
   */
  protected readonly runVector = new Vector();
  protected readonly ctx: FpContext;

  constructor(ctx: FpContext) {
    this.ctx = ctx;
  }

  /**
   * Packets v[from .. v.n) that this node's input could not take (vector.ts handOn; not expected): freed
   * and counted as drop 'vector-full' on their input ports. v.n is left as it is (the caller clears it).
   */
  spill(v: Vector, from: number): void {
    const c = this.ctx.counters;
    for (let i = from; i < v.n; i++) c[v.port[i] * PORT_STRIDE + DROP_BASE + D_VECTOR_FULL]++;
    v.mbuf.copyWithin(0, from, v.n);
    this.ctx.io.free(v.mbuf, v.n - from);
  }
}
