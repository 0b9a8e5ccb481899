// lfp_pktio bad input: every mistake is a clear JS Error (TypeError / RangeError / Error with code), never a crash,
// and a refused burst changes nothing (the caller still holds its mbufs). Needs root and the built addon.

import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as pktio from '../../native/pktio';

// Same options in every pktio-*.test.ts: mocha runs them in one process and the EAL initialises once per process.
const POOL_OPTS: pktio.InitOptions = { eal: ['--vdev=net_ring0'], mbufs: 8191 };

const PKTIO_JS = path.resolve(__dirname, '../../native/pktio.js');

type Err = Error & { code?: string; errno?: number };
const is = (re: RegExp, code?: string) => (e: Err) => {
  assert.match(e.message, re);
  if (code !== undefined) assert.equal(e.code, code, e.message);
  return true;
};

describe('pktio: bad input', function () {
  this.timeout(60000);
  let pool: pktio.Pool;
  let ring = -1;
  const mb = new Uint32Array(8), off = new Uint32Array(8), len = new Uint32Array(8);

  before(function () {
    if (!pktio.available()) throw new Error(`lfp_pktio is not built (${pktio.addonPath})`);
    pool = pktio.init(POOL_OPTS);
    ring = pktio.dpdkPort('net_ring5');
  });

  after(function () {
    if (ring >= 0) pktio.close(ring);
  });

  afterEach(function () {
    assert.equal(pktio.poolStats().held, 0, 'the test gave back all its mbufs');
  });

  it('init: wrong option types', function () {
    assert.throws(() => pktio.init({ mbufs: 'x' as unknown as number }), TypeError);
    assert.throws(() => pktio.init({ mbufs: 10 }), RangeError);
    assert.throws(() => pktio.init({ eal: 'x' as unknown as string[] }), TypeError);
    assert.throws(() => pktio.init(undefined as unknown as pktio.InitOptions), TypeError);
  });

  it('init: a bad EAL argument is reported with what the EAL said (child process)', function () {
    const r = spawnSync(process.execPath, ['-e', `
      const pktio = require(${JSON.stringify(PKTIO_JS)});
      for (let i = 0; i < 2; i++) {
        try { pktio.init({ eal: ['--no-such-eal-option'], mbufs: 1023 }); } catch (e) { console.log(e.code + ' ' + e.message); }
      }`], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^EINVAL pktio\.init: rte_eal_init\(.*--no-such-eal-option\): -22 \(Invalid argument\).*unrecognized option '--no-such-eal-option'/);
    assert.doesNotMatch(lines[0], /Usage:/);
    assert.match(lines[1], /an earlier init\(\) failed/);
    assert.equal(r.stderr, '', 'nothing printed by the EAL itself');
  });

  it('dpdkPort: unknown devargs, missing interface, bad options, device already open', function () {
    assert.throws(() => pktio.dpdkPort('net_bogus0'), is(/pktio\.dpdkPort\("net_bogus0"\): rte_dev_probe: -\d+ \(/));
    assert.throws(() => pktio.dpdkPort('net_af_packet9,iface=lfp-nosuch0'),
      is(/pktio\.dpdkPort\("net_af_packet9,iface=lfp-nosuch0"\): rte_dev_probe: -1 \(failed\); DPDK: .*SIOCGIFINDEX.*No such device/));
    assert.throws(() => pktio.dpdkPort('net_ring6', { rxq: 0 }), is(/opts\.rxq must be an integer in \[1, 64\], got 0/, 'ERR_OUT_OF_RANGE'));
    assert.throws(() => pktio.dpdkPort('net_ring6', { netns: '/run/netns/lfp-no-such-ns' }), is(/open\("\/run\/netns\/lfp-no-such-ns"\): ENOENT/, 'ENOENT'));
    assert.throws(() => pktio.dpdkPort(42 as unknown as string), TypeError);
    assert.throws(() => pktio.dpdkPort(''), TypeError);
    assert.throws(() => pktio.dpdkPort('net_ring5'), is(/already open as port/, 'EBUSY'));
    assert.throws(() => pktio.dpdkPort('net_ring6', { rxq: 64 }), is(/64 rx \/ 1 tx queues requested, the device has at most 16 \/ 16/, 'EINVAL'));
    // After all that the vdev can still be opened normally.
    const p = pktio.dpdkPort('net_ring6');
    pktio.close(p);
  });

  it('kernelPort / tapPort: missing interface, bad names, MACs, MTUs', function () {
    assert.throws(() => pktio.kernelPort('lfp-nosuch0'), is(/pktio\.kernelPort\("lfp-nosuch0"\): no interface "lfp-nosuch0"/, 'ENODEV'));
    assert.throws(() => pktio.kernelPort('x'.repeat(20)), RangeError);
    assert.throws(() => pktio.kernelPort('lo', { mode: 'af_xdp' as 'af_packet' }), RangeError);
    assert.throws(() => pktio.kernelPort('lo', { blockSize: 5000 }), RangeError);
    assert.throws(() => pktio.tapPort('lfpbad0', { mac: 'zz:00:00:00:00:01', mtu: 1500 }), is(/mac must look like/, 'ERR_OUT_OF_RANGE'));
    assert.throws(() => pktio.tapPort('lfpbad0', { mac: '03:00:00:00:00:01', mtu: 1500 }), is(/multicast/));
    assert.throws(() => pktio.tapPort('lfpbad0', { mac: '02:00:00:00:00:01', mtu: 9000 }), RangeError);
    assert.throws(() => pktio.tapPort('lfpbad0', undefined as unknown as pktio.TapPortOptions), TypeError);
    assert.throws(() => pktio.tapPort('a/b', { mac: '02:00:00:00:00:01', mtu: 1500 }), RangeError);
    assert.throws(() => pktio.tapPort('lfpbad0', { mac: '02:00:00:00:00:01', mtu: 1500, netns: '/etc' }), /not a network namespace/);
    assert.throws(() => pktio.tapPort('lfpbad0', { mac: '02:00:00:00:00:01', mtu: 1500, netns: '/etc/hostname' }), is(/setns \(not a network namespace\)/, 'EINVAL'));
  });

  it('wrong port handles', function () {
    for (const h of [9999, -1, 1.5]) {
      assert.throws(() => pktio.rx(h, mb, off, len, 8), RangeError);
      assert.throws(() => pktio.tx(h, mb, off, len, 0), RangeError);
      assert.throws(() => pktio.portInfo(h), RangeError);
      assert.throws(() => pktio.close(h), RangeError);
    }
    assert.throws(() => pktio.rx(9999, mb, off, len, 8), is(/pktio\.rx: 9999 is not an open port handle/, 'ERR_OUT_OF_RANGE'));
    assert.throws(() => pktio.rx('0' as unknown as number, mb, off, len, 8), TypeError);
    assert.throws(() => pktio.setCarrier(ring, true), is(/is a dpdk port, not a tap port/));
    assert.throws(() => pktio.setMtu(ring, 1400), is(/rte_eth_dev_set_mtu\(port \d+, 1400\): -95 \(Operation not supported\)/, 'EOPNOTSUPP'));
  });

  it('wrong arrays and counts', function () {
    assert.throws(() => pktio.rx(ring, new Int32Array(8) as unknown as Uint32Array, off, len, 8), is(/mbuf must be a Uint32Array/, 'ERR_INVALID_ARG_TYPE'));
    assert.throws(() => pktio.rx(ring, mb, [] as unknown as Uint32Array, len, 8), TypeError);
    assert.throws(() => pktio.rx(ring, mb, off, len, 9), is(/max must be an integer in \[0, 8\]/));
    assert.throws(() => pktio.rx(ring, mb, off, new Uint32Array(4), 8), RangeError);
    assert.throws(() => pktio.rx(ring, mb, off, len, 8, 1), is(/queue must be an integer in \[0, 0\]/));
    assert.throws(() => pktio.alloc(mb, off, 9), RangeError);
    assert.throws(() => pktio.free(mb, -1), RangeError);
  });

  it('tx / free of mbufs the caller does not hold, duplicates, indices out of range: nothing happens', function () {
    assert.equal(pktio.alloc(mb, off, 4), 4);
    len.fill(60);
    const held = mb.slice(0, 4);
    const bad = (i: number, v: number, re: RegExp, type: new (...a: never[]) => Error = Error) => {
      const saved = mb[i];
      mb[i] = v;
      assert.throws(() => pktio.tx(ring, mb, off, len, 4), (e: Error) => e instanceof type && re.test(e.message));
      assert.throws(() => pktio.free(mb, 4), (e: Error) => e instanceof type && re.test(e.message));
      mb[i] = saved;
    };
    bad(2, pool.mbufs, /mbuf\[2\] = 8191 is not an mbuf index \(the pool has 8191\)/, RangeError);
    bad(3, 0xffffffff, /is not an mbuf index/, RangeError);
    bad(1, held[0], /mbuf\[1\] = \d+ appears twice in the burst/);
    // An index nobody holds (take one, free it, use it).
    const other = new Uint32Array(1), otherOff = new Uint32Array(1);
    pktio.alloc(other, otherOff, 1);
    pktio.free(other, 1);
    bad(3, other[0], /is not held by the caller/);
    assert.equal(pktio.poolStats().held, 4, 'the refused bursts left the 4 mbufs held');
    assert.equal(pktio.tx(ring, mb, off, len, 4), 4, 'and they can still be sent');
    const n = pktio.rx(ring, mb, off, len, 8);
    assert.equal(n, 4);
    pktio.free(mb, n);
    assert.throws(() => pktio.free(mb, n), /is not held by the caller/, 'double free');
  });

  it('off/len outside the mbuf buffer are refused', function () {
    assert.equal(pktio.alloc(mb, off, 2), 2);
    const start = off[0] - pool.headroom; // first byte of mbuf 0's buffer
    const cases: Array<[number, number]> = [
      [start - 1, 60],                       // before the buffer (into the mbuf header)
      [start, pool.bufLen + 1],              // past its end
      [off[0] + pool.bufSize - 10, 11],      // ends one byte too far
      [off[0], 0],                           // empty
      [off[1], 60],                          // another mbuf's buffer
      [0xfffffff0, 0x20],                    // 32-bit wrap-around
    ];
    for (const [o, l] of cases) {
      const o1 = off[1];
      off[0] = o;
      len[0] = l;
      len[1] = 60;
      assert.throws(() => pktio.tx(ring, mb, off, len, 2), is(/packet 0 \(mbuf \d+\): off \d+ len \d+ is not a non-empty window of its buffer/, 'ERR_OUT_OF_RANGE'));
      off[1] = o1;
    }
    // The whole buffer, headroom included, is fine.
    off[0] = start;
    len[0] = pool.bufLen;
    assert.equal(pktio.tx(ring, mb, off, len, 2), 2);
    const n = pktio.rx(ring, mb, off, len, 8);
    assert.equal(n, 2);
    assert.equal(off[0], start);
    assert.equal(len[0], pool.bufLen);
    pktio.free(mb, n);
  });

  it('other threads get a clear error (the pool belongs to the thread that called init)', async function () {
    const msgs = await new Promise<string[]>((resolve, reject) => {
      const w = new Worker(`
        const { parentPort } = require('worker_threads');
        const pktio = require(${JSON.stringify(PKTIO_JS)});
        const out = [];
        try { pktio.init(${JSON.stringify(POOL_OPTS)}); } catch (e) { out.push(e.message); }
        try { pktio.poolStats(); } catch (e) { out.push(e.message); }
        parentPort.postMessage(out);`, { eval: true });
      w.on('message', resolve);
      w.on('error', reject);
    });
    assert.equal(msgs.length, 2);
    assert.match(msgs[0], /already initialised by another thread/);
    assert.match(msgs[1], /belongs to the thread that called init/);
  });
});
