// Outbound sequence floors (issue 4): the stats daemon writes the kernel's oseq of an SA Linux sent on
// itself into the stats file's floor region (shared-mem/stats.ts FLOOR_*); the fast path's numbering
// (IpsecState.nextSeq) goes on above it, only for the SA incarnation the floor's tag names.

import * as assert from 'assert';
import * as fs from 'fs';
import type { AnyObject, XfrmSa } from '../../lib/model';
import { computeLayout } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG } from '../../shared-mem/test-fixtures';
import { FL_OSEQ, FL_TAG, FLOOR_STRIDE, SA_C_OSEQ, SA_C_TAG, SA_STRIDE, StatsFile, statsLayout } from '../../shared-mem/stats';
import { IpsecState, SA_OK } from '../../fastpath/ipsec';
import { available as nativeAvailable } from '../../native';
import { floorFor, kernelOseq, planPush, replayChanges, ZERO_COUNTERS } from '../../stats-daemon/sa-push';

const INF = '18446744073709551615';
const KEY = '000102030405060708090a0b0c0d0e0f' + 'cafebabe';

function sa(daddr: string, spi: number, extra: Partial<XfrmSa> = {}): AnyObject {
  const s: XfrmSa = {
    vrf: 0, daddr, saddr: '10.0.1.254', spi, proto: 50, family: 4, mode: 'tunnel', reqid: 1, flags: 0, replayWindow: 32, esn: false,
    selector: { family: 4, saddr: '0.0.0.0', daddr: '0.0.0.0', splen: 0, dplen: 0, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 },
    ifId: 0,
    lifetime: { softBytes: INF, hardBytes: INF, softPackets: INF, hardPackets: INF, softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
    aead: { name: 'rfc4106(gcm(aes))', key: KEY, icvBits: 128 }, ...extra,
  };
  return { kind: 'sa', obj: s };
}

interface World { w: ShmWriter; r: ShmReader; file: StatsFile; ips: IpsecState }

function world(): World {
  const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
  const w = ShmWriter.create(sab, SMALL_CONFIG);
  const r = ShmReader.attach(sab);
  const L = statsLayout({ workers: 1, ports: 2, sas: r.config.maxSas });
  const file = StatsFile.create(new SharedArrayBuffer(L.totalSize), { workers: 1, ports: 2, sas: r.config.maxSas });
  // as the graph does: only the worker's SA block is given; the floors are found in the same stats file
  const ips = new IpsecState(r, file.worker(0).sa);
  return { w, r, file, ips };
}

function slotOf(X: World, daddr: string, spi: number): number {
  const a = daddr.split('.').reduce((v, o) => v * 256 + Number(o), 0);
  const i = X.r.saLookup(0, a >>> 0, spi, 50);
  assert.ok(i >= 0, 'SA in shm');
  return i;
}

function tagOf(X: World, i: number): number { const b = new Uint32Array(256); X.r.readSa(i, b); return b[0]; }

/** Sends n packets' worth of sequence numbers on slot i; returns the last one. */
function send(X: World, i: number, n: number): number {
  let last = -1;
  for (let k = 0; k < n; k++) { assert.ok(X.ips.nextSeq(i)); last = X.ips.outHi[i] * 2 ** 32 + X.ips.outLo[i]; }
  return last;
}

describe('stats file: oseq floor region (version 3)', () => {
  it('layout: a page-aligned region after the worker slices; write / read; attach checks the header', () => {
    const L = statsLayout({ workers: 2, ports: 3, sas: 600 });
    assert.strictEqual(L.floorOffset, 4096 + 2 * L.sliceBytes);
    assert.strictEqual(L.floorBytes, Math.ceil(600 * FLOOR_STRIDE * 8 / 4096) * 4096);
    assert.strictEqual(L.totalSize, L.floorOffset + L.floorBytes);
    const f = StatsFile.create(new SharedArrayBuffer(L.totalSize), { workers: 2, ports: 3, sas: 600 });
    f.writeFloor(599, 0xfffffffe, 2 ** 40 + 5);
    assert.deepStrictEqual(f.readFloor(599), { tag: 0xfffffffe, oseq: 2 ** 40 + 5 });
    assert.strictEqual(f.floors()[599 * FLOOR_STRIDE + FL_OSEQ], 2 ** 40 + 5);
    assert.strictEqual(StatsFile.attach(f.sab).readFloor(599).tag, 0xfffffffe);
    assert.throws(() => f.writeFloor(600, 1, 1), /SA slot 600/);
    assert.throws(() => f.writeFloor(0, 1, -1), /oseq floor/);
    // no SA slots: empty region, nothing added
    assert.strictEqual(statsLayout({ workers: 1, ports: 1 }).floorBytes, 0);
  });

  it('createFile keepSas carries the floors over (native mapping); without keepSas they are zeroed', function () {
    if (!nativeAvailable()) this.skip();
    const path = `/dev/shm/lfp-test-floor-${process.pid}`;
    try {
      const f1 = StatsFile.createFile(path, { workers: 1, ports: 2, sas: 8 });
      f1.writeFloor(3, 77, 1234);
      const f2 = StatsFile.createFile(path, { workers: 2, ports: 2, sas: 8 }, { keepSas: true });
      assert.deepStrictEqual(f2.readFloor(3), { tag: 77, oseq: 1234 });
      const f3 = StatsFile.createFile(path, { workers: 1, ports: 2, sas: 8 });
      assert.deepStrictEqual(f3.readFloor(3), { tag: 0, oseq: 0 });
    } finally { fs.rmSync(path, { force: true }); }
  });
});

describe('fast path: outbound numbering above the kernel\'s floor (IpsecState.nextSeq)', function () {
  before(function () { if (!nativeAvailable()) this.skip(); });

  it('a floor with the entry\'s tag makes the numbering jump above it; lower floors change nothing', () => {
    const X = world();
    X.w.upsert(sa('192.168.100.1', 0x1001));
    const i = slotOf(X, '192.168.100.1', 0x1001);
    assert.strictEqual(X.ips.saUsable(i), SA_OK);
    assert.strictEqual(send(X, i, 3), 3);
    const tag = tagOf(X, i);
    assert.strictEqual(X.file.worker(0).sa[i * SA_STRIDE + SA_C_TAG], tag);
    X.file.writeFloor(i, tag, 100); // Linux sent up to 100 itself
    assert.strictEqual(send(X, i, 1), 101);
    assert.strictEqual(X.file.worker(0).sa[i * SA_STRIDE + SA_C_OSEQ], 101, 'the stats block\'s oseq follows');
    assert.strictEqual(send(X, i, 2), 103, 'the floor applies once');
    X.file.writeFloor(i, tag, 50); // an old floor below the fast path: ignored
    assert.strictEqual(send(X, i, 1), 104);
    X.ips.close();
  });

  it('a floor of another tag (an older SA in a reused slot, or a stale write) is ignored', () => {
    const X = world();
    X.w.upsert(sa('192.168.100.1', 0x1001));
    const i = slotOf(X, '192.168.100.1', 0x1001);
    assert.strictEqual(X.ips.saUsable(i), SA_OK);
    const tag = tagOf(X, i);
    X.file.writeFloor(i, (tag + 1) >>> 0, 5000);
    assert.strictEqual(send(X, i, 2), 2);
    X.file.floors()[i * FLOOR_STRIDE + FL_TAG] = tag; // now it names this SA
    assert.strictEqual(send(X, i, 1), 5001);
    X.ips.close();
  });

  it('a floor written before the fast path loads the SA (Linux sent first): the first number is above it', () => {
    const X = world();
    X.w.upsert(sa('192.168.100.1', 0x1001));
    const i = slotOf(X, '192.168.100.1', 0x1001);
    X.file.writeFloor(i, tagOf(X, i), 7);
    assert.strictEqual(X.ips.saUsable(i), SA_OK);
    assert.strictEqual(send(X, i, 1), 8);
    X.ips.close();
  });

  it('no ESN: a floor at 2^32 - 1 exhausts the SA (esp-seq-overflow), never wraps to reuse numbers', () => {
    const X = world();
    X.w.upsert(sa('192.168.100.1', 0x1001));
    const i = slotOf(X, '192.168.100.1', 0x1001);
    assert.strictEqual(X.ips.saUsable(i), SA_OK);
    X.file.writeFloor(i, tagOf(X, i), 0xfffffffe);
    assert.strictEqual(send(X, i, 1), 0xffffffff);
    assert.strictEqual(X.ips.nextSeq(i), false);
    X.ips.close();
  });

  it('ESN: a 64-bit floor', () => {
    const X = world();
    X.w.upsert(sa('192.168.100.1', 0x1001, { esn: true }));
    const i = slotOf(X, '192.168.100.1', 0x1001);
    assert.strictEqual(X.ips.saUsable(i), SA_OK);
    X.file.writeFloor(i, tagOf(X, i), 2 ** 32 + 9);
    assert.strictEqual(send(X, i, 1), 2 ** 32 + 10);
    assert.deepStrictEqual([X.ips.outHi[i], X.ips.outLo[i]], [1, 10]);
    X.ips.close();
  });

  it('private counters (no stats file): private zero floors, numbering unchanged', () => {
    const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
    const w = ShmWriter.create(sab, SMALL_CONFIG);
    const r = ShmReader.attach(sab);
    const ips = new IpsecState(r);
    assert.strictEqual(ips.saFloors.length, r.config.maxSas * FLOOR_STRIDE);
    w.upsert(sa('192.168.100.1', 0x1001));
    const i = r.saLookup(0, 0xc0a86401, 0x1001, 50);
    assert.strictEqual(ips.saUsable(i), SA_OK);
    assert.ok(ips.nextSeq(i));
    assert.strictEqual(ips.outLo[i], 1);
    ips.close();
  });
});

describe('fpsd: floor and push decisions (stats-daemon/sa-push.ts)', () => {
  const ae = (oseq: number, esn = false) => esn
    ? { replayEsn: { bmpLen: 1, oseq: oseq % 2 ** 32, seq: 0, oseqHi: Math.floor(oseq / 2 ** 32), seqHi: 0, replayWindow: 32, bmp: [0] } }
    : { replay: { oseq, seq: 0, bitmap: 0 } };

  it('floorFor: only when Linux moved its oseq itself (not what fpsd pushed) above the fast path', () => {
    assert.strictEqual(floorFor(10, 5, -1), 10, 'kernel above the fast path, nothing pushed yet');
    assert.strictEqual(floorFor(13, 5, 13), 0, 'what fpsd pushed (fast path oseq + margin): no floor');
    assert.strictEqual(floorFor(15, 5, 13), 15, 'Linux sent 2 after the push');
    assert.strictEqual(floorFor(15, 20, 13), 0, 'the fast path is above already');
    assert.strictEqual(floorFor(0, 0, -1), 0, 'inbound SA: kernel oseq 0');
  });

  it('kernelOseq (legacy and ESN) and planPush with the margin', () => {
    assert.strictEqual(kernelOseq(ae(42) as never), 42);
    assert.strictEqual(kernelOseq(ae(2 ** 32 + 3, true) as never), 2 ** 32 + 3);
    const now = { packets: 10, bytes: 1000, oseq: 10, iseq: 0 };
    assert.strictEqual(planPush(ae(3) as never, now, ZERO_COUNTERS, 0, 8).replay?.oseq, 18);
    assert.strictEqual(planPush(ae(30) as never, now, ZERO_COUNTERS, 0, 8).replay?.oseq, 30, 'the kernel above: kept');
    assert.strictEqual(planPush(ae(3) as never, { ...now, oseq: 0 }, ZERO_COUNTERS, 0, 8).replay?.oseq, 3, 'the fast path never sent: no push');
    assert.strictEqual(planPush(ae(3) as never, { ...now, oseq: 0xfffffffc }, ZERO_COUNTERS, 0, 8).replay?.oseq, 0xffffffff, 'clamped (no ESN)');
    const e = planPush(ae(3, true) as never, { ...now, oseq: 2 ** 32 - 2 }, ZERO_COUNTERS, 0, 8).replayEsn;
    assert.deepStrictEqual([e?.oseqHi, e?.oseq], [1, 6]);
  });

  it('replayChanges: a NEWAE carries the replay state only when it moves (never a stale copy of the kernel\'s oseq)', () => {
    const now = { packets: 10, bytes: 1000, oseq: 10, iseq: 0 };
    assert.strictEqual(replayChanges(ae(3) as never, planPush(ae(3) as never, now, ZERO_COUNTERS, 0, 8)), true);
    assert.strictEqual(replayChanges(ae(30) as never, planPush(ae(30) as never, now, ZERO_COUNTERS, 0, 8)), false, 'kernel above: lifetime only');
    assert.strictEqual(replayChanges(ae(30, true) as never, planPush(ae(30, true) as never, now, ZERO_COUNTERS, 0, 8)), false);
    assert.strictEqual(replayChanges(ae(3, true) as never, planPush(ae(3, true) as never, now, ZERO_COUNTERS, 0, 8)), true);
  });
});
