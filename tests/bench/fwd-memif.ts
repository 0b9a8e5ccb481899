// Quick memif measurement of lfp's poll loop without fpmd/cmgrd (a development tool beside the
// memif part of `make bench-fwd`): this process builds the shared memory as fwd-inmem.ts does (no
// fpmd), opens two net_memif server ports and one DPVI TAP per port (in a namespace it creates and
// removes), and runs fastpath/fp.ts PollLoop on them; tests/bench/fwd-gen.js (a child process)
// sends through the first port and counts what comes back on the second.
//   node fwd-memif.js [routes=1000000] [mode=graph|io] [measureMs=3000] [fwdCpu=1] [genCpu=0]
// mode io: no graph, every received burst goes straight out of the other port (the I/O cost
// alone). Prints one JSON line: the generator's result plus {mode, routes, mpps}. Root.
// env SHM_DIR=<dir>: the shared memory in a file there (a huge-page tmpfs, as lfp puts it by default).
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as pktio from '../../native/pktio';
import { PollLoop } from '../../fastpath/fp';
import { Graph } from '../../fastpath/graph';
import type { PacketIo } from '../../fastpath/io';
import type { Vector } from '../../fastpath/vector';
import { FRAMES, GEN_IP, MAC, buildWorld, fileAlloc } from './fwd-inmem';
import type { GenOptions, GenResult } from './fwd-gen';

class NativeIo implements PacketIo {
  readonly mem: Uint8Array;
  readonly bufSize: number;
  constructor(pool: pktio.Pool, private readonly dev: Int32Array, private readonly dpvi: Int32Array) {
    this.mem = pool.mem;
    this.bufSize = pool.bufSize;
  }
  tx(port: number, v: Vector, count: number): number { return pktio.tx(this.dev[port], v.mbuf, v.off, v.len, count); }
  toDpvi(port: number, v: Vector, count: number): number { return pktio.tx(this.dpvi[port], v.mbuf, v.off, v.len, count); }
  free(mbuf: Uint32Array, count: number): void { pktio.free(mbuf, count); }
  alloc(mbuf: Uint32Array, off: Uint32Array, count: number): number { return pktio.alloc(mbuf, off, count); }
}

/** mode io: a Graph stand-in that sends every vector out of the other port. */
class Cross {
  constructor(private readonly dev: Int32Array) {}
  process(v: Vector): void {
    const p = this.dev[v.port[0] ^ 1];
    const s = pktio.tx(p, v.mbuf, v.off, v.len, v.n);
    if (s < v.n) { v.mbuf.copyWithin(0, s, v.n); pktio.free(v.mbuf, v.n - s); }
    v.n = 0;
  }
}

async function main(): Promise<void> {
  const [routesArg, modeArg, msArg, fwdArg, genArg] = process.argv.slice(2);
  const routes = Number(routesArg ?? 1_000_000), mode = modeArg ?? 'graph', measureMs = Number(msArg ?? 3000);
  const fwdCpu = Number(fwdArg ?? 1), genCpu = Number(genArg ?? 0);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-fwd-memif-'));
  const ns = `lfp-fm-${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  let gen: ReturnType<typeof spawn> | null = null;
  try {
    const { r } = buildWorld(routes, process.env.SHM_DIR ? fileAlloc(process.env.SHM_DIR) : undefined);
    const pool = pktio.init({ memMB: 256, mbufs: 16384, core: fwdCpu, pin: true });
    const memif = (i: number, role: string, s: string, mac?: string) => `net_memif${i},role=${role},socket=${path.join(tmp, s)},socket-abstract=no${mac ? `,mac=${mac}` : ''}`;
    const dev = Int32Array.from([pktio.dpdkPort(memif(0, 'server', 'a.sock', MAC.port0)), pktio.dpdkPort(memif(1, 'server', 'b.sock', MAC.port1))]);
    const dpvi = Int32Array.from([0, 1].map((i) => pktio.tapPort(`eth${i + 1}`, { netns: `/run/netns/${ns}`, mac: i ? MAC.port1 : MAC.port0, mtu: 1500 })));
    const graph = mode === 'io' ? new Cross(dev) : new Graph({ io: new NativeIo(pool, dev, dpvi), shm: r, ports: 2 });
    const loop = new PollLoop(graph as Graph, dev, dpvi, 256);
    const o: GenOptions = {
      tx: { dpdk: memif(0, 'client', 'a.sock') }, rx: { dpdk: memif(1, 'client', 'b.sock') }, routes, frames: FRAMES,
      dstMac: MAC.port0, srcMac: MAC.gen, srcIp: GEN_IP, core: genCpu, linkTimeoutMs: 15000, warmupMs: 1500, measureMs, fwdPid: process.pid,
    };
    let out = '', done = false;
    gen = spawn(process.execPath, [path.join(__dirname, 'fwd-gen.js'), JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'inherit'] });
    gen.stdout!.on('data', (d) => { out += d; });
    gen.on('exit', () => { done = true; });
    await new Promise<void>((resolve) => {
      const step = () => { if (done) resolve(); else { loop.slice(); setImmediate(step); } };
      step();
    });
    const g = JSON.parse(out.trim().split('\n').pop() ?? '{}') as GenResult;
    if (g.error) throw new Error(`generator: ${g.error}`);
    process.stdout.write(JSON.stringify({ mode, routes, mpps: g.rxPps / 1e6, offered: g.txPps / 1e6, txFullShare: g.txFullShare, fwdCpuShare: g.fwdCpuShare, genCpuShare: g.cpuShare, cpuBusy: g.cpuBusy }) + '\n');
    pktio.shutdown();
  } finally {
    if (gen && gen.exitCode === null) gen.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().then(() => process.exit(0), (e) => { process.stdout.write(JSON.stringify({ error: (e as Error).stack ?? String(e) }) + '\n'); process.exit(1); });
}
