// Raw single-core crypto references of `make bench-ipsec` (tests/bench/bench-ipsec.ts): `openssl speed -evp`
// and DPDK's `dpdk-test-crypto-perf` (throughput test, crypto_aesni_gcm and crypto_aesni_mb PMDs), both on the
// core the fast path is measured on.
//
// Every figure is work per second of CPU time of the process doing it (the machine is shared: a process that is
// preempted half of the time would otherwise look twice as slow):
//   - openssl speed counts CPU time itself (its default, without -elapsed): bytes/s from its -mr output;
//   - dpdk-test-crypto-perf reports wall-clock rates (TSC cycles of its worker lcore), printed as they are
//     ("wall"); the CPU-time figure divides its rate by the share of the core its worker thread got during its loop:
//     the thread's CPU time (/proc/<pid>/task/<tid>/stat, read every 50 ms; the last reading, taken while the thread
//     sleeps after its loop) over the loop's wall time (ops / the tool's rate). The process's CPU time cannot be used:
//     the main lcore busy-waits for the worker in rte_eal_wait_lcore on the other core. One run per buffer size, the
//     op count sized from a short calibration run so that the measurement takes about `targetS`.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import { performance } from 'perf_hooks';

export interface RawFigure {
  /** Gbit/s of the buffer bytes per CPU-second. */
  gbps: number;
  /** Million operations (buffers) per CPU-second. */
  mops: number;
  /** DPDK only: the tool's own wall-clock Gbit/s. */
  wallGbps?: number;
  /** Share of a CPU the process got while it ran (DPDK: CPU time / wall time of the measured run). */
  cpuShare?: number;
  note?: string;
}

export interface RawError { error: string }

// ------------------------------------------------------------------------------------------------ openssl speed

/**
 * `openssl speed [-aead] [-decrypt] -evp <cipher> | -hmac <md>` for one buffer size, pinned to `cpu`.
 * Returns undefined when openssl is missing; an error when it printed errors (e.g. a cipher it cannot run in speed).
 */
export function opensslSpeed(what: { evp?: string; hmac?: string; aead?: boolean; decrypt?: boolean }, bytes: number, cpu: number,
  seconds: number): RawFigure | RawError | undefined {
  const args = ['-c', String(cpu), 'openssl', 'speed', ...(what.aead ? ['-aead'] : []), ...(what.decrypt ? ['-decrypt'] : []),
    ...(what.evp ? ['-evp', what.evp] : ['-hmac', what.hmac as string]), '-bytes', String(bytes), '-seconds', String(seconds), '-mr'];
  const r = spawnSync('taskset', args, { encoding: 'utf8', timeout: 60000 });
  if (r.error || r.status === 127) return undefined;
  const err = (r.stderr ?? '').split('\n').filter((l) => /error/i.test(l));
  if (err.length > 0) return { error: `openssl speed ${args.slice(4).join(' ')}: ${err.length} error lines, e.g. ${err[0].slice(0, 160)}` };
  const f = /^\+F:\d+:[^:]+:([\d.]+)\s*$/m.exec(r.stdout ?? '');
  const rr = /^\+R:(\d+):[^:]+:([\d.]+)\s*$/m.exec(r.stdout ?? '');
  if (!f) return { error: `openssl speed ${args.slice(4).join(' ')}: no +F line in its output (status ${r.status})` };
  const bps = Number(f[1]);
  return { gbps: (bps * 8) / 1e9, mops: bps / bytes / 1e6, ...(rr ? { cpuShare: Number(rr[2]) / seconds } : {}) };
}

// ------------------------------------------------------------------------------------------------ dpdk-test-crypto-perf

export const DPDK_TOOL = 'dpdk-test-crypto-perf';

export interface DpdkConfig {
  /** vdev / devtype: crypto_aesni_gcm, crypto_aesni_mb. */
  dev: string;
  /** Application arguments after `--ptest throughput --devtype <dev>` (optype, algorithms...). */
  args: string[];
}

/** The throughput test's configurations of the bench (AES-128, ICV 16 bytes, 8 bytes of AAD as ESP without ESN). */
export const DPDK_CONFIGS: Record<string, DpdkConfig> = {
  gcmEncAesniGcm: { dev: 'crypto_aesni_gcm', args: aead('encrypt') },
  gcmDecAesniGcm: { dev: 'crypto_aesni_gcm', args: aead('decrypt') },
  gcmEncAesniMb: { dev: 'crypto_aesni_mb', args: aead('encrypt') },
  gcmDecAesniMb: { dev: 'crypto_aesni_mb', args: aead('decrypt') },
  /** AES-128-CBC then HMAC-SHA-256 (16-byte digest) in one chained operation. */
  cbcHmacEncAesniMb: {
    dev: 'crypto_aesni_mb',
    args: ['--optype', 'cipher-then-auth', '--cipher-algo', 'aes-cbc', '--cipher-op', 'encrypt', '--cipher-key-sz', '16', '--cipher-iv-sz', '16',
      '--auth-algo', 'sha2-256-hmac', '--auth-op', 'generate', '--auth-key-sz', '64', '--digest-sz', '16'],
  },
  // The decrypt chain (auth-then-cipher with --auth-op verify) needs a test-vector file in the throughput test; its
  // two halves are measured separately instead.
  cbcDecAesniMb: {
    dev: 'crypto_aesni_mb',
    args: ['--optype', 'cipher-only', '--cipher-algo', 'aes-cbc', '--cipher-op', 'decrypt', '--cipher-key-sz', '16', '--cipher-iv-sz', '16'],
  },
  hmacAesniMb: {
    dev: 'crypto_aesni_mb',
    args: ['--optype', 'auth-only', '--auth-algo', 'sha2-256-hmac', '--auth-op', 'generate', '--auth-key-sz', '64', '--digest-sz', '16'],
  },
};

function aead(op: 'encrypt' | 'decrypt'): string[] {
  return ['--optype', 'aead', '--aead-algo', 'aes-gcm', '--aead-op', op, '--aead-key-sz', '16', '--aead-iv-sz', '12', '--aead-aad-sz', '8',
    '--digest-sz', '16'];
}

export function dpdkAvailable(): boolean {
  return spawnSync(DPDK_TOOL, ['--help'], { encoding: 'utf8', timeout: 10000 }).error === undefined;
}

/** The EAL arguments: main lcore on the other core (it sleeps), the worker on `cpu`, no hugepages, no PCI. */
export function ealArgs(cpu: number, ncpu: number, prefix: string, vdev: string): string[] {
  const main = cpu === 0 ? 1 : 0;
  if (ncpu < 2) throw new Error(`${DPDK_TOOL} needs 2 lcores (main + worker); this machine has ${ncpu} CPU`);
  return ['-l', `${main},${cpu}`, '--no-huge', '-m', '512', '--no-pci', '--file-prefix', prefix, '--log-level', 'lib.eal:error', '--vdev', vdev];
}

interface DpdkRun { ops: number; wallMops: number; wallGbps: number; cycles: number; workerShare?: number }

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout) > 0 ? Number(r.stdout) : 100;
})();

/** utime + stime (seconds) of the thread of `pid` named `comm`, or undefined. */
function threadCpu(pid: number, comm: string): number | undefined {
  let tasks: string[];
  try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { return undefined; }
  for (const t of tasks) {
    try {
      if (fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim() !== comm) continue;
      const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch { /* gone */ }
  }
  return undefined;
}

/** One run for one buffer size; the CPU time of its worker thread (rte-worker-<cpu>) is read every 50 ms. */
function dpdkRun(cfg: DpdkConfig, eal: string[], cpu: number, bytes: number, ops: number, burst: number): Promise<DpdkRun | RawError> {
  const argv = [...eal, '--', '--ptest', 'throughput', '--devtype', cfg.dev, ...cfg.args, '--buffer-sz', String(bytes),
    '--total-ops', String(ops), '--burst-sz', String(burst), '--silent'];
  return new Promise((resolve) => {
    const c = spawn(DPDK_TOOL, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    const samples: [number, number][] = [];
    const timer = setInterval(() => {
      const x = c.pid !== undefined ? threadCpu(c.pid, `rte-worker-${cpu}`) : undefined;
      if (x !== undefined) samples.push([performance.now() / 1000, x]);
    }, 50);
    const kill = setTimeout(() => c.kill('SIGKILL'), 120000);
    c.on('close', (code) => {
      clearInterval(timer);
      clearTimeout(kill);
      const row = /^\s*\d+\s+(\d+)\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$/m.exec(out);
      if (!row) {
        const tail = out.trim().split('\n').slice(-3).join(' | ');
        resolve({ error: `${DPDK_TOOL} ${cfg.dev} ${cfg.args.slice(0, 2).join(' ')} ${bytes} B: no result (exit ${code}: ${tail.slice(0, 300)})` });
        return;
      }
      if (Number(row[1]) !== bytes || Number(row[3]) !== ops || Number(row[4]) > 0 || Number(row[5]) > 0) {
        resolve({ error: `${DPDK_TOOL} ${cfg.dev} ${bytes} B: unexpected counters (${row[0].trim()})` });
        return;
      }
      // The worker's CPU time (its last sample: after its loop the thread sleeps until the process exits) over the
      // wall-clock time of its loop (ops / the tool's own rate): the share of the core it got while it measured.
      let workerShare: number | undefined;
      if (samples.length >= 3) {
        const cpuS = samples[samples.length - 1][1], loopS = ops / (Number(row[6]) * 1e6);
        if (loopS > 0.2 && cpuS > 0) workerShare = Math.min(1, cpuS / loopS);
      }
      resolve({ ops, wallMops: Number(row[6]), wallGbps: Number(row[7]), cycles: Number(row[8]), workerShare });
    });
  });
}

/**
 * One configuration at each buffer size, worker on core `cpu`: per size and burst size (`bursts`: the tool's
 * --burst-sz; a larger burst keeps more jobs in the multi-buffer lanes between flushes) a short calibration run
 * (`calOps`), then a measured run sized to ~`targetS` of wall-clock time; the best burst per size is kept (its
 * note names it). Figures per CPU-second of the worker (see the head of the file).
 */
export async function dpdkPerf(cfg: DpdkConfig, sizes: number[], cpu: number, ncpu: number, targetS: number,
  calOps = 300_000, bursts: number[] = [32, 256]): Promise<Map<number, RawFigure | RawError>> {
  const prefix = `lfp-bench-ipsec-${process.pid}`;
  const res = new Map<number, RawFigure | RawError>();
  const eal = ealArgs(cpu, ncpu, prefix, cfg.dev);
  try {
    for (const bytes of sizes) {
      for (const burst of bursts) {
        const cal = await dpdkRun(cfg, eal, cpu, bytes, calOps, burst);
        if ('error' in cal) { if (!res.has(bytes)) res.set(bytes, cal); continue; }
        const ops = Math.max(calOps, Math.min(50_000_000, Math.round((cal.wallMops * 1e6 * targetS) / 1000) * 1000));
        const m = await dpdkRun(cfg, eal, cpu, bytes, ops, burst);
        if ('error' in m) { if (!res.has(bytes)) res.set(bytes, m); continue; }
        if (process.env.DEBUG_RAW) console.error({ dev: cfg.dev, bytes, burst, ops, wallMops: m.wallMops, share: m.workerShare });
        const share = m.workerShare ?? 1;
        const mops = m.wallMops / share;
        const prev = res.get(bytes);
        if (prev !== undefined && !('error' in prev) && prev.gbps >= (mops * bytes * 8) / 1000) continue;
        res.set(bytes, {
          gbps: (mops * bytes * 8) / 1000, mops, wallGbps: m.wallGbps, cpuShare: share,
          note: `burst ${burst}${m.workerShare === undefined ? '; worker CPU time not sampled: wall-clock figure' : ''}`,
        });
      }
    }
  } finally {
    fs.rmSync(`/var/run/dpdk/${prefix}`, { recursive: true, force: true });
  }
  return res;
}

/** Serial combination on one core: two passes over the same bytes (e.g. CBC then HMAC). */
export function serial(a: RawFigure, b: RawFigure, note: string): RawFigure {
  const gbps = 1 / (1 / a.gbps + 1 / b.gbps), mops = 1 / (1 / a.mops + 1 / b.mops);
  return { gbps, mops, note };
}
