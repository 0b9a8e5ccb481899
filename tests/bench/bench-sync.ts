// make bench-sync: 1,000,000 IPv4 routes added with `ip -batch` in the control-plane netns, and how
// long until lfp's shared memory has them all (ratio to the kernel's own install time); then the
// latency of single route changes from the kernel's answer to shared memory (p50/p99).
// A benchmark, not a test: it prints figures. ROUTES=n overrides the count, SAMPLES=n the number of
// single changes, POLL_US the polling period of the latency check (default 100 us).
// "Shared memory has all routes" is what fpctl sees: the route count of the shared-memory header
// (what `fpctl show routes` lists), read every 20 ms by this process, which sleeps in between (the
// check costs nothing measurable; the 2 cores are busy with ip, the kernel, cmgrd and fpmd).
// Also printed: the kernel's install rate and the CPU time cmgrd and fpmd used during the burst
// (from /proc: user + system, all threads), which are less sensitive to other load than the times.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import { spawn } from 'child_process';
import { Netns } from '../lib/netns';
import { LfpEnv, sleep } from '../lib/lfp-env';
import { RequestSocket } from '../../cache-manager/nlsock';
import { encodeRoute } from '../../netlink/rtnl';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NETLINK_ROUTE } from '../../netlink/constants';
import { createLogger } from '../../lib/log';
import { monotonicNs } from '../../native';
import type { Route } from '../../lib/model';

const N = Number(process.env.ROUTES ?? 1_000_000);
const SAMPLES = Number(process.env.SAMPLES ?? 300);
const POLL_US = Number(process.env.POLL_US ?? 100);

/** CPU time (user + system, seconds) of a process so far, from /proc; NaN when gone. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch { return NaN; }
}
const CLK_TCK = 100;

/**
 * A full garbage collection of this process, so that its own collector does not pause it in the
 * middle of a measurement (building the 1M-line batch file leaves ~100 MB of garbage; its major
 * collection used to land on the same latency sample in every run).
 */
let gcFn: ((o?: { type: 'major' | 'minor' }) => void) | undefined;
function collect(type: 'major' | 'minor' = 'major'): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as (o?: { type: 'major' | 'minor' }) => void;
  }
  gcFn({ type });
}

function pct(sorted: number[], p: number): number { return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]; }

async function main(): Promise<void> {
  const cp = Netns.create('bench');
  let env: LfpEnv | undefined;
  const file = path.join(os.tmpdir(), `lfp-bench-${process.pid}.batch`);
  try {
    cp.ip('link add veth0 type veth peer name veth1');
    cp.ip('link set veth0 up');
    cp.ip('link set veth1 up');
    cp.ip('addr add 10.0.0.1/24 dev veth0');
    env = await LfpEnv.start({ cpNetns: cp.name, rcvbuf: 1024 * 1024 * 1024, shm: { maxRoutes: Math.max(1_500_000, N + 100_000), fib4Tables: 4, fib6Tables: 4 } });
    const reader = env.reader;
    const count = () => reader.header().kinds.route.count;
    const base = count();

    const lines: string[] = [];
    for (let i = 0; i < N; i++) lines.push(`route add ${11 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24 via 10.0.0.2`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    lines.length = 0;
    collect();

    console.log(`lfp bench-sync: ${N.toLocaleString('en')} IPv4 routes with ip -batch (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''})`);
    const procs = (env as unknown as { procs: Map<string, { pid?: number }> }).procs;
    const pids = { cmgrd: procs.get('cmgrd')?.pid, fpmd: procs.get('fpmd')?.pid };
    const cpu0 = { cmgrd: cpuSeconds(pids.cmgrd), fpmd: cpuSeconds(pids.fpmd) };
    const t0 = process.hrtime.bigint();
    let tKernel = 0;
    const ip = spawn('ip', ['-n', cp.name, '-batch', file], { stdio: 'ignore' });
    const ipDone = new Promise<void>((res) => ip.on('exit', (code) => {
      tKernel = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) console.log(`ip -batch exited ${code}`);
      res();
    }));
    let tLfp = 0;
    for (;;) {
      if (count() - base >= N) { tLfp = Number(process.hrtime.bigint() - t0) / 1e9; break; }
      await sleep(20); // (coarse: the run lasts seconds, and the 2 cores are busy with ip, cmgrd and fpmd)
      if (Number(process.hrtime.bigint() - t0) / 1e9 > 600) throw new Error(`lfp has ${count() - base} of ${N} routes after 600 s`);
    }
    const cpu = { cmgrd: cpuSeconds(pids.cmgrd) - cpu0.cmgrd, fpmd: cpuSeconds(pids.fpmd) - cpu0.fpmd };
    await ipDone;
    const st = env.cmgrdStatus();
    console.log(`kernel install time (ip -batch):          ${tKernel.toFixed(2)} s`);
    console.log(`time until shared memory has all routes:   ${tLfp.toFixed(2)} s`);
    console.log(`ratio lfp / kernel:                        ${(tLfp / tKernel).toFixed(2)}  (goal <= 1.2)`);
    console.log(`routes/s into shared memory:               ${Math.round(N / tLfp).toLocaleString('en')}`);
    console.log(`kernel install rate:                       ${Math.round(N / tKernel).toLocaleString('en')} routes/s`);
    console.log(`CPU during the burst: cmgrd ${cpu.cmgrd.toFixed(2)} s (${(cpu.cmgrd / N * 1e6).toFixed(1)} us/route), fpmd ${cpu.fpmd.toFixed(2)} s (${(cpu.fpmd / N * 1e6).toFixed(1)} us/route)`);
    console.log(`FPC: ${st?.fpc?.sent ?? '?'} envelopes in ${st?.fpc?.messages ?? '?'} ZeroMQ messages since cmgrd started (its status file, up to 1 s old)`);
    console.log(`netlink overruns (ENOBUFS) during the run: ${st?.counters?.overruns ?? '?'}`);

    // Single changes: replace one route back and forth between two gateways through our own netlink
    // socket; time from the kernel's ACK to the FIB word changing in shared memory.
    const log = createLogger('bench', 'warn');
    const sock = new RequestSocket('bench', NETLINK_ROUTE, cp.path, log);
    const slot = reader.fib4Slot(0, 254);
    const addr = ((100 << 24) | (64 << 16) | (1 << 8) | 1) >>> 0; // 100.64.1.1
    const lat: number[] = [];
    const nap = new Int32Array(new SharedArrayBuffer(4));
    collect();
    const at: number[] = [];
    const gaps: number[] = []; // longest time between two polls of a sample (this process stalled)
    const tFirst = monotonicNs();
    for (let i = 0; i < SAMPLES; i++) {
      const r: Route = { vrf: 0, table: 254, family: 4, dst: '100.64.1.0', plen: 24, tos: 0, priority: 0, type: 'unicast', protocol: 4, scope: 0,
        nexthops: [{ gw: i % 2 ? '10.0.0.3' : '10.0.0.2', ifindex: 0, weight: 1, flags: 0 }] };
      collect('minor'); // (between samples: no young-generation collection of ours inside a sample)
      const before = reader.lookup4(slot, addr);
      await sock.request((seq) => {
        const m = encodeRoute(r, 'new', seq);
        m.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, 6);
        return m;
      }, false);
      const tAck = monotonicNs();
      const deadline = Date.now() + 2000;
      // Poll every POLL_US, sleeping in between (Atomics.wait) so that this process does not take a
      // core away from cmgrd and fpmd (resolution POLL_US: far below the 5 ms goal).
      let last = tAck, gap = 0n;
      while (reader.lookup4(slot, addr) === before && Date.now() < deadline) {
        Atomics.wait(nap, 0, 0, POLL_US / 1000);
        const now = monotonicNs();
        if (now - last > gap) gap = now - last;
        last = now;
      }
      gaps.push(Number(gap) / 1e6);
      lat.push(Number(monotonicNs() - tAck) / 1e6);
      at.push(Number(tAck - tFirst) / 1e6);
      await sleep(2);
    }
    sock.close();
    const slow = lat.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
    if (process.env.SLOW) {
      console.log(`slowest samples (ms @ index, ms since the first sample): ${slow.map(([v, i]) => `${v.toFixed(2)}@${i} (+${at[i].toFixed(0)}, longest poll gap ${gaps[i].toFixed(2)})`).join(', ')}`);
      if (process.env.SLOW === 'logs') {
        const keep = path.join(os.tmpdir(), `lfp-bench-sync-logs-${process.pid}`);
        fs.mkdirSync(keep, { recursive: true });
        for (const d of ['cmgrd', 'fpmd']) fs.copyFileSync(path.join(env.dir, `${d}.log`), path.join(keep, `${d}.log`));
        console.log(`daemon logs kept in ${keep} (the latency phase began at ${Number(tFirst) / 1e6} ms of CLOCK_MONOTONIC)`);
      }
    }
    lat.sort((a, b) => a - b);
    const stalled = gaps.filter((g) => g > 1).length;
    console.log(`samples in which this benchmark itself was not scheduled for > 1 ms (machine load): ${stalled}`);
    console.log(`single route change, netlink ACK -> shared memory (${SAMPLES} samples): p50 ${pct(lat, 0.5).toFixed(2)} ms, p99 ${pct(lat, 0.99).toFixed(2)} ms, max ${lat[lat.length - 1].toFixed(2)} ms  (goal p99 <= 5 ms)`);
  } finally {
    env?.stop();
    // (LFP_CPU_PROF: the daemons write their profiles at exit; give them time before ours kills them)
    if (process.env.LFP_CPU_PROF) await sleep(5000);
    cp.destroy();
    fs.rmSync(file, { force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
