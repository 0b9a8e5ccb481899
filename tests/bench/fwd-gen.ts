// Generator and sink of `make bench-fwd` (a child process of tests/bench/bench-fwd.ts), on the
// lfp_pktio addon, one thread pinned to one core:
//   node fwd-gen.js '<GenOptions as JSON>'   -> one measurement, prints one line of GenResult JSON
//   node fwd-gen.js '<GenOptions>' serve     -> opens the ports, prints {"ready":true}, then runs one
//        measurement per line on stdin ('{"measure": {...MeasureOptions}}', '{"exit": true}') and
//        prints a GenResult line for each (the ports stay open, memif links up, in between)
// Sends 64-byte IPv4 UDP frames (60 bytes + FCS) to random hosts of the benchmark's routes as fast
// as the tx port takes them (memif: back-pressure; veth: the kernel drops what the far end does not
// take), receives and frees what comes back on the sink port, and counts over a measurement window
// after a warm-up: frames sent, frames received by the sink port, and optionally a receiver's kernel
// counter (a sysfs rx_packets file: the receiving interface of the veth topology). Also reports
// the CPU shares of this process, of the forwarder process and of each core over the window.
import * as fs from 'fs';
import * as readline from 'readline';
import * as pktio from '../../native/pktio';
import { FRAME_LEN, makeDestinations, makeFrames, makeRoutes } from './fwd-routes';

export interface GenPort { dpdk?: string; kernel?: string; netns?: string }

export interface MeasureOptions {
  warmupMs: number;
  measureMs: number;
  /** sysfs counter file of the receiver (read at the window's start and end). */
  rxCounter?: string;
  /** The forwarder's pid (its CPU time over the window is reported). */
  fwdPid?: number;
}

export interface GenOptions extends MeasureOptions {
  tx: GenPort;
  rx?: GenPort;
  routes: number;
  /** Destinations (precomputed frames), a power of two. */
  frames: number;
  dstMac: string;
  srcMac: string;
  srcIp: number;
  core: number;
  /** Wait this long for the ports' links (memif: the peer connects). */
  linkTimeoutMs: number;
}

export interface GenResult {
  seconds: number;
  sent: number;
  received: number;
  counter: number;
  txPps: number;
  rxPps: number;
  counterPps: number;
  tscHz: number;
  /** Share of tx calls (measurement window) that could not send the whole burst: the far end was full. */
  txFullShare: number;
  /** Share of sink rx calls that found nothing. */
  rxEmptyShare: number;
  /** CPU time of this process / window (below ~0.95: something else ran on its core). */
  cpuShare: number;
  /** Same for the forwarder process (fwdPid), NaN without one. */
  fwdCpuShare: number;
  /** Per CPU over the window: busy share (not idle/iowait), softirq share, user share (/proc/stat). */
  cpuBusy: number[];
  cpuSoftirq: number[];
  cpuUser: number[];
  /** Per CPU: CPU time of its ksoftirqd thread / window (softirq work deferred to the thread). */
  ksoftirqd: number[];
  txStats: pktio.PortStats;
  rxStats?: pktio.PortStats;
  error?: string;
}

const B = 256;

function openPort(p: GenPort): number {
  if (p.dpdk) return pktio.dpdkPort(p.dpdk, { netns: p.netns, rxDesc: 1024, txDesc: 1024 });
  if (p.kernel) return pktio.kernelPort(p.kernel, { netns: p.netns, qdiscBypass: true });
  throw new Error('port without dpdk or kernel');
}

function cpuTimes(): number[][] {
  return fs.readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((l) => l.trim().split(/\s+/).slice(1, 9).map(Number));
}

function procCpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // utime + stime in USER_HZ (100)
  } catch { return NaN; }
}

/** The pids of ksoftirqd/0, ksoftirqd/1, ... */
function ksoftirqdPids(): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^ksoftirqd\/(\d+)$/.exec(fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim());
      if (m) pids[Number(m[1])] = Number(d);
    } catch { /* gone */ }
  }
  return pids;
}

function readCounter(file: string | undefined): number {
  return file ? Number(fs.readFileSync(file, 'utf8').trim()) : 0;
}

class Generator {
  private readonly T: Uint32Array;
  private readonly M: Uint32Array;
  private readonly mask: number;
  private readonly tscHz: number;
  private readonly txp: number;
  private readonly rxp: number;
  private readonly mb = new Uint32Array(B);
  private readonly off = new Uint32Array(B);
  private readonly len = new Uint32Array(B).fill(FRAME_LEN);
  private readonly rmb = new Uint32Array(B);
  private readonly roff = new Uint32Array(B);
  private readonly rlen = new Uint32Array(B);
  private readonly ksoftirqd = ksoftirqdPids();
  private pending = 0; // unsent packets kept at the front of mb/off (retried first)
  private k = 0;

  constructor(o: GenOptions) {
    const table = makeFrames(makeDestinations(makeRoutes(o.routes), o.frames), o.dstMac, o.srcMac, o.srcIp);
    this.T = new Uint32Array(table.buffer, 0, table.length >>> 2);
    this.mask = o.frames - 1;
    const pool = pktio.init({ mbufs: 32767, core: o.core, pin: true });
    this.tscHz = Number(pktio.cyclesHz());
    this.txp = openPort(o.tx);
    this.rxp = o.rx ? openPort(o.rx) : -1;
    const mem = pool.mem;
    if ((mem.byteOffset & 3) !== 0) throw new Error('pool memory not 4-byte aligned');
    this.M = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
    this.waitLinks(o.linkTimeoutMs);
  }

  waitLinks(timeoutMs: number): void {
    const end = Date.now() + timeoutMs;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (!(pktio.portInfo(this.txp).linkUp && (this.rxp < 0 || pktio.portInfo(this.rxp).linkUp))) {
      if (Date.now() > end) throw new Error(`generator: link down after ${timeoutMs} ms (tx ${JSON.stringify(pktio.portInfo(this.txp))}${this.rxp >= 0 ? `, rx ${JSON.stringify(pktio.portInfo(this.rxp))}` : ''})`);
      Atomics.wait(nap, 0, 0, 10);
    }
  }

  /** Sends and receives as fast as possible for warm-up + window; counts over the window. */
  measure(o: MeasureOptions): GenResult {
    const { M, T, mb, off, len, rmb, roff, rlen, txp, rxp } = this;
    const W = FRAME_LEN >>> 2; // 15 words per frame
    const mask = this.mask;
    let pending = this.pending, k = this.k;
    let sent = 0, received = 0;
    let phase = 0; // 0 warm-up, 1 measuring
    let t0 = performance.now();
    let tEnd = t0 + o.warmupMs;
    let s0 = 0, r0 = 0, c0 = 0, seconds = 0;
    let txCalls = 0, txFull = 0, rxCalls = 0, rxEmpty = 0;
    let cpu0 = process.cpuUsage();
    let st0: number[][] = [], f0 = NaN, k0: number[] = [];
    for (let iter = 0; ; iter++) {
      if (pending < B) {
        const n = pktio.alloc(pending === 0 ? mb : mb.subarray(pending), pending === 0 ? off : off.subarray(pending), B - pending);
        for (let i = pending; i < pending + n; i++) {
          if ((off[i] & 3) !== 0) throw new Error(`mbuf data offset ${off[i]} not 4-byte aligned`);
          const w = off[i] >>> 2, s = (k & mask) * W;
          for (let j = 0; j < W; j++) M[w + j] = T[s + j];
          k++;
        }
        pending += n;
      }
      const got = pktio.tx(txp, mb, off, len, pending);
      sent += got;
      txCalls++;
      if (got < pending) txFull++;
      if (got > 0 && got < pending) { mb.copyWithin(0, got, pending); off.copyWithin(0, got, pending); }
      pending -= got;
      if (rxp >= 0) {
        const r = pktio.rx(rxp, rmb, roff, rlen, B);
        rxCalls++;
        if (r > 0) { pktio.free(rmb, r); received += r; } else rxEmpty++;
      }
      if ((iter & 63) === 0) {
        const now = performance.now();
        if (now >= tEnd) {
          if (phase === 0) {
            phase = 1; t0 = now; tEnd = now + o.measureMs;
            s0 = sent; r0 = received; c0 = readCounter(o.rxCounter);
            txCalls = txFull = rxCalls = rxEmpty = 0;
            cpu0 = process.cpuUsage(); st0 = cpuTimes(); f0 = procCpuSeconds(o.fwdPid); k0 = this.ksoftirqd.map(procCpuSeconds);
          } else {
            seconds = (now - t0) / 1000;
            break;
          }
        }
      }
    }
    const counter = readCounter(o.rxCounter) - c0;
    const cpu = process.cpuUsage(cpu0);
    const st1 = cpuTimes(), f1 = procCpuSeconds(o.fwdPid), k1 = this.ksoftirqd.map(procCpuSeconds);
    const d = st1.map((x, i) => x.map((v, j) => v - st0[i][j]));
    const tot = d.map((x) => Math.max(1, x.reduce((a, b) => a + b, 0)));
    // Drain what is still coming back, so that the next measurement starts from empty rings.
    if (rxp >= 0) {
      const until = performance.now() + 20;
      while (performance.now() < until) { const r = pktio.rx(rxp, rmb, roff, rlen, B); if (r > 0) pktio.free(rmb, r); }
    }
    this.pending = pending;
    this.k = k;
    return {
      seconds, sent: sent - s0, received: received - r0, counter,
      txPps: (sent - s0) / seconds, rxPps: (received - r0) / seconds, counterPps: counter / seconds, tscHz: this.tscHz,
      txFullShare: txFull / Math.max(1, txCalls), rxEmptyShare: rxEmpty / Math.max(1, rxCalls),
      cpuShare: (cpu.user + cpu.system) / 1e6 / seconds,
      fwdCpuShare: (f1 - f0) / seconds,
      cpuBusy: d.map((x, i) => 1 - (x[3] + x[4]) / tot[i]),
      cpuSoftirq: d.map((x, i) => x[6] / tot[i]),
      cpuUser: d.map((x, i) => (x[0] + x[1]) / tot[i]),
      ksoftirqd: d.map((_, i) => ((k1[i] ?? NaN) - (k0[i] ?? NaN)) / seconds || 0),
      txStats: pktio.stats(txp), rxStats: rxp >= 0 ? pktio.stats(rxp) : undefined,
    };
  }

  close(): void {
    if (this.pending > 0) pktio.free(this.mb, this.pending);
    this.pending = 0;
    pktio.shutdown();
  }
}

async function serve(g: Generator): Promise<void> {
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = JSON.parse(line) as { measure?: MeasureOptions; exit?: boolean };
    if (cmd.exit || !cmd.measure) break;
    process.stdout.write(JSON.stringify(g.measure(cmd.measure)) + '\n');
  }
  rl.close();
}

if (require.main === module) {
  const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  (async () => {
    const o = JSON.parse(process.argv[2]) as GenOptions;
    const g = new Generator(o);
    if (process.argv[3] === 'serve') await serve(g);
    else out(g.measure(o));
    g.close();
  })().then(() => process.exit(0), (e) => { out({ error: (e as Error).message }); process.exit(1); });
}
