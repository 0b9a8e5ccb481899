// vector.ts handOn: how a node hands the packets it kept in place to the next node.
import { strict as assert } from 'assert';
import { VEC, Vector, handOn, vpush, type PacketTaker } from '../../fastpath/vector';

class Taker implements PacketTaker {
  readonly input = new Vector();
  runs = 0;
  /** run() consumes its input unless stuck (a node busy further up a chain of early runs). */
  stuck = false;
  consumed: number[] = [];
  spilled: number[] = [];
  run(): void {
    this.runs++;
    if (this.stuck) return;
    for (let i = 0; i < this.input.n; i++) this.consumed.push(this.input.mbuf[i]);
    this.input.n = 0;
  }
  spill(v: Vector, from: number): void { for (let i = from; i < v.n; i++) this.spilled.push(v.mbuf[i]); }
  held(): number[] { return Array.from(this.input.mbuf.subarray(0, this.input.n)); }
}

function fill(v: Vector, from: number, n: number): void {
  for (let i = 0; i < n; i++) vpush(v, from + i, 64 * (from + i), 60, 1, 1000 + from + i);
}

describe('handOn (fastpath/vector.ts)', () => {
  it('gives the arrays to an empty input (no copy); the source is left empty with arrays of its own', () => {
    const v = new Vector(), t = new Taker();
    fill(v, 0, 10);
    const arr = v.mbuf;
    handOn(v, t);
    assert.equal(v.n, 0);
    assert.equal(t.input.mbuf, arr, 'the arrays moved');
    assert.notEqual(v.mbuf, arr);
    assert.deepEqual(t.held(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(t.input.aux[3], 1003);
    assert.equal(t.runs, 0);
  });

  it('appends after what the input holds when both fit, in order, without running the next node', () => {
    const v = new Vector(), t = new Taker();
    fill(t.input, 100, 5);
    fill(v, 0, 3);
    handOn(v, t);
    assert.deepEqual(t.held(), [100, 101, 102, 103, 104, 0, 1, 2]);
    assert.deepEqual([t.input.off[6], t.input.len[6], t.input.port[6], t.input.aux[6]], [64, 60, 1, 1001]);
    assert.equal(t.runs, 0);
    assert.equal(v.n, 0);
  });

  it('runs the next node first when they do not fit, then hands the vector on', () => {
    const v = new Vector(), t = new Taker();
    fill(t.input, 1000, VEC - 2);
    fill(v, 0, 3);
    handOn(v, t);
    assert.equal(t.runs, 1);
    assert.equal(t.consumed.length, VEC - 2);
    assert.deepEqual(t.held(), [0, 1, 2]);
  });

  it('a next node that cannot run (busy further up): what fits is queued, the rest spilled (counted drop)', () => {
    const v = new Vector(), t = new Taker();
    t.stuck = true;
    fill(t.input, 1000, VEC - 2);
    fill(v, 0, 5);
    handOn(v, t);
    assert.equal(t.runs, 1);
    assert.equal(t.input.n, VEC);
    assert.deepEqual(t.held().slice(-2), [0, 1]);
    assert.deepEqual(t.spilled, [2, 3, 4]);
    assert.equal(v.n, 0);
  });

  it('GraphNode.spill frees the packets and counts them as vector-full on their input port', async () => {
    const { MemIo } = await import('../../fastpath/mem-io');
    const { FpContext } = await import('../../fastpath/context');
    const { GraphNode } = await import('../../fastpath/graph-node');
    const { ShmReader } = await import('../../shared-mem/reader');
    const { ShmWriter } = await import('../../shared-mem/writer');
    const { computeLayout } = await import('../../shared-mem/layout');
    const { SMALL_CONFIG } = await import('../../shared-mem/test-fixtures');
    const { privateSlice, PORT_STRIDE, DROP_BASE, dropReason } = await import('../../shared-mem/stats');
    const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
    ShmWriter.create(sab, SMALL_CONFIG);
    const io = new MemIo({ buffers: 16, ports: 2, capture: false });
    const stats = privateSlice(2);
    const ctx = new FpContext(io, ShmReader.attach(sab), 2, stats);
    const node = new GraphNode(ctx);
    const v = new Vector();
    v.n = io.alloc(v.mbuf, v.off, 4);
    for (let i = 0; i < v.n; i++) v.port[i] = i & 1;
    assert.equal(io.available(), 12);
    node.spill(v, 1);
    assert.equal(io.available(), 15, 'three freed');
    const r = DROP_BASE + dropReason('vector-full');
    assert.equal(stats.counters[0 * PORT_STRIDE + r], 1);
    assert.equal(stats.counters[1 * PORT_STRIDE + r], 2);
  });
});
