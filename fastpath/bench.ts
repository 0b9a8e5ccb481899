// In-process benchmark of the forwarding graph: 64-byte UDP frames (60 bytes + FCS) to random
// destinations over N IPv4 routes (10 % ECMP), through the graph on the in-memory I/O.
//
//   node build/fastpath/bench.js [routes=100000] [packets=5000000]
// It also prints the scavenges (young-generation GCs) during the measured run: allocation on the hot
// path shows up there (10 % ECMP routes: ShmReader.lookup4 boxes FIB words >= 2^31, see README).
//
// "rx" here only rewrites the fields that change per packet (MACs, TTL, checksum, destination,
// source port) into recycled buffers; its cost is measured alone and subtracted for graph-only.

import { PerformanceObserver, constants, performance } from 'perf_hooks';
import type { AnyObject } from '../lib/model';
import { computeLayout, type ShmConfig } from '../shared-mem/layout';
import { ShmReader } from '../shared-mem/reader';
import { ShmWriter } from '../shared-mem/writer';
import { Graph } from './graph';
import { MemIo } from './mem-io';
import { VEC, Vector } from './vector';

const PORT_MAC = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC = [0x02, 0xee, 0xee, 0xee, 0xee, 0x01];
const K = 1 << 16; // precomputed packets (destination, source port, checksum)

export interface BenchWorld {
  graph: Graph;
  io: MemIo;
  r: ShmReader;
  dst: Uint32Array;
  sport: Uint16Array;
  csum: Uint16Array;
  routes: number;
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
}

function mac(b: number[]): string { return b.map((x) => x.toString(16).padStart(2, '0')).join(':'); }

export function buildBenchWorld(routes = 100_000, seed = 1): BenchWorld {
  const cfg: Partial<ShmConfig> = {
    maxVrfs: 4, maxLinks: 16, maxAddrs: 16, maxRoutes: routes + 64, fib4Tables: 2, tbl8Groups: Math.max(1024, routes >> 3),
    fib6Tables: 2, fib6Entries: 1024, maxNexthops: 64, maxGroups: 16, maxNeigh: 64, maxRules: 8, maxPolicies: 1, maxSas: 1,
  };
  const sab = new SharedArrayBuffer(computeLayout(cfg).totalSize);
  const w = ShmWriter.create(sab, cfg);
  const link = (ifindex: number, name: string, m: number[]): AnyObject => ({ kind: 'link', obj: { vrf: 0, ifindex, name, kind: '', mac: mac(m), mtu: 1500, flags: 0x1003, adminUp: true, operUp: true, master: 0, link: 0, port: -1 } });
  w.upsert(link(2, 'eth0', PORT_MAC));
  w.upsert(link(3, 'eth1', [2, 0, 0, 0, 0, 2]));
  w.upsert(link(4, 'eth2', [2, 0, 0, 0, 0, 3]));
  w.setPorts(['eth0', 'eth1', 'eth2']);
  const gws: [string, number][] = [['10.0.1.1', 3], ['10.0.1.2', 3], ['10.0.2.1', 4], ['10.0.2.2', 4]];
  gws.forEach(([gw, ifindex], i) => w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex, family: 4, addr: gw, lladdr: `02:aa:00:00:00:0${i}`, state: 2, flags: 0 } }));
  const rnd = xorshift(seed);
  const seen = new Set<number>();
  const prefixes = new Uint32Array(routes), plens = new Uint8Array(routes);
  let n = 0;
  while (n < routes) {
    const r = rnd() % 100;
    const plen = r < 80 ? 24 : r < 95 ? 16 + (rnd() % 8) : 25 + (rnd() % 8);
    let a = (((1 + (rnd() % 223)) << 24) | (rnd() & 0xffffff)) >>> 0;
    if ((a >>> 24) === 10 || (a >>> 24) === 127) continue;
    a = (a & (0xffffffff << (32 - plen))) >>> 0;
    const key = a + plen * 2 ** 32;
    if (seen.has(key)) continue;
    seen.add(key);
    const ecmp = rnd() % 10 === 0;
    const g = gws[rnd() % 4];
    const nexthops = ecmp ? [{ gw: '10.0.1.1', ifindex: 3, weight: 1, flags: 0 }, { gw: '10.0.2.1', ifindex: 4, weight: 1, flags: 0 }] : [{ gw: g[0], ifindex: g[1], weight: 1, flags: 0 }];
    w.upsert({ kind: 'route', obj: { vrf: 0, table: 254, family: 4, dst: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`, plen, tos: 0, priority: 0, type: 'unicast', protocol: 4, scope: 0, nexthops } });
    prefixes[n] = a; plens[n] = plen; n++;
  }
  w.upsert({ kind: 'route', obj: { vrf: 0, table: 254, family: 4, dst: '10.0.0.0', plen: 24, tos: 0, priority: 0, type: 'unicast', protocol: 2, scope: 253, nexthops: [{ ifindex: 2, weight: 1, flags: 0 }] } });
  const r = ShmReader.attach(sab);
  const io = new MemIo({ buffers: 4096, ports: 3, capture: false });
  const graph = new Graph({ io, shm: r, ports: 3 });
  // packets: a random route, a random host inside
  const dst = new Uint32Array(K), sport = new Uint16Array(K), csum = new Uint16Array(K);
  for (let i = 0; i < K; i++) {
    const k = rnd() % routes;
    const host = plens[k] === 32 ? 0 : rnd() & ((2 ** (32 - plens[k])) - 1);
    dst[i] = (prefixes[k] | host) >>> 0;
    sport[i] = 1024 + (rnd() % 60000);
    csum[i] = ipChecksum(dst[i]);
  }
  return { graph, io, r, dst, sport, csum, routes };
}

/** IPv4 header of the benchmark frame: 45 00 002e 0000 0000 40 11 csum 0a000005 dst. */
function ipChecksum(dst: number): number {
  let s = 0x4500 + 0x002e + 0x4011 + 0x0a00 + 0x0005 + (dst >>> 16) + (dst & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

const TEMPLATE = Uint8Array.from([
  ...PORT_MAC, ...PEER_MAC, 0x08, 0x00,
  0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0, 0, 10, 0, 0, 5, 0, 0, 0, 0,
  0, 0, 0x13, 0x89, 0x00, 0x1a, 0x00, 0x00, ...new Array(18).fill(0),
]);

/** Writes the template into every buffer of the pool once (later only the changing fields). */
export function primePool(io: MemIo): void {
  for (let b = 0; b < io.buffers; b++) io.mem.set(TEMPLATE, b * io.stride + io.headroom);
}

/** Fills v with VEC packets from the precomputed set starting at `k`; returns the next k. */
export function rxVector(bw: BenchWorld, v: Vector, k: number): number {
  const io = bw.io, m = io.mem;
  const n = io.alloc(v.mbuf, v.off, VEC);
  for (let i = 0; i < n; i++) {
    const o = v.off[i], j = (k + i) & (K - 1);
    m[o] = 0x02; m[o + 1] = 0; m[o + 2] = 0; m[o + 3] = 0; m[o + 4] = 0; m[o + 5] = 0x01;
    m[o + 6] = 0x02; m[o + 7] = 0xee; m[o + 8] = 0xee; m[o + 9] = 0xee; m[o + 10] = 0xee; m[o + 11] = 0x01;
    m[o + 22] = 64;
    const c = bw.csum[j], d = bw.dst[j], s = bw.sport[j];
    m[o + 24] = c >>> 8; m[o + 25] = c & 255;
    m[o + 30] = d >>> 24; m[o + 31] = (d >>> 16) & 255; m[o + 32] = (d >>> 8) & 255; m[o + 33] = d & 255;
    m[o + 34] = s >>> 8; m[o + 35] = s & 255;
    v.len[i] = 60;
    v.port[i] = 0;
  }
  v.n = n;
  return k + n;
}

export interface BenchResult { packets: number; seconds: number; rxSeconds: number; pps: number; graphPps: number; forwarded: number }

export function runBench(bw: BenchWorld, packets: number): BenchResult {
  const v = new Vector();
  primePool(bw.io);
  // rx cost alone
  let k = 0;
  let t0 = process.hrtime.bigint();
  for (let done = 0; done < packets; done += VEC) {
    k = rxVector(bw, v, k);
    bw.io.free(v.mbuf, v.n);
    v.n = 0;
  }
  const rxSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const fwd0 = bw.graph.portStats(0).forwarded;
  k = 0;
  t0 = process.hrtime.bigint();
  for (let done = 0; done < packets; done += VEC) {
    k = rxVector(bw, v, k);
    bw.graph.process(v);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const forwarded = bw.graph.portStats(0).forwarded - fwd0;
  return { packets, seconds, rxSeconds, pps: packets / seconds, graphPps: packets / Math.max(1e-9, seconds - rxSeconds), forwarded };
}

function main(argv: string[]): void {
  const routes = Number(argv[0] ?? 100_000), packets = Number(argv[1] ?? 5_000_000);
  const t = Date.now();
  const bw = buildBenchWorld(routes);
  console.log(`world: ${routes} routes in ${Date.now() - t} ms`);
  runBench(bw, 500_000); // warm up
  const gcs: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  const r = runBench(bw, packets);
  const t1 = performance.now();
  const st = bw.graph.portStats(0);
  setTimeout(() => {
    obs.disconnect();
    console.log(JSON.stringify({
      routes, packets: r.packets, seconds: +r.seconds.toFixed(3), mpps: +(r.pps / 1e6).toFixed(3), graphMpps: +(r.graphPps / 1e6).toFixed(3),
      rxShare: +(r.rxSeconds / r.seconds).toFixed(3), forwarded: r.forwarded, exceptions: Object.values(st.exceptions).reduce((a, b) => a + b, 0),
      fibFast: bw.graph.fib.fast, fibSlow: bw.graph.fib.slow, neighbourReads: bw.graph.adjacency.neighbourReads,
      scavenges: gcs.filter((x) => x >= t0 && x <= t1).length,
    }));
  }, 100);
}

if (require.main === module) main(process.argv.slice(2));
