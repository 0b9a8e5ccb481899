// Child process of fp-reassembly.test.ts: replays IPv4 and IPv6 fragments through ipv4-reassembly /
// ipv6-reassembly (in order, out of order, duplicates, overlaps, incomplete datagrams that time out,
// too big, malformed, atomic fragments, table evictions) and IPv6 packets through ipv6-fragment, with
// capture off, and prints as JSON the young-generation GCs (scavenges) during the measured part. Run
// with a 1 MB young generation: any scavenge is allocation on the hot path.
//   node --min-semi-space-size=1 --max-semi-space-size=1 build/tests/unit/fp-reasm-alloc-child.js [packets]

import { PerformanceObserver, constants, performance } from 'perf_hooks';
import { MemIo } from '../../fastpath/mem-io';
import { Ipv6FragmentNode } from '../../fastpath/nodes/ipv6-fragment';
import { VEC, type Vector } from '../../fastpath/vector';
import { makeWorld, rng } from './fp-helpers';
import { bytes, frag4, frag6, frags4, frags6, shuffle, v4Harness, v6Harness, whole6, type Dgram4, type Dgram6, type Frame } from './fp-reasm-helpers';

function main(): void {
  const packets = Number(process.argv[2] ?? 1_000_000);
  const io = new MemIo({ buffers: 8192, ports: 4, capture: false });
  const W = makeWorld({ io });
  const H4 = v4Harness(W, { contexts: 48, now: undefined }, false); // fewer than the datagrams in flight: evictions
  const H6 = v6Harness(W, { contexts: 256, now: undefined }, false); // now: undefined -> the heartbeat clock
  const F6 = new Ipv6FragmentNode(W.g.ctx, 1);
  F6.tx = W.g.portTx;
  F6.drop = W.g.drop;
  const rnd = rng(99);

  // IPv4 set: 60 datagrams shuffled, a duplicate, an overlapping datagram, an incomplete one, too big, malformed
  const f4: Frame[] = [];
  for (let k = 0; k < 60; k++) {
    const d: Dgram4 = { dst: '10.0.1.254', src: `10.0.2.${1 + (k % 9)}`, proto: 50, id: k, payload: bytes(200 + rnd(1600), k) };
    f4.push(...frags4(d, Math.max(Math.ceil(d.payload.length / 64 / 8) * 8, 8 * (1 + rnd(60)))));
  }
  const x4: Dgram4 = { dst: '10.0.1.254', src: '10.0.2.50', proto: 50, id: 1000, payload: bytes(1000) };
  f4.push(frag4(x4, 0, 512), frag4(x4, 0, 512), frag4(x4, 256, 512)); // duplicate then overlap (dead until the timeout)
  f4.push(frag4({ ...x4, id: 1001 }, 0, 512)); // incomplete: times out
  f4.push(frag4({ ...x4, id: 1002, payload: bytes(2000) }, 1600, 400, false)); // too big
  f4.push(frag4({ ...x4, id: 1003 }, 0, 12, true)); // malformed
  // IPv6 set: the same kinds, plus atomic fragments
  const f6: Frame[] = [];
  for (let k = 0; k < 60; k++) {
    const d: Dgram6 = { dst: '2001:db8:1::fe', src: `2001:db8:2::${1 + (k % 9)}`, nh: 50, id: k * 7919, payload: bytes(200 + rnd(1600), k) };
    f6.push(...frags6(d, Math.max(Math.ceil(d.payload.length / 64 / 8) * 8, 8 * (1 + rnd(60)))));
  }
  const x6: Dgram6 = { dst: '2001:db8:1::fe', src: '2001:db8:2::50', nh: 50, id: 1000, payload: bytes(1000) };
  f6.push(frag6(x6, 0, 512), frag6(x6, 0, 512), frag6(x6, 256, 512), frag6({ ...x6, id: 1001 }, 0, 512));
  f6.push(frag6({ ...x6, id: 1002, payload: bytes(2000) }, 1600, 400, false), frag6({ ...x6, id: 1003 }, 0, 12, true));
  f6.push(frag6({ ...x6, id: 1004, payload: bytes(300) }, 0, 300, false)); // atomic
  // IPv6 packets to fragment (egress 2, MTU 1280)
  const big6: Frame[] = [];
  for (let k = 0; k < 20; k++) big6.push({ port: 0, frame: whole6({ dst: '2001:db8:2::9', src: '2001:db8:1::fe', nh: 50, id: 0, payload: bytes(1281 + rnd(500), k) }) });

  const sets = [shuffle(f4, rnd), shuffle(f6, rnd), big6];
  const ks = [0, 0, 0];
  const fill = (q: Vector, set: number, aux: number): number => {
    const data = sets[set];
    const got = io.alloc(q.mbuf, q.off, VEC);
    for (let i = 0; i < got; i++) {
      const f = data[ks[set]++ % data.length];
      io.mem.set(f.frame, q.off[i]);
      q.len[i] = f.frame.length;
      q.port[i] = f.port;
      q.aux[i] = aux;
    }
    q.n = got;
    return got;
  };
  let done = 0, clock = 1.7e12; // Date.now()-like values in the heartbeat field (as fastpath/fp.ts stores them)
  const run = (n: number): void => {
    for (let target = done + n; done < target;) {
      clock += 3;
      W.g.heartbeat(clock);
      done += fill(H4.node.input, 0, 0);
      H4.node.run();
      done += fill(H6.node.input, 1, 0);
      H6.node.run();
      done += fill(F6.input, 2, 2 | (1280 << 16));
      F6.run();
      H4.sink.run(); H6.sink.run();
      W.g.portTx.run();
      if (W.g.exception.input.n > 0) W.g.exception.run();
      W.g.drop.run();
    }
  };
  const gcs: { start: number; kind: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, kind: (e as unknown as { detail: { kind: number } }).detail.kind });
  });
  obs.observe({ entryTypes: ['gc'] });
  run(300_000);
  const t0 = performance.now();
  run(packets);
  const t1 = performance.now();
  setTimeout(() => {
    obs.disconnect();
    const scavenges = gcs.filter((g) => g.start >= t0 && g.start <= t1 && g.kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
    const t4 = H4.node.table, t6 = H6.node.table;
    let drops = 0;
    for (let p = 0; p < 4; p++) drops += Object.values(W.g.portStats(p).drops).reduce((a, b) => a + b, 0);
    const summary = {
      scavenges, packets: done, ms: Math.round(t1 - t0), delivered: H4.sink.count + H6.sink.count,
      completed4: t4.completed, completed6: t6.completed, duplicates: t4.duplicates + t6.duplicates, timedOut: t4.timedOut + t6.timedOut,
      evicted: t4.evicted + t6.evicted, atomic: H6.node.atomic, fragments6: F6.fragments, drops, inFlight: 0,
    };
    t4.clear(); t6.clear();
    summary.inFlight = io.inFlight();
    console.log(JSON.stringify(summary));
  }, 200);
}

main();
