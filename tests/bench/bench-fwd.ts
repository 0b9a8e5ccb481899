// make bench-fwd: forwarding rate of lfp's fast path for 64-byte IPv4 UDP frames (60 B + FCS) to
// random hosts of 1,000,000 routes, beside references measured in the same invocation:
//   1. in-memory: the Graph on MemIo with an in-process generator, shared memory written with
//      ShmWriter directly (tests/bench/fwd-inmem.ts): Mpps and cycles/packet (goal <= 200);
//   2. memif: generator -> memif -> forwarder -> memif -> sink, the forwarder being DPDK testpmd
//      io-forward, then lfp's fp process (ports net_memif; fpmd, cmgrd and fp started like
//      LfpEnv does, 1,000,000 routes added with `ip -batch` in its control-plane netns)
//      (goal >= 0.7x testpmd);
//   3. veth: generator -> veth -> forwarder -> veth -> receiver, the forwarder being testpmd
//      io-forward and lfp's fp on the same PMD (net_af_packet, net_af_xdp), and Linux forwarding
//      in a router netns with the same 1,000,000 routes, without RPS (it then forwards in the
//      generator's softirq) and with RPS to the forwarder's core (goal >= 0.8x testpmd).
// Generator and sink share one process pinned to core GEN_CPU (tests/bench/fwd-gen.ts, on
// lfp_pktio); the forwarder runs on core FWD_CPU. Rates are counted at the receiver over a window
// after a warm-up; references and lfp alternate REPS times. A run during which other jobs took
// more than 10 % of either core is "contended" and repeated (ATTEMPTS). A forwarder that kept up
// with what the generator side could offer gets ">=" (its capacity is higher), and ratios and
// goals say what that allows to conclude. A benchmark, not a test.
//
// Environment: ROUTES (1000000), REPS (2), ATTEMPTS (2), WARMUP_MS (1500), MEASURE_MS (3000),
// PARTS (inmem,memif,veth), VETH_PMDS (af_packet,af_xdp), GEN_CPU (0), FWD_CPU (1), QUIET_S (5:
// how long to wait for an idle machine before each run), SMALL_ROUTES (1000: the in-memory part is
// also run over this many routes, to separate the cost of FIB cache misses), HUGE (1: the shared memory
// on a huge-page tmpfs, as lfp puts it by default; 0: 4 KiB pages).
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Netns, sh } from '../lib/netns';
import { LfpEnv, waitUntil, sleep } from '../lib/lfp-env';
import { statsPath, type PortSpec } from '../../lib/config';
import { StatsFile, type PortStats } from '../../shared-mem/stats';
import { writeBatch, makeRoutes } from './fwd-routes';
import type { GenOptions, GenResult } from './fwd-gen';
import { FRAMES, GEN_IP, MAC, type InmemResult } from './fwd-inmem';
import { prepareHugeDir } from '../../shared-mem/huge';

const ROUTES = Number(process.env.ROUTES ?? 1_000_000);
const REPS = Math.max(1, Number(process.env.REPS ?? 2));
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 1500);
const MEASURE_MS = Number(process.env.MEASURE_MS ?? 3000);
const PARTS = new Set((process.env.PARTS ?? 'inmem,memif,veth').split(','));
const GEN_CPU = Number(process.env.GEN_CPU ?? 0);
const FWD_CPU = Number(process.env.FWD_CPU ?? 1);
const VETH_PMDS = (process.env.VETH_PMDS ?? 'af_packet,af_xdp').split(',').filter((x) => x);
const QUIET_S = Number(process.env.QUIET_S ?? 5);
const SMALL_ROUTES = Number(process.env.SMALL_ROUTES ?? 1000);
const ATTEMPTS = Math.max(1, Number(process.env.ATTEMPTS ?? 2));
const GOAL_CYCLES = 200, GOAL_MEMIF = 0.7, GOAL_VETH = 0.8;

const GEN_JS = path.join(__dirname, 'fwd-gen.js');
const INMEM_JS = path.join(__dirname, 'fwd-inmem.js');

// ---------------------------------------------------------------- cleanup of everything we start
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-bench-fwd-'));
// The shared memory where the product puts it: on a huge-page tmpfs (config shm.hugePages, default on;
// shared-mem/huge.ts). HUGE=0: 4 KiB pages (a SharedArrayBuffer in-memory, /dev/shm for lfp).
const HUGE = process.env.HUGE !== '0';
const shmDir = path.join(tmp, 'shm');
let hugeState = 'off (HUGE=0)';
const children = new Set<ChildProcess>();
const envs = new Set<LfpEnv>();
const namespaces: Netns[] = [];
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  for (const e of envs) { try { e.stop(); } catch { /* best effort */ } }
  for (const n of namespaces.reverse()) { try { n.destroy(); } catch { /* best effort */ } }
  if (HUGE) spawnSync('umount', ['-l', shmDir]);
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { console.error(`\n${sig}: cleaning up`); cleanup(); process.exit(130); });

function netns(prefix: string): Netns {
  const n = Netns.create(prefix);
  namespaces.push(n);
  // No IPv6 (no ND/MLD chatter on the measured links).
  n.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  return n;
}

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

/** Runs a command to completion; stdout and stderr collected. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '', err = '';
    c.stdout!.on('data', (d) => { out += d; });
    c.stderr!.on('data', (d) => { err += d; });
    const t = setTimeout(() => { err += `\n(killed after ${timeoutMs} ms)`; c.kill('SIGKILL'); }, timeoutMs);
    c.on('exit', (code) => { clearTimeout(t); resolve({ code, out, err }); });
  });
}

/** The calling thread's CPU affinity (children forked from it inherit it). */
function pinSelf(cpus: string): void { sh('taskset', ['-p', '-c', cpus, String(process.pid)]); }

// ---------------------------------------------------------------- CPU accounting
type CpuTimes = number[][]; // per CPU: user nice system idle iowait irq softirq steal
function cpuTimes(): CpuTimes {
  return fs.readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((l) => l.trim().split(/\s+/).slice(1, 9).map(Number));
}
function busyShare(a: CpuTimes, b: CpuTimes): number[] {
  return a.map((x, i) => {
    const d = b[i].map((v, j) => v - x[j]);
    const total = d.reduce((s, v) => s + v, 0);
    return total > 0 ? 1 - (d[3] + d[4]) / total : 0;
  });
}

/** Waits (up to QUIET_S) for a 500 ms window where both cores are >= 85 % idle; returns the busy share seen last. */
async function quiet(): Promise<number[]> {
  let last: number[] = [];
  const end = Date.now() + QUIET_S * 1000;
  for (;;) {
    const a = cpuTimes();
    await sleep(500);
    last = busyShare(a, cpuTimes());
    if (Math.max(...last) <= 0.15 || Date.now() > end) return last;
  }
}

// ---------------------------------------------------------------- one measured run
interface RunResult {
  contended?: boolean;
  /** The forwarder was the bottleneck: memif, the generator mostly found the ring full; veth, frames were lost before the receiver. */
  fwdBound: boolean;
  mpps: number;
  offered: number; // Mpps the generator got out
  gen: GenResult;
  bg: number[]; // busy share of each CPU just before the run (before the forwarder started, if it is started per run)
  note: string;
}

async function runGen(ns: Netns | null, o: Partial<GenOptions> & Pick<GenOptions, 'tx' | 'dstMac'>, fwdPid?: number): Promise<RunResult> {
  const opts = genOptions({ fwdPid, ...o });
  const args = [process.execPath, GEN_JS, JSON.stringify(opts)];
  const r = ns ? await run('ip', ['netns', 'exec', ns.name, ...args], 120000) : await run(args[0], args.slice(1), 120000);
  const line = r.out.trim().split('\n').pop() ?? '';
  let gen: GenResult;
  try { gen = JSON.parse(line) as GenResult; } catch { throw new Error(`generator: exit ${r.code}: ${r.out}\n${r.err}`); }
  if (gen.error) throw new Error(`generator: ${gen.error}\n${r.err}`);
  return toRunResult(gen, !!opts.rxCounter);
}

function genOptions(o: Partial<GenOptions> & Pick<GenOptions, 'tx' | 'dstMac'>): GenOptions {
  return { routes: ROUTES, frames: FRAMES, srcMac: MAC.gen, srcIp: GEN_IP, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, core: GEN_CPU, linkTimeoutMs: 15000, ...o };
}

function toRunResult(gen: GenResult, counted: boolean): RunResult {
  if (typeof gen.fwdCpuShare !== 'number') gen.fwdCpuShare = NaN; // JSON has no NaN
  const rxPps = counted ? gen.counterPps : gen.rxPps;
  // veth: frames were lost before the receiver while the forwarder was busy all the time (a
  // forwarder with idle time that loses frames loses them to stalls, not for lack of capacity).
  const fwdBound = counted ? rxPps < 0.97 * gen.txPps && !(gen.fwdCpuShare < 0.95) : gen.txFullShare > 0.5;
  return { mpps: rxPps / 1e6, offered: gen.txPps / 1e6, fwdBound, gen, bg: [], note: '' };
}

/**
 * A generator process that keeps its ports open between measurements: lfp's memif ports keep their
 * link (a carrier change of a DPVI makes cmgrd re-read every route of the netns).
 */
class GenServer {
  private lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];
  private err = '';
  private constructor(private readonly c: ChildProcess, private readonly opts: GenOptions) {
    let buf = '';
    c.stdout!.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(l); else this.lines.push(l);
      }
    });
    c.stderr!.on('data', (d) => { this.err += d; });
    c.on('exit', (code) => { for (const w of this.waiters.splice(0)) w(JSON.stringify({ error: `generator exited (${code}): ${this.err.slice(-2000)}` })); });
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`generator: no answer in ${timeoutMs} ms ${this.err.slice(-2000)}`)), timeoutMs);
      const take = (l: string) => {
        clearTimeout(t);
        let o: Record<string, unknown>;
        try { o = JSON.parse(l) as Record<string, unknown>; } catch { return reject(new Error(`generator: ${l}`)); }
        if (o.error) reject(new Error(`generator: ${String(o.error)}`)); else resolve(o);
      };
      const l = this.lines.shift();
      if (l !== undefined) take(l); else this.waiters.push(take);
    });
  }

  static async start(o: Partial<GenOptions> & Pick<GenOptions, 'tx' | 'dstMac'>): Promise<GenServer> {
    const opts = genOptions(o);
    const c = track(spawn(process.execPath, [GEN_JS, JSON.stringify(opts), 'serve'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const g = new GenServer(c, opts);
    try {
      await g.next(60000);
    } catch (e) {
      c.kill('SIGKILL');
      throw e;
    }
    return g;
  }

  async measure(fwdPid?: number): Promise<RunResult> {
    this.c.stdin!.write(JSON.stringify({ measure: { warmupMs: this.opts.warmupMs, measureMs: this.opts.measureMs, rxCounter: this.opts.rxCounter, fwdPid } }) + '\n');
    const gen = await this.next(this.opts.warmupMs + this.opts.measureMs + 30000) as unknown as GenResult;
    return toRunResult(gen, !!this.opts.rxCounter);
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((r) => { if (this.c.exitCode !== null || this.c.signalCode !== null) r(); else this.c.on('exit', () => r()); });
    this.c.stdin!.end(JSON.stringify({ exit: true }) + '\n');
    const t = setTimeout(() => this.c.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------- DPDK testpmd
async function withTestpmd<T>(ns: Netns | null, vdevs: string[], fn: (pid: number) => Promise<T>): Promise<T> {
  const log = path.join(tmp, `testpmd-${Date.now()}.log`);
  const out = fs.openSync(log, 'w');
  const tp = ['stdbuf', '-oL', 'dpdk-testpmd', '-l', `${GEN_CPU},${FWD_CPU}`, '--main-lcore', String(GEN_CPU), '--no-huge', '-m', '512',
    '--no-shconf', '--no-pci', ...vdevs.map((v) => `--vdev=${v}`), '--', '--total-num-mbufs=16384', '--forward-mode=io'];
  const c = track(spawn(ns ? 'ip' : tp[0], ns ? ['netns', 'exec', ns.name, ...tp] : tp.slice(1), { stdio: ['pipe', out, out] }));
  fs.closeSync(out);
  const exited = new Promise<void>((r) => c.on('exit', () => r()));
  try {
    await waitUntil('testpmd forwarding', 30000, () => {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error('exited');
      return fs.readFileSync(log, 'utf8').includes('Press enter to exit');
    }, 50).catch((e) => { throw new Error(`testpmd: ${(e as Error).message}\n${fs.readFileSync(log, 'utf8').slice(-3000)}`); });
    return await fn(c.pid!);
  } finally {
    c.stdin!.end('\n');
    const t = setTimeout(() => c.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------- lfp
async function startLfp(cp: Netns, portSpecs: PortSpec[]): Promise<LfpEnv> {
  const env = new LfpEnv({ cpNetns: cp.name, portSpecs, rcvbuf: 1024 * 1024 * 1024,
    shm: { ...(HUGE ? { path: path.join(shmDir, `lfp-${envs.size}`), hugePages: true } : {}), maxRoutes: ROUTES + 100_000, tbl8Groups: Math.max(8192, Math.ceil(ROUTES / 12)), fib4Tables: 4, fib6Tables: 4, fib6Entries: 4096 } });
  envs.add(env);
  try {
    env.spawn('fpmd', ['--fresh']);
    await waitUntil('fpmd shared memory', 20000, () => env.reader !== null, 20);
    // The fast path on FWD_CPU: it inherits the affinity of the thread that forks it, and its EAL
    // takes the first CPU it may run on as its lcore.
    pinSelf(String(FWD_CPU));
    try { env.spawn('fp'); } finally { pinSelf(`0-${os.cpus().length - 1}`); }
    await waitUntil('fast path running', 30000, () => {
      if (!env.alive('fp')) throw new Error('fp exited');
      return StatsFile.open(statsPath(env.cfg)).read().perWorker[0].fields.heartbeatMs > 0;
    }, 50);
    env.spawn('cmgrd');
    await env.waitSynced(30000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- logs ---\n${env.logs()}`);
  }
  return env;
}

function fpPid(env: LfpEnv): number | undefined {
  return (env as unknown as { procs: Map<string, ChildProcess> }).procs.get('fp')?.pid;
}

/** The DPVIs up (before the routes: a link change makes cmgrd re-read the routes of the netns). */
function dpvisUp(cp: Netns): void {
  cp.ip('link set eth1 up');
  cp.ip('link set eth2 up');
}

/** Waits until both DPVIs show carrier (the fast path copies the port's link state to them). */
async function dpviCarrier(cp: Netns): Promise<void> {
  await waitUntil('carrier on the DPVIs', 10000, () => cp.ipJson<{ ifname: string; flags: string[] }[]>('link show').filter((l) => /^eth[12]$/.test(l.ifname) && l.flags.includes('LOWER_UP')).length === 2, 20);
}

/** Addresses, the next hop's neighbour and ROUTES routes in lfp's control plane; waits until shared memory has them. */
async function configureLfp(env: LfpEnv, cp: Netns, batch: string): Promise<number> {
  cp.ip('addr add 10.1.0.1/24 dev eth1');
  cp.ip('addr add 10.2.0.1/24 dev eth2');
  cp.ip(`neigh replace 10.2.0.2 lladdr ${MAC.nextHop} dev eth2 nud permanent`);
  cp.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const count = () => env.reader.header().kinds.route.count;
  const base = count();
  const t0 = Date.now();
  const r = await run('ip', ['-n', cp.name, '-batch', batch], 600000);
  if (r.code !== 0) throw new Error(`ip -batch: ${r.err.slice(0, 2000)}`);
  await waitUntil(`${ROUTES} routes in lfp's shared memory`, 300000, () => count() - base >= ROUTES, 20);
  await waitUntil('the next hop\'s neighbour in shared memory', 10000, () => env.list('neighbour').some((n) => n.addr === '10.2.0.2' && n.lladdr === MAC.nextHop), 20);
  return (Date.now() - t0) / 1000;
}

function sumStats(s: PortStats[]): { forwarded: number; exceptions: number; drops: Record<string, number> } {
  const drops: Record<string, number> = {};
  let forwarded = 0, exceptions = 0;
  for (const p of s) {
    forwarded += p.forwarded;
    exceptions += Object.values(p.exceptions).reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries(p.drops)) if (v) drops[k] = (drops[k] ?? 0) + v;
  }
  return { forwarded, exceptions, drops };
}

async function lfpRun(env: LfpEnv, gen: (fwdPid?: number) => Promise<RunResult>): Promise<RunResult> {
  const before = sumStats(env.stats());
  const r = await gen(fpPid(env));
  const after = sumStats(env.stats());
  if (!env.alive('fp')) throw new Error(`fp died\n${env.logs()}`);
  const drops = Object.entries(after.drops).map(([k, v]) => [k, v - (before.drops[k] ?? 0)] as const).filter(([, v]) => v > 0);
  r.note = `fp: forwarded ${fmtInt(after.forwarded - before.forwarded)}, to Linux ${fmtInt(after.exceptions - before.exceptions)}` +
    (drops.length ? `, drops ${drops.map(([k, v]) => `${k} ${fmtInt(v)}`).join(' ')}` : '');
  return r;
}

// ---------------------------------------------------------------- output
const fmtInt = (n: number) => Math.round(n).toLocaleString('en');
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pct = (x: number) => `${Math.round(x * 100)}%`;
let tscHz = 0;
const cyc = (mpps: number) => (tscHz > 0 && mpps > 0 ? Math.round(tscHz / (mpps * 1e6)) : NaN);

/**
 * CPU time on the generator's and the forwarder's core taken by other jobs on the machine: busy
 * time that is neither ours (the process on that core plus the core's ksoftirqd) nor softirq (a
 * process's share may include softirq work done in its context, so the larger of the two counts).
 * Over 10 %: "contended".
 */
function otherLoad(g: GenResult): number[] {
  const fwd = Number.isNaN(g.fwdCpuShare) ? 0 : g.fwdCpuShare;
  const ours = [g.cpuShare + (g.ksoftirqd[GEN_CPU] ?? 0), fwd + (g.ksoftirqd[FWD_CPU] ?? 0)];
  return [GEN_CPU, FWD_CPU].map((c, i) => Math.max(0, g.cpuBusy[c] - Math.max(ours[i], g.cpuSoftirq[c])));
}

function report(label: string, r: RunResult): void {
  const g = r.gen, G = GEN_CPU, F = FWD_CPU;
  const other = otherLoad(g);
  const loss = g.rxStats ? '' : ` (${pct(1 - r.mpps / Math.max(1e-9, r.offered))} lost)`;
  console.log(`  ${label.padEnd(28)} ${r.mpps.toFixed(3).padStart(7)} Mpps received, offered ${r.offered.toFixed(3)}${loss}; ` +
    `${r.fwdBound ? 'forwarder-bound' : 'NOT forwarder-bound (generator side limits)'}` +
    `${r.contended ? `; CONTENDED: other jobs took ${pct(other[0])} of cpu${G}, ${pct(other[1])} of cpu${F}` : ''}`);
  console.log(`  ${''.padEnd(28)} cpu: generator ${pct(g.cpuShare)}${Number.isNaN(g.fwdCpuShare) ? '' : `, forwarder ${pct(g.fwdCpuShare)}`}` +
    `, cpu${G}/cpu${F} busy ${pct(g.cpuBusy[G])}/${pct(g.cpuBusy[F])} (softirq ${pct(g.cpuSoftirq[G])}/${pct(g.cpuSoftirq[F])}, ksoftirqd ${pct(g.ksoftirqd[G] ?? 0)}/${pct(g.ksoftirqd[F] ?? 0)}), idle before ${pct(1 - r.bg[G])}/${pct(1 - r.bg[F])}` +
    `; generator tx found the far end full ${pct(g.txFullShare)}${g.rxStats ? `, sink rx found nothing ${pct(g.rxEmptyShare)}` : ''}`);
  if (r.note) console.log(`  ${''.padEnd(28)} ${r.note}`);
}

/** Runs fn until a run is not contended (at most ATTEMPTS times); returns the best uncontended run, else the best. */
async function measure(label: string, fn: () => Promise<RunResult>): Promise<RunResult> {
  let best: RunResult | undefined;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const bg = await quiet();
    const r = await fn();
    r.bg = bg;
    r.contended = Math.max(...otherLoad(r.gen)) > 0.1;
    report(attempt > 1 ? `${label}, again` : label, r);
    if (!best || (best.contended && !r.contended) || (!!best.contended === r.contended && r.mpps > best.mpps)) best = r;
    if (!r.contended) break;
  }
  return best!;
}

class Series {
  readonly runs: RunResult[] = [];
  constructor(readonly part: string, readonly forwarder: string) {}
  add(r: RunResult): void { this.runs.push(r); }
  get mpps(): number { return median(this.runs.map((r) => r.mpps)); }
  /** Most runs were limited by the forwarder (else the figure is only a lower bound of its capacity). */
  get bound(): boolean { return this.runs.filter((r) => r.fwdBound).length * 2 > this.runs.length; }
}

/**
 * lfp / reference, with what the bounds allow to conclude: a series that was not forwarder-bound
 * only gives a lower bound of that forwarder's rate.
 */
function compare(lfp: Series, ref: Series, name: string, goal?: number): { ratio: string; goal?: string } {
  const r = lfp.mpps / ref.mpps;
  const rel = lfp.bound && ref.bound ? '' : lfp.bound ? '<= ' : ref.bound ? '>= ' : '~';
  const ratio = `${rel}${r.toFixed(2)}x ${name}${lfp.bound || ref.bound ? '' : ' (both limited by the generator side)'}`;
  if (goal === undefined) return { ratio };
  const verdict = rel === '' ? (r >= goal ? 'met' : 'NOT met')
    : rel === '<= ' ? (r < goal ? 'NOT met' : 'inconclusive')
      : rel === '>= ' ? (r >= goal ? 'met' : 'inconclusive')
        : `inconclusive (lfp kept up with the offered ${lfp.mpps.toFixed(2)} Mpps)`;
  return { ratio, goal: `>= ${goal}x ${name}: ${verdict}` };
}

/** `cycles`: cycles/packet from the process's CPU time (in-memory rows), shown instead of the clock rate / Mpps. */
interface Row { s: Series | { part: string; forwarder: string; runs: number[]; cycles?: number }; ratio?: string; goal?: string }
const rows: Row[] = [];

function rowCells(r: Row): string[] {
  if (!(r.s instanceof Series)) {
    const m = median(r.s.runs);
    return [r.s.part, r.s.forwarder, m.toFixed(2), r.s.runs.map((x) => x.toFixed(2)).join(', '),
      r.s.cycles !== undefined ? `${r.s.cycles} (CPU time)` : String(cyc(m)), r.ratio ?? '', r.goal ?? ''];
  }
  const s = r.s, m = s.mpps;
  const c = s.runs.filter((x) => x.contended).length, gb = s.runs.filter((x) => !x.fwdBound).length;
  const flags = [c ? `${c} contended` : '', gb ? `${gb} not forwarder-bound` : ''].filter((x) => x).join(', ');
  return [s.part, s.forwarder, `${s.bound ? '' : '>= '}${m.toFixed(2)}`, s.runs.map((x) => x.mpps.toFixed(2)).join(', ') + (flags ? ` (${flags})` : ''),
    `${s.bound ? '' : '<= '}${cyc(m)}`, r.ratio ?? '', r.goal ?? ''];
}

// ---------------------------------------------------------------- the parts
async function inmem(routes: number): Promise<{ total: number; graph: number; contended: boolean; cycles?: number }> {
  await quiet();
  const r = await run('env', [...(HUGE ? [`SHM_DIR=${shmDir}`] : []), 'taskset', '-c', String(FWD_CPU), process.execPath, '--max-old-space-size=4096', INMEM_JS, String(routes), '4000000', '5'], 300000);
  const res = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as InmemResult & { error?: string };
  if (res.error || !res.rounds) throw new Error(`in-memory part: ${res.error ?? r.err}`);
  const rounds = res.rounds.map((x) => ({ total: res.packets / x.total / 1e6, graph: res.packets / (x.total - x.gen) / 1e6, contended: x.cpuShare < 0.95 }));
  const clean = rounds.filter((x) => !x.contended);
  const use = clean.length > 0 ? clean : rounds;
  console.log(`  ${fmtInt(routes)} routes: shared memory built in ${res.buildSeconds.toFixed(1)} s; ${fmtInt(res.forwarded)} forwarded, ${res.exceptions} to Linux, ${res.drops} dropped, ${res.scavenges} scavenges`);
  console.log(`    rounds of ${fmtInt(res.packets)} packets, Mpps generator + graph / graph alone: ${rounds.map((x) => `${x.total.toFixed(2)}/${x.graph.toFixed(2)}${x.contended ? ' (contended)' : ''}`).join(', ')}; best reported`);
  // CPU time instead of wall time: what a round cost while it ran (other jobs on the core do not count, their cache misses do)
  const cpuNs = res.rounds.filter((x) => x.totalCpu > 0).map((x) => (x.totalCpu - x.genCpu) / res.packets * 1e9);
  const cycles = cpuNs.length > 0 ? Math.round(Math.min(...cpuNs) * tscHz / 1e9) : undefined;
  if (cpuNs.length > 0) console.log(`    graph alone per CPU time: ${cpuNs.map((x) => `${x.toFixed(0)} ns`).join(', ')} per packet (best ${cycles} cycles)`);
  return { total: Math.max(...use.map((x) => x.total)), graph: Math.max(...use.map((x) => x.graph)), contended: clean.length === 0, cycles };
}

async function partInmem(): Promise<void> {
  console.log(`\n[in-memory] Graph + MemIo (fastpath/mem-io.ts), routes written with ShmWriter, in-process generator; one process pinned to cpu${FWD_CPU}`);
  const big = await inmem(ROUTES);
  const small = await inmem(SMALL_ROUTES);
  const c = (x: { contended: boolean }) => (x.contended ? ' (contended)' : '');
  rows.push({ s: { part: 'in-memory', forwarder: `lfp Graph + in-process generator, ${fmtInt(ROUTES)} routes${c(big)}`, runs: [big.total] } });
  // cycles/packet of the graph from the CPU time of its rounds (the wall clock counts the time other jobs took the core)
  const bigCycles = big.cycles ?? cyc(big.graph);
  rows.push({ s: { part: 'in-memory', forwarder: `lfp Graph alone (generator subtracted), ${fmtInt(ROUTES)} routes${c(big)}`, runs: [big.graph], cycles: big.cycles },
    goal: `<= ${GOAL_CYCLES} cycles/packet: ${bigCycles <= GOAL_CYCLES ? 'met' : 'NOT met'}` });
  rows.push({ s: { part: 'in-memory', forwarder: `lfp Graph alone, ${fmtInt(SMALL_ROUTES)} routes (FIB in cache)${c(small)}`, runs: [small.graph], cycles: small.cycles } });
}

async function partMemif(batch: string): Promise<void> {
  console.log(`\n[memif] generator -> memif -> forwarder (cpu${FWD_CPU}) -> memif -> sink (generator and sink: one process on cpu${GEN_CPU})`);
  const sock = (n: string) => path.join(tmp, `${n}.sock`);
  const memif = (i: number, role: string, s: string, mac?: string) => `net_memif${i},role=${role},socket=${s},socket-abstract=no${mac ? `,mac=${mac}` : ''}`;
  const cp = netns('fwd-mcp');
  const t0 = Date.now();
  const env = await startLfp(cp, [
    { name: 'eth1', dpdk: memif(0, 'server', sock('lfp-a'), MAC.port0) },
    { name: 'eth2', dpdk: memif(1, 'server', sock('lfp-b'), MAC.port1) },
  ]);
  dpvisUp(cp);
  // The generator connects before the routes are added and stays connected (carrier stays up).
  const gen = await GenServer.start({ tx: { dpdk: memif(0, 'client', sock('lfp-a')) }, rx: { dpdk: memif(1, 'client', sock('lfp-b')) }, dstMac: MAC.port0 });
  await dpviCarrier(cp);
  const tr = await configureLfp(env, cp, batch);
  console.log(`  lfp up with ${fmtInt(ROUTES)} routes (ip -batch in its control plane: ${tr.toFixed(1)} s until shared memory had them; ${((Date.now() - t0) / 1000).toFixed(1)} s in all)`);
  const tp = new Series('memif', 'DPDK testpmd io-forward'), lfp = new Series('memif', 'lfp fp');
  for (let i = 0; i < REPS; i++) {
    tp.add(await measure(`testpmd io (run ${i + 1})`, () => withTestpmd(null, [memif(0, 'server', sock('tp-a')), memif(1, 'server', sock('tp-b'))], (pid) =>
      runGen(null, { tx: { dpdk: memif(0, 'client', sock('tp-a')) }, rx: { dpdk: memif(1, 'client', sock('tp-b')) }, dstMac: MAC.port0 }, pid))));
    lfp.add(await measure(`lfp fp (run ${i + 1})`, () => lfpRun(env, (pid) => gen.measure(pid))));
  }
  await gen.stop();
  env.stop();
  envs.delete(env);
  rows.push({ s: tp });
  rows.push({ s: lfp, ...compare(lfp, tp, 'testpmd', GOAL_MEMIF) });
}

interface VethTopo { gen: Netns; rt: Netns }

/**
 * gen netns: g (generator) and s (receiver); router netns: r0 (peer of g) and r1 (peer of s).
 * rps: also a second generator link g2 -> r2 whose received frames r2 steers to FWD_CPU (RPS).
 */
function vethTopology(label: string, rps = false): VethTopo {
  const gen = netns(`fwd-${label}g`), rt = netns(`fwd-${label}r`);
  gen.ip(`link add g type veth peer name r0 netns ${rt.name}`);
  gen.ip(`link add s type veth peer name r1 netns ${rt.name}`);
  gen.ip(`link set g address ${MAC.gen}`);
  gen.ip(`link set s address ${MAC.sink}`);
  rt.ip(`link set r0 address ${MAC.port0}`);
  rt.ip(`link set r1 address ${MAC.port1}`);
  const links = ['g', 's'], rlinks = ['r0', 'r1'];
  if (rps) {
    gen.ip(`link add g2 type veth peer name r2 netns ${rt.name}`);
    gen.ip(`link set g2 address ${MAC.gen}`);
    rt.ip(`link set r2 address ${MAC.port2}`);
    rt.exec('sh', ['-c', `echo ${(1 << FWD_CPU).toString(16)} > /sys/class/net/r2/queues/rx-0/rps_cpus`]);
    links.push('g2'); rlinks.push('r2');
  }
  for (const l of links) gen.ip(`link set ${l} up`);
  for (const l of rlinks) rt.ip(`link set ${l} up`);
  return { gen, rt };
}

async function partVeth(batch: string): Promise<void> {
  console.log(`\n[veth] generator (cpu${GEN_CPU}) -> veth -> forwarder (cpu${FWD_CPU}) -> veth -> receiver; received = the receiving veth's rx_packets`);
  console.log(`  no RPS: a veth's receive work (skb, AF_PACKET/AF_XDP copy, Linux's own forwarding) runs in its sender's softirq, so cpu${GEN_CPU} also ` +
    `receives for the userspace forwarders and Linux forwards inside the generator's sends; Linux is also measured with RPS steering to cpu${FWD_CPU}`);
  const tK = vethTopology('k', true);
  // Linux router: the same routes, next hop and neighbour as lfp's control plane.
  const k = tK.rt;
  k.ip('addr add 10.1.0.1/24 dev r0');
  k.ip('addr add 10.2.0.1/24 dev r1');
  k.ip('addr add 10.3.0.1/24 dev r2');
  k.ip(`neigh replace 10.2.0.2 lladdr ${MAC.nextHop} dev r1 nud permanent`);
  k.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const t0 = Date.now();
  const kr = await run('ip', ['-n', k.name, '-batch', batch], 600000);
  if (kr.code !== 0) throw new Error(`ip -batch (kernel router): ${kr.err.slice(0, 2000)}`);
  console.log(`  Linux router netns has ${fmtInt(ROUTES)} routes (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const counter = '/sys/class/net/s/statistics/rx_packets';
  const kern = new Series('veth', `Linux forwarding, in the sender's softirq (cpu${GEN_CPU})`);
  const kernRps = new Series('veth', `Linux forwarding, RPS to cpu${FWD_CPU}`);
  VETH_PMDS.forEach((p, i) => { if (!/^af_(packet|xdp)$/.test(p)) throw new Error(`VETH_PMDS: ${p}: af_packet or af_xdp`); if (VETH_PMDS.indexOf(p) !== i) throw new Error(`VETH_PMDS: ${p} twice`); });
  let first = true;
  const lfps: Series[] = [], tps: Series[] = [];
  for (const pmdName of VETH_PMDS) {
    const pmd = (i: number, iface: string) => `net_${pmdName}${i},iface=${iface}`;
    const tag = pmdName.slice(3, 4);
    const tTp = vethTopology(`t${tag}`), tLfp = vethTopology(`l${tag}`);
    const cp = netns(`fwd-vcp${tag}`);
    const t1 = Date.now();
    const env = await startLfp(cp, [
      { name: 'eth1', dpdk: pmd(0, 'r0'), netns: tLfp.rt.name },
      { name: 'eth2', dpdk: pmd(1, 'r1'), netns: tLfp.rt.name },
    ]);
    dpvisUp(cp);
    await dpviCarrier(cp);
    const tr = await configureLfp(env, cp, batch);
    console.log(`  net_${pmdName}: lfp up with ${fmtInt(ROUTES)} routes (${tr.toFixed(1)} s until shared memory had them; ${((Date.now() - t1) / 1000).toFixed(1)} s in all)`);
    const tp = new Series(`veth ${pmdName}`, `DPDK testpmd io-forward, net_${pmdName}`), lfp = new Series(`veth ${pmdName}`, `lfp fp, net_${pmdName}`);
    for (let i = 0; i < REPS; i++) {
      tp.add(await measure(`testpmd io ${pmdName} (run ${i + 1})`, () => withTestpmd(tTp.rt, [pmd(0, 'r0'), pmd(1, 'r1')], (pid) =>
        runGen(tTp.gen, { tx: { kernel: 'g' }, rxCounter: counter, dstMac: MAC.port0 }, pid))));
      lfp.add(await measure(`lfp fp ${pmdName} (run ${i + 1})`, () => lfpRun(env, (pid) => runGen(tLfp.gen, { tx: { kernel: 'g' }, rxCounter: counter, dstMac: MAC.port0 }, pid))));
      if (first) {
        kern.add(await measure(`Linux, no RPS (run ${i + 1})`, () => runGen(tK.gen, { tx: { kernel: 'g' }, rxCounter: counter, dstMac: MAC.port0 })));
        kernRps.add(await measure(`Linux, RPS (run ${i + 1})`, () => runGen(tK.gen, { tx: { kernel: 'g2' }, rxCounter: counter, dstMac: MAC.port2 })));
      }
    }
    first = false;
    env.stop();
    envs.delete(env);
    tps.push(tp);
    lfps.push(lfp);
  }
  const linux = kern.mpps >= kernRps.mpps ? kern : kernRps; // the better of the two
  for (let i = 0; i < tps.length; i++) {
    const t = compare(lfps[i], tps[i], 'testpmd', GOAL_VETH), k = compare(lfps[i], linux, 'Linux');
    rows.push({ s: tps[i] });
    rows.push({ s: lfps[i], ratio: `${t.ratio}; ${k.ratio}`, goal: t.goal });
  }
  rows.push({ s: kern });
  rows.push({ s: kernRps });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const cpu = os.cpus();
  const mhz = spawnSync('sh', ['-c', "grep -m1 'cpu MHz' /proc/cpuinfo | sed 's/.*: //'"], { encoding: 'utf8' }).stdout.trim();
  tscHz = Number(mhz) * 1e6;
  console.log(`lfp bench-fwd, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: 64-byte IPv4 UDP (60 B + FCS) to random hosts of ${fmtInt(ROUTES)} routes`);
  console.log(`${cpu.length} cores (${cpu[0]?.model ?? '?'}, ${Number(mhz)} MHz: cycles/packet = MHz / Mpps on one core; in-memory rows: MHz x CPU time per packet of the best round), kernel ${os.release()}, Node ${process.version}; ` +
    `${MEASURE_MS} ms windows after ${WARMUP_MS} ms warm-up, ${REPS} alternating run(s) per forwarder, median reported`);
  if (cpu.length < 2 || Math.max(GEN_CPU, FWD_CPU) >= cpu.length || GEN_CPU === FWD_CPU) throw new Error('needs 2 distinct cores GEN_CPU, FWD_CPU');
  if (HUGE) {
    const h = prepareHugeDir(shmDir);
    hugeState = `${h.state === 'mounted' || h.state === 'huge' ? 'huge pages' : '4 KiB pages'}: ${h.detail}`;
  }
  console.log(`shared memory (in-memory world and lfp's file): ${hugeState}`);
  const batch = path.join(tmp, 'routes.batch');
  if (PARTS.has('memif') || PARTS.has('veth')) writeBatch(makeRoutes(ROUTES), batch, '10.2.0.2');
  if (PARTS.has('inmem')) await partInmem();
  if (PARTS.has('memif')) await partMemif(batch);
  if (PARTS.has('veth')) await partVeth(batch);

  console.log(`\nSummary (${((Date.now() - t0) / 1000).toFixed(0)} s):`);
  console.log('(">= x Mpps": the forwarder kept up with what the generator side could offer, so its capacity is higher; cycles/packet = one core\'s cycles / rate)');
  console.log('| part | forwarder | Mpps | runs | cycles/packet | ratio | goal |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${rowCells(r).join(' | ')} |`);
}

main().then(() => { cleanup(); process.exit(0); }, (e) => { console.error(e); cleanup(); process.exit(1); });
