// Child process of fp-perf.test.ts: replays a mix of frames through the graph with capture off and
// prints, as JSON, the young-generation GCs (scavenges, seen by a PerformanceObserver) that happened
// during the measured part. Run with a small young generation: any scavenge is allocation on the
// hot path.
//   node --min-semi-space-size=1 --max-semi-space-size=1 build/tests/unit/fp-alloc-child.js [packets] [set]
// set 'graph' (default): IPv4/IPv6 forwarding, fragmentation, every kind of exception and drop;
// set 'reader': IPv4 ECMP and connected hosts whose /24 holds a tbl8 group (local addresses), where
// ShmReader.lookup4 itself allocates (uint32 FIB words >= 2^31 from Atomics.load / returned across a
// call are boxed in HeapNumbers by V8); FP_ALLOC_PATCH_READER=1 replaces lookup4 by an int32 variant
// (the fix proposed for shared-mem/reader.ts) to show the graph itself is allocation-free there.

import { PerformanceObserver, constants, performance } from 'perf_hooks';
import { ShmReader } from '../../shared-mem/reader';
import { MemIo } from '../../fastpath/mem-io';
import { VEC, Vector } from '../../fastpath/vector';
import { PEER_MAC, PORT_MACS, eth, ip4, ipv4, ipv6, mac, makeWorld, udp, udp4Frame, udp6Frame } from './fp-helpers';

function frames(set: string): { port: number; frame: Uint8Array }[] {
  const out: { port: number; frame: Uint8Array }[] = [];
  if (set === 'reader') {
    for (let i = 0; i < 200; i++) {
      out.push({ port: 2, frame: udp4Frame(2, `172.16.${i}.1`, {}, 1000 + i, 80) });
      out.push({ port: 1, frame: udp4Frame(1, '10.0.1.5', { src: '10.0.2.9' }, 1000 + i) });
    }
    return out;
  }
  for (let i = 0; i < 200; i++) {
    out.push({ port: 0, frame: udp4Frame(0, `192.168.${i}.${i + 1}`, {}, 1000 + i) });
    out.push({ port: 1, frame: udp4Frame(1, `10.0.3.5`, { src: '10.0.2.9' }, 1000 + i) });
    out.push({ port: 1, frame: udp4Frame(1, `203.0.120.5`, { src: '10.0.2.9' }, 1000 + i) });
    out.push({ port: 0, frame: udp6Frame(0, `2001:db8:100::${(i + 1).toString(16)}`, {}, 1000 + i) });
    out.push({ port: 1, frame: udp6Frame(1, '2001:db8:1::5', { src: '2001:db8:2::9' }, 1000 + i) });
  }
  const more = [
    udp6Frame(0, '2001:db8:100::1'), udp6Frame(1, '2001:db8:1::5', { src: '2001:db8:2::9' }),
    udp4Frame(0, '198.18.1.1', {}, 1, 2, new Array(1472).fill(1)),
    eth('ff:ff:ff:ff:ff:ff', PEER_MAC, 0x0806, [0, 1, 8, 0, 6, 4, 0, 1, ...mac(PEER_MAC), ...ip4('10.0.1.5'), 0, 0, 0, 0, 0, 0, ...ip4('10.0.1.254')]),
    eth(PORT_MACS[0], PEER_MAC, 0x86dd, ipv6({ dst: 'fe80::1', src: 'fe80::5', nh: 58, hl: 255, payload: [136, 0, 0, 0] })),
    udp4Frame(0, '192.168.1.1', { ttl: 1 }), udp4Frame(0, '8.8.8.8'), udp4Frame(0, '10.0.1.254'), udp4Frame(0, '100.64.1.1'),
    udp4Frame(0, '100.128.1.1'), udp4Frame(0, '198.18.1.1', { df: true }, 1, 2, new Array(1400).fill(9)), udp4Frame(0, '192.168.1.1', { mf: true }),
    udp4Frame(0, '198.51.100.7'), udp4Frame(0, '192.168.1.1', { badChecksum: true }), udp4Frame(1, '192.168.1.1'),
    eth(PORT_MACS[0], PEER_MAC, 0x0800, ipv4({ dst: '192.168.1.1', options: [0x94, 4, 0, 0], payload: udp(1, 2) })),
    udp6Frame(0, '2001:db8:300::1', {}, 1, 2, new Array(1300).fill(9)), udp6Frame(0, '2001:db9::1'), udp6Frame(0, '::1'),
    udp6Frame(0, '2001:db8:100::1', { nh: 0 }), new Uint8Array(10), udp4Frame(0, '203.0.113.9'),
  ];
  for (let i = 0; i < 10; i++) for (const f of more) out.push({ port: f.length > 6 && f[5] === 2 ? 1 : 0, frame: f });
  return out;
}

/** The int32 lookup4 proposed for shared-mem/reader.ts (same logic, Int32Array loads, int32 result). */
function patchReader(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const L = require('../../shared-mem/layout') as typeof import('../../shared-mem/layout');
  type R = { u32: Uint32Array; i32?: Int32Array; base: Record<string, number> };
  const proto = ShmReader.prototype as unknown as { lookup4(slot: number, addr: number): number };
  const word4 = (r: R, i24: number, addr: number): number => {
    const i = r.i32!;
    const w = Atomics.load(i, i24);
    if ((w >>> 30) !== L.FIB_TBL8) return w;
    return Atomics.load(i, r.base.tbl8 + (w & L.FIB_INDEX_MASK) * L.TBL8_ENTRIES + (addr & 255));
  };
  proto.lookup4 = function (this: R, slot: number, addr: number): number {
    if (slot < 0) return 0;
    const i = this.i32 ?? (this.i32 = new Int32Array(this.u32.buffer, this.u32.byteOffset, this.u32.length));
    const i24 = this.base.tbl24 + slot * L.TBL24_ENTRIES + (addr >>> 8);
    let w = i[i24];
    if ((w >>> 30) === L.FIB_TBL8) w = i[this.base.tbl8 + (w & L.FIB_INDEX_MASK) * L.TBL8_ENTRIES + (addr & 255)];
    if (w !== 0) return w;
    w = word4(this, i24, addr);
    if (w !== 0) return w;
    const d = Atomics.load(i, this.base.fib4Desc + slot * L.FIB4D_E.WORDS + L.FIB4D_E.DEFAULT);
    w = word4(this, i24, addr);
    return w !== 0 ? w : d;
  };
}

function main(): void {
  const packets = Number(process.argv[2] ?? 1_000_000);
  const set = process.argv[3] ?? 'graph';
  if (process.env.FP_ALLOC_PATCH_READER === '1') patchReader();
  const io = new MemIo({ buffers: 4096, ports: 4, capture: false });
  const W = makeWorld({ io });
  const fr = frames(set);
  // port of each frame: the one whose MAC it is addressed to (others are 'not-for-us' drops anyway)
  const ports = fr.map(({ port }) => port);
  const data = fr.map(({ frame }) => frame);
  const v = new Vector();
  let k = 0;
  const run = (n: number): void => {
    for (let done = 0; done < n; done += VEC) {
      const got = io.alloc(v.mbuf, v.off, VEC);
      for (let i = 0; i < got; i++) {
        const j = k++ % data.length;
        io.mem.set(data[j], v.off[i]);
        v.len[i] = data[j].length;
        v.port[i] = ports[j];
      }
      v.n = got;
      W.g.process(v);
    }
  };
  const gcs: { start: number; kind: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, kind: (e as unknown as { detail: { kind: number } }).detail.kind });
  });
  obs.observe({ entryTypes: ['gc'] });
  run(300_000);
  const t0 = performance.now();
  run(packets);
  const t1 = performance.now();
  setTimeout(() => { obs.disconnect(); report(W, io, gcs.filter((g) => g.start >= t0 && g.start <= t1 && g.kind === constants.NODE_PERFORMANCE_GC_MINOR).length); }, 200);
}

function report(W: ReturnType<typeof makeWorld>, io: MemIo, scavenges: number): void {
  let fwd = 0, exc = 0, drops = 0;
  for (let p = 0; p < 4; p++) {
    const s = W.g.portStats(p);
    fwd += s.forwarded;
    exc += Object.values(s.exceptions).reduce((a, b) => a + b, 0);
    drops += Object.values(s.drops).reduce((a, b) => a + b, 0);
  }
  console.log(JSON.stringify({ scavenges, fwd, exc, drops, fragments: W.g.ipv4Fragment.fragments, inFlight: io.inFlight() }));
}

main();
