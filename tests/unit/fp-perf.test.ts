import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { buildBenchWorld, runBench } from '../../fastpath/bench';
import { MemIo } from '../../fastpath/mem-io';
import { VEC, Vector } from '../../fastpath/vector';
import { makeWorld, udp4Frame, udp6Frame } from './fp-helpers';

interface ChildResult { scavenges: number; fwd: number; exc: number; drops: number; fragments: number; inFlight: number }

/** Scavenges (young-generation GCs) while the child replays `packets` packets with a 1 MB young generation. */
function scavenges(set: string, packets: number, patchReader = false): { count: number; summary: ChildResult } {
  const child = path.join(__dirname, 'fp-alloc-child.js');
  const r = spawnSync(process.execPath, ['--min-semi-space-size=1', '--max-semi-space-size=1', child, String(packets), set], {
    encoding: 'utf8', env: { ...process.env, FP_ALLOC_PATCH_READER: patchReader ? '1' : '0' }, timeout: 120000,
  });
  assert.strictEqual(r.status, 0, `child: status ${r.status} signal ${r.signal}\n${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, r.stdout);
  const summary = JSON.parse(line) as ChildResult;
  return { count: summary.scavenges, summary };
}

describe('fast path: allocation and throughput', function () {
  this.timeout(180000);

  it('no allocation per packet: 1e6 packets (IPv4/IPv6 forwarding, fragments, every exception and drop), 1 MB young generation -> no scavenge', () => {
    const { count, summary: s } = scavenges('graph', 1_000_000);
    assert.ok(s.fwd > 0 && s.exc > 0 && s.drops > 0 && s.fragments > 0, JSON.stringify(s));
    assert.strictEqual(s.inFlight, 0);
    assert.ok(count <= 2, `${count} scavenges during 1e6 packets: something allocates per packet (16 bytes per packet would make ~16)`);
  });

  it('IPv4 ECMP and tbl8 fallbacks: the graph allocates nothing once ShmReader.lookup4 returns int32 (the allocation left is in the reader)', () => {
    const unpatched = scavenges('reader', 1_000_000);
    const patched = scavenges('reader', 1_000_000, true);
    console.log(`      scavenges per 1e6 packets: reader as is ${unpatched.count}, with the int32 lookup4 ${patched.count}`);
    assert.ok(patched.count <= 2, `${patched.count} scavenges with the int32 lookup4`);
  });

  it('heapUsed stays flat over 1e6 packets in process', () => {
    const W = makeWorld({ io: new MemIo({ buffers: 4096, ports: 4, capture: false }) });
    const frames = [udp4Frame(0, '192.168.1.1'), udp6Frame(0, '2001:db8:100::1'), udp4Frame(0, '8.8.8.8'), udp4Frame(0, '198.51.100.1'),
      udp4Frame(0, '198.18.1.1', {}, 1, 2, new Array(1400).fill(1))];
    const v = new Vector();
    let k = 0;
    const run = (n: number): void => {
      for (let done = 0; done < n; done += VEC) {
        const got = W.io.alloc(v.mbuf, v.off, VEC);
        for (let i = 0; i < got; i++) {
          const f = frames[k++ % frames.length];
          W.io.mem.set(f, v.off[i]);
          v.len[i] = f.length;
          v.port[i] = 0;
        }
        v.n = got;
        W.g.process(v);
      }
    };
    run(200_000);
    const before = process.memoryUsage().heapUsed;
    run(1_000_000);
    const growth = process.memoryUsage().heapUsed - before;
    console.log(`      heapUsed growth over 1e6 packets: ${(growth / 1024).toFixed(0)} KiB`);
    assert.ok(growth < 4 * 1024 * 1024, `heap grew by ${growth} bytes`);
    assert.strictEqual(W.io.inFlight(), 0);
  });

  it('throughput: 64-byte UDP to random destinations over 100k routes (10 % ECMP)', () => {
    const t = Date.now();
    const bw = buildBenchWorld(100_000);
    const build = Date.now() - t;
    runBench(bw, 300_000);
    const r = runBench(bw, 2_000_000);
    console.log(`      ${(r.pps / 1e6).toFixed(2)} Mpps (graph alone ${(r.graphPps / 1e6).toFixed(2)} Mpps, rx emulation ${((r.rxSeconds / r.seconds) * 100).toFixed(0)} %), ` +
      `${r.packets} packets in ${r.seconds.toFixed(2)} s; world built in ${build} ms`);
    assert.ok(r.forwarded >= r.packets);
    assert.ok(r.pps > 100_000, 'at least 0.1 Mpps');
  });
});
