// A/B of the in-memory graph between two compiled trees, in ONE process (a development tool beside
// `make bench-fwd`): both trees' Graphs run over the same shared memory (fwd-inmem.ts buildWorld,
// 1,000,000 routes by default) with their own MemIo and generator, in alternating blocks, timed in
// CPU time. Other jobs on a shared machine then slow both sides alike, which separate runs of
// fwd-inmem.js cannot promise.
//   node build/tests/bench/fwd-ab.js <treeA> <treeB> [routes=1000000] [blocks=20] [packets per block=262144]
//   env SHM_A / SHM_B=<dir>: that side's world in a file of <dir> (see main)
// A tree is a copy of build/ (e.g. cp -r build /tmp/a before a change); prints per tree the CPU ns
// per packet (generator included, ~20 ns) and in how many block pairs B was faster.
import * as path from 'path';
import { fileAlloc } from './fwd-inmem';

interface Tree {
  dir: string;
  buildWorld: (routes: number, alloc?: (bytes: number) => SharedArrayBuffer) => { r: unknown };
  Gen: new (io: unknown, routes: number) => { fill(v: unknown): void };
  Graph: new (o: unknown) => { process(v: unknown): void; portStats(p: number): { forwarded: number } };
  MemIo: new (o: unknown) => unknown;
  Vector: new () => unknown;
  VEC: number;
  ShmReader: { attach(sab: SharedArrayBuffer): unknown };
}

function load(dir: string): Tree {
  const d = path.resolve(dir);
  /* eslint-disable @typescript-eslint/no-require-imports */
  const inmem = require(path.join(d, 'tests/bench/fwd-inmem.js'));
  const vec = require(path.join(d, 'fastpath/vector.js'));
  return {
    dir: d, buildWorld: inmem.buildWorld, Gen: inmem.Gen, Graph: require(path.join(d, 'fastpath/graph.js')).Graph,
    MemIo: require(path.join(d, 'fastpath/mem-io.js')).MemIo, Vector: vec.Vector, VEC: vec.VEC,
    ShmReader: require(path.join(d, 'shared-mem/reader.js')).ShmReader,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

function main(): void {
  const [da, db, routesArg, blocksArg, perArg] = process.argv.slice(2);
  if (!da || !db) throw new Error('usage: fwd-ab.js <treeA> <treeB> [routes] [blocks] [packets per block]');
  const routes = Number(routesArg ?? 1_000_000), blocks = Number(blocksArg ?? 20), per = Number(perArg ?? 262144);
  const A = load(da), B = load(db);
  // SHM_A / SHM_B=<dir>: that side gets its own world in a file of <dir> (e.g. a tmpfs mounted with
  // huge=within_size, to measure huge pages); by default both sides share one SharedArrayBuffer world.
  const world = (dir: string | undefined): SharedArrayBuffer => {
    const { r } = B.buildWorld(routes, dir ? fileAlloc(dir) : undefined);
    return (r as { u32: Uint32Array }).u32.buffer as SharedArrayBuffer;
  };
  const shared = process.env.SHM_A || process.env.SHM_B ? undefined : world(undefined);
  const side = (t: Tree, dir: string | undefined) => {
    const io = new t.MemIo({ buffers: 4096, ports: 2, capture: false });
    const sab = shared ?? world(dir);
    return { t, g: new t.Graph({ io, shm: t.ShmReader.attach(sab), ports: 2 }), gen: new t.Gen(io, routes), v: new t.Vector() };
  };
  const S = { A: side(A, process.env.SHM_A), B: side(B, process.env.SHM_B) };
  type Side = typeof S.A;
  const run = (s: Side, n: number): number => {
    const c = process.cpuUsage();
    for (let d = 0; d < n; d += s.t.VEC) { s.gen.fill(s.v); s.g.process(s.v); }
    const cc = process.cpuUsage(c);
    return (cc.user + cc.system) * 1000 / n;
  };
  run(S.A, 1 << 21); run(S.B, 1 << 21); // warm-up
  const res: Record<'A' | 'B', number[]> = { A: [], B: [] };
  for (let b = 0; b < blocks; b++) for (const k of (b & 1) ? ['A', 'B'] as const : ['B', 'A'] as const) res[k].push(run(S[k], per));
  const q = (a: number[], f: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) * f)]; };
  for (const k of ['A', 'B'] as const) {
    console.log(`${k} ${S[k].t.dir}: CPU ns/packet (graph + generator) min ${q(res[k], 0).toFixed(0)}, median ${q(res[k], 0.5).toFixed(0)}; forwarded ${S[k].g.portStats(0).forwarded}`);
  }
  let wins = 0;
  for (let i = 0; i < blocks; i++) if (res.B[i] < res.A[i]) wins++;
  console.log(`B faster in ${wins} of ${blocks} block pairs`);
}

if (require.main === module) main();
