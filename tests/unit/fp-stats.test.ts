import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import {
  C_RX_PACKETS, DROP_BASE, DROP_REASONS, EXCEPTION_REASONS, EXC_BASE, PORT_COUNTERS, PORT_STRIDE, STATS_HDR, STATS_PAGE, STATS_VERSION, StatsFile,
  WORKER_FIELDS, counterIndex, dropReason, exceptionReason, nonZero, statsLayout,
} from '../../shared-mem/stats';
import { Graph } from '../../fastpath/graph';
import { available as nativeAvailable } from '../../native';
import { makeWorld, udp4Frame } from './fp-helpers';
import { MemIo } from '../../fastpath/mem-io';
import { Vector } from '../../fastpath/vector';

describe('fast-path stats file (shared-mem/stats.ts)', () => {
  it('layout: names unique, reason blocks inside the port stride, slices page aligned and disjoint', () => {
    const names = [...PORT_COUNTERS, ...EXCEPTION_REASONS.map((r) => `x:${r}`), ...DROP_REASONS.map((r) => `d:${r}`)];
    assert.strictEqual(new Set(names).size, names.length);
    assert.strictEqual(EXC_BASE, PORT_COUNTERS.length);
    assert.ok(DROP_BASE + DROP_REASONS.length <= PORT_STRIDE && PORT_STRIDE % 8 === 0);
    assert.strictEqual(exceptionReason('no-route'), EXCEPTION_REASONS.indexOf('no-route'));
    assert.strictEqual(dropReason('tx-full'), DROP_REASONS.indexOf('tx-full'));
    assert.throws(() => exceptionReason('nope' as never), /unknown exception reason/);
    const L = statsLayout({ workers: 3, ports: 5 });
    assert.strictEqual(L.sliceBytes % STATS_PAGE, 0);
    assert.ok(L.sliceBytes >= (WORKER_FIELDS.length + 5 * PORT_STRIDE) * 8);
    const f = StatsFile.create(new SharedArrayBuffer(L.totalSize), { workers: 3, ports: 5 });
    for (let w = 0; w < 3; w++) { const s = f.worker(w); s.fields.fill(w + 1); s.counters.fill(w + 1); }
    for (let w = 0; w < 3; w++) {
      const s = f.worker(w);
      assert.ok(s.fields.every((x) => x === w + 1) && s.counters.every((x) => x === w + 1), `worker ${w} slice overwritten`);
    }
    assert.throws(() => f.worker(3), RangeError);
  });

  it('create / attach / read: per worker and totals; attach refuses foreign or mismatched files', () => {
    const L = statsLayout({ workers: 2, ports: 3 });
    const sab = new SharedArrayBuffer(L.totalSize);
    const f = StatsFile.create(sab, { workers: 2, ports: 3 });
    f.worker(0).counters[counterIndex(1, C_RX_PACKETS)] = 5;
    f.worker(1).counters[counterIndex(1, C_RX_PACKETS)] = 7;
    f.worker(1).counters[counterIndex(2, EXC_BASE + exceptionReason('arp'))] = 2;
    f.worker(0).counters[counterIndex(0, DROP_BASE + dropReason('runt'))] = 1;
    const a = StatsFile.attach(sab);
    const snap = a.read();
    assert.strictEqual(snap.workers, 2);
    assert.strictEqual(snap.perWorker[1].ports[1].rxPackets, 7);
    assert.strictEqual(snap.total[1].rxPackets, 12);
    assert.strictEqual(snap.total[2].exceptions.arp, 2);
    assert.strictEqual(snap.total[0].drops.runt, 1);
    assert.deepStrictEqual(nonZero(snap.total[2]), { 'exception:arp': 2 });
    assert.throws(() => StatsFile.attach(new SharedArrayBuffer(8192)), /not an lfp stats file/);
    const u = new Uint32Array(sab);
    u[STATS_HDR.SCHEMA] ^= 1;
    assert.throws(() => StatsFile.attach(sab), /counter names differ/);
    u[STATS_HDR.SCHEMA] ^= 1;
    u[STATS_HDR.VERSION] = 99;
    assert.throws(() => StatsFile.attach(sab), /stats layout version 99/);
    u[STATS_HDR.VERSION] = STATS_VERSION;
    assert.throws(() => StatsFile.attach(sab.slice(0, 4096) as unknown as SharedArrayBuffer), /truncated|not an lfp/);
  });

  it('two graphs (workers) write their own slices; a reader sums them', () => {
    const L = statsLayout({ workers: 2, ports: 4 });
    const file = StatsFile.create(new SharedArrayBuffer(L.totalSize), { workers: 2, ports: 4 });
    const W = makeWorld();
    const io = new MemIo({ buffers: 256, ports: 4, capture: false });
    const graphs = [0, 1].map((w) => new Graph({ io, shm: W.r, ports: 4, stats: file.worker(w) }));
    const v = new Vector();
    for (const [w, n] of [[0, 3], [1, 4]]) {
      for (let i = 0; i < n; i++) io.inject(v, 0, udp4Frame(0, '192.168.1.1'));
      io.inject(v, 0, udp4Frame(0, '8.8.8.8'));
      graphs[w].process(v);
    }
    const s = file.read();
    assert.strictEqual(s.perWorker[0].ports[0].forwarded, 3);
    assert.strictEqual(s.perWorker[1].ports[0].forwarded, 4);
    assert.strictEqual(s.total[0].forwarded, 7);
    assert.strictEqual(s.total[0].rxPackets, 9);
    assert.strictEqual(s.total[0].exceptions['no-route'], 2);
    assert.strictEqual(s.total[1].txPackets, 7);
    assert.strictEqual(s.perWorker[1].fields.vectors, 1);
    assert.strictEqual(s.perWorker[1].fields.packets, 5);
  });

  it('a worker thread writes its slice of the same SharedArrayBuffer', async () => {
    const L = statsLayout({ workers: 2, ports: 2 });
    const sab = new SharedArrayBuffer(L.totalSize);
    const file = StatsFile.create(sab, { workers: 2, ports: 2 });
    const statsJs = path.resolve(__dirname, '../../shared-mem/stats.js');
    const w = new Worker(`
      const { workerData, parentPort } = require('worker_threads');
      const { StatsFile, counterIndex, C_TX_PACKETS } = require(${JSON.stringify(statsJs)});
      const s = StatsFile.attach(workerData).worker(1);
      for (let i = 0; i < 1000; i++) s.counters[counterIndex(1, C_TX_PACKETS)]++;
      parentPort.postMessage('done');`, { eval: true, workerData: sab });
    await new Promise<void>((res, rej) => { w.on('message', () => res()); w.on('error', rej); });
    await w.terminate();
    assert.strictEqual(file.read().total[1].txPackets, 1000);
  });

  it('file mapping through the native addon (createFile / open read-only)', function () {
    if (!nativeAvailable()) this.skip();
    const p = `/dev/shm/lfp-stats-test-${process.pid}`;
    try {
      const f = StatsFile.createFile(p, { workers: 1, ports: 2 });
      f.worker(0).counters[counterIndex(1, C_RX_PACKETS)] = 42;
      const r = StatsFile.open(p);
      assert.strictEqual(r.read().total[1].rxPackets, 42);
      f.worker(0).counters[counterIndex(1, C_RX_PACKETS)] = 43;
      assert.strictEqual(r.read().total[1].rxPackets, 43, 'live view');
    } finally {
      fs.rmSync(p, { force: true });
    }
  });
});
