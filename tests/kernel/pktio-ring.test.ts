// lfp_pktio (native/pktio/): EAL + pool initialisation, the net_ring loopback port (tx feeds rx), alloc/free
// accounting, burst cost, shutdown and the missing-build error. Needs root and the built addon.

import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as pktio from '../../native/pktio';

// Same options in every pktio-*.test.ts: mocha runs them in one process and the EAL initialises once per process
// (init() with the same options returns the same pool).
const POOL_OPTS: pktio.InitOptions = { eal: ['--vdev=net_ring0'], mbufs: 8191 };

const PKTIO_JS = path.resolve(__dirname, '../../native/pktio.js');

/** Runs a script in a fresh node process with `pktio` bound to the compiled wrapper; returns its stdout lines. */
function child(script: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', `const pktio = require(${JSON.stringify(PKTIO_JS)});\n${script}`], {
    encoding: 'utf8',
    timeout: 30000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('pktio: pool and net_ring loopback', function () {
  this.timeout(120000);
  let pool: pktio.Pool;
  let ring = -1;
  const V = 256;
  const mb = new Uint32Array(V), off = new Uint32Array(V), len = new Uint32Array(V);
  const mb2 = new Uint32Array(V), off2 = new Uint32Array(V), len2 = new Uint32Array(V);

  before(function () {
    if (!pktio.available()) throw new Error(`lfp_pktio is not built (${pktio.addonPath})`);
    pool = pktio.init(POOL_OPTS);
    ring = pktio.dpdkPort('net_ring0');
  });

  after(function () {
    if (ring >= 0 && pktio.initialised()) pktio.close(ring);
  });

  it('exposes the pool as one ArrayBuffer with the mbufs inside', function () {
    assert.equal(pool.mbufs, 8191);
    assert.equal(pool.headroom, 128);
    assert.equal(pool.bufLen, 2048 + 128);
    assert.equal(pool.bufSize, 2048);
    assert.ok(pool.mem instanceof Uint8Array);
    assert.ok(pool.mem.length >= pool.mbufs * pool.bufLen, `mem is ${pool.mem.length} bytes`);
    assert.ok(pool.eal.includes('--no-huge') || pool.hugepages);
    assert.ok(pool.eal.includes('--no-pci'));
    assert.ok(pool.eal.includes('--vdev=net_ring0'));
    const s = pktio.poolStats();
    assert.equal(s.size, 8191);
    assert.equal(s.held, 0);
  });

  it('init() again with the same options returns the same pool; other options throw', function () {
    const again = pktio.init(POOL_OPTS);
    assert.equal(again.mem.buffer, pool.mem.buffer);
    assert.throws(() => pktio.init({ eal: [], mbufs: 1024 }), (e: Error & { code?: string }) =>
      e.code === 'EBUSY' && /already initialised in this process with different options/.test(e.message));
  });

  it('alloc gives distinct mbufs with off after the headroom, inside mem', function () {
    const n = pktio.alloc(mb, off, V);
    assert.equal(n, V);
    assert.equal(new Set(mb).size, V);
    for (let i = 0; i < n; i++) {
      assert.ok(mb[i] < pool.mbufs);
      assert.ok(off[i] + pool.bufSize <= pool.mem.length);
    }
    assert.equal(pktio.poolStats().held, V);
    pktio.free(mb, n);
    assert.equal(pktio.poolStats().held, 0);
  });

  it('tx on net_ring comes back on rx with the same bytes (and pushed headers)', function () {
    const n = pktio.alloc(mb, off, 64);
    assert.equal(n, 64);
    for (let i = 0; i < n; i++) {
      // Packet i: 60 + i bytes of pattern; odd packets get 14 bytes pushed in front (into the headroom).
      if (i % 2 === 1) off[i] -= 14;
      len[i] = 60 + i;
      for (let j = 0; j < len[i]; j++) pool.mem[off[i] + j] = (i * 7 + j) & 0xff;
    }
    const sentOff = off.slice(0, n), sentLen = len.slice(0, n), sentMb = mb.slice(0, n);
    assert.equal(pktio.tx(ring, mb, off, len, n), n);
    assert.equal(pktio.poolStats().held, 0);
    const got = pktio.rx(ring, mb2, off2, len2, V);
    assert.equal(got, n);
    for (let i = 0; i < got; i++) {
      assert.equal(mb2[i], sentMb[i]);
      assert.equal(off2[i], sentOff[i]);
      assert.equal(len2[i], sentLen[i]);
      for (let j = 0; j < len2[i]; j++) assert.equal(pool.mem[off2[i] + j], (i * 7 + j) & 0xff);
    }
    const st = pktio.stats(ring);
    assert.ok(st.opackets >= n && st.ipackets >= n);
    assert.ok(st.obytes > 0 && st.ibytes > 0);
    pktio.free(mb2, got);
    assert.equal(pktio.rx(ring, mb2, off2, len2, V), 0);
  });

  it('portInfo / setUp on a DPDK port', function () {
    const info = pktio.portInfo(ring);
    assert.equal(info.kind, 'dpdk');
    assert.equal(info.name, 'net_ring0');
    assert.equal(info.driver, 'net_ring');
    assert.equal(info.linkUp, true);
    assert.equal(pktio.fd(ring), -1);
    pktio.setUp(ring, false);
    assert.equal(pktio.portInfo(ring).linkUp, false);
    const n = pktio.alloc(mb, off, 4);
    len.fill(60, 0, n);
    assert.equal(pktio.tx(ring, mb, off, len, n), 0, 'an administratively down port takes nothing');
    pktio.free(mb, n);
    pktio.setUp(ring, true);
    assert.equal(pktio.portInfo(ring).linkUp, true);
  });

  it('does not leak: 100k alloc/free and 100k tx/rx bursts leave the pool as it was', function () {
    const before = pktio.poolStats();
    for (let it = 0; it < 100000; it++) {
      const n = pktio.alloc(mb, off, 32);
      pktio.free(mb, n);
    }
    for (let it = 0; it < 100000; it++) {
      const n = pktio.alloc(mb, off, 8);
      len.fill(64, 0, n);
      const s = pktio.tx(ring, mb, off, len, n);
      if (s < n) pktio.free(mb.subarray(s), n - s);
      const r = pktio.rx(ring, mb2, off2, len2, V);
      pktio.free(mb2, r);
    }
    const after = pktio.poolStats();
    assert.equal(after.held, 0);
    assert.equal(after.avail, before.avail);
    assert.equal(after.inUse, before.inUse);
  });

  it('measures the cost of rx+tx bursts of 256 packets', function () {
    const n = pktio.alloc(mb, off, V);
    assert.equal(n, V);
    len.fill(64);
    const bursts = 20000;
    // warm up
    for (let i = 0; i < 1000; i++) {
      pktio.tx(ring, mb, off, len, V);
      pktio.rx(ring, mb, off, len, V);
    }
    const hz = Number(pktio.cyclesHz());
    const c0 = pktio.cyclesNow();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < bursts; i++) {
      const s = pktio.tx(ring, mb, off, len, V);
      const r = pktio.rx(ring, mb, off, len, V);
      if (s !== V || r !== V) throw new Error(`burst ${i}: tx ${s} rx ${r}`);
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const cycles = Number(pktio.cyclesNow() - c0);
    // Empty polls: the fixed cost of one call.
    const e0 = process.hrtime.bigint();
    for (let i = 0; i < bursts; i++) pktio.rx(ring, mb2, off2, len2, V);
    const emptyNs = Number(process.hrtime.bigint() - e0) / bursts;
    pktio.free(mb, V);
    const perPkt = ns / (bursts * V);
    console.log(`      net_ring tx+rx, 256-packet bursts: ${perPkt.toFixed(2)} ns/packet, ` +
      `${(cycles / (bursts * V)).toFixed(1)} cycles/packet (TSC ${(hz / 1e9).toFixed(2)} GHz), ` +
      `${(ns / bursts / 1000).toFixed(2)} µs per tx+rx pair; empty rx poll ${emptyNs.toFixed(0)} ns`);
    assert.ok(perPkt < 1000, `${perPkt} ns/packet`);
  });

  it('close() removes the vdev; it can be probed again', function () {
    pktio.close(ring);
    assert.throws(() => pktio.portInfo(ring), RangeError);
    ring = pktio.dpdkPort('net_ring0');
    assert.equal(pktio.portInfo(ring).name, 'net_ring0');
  });

  it('shutdown() frees everything, detaches mem, and later calls fail clearly (child process)', function () {
    const r = child(`
      const pool = pktio.init({ eal: ['--vdev=net_ring0'], mbufs: 1023 });
      const p = pktio.dpdkPort('net_ring0');
      const mb = new Uint32Array(4), off = new Uint32Array(4);
      pktio.alloc(mb, off, 4);                       // held by JS at shutdown: freed by it
      const before = pool.mem.length;
      pktio.shutdown();
      pktio.shutdown();                              // idempotent
      const out = { before, after: pool.mem.length };
      try { pktio.rx(p, mb, off, new Uint32Array(4), 4); } catch (e) { out.rx = e.message; }
      try { pktio.init({ eal: ['--vdev=net_ring0'], mbufs: 1023 }); } catch (e) { out.init = e.message; }
      console.log(JSON.stringify(out));
    `);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; after: number; rx: string; init: string };
    assert.ok(out.before > 0);
    assert.equal(out.after, 0, 'mem is detached after shutdown');
    assert.match(out.rx, /shut down/);
    assert.match(out.init, /shut down|cannot be initialised again/);
  });

  it('says how to build the addon when it is missing', function () {
    // The compiled wrapper, copied where ../../native/pktio/build does not exist.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-pktio-'));
    try {
      fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
      fs.copyFileSync(PKTIO_JS, path.join(dir, 'a', 'b', 'pktio.js'));
      fs.copyFileSync(path.join(path.dirname(PKTIO_JS), 'addon-loader.js'), path.join(dir, 'a', 'b', 'addon-loader.js'));
      const r = spawnSync(process.execPath, ['-e', `
        const p = require(${JSON.stringify(path.join(dir, 'a', 'b', 'pktio.js'))});
        console.log(p.available());
        try { p.init({}); } catch (e) { console.log(e.message); }`], { encoding: 'utf8' });
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], 'false');
      assert.match(lines[1], /lfp_pktio addon not built: .* is missing; build it with: cd native\/pktio && .*node-gyp rebuild --nodedir=\/usr/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
