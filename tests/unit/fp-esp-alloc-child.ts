// Child process of fp-esp3.test.ts: a mix of IPsec traffic through the graph (outbound tunnel mode
// IPv4/IPv6 in IPv4/IPv6 with GCM and CBC + HMAC, NAT-T, transport mode; inbound decryption of IPv4
// and IPv6 outer ESP, replays, bad ICVs, unknown SPIs, clear text matching a fwd policy; fragmentation
// after encryption) with capture off, printing as JSON the young-generation GCs (scavenges) during the
// measured part. Run with a 1 MB young generation: any scavenge is allocation on the hot path.
//   node --min-semi-space-size=1 --max-semi-space-size=1 build/tests/unit/fp-esp-alloc-child.js [packets] [fragment mode]

import { PerformanceObserver, constants, performance } from 'perf_hooks';
import { computeLayout } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG } from '../../shared-mem/test-fixtures';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { VEC, Vector } from '../../fastpath/vector';
import { PEER_MAC, PORT_MACS, PORT_NAMES, eth, inetChecksum, ipv4, ipv6, udp } from './fp-helpers';
import { CBC_B, GCM_B, LOCAL, PEER, espSeal, lan, objects, wan } from './fp-esp2.test';

function frames(): { port: number; frame: Uint8Array }[] {
  const out: { port: number; frame: Uint8Array }[] = [];
  for (let i = 1; i <= 200; i++) {
    out.push({ port: 0, frame: lan('10.0.1.5', `10.99.${i}.1`, { sport: 1000 + i, len: 64 + i }) }); // 4 in 4 GCM
    out.push({ port: 0, frame: lan('2001:db8:1::5', '2001:db8:98::2', { sport: i, len: 300 }) }); // 6 in 6 CBC
    out.push({ port: 0, frame: lan('10.0.1.5', '10.98.1.2', { sport: i }) }); // 4 in 6
    out.push({ port: 0, frame: lan('10.0.1.5', '10.97.1.1', { sport: i }) }); // NAT-T
    out.push({ port: 0, frame: lan('10.0.1.5', '192.168.50.7', { sport: i }) }); // transport
    const inner4 = ipv4({ src: '10.99.5.5', dst: '10.0.1.5', ttl: 30, payload: udp(4000, 5000, [i & 255, 1, 2, 3]) });
    const inner6 = ipv6({ src: '2001:db8:98::5', dst: '2001:db8:1::5', hl: 30, payload: udp(4000, 5000, [i & 255]) });
    out.push({ port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 2 * i, inner4, 4)) });
    out.push({ port: 1, frame: wan('2001:db8:100::1', '2001:db8:1::fe', espSeal(CBC_B, 0x2002, i, inner6, 41)) });
    if (i % 10 === 0) {
      out.push({ port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 2 * i, inner4, 4)) }); // replay
      out.push({ port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 5000 + i, inner4, 4, 20)) }); // bad ICV
      out.push({ port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x7777, i, inner4, 4)) }); // bad SPI
      out.push({ port: 1, frame: eth(PORT_MACS[1], PEER_MAC, 0x0800, inner4) }); // clear text, fwd policy -> drop
      out.push({ port: 0, frame: lan('10.0.1.5', '10.96.1.1', { len: 1240 }) }); // fragmented after encryption
      out.push({ port: 0, frame: lan('10.0.1.5', '10.94.2.1') }); // block
      out.push({ port: 0, frame: lan('10.0.1.5', '192.168.50.9') }); // no SA -> exception
      out.push({ port: 0, frame: lan('10.0.1.5', '10.95.1.1', { len: 1230 }) }); // IPv6 ESP cut by ipv6-fragment
      // an ESP packet to this box in two fragments (reassembled before decryption)
      const big = ipv4({ src: '10.99.5.5', dst: '10.0.1.5', ttl: 30, payload: udp(4000, 5000, new Array(1000).fill(i & 255)) });
      const esp = ipv4({ src: PEER, dst: LOCAL, proto: 50, id: i, payload: espSeal(GCM_B, 0x2001, 2 * i + 1, big, 4) });
      for (const [at, size, mf] of [[0, 600, 1], [600, esp.length - 20 - 600, 0]]) {
        const h = esp.slice(0, 20), tot = 20 + size, fw = (mf ? 0x2000 : 0) | (at >> 3);
        h[2] = tot >> 8; h[3] = tot & 255; h[6] = fw >> 8; h[7] = fw & 255; h[10] = 0; h[11] = 0;
        const c = inetChecksum(h); h[10] = c >> 8; h[11] = c & 255;
        out.push({ port: 1, frame: eth(PORT_MACS[1], PEER_MAC, 0x0800, [...h, ...esp.slice(20 + at, 20 + at + size)]) });
      }
    }
  }
  return out;
}

function main(): void {
  const packets = Number(process.argv[2] ?? 1_000_000);
  const fragment = (process.argv[3] ?? 'after-encrypt') as 'after-encrypt' | 'before-encrypt';
  const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
  const w = ShmWriter.create(sab, SMALL_CONFIG);
  for (const o of objects()) w.upsert(o);
  w.setPorts(PORT_NAMES);
  const io = new MemIo({ buffers: 4096, ports: 4, capture: false });
  const g = new Graph({ io, shm: ShmReader.attach(sab), ports: 4, ipsec: true, ipsecFragment: fragment });
  const ips = g.ipsec!;
  g.heartbeat(); // the reassembly clock reads the heartbeat field (Date.now() would allocate)
  const rings = (ips as unknown as { rings: (Uint32Array | null)[] }).rings;
  const fr = frames();
  const ports = fr.map(({ port }) => port), data = fr.map(({ frame }) => frame);
  const v = new Vector();
  let k = 0;
  const resetReplay = (): void => { // every pass over the data: the inbound SNs are new again
    for (let i = 0; i < ips.maxSas; i++) { ips.topLo[i] = 0; ips.topHi[i] = 0; const r = rings[i]; if (r !== null) r.fill(0); }
  };
  const run = (n: number): void => {
    for (let done = 0; done < n;) {
      // a vector never spans two passes over the data (the replay windows are reset between passes)
      const room = Math.min(VEC, data.length - (k % data.length));
      if (k % data.length === 0) resetReplay();
      const got = io.alloc(v.mbuf, v.off, room);
      for (let i = 0; i < got; i++) {
        const j = k++ % data.length;
        io.mem.set(data[j], v.off[i]);
        v.len[i] = data[j].length;
        v.port[i] = ports[j];
      }
      v.n = got;
      g.process(v);
      done += got;
    }
  };
  const gcs: { start: number; kind: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, kind: (e as unknown as { detail: { kind: number } }).detail.kind });
  });
  obs.observe({ entryTypes: ['gc'] });
  run(100_000);
  const t0 = performance.now();
  run(packets);
  const t1 = performance.now();
  g.heartbeat(Date.now() + 10000); // time out what is left in the reassembly table
  setTimeout(() => {
    obs.disconnect();
    let tx = 0, exc = 0, drops = 0;
    for (let p = 0; p < 4; p++) {
      const s = g.portStats(p);
      tx += s.txPackets;
      exc += Object.values(s.exceptions).reduce((a, b) => a + b, 0);
      drops += Object.values(s.drops).reduce((a, b) => a + b, 0);
    }
    let enc = 0;
    for (let i = 0; i < ips.maxSas; i++) enc += ips.saCounters[i * 8 + 1];
    const scavenges = gcs.filter((x) => x.start >= t0 && x.start <= t1 && x.kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
    if (process.env.DBG) for (let p = 0; p < 4; p++) console.log(p, JSON.stringify(Object.fromEntries(Object.entries(g.portStats(p).drops).filter((x) => x[1] > 0))), JSON.stringify(Object.fromEntries(Object.entries(g.portStats(p).exceptions).filter((x) => x[1] > 0))));
    console.log(JSON.stringify({ scavenges, tx, exc, drops, esp: enc, inFlight: io.inFlight(), pps: Math.round(packets / ((t1 - t0) / 1000)) }));
    g.close();
  }, 200);
}

main();
