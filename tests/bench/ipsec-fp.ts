// Fast-path part of `make bench-ipsec` (a child process of tests/bench/bench-ipsec.ts, pinned to one
// core by the parent):
//   node ipsec-fp.js '<FpOptions JSON>'   -> prints one line of FpResult JSON
// The whole ESP path of the fast-path Graph (GraphOptions.ipsec) on in-memory ports (MemIo), shared
// memory written with ShmWriter directly (no fpmd), in two mirrored "gateways":
//   A (measured): port 0 = eth1 10.1.0.1/24 (clear side: 10.50.0.0/16 via 10.1.0.2),
//                 port 1 = eth2 10.2.0.1/24 (tunnel side: peer 10.2.0.2).
//     out policies 10.50/16 -> 10.99/16 (SA 0x1001, AES-128-GCM rfc4106, ICV 128) and
//                  10.50/16 -> 10.98/16 (SA 0x1002, AES-128-CBC + HMAC-SHA-256-128), tunnel 10.2.0.1 -> 10.2.0.2;
//     in policies  10.99/16 -> 10.50/16 (SA 0x2001, GCM) and 10.98/16 -> 10.50/16 (SA 0x2002, CBC+SHA256).
//   B (the peer, used once to prepare the inbound ESP packets): the mirror image; its out SAs are A's in SAs.
// Outbound point: clear UDP/IPv4 packets of S bytes (the inner packet = IPv4 header + UDP + payload)
//   enter A on port 0 -> eth-input, ipv4-input, ipv4-lookup, esp-encrypt (SPD, SA, encap, encryptBurst),
//   ipv4-lookup (outer), ipv4-rewrite, port-tx on port 1.
// Inbound point: ESP packets prepared once by B's encrypt path (P of them, consecutive sequence numbers) enter A
//   on port 1 -> eth-input, ipv4-input, ipv4-lookup (local), esp-decrypt (SAD, replay, decryptBurst,
//   trailer, inner policy), ipv4-input, ipv4-lookup, esp-encrypt's SPD check, ipv4-rewrite, port-tx on port 0.
//   They are replayed in order; each time the list starts again (every P packets, between two vectors)
//   the inbound SA's anti-replay state is set back to "nothing received" (IpsecState.topHi/topLo of the SA),
//   so the sequence numbers are fresh to it and every packet is accepted, as the counters then check.
// The "generator" copies a prepared frame into a freshly allocated buffer for every packet (the job a
// NIC's DMA does), VEC packets per vector; its cost alone is measured too ("graph alone" = without it).
// Also measured alone: encryptBurst / decryptBurst of lfp_crypto at the same encLen ("lfp_crypto").
// Before the timed rounds of a point: one checked vector (ESP opened with node:crypto / inner packets
// compared), a warm-up, and a full GC when the process runs with --expose-gc (the parent passes it).
// Gbit/s counts the inner packets' bytes (S per packet), per second of this process's CPU time
// (pinned to one core: core-seconds) -- the wall-clock rate and the CPU share are given too.
import * as nodeCrypto from 'crypto';
import * as fs from 'fs';
import { performance } from 'perf_hooks';
import type { AnyObject, XfrmPolicy, XfrmSa, XfrmSelector } from '../../lib/model';
import { computeLayout, type ShmConfig } from '../../shared-mem/layout';
import { ShmReader } from '../../shared-mem/reader';
import { ShmWriter } from '../../shared-mem/writer';
import { parse4 } from '../../shared-mem/addr';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { VEC, Vector } from '../../fastpath/vector';
import * as nativeCrypto from '../../native/crypto';

export type Alg = 'gcm' | 'cbc';
export type Dir = 'out' | 'in';

export interface FpOptions {
  sizes: number[];
  algs: Alg[];
  /** Target time of one figure (ms of measurement, split into `rounds`). */
  pointMs: number;
  rounds: number;
  /** Prepared frames per point (inbound: distinct sequence numbers 1..templates); a multiple of VEC. */
  templates: number;
  /** Also measure lfp_crypto alone at each point (default true). */
  cryptoAlone: boolean;
  /** Only these directions (default both). */
  dirs: Dir[];
  /**
   * Gateway A's graph with GraphOptions.ipsecLocalDecrypt, as the `fp` process runs it when Linux trusts the DPVIs
   * (config fastpath.ipsecLocalDecrypt, default true); default false.
   */
  localDecrypt?: boolean;
  /** Gateway A also has a 'fwd' policy per 'in' policy (same selector, as strongSwan installs them); default false. */
  fwdPolicies?: boolean;
}

export interface FpPoint {
  alg: Alg;
  dir: Dir;
  size: number;
  packets: number;
  /** Per round: Mpps per CPU-second, Mpps per wall-second, CPU share. */
  rounds: { mppsCpu: number; mppsWall: number; cpuShare: number }[];
  /** Median round: Mpps and Gbit/s (inner bytes) per CPU-second, whole path (generator included). */
  mpps: number;
  gbps: number;
  /** Generator alone (ns per packet, CPU time) and the graph alone (generator subtracted). */
  genNs: number;
  graphMpps: number;
  graphGbps: number;
  /** Counters from the warm-up on: packets fed, sent on the egress port, dropped, to Linux. */
  fed: number;
  sent: number;
  drops: number;
  exceptions: number;
  /** Packets of the correctness check opened / compared (before timing). */
  checked: number;
  /** Minor GCs during this point's timed rounds. */
  scavenges: number;
  /** lfp_crypto alone on the same encLen, bursts of VEC: ns per packet (CPU time). */
  crypto: { encLen: number; ns: number };
}

export interface FpResult {
  cpuMhz: number;
  points: FpPoint[];
  /** Minor GCs (scavenges) during the timed rounds (the hot loop should allocate nothing) and their total time. */
  scavenges: number;
  measuredS: number;
}

// ------------------------------------------------------------------------------------------------ keys and worlds

const KEYS = {
  gcmOut: '000102030405060708090a0b0c0d0e0f' + 'cafebabe',
  gcmIn: 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + 'deadbeef',
  cbcOut: '101112131415161718191a1b1c1d1e1f',
  hmacOut: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
  cbcIn: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf',
  hmacIn: 'c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf',
};
export const SPI = { gcmOut: 0x1001, cbcOut: 0x1002, gcmIn: 0x2001, cbcIn: 0x2002 };
const A_MAC = ['02:00:00:0a:00:01', '02:00:00:0a:00:02'];
const B_MAC = ['02:00:00:0b:00:01', '02:00:00:0b:00:02'];
const HOST_MAC = '02:00:00:00:00:99';
const A_ADDR = '10.2.0.1', B_ADDR = '10.2.0.2';
/** Inner networks: the clear side of A, the GCM and CBC networks behind B. */
const NET = { clear: 0x0a320000, gcm: 0x0a630000, cbc: 0x0a620000 }; // 10.50/16, 10.99/16, 10.98/16

const CFG: Partial<ShmConfig> = {
  maxVrfs: 2, maxLinks: 8, maxAddrs: 8, maxRoutes: 64, fib4Tables: 2, tbl8Groups: 64,
  fib6Tables: 1, fib6Entries: 64, maxNexthops: 16, maxGroups: 4, maxNeigh: 16, maxRules: 8, maxPolicies: 16, maxSas: 16,
};
const INF = '18446744073709551615';

function sel(saddr: string, splen: number, daddr: string, dplen: number): XfrmSelector {
  return { family: 4, saddr, daddr, splen, dplen, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 };
}
function saObj(daddr: string, saddr: string, spi: number, reqid: number, alg: Alg, out: boolean): AnyObject {
  const s: XfrmSa = {
    vrf: 0, proto: 50, family: 4, mode: 'tunnel', flags: 0, replayWindow: 64, esn: false, selector: sel('0.0.0.0', 0, '0.0.0.0', 0), ifId: 0,
    lifetime: { softBytes: INF, hardBytes: INF, softPackets: INF, hardPackets: INF, softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
    daddr, saddr, spi, reqid,
    ...(alg === 'gcm'
      ? { aead: { name: 'rfc4106(gcm(aes))', key: out ? KEYS.gcmOut : KEYS.gcmIn, icvBits: 128 } }
      : { enc: { name: 'cbc(aes)', key: out ? KEYS.cbcOut : KEYS.cbcIn }, auth: { name: 'hmac(sha256)', key: out ? KEYS.hmacOut : KEYS.hmacIn, truncBits: 128 } }),
  };
  return { kind: 'sa', obj: s };
}
function policyObj(index: number, dir: 'in' | 'out' | 'fwd', selector: XfrmSelector, reqid: number, tdaddr: string, tsaddr: string): AnyObject {
  const p: XfrmPolicy = {
    vrf: 0, index, dir, priority: 1000, action: 'allow', flags: 0, selector, ifId: 0,
    tmpls: [{ family: 4, daddr: tdaddr, saddr: tsaddr, spi: 0, proto: 50, mode: 'tunnel', reqid, optional: false, share: 0,
      aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff }],
  };
  return { kind: 'policy', obj: p };
}

interface World { r: ShmReader; io: MemIo; g: Graph }

/**
 * Gateway A (side 'A') or its peer B ('B'). Both: port 0 eth1 (ifindex 2), port 1 eth2 (ifindex 3) on 10.2.0.0/24.
 * A's out SAs are B's in SAs and the reverse (same keys, same SPIs).
 */
function buildWorld(side: 'A' | 'B', buffers: number, localDecrypt = false, fwdPolicies = false): World {
  const sab = new SharedArrayBuffer(computeLayout(CFG).totalSize);
  const w = ShmWriter.create(sab, CFG);
  const macs = side === 'A' ? A_MAC : B_MAC;
  const me = side === 'A' ? A_ADDR : B_ADDR, peer = side === 'A' ? B_ADDR : A_ADDR;
  const peerMac = side === 'A' ? B_MAC[1] : A_MAC[1];
  const link = (ifindex: number, name: string, mac: string): AnyObject => ({ kind: 'link', obj: { vrf: 0, ifindex, name, kind: '', mac, mtu: 1500, flags: 0x1003, adminUp: true, operUp: true, master: 0, link: 0, port: -1 } });
  w.upsert(link(2, 'eth1', macs[0]));
  w.upsert(link(3, 'eth2', macs[1]));
  w.setPorts(['eth1', 'eth2']);
  const route = (table: number, dst: string, plen: number, type: string, protocol: number, scope: number, ifindex: number, gw?: string): AnyObject =>
    ({ kind: 'route', obj: { vrf: 0, table, family: 4, dst, plen, tos: 0, priority: 0, type, protocol, scope, nexthops: [{ ...(gw ? { gw } : {}), ifindex, weight: 1, flags: 0 }] } } as AnyObject);
  const lan = side === 'A' ? '10.1.0' : '10.3.0';
  w.upsert(route(255, `${lan}.1`, 32, 'local', 2, 254, 2));
  w.upsert(route(255, me, 32, 'local', 2, 254, 3));
  w.upsert(route(254, `${lan}.0`, 24, 'unicast', 2, 253, 2));
  w.upsert(route(254, '10.2.0.0', 24, 'unicast', 2, 253, 3));
  w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 4, addr: `${lan}.2`, lladdr: HOST_MAC, state: 0x80, flags: 0 } });
  w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: peer, lladdr: peerMac, state: 0x80, flags: 0 } });
  // A: the clear network behind eth1, the GCM / CBC networks behind the peer. B: the reverse.
  const local = side === 'A' ? ['10.50.0.0'] : ['10.99.0.0', '10.98.0.0'];
  const remote = side === 'A' ? ['10.99.0.0', '10.98.0.0'] : ['10.50.0.0'];
  for (const n of local) w.upsert(route(254, n, 16, 'unicast', 4, 0, 2, `${lan}.2`));
  for (const n of remote) w.upsert(route(254, n, 16, 'unicast', 4, 0, 3, peer));
  // SAs: A -> B spi 0x100x (out of A), B -> A spi 0x200x (in of A)
  const aToB = side === 'A';
  w.upsert(saObj(B_ADDR, A_ADDR, SPI.gcmOut, 1, 'gcm', true));
  w.upsert(saObj(B_ADDR, A_ADDR, SPI.cbcOut, 3, 'cbc', true));
  w.upsert(saObj(A_ADDR, B_ADDR, SPI.gcmIn, 2, 'gcm', false));
  w.upsert(saObj(A_ADDR, B_ADDR, SPI.cbcIn, 4, 'cbc', false));
  if (aToB) {
    w.upsert(policyObj(1, 'out', sel('10.50.0.0', 16, '10.99.0.0', 16), 1, B_ADDR, A_ADDR));
    w.upsert(policyObj(9, 'out', sel('10.50.0.0', 16, '10.98.0.0', 16), 3, B_ADDR, A_ADDR));
    w.upsert(policyObj(2, 'in', sel('10.99.0.0', 16, '10.50.0.0', 16), 2, A_ADDR, B_ADDR));
    w.upsert(policyObj(10, 'in', sel('10.98.0.0', 16, '10.50.0.0', 16), 4, A_ADDR, B_ADDR));
    if (fwdPolicies) {
      w.upsert(policyObj(3, 'fwd', sel('10.99.0.0', 16, '10.50.0.0', 16), 2, A_ADDR, B_ADDR));
      w.upsert(policyObj(11, 'fwd', sel('10.98.0.0', 16, '10.50.0.0', 16), 4, A_ADDR, B_ADDR));
    }
  } else {
    w.upsert(policyObj(1, 'out', sel('10.99.0.0', 16, '10.50.0.0', 16), 2, A_ADDR, B_ADDR));
    w.upsert(policyObj(9, 'out', sel('10.98.0.0', 16, '10.50.0.0', 16), 4, A_ADDR, B_ADDR));
    w.upsert(policyObj(2, 'in', sel('10.50.0.0', 16, '10.99.0.0', 16), 1, B_ADDR, A_ADDR));
    w.upsert(policyObj(10, 'in', sel('10.50.0.0', 16, '10.98.0.0', 16), 3, B_ADDR, A_ADDR));
  }
  const r = ShmReader.attach(sab);
  const io = new MemIo({ buffers, ports: 2, capture: false });
  const g = new Graph({ io, shm: r, ports: 2, ipsec: true, ipsecLocalDecrypt: localDecrypt });
  return { r, io, g };
}

// ------------------------------------------------------------------------------------------------ frames

function macBytes(s: string): number[] { return s.split(':').map((x) => parseInt(x, 16)); }

/** A UDP/IPv4 frame: inner packet of `size` bytes (IPv4 20 + UDP 8 + payload), TTL 64, valid header checksum. */
function clearFrame(dstMac: string, src: number, dst: number, size: number, k: number): Uint8Array {
  const f = new Uint8Array(14 + size);
  f.set(macBytes(dstMac), 0); f.set(macBytes(HOST_MAC), 6); f[12] = 0x08; f[13] = 0x00;
  const o = 14;
  const id = k & 0xffff;
  f.set([0x45, 0, size >>> 8, size & 255, id >>> 8, id & 255, 0, 0, 64, 17, 0, 0,
    src >>> 24, (src >>> 16) & 255, (src >>> 8) & 255, src & 255, dst >>> 24, (dst >>> 16) & 255, (dst >>> 8) & 255, dst & 255], o);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (f[o + i] << 8) | f[o + i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  f[o + 10] = c >>> 8; f[o + 11] = c & 255;
  const sport = 1024 + (k % 50000), ulen = size - 20;
  f.set([sport >>> 8, sport & 255, 0x13, 0x89, ulen >>> 8, ulen & 255, 0, 0], o + 20);
  for (let i = o + 28; i < f.length; i++) f[i] = (i * 7 + k) & 255;
  return f;
}

/** `n` clear frames from the clear network to the GCM or CBC network (or the reverse: `reverse`). */
function clearFrames(alg: Alg, size: number, n: number, dstMac: string, reverse: boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  const far = alg === 'gcm' ? NET.gcm : NET.cbc;
  for (let k = 0; k < n; k++) {
    const a = (NET.clear | (1 + (k % 250))) >>> 0, b = (far | ((k >>> 8) & 255) << 8 | (k & 255)) >>> 0;
    out.push(reverse ? clearFrame(dstMac, b, a, size, k) : clearFrame(dstMac, a, b, size, k));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ generator

/**
 * Keeps the prepared frames in buffers of the MemIo reserved for good (so a packet is made with one
 * copyWithin inside the pool memory: no allocation) and fills vectors with copies of them, in order.
 */
class Gen {
  private readonly tMbuf: Uint32Array;
  private readonly tOff: Uint32Array;
  private readonly tLen: Uint32Array;
  private k = 0;
  /** Called before the first frame of every pass over the list (after the first). */
  onWrap: (() => void) | null = null;
  constructor(private readonly io: MemIo, private readonly port: number, frames: Uint8Array[]) {
    const n = frames.length;
    if (n % VEC !== 0) throw new Error(`templates (${n}) must be a multiple of ${VEC}`);
    const mbuf = this.tMbuf = new Uint32Array(n);
    this.tOff = new Uint32Array(n);
    if (io.alloc(mbuf, this.tOff, n) !== n) { io.free(mbuf, n); throw new Error('MemIo pool too small for the templates'); }
    this.tLen = new Uint32Array(n);
    for (let i = 0; i < n; i++) { io.mem.set(frames[i], this.tOff[i]); this.tLen[i] = frames[i].length; }
  }
  fill(v: Vector): void {
    const n = this.io.alloc(v.mbuf, v.off, VEC);
    if (n !== VEC) throw new Error(`MemIo pool exhausted (${n} buffers)`);
    const m = this.io.mem, T = this.tOff, L = this.tLen, P = T.length;
    let k = this.k;
    if (k === P) { k = 0; if (this.onWrap !== null) this.onWrap(); }
    for (let i = 0; i < n; i++) {
      const s = T[k], len = L[k];
      m.copyWithin(v.off[i], s, s + len);
      v.len[i] = len;
      v.port[i] = this.port;
      v.aux[i] = 0;
      k++;
    }
    this.k = k;
    v.n = n;
  }
  /** Gives the template buffers back to the pool. */
  release(): void { this.io.free(this.tMbuf, this.tMbuf.length); }
}

// ------------------------------------------------------------------------------------------------ checks (node:crypto)

const be32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Opens an ESP frame sent by A (outer IPv4 without options) with node:crypto; returns the inner packet. */
function openOut(f: Uint8Array, alg: Alg): Buffer {
  const esp = Buffer.from(f.subarray(14 + 20));
  let plain: Buffer;
  if (alg === 'gcm') {
    const key = Buffer.from(KEYS.gcmOut.slice(0, 32), 'hex'), salt = Buffer.from(KEYS.gcmOut.slice(32), 'hex');
    const d = nodeCrypto.createDecipheriv('aes-128-gcm', key, Buffer.concat([salt, esp.subarray(8, 16)]));
    d.setAAD(esp.subarray(0, 8));
    d.setAuthTag(esp.subarray(esp.length - 16));
    plain = Buffer.concat([d.update(esp.subarray(16, esp.length - 16)), d.final()]);
  } else {
    const mac = nodeCrypto.createHmac('sha256', Buffer.from(KEYS.hmacOut, 'hex')).update(esp.subarray(0, esp.length - 16)).digest().subarray(0, 16);
    if (!mac.equals(esp.subarray(esp.length - 16))) throw new Error('outbound CBC packet: bad HMAC-SHA-256-128');
    const d = nodeCrypto.createDecipheriv('aes-128-cbc', Buffer.from(KEYS.cbcOut, 'hex'), esp.subarray(8, 24));
    d.setAutoPadding(false);
    plain = Buffer.concat([d.update(esp.subarray(24, esp.length - 16)), d.final()]);
  }
  if (plain[plain.length - 1] !== 4) throw new Error('outbound: next header is not IPv4');
  return plain.subarray(0, plain.length - 2 - plain[plain.length - 2]);
}

/** Inner packet `got` (after one or two hops) equals the IPv4 packet of `orig` except TTL and checksum. */
function sameInner(orig: Uint8Array, got: Uint8Array, what: string): void {
  const ip = orig.subarray(14);
  if (got.length !== ip.length) throw new Error(`${what}: inner length ${got.length}, expected ${ip.length}`);
  for (let j = 0; j < ip.length; j++) {
    if (j === 8 || j === 10 || j === 11) continue;
    if (got[j] !== ip[j]) throw new Error(`${what}: inner byte ${j} differs`);
  }
}

// ------------------------------------------------------------------------------------------------ measurement

function cpuMhz(): number {
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function sumValues(o: Record<string, number>): number { return Object.values(o).reduce((a, b) => a + b, 0); }

/** performance.now() windows of the timed rounds (scavenges are counted inside them only). */
const windows: [number, number, number][] = [];
let pointNo = 0;

function measurePoint(A: World, prepared: Uint8Array[], port: number, opts: FpOptions, onWrap: (() => void) | null): {
  rounds: FpPoint['rounds']; packets: number; fed: number; genNs: number;
} {
  const gen = new Gen(A.io, port, prepared);
  gen.onWrap = onWrap;
  const v = new Vector();
  const run = (ms: number, graph: boolean): { n: number; cpu: number; wall: number } => {
    const c0 = process.cpuUsage(), t0 = performance.now(), end = t0 + ms;
    let n = 0, t = t0;
    while (t < end) {
      for (let i = 0; i < 8; i++) {
        gen.fill(v);
        if (graph) A.g.process(v);
        else { A.io.free(v.mbuf, v.n); v.n = 0; }
      }
      n += 8 * VEC;
      t = performance.now();
    }
    const c = process.cpuUsage(c0);
    return { n, cpu: (c.user + c.system) / 1e6, wall: (t - t0) / 1000 };
  };
  let fed = run(Math.min(400, opts.pointMs / 4), true).n; // warm-up (JIT, caches)
  // a full GC now (the parent passes --expose-gc): the set-up's garbage is not collected during the timed rounds
  const gc = (globalThis as unknown as { gc?: () => void }).gc;
  if (gc) gc();
  const rounds: FpPoint['rounds'] = [];
  let packets = 0;
  for (let r = 0; r < opts.rounds; r++) {
    const w0 = performance.now();
    const x = run(opts.pointMs / opts.rounds, true);
    windows.push([w0, performance.now(), pointNo]);
    packets += x.n;
    fed += x.n;
    rounds.push({ mppsCpu: x.n / x.cpu / 1e6, mppsWall: x.n / x.wall / 1e6, cpuShare: x.cpu / x.wall });
  }
  // the generator alone; wrapping without the graph would reset the SA for nothing: harmless
  gen.onWrap = null;
  run(Math.min(150, opts.pointMs / 8), false);
  const g = run(Math.max(200, opts.pointMs / 5), false);
  gen.release();
  return { rounds, packets, fed, genNs: (g.cpu / g.n) * 1e9 };
}

/**
 * encryptBurst / decryptBurst alone (the native part of esp-encrypt / esp-decrypt) for the encLen of an inner packet
 * of `size` bytes, bursts of VEC packets 2 KiB apart, CPU time. Decryption: decrypt + encrypt again (which makes
 * the next valid packet in place), minus encrypt alone.
 */
function cryptoAlone(alg: Alg, dir: Dir, size: number, opts: FpOptions): { encLen: number; ns: number } {
  const h = nativeCrypto.createSa(alg === 'gcm'
    ? { aead: { name: 'rfc4106(gcm(aes))', keyHex: KEYS.gcmOut, icvBits: 128 } }
    : { enc: { name: 'cbc(aes)', keyHex: KEYS.cbcOut }, auth: { name: 'hmac(sha256)', keyHex: KEYS.hmacOut, truncBits: 128 } });
  try {
    const { ivLen, blockSize } = nativeCrypto.saInfo(h);
    const encLen = Math.ceil((size + 2) / blockSize) * blockSize;
    const N = VEC, STRIDE = 2048;
    const mem = new Uint8Array(N * STRIDE);
    const off = new Uint32Array(N).map((_, i) => i * STRIDE + 128), len = new Uint32Array(N).fill(encLen);
    const lo = new Uint32Array(N), hi = new Uint32Array(N), status = new Uint8Array(N);
    for (let i = 0; i < N; i++) for (let j = 0; j < encLen; j++) mem[off[i] + 8 + ivLen + j] = (i + j) & 255;
    let seq = 1;
    const enc = (): void => { for (let i = 0; i < N; i++) lo[i] = seq++; nativeCrypto.encryptBurst(h, mem, off, len, lo, hi, N, false); };
    const time = (f: () => void, ms: number): number => { // CPU ns per call
      for (let i = 0; i < 20; i++) f();
      const c0 = process.cpuUsage(), t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < ms) { for (let i = 0; i < 8; i++) f(); n += 8; }
      const c = process.cpuUsage(c0);
      return ((c.user + c.system) * 1000) / n;
    };
    const ms = Math.max(100, opts.pointMs / 6);
    const e = time(enc, ms);
    if (dir === 'out') return { encLen, ns: e / N };
    // decrypt + encrypt again (a fresh valid packet for the next round), minus encrypt alone
    const de = time(() => { nativeCrypto.decryptBurst(h, mem, off, len, hi, N, false, status); enc(); }, ms);
    if (!status.every((x) => x === nativeCrypto.STATUS_OK)) throw new Error('lfp_crypto alone: decryption failed');
    return { encLen, ns: (de - e) / N };
  } finally {
    nativeCrypto.destroySa(h);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function point(A: World, B: World, alg: Alg, dir: Dir, size: number, opts: FpOptions): FpPoint {
  const P = opts.templates;
  let prepared: Uint8Array[];
  let origOf: (k: number) => Uint8Array;
  let onWrap: (() => void) | null = null;
  let egress: number;
  let checked = 0;
  if (dir === 'out') {
    const frames = clearFrames(alg, size, P, A_MAC[0], false);
    prepared = frames;
    origOf = (k) => frames[k % P];
    egress = 1;
    // correctness: one vector with capture, every ESP packet opened with node:crypto
    A.io.capture = true;
    const v = new Vector();
    for (let k = 0; k < VEC; k++) A.io.inject(v, 0, frames[k]);
    A.g.process(v);
    A.io.capture = false;
    const sent = A.io.sent[1];
    if (sent.length !== VEC) throw new Error(`outbound check: ${sent.length} of ${VEC} packets sent on port 1 (${JSON.stringify(A.g.portStats(0))})`);
    sent.forEach((f, k) => {
      if (f[23] !== 50 || be32(f, 34) !== (alg === 'gcm' ? SPI.gcmOut : SPI.cbcOut)) throw new Error('outbound check: not ESP with the SA');
      sameInner(origOf(k), openOut(f, alg), 'outbound');
      checked++;
    });
    A.io.clearCaptured();
  } else {
    // the peer encrypts P clear packets (consecutive sequence numbers) once
    const frames = clearFrames(alg, size, P, B_MAC[0], true);
    B.io.capture = true;
    const v = new Vector();
    for (let k = 0; k < P; k++) {
      B.io.inject(v, 0, frames[k]);
      if (v.n === VEC) B.g.process(v);
    }
    if (v.n > 0) B.g.process(v);
    B.io.capture = false;
    prepared = B.io.sent[1].slice();
    B.io.clearCaptured();
    if (prepared.length !== P) throw new Error(`inbound preparation: the peer sent ${prepared.length} of ${P} ESP packets`);
    const sn0 = be32(prepared[0], 38);
    prepared.forEach((f, k) => {
      if (f[23] !== 50 || be32(f, 38) !== sn0 + k) throw new Error(`inbound preparation: packet ${k} is not ESP with SN ${sn0 + k}`);
    });
    origOf = (k) => frames[k % P];
    egress = 0;
    const ips = A.g.ipsec;
    const s = A.r.saLookup(0, parse4(A_ADDR) >>> 0, alg === 'gcm' ? SPI.gcmIn : SPI.cbcIn, 50);
    if (ips === null || s < 0 || !(ips.topLo instanceof Uint32Array) || !(ips.topHi instanceof Uint32Array)) {
      throw new Error('inbound: cannot find the SA or its anti-replay state (IpsecState.topHi/topLo changed?)');
    }
    onWrap = () => { ips.topHi[s] = 0; ips.topLo[s] = 0; };
    onWrap();
    // correctness: the first vector, the decapsulated packets compared with the peer's clear packets
    A.io.capture = true;
    const w = new Vector();
    for (let k = 0; k < VEC; k++) A.io.inject(w, 1, prepared[k]);
    A.g.process(w);
    A.io.capture = false;
    const sent = A.io.sent[0];
    if (sent.length !== VEC) throw new Error(`inbound check: ${sent.length} of ${VEC} inner packets sent on port 0 (${JSON.stringify(A.g.portStats(1))})`);
    sent.forEach((f, k) => { sameInner(origOf(k), f.subarray(14), 'inbound'); checked++; });
    A.io.clearCaptured();
    onWrap(); // the measured replay starts again from the first packet
  }
  const st0 = A.g.portStats(egress), in0 = A.g.portStats(1 - egress);
  const m = measurePoint(A, prepared, dir === 'out' ? 0 : 1, opts, onWrap);
  const st = A.g.portStats(egress), inS = A.g.portStats(1 - egress);
  const sent = st.txPackets - st0.txPackets;
  const drops = sumValues(inS.drops) - sumValues(in0.drops) + sumValues(st.drops) - sumValues(st0.drops);
  const exceptions = sumValues(inS.exceptions) - sumValues(in0.exceptions) + sumValues(st.exceptions) - sumValues(st0.exceptions);
  const mpps = median(m.rounds.map((r) => r.mppsCpu));
  const graphNs = 1000 / mpps - m.genNs;
  const graphMpps = graphNs > 0 ? 1000 / graphNs : 0;
  return {
    alg, dir, size, packets: m.packets, rounds: m.rounds, mpps, gbps: (mpps * size * 8) / 1000,
    genNs: m.genNs, graphMpps, graphGbps: (graphMpps * size * 8) / 1000, fed: m.fed, sent, drops, exceptions, checked, scavenges: 0,
    crypto: opts.cryptoAlone ? cryptoAlone(alg, dir, size, opts) : { encLen: 0, ns: 0 },
  };
}

export async function main(opts: FpOptions): Promise<FpResult> {
  if (!nativeCrypto.available()) throw new Error('the lfp_crypto addon is not built (make native)');
  const gcs: number[] = [];
  const { PerformanceObserver, constants } = await import('perf_hooks');
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  const points: FpPoint[] = [];
  const A = buildWorld('A', opts.templates + 4 * VEC, opts.localDecrypt === true, opts.fwdPolicies === true);
  const B = buildWorld('B', opts.templates + 2 * VEC);
  try {
    for (const alg of opts.algs) {
      for (const size of opts.sizes) {
        for (const dir of opts.dirs) {
          pointNo = points.length;
          const p = point(A, B, alg, dir, size, opts);
          points.push(p);
          process.stderr.write(`  fast path ${alg} ${dir} ${size} B: ${p.gbps.toFixed(2)} Gbit/s (${p.mpps.toFixed(2)} Mpps)\n`);
        }
      }
    }
  } finally {
    A.g.close();
    B.g.close();
  }
  await new Promise((res) => setTimeout(res, 100));
  obs.disconnect();
  const inWin = (t: number): number => { for (const [a, b, k] of windows) if (t >= a && t <= b) return k; return -1; };
  for (const t of gcs) { const k = inWin(t); if (k >= 0) points[k].scavenges++; }
  const scavenges = points.reduce((a, p) => a + p.scavenges, 0);
  return { cpuMhz: cpuMhz(), points, scavenges, measuredS: windows.reduce((a, [x, y]) => a + (y - x) / 1000, 0) };
}

if (require.main === module) {
  const o = JSON.parse(process.argv[2] ?? '{}') as Partial<FpOptions>;
  const opts: FpOptions = {
    sizes: o.sizes ?? [64, 512, 1400], algs: o.algs ?? ['gcm', 'cbc'], pointMs: o.pointMs ?? 1500, rounds: o.rounds ?? 3,
    templates: o.templates ?? 1024, cryptoAlone: o.cryptoAlone ?? true, dirs: o.dirs ?? ['out', 'in'], localDecrypt: o.localDecrypt === true,
    fwdPolicies: o.fwdPolicies === true,
  };
  for (const s of opts.sizes) if (!(s >= 28 && s <= 1400)) throw new RangeError(`size ${s}: must be in [28, 1400] (inner UDP/IPv4 packet)`);
  main(opts).then(
    (res) => process.stdout.write(JSON.stringify(res) + '\n'),
    (e) => { process.stdout.write(JSON.stringify({ error: (e as Error).stack ?? String(e) }) + '\n'); process.exit(1); });
}
