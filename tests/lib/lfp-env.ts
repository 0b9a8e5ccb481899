// A running lfp (fpmd + cmgrd as real processes) for tests, with its own config, shared-memory
// file, FPC socket and run/log directories; stop() removes all of it.
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ShmReader } from '../../shared-mem/reader';
import type { ObjectKind, ObjectOf } from '../../lib/model';
import { configToJson, LfpConfig, PortSpec, statsPath } from '../../lib/config';
import { StatsFile, PortStats } from '../../shared-mem/stats';

type Daemon = 'fpmd' | 'cmgrd' | 'fp' | 'fpsd';

const BUILD = path.resolve(__dirname, '../..');
const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(what: string, timeoutMs: number, cond: () => boolean, pollMs = 2): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    let ok = false;
    try { ok = cond(); } catch { ok = false; }
    if (ok) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

export interface EnvOptions { cpNetns: string; noCmgrd?: boolean; vrfNetns?: string[]; portSpecs?: PortSpec[]; ports?: string[]; rcvbuf?: number; shm?: Partial<LfpConfig['shm']>; fpc?: string }

export class LfpEnv {
  readonly dir: string;
  readonly cfg: LfpConfig;
  readonly cfgFile: string;
  private procs = new Map<string, ChildProcess>();
  private reader_: ShmReader | null = null;

  constructor(o: EnvOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-t-'));
    const id = path.basename(this.dir);
    this.cfg = {
      controlPlaneNetns: o.cpNetns, vrfNetns: o.vrfNetns ?? null, ports: o.portSpecs ? o.portSpecs.map((p) => p.name) : o.ports ?? [],
      portSpecs: o.portSpecs ?? (o.ports ?? []).map((name) => ({ name })), fastpath: { eal: [], memMB: 128, mbufs: 8192, burst: 256 },
      fpc: o.fpc ?? `ipc://${this.dir}/fpc.sock`,
      shm: { path: `/dev/shm/${id}`, hugePages: false, maxRoutes: 300000, tbl8Groups: 8192, fib4Tables: 8, fib6Tables: 8, fib6Entries: 65536, ...(o.shm ?? {}) },
      runDir: this.dir, logDir: this.dir, netlinkRcvbuf: o.rcvbuf ?? 64 * 1024 * 1024, logLevel: 'info', respawn: false,
    };
    this.cfgFile = path.join(this.dir, 'lfp.json');
    fs.writeFileSync(this.cfgFile, configToJson(this.cfg));
  }

  static async start(o: EnvOptions): Promise<LfpEnv> {
    const env = new LfpEnv(o);
    try {
      env.spawn('fpmd', ['--fresh']);
      await waitUntil('fpmd shared memory', 10000, () => { env.reader_ = ShmReader.open(env.cfg.shm.path); return true; }, 20);
      if (env.cfg.portSpecs.some((p) => p.dpdk || p.kernel)) {
        env.spawn('fp');
        await waitUntil('fast path running', 30000, () => {
          if (!env.alive('fp')) throw new Error('fp exited');
          return StatsFile.open(statsPath(env.cfg)).read().perWorker[0].fields.heartbeatMs > 0;
        }, 50);
      }
      if (!o.noCmgrd) {
        env.spawn('cmgrd');
        await env.waitSynced(30000);
      }
    } catch (e) {
      const logs = env.logs(); // before stop(), which removes the log directory
      env.stop();
      throw new Error(`${(e as Error).message}\n--- logs ---\n${logs}`);
    }
    return env;
  }

  spawn(name: Daemon, extra: string[] = []): ChildProcess {
    const script = { fpmd: 'fp-manager/main.js', cmgrd: 'cache-manager/main.js', fp: 'fastpath/main.js', fpsd: 'stats-daemon/main.js' }[name];
    const out = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const prof = process.env.LFP_CPU_PROF ? [`--cpu-prof`, `--cpu-prof-dir=${process.env.LFP_CPU_PROF}`] : [];
    const c = spawn(process.execPath, ['--max-old-space-size=6144', ...prof, path.join(BUILD, script), '-c', this.cfgFile, ...extra], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    children.add(c);
    c.on('exit', () => children.delete(c));
    this.procs.set(name, c);
    return c;
  }

  kill(name: Daemon, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.procs.get(name);
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((r) => { c.once('exit', () => r()); c.kill(signal); });
  }

  /**
   * Stops fpmd, the fast path and cmgrd (SIGKILL, as a crash) and starts them again, fpmd with `--fresh` (a new
   * shared-memory file: other entry indexes and sequence words) unless `fresh` is false; `dropStats`: the fast path's
   * stats file is removed first (nothing kept from the previous fast path). Resolves once cmgrd's full sync is in.
   */
  async restartAll(o: { fresh?: boolean; dropStats?: boolean } = {}): Promise<void> {
    for (const n of ['cmgrd', 'fp', 'fpmd'] as const) await this.kill(n);
    if (o.dropStats) fs.unlinkSync(statsPath(this.cfg));
    this.reader_ = null;
    const t0 = Date.now();
    const oldIno = o.fresh === false ? -1 : fs.statSync(this.cfg.shm.path).ino;
    try {
      this.spawn('fpmd', o.fresh === false ? [] : ['--fresh']);
      await waitUntil('fpmd shared memory', 20000, () => {
        if (fs.statSync(this.cfg.shm.path).ino === oldIno) return false; // still the old file
        this.reader_ = ShmReader.open(this.cfg.shm.path);
        return true;
      }, 50);
      this.spawn('fp');
      await waitUntil('fast path running', 60000, () => {
        if (!this.alive('fp')) throw new Error('fp exited');
        return StatsFile.open(statsPath(this.cfg)).read().perWorker[0].fields.heartbeatMs > t0; // the new fast path's heartbeat
      }, 100);
      this.spawn('cmgrd');
      await this.waitSynced(60000);
    } catch (e) {
      throw new Error(`restart: ${(e as Error).message}\n--- logs ---\n${this.logs()}`);
    }
  }

  /** Process id of a running daemon, or null. */
  pid(name: Daemon): number | null {
    const c = this.procs.get(name);
    return c && c.exitCode === null && c.signalCode === null ? c.pid ?? null : null;
  }

  alive(name: Daemon): boolean {
    const c = this.procs.get(name);
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  get reader(): ShmReader {
    if (!this.reader_) this.reader_ = ShmReader.open(this.cfg.shm.path);
    return this.reader_;
  }

  list<K extends ObjectKind>(kind: K, vrf?: number): ObjectOf[K][] {
    return this.reader.list(kind, vrf !== undefined ? { vrf } : {}).map((o) => o.obj as unknown as ObjectOf[K]);
  }

  cmgrdStatus(): Record<string, any> | null {
    try { return JSON.parse(fs.readFileSync(path.join(this.dir, 'cmgrd.status'), 'utf8')); } catch { return null; }
  }

  /** Waits for cmgrd to be connected and fpmd to have finished a full replay since `sinceSyncEnds`. */
  async waitSynced(timeoutMs: number, sinceSyncEnds = 0): Promise<void> {
    await waitUntil('full sync', timeoutMs, () => {
      const st = this.cmgrdStatus();
      return !!st && st.fpc?.state === 'ready' && this.syncEnds() > sinceSyncEnds;
    }, 20);
  }

  syncEnds(): number { return this.reader.header().counters.syncEnds ?? 0; }

  fpctl(args: string[]): string {
    const r = spawnSync(process.execPath, [path.join(BUILD, 'cli/fpctl.js'), '-c', this.cfgFile, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`fpctl ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  fpctlJson<T = unknown>(args: string[]): T { return JSON.parse(this.fpctl([...args, '--json'])) as T; }

  logs(): string {
    let s = '';
    for (const n of ['fpmd', 'fp', 'cmgrd', 'fpsd']) {
      try { s += `[${n}.log]\n` + fs.readFileSync(path.join(this.dir, `${n}.log`), 'utf8').split('\n').slice(-40).join('\n') + '\n'; } catch { /* none */ }
    }
    return s;
  }

  /** Fast-path counters (summed over workers), per port. */
  stats(): PortStats[] { return StatsFile.open(statsPath(this.cfg)).read().total; }

  stop(): void {
    // SIGTERM first when profiling (the profile is written at a clean exit)
    for (const c of this.procs.values()) { try { c.kill(process.env.LFP_CPU_PROF ? 'SIGTERM' : 'SIGKILL'); } catch { /* gone */ } }
    try { fs.unlinkSync(this.cfg.shm.path); } catch { /* none */ }
    try { fs.unlinkSync(statsPath(this.cfg)); } catch { /* none */ }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
