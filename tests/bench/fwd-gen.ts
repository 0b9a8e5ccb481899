// Generator and sink of `make bench-fwd` (a child process of tests/bench/bench-fwd.ts), on the
// lfp_pktio addon, one thread pinned to one core:
//   node fwd-gen.js '<GenOptions as JSON>'   -> prints one line of GenResult JSON
// Sends 64-byte IPv4 UDP frames (60 bytes + FCS) to random hosts of the benchmark's routes as fast
// as the tx port takes them (memif: back-pressure; veth: the kernel drops what the far end does not
// take), receives and frees what comes back on the sink port, and counts over a measurement window
// after a warm-up: frames sent, frames received by the sink port, and optionally a receiver's kernel
// counter (a sysfs rx_packets file: the sink interface of the veth topology).
import * as fs from 'fs';
import * as pktio from '../../native/pktio';
import { FRAME_LEN, makeDestinations, makeFrames, makeRoutes } from './fwd-routes';

export interface GenPort { dpdk?: string; kernel?: string; netns?: string }

export interface GenOptions {
  tx: GenPort;
  rx?: GenPort;
  /** sysfs counter file of the receiver (read at the window's start and end). */
  rxCounter?: string;
  routes: number;
  /** Destinations (precomputed frames), a power of two. */
  frames: number;
  dstMac: string;
  srcMac: string;
  srcIp: number;
  warmupMs: number;
  measureMs: number;
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

function readCounter(file: string | undefined): number {
  return file ? Number(fs.readFileSync(file, 'utf8').trim()) : 0;
}

function main(o: GenOptions): GenResult {
  const rs = makeRoutes(o.routes);
  const dst = makeDestinations(rs, o.frames);
  const table = makeFrames(dst, o.dstMac, o.srcMac, o.srcIp);
  const T = new Uint32Array(table.buffer, 0, table.length >>> 2);
  const W = FRAME_LEN >>> 2; // 15 words per frame
  const mask = o.frames - 1;

  const pool = pktio.init({ mbufs: 32767, core: o.core, pin: true });
  const tscHz = Number(pktio.cyclesHz());
  const txp = openPort(o.tx);
  const rxp = o.rx ? openPort(o.rx) : -1;
  const end = Date.now() + o.linkTimeoutMs;
  while (!(pktio.portInfo(txp).linkUp && (rxp < 0 || pktio.portInfo(rxp).linkUp))) {
    if (Date.now() > end) throw new Error(`generator: link down after ${o.linkTimeoutMs} ms (tx ${JSON.stringify(pktio.portInfo(txp))}${rxp >= 0 ? `, rx ${JSON.stringify(pktio.portInfo(rxp))}` : ''})`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }

  const mem = pool.mem;
  if ((mem.byteOffset & 3) !== 0) throw new Error('pool memory not 4-byte aligned');
  const M = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
  const mb = new Uint32Array(B), off = new Uint32Array(B), len = new Uint32Array(B).fill(FRAME_LEN);
  const rmb = new Uint32Array(B), roff = new Uint32Array(B), rlen = new Uint32Array(B);
  let pending = 0; // unsent packets kept at the front of mb/off (retried first)
  let k = 0;
  let sent = 0, received = 0;
  let phase = 0; // 0 warm-up, 1 measuring
  let t0 = performance.now();
  const tEnd0 = t0 + o.warmupMs;
  let tEnd = tEnd0;
  let s0 = 0, r0 = 0, c0 = 0;
  let seconds = 0;
  let txCalls = 0, txFull = 0, rxCalls = 0, rxEmpty = 0;
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
        } else {
          seconds = (now - t0) / 1000;
          break;
        }
      }
    }
  }
  const counter = readCounter(o.rxCounter) - c0;
  const res: GenResult = {
    seconds, sent: sent - s0, received: received - r0, counter,
    txPps: (sent - s0) / seconds, rxPps: (received - r0) / seconds, counterPps: counter / seconds, tscHz,
    txFullShare: txFull / Math.max(1, txCalls), rxEmptyShare: rxEmpty / Math.max(1, rxCalls),
    txStats: pktio.stats(txp), rxStats: rxp >= 0 ? pktio.stats(rxp) : undefined,
  };
  if (pending > 0) pktio.free(mb, pending);
  pktio.shutdown();
  return res;
}

if (require.main === module) {
  try {
    const r = main(JSON.parse(process.argv[2]) as GenOptions);
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: (e as Error).message }) + '\n');
    process.exit(1);
  }
}
