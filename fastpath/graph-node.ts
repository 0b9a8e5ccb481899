// What the nodes with an input vector have in common (all but eth-input, which is given the received
// vector): the input vector (filled by the previous nodes) and the worker's context. Only state and
// the constructor live here: every node keeps its own hot methods, so that their property loads and
// calls only ever see one class (monomorphic).

import type { FpContext } from './context';
import { Vector } from './vector';

export class GraphNode {
  readonly input = new Vector();
  protected readonly ctx: FpContext;

  constructor(ctx: FpContext) {
    this.ctx = ctx;
  }
}
