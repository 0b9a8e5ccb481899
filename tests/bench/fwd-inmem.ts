// In-memory part of `make bench-fwd` (a child process of tests/bench/bench-fwd.ts, pinned to one
// core by the parent):
//   node fwd-inmem.js <routes> <packets> <rounds>   -> prints one line of InmemResult JSON
// Shared memory built with ShmWriter directly (as fastpath/bench.ts; no fpmd): the benchmark's
// routes via 10.2.0.2 on eth2, the connected and local routes of a control plane with 10.1.0.1/24
// on eth1 and 10.2.0.1/24 on eth2, a permanent neighbour for 10.2.0.2, two fast-path ports. The
// Graph runs on MemIo (fastpath/mem-io.ts): an in-process generator copies the precomputed 60-byte
// frames (the generator's of the memif/veth parts) into recycled buffers, 256 per vector; port-tx
// frees what it sends. The generator's cost alone is measured too and subtracted for "graph only".
import * as fs from 'fs';
import * as path from 'path';
import { PerformanceObserver, constants, performance } from 'perf_hooks';
import * as native from '../../native';
import { computeLayout, type ShmConfig } from '../../shared-mem/layout';
import { ShmReader } from '../../shared-mem/reader';
import { ShmWriter } from '../../shared-mem/writer';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { VEC, Vector } from '../../fastpath/vector';
import type { AnyObject } from '../../lib/model';
import { FRAME_LEN, ipStr, makeDestinations, makeFrames, makeRoutes } from './fwd-routes';

export const MAC = { gen: '02:00:00:00:00:01', port0: '02:00:00:00:01:01', port1: '02:00:00:00:01:02', port2: '02:00:00:00:01:03', sink: '02:00:00:00:02:01', nextHop: '02:00:00:00:02:99' };
export const GEN_IP = (10 << 24 | 1 << 8 | 2) >>> 0; // 10.1.0.2
export const FRAMES = 1 << 16;

export interface InmemResult {
  routes: number;
  buildSeconds: number;
  packets: number;
  /** Per round: generator + graph, and generator alone (seconds for `packets`), and the CPU time of the process / wall time;
   *  totalCpu / genCpu: the same in CPU seconds of the process (less sensitive to other jobs taking the core). */
  rounds: { total: number; gen: number; cpuShare: number; totalCpu: number; genCpu: number }[];
  forwarded: number;
  exceptions: number;
  drops: number;
  scavenges: number;
}

/** The benchmark's shared memory; `alloc` gives its memory (default: a SharedArrayBuffer; e.g. a file mapping). */
export function buildWorld(routes: number, alloc: (bytes: number) => SharedArrayBuffer = (b) => new SharedArrayBuffer(b)): { r: ShmReader; seconds: number } {
  const t0 = performance.now();
  const rs = makeRoutes(routes);
  const cfg: Partial<ShmConfig> = {
    maxVrfs: 4, maxLinks: 16, maxAddrs: 16, maxRoutes: routes + 64, fib4Tables: 4, tbl8Groups: Math.max(1024, Math.ceil(routes / 12)),
    fib6Tables: 2, fib6Entries: 1024, maxNexthops: 64, maxGroups: 16, maxNeigh: 64, maxRules: 8, maxPolicies: 1, maxSas: 1,
  };
  const sab = alloc(computeLayout(cfg).totalSize);
  const w = ShmWriter.create(sab, cfg);
  const link = (ifindex: number, name: string, mac: string): AnyObject => ({ kind: 'link', obj: { vrf: 0, ifindex, name, kind: '', mac, mtu: 1500, flags: 0x1003, adminUp: true, operUp: true, master: 0, link: 0, port: -1 } });
  w.upsert(link(2, 'eth1', MAC.port0));
  w.upsert(link(3, 'eth2', MAC.port1));
  w.setPorts(['eth1', 'eth2']);
  const route = (table: number, dst: string, plen: number, type: string, protocol: number, scope: number, ifindex: number, gw?: string): AnyObject =>
    ({ kind: 'route', obj: { vrf: 0, table, family: 4, dst, plen, tos: 0, priority: 0, type, protocol, scope, nexthops: [{ ...(gw ? { gw } : {}), ifindex, weight: 1, flags: 0 }] } } as AnyObject);
  w.upsert(route(255, '10.1.0.1', 32, 'local', 2, 254, 2));
  w.upsert(route(255, '10.1.0.255', 32, 'broadcast', 2, 253, 2));
  w.upsert(route(255, '10.2.0.1', 32, 'local', 2, 254, 3));
  w.upsert(route(255, '10.2.0.255', 32, 'broadcast', 2, 253, 3));
  w.upsert(route(254, '10.1.0.0', 24, 'unicast', 2, 253, 2));
  w.upsert(route(254, '10.2.0.0', 24, 'unicast', 2, 253, 3));
  w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: '10.2.0.2', lladdr: MAC.nextHop, state: 0x80, flags: 0 } });
  for (let i = 0; i < rs.n; i++) w.upsert(route(254, ipStr(rs.prefix[i]), rs.plen[i], 'unicast', 4, 0, 3, '10.2.0.2'));
  return { r: ShmReader.attach(sab), seconds: (performance.now() - t0) / 1000 };
}

/**
 * An allocator for buildWorld: the world in a new file of `dir` (unlinked at once, the mapping stays), as
 * fpmd's file — on huge pages when `dir` is a huge-page tmpfs (shared-mem/huge.ts, the product default).
 */
export function fileAlloc(dir: string): (bytes: number) => SharedArrayBuffer {
  return (bytes) => {
    const f = path.join(dir, `fwd-world-${process.pid}-${Math.random().toString(36).slice(2)}`);
    try { return native.shm.map(f, { size: bytes, create: true }); } finally { fs.unlinkSync(f); }
  };
}

export class Gen {
  private readonly T: Uint32Array;
  private readonly M: Uint32Array;
  private k = 0;
  constructor(private readonly io: MemIo, routes: number) {
    const frames = makeFrames(makeDestinations(makeRoutes(routes), FRAMES), MAC.port0, MAC.gen, GEN_IP);
    this.T = new Uint32Array(frames.buffer, 0, frames.length >>> 2);
    this.M = new Uint32Array(io.mem.buffer, io.mem.byteOffset, io.mem.byteLength >>> 2);
  }
  /** Fills v with VEC new packets received on port 0. */
  fill(v: Vector): void {
    const n = this.io.alloc(v.mbuf, v.off, VEC);
    const M = this.M, T = this.T, W = FRAME_LEN >>> 2;
    let k = this.k;
    for (let i = 0; i < n; i++) {
      const w = v.off[i] >>> 2, s = (k & (FRAMES - 1)) * W;
      for (let j = 0; j < W; j++) M[w + j] = T[s + j];
      v.len[i] = FRAME_LEN;
      v.port[i] = 0;
      k++;
    }
    this.k = k;
    v.n = n;
  }
}

async function main(routes: number, packets: number, rounds: number): Promise<InmemResult> {
  // SHM_DIR: the world in a file there (bench-fwd passes a huge-page tmpfs), else a SharedArrayBuffer
  const { r, seconds: buildSeconds } = buildWorld(routes, process.env.SHM_DIR ? fileAlloc(process.env.SHM_DIR) : undefined);
  const io = new MemIo({ buffers: 4096, ports: 2, capture: false });
  if ((io.headroom & 3) !== 0 || (io.stride & 3) !== 0) throw new Error('MemIo buffers not 4-byte aligned');
  const graph = new Graph({ io, shm: r, ports: 2 });
  const gen = new Gen(io, routes);
  const v = new Vector();
  let cpu = 0; // CPU seconds of the last genOnly / total
  const cpuSeconds = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1e6;
  const genOnly = (n: number): number => {
    const t = performance.now(), c = process.cpuUsage();
    for (let done = 0; done < n; done += VEC) { gen.fill(v); io.free(v.mbuf, v.n); v.n = 0; }
    cpu = cpuSeconds(process.cpuUsage(c));
    return (performance.now() - t) / 1000;
  };
  const total = (n: number): number => {
    const t = performance.now(), c = process.cpuUsage();
    for (let done = 0; done < n; done += VEC) { gen.fill(v); graph.process(v); }
    cpu = cpuSeconds(process.cpuUsage(c));
    return (performance.now() - t) / 1000;
  };
  genOnly(1 << 20); total(1 << 21); // warm-up (JIT, caches)
  const st0 = graph.portStats(0);
  const gcs: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  const out: InmemResult['rounds'] = [];
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    const c0 = process.cpuUsage(), w0 = performance.now();
    const gen = genOnly(packets >> 1) * 2, genCpu = cpu * 2, tot = total(packets), totalCpu = cpu;
    const c = process.cpuUsage(c0);
    out.push({ gen, total: tot, cpuShare: (c.user + c.system) / 1000 / (performance.now() - w0), totalCpu, genCpu });
  }
  const t1 = performance.now();
  await new Promise((res) => setTimeout(res, 100)); // gc entries are delivered asynchronously
  obs.disconnect();
  const st = graph.portStats(0);
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return {
    routes, buildSeconds, packets, rounds: out,
    forwarded: st.forwarded - st0.forwarded,
    exceptions: sum(st.exceptions) - sum(st0.exceptions),
    drops: sum(st.drops) - sum(st0.drops),
    scavenges: gcs.filter((x) => x >= t0 && x <= t1).length,
  };
}

if (require.main === module) {
  const [routes, packets, rounds] = process.argv.slice(2).map(Number);
  main(routes || 1_000_000, packets || 5_000_000, rounds || 3).then(
    (res) => process.stdout.write(JSON.stringify(res) + '\n'),
    (e) => { process.stdout.write(JSON.stringify({ error: (e as Error).stack ?? String(e) }) + '\n'); process.exit(1); });
}
