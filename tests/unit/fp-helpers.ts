// Helpers of the fast-path tests: frames crafted byte by byte, a shared-memory world (links that are
// fast-path ports, routes, neighbours), a graph on the in-memory I/O.

import * as assert from 'assert';
import type { AnyObject, Neighbour, Route } from '../../lib/model';
import { computeLayout, type ShmConfig } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6 } from '../../shared-mem/test-fixtures';
import { parse4, parse6 } from '../../shared-mem/addr';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { Vector } from '../../fastpath/vector';

// ------------------------------------------------------------------------------------------------
// Bytes

export function mac(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

export function ip4(s: string): number[] {
  const v = parse4(s);
  assert.ok(v >= 0, s);
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

export function ip6(s: string): number[] {
  const w = new Uint32Array(4);
  assert.ok(parse6(s, w, 0), s);
  const out: number[] = [];
  for (const x of w) out.push(x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
  return out;
}

export function u16(v: number): number[] { return [(v >>> 8) & 255, v & 255]; }

/** One's complement checksum over bytes (even or odd length). */
export function inetChecksum(b: ArrayLike<number>, from = 0, to = b.length): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i] << 8) | (i + 1 < to ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export const PORT_MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04'];
export const PEER_MAC = '02:ee:ee:ee:ee:01';

export function eth(dst: string, src: string, type: number, payload: number[]): Uint8Array {
  return Uint8Array.from([...mac(dst), ...mac(src), ...u16(type), ...payload]);
}

export interface Ip4Opts {
  src?: string; dst: string; ttl?: number; proto?: number; id?: number; df?: boolean; mf?: boolean; fragOff?: number;
  tos?: number; options?: number[]; payload?: number[]; totalLength?: number; badChecksum?: boolean; version?: number; ihl?: number;
}

export function ipv4(o: Ip4Opts): number[] {
  const opts = o.options ?? [];
  assert.strictEqual(opts.length % 4, 0);
  const payload = o.payload ?? [];
  const hl = 20 + opts.length;
  const h = [
    ((o.version ?? 4) << 4) | (o.ihl ?? hl / 4), o.tos ?? 0, ...u16(o.totalLength ?? hl + payload.length), ...u16(o.id ?? 0x1234),
    ...u16((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | (o.fragOff ?? 0)), o.ttl ?? 64, o.proto ?? 17, 0, 0,
    ...ip4(o.src ?? '10.0.1.5'), ...ip4(o.dst), ...opts,
  ];
  const c = inetChecksum(h);
  h[10] = c >>> 8; h[11] = c & 255;
  if (o.badChecksum) h[11] ^= 0x5a;
  return [...h, ...payload];
}

export function udp(sport: number, dport: number, data: number[] = []): number[] {
  return [...u16(sport), ...u16(dport), ...u16(8 + data.length), 0, 0, ...data];
}

export interface Ip6Opts { src?: string; dst: string; hl?: number; nh?: number; payload?: number[]; payloadLength?: number; tc?: number; flow?: number }

export function ipv6(o: Ip6Opts): number[] {
  const payload = o.payload ?? [];
  const tc = o.tc ?? 0, fl = o.flow ?? 0;
  return [
    0x60 | (tc >>> 4), ((tc & 15) << 4) | ((fl >>> 16) & 15), (fl >>> 8) & 255, fl & 255,
    ...u16(o.payloadLength ?? payload.length), o.nh ?? 17, o.hl ?? 64, ...ip6(o.src ?? '2001:db8:1::5'), ...ip6(o.dst), ...payload,
  ];
}

/** An IPv4/UDP frame from the peer to port `port`'s MAC. */
export function udp4Frame(port: number, dst: string, extra: Partial<Ip4Opts> = {}, sport = 1000, dport = 2000, data: number[] = [1, 2, 3, 4]): Uint8Array {
  return eth(PORT_MACS[port], PEER_MAC, 0x0800, ipv4({ dst, payload: udp(sport, dport, data), ...extra }));
}

export function udp6Frame(port: number, dst: string, extra: Partial<Ip6Opts> = {}, sport = 1000, dport = 2000, data: number[] = [1, 2, 3, 4]): Uint8Array {
  return eth(PORT_MACS[port], PEER_MAC, 0x86dd, ipv6({ dst, payload: udp(sport, dport, data), ...extra }));
}

export function hex(b: ArrayLike<number>): string {
  return Buffer.from(Array.from(b)).toString('hex');
}

/** Asserts the IPv4 header of an Ethernet frame has a valid checksum (and equals a recomputed one). */
export function assertIpv4Checksum(f: Uint8Array): void {
  const hl = (f[14] & 15) * 4;
  const h = Array.from(f.subarray(14, 14 + hl));
  const stored = (h[10] << 8) | h[11];
  h[10] = 0; h[11] = 0;
  assert.strictEqual(stored, inetChecksum(h), 'IPv4 header checksum');
}

// ------------------------------------------------------------------------------------------------
// World

export const NUD_REACHABLE = 0x02, NUD_STALE = 0x04, NUD_FAILED = 0x20, NUD_PERMANENT = 0x80, NUD_INCOMPLETE = 0x01;

function link(ifindex: number, name: string, macS: string, mtu: number, adminUp = true, vrf = 0): AnyObject {
  return { kind: 'link', obj: { vrf, ifindex, name, kind: '', mac: macS, mtu, flags: 0x1003, adminUp, operUp: adminUp, master: 0, link: 0, port: -1 } };
}

function dev(ifindex: number): Route['nexthops'] { return [{ ifindex, weight: 1, flags: 0 }]; }

export function neigh(ifindex: number, addr: string, lladdr: string | undefined, state: number, vrf = 0): AnyObject {
  const n: Neighbour = { vrf, ifindex, family: addr.includes(':') ? 6 : 4, addr, state, flags: 0 };
  if (lladdr !== undefined) n.lladdr = lladdr;
  return { kind: 'neighbour', obj: n };
}

export const GW1 = '02:aa:00:00:00:11'; // 10.0.1.1 on eth0
export const GW2 = '02:aa:00:00:00:21'; // 10.0.2.1 on eth1
export const HOST5 = '02:aa:00:00:00:15'; // 10.0.1.5 on eth0
export const GW3 = '02:aa:00:00:00:31'; // 10.0.3.1 on eth2
export const GW6 = '02:aa:00:00:06:21'; // 2001:db8:2::1 on eth1
export const GW6B = '02:aa:00:00:06:11'; // 2001:db8:1::1 on eth0
export const HOST6 = '02:aa:00:00:06:15'; // 2001:db8:1::5 on eth0

/**
 * Ports: 0 eth0 (ifindex 2, 10.0.1.0/24, 2001:db8:1::/64), 1 eth1 (3, 10.0.2.0/24, 2001:db8:2::/64),
 * 2 eth2 (4, MTU 1280, 10.0.3.0/24, 2001:db8:3::/64), 3 eth3 (6, admin down); ifindex 5 veth9 is
 * Linux-only (not a port). Everything in VRF 0 (the writer's setPorts maps VRF 0 links to ports).
 */
export function worldObjects(): AnyObject[] {
  const r = (x: Route): AnyObject => ({ kind: 'route', obj: x });
  return [
    link(1, 'lo', '00:00:00:00:00:00', 65536),
    link(2, 'eth0', PORT_MACS[0], 1500),
    link(3, 'eth1', PORT_MACS[1], 1500),
    link(4, 'eth2', PORT_MACS[2], 1280),
    link(5, 'veth9', '02:00:00:00:00:99', 1500),
    link(6, 'eth3', PORT_MACS[3], 1500, false),
    r(route4('10.0.1.0', 24, undefined, { nexthops: dev(2), scope: 253, protocol: 2 })),
    r(route4('10.0.2.0', 24, undefined, { nexthops: dev(3), scope: 253, protocol: 2 })),
    r(route4('10.0.3.0', 24, undefined, { nexthops: dev(4), scope: 253, protocol: 2 })),
    r(route4('203.0.120.0', 24, undefined, { nexthops: dev(4), scope: 253, protocol: 2 })), // connected, addresses >= 2^31
    r(route4('192.168.0.0', 16, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] })),
    r(route4('172.16.0.0', 12, undefined, { nexthops: [{ gw: '10.0.1.1', ifindex: 2, weight: 1, flags: 0 }, { gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] })),
    r({ ...route4('198.51.100.0', 24, undefined, { type: 'blackhole' }), nexthops: [] }),
    r({ ...route4('203.0.113.0', 24, undefined, { type: 'unreachable' }), nexthops: [] }),
    r({ ...route4('203.0.114.0', 24, undefined, { type: 'prohibit' }), nexthops: [] }),
    r(route4('100.64.0.0', 16, '10.0.2.99', { nexthops: [{ gw: '10.0.2.99', ifindex: 3, weight: 1, flags: 0 }] })), // no neighbour
    r(route4('100.65.0.0', 16, '10.0.1.6', { nexthops: [{ gw: '10.0.1.6', ifindex: 2, weight: 1, flags: 0 }] })), // FAILED neighbour
    r(route4('100.128.0.0', 16, '10.0.5.1', { nexthops: [{ gw: '10.0.5.1', ifindex: 5, weight: 1, flags: 0 }] })), // not a port
    r(route4('100.129.0.0', 16, '10.0.6.1', { nexthops: [{ gw: '10.0.6.1', ifindex: 6, weight: 1, flags: 0 }] })), // down
    r(route4('198.18.0.0', 15, '10.0.3.1', { nexthops: [{ gw: '10.0.3.1', ifindex: 4, weight: 1, flags: 0 }] })), // MTU 1280
    r(route4('198.20.0.0', 16, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }], mtu: 1400 })), // route MTU
    r(route4('198.21.0.0', 16, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }], mtu: 24 })), // MTU too small to fragment
    r(route4('100.66.0.0', 16, undefined, { nexthops: [{ gw: 'fe80::1', ifindex: 3, weight: 1, flags: 0 }] })), // RFC 5549
    r(route4('10.0.1.254', 32, undefined, { table: 255, type: 'local', scope: 254, protocol: 2, nexthops: dev(2) })),
    r(route4('10.0.1.255', 32, undefined, { table: 255, type: 'broadcast', scope: 253, protocol: 2, nexthops: dev(2) })),
    r(route6('2001:db8:1::', 64, undefined, { nexthops: dev(2), priority: 256 })),
    r(route6('2001:db8:2::', 64, undefined, { nexthops: dev(3), priority: 256 })),
    r(route6('2001:db8:3::', 64, undefined, { nexthops: dev(4), priority: 256 })),
    r(route6('2001:db8:100::', 48, '2001:db8:2::1', { nexthops: [{ gw: '2001:db8:2::1', ifindex: 3, weight: 1, flags: 0 }] })),
    r(route6('2001:db8:200::', 48, undefined, { nexthops: [{ gw: '2001:db8:1::1', ifindex: 2, weight: 1, flags: 0 }, { gw: '2001:db8:2::1', ifindex: 3, weight: 1, flags: 0 }] })),
    r(route6('2001:db8:300::', 48, '2001:db8:3::1', { nexthops: [{ gw: '2001:db8:3::1', ifindex: 4, weight: 1, flags: 0 }] })),
    r(route6('2001:db8:400::', 48, '2001:db8:2::99', { nexthops: [{ gw: '2001:db8:2::99', ifindex: 3, weight: 1, flags: 0 }] })), // no neighbour
    r({ ...route6('2001:db8:dead::', 48, undefined, { type: 'blackhole' }), nexthops: [] }),
    r({ ...route6('2001:db8:beef::', 48, undefined, { type: 'unreachable' }), nexthops: [] }),
    r(route6('2001:db8:1::fe', 128, undefined, { table: 255, type: 'local', nexthops: dev(2) })),
    neigh(3, '10.0.2.1', GW2, NUD_REACHABLE),
    neigh(2, '10.0.1.1', GW1, NUD_STALE),
    neigh(2, '10.0.1.5', HOST5, NUD_REACHABLE),
    neigh(2, '10.0.1.6', '02:aa:00:00:00:16', NUD_FAILED),
    neigh(2, '10.0.1.7', undefined, NUD_INCOMPLETE),
    neigh(4, '10.0.3.1', GW3, NUD_PERMANENT),
    neigh(4, '10.0.3.5', '02:aa:00:00:00:35', NUD_REACHABLE),
    neigh(4, '203.0.120.5', '02:aa:00:00:00:85', NUD_REACHABLE),
    neigh(5, '10.0.5.1', '02:aa:00:00:00:51', NUD_REACHABLE),
    neigh(6, '10.0.6.1', '02:aa:00:00:00:61', NUD_REACHABLE),
    neigh(3, 'fe80::1', '02:aa:00:00:fe:01', NUD_REACHABLE),
    neigh(3, '2001:db8:2::1', GW6, NUD_REACHABLE),
    neigh(2, '2001:db8:1::1', GW6B, NUD_REACHABLE),
    neigh(2, '2001:db8:1::5', HOST6, NUD_STALE),
    neigh(4, '2001:db8:3::1', '02:aa:00:00:06:31', NUD_REACHABLE),
  ];
}

export const PORT_NAMES = ['eth0', 'eth1', 'eth2', 'eth3'];

export interface World {
  sab: SharedArrayBuffer;
  w: ShmWriter;
  r: ShmReader;
  io: MemIo;
  g: Graph;
  v: Vector;
  /** Runs frames (received on their ports) through the graph as one or more vectors. */
  run(frames: { port: number; frame: Uint8Array }[]): void;
  /** Runs one frame received on `port`. */
  one(port: number, frame: Uint8Array): void;
}

export function makeWorld(opts: { cfg?: Partial<ShmConfig>; objects?: AnyObject[]; io?: MemIo } = {}): World {
  const cfg = opts.cfg ?? SMALL_CONFIG;
  const sab = new SharedArrayBuffer(computeLayout(cfg).totalSize);
  const w = ShmWriter.create(sab, cfg);
  for (const o of opts.objects ?? worldObjects()) w.upsert(o);
  w.setPorts(PORT_NAMES);
  const r = ShmReader.attach(sab);
  const io = opts.io ?? new MemIo({ buffers: 4096, ports: 4 });
  const g = new Graph({ io, shm: r, ports: 4 });
  const v = new Vector();
  const run = (frames: { port: number; frame: Uint8Array }[]): void => {
    for (const f of frames) {
      if (v.n === 256) g.process(v);
      assert.ok(io.inject(v, f.port, f.frame), 'pool exhausted');
    }
    if (v.n > 0) g.process(v);
  };
  return { sab, w, r, io, g, v, run, one: (port, frame) => run([{ port, frame }]) };
}

/** xorshift32 */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return n === 0x100000000 ? s : s % n;
  };
}
