import * as assert from 'assert';
import {
  CONFIG_FIELDS, DEFAULT_CONFIG, HDR, LAYOUT_VERSION, PAGE_SIZE, REGION_NAMES, computeLayout, fibIndex, fibKind, fibPlen,
  fibValue, resolveConfig, validateHeader,
} from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG } from '../../shared-mem/test-fixtures';
import { format4, format6, parse4, parse6, encodeMac, decodeMac } from '../../shared-mem/addr';

function fresh(cfg = SMALL_CONFIG): SharedArrayBuffer {
  return new SharedArrayBuffer(computeLayout(cfg).totalSize);
}

describe('shm layout', () => {
  it('computes page-aligned, non-overlapping regions in order', () => {
    for (const cfg of [{}, SMALL_CONFIG]) {
      const l = computeLayout(cfg);
      let end = 0;
      for (const n of REGION_NAMES) {
        const r = l.regions[n];
        assert.strictEqual(r.offset % PAGE_SIZE, 0, n);
        assert.strictEqual(r.size % PAGE_SIZE, 0, n);
        assert.strictEqual(r.offset, end, n);
        end += r.size;
      }
      assert.strictEqual(l.totalSize, end);
    }
  });

  it('default sizes: 1M IPv4 routes fit, the file is sparse-friendly (< 2 GiB)', () => {
    const l = computeLayout();
    assert.strictEqual(l.config.maxRoutes, 1_500_000);
    assert.deepStrictEqual(l.config, { ...DEFAULT_CONFIG });
    assert.ok(l.totalSize < 2 * 2 ** 30, `${l.totalSize}`);
    assert.strictEqual(CONFIG_FIELDS.length, Object.keys(DEFAULT_CONFIG).length);
  });

  it('validates the configuration', () => {
    assert.throws(() => resolveConfig({ maxRoutes: 0 }), /maxRoutes=0/);
    assert.throws(() => resolveConfig({ fib4Tables: 65 }), /fib4Tables=65/);
    assert.throws(() => resolveConfig({ maxNexthops: 1.5 }), /maxNexthops/);
    assert.throws(() => resolveConfig({ bogus: 1 } as never), /unknown shm config field "bogus"/);
    assert.strictEqual(resolveConfig({ fib6Entries: 1000 }).fib6Entries, 1024);
  });

  it('FIB value encoding', () => {
    const v = fibValue(2, 128, 8191);
    assert.deepStrictEqual([fibKind(v), fibPlen(v), fibIndex(v)], [2, 128, 8191]);
    assert.strictEqual(fibValue(1, 32, 0x3fffff) >>> 0, fibValue(1, 32, 0x3fffff));
  });

  it('address codecs round-trip canonical forms', () => {
    for (const s of ['0.0.0.0', '10.0.0.1', '255.255.255.255', '192.168.100.7']) assert.strictEqual(format4(parse4(s)), s);
    for (const s of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.1.1.1', '1..1.1', 'a.b.c.d', '']) assert.strictEqual(parse4(s), -1, s);
    const w = new Uint32Array(4);
    for (const s of ['::', '::1', '2001:db8::1', 'fe80::1:2', '2001:db8:0:1:1:1:1:1', '1::', '::ffff:10.0.0.1',
      '2001:db8::1:0:0:1', 'ff02::1:ff00:1', '1:2:3:4:5:6:7:8', '64:ff9b::a00:1']) {
      assert.ok(parse6(s, w, 0), s);
      assert.strictEqual(format6(w, 0), s);
    }
    assert.ok(parse6('2001:DB8:0:0::0001', w, 0));
    assert.strictEqual(format6(w, 0), '2001:db8::1');
    assert.ok(parse6('::10.0.0.1', w, 0));
    assert.deepStrictEqual(Array.from(w), [0, 0, 0, 0x0a000001]);
    for (const s of [':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::', ':1::', '1:']) assert.ok(!parse6(s, w, 0), s);
    const b = new Uint8Array(32);
    assert.strictEqual(encodeMac('aa:BB:0c:dd:ee:ff', b, 0, 32, 'mac'), 6);
    assert.strictEqual(decodeMac(b, 0, 6), 'aa:bb:0c:dd:ee:ff');
    assert.throws(() => encodeMac('aa:bb:c', b, 0, 32, 'mac'), /invalid mac/);
  });
});

describe('shm header', () => {
  it('create writes the header; a reader sees the configuration', () => {
    const sab = fresh();
    ShmWriter.create(sab, SMALL_CONFIG);
    const r = ShmReader.attach(sab, { name: '/dev/shm/test' });
    const h = r.header();
    assert.strictEqual(h.layoutVersion, LAYOUT_VERSION);
    assert.deepStrictEqual(h.config, resolveConfig(SMALL_CONFIG));
    assert.strictEqual(h.writerPid, process.pid);
    assert.ok(r.heartbeatAgeMs() >= 0 && r.heartbeatAgeMs() < 5000);
    assert.strictEqual(h.generation, 0);
    assert.strictEqual(h.counters.syncEnds, 0);
    assert.strictEqual(Object.keys(h.counters).length, 16);
  });

  it('refuses a file that is not lfp shared memory', () => {
    assert.throws(() => ShmReader.attach(new SharedArrayBuffer(100), { name: '/dev/shm/x' }), { message: '/dev/shm/x is not an lfp shared-memory file' });
    assert.throws(() => ShmReader.attach(new SharedArrayBuffer(1 << 16), { name: '/dev/shm/x' }), { message: '/dev/shm/x is not an lfp shared-memory file' });
    assert.throws(() => ShmWriter.attach(new SharedArrayBuffer(1 << 16), '/dev/shm/y'), { message: '/dev/shm/y is not an lfp shared-memory file' });
  });

  it('refuses another layout version with a clear message', () => {
    const sab = fresh();
    ShmWriter.create(sab, SMALL_CONFIG);
    new Uint32Array(sab)[HDR.VERSION] = LAYOUT_VERSION + 2;
    assert.throws(() => ShmReader.attach(sab, { name: '/dev/shm/lfp' }), {
      message: `/dev/shm/lfp: layout version ${LAYOUT_VERSION + 2}, this program expects ${LAYOUT_VERSION} — restart fpmd with a fresh file`,
    });
    assert.throws(() => ShmWriter.attach(sab, '/dev/shm/lfp'), /layout version/);
  });

  it('refuses a truncated mapping and a corrupt size', () => {
    const sab = fresh();
    ShmWriter.create(sab, SMALL_CONFIG);
    const total = computeLayout(SMALL_CONFIG).totalSize;
    const short = new SharedArrayBuffer(total - PAGE_SIZE);
    new Uint8Array(short).set(new Uint8Array(sab, 0, PAGE_SIZE));
    assert.throws(() => validateHeader(short, 'f'), /f: mapping is \d+ bytes but the file needs \d+ \(truncated\?\)/);
    new Uint32Array(sab)[HDR.TOTAL_LO] += PAGE_SIZE;
    assert.throws(() => validateHeader(sab, 'f'), /f: corrupt header/);
  });

  it('create needs a zero-filled, large enough mapping', () => {
    const sab = fresh();
    ShmWriter.create(sab, SMALL_CONFIG);
    assert.throws(() => ShmWriter.create(sab, SMALL_CONFIG), /zero-filled/);
    assert.throws(() => ShmWriter.create(new SharedArrayBuffer(PAGE_SIZE), SMALL_CONFIG), /the layout needs/);
  });

  it('counters and heartbeat', () => {
    const sab = fresh();
    const w = ShmWriter.create(sab, SMALL_CONFIG);
    w.addCounter('messages', 3);
    w.addCounter('syncEnds');
    w.addCounter(4, 2);
    w.setCounter('resyncs', 7);
    w.heartbeat(Date.now() - 1500);
    const r = ShmReader.attach(sab);
    const c = r.header().counters;
    assert.deepStrictEqual([c.messages, c.syncEnds, c.errors, c.resyncs], [3, 1, 2, 7]);
    assert.ok(r.heartbeatAgeMs() >= 1500 && r.heartbeatAgeMs() < 3000);
    assert.throws(() => w.addCounter('nope' as never), /unknown counter/);
  });
});
