// IPsec ESP in the fast path, part 2 (issue 4): clear-text policy drops, per-SA counters in the stats file,
// sequence numbers across restarts, tunnel mode with every inner/outer family combination, transport mode,
// NAT-T (RFC 3948), selectors (priorities, ports, protocol, mark, if_id, VRF) and both fragmentation modes.
// Every ESP packet the graph sends is opened here with node:crypto by an independent decoder, and every ESP
// packet fed to it is built here with node:crypto.

import * as assert from 'assert';
import * as fs from 'fs';
import * as nodeCrypto from 'crypto';
import type { AnyObject, XfrmPolicy, XfrmSa, XfrmSelector, XfrmTemplate } from '../../lib/model';
import { computeLayout } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6 } from '../../shared-mem/test-fixtures';
import { SA_C_TAG, SA_STRIDE, StatsFile, statsLayout, type PortStats, type WorkerSlice } from '../../shared-mem/stats';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { Vector } from '../../fastpath/vector';
import * as nativeCrypto from '../../native/crypto';
import { ConfigError, parseConfig } from '../../lib/config';
import { available as nativeAvailable } from '../../native';
import {
  HOST5, HOST6, PEER_MAC, PORT_MACS, PORT_NAMES, assertIpv4Checksum, eth, hex, inetChecksum, ip4, ip6, ipv4, ipv6, mac, rng, udp,
  worldObjects,
} from './fp-helpers';

// ------------------------------------------------------------------------------------------------
// Keys and an independent ESP codec (node:crypto)

export interface Keys { alg: 'gcm' | 'cbc'; key: string; auth?: string }
export const GCM_A: Keys = { alg: 'gcm', key: '000102030405060708090a0b0c0d0e0f' + 'cafebabe' };
export const CBC_A: Keys = { alg: 'cbc', key: '101112131415161718191a1b1c1d1e1f', auth: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f' };
export const GCM_B: Keys = { alg: 'gcm', key: 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + 'deadbeef' };
export const CBC_B: Keys = { alg: 'cbc', key: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf', auth: 'c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf' };

const u32b = (x: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(x >>> 0); return b; };

/** Opens an ESP packet (SPI .. ICV): checks the ICV and the padding; returns the payload and next header. */
function espOpen(esp: Uint8Array, k: Keys, esnHi?: number): { spi: number; sn: number; payload: Buffer; nh: number } {
  const b = Buffer.from(esp);
  const spi = b.readUInt32BE(0), sn = b.readUInt32BE(4);
  let plain: Buffer;
  if (k.alg === 'gcm') {
    const iv = b.subarray(8, 16), ct = b.subarray(16, b.length - 16), tag = b.subarray(b.length - 16);
    const d = nodeCrypto.createDecipheriv('aes-128-gcm', Buffer.from(k.key.slice(0, 32), 'hex'), Buffer.concat([Buffer.from(k.key.slice(32), 'hex'), iv]));
    d.setAAD(esnHi === undefined ? b.subarray(0, 8) : Buffer.concat([b.subarray(0, 4), u32b(esnHi), b.subarray(4, 8)]));
    d.setAuthTag(tag);
    plain = Buffer.concat([d.update(ct), d.final()]);
  } else {
    const icv = b.subarray(b.length - 16);
    const hm = nodeCrypto.createHmac('sha256', Buffer.from(k.auth as string, 'hex')).update(b.subarray(0, b.length - 16));
    if (esnHi !== undefined) hm.update(u32b(esnHi));
    const want = hm.digest().subarray(0, 16);
    assert.strictEqual(hex(icv), hex(want), 'HMAC-SHA-256-128');
    const iv = b.subarray(8, 24), ct = b.subarray(24, b.length - 16);
    assert.strictEqual(ct.length % 16, 0, 'CBC: whole blocks');
    const d = nodeCrypto.createDecipheriv('aes-128-cbc', Buffer.from(k.key, 'hex'), iv);
    d.setAutoPadding(false);
    plain = Buffer.concat([d.update(ct), d.final()]);
  }
  const padLen = plain[plain.length - 2], nh = plain[plain.length - 1];
  for (let j = 0; j < padLen; j++) assert.strictEqual(plain[plain.length - 2 - padLen + j], j + 1, 'RFC 4303 padding 1, 2, 3...');
  return { spi, sn, payload: plain.subarray(0, plain.length - 2 - padLen), nh };
}

/** Builds an ESP packet with node:crypto. */
export function espSeal(k: Keys, spi: number, sn: number, payload: ArrayLike<number>, nh: number, flip?: number, esnHi?: number): number[] {
  const bs = k.alg === 'gcm' ? 4 : 16;
  const padLen = (bs - ((payload.length + 2) % bs)) % bs;
  const pt = Buffer.from([...Array.from(payload), ...Array.from({ length: padLen }, (_, j) => j + 1), padLen, nh]);
  const hdr = Buffer.concat([u32b(spi), u32b(sn)]);
  let esp: Buffer;
  if (k.alg === 'gcm') {
    const iv = nodeCrypto.randomBytes(8);
    const c = nodeCrypto.createCipheriv('aes-128-gcm', Buffer.from(k.key.slice(0, 32), 'hex'), Buffer.concat([Buffer.from(k.key.slice(32), 'hex'), iv]));
    c.setAAD(esnHi === undefined ? hdr : Buffer.concat([u32b(spi), u32b(esnHi), u32b(sn)]));
    const ct = Buffer.concat([c.update(pt), c.final()]);
    esp = Buffer.concat([hdr, iv, ct, c.getAuthTag()]);
  } else {
    const iv = nodeCrypto.randomBytes(16);
    const c = nodeCrypto.createCipheriv('aes-128-cbc', Buffer.from(k.key, 'hex'), iv);
    c.setAutoPadding(false);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    const hm = nodeCrypto.createHmac('sha256', Buffer.from(k.auth as string, 'hex')).update(Buffer.concat([hdr, iv, ct]));
    if (esnHi !== undefined) hm.update(u32b(esnHi));
    esp = Buffer.concat([hdr, iv, ct, hm.digest().subarray(0, 16)]);
  }
  if (flip !== undefined) esp[flip] ^= 1;
  return Array.from(esp);
}

interface Parsed {
  fam: 4 | 6; tc: number; df: boolean; ttl: number; flow: number; src: string; dst: string; proto: number; id: number;
  mf: boolean; fragOff: number; udp?: { sport: number; dport: number; len: number; csum: number }; l4: Uint8Array; ip: Uint8Array;
}

/** Parses an Ethernet frame's IP header (IPv4 or IPv6 without extension headers) and a UDP header when proto 17. */
function parse(f: Uint8Array): Parsed {
  const et = (f[12] << 8) | f[13];
  const o = 14;
  let p: Parsed;
  if (et === 0x0800) {
    assert.strictEqual(f[o] >>> 4, 4, 'ethertype IPv4 with an IPv4 header');
    const hl = (f[o] & 15) * 4, tot = (f[o + 2] << 8) | f[o + 3];
    assertIpv4Checksum(f);
    assert.strictEqual(f.length, 14 + tot, 'frame length = 14 + total length');
    const fw = (f[o + 6] << 8) | f[o + 7];
    p = { fam: 4, tc: f[o + 1], df: (fw & 0x4000) !== 0, mf: (fw & 0x2000) !== 0, fragOff: (fw & 0x1fff) * 8, ttl: f[o + 8], flow: 0,
      src: hex(f.subarray(o + 12, o + 16)), dst: hex(f.subarray(o + 16, o + 20)), proto: f[o + 9], id: (f[o + 4] << 8) | f[o + 5],
      l4: f.subarray(o + hl, o + tot), ip: f.subarray(o, o + tot) };
  } else {
    assert.strictEqual(et, 0x86dd, 'ethertype');
    assert.strictEqual(f[o] >>> 4, 6);
    const plen = (f[o + 4] << 8) | f[o + 5];
    assert.strictEqual(f.length, 14 + 40 + plen, 'frame length = 54 + payload length');
    p = { fam: 6, tc: ((f[o] & 15) << 4) | (f[o + 1] >>> 4), df: false, mf: false, fragOff: 0, ttl: f[o + 7],
      flow: ((f[o + 1] & 15) << 16) | (f[o + 2] << 8) | f[o + 3], src: hex(f.subarray(o + 8, o + 24)), dst: hex(f.subarray(o + 24, o + 40)),
      proto: f[o + 6], id: 0, l4: f.subarray(o + 40, o + 40 + plen), ip: f.subarray(o, o + 40 + plen) };
  }
  if (p.proto === 17 && p.fragOff === 0 && !p.mf) {
    const u = p.l4;
    p.udp = { sport: (u[0] << 8) | u[1], dport: (u[2] << 8) | u[3], len: (u[4] << 8) | u[5], csum: (u[6] << 8) | u[7] };
    assert.strictEqual(p.udp.len, u.length, 'UDP length');
  }
  return p;
}

const A = (s: string): string => hex(s.includes(':') ? ip6(s) : ip4(s));

/** The ESP bytes of a parsed packet (after the UDP header for NAT-T). */
function espOf(p: Parsed): Uint8Array { return p.udp ? p.l4.subarray(8) : p.l4; }

// ------------------------------------------------------------------------------------------------
// Kernel objects

export const LOCAL = '10.0.1.254', LOCAL6 = '2001:db8:1::fe';
export const PEER = '192.168.100.1', PEER6 = '2001:db8:100::1', NATPEER = '192.168.200.1', FARPEER = '198.18.0.1', FARPEER6 = '2001:db8:300::1';
const INF = '18446744073709551615';

function fam(a: string): 4 | 6 { return a.includes(':') ? 6 : 4; }

function sel(saddr: string, splen: number, daddr: string, dplen: number, extra: Partial<XfrmSelector> = {}): XfrmSelector {
  return { family: fam(daddr), saddr, daddr, splen, dplen, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0, ...extra };
}

function keysOf(k: Keys): Partial<XfrmSa> {
  return k.alg === 'gcm' ? { aead: { name: 'rfc4106(gcm(aes))', key: k.key, icvBits: 128 } }
    : { enc: { name: 'cbc(aes)', key: k.key }, auth: { name: 'hmac(sha256)', key: k.auth as string, truncBits: 128 } };
}

function sa(saddr: string, daddr: string, spi: number, reqid: number, k: Keys, extra: Partial<XfrmSa> = {}): AnyObject {
  const s: XfrmSa = {
    vrf: 0, daddr, saddr, spi, proto: 50, family: fam(daddr), mode: 'tunnel', reqid, flags: 0, replayWindow: 64, esn: false,
    selector: sel(fam(daddr) === 4 ? '0.0.0.0' : '::', 0, fam(daddr) === 4 ? '0.0.0.0' : '::', 0), ifId: 0,
    lifetime: { softBytes: INF, hardBytes: INF, softPackets: INF, hardPackets: INF, softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
    ...keysOf(k), ...extra,
  };
  return { kind: 'sa', obj: s };
}

function tmpl(tsaddr: string, tdaddr: string, reqid: number, extra: Partial<XfrmTemplate> = {}): XfrmTemplate {
  return { family: fam(tdaddr), daddr: tdaddr, saddr: tsaddr, spi: 0, proto: 50, mode: 'tunnel', reqid, optional: false, share: 0,
    aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff, ...extra };
}

let polIndex = 1;
function pol(dir: 'in' | 'out' | 'fwd', selector: XfrmSelector, tmpls: XfrmTemplate[], extra: Partial<XfrmPolicy> = {}): AnyObject {
  const p: XfrmPolicy = { vrf: 0, index: (polIndex += 8), dir, priority: 1000, action: 'allow', flags: 0, selector, ifId: 0, tmpls, ...extra };
  return { kind: 'policy', obj: p };
}

const via4 = (dst: string, plen: number): AnyObject => ({ kind: 'route', obj: route4(dst, plen, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] }) });
const via6 = (dst: string, plen: number): AnyObject => ({ kind: 'route', obj: route6(dst, plen, '2001:db8:2::1', { nexthops: [{ gw: '2001:db8:2::1', ifindex: 3, weight: 1, flags: 0 }] }) });

const NET4 = '10.0.1.0', NET6 = '2001:db8:1::';

export function objects(): AnyObject[] {
  const o: AnyObject[] = [...worldObjects()];
  for (const n of ['10.99.0.0', '10.98.0.0', '10.97.0.0', '10.96.0.0', '10.95.0.0', '10.94.0.0', '10.93.0.0', '10.92.0.0', '10.91.0.0', '10.90.0.0', '10.89.0.0']) o.push(via4(n, 16));
  for (const n of ['2001:db8:99::', '2001:db8:98::', '2001:db8:97::', '2001:db8:96::', '2001:db8:150::']) o.push(via6(n, 48));
  o.push(
    // ---- tunnel mode, every combination (out) ----
    pol('out', sel(NET4, 24, '10.99.0.0', 16), [tmpl(LOCAL, PEER, 1)]), sa(LOCAL, PEER, 0x1001, 1, GCM_A), // 4 in 4
    pol('out', sel(NET6, 64, '2001:db8:99::', 48), [tmpl(LOCAL, PEER, 2)]), sa(LOCAL, PEER, 0x1002, 2, CBC_A), // 6 in 4
    pol('out', sel(NET4, 24, '10.98.0.0', 16), [tmpl(LOCAL6, PEER6, 3)]), sa(LOCAL6, PEER6, 0x1003, 3, GCM_A), // 4 in 6
    pol('out', sel(NET6, 64, '2001:db8:98::', 48), [tmpl(LOCAL6, PEER6, 4)]), sa(LOCAL6, PEER6, 0x1004, 4, CBC_A), // 6 in 6
    // ---- tunnel mode (in): v4 outer reqid 11, v6 outer reqid 12 ----
    sa(PEER, LOCAL, 0x2001, 11, GCM_B), sa(PEER6, LOCAL6, 0x2002, 12, CBC_B),
    sa(PEER, LOCAL, 0x2005, 11, GCM_B, { esn: true, replayWindow: 128 }), sa(PEER, LOCAL, 0x2006, 11, CBC_B, { esn: true }),
    pol('in', sel('10.99.0.0', 16, NET4, 24), [tmpl(PEER, LOCAL, 11)]),
    pol('fwd', sel('10.99.0.0', 16, NET4, 24), [tmpl(PEER, LOCAL, 11)]),
    pol('in', sel('10.98.0.0', 16, NET4, 24), [tmpl(PEER6, LOCAL6, 12)]),
    pol('in', sel('2001:db8:99::', 48, NET6, 64), [tmpl(PEER, LOCAL, 11)]),
    pol('fwd', sel('2001:db8:99::', 48, NET6, 64), [tmpl(PEER, LOCAL, 11)]),
    pol('in', sel('2001:db8:98::', 48, NET6, 64), [tmpl(PEER6, LOCAL6, 12)]),
    // a fwd policy with an optional template (level use): clear text allowed
    pol('fwd', sel('10.97.0.0', 16, NET4, 24), [tmpl(NATPEER, LOCAL, 43, { optional: true })]),
    // ---- transport mode ----
    pol('out', sel(NET4, 24, '192.168.50.0', 24), [tmpl('10.0.1.5', '192.168.50.7', 21, { mode: 'transport' })]),
    sa('10.0.1.5', '192.168.50.7', 0x3001, 21, GCM_A, { mode: 'transport' }),
    sa('10.0.1.5', '192.168.50.8', 0x3002, 21, CBC_A, { mode: 'transport' }),
    pol('out', sel(NET6, 64, '2001:db8:150::', 48), [tmpl('2001:db8:1::5', '2001:db8:150::7', 22, { mode: 'transport' })]),
    sa('2001:db8:1::5', '2001:db8:150::7', 0x3003, 22, CBC_A, { mode: 'transport' }),
    sa(PEER, LOCAL, 0x4001, 31, GCM_B, { mode: 'transport' }),
    pol('in', sel(PEER, 32, LOCAL, 32), [tmpl(PEER, LOCAL, 31, { mode: 'transport' })]),
    sa(PEER6, LOCAL6, 0x4002, 32, CBC_B, { mode: 'transport' }),
    pol('in', sel(PEER6, 128, LOCAL6, 128), [tmpl(PEER6, LOCAL6, 32, { mode: 'transport' })]),
    // ---- NAT-T ----
    pol('out', sel(NET4, 24, '10.97.0.0', 16), [tmpl(LOCAL, NATPEER, 41)]),
    sa(LOCAL, NATPEER, 0x5001, 41, GCM_A, { encap: { type: 2, sport: 4500, dport: 4500 } }),
    pol('out', sel(NET6, 64, '2001:db8:97::', 48), [tmpl(LOCAL6, '2001:db8:100::2', 42)]),
    sa(LOCAL6, '2001:db8:100::2', 0x5002, 42, GCM_A, { encap: { type: 2, sport: 4500, dport: 4501 } }),
    sa(NATPEER, LOCAL, 0x6001, 43, GCM_B, { encap: { type: 2, sport: 4500, dport: 4500 } }),
    pol('in', sel('10.97.0.0', 16, NET4, 24), [tmpl(NATPEER, LOCAL, 43)]),
    // ---- fragmentation: outer path over eth2 (MTU 1280) ----
    pol('out', sel(NET4, 24, '10.96.0.0', 16), [tmpl(LOCAL, FARPEER, 51)]), sa(LOCAL, FARPEER, 0x7001, 51, GCM_A),
    pol('out', sel(NET6, 64, '2001:db8:96::', 48), [tmpl(LOCAL, FARPEER, 51)]),
    pol('out', sel(NET4, 24, '10.95.0.0', 16), [tmpl(LOCAL6, FARPEER6, 52)]), sa(LOCAL6, FARPEER6, 0x7002, 52, GCM_A),
    // ---- selectors ----
    pol('out', sel(NET4, 24, '10.94.0.0', 16), [], { action: 'block', priority: 100 }),
    pol('out', sel(NET4, 24, '10.94.1.0', 24), [tmpl(LOCAL, PEER, 1)], { priority: 50 }),
    pol('out', sel(NET4, 24, '10.94.2.0', 24, { proto: 6 }), [], { priority: 10 }),
    pol('out', sel(NET4, 24, '10.94.3.0', 24, { proto: 17, sport: 7000, sportMask: 0xffff }), [tmpl(LOCAL, PEER, 1)], { priority: 10 }),
    pol('out', sel(NET4, 24, '10.93.0.0', 16), [], { action: 'block', priority: 10, mark: { value: 5, mask: 0xff } }),
    pol('out', sel(NET4, 24, '10.93.0.0', 16), [tmpl(LOCAL, PEER, 1)], { priority: 20 }),
    pol('out', sel(NET4, 24, '10.92.0.0', 16), [], { action: 'block', mark: { value: 0, mask: 0xff } }),
    pol('out', sel(NET4, 24, '10.91.0.0', 16), [tmpl(LOCAL, PEER, 61)]), sa(LOCAL, PEER, 0x8001, 61, GCM_A, { mark: { value: 5, mask: 0xff } }),
    sa(PEER, LOCAL, 0x8002, 11, GCM_B, { mark: { value: 5, mask: 0xff } }),
    pol('out', sel(NET4, 24, '10.90.0.0', 16), [tmpl(LOCAL, PEER, 1)], { ifId: 7 }),
    pol('out', sel(NET4, 24, '10.89.0.0', 16), [], { action: 'block', vrf: 1 }),
    // ---- drops / exceptions by reason ----
    pol('out', sel(NET4, 24, '10.88.0.0', 16), [tmpl(LOCAL, '203.0.113.9', 71)]), sa(LOCAL, '203.0.113.9', 0x9001, 71, GCM_A), // unreachable outer
    pol('out', sel(NET4, 24, '10.87.0.0', 16), [tmpl(LOCAL, '100.64.0.9', 72)]), sa(LOCAL, '100.64.0.9', 0x9002, 72, GCM_A), // no neighbour
    pol('out', sel(NET4, 24, '10.86.0.0', 16), [tmpl(LOCAL, '192.168.100.2', 73)]), sa(LOCAL, '192.168.100.2', 0x9003, 73, GCM_A),
    pol('out', sel(NET4, 24, '10.85.0.0', 16), [tmpl(LOCAL, '192.168.100.3', 74)]), sa(LOCAL, '192.168.100.3', 0x9004, 74, CBC_A, { esn: true }),
  );
  for (const n of ['10.88.0.0', '10.87.0.0', '10.86.0.0', '10.85.0.0']) o.push(via4(n, 16));
  return o;
}

// ------------------------------------------------------------------------------------------------
// World

interface W { w: ShmWriter; r: ShmReader; io: MemIo; g: Graph; run(frames: { port: number; frame: Uint8Array }[]): void; one(port: number, frame: Uint8Array): void }

function world(opts: { objs?: AnyObject[]; stats?: WorkerSlice; fragment?: 'after-encrypt' | 'before-encrypt'; transportDecrypt?: boolean; localDecrypt?: boolean; sab?: SharedArrayBuffer } = {}): W {
  const sab = opts.sab ?? new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
  const w = opts.sab ? ShmWriter.attach(sab) : ShmWriter.create(sab, SMALL_CONFIG);
  if (!opts.sab) {
    for (const o of opts.objs ?? objects()) w.upsert(o);
    w.setPorts(PORT_NAMES);
  }
  const r = ShmReader.attach(sab);
  const io = new MemIo({ buffers: 4096, ports: 4 });
  const g = new Graph({ io, shm: r, ports: 4, ipsec: true, stats: opts.stats, ipsecFragment: opts.fragment, ipsecTransportDecrypt: opts.transportDecrypt, ipsecLocalDecrypt: opts.localDecrypt });
  const v = new Vector();
  const run = (frames: { port: number; frame: Uint8Array }[]): void => {
    for (const f of frames) {
      if (v.n === 256) g.process(v);
      assert.ok(io.inject(v, f.port, f.frame), 'pool exhausted');
    }
    if (v.n > 0) g.process(v);
  };
  return { w, r, io, g, run, one: (port, frame) => run([{ port, frame }]) };
}

function total(g: Graph, f: (p: PortStats) => number): number {
  let s = 0;
  for (let p = 0; p < 4; p++) s += f(g.portStats(p));
  return s;
}

function noLeaks(X: W): void {
  assert.strictEqual(X.io.inFlight(), 0, 'buffers leaked');
  assert.strictEqual(X.io.doubleFrees, 0);
  assert.strictEqual(X.io.badIndex, 0);
}

/** rx = tx + dpvi + drops (no fragmentation in the test). */
function balanced(X: W): void {
  const rx = total(X.g, (p) => p.rxPackets), tx = total(X.g, (p) => p.txPackets), dpvi = total(X.g, (p) => p.dpviPackets);
  const drops = total(X.g, (p) => Object.values(p.drops).reduce((a, b) => a + b, 0));
  assert.strictEqual(rx, tx + dpvi + drops, `rx ${rx} = tx ${tx} + dpvi ${dpvi} + drops ${drops}`);
}

function nz(o: Record<string, number>): Record<string, number> { return Object.fromEntries(Object.entries(o).filter(([, n]) => n > 0)); }
const drops = (X: W, port: number): Record<string, number> => nz(X.g.portStats(port).drops as Record<string, number>);
const excs = (X: W, port: number): Record<string, number> => nz(X.g.portStats(port).exceptions as Record<string, number>);

function saIndex(X: W, daddr: string, spi: number): number {
  const i = fam(daddr) === 4 ? X.r.saLookup(0, parseInt(hex(ip4(daddr)), 16) >>> 0, spi, 50)
    : X.r.saLookup(0, Uint32Array.from([0, 4, 8, 12].map((k) => parseInt(hex(ip6(daddr).slice(k, k + 4)), 16) >>> 0)), spi, 50);
  assert.ok(i >= 0, `SA ${spi.toString(16)} in shm`);
  return i;
}

/** A UDP packet (IPv4 or IPv6) from the LAN side (port 0). */
export function lan(src: string, dst: string, o: { sport?: number; dport?: number; len?: number; tos?: number; df?: boolean; proto?: number; flow?: number; ttl?: number } = {}): Uint8Array {
  const data = Array.from({ length: o.len ?? 20 }, (_, j) => (j * 7 + 3) & 255);
  const l4 = o.proto === 6 ? [...udp(o.sport ?? 1000, o.dport ?? 2000, data)] : udp(o.sport ?? 1000, o.dport ?? 2000, data);
  if (fam(dst) === 4) return eth(PORT_MACS[0], HOST5, 0x0800, ipv4({ src, dst, tos: o.tos, df: o.df, proto: o.proto ?? 17, ttl: o.ttl ?? 64, payload: l4 }));
  return eth(PORT_MACS[0], HOST6, 0x86dd, ipv6({ src, dst, tc: o.tos, flow: o.flow, nh: o.proto ?? 17, hl: o.ttl ?? 64, payload: l4 }));
}

/** An ESP (or ESP-in-UDP) packet from the WAN side (port 1). */
export function wan(src: string, dst: string, esp: number[], o: { tc?: number; udp?: [number, number] } = {}): Uint8Array {
  const payload = o.udp ? [...udp(o.udp[0], o.udp[1], esp)] : esp;
  const proto = o.udp ? 17 : 50;
  if (fam(dst) === 4) return eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src, dst, proto, tos: o.tc, payload }));
  return eth(PORT_MACS[1], PEER_MAC, 0x86dd, ipv6({ src, dst, nh: proto, tc: o.tc, payload }));
}

/** Asserts the inner packet equals the original IP packet of `frame`, TTL / hop limit one less. */
function sameInner(inner: Uint8Array, frame: Uint8Array, ttlDrop = 1): void {
  const ip = frame.subarray(14);
  assert.strictEqual(inner.length, ip.length, 'inner length');
  if ((ip[0] >>> 4) === 4) {
    assert.strictEqual(inner[8], ip[8] - ttlDrop, 'inner TTL');
    for (let j = 0; j < ip.length; j++) if (j !== 8 && j !== 10 && j !== 11) assert.strictEqual(inner[j], ip[j], `inner byte ${j}`);
    const h = Array.from(inner.subarray(0, 20)); h[10] = 0; h[11] = 0;
    assert.strictEqual((inner[10] << 8) | inner[11], inetChecksum(h), 'inner checksum');
  } else {
    assert.strictEqual(inner[7], ip[7] - ttlDrop, 'inner hop limit');
    for (let j = 0; j < ip.length; j++) if (j !== 7) assert.strictEqual(inner[j], ip[j], `inner byte ${j}`);
  }
}

// ------------------------------------------------------------------------------------------------

if (typeof describe === 'function') describe('config fastpath.ipsec / fastpath.ipsecFragment', () => {
  it('defaults: on, after-encrypt; reads both; refuses bad values with the key name', () => {
    const d = parseConfig('{}');
    assert.strictEqual(d.fastpath.ipsec, true);
    assert.strictEqual(d.fastpath.ipsecFragment, 'after-encrypt');
    const c = parseConfig('{"fastpath": {"ipsec": false, "ipsecFragment": "before-encrypt"}}');
    assert.strictEqual(c.fastpath.ipsec, false);
    assert.strictEqual(c.fastpath.ipsecFragment, 'before-encrypt');
    assert.throws(() => parseConfig('{"fastpath": {"ipsec": "yes"}}'), (e: Error) => e instanceof ConfigError && /fastpath\.ipsec/.test(e.message));
    assert.throws(() => parseConfig('{"fastpath": {"ipsecFragment": "never"}}'), (e: Error) => e instanceof ConfigError && /fastpath\.ipsecFragment/.test(e.message));
    assert.throws(() => new Graph({ io: new MemIo({ buffers: 8, ports: 1 }), shm: ShmReader.attach((() => { const b = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize); ShmWriter.create(b, SMALL_CONFIG); return b; })()),
      ports: 1, ipsec: true, ipsecFragment: 'sometimes' as never }), RangeError);
  });
});

if (typeof describe === 'function') describe('fast path IPsec ESP, part 2 (issue 4)', function () {
  before(function () { if (!nativeCrypto.available()) this.skip(); });
  let X: W;
  beforeEach(() => { X = world(); });
  afterEach(() => { noLeaks(X); X.g.close(); });

  describe('clear text and the decrypted mark', () => {
    it('clear text matching a fwd policy that requires ESP -> drop ipsec-clear-in (IPv4, IPv6); the same packet decrypted is forwarded', () => {
      const clear4 = eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src: '10.99.3.3', dst: '10.0.1.5', payload: udp(1, 2, [1, 2]) }));
      const clear6 = eth(PORT_MACS[1], PEER_MAC, 0x86dd, ipv6({ src: '2001:db8:99::3', dst: '2001:db8:1::5', payload: udp(1, 2, [1, 2]) }));
      X.run([{ port: 1, frame: clear4 }, { port: 1, frame: clear6 }]);
      assert.deepStrictEqual(drops(X, 1), { 'ipsec-clear-in': 2 });
      assert.strictEqual(X.io.sent[0].length, 0);
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 1, clear4.subarray(14), 4)));
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 2, clear6.subarray(14), 41)));
      assert.strictEqual(X.io.sent[0].length, 2, 'decrypted packets forwarded on eth0');
      sameInner(X.io.sent[0][0].subarray(14), clear4);
      sameInner(X.io.sent[0][1].subarray(14), clear6);
      assert.strictEqual(hex(X.io.sent[0][1].subarray(0, 6)), hex(mac(HOST6)));
      assert.deepStrictEqual(drops(X, 1), { 'ipsec-clear-in': 2 });
      X.io.clearCaptured();
      balanced(X);
    });

    it('an optional template (level use) lets clear text through; no fwd policy: clear text forwarded', () => {
      X.one(1, eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src: '10.97.3.3', dst: '10.0.1.5', payload: udp(1, 2, [1]) })));
      X.one(1, eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src: '10.55.3.3', dst: '10.0.1.5', payload: udp(1, 2, [1]) })));
      assert.strictEqual(X.io.sent[0].length, 2);
      X.io.clearCaptured();
      balanced(X);
    });
  });

  describe('tunnel mode: inner and outer IPv4 / IPv6', () => {
    const cases: { name: string; src: string; dst: string; spi: number; k: Keys; outer: [string, string] }[] = [
      { name: 'IPv4 in IPv4', src: '10.0.1.5', dst: '10.99.1.2', spi: 0x1001, k: GCM_A, outer: [LOCAL, PEER] },
      { name: 'IPv6 in IPv4', src: '2001:db8:1::5', dst: '2001:db8:99::2', spi: 0x1002, k: CBC_A, outer: [LOCAL, PEER] },
      { name: 'IPv4 in IPv6', src: '10.0.1.5', dst: '10.98.1.2', spi: 0x1003, k: GCM_A, outer: [LOCAL6, PEER6] },
      { name: 'IPv6 in IPv6', src: '2001:db8:1::5', dst: '2001:db8:98::2', spi: 0x1004, k: CBC_A, outer: [LOCAL6, PEER6] },
    ];
    for (const c of cases) {
      it(`out ${c.name}: outer header as Linux builds it (DSCP copied, CE -> ECT(0), DF copied, TTL 64, flow label), inner intact`, () => {
        const frames = [
          lan(c.src, c.dst, { tos: 0xb8 | 3, df: true, flow: 0x12345, len: 10 }), // EF + CE
          lan(c.src, c.dst, { tos: 0x28 | 1, len: 333 }), // AF11 + ECT(1)
        ];
        X.run(frames.map((frame) => ({ port: 0, frame })));
        assert.strictEqual(X.io.sent[1].length, 2, 'sent on eth1');
        X.io.sent[1].forEach((f, j) => {
          const p = parse(f);
          assert.strictEqual(p.fam, fam(c.outer[1]));
          assert.strictEqual(p.src, A(c.outer[0])); assert.strictEqual(p.dst, A(c.outer[1]));
          assert.strictEqual(p.proto, 50);
          assert.strictEqual(p.ttl, 64, 'TTL / hop limit 64');
          assert.strictEqual(p.tc, j === 0 ? 0xb8 | 2 : 0x28 | 1, 'DSCP copied, ECN: CE -> ECT(0), ECT(1) kept');
          if (p.fam === 4) assert.strictEqual(p.df, j === 0 && fam(c.dst) === 4, 'DF copied from an IPv4 inner header');
          else assert.strictEqual(p.flow, j === 0 && fam(c.dst) === 6 ? 0x12345 : 0, 'flow label copied from an IPv6 inner header');
          assert.strictEqual(hex(f.subarray(0, 6)), hex(mac(p.fam === 4 ? '02:aa:00:00:00:21' : '02:aa:00:00:06:21')), 'to the gateway');
          const e = espOpen(espOf(p), c.k);
          assert.strictEqual(e.spi, c.spi);
          assert.strictEqual(e.sn, j + 1);
          assert.strictEqual(e.nh, fam(c.dst) === 4 ? 4 : 41);
          sameInner(e.payload, frames[j]);
        });
        X.io.clearCaptured();
        const c2 = X.g.ipsec!.saCounters, b = saIndex(X, c.outer[1], c.spi) * SA_STRIDE;
        assert.strictEqual(c2[b + 1], 2, 'packets');
        assert.strictEqual(c2[b + 6], 2, 'oseq');
        balanced(X);
      });
    }

    const ins: { name: string; outer: [string, string]; spi: number; k: Keys; src: string; dst: string }[] = [
      { name: 'IPv4 in IPv4', outer: [PEER, LOCAL], spi: 0x2001, k: GCM_B, src: '10.99.5.5', dst: '10.0.1.5' },
      { name: 'IPv6 in IPv4', outer: [PEER, LOCAL], spi: 0x2001, k: GCM_B, src: '2001:db8:99::5', dst: '2001:db8:1::5' },
      { name: 'IPv4 in IPv6', outer: [PEER6, LOCAL6], spi: 0x2002, k: CBC_B, src: '10.98.5.5', dst: '10.0.1.5' },
      { name: 'IPv6 in IPv6', outer: [PEER6, LOCAL6], spi: 0x2002, k: CBC_B, src: '2001:db8:98::5', dst: '2001:db8:1::5' },
    ];
    for (const c of ins) {
      it(`in ${c.name}: decrypted, outer CE copied to an ECT inner packet, forwarded; wrong family / selector -> esp-policy`, () => {
        const inner = (tos: number): Uint8Array => (fam(c.dst) === 4
          ? Uint8Array.from(ipv4({ src: c.src, dst: c.dst, tos, ttl: 30, payload: udp(4000, 5000, [5, 6, 7]) }))
          : Uint8Array.from(ipv6({ src: c.src, dst: c.dst, tc: tos, hl: 30, payload: udp(4000, 5000, [5, 6, 7]) })));
        const nh = fam(c.dst) === 4 ? 4 : 41;
        X.one(1, wan(c.outer[0], c.outer[1], espSeal(c.k, c.spi, 1, inner(0x10 | 2), nh), { tc: 0x03 }));
        X.one(1, wan(c.outer[0], c.outer[1], espSeal(c.k, c.spi, 2, inner(0x10), nh), { tc: 0x03 }));
        assert.strictEqual(X.io.sent[0].length, 2);
        const p0 = parse(X.io.sent[0][0]), p1 = parse(X.io.sent[0][1]);
        assert.strictEqual(p0.tc, 0x10 | 3, 'ECT(0) inner + CE outer -> CE');
        assert.strictEqual(p1.tc, 0x10, 'not-ECT inner stays (Linux)');
        assert.strictEqual(p0.ttl, 29);
        assert.strictEqual(p0.src, A(c.src));
        assert.strictEqual(hex(p0.l4), hex(udp(4000, 5000, [5, 6, 7])));
        X.io.clearCaptured();
        // next header of the other family, and an inner source outside the policy
        X.one(1, wan(c.outer[0], c.outer[1], espSeal(c.k, c.spi, 3, inner(0), nh === 4 ? 41 : 4)));
        const bad = fam(c.dst) === 4 ? ipv4({ src: '10.55.1.1', dst: c.dst, payload: udp(1, 2, []) }) : ipv6({ src: '2001:db8:55::1', dst: c.dst, payload: udp(1, 2, []) });
        X.one(1, wan(c.outer[0], c.outer[1], espSeal(c.k, c.spi, 4, bad, nh)));
        assert.deepStrictEqual(drops(X, 1), { 'esp-policy': 2 });
        const cnt = X.g.ipsec!.saCounters, b = saIndex(X, c.outer[1], c.spi) * SA_STRIDE;
        assert.deepStrictEqual(Array.from(cnt.subarray(b + 1, b + 8)).map((x, j) => (j === 1 ? x > 0 : x)), [2, true, 2, 0, 0, 0, 4]);
        balanced(X);
      });
    }

    it('inner packet for this host (GCM, CBC, ESN, IPv6): the ESP frame goes to Linux exactly as received (ipsec-local), window untouched', () => {
      const to4 = ipv4({ src: '10.99.5.5', dst: LOCAL, payload: udp(4000, 161, [1, 2, 3]) });
      const to6 = ipv6({ src: '2001:db8:98::5', dst: LOCAL6, payload: udp(4000, 22, [4, 5]) });
      const frames = [
        wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 5, to4, 4)),
        wan(PEER6, LOCAL6, espSeal(CBC_B, 0x2002, 5, to6, 41)),
        wan(PEER, LOCAL, espSeal(GCM_B, 0x2005, 5, to4, 4, undefined, 0), { tc: 2 }),
        wan(PEER, LOCAL, espSeal(CBC_B, 0x2006, 5, to4, 4, undefined, 0)),
      ];
      X.run(frames.map((frame) => ({ port: 1, frame })));
      assert.deepStrictEqual(excs(X, 1), { 'ipsec-local': 4 });
      assert.deepStrictEqual(X.io.dpvi[1].map(hex).sort(), frames.map(hex).sort(), 'byte for byte the received frames');
      X.io.clearCaptured();
      // the fast path's window did not take SN 5: a forwarded packet with SN 5 is still accepted
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 5, ipv4({ src: '10.99.5.5', dst: '10.0.1.5', payload: udp(1, 2, []) }), 4)));
      assert.strictEqual(X.io.sent[0].length, 1);
      assert.strictEqual(X.g.ipsec!.saCounters[saIndex(X, LOCAL, 0x2001) * SA_STRIDE + 1], 1, 'only the forwarded one counted');
      X.io.clearCaptured();
      balanced(X);
    });

    it('round trip IPv6 in IPv6 through two graphs', () => {
      const B = world({ objs: [...worldObjects(), via6('2001:db8:1::', 64),
        { kind: 'route', obj: route6(PEER6, 128, undefined, { table: 255, type: 'local', nexthops: [{ ifindex: 3, weight: 1, flags: 0 }] }) },
        sa(LOCAL6, PEER6, 0x1004, 4, CBC_A), pol('in', sel(NET6, 64, '2001:db8:98::', 48), [tmpl(LOCAL6, PEER6, 4)])] });
      try {
        // B's routes: the inner destination 2001:db8:98::/48 is reached via eth0's 2001:db8:1::1 ... use B's world route
        B.w.upsert({ kind: 'route', obj: route6('2001:db8:98::', 48, '2001:db8:1::1', { nexthops: [{ gw: '2001:db8:1::1', ifindex: 2, weight: 1, flags: 0 }] }) });
        const frames = [1, 2, 3].map((j) => lan('2001:db8:1::5', '2001:db8:98::2', { len: j * 50, sport: j }));
        X.run(frames.map((frame) => ({ port: 0, frame })));
        const esp = X.io.sent[1].map((f) => { const g = Uint8Array.from(f); g.set(mac(PORT_MACS[1]), 0); g.set(mac(PEER_MAC), 6); return g; });
        X.io.clearCaptured();
        B.run(esp.map((frame) => ({ port: 1, frame })));
        assert.strictEqual(B.io.sent[0].length, 3);
        B.io.sent[0].forEach((f, j) => sameInner(f.subarray(14), frames[j], 2));
        B.io.clearCaptured();
        noLeaks(B);
      } finally { B.g.close(); }
    });
  });

  describe('transport mode', () => {
    it('out IPv4 / IPv6: ESP inserted after the header (protocol 50, lengths, checksum), the SA chosen by the packet addresses', () => {
      const f1 = lan('10.0.1.5', '192.168.50.7', { len: 31 });
      const f2 = lan('10.0.1.5', '192.168.50.8', { len: 100 });
      const f3 = lan('2001:db8:1::5', '2001:db8:150::7', { len: 64 });
      X.run([f1, f2, f3].map((frame) => ({ port: 0, frame })));
      assert.strictEqual(X.io.sent[1].length, 3);
      const check = (f: Uint8Array, orig: Uint8Array, k: Keys, spi: number): void => {
        const p = parse(f), o = parse(orig);
        assert.strictEqual(p.proto, 50);
        assert.strictEqual(p.src, o.src); assert.strictEqual(p.dst, o.dst);
        assert.strictEqual(p.ttl, o.ttl - 1);
        const e = espOpen(p.l4, k);
        assert.strictEqual(e.spi, spi); assert.strictEqual(e.sn, 1); assert.strictEqual(e.nh, 17);
        assert.strictEqual(hex(e.payload), hex(o.l4));
      };
      check(X.io.sent[1][0], f1, GCM_A, 0x3001);
      check(X.io.sent[1][1], f2, CBC_A, 0x3002);
      check(X.io.sent[1][2], f3, CBC_A, 0x3003);
      X.io.clearCaptured();
      X.one(0, lan('10.0.1.5', '192.168.50.9'));
      assert.deepStrictEqual(excs(X, 0), { 'no-sa': 1 }, 'no transport SA for these addresses');
      X.io.clearCaptured();
      balanced(X);
    });

    it('in: to Linux undecrypted by default (ipsec-local); decrypted with ipsecTransportDecrypt (header rebuilt)', () => {
      const l4 = udp(500, 4000, [1, 2, 3, 4, 5]);
      const f = wan(PEER, LOCAL, espSeal(GCM_B, 0x4001, 1, l4, 17));
      X.one(1, f);
      assert.deepStrictEqual(excs(X, 1), { 'ipsec-local': 1 });
      assert.strictEqual(hex(X.io.dpvi[1][0]), hex(f), 'ESP frame unchanged');
      X.io.clearCaptured();
      X.g.close();
      X = world({ transportDecrypt: true });
      X.one(1, f);
      X.one(1, wan(PEER6, LOCAL6, espSeal(CBC_B, 0x4002, 1, l4, 17)));
      assert.deepStrictEqual(excs(X, 1), { local: 2 }, 'decrypted, for this host');
      const p = parse(X.io.dpvi[1][0]), p6 = parse(X.io.dpvi[1][1]);
      assert.strictEqual(p.proto, 17); assert.strictEqual(p.src, A(PEER)); assert.strictEqual(p.dst, A(LOCAL));
      assert.strictEqual(hex(p.l4), hex(l4));
      assert.strictEqual(p6.proto, 17); assert.strictEqual(hex(p6.l4), hex(l4));
      X.io.clearCaptured();
      balanced(X);
    });
  });

  describe('ipsecLocalDecrypt: ESP for this host decrypted here, Linux trusts the DPVIs', () => {
    it('tunnel-mode inner packets for this host and transport-mode ESP: decrypted, handed to Linux in clear, counted per SA', () => {
      X.g.close();
      X = world({ localDecrypt: true });
      const to4 = ipv4({ src: '10.99.5.5', dst: LOCAL, payload: udp(4000, 161, [1, 2, 3]) });
      const to6 = ipv6({ src: '2001:db8:98::5', dst: LOCAL6, payload: udp(4000, 22, [4, 5]) });
      const l4 = udp(500, 4000, [1, 2, 3, 4, 5]);
      X.run([
        wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 5, to4, 4)),
        wan(PEER6, LOCAL6, espSeal(CBC_B, 0x2002, 5, to6, 41)),
        wan(PEER, LOCAL, espSeal(GCM_B, 0x4001, 1, l4, 17)),
      ].map((frame) => ({ port: 1, frame })));
      assert.deepStrictEqual(excs(X, 1), { local: 3 }, 'decrypted, for this host');
      const got = X.io.dpvi[1];
      const b = parse(got.find((g) => g[12] === 0x86)!);
      const [a, c] = got.filter((g) => g[12] === 0x08).map(parse).sort((x, y) => (x.src === A(PEER) ? 1 : 0) - (y.src === A(PEER) ? 1 : 0));
      assert.strictEqual(a.dst, A(LOCAL)); assert.strictEqual(a.proto, 17); assert.strictEqual(hex(a.l4), hex(to4.slice(20)));
      assert.strictEqual(b.proto, 17); assert.strictEqual(hex(b.l4), hex(to6.slice(40)));
      assert.strictEqual(c.proto, 17); assert.strictEqual(c.src, A(PEER)); assert.strictEqual(hex(c.l4), hex(l4));
      for (const [d, spi] of [[LOCAL, 0x2001], [LOCAL6, 0x2002], [LOCAL, 0x4001]] as const) {
        assert.strictEqual(X.g.ipsec!.saCounters[saIndex(X, d, spi) * SA_STRIDE + 1], 1, `SA ${spi.toString(16)} counted`);
      }
      X.io.clearCaptured();
      balanced(X);
    });

    it('clear packets for this host that an in policy requires to be ESP are dropped (ipsec-clear-in); IKE and unprotected traffic pass', () => {
      X.g.close();
      X = world({ localDecrypt: true });
      const clear = (src: string, sport: number, dport: number): Uint8Array =>
        eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src, dst: LOCAL, payload: udp(sport, dport, [9]) }));
      X.run([
        clear('10.99.5.5', 4000, 161), // covered by the in policy 10.99/16 -> 10.0.1/24 (ESP required)
        clear('10.99.5.5', 500, 500), // IKE: passes
        clear('10.99.5.5', 4500, 4500), // IKE (NAT-T port): passes
        clear('10.50.5.5', 4000, 161), // no policy: passes
      ].map((frame) => ({ port: 1, frame })));
      assert.deepStrictEqual(drops(X, 1), { 'ipsec-clear-in': 1 });
      assert.deepStrictEqual(excs(X, 1), { local: 3 });
      X.io.clearCaptured();
      // without ipsecLocalDecrypt Linux checks its own policies: everything goes to it
      X.g.close();
      X = world();
      X.one(1, clear('10.99.5.5', 4000, 161));
      assert.deepStrictEqual(excs(X, 1), { local: 1 });
      X.io.clearCaptured();
    });
  });

  describe('NAT-T (RFC 3948)', () => {
    it('out: ESP in UDP to the SA ports (IPv4 checksum 0, IPv6 checksum valid)', () => {
      const f4 = lan('10.0.1.5', '10.97.1.1', { len: 40 }), f6 = lan('2001:db8:1::5', '2001:db8:97::1', { len: 41 });
      X.run([f4, f6].map((frame) => ({ port: 0, frame })));
      assert.strictEqual(X.io.sent[1].length, 2);
      const p4 = parse(X.io.sent[1][0]), p6 = parse(X.io.sent[1][1]);
      assert.strictEqual(p4.proto, 17);
      assert.deepStrictEqual([p4.udp!.sport, p4.udp!.dport, p4.udp!.csum], [4500, 4500, 0]);
      assert.strictEqual(p4.dst, A(NATPEER));
      sameInner(espOpen(espOf(p4), GCM_A).payload, f4);
      assert.deepStrictEqual([p6.udp!.sport, p6.udp!.dport], [4500, 4501]);
      const ip = p6.ip, pseudo = [...ip.subarray(8, 40), 0, 0, ip[4], ip[5], 0, 0, 0, 17];
      assert.strictEqual(inetChecksum([...pseudo, ...p6.l4]), 0, 'IPv6 UDP checksum verifies');
      sameInner(espOpen(espOf(p6), GCM_A).payload, f6);
      X.io.clearCaptured();
      balanced(X);
    });

    it('in: ESP in UDP decrypted; keepalive and non-ESP marker -> Linux; encapsulation mismatch -> esp-encap', () => {
      const inner = Uint8Array.from(ipv4({ src: '10.97.5.5', dst: '10.0.1.5', ttl: 20, payload: udp(1, 2, [3]) }));
      X.one(1, wan(NATPEER, LOCAL, espSeal(GCM_B, 0x6001, 1, inner, 4), { udp: [4500, 4500] }));
      assert.strictEqual(X.io.sent[0].length, 1);
      assert.strictEqual(hex(parse(X.io.sent[0][0]).l4), hex(udp(1, 2, [3])));
      X.io.clearCaptured();
      X.one(1, wan(NATPEER, LOCAL, [0xff], { udp: [4500, 4500] }));
      X.one(1, wan(NATPEER, LOCAL, [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], { udp: [4500, 4500] }));
      assert.deepStrictEqual(excs(X, 1), { local: 2 });
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 1, inner, 4), { udp: [4500, 4500] })); // SA without encap
      X.one(1, wan(NATPEER, LOCAL, espSeal(GCM_B, 0x6001, 2, inner, 4))); // plain ESP for the encap SA
      assert.deepStrictEqual(drops(X, 1), { 'esp-encap': 2 });
      X.io.clearCaptured();
      balanced(X);
    });
    it("the encap port is the inbound SAs' destination port: the peer's port of an outbound SA is not taken for ESP in UDP", () => {
      X.g.close();
      X = world({ objs: [...objects(),
        { kind: 'address', obj: { vrf: 0, ifindex: 2, family: 4, addr: LOCAL, plen: 24, scope: 0, flags: 0 } },
        pol('out', sel(NET4, 24, '10.84.0.0', 16), [tmpl(LOCAL, '192.168.200.9', 81)]),
        sa(LOCAL, '192.168.200.9', 0x5009, 81, GCM_A, { encap: { type: 2, sport: 4500, dport: 34567 } })] });
      X.one(1, wan(NATPEER, LOCAL, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], { udp: [34567, 34567] }));
      assert.deepStrictEqual(excs(X, 1), { local: 1 }, 'UDP to our port 34567: Linux');
      const inner = Uint8Array.from(ipv4({ src: '10.97.5.5', dst: '10.0.1.5', payload: udp(1, 2, [3]) }));
      X.one(1, wan(NATPEER, LOCAL, espSeal(GCM_B, 0x6001, 1, inner, 4), { udp: [4500, 4500] }));
      assert.strictEqual(X.io.sent[0].length, 1, '4500 (inbound SA destination port): ESP in UDP');
      X.io.clearCaptured();
    });
  });

  describe('selectors', () => {
    it('priorities, protocol and ports: the lowest priority value wins', () => {
      X.one(0, lan('10.0.1.5', '10.94.1.1')); // prio 50 ESP over prio 100 block
      X.one(0, lan('10.0.1.5', '10.94.2.1', { proto: 6 })); // prio 10 bypass for TCP
      X.one(0, lan('10.0.1.5', '10.94.2.1')); // UDP: block
      X.one(0, lan('10.0.1.5', '10.94.3.1', { sport: 7000 })); // port selector: ESP
      X.one(0, lan('10.0.1.5', '10.94.3.1', { sport: 7001 })); // other port: block
      assert.strictEqual(X.io.sent[1].length, 3);
      assert.deepStrictEqual(X.io.sent[1].map((f) => parse(f).proto), [50, 6, 50]);
      assert.deepStrictEqual(drops(X, 0), { 'ipsec-block': 2 });
      X.io.clearCaptured();
      balanced(X);
    });

    it('mark: policies / SAs that cannot match mark 0 do not apply (out: no SA; in: Linux); if_id -> Linux; per VRF', () => {
      X.one(0, lan('10.0.1.5', '10.93.1.1')); // marked block policy ignored -> ESP
      X.one(0, lan('10.0.1.5', '10.92.1.1')); // mark 0/0xff matches mark 0 -> block
      X.one(0, lan('10.0.1.5', '10.91.1.1')); // only SA has mark 5 -> no-sa
      X.one(0, lan('10.0.1.5', '10.90.1.1')); // if_id policy -> Linux
      X.one(0, lan('10.0.1.5', '10.89.1.1')); // block policy of VRF 1: not VRF 0's
      assert.deepStrictEqual(X.io.sent[1].map((f) => parse(f).proto), [50, 17]);
      assert.deepStrictEqual(drops(X, 0), { 'ipsec-block': 1 });
      assert.deepStrictEqual(excs(X, 0), { 'no-sa': 1, 'ipsec-unsupported': 1 });
      X.io.clearCaptured();
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x8002, 1, ipv4({ src: '10.99.1.1', dst: '10.0.1.5', payload: [] }), 4)));
      assert.deepStrictEqual(excs(X, 1), { 'ipsec-unsupported': 1 });
      X.io.clearCaptured();
      balanced(X);
    });
  });

  describe('fragmentation (egress MTU 1280)', () => {
    /** Reassembles IPv4 fragments (by offset) into the original packet's payload. */
    function reassemble(ps: Parsed[]): Buffer {
      const s = [...ps].sort((a, b) => a.fragOff - b.fragOff);
      let at = 0;
      for (const p of s) { assert.strictEqual(p.fragOff, at, 'contiguous'); at += p.l4.length; }
      assert.ok(!s[s.length - 1].mf && s.slice(0, -1).every((p) => p.mf), 'MF on all but the last');
      return Buffer.concat(s.map((p) => Buffer.from(p.l4)));
    }

    it('after-encrypt: the ESP packet is fragmented (DF clear), the fragments reassemble into it', () => {
      const f = lan('10.0.1.5', '10.96.1.1', { len: 1240 });
      X.one(0, f);
      assert.strictEqual(X.io.sent[2].length, 2, 'two fragments on eth2');
      const ps = X.io.sent[2].map(parse);
      ps.forEach((p) => { assert.ok(p.ip.length <= 1280); assert.strictEqual(p.proto, 50); assert.strictEqual(p.df, false); });
      const e = espOpen(reassemble(ps), GCM_A);
      assert.strictEqual(e.spi, 0x7001);
      sameInner(e.payload, f);
      X.io.clearCaptured();
    });

    it('before-encrypt: the inner packet is fragmented first, each fragment encrypted on its own', () => {
      X.g.close();
      X = world({ fragment: 'before-encrypt' });
      const f = lan('10.0.1.5', '10.96.1.1', { len: 1240 });
      X.one(0, f);
      assert.strictEqual(X.io.sent[2].length, 2, 'two ESP packets on eth2');
      const inners = X.io.sent[2].map((g, j) => {
        const p = parse(g);
        assert.ok(p.ip.length <= 1280, 'fits the MTU');
        assert.ok(!p.mf && p.fragOff === 0, 'the ESP packet is not a fragment');
        const e = espOpen(p.l4, GCM_A);
        assert.strictEqual(e.sn, j + 1);
        return parse(Uint8Array.from([...f.subarray(0, 14), ...e.payload]));
      });
      inners.forEach((p) => assert.strictEqual(p.ttl, 63));
      assert.strictEqual(hex(reassemble(inners)), hex(parse(f).l4), 'inner fragments reassemble into the original payload');
      X.io.clearCaptured();
    });

    it('inner fragments out of a tunnel (a before-encrypt peer) are forwarded as they are (IPv4, IPv6)', () => {
      const f4a = ipv4({ src: '10.99.5.5', dst: '10.0.1.5', mf: true, id: 77, payload: udp(1, 2, new Array(32).fill(1)) });
      const f4b = ipv4({ src: '10.99.5.5', dst: '10.0.1.5', fragOff: 5, id: 77, payload: new Array(16).fill(2) });
      const f6 = ipv6({ src: '2001:db8:98::5', dst: '2001:db8:1::5', nh: 44, payload: [17, 0, 0, 1, 0, 0, 0, 9, ...udp(1, 2, [5, 6, 7, 8])] });
      X.run([
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 1, f4a, 4)) },
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 2, f4b, 4)) },
        { port: 1, frame: wan(PEER6, LOCAL6, espSeal(CBC_B, 0x2002, 1, f6, 41)) },
      ]);
      assert.strictEqual(X.io.sent[0].length, 3, 'forwarded on eth0');
      const got = X.io.sent[0].map((g) => hex(g.subarray(14 + ((g[14] >>> 4) === 4 ? 20 : 40))));
      assert.deepStrictEqual(got.sort(), [f4a.slice(20), f4b.slice(20), f6.slice(40)].map(hex).sort());
      assert.deepStrictEqual(excs(X, 1), {});
      X.io.clearCaptured();
      balanced(X);
    });

    it('DF set -> Linux (frag-needed); IPv6 inner: after-encrypt fragments the ESP packet, before-encrypt -> Linux (too-big)', () => {
      const df = lan('10.0.1.5', '10.96.1.1', { len: 1240, df: true });
      const six = lan('2001:db8:1::5', '2001:db8:96::1', { len: 1220 });
      X.run([df, six].map((frame) => ({ port: 0, frame })));
      assert.deepStrictEqual(excs(X, 0), { 'frag-needed': 1 });
      assert.deepStrictEqual(X.io.dpvi[0].map(hex), [hex(df)], 'original frame');
      assert.strictEqual(X.io.sent[2].length, 2, 'the IPv6 packet, encrypted, in two fragments on eth2');
      X.io.sent[2].map(parse).forEach((p) => { assert.ok(p.ip.length <= 1280); assert.strictEqual(p.proto, 50); });
      X.io.clearCaptured();
      X.g.close();
      X = world({ fragment: 'before-encrypt' });
      X.one(0, six);
      assert.deepStrictEqual(excs(X, 0), { 'too-big': 1 });
      assert.deepStrictEqual(X.io.dpvi[0].map(hex), [hex(six)], 'original frame');
      X.io.clearCaptured();
      balanced(X);
    });

    it('IPv6 outer: the ESP packet is cut by ipv6-fragment (Fragment header), each piece rewritten (hop limit 64)', () => {
      const f = lan('10.0.1.5', '10.95.1.1', { len: 1230 });
      X.one(0, f);
      assert.strictEqual(X.io.sent[2].length, 2, 'two IPv6 fragments on eth2');
      const pieces = X.io.sent[2].map((g) => {
        assert.strictEqual((g[12] << 8) | g[13], 0x86dd);
        const ip = g.subarray(14);
        assert.ok(ip.length <= 1280);
        assert.strictEqual(ip[6], 44, 'Fragment header');
        assert.strictEqual(ip[7], 64, 'hop limit');
        assert.strictEqual(ip[40], 50, 'fragment of ESP');
        const fo = (ip[42] << 8) | ip[43];
        return { off: fo & 0xfff8, m: fo & 1, data: ip.subarray(48) };
      }).sort((a, b) => a.off - b.off);
      assert.deepStrictEqual(pieces.map((p) => p.m), [1, 0]);
      assert.strictEqual(pieces[1].off, pieces[0].data.length);
      const e = espOpen(Buffer.concat(pieces.map((p) => Buffer.from(p.data))), GCM_A);
      assert.strictEqual(e.spi, 0x7002);
      sameInner(e.payload, f);
      X.io.clearCaptured();
    });
  });

  describe('reassembly of ESP fragments before decryption (encrypt-then-fragment peers)', () => {
    /** IPv4 fragments of an IP packet (header 20 bytes) with at most `size` payload bytes each (multiple of 8). */
    function frag4(ip: number[], size: number): number[][] {
      const hdr = ip.slice(0, 20), data = ip.slice(20), out: number[][] = [];
      for (let at = 0; at < data.length; at += size) {
        const piece = data.slice(at, at + size), last = at + size >= data.length;
        const h = [...hdr];
        const tot = 20 + piece.length, fw = (last ? 0 : 0x2000) | (at >> 3);
        h[2] = tot >> 8; h[3] = tot & 255; h[6] = fw >> 8; h[7] = fw & 255; h[10] = 0; h[11] = 0;
        const c = inetChecksum(h); h[10] = c >> 8; h[11] = c & 255;
        out.push([...h, ...piece]);
      }
      return out;
    }
    /** IPv6 fragments (Fragment header after the fixed header). */
    function frag6(ip: number[], size: number, id: number): number[][] {
      const hdr = ip.slice(0, 40), nh = ip[6], data = ip.slice(40), out: number[][] = [];
      for (let at = 0; at < data.length; at += size) {
        const piece = data.slice(at, at + size), last = at + size >= data.length;
        const h = [...hdr];
        const plen = 8 + piece.length;
        h[4] = plen >> 8; h[5] = plen & 255; h[6] = 44;
        const fo = at | (last ? 0 : 1);
        out.push([...h, nh, 0, fo >> 8, fo & 255, (id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255, ...piece]);
      }
      return out;
    }

    it('reassembled ESP keeps its place among the whole ESP packets of the vector (order, sequence numbers)', () => {
      // 40 datagrams: odd ones are big ESP packets that come as two fragments, even ones whole; one vector
      const frames: Uint8Array[] = [];
      for (let k = 1; k <= 40; k++) {
        const inner = ipv4({ src: '10.99.7.7', dst: '10.0.1.5', payload: udp(1, 2, Array.from({ length: k % 2 ? 1300 : 20 }, () => k)) });
        const esp = ipv4({ src: PEER, dst: LOCAL, proto: 50, id: 0x100 + k, payload: espSeal(GCM_B, 0x2001, k, inner, 4) });
        for (const ip of k % 2 ? frag4(esp, 800) : [esp]) frames.push(eth(PORT_MACS[1], PEER_MAC, 0x0800, ip));
      }
      X.run(frames.map((frame) => ({ port: 1, frame })));
      const order = X.io.sent[0].map((g) => g[14 + 28]); // first payload byte = k
      assert.deepStrictEqual(order, Array.from({ length: 40 }, (_, j) => j + 1));
      assert.deepStrictEqual(drops(X, 1), {});
      X.io.clearCaptured();
    });

    it('IPv4 and IPv6 outer: fragments to this box are reassembled, decrypted and forwarded; transit ESP fragments forwarded as they are', () => {
      const inner4 = ipv4({ src: '10.99.7.7', dst: '10.0.1.5', ttl: 30, payload: udp(1, 2, Array.from({ length: 1300 }, (_, j) => j & 255)) });
      const esp4 = ipv4({ src: PEER, dst: LOCAL, proto: 50, id: 0x4242, payload: espSeal(GCM_B, 0x2001, 1, inner4, 4) });
      const inner6 = ipv6({ src: '2001:db8:98::7', dst: '2001:db8:1::5', hl: 30, payload: udp(1, 2, Array.from({ length: 1300 }, (_, j) => j & 255)) });
      const esp6 = ipv6({ src: PEER6, dst: LOCAL6, nh: 50, payload: espSeal(CBC_B, 0x2002, 1, inner6, 41) });
      const frames = [
        ...frag4(esp4, 800).reverse().map((ip) => eth(PORT_MACS[1], PEER_MAC, 0x0800, ip)),
        ...frag6(esp6, 800, 0x1234567).map((ip) => eth(PORT_MACS[1], PEER_MAC, 0x86dd, ip)),
      ];
      X.run(frames.map((frame) => ({ port: 1, frame })));
      assert.strictEqual(X.io.sent[0].length, 2, 'both inner packets forwarded on eth0');
      const p4 = parse(X.io.sent[0].find((g) => g[12] === 0x08)!), p6 = parse(X.io.sent[0].find((g) => g[12] === 0x86)!);
      assert.strictEqual(hex(p4.ip.subarray(20)), hex(inner4.slice(20)));
      assert.strictEqual(hex(p6.ip.subarray(40)), hex(inner6.slice(40)));
      X.io.clearCaptured();
      // transit: ESP fragments to another host are forwarded as they are (a router does not reassemble)
      const transit = frag4(ipv4({ src: PEER, dst: '10.0.1.5', proto: 50, payload: espSeal(GCM_B, 0x2001, 2, inner4, 4) }), 800)
        .map((ip) => eth(PORT_MACS[1], PEER_MAC, 0x0800, ip));
      X.run(transit.map((frame) => ({ port: 1, frame })));
      assert.deepStrictEqual(excs(X, 1), {});
      assert.strictEqual(X.io.sent[0].length, 2);
      X.io.sent[0].forEach((f, k) => {
        assert.strictEqual(hex(f.subarray(14 + 20)), hex(transit[k].subarray(14 + 20)), 'payload unchanged');
        assert.strictEqual(hex(f.subarray(14 + 6, 14 + 8)), hex(transit[k].subarray(14 + 6, 14 + 8)), 'MF / offset unchanged');
        assert.strictEqual(f[14 + 8], transit[k][14 + 8] - 1, 'TTL - 1');
      });
      X.io.clearCaptured();
    });
  });

  describe('outbound drops and exceptions by reason; ESN', () => {
    it('esp-outer-route, no-neighbour (outer next hop), esp-no-room: to Linux with the original frame', () => {
      const a = lan('10.0.1.5', '10.88.1.1'), b = lan('10.0.1.5', '10.87.1.1');
      const big = lan('10.0.1.5', '10.99.1.1', { len: 1915 - 14 - 28 }); // 1915-byte frame (buffer room 1920): no room for the trailer + ICV
      X.run([a, b, big].map((frame) => ({ port: 0, frame })));
      assert.deepStrictEqual(excs(X, 0), { 'esp-outer-route': 1, 'no-neighbour': 1, 'esp-no-room': 1 });
      assert.deepStrictEqual(X.io.dpvi[0].map(hex).sort(), [a, b, big].map(hex).sort());
      X.io.clearCaptured();
      balanced(X);
    });

    it('esp-seq-overflow without ESN (counted as an SA error); with ESN the high half goes on (IV / AAD / ICV with it)', () => {
      const ips = X.g.ipsec!;
      X.one(0, lan('10.0.1.5', '10.86.1.1'));
      X.one(0, lan('10.0.1.5', '10.85.1.1'));
      X.io.clearCaptured();
      const i1 = saIndex(X, '192.168.100.2', 0x9003), i2 = saIndex(X, '192.168.100.3', 0x9004);
      ips.outLo[i1] = 0xfffffffe;
      ips.outLo[i2] = 0xfffffffe;
      X.run([1, 2].map(() => ({ port: 0, frame: lan('10.0.1.5', '10.86.1.1') })));
      assert.strictEqual(X.io.sent[1].length, 1, 'SN 2^32 - 1 is the last one');
      assert.strictEqual(espOpen(espOf(parse(X.io.sent[1][0])), GCM_A).sn, 0xffffffff);
      assert.deepStrictEqual(drops(X, 0), { 'esp-seq-overflow': 1 });
      assert.strictEqual(ips.saCounters[i1 * SA_STRIDE + 3], 1, 'SA errors');
      X.io.clearCaptured();
      const f = lan('10.0.1.5', '10.85.1.1');
      X.run([1, 2].map(() => ({ port: 0, frame: f })));
      const sns = X.io.sent[1].map((g, j) => { const e = espOpen(espOf(parse(g)), CBC_A, j === 0 ? 0 : 1); sameInner(e.payload, f); return e.sn; });
      assert.deepStrictEqual(sns, [0xffffffff, 0], 'ESN: the low half wraps, the ICV covers the high half');
      assert.strictEqual(ips.saCounters[i2 * SA_STRIDE + 6], 2 ** 32, 'oseq = 2^32');
      X.io.clearCaptured();
    });
  });

  describe('robustness', () => {
    it('fuzz: random IPv4 / IPv6 / ESP / ESP-in-UDP / fragments through the IPsec graph: never throws, no buffer leaked', () => {
      const R = rng(11);
      const dsts4 = ['10.99.1.1', '10.98.1.1', '10.97.1.1', '10.96.1.1', '10.95.1.1', '192.168.50.7', LOCAL, '10.0.1.5', '10.94.2.1'];
      const dsts6 = ['2001:db8:99::1', '2001:db8:98::1', '2001:db8:97::1', '2001:db8:150::7', LOCAL6, '2001:db8:1::5'];
      const frames: { port: number; frame: Uint8Array }[] = [];
      for (let k = 0; k < 3000; k++) {
        const port = R(2), six = R(3) === 0, len = R(1400);
        const data = Array.from({ length: len }, () => R(256));
        const proto = [50, 17, 6, 1, 58, 50, 17][R(7)];
        if (proto === 17 && len >= 8 && R(2) === 0) { data[2] = 0x11; data[3] = 0x94; } // to port 4500
        let ip: number[];
        if (six) ip = ipv6({ src: R(2) ? '2001:db8:1::5' : PEER6, dst: dsts6[R(dsts6.length)], nh: R(8) === 0 ? 44 : proto, payload: data });
        else ip = ipv4({ src: R(2) ? '10.0.1.5' : PEER, dst: dsts4[R(dsts4.length)], proto, mf: R(8) === 0, fragOff: R(8) === 0 ? R(100) : 0, df: R(2) === 0, payload: data });
        if (R(10) === 0) ip = ip.slice(0, R(ip.length));
        if (R(10) === 0) ip[R(ip.length)] = R(256);
        frames.push({ port, frame: eth(PORT_MACS[port], port === 0 ? HOST5 : PEER_MAC, six ? 0x86dd : 0x0800, ip) });
      }
      for (const mode of ['after-encrypt', 'before-encrypt'] as const) {
        X.g.close();
        X = world({ fragment: mode, transportDecrypt: R(2) === 0 });
        X.run(frames);
        X.g.heartbeat(Date.now() + 60000); // reassembly timeouts free what is pending
        X.io.clearCaptured();
        noLeaks(X);
      }
    });
  });

  describe('per-SA counters in the stats file', () => {
    const SAS = SMALL_CONFIG.maxSas as number;
    it('packets, bytes, errors, replayDrops, authDrops, oseq, iseq, tag; readSa sums the workers of the current tag', () => {
      const L = statsLayout({ workers: 2, ports: 4, sas: SAS });
      const file = StatsFile.create(new SharedArrayBuffer(L.totalSize), { workers: 2, ports: 4, sas: SAS });
      X.g.close();
      X = world({ stats: file.worker(0) });
      X.run([1, 2, 3].map((j) => ({ port: 0, frame: lan('10.0.1.5', '10.99.1.1', { len: j }) })));
      X.io.clearCaptured();
      const inner = ipv4({ src: '10.99.1.1', dst: '10.0.1.5', payload: udp(1, 2, [1]) });
      X.run([
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 7, inner, 4)) },
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 9, inner, 4)) },
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 7, inner, 4)) }, // replay
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 8, inner, 4, 20)) }, // bad ICV
        { port: 1, frame: wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 10, inner, 6)) }, // next header 6: policy
      ]);
      X.io.clearCaptured();
      const out = saIndex(X, PEER, 0x1001), inb = saIndex(X, LOCAL, 0x2001);
      const seqWord = (i: number): number => { const b = new Uint32Array(176); X.r.readSa(i, b); return b[0]; };
      const o = file.readSa(out), n = file.readSa(inb);
      // bytes as Linux counts them: the inner packets (tunnel mode), without ESP padding and trailer
      const outBytes = [1, 2, 3].reduce((a, j) => a + lan('10.0.1.5', '10.99.1.1', { len: j }).length - 14, 0);
      assert.deepStrictEqual(o, { tag: seqWord(out), packets: 3, bytes: outBytes, errors: 0, replayDrops: 0, authDrops: 0, oseq: 3, iseq: 0, ident: o.ident });
      assert.deepStrictEqual(n, { tag: seqWord(inb), packets: 2, bytes: 2 * inner.length, errors: 1, replayDrops: 1, authDrops: 1, oseq: 0, iseq: 10, ident: n.ident });
      assert.ok(o.ident > 0 && n.ident > 0 && o.ident !== n.ident, 'SA idents');
      // a second worker with the same incarnation adds up; one with an older tag is left out
      const w1 = file.worker(1).sa;
      w1[out * SA_STRIDE + SA_C_TAG] = seqWord(out); w1[out * SA_STRIDE + 1] = 5; w1[out * SA_STRIDE + 6] = 100;
      w1[inb * SA_STRIDE + SA_C_TAG] = seqWord(inb) - 2; w1[inb * SA_STRIDE + 1] = 50;
      assert.strictEqual(file.readSa(out).packets, 8);
      assert.strictEqual(file.readSa(out).oseq, 100);
      assert.strictEqual(file.readSa(inb).packets, 2);
      assert.throws(() => file.readSa(SAS), RangeError);
      // the same SA rewritten in place (e.g. new lifetimes): the tag follows the entry at the next vector, counts go on
      X.w.upsert(sa(LOCAL, PEER, 0x1001, 1, GCM_A, { lifetime: { softBytes: '1000000', hardBytes: INF, softPackets: INF, hardPackets: INF,
        softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 } }));
      assert.notStrictEqual(seqWord(out), o.tag);
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 11, inner, 4)));
      assert.strictEqual(file.worker(0).sa[out * SA_STRIDE + SA_C_TAG], seqWord(out), 'tag = the new sequence word');
      X.io.clearCaptured();
      X.one(0, lan('10.0.1.5', '10.99.1.1'));
      assert.strictEqual(espOpen(espOf(parse(X.io.sent[1][0])), GCM_A).sn, 4, 'numbering goes on');
      assert.strictEqual(file.worker(0).sa[out * SA_STRIDE + 1], 4, 'packets go on');
      X.io.clearCaptured();
    });

    it('replay window 0 (the ip xfrm default): no replay check at all, as in Linux; window 64: replays dropped', () => {
      X.g.close();
      X = world({ objs: [...objects().filter((o) => !(o.kind === 'sa' && o.obj.spi === 0x2001)), sa(PEER, LOCAL, 0x2001, 11, GCM_B, { replayWindow: 0 })] });
      const inner = ipv4({ src: '10.99.1.1', dst: '10.0.1.5', payload: udp(1, 2, [1]) });
      for (const sn of [5, 5, 3, 1]) X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, sn, inner, 4)));
      assert.strictEqual(X.io.sent[0].length, 4, 'all four forwarded (duplicates and older numbers included)');
      assert.deepStrictEqual(drops(X, 1), {});
      X.io.clearCaptured();
      X.g.close();
      X = world();
      for (const sn of [5, 5, 3, 1]) X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, sn, inner, 4)));
      assert.strictEqual(X.io.sent[0].length, 3);
      assert.deepStrictEqual(drops(X, 1), { 'esp-replay': 1 });
      X.io.clearCaptured();
    });

    it('sequence numbers go on after a restart (same stats block); a different SA in the slot starts from zero', () => {
      const slice = { worker: 0, fields: new Float64Array(8), counters: new Float64Array(4 * 512), sa: new Float64Array(SAS * SA_STRIDE) };
      const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
      X.g.close();
      X = world({ stats: slice, sab: (() => { const w = ShmWriter.create(sab, SMALL_CONFIG); for (const o of objects()) w.upsert(o); w.setPorts(PORT_NAMES); return sab; })() });
      X.run([1, 2].map((j) => ({ port: 0, frame: lan('10.0.1.5', '10.99.1.1', { len: j }) })));
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 40, ipv4({ src: '10.99.1.1', dst: '10.0.1.5', payload: [] }), 4)));
      X.io.clearCaptured();
      X.g.close();
      // "restart": a new graph on the same stats block
      X = world({ stats: slice, sab });
      X.one(0, lan('10.0.1.5', '10.99.1.1'));
      assert.strictEqual(espOpen(espOf(parse(X.io.sent[1][0])), GCM_A).sn, 3, 'numbering goes on from oseq');
      const inner = ipv4({ src: '10.99.1.1', dst: '10.0.1.5', payload: [] });
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 40, inner, 4)));
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 39, inner, 4)));
      assert.deepStrictEqual(drops(X, 1), { 'esp-replay': 2 }, 'everything up to iseq counts as seen');
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 41, inner, 4)));
      assert.strictEqual(X.io.sent[0].length, 1);
      X.io.clearCaptured();
      // another SA takes the slot of the outbound SA: fresh counters and numbering
      const out = saIndex(X, PEER, 0x1001);
      X.w.remove({ kind: 'sa', obj: (sa(LOCAL, PEER, 0x1001, 1, GCM_A).obj as XfrmSa) });
      X.w.upsert(sa(LOCAL, PEER, 0x1101, 1, CBC_A));
      const now = saIndex(X, PEER, 0x1101);
      X.one(0, lan('10.0.1.5', '10.99.1.1'));
      const e = espOpen(espOf(parse(X.io.sent[1][0])), CBC_A);
      assert.deepStrictEqual([e.spi, e.sn], [0x1101, 1]);
      if (now === out) assert.strictEqual(slice.sa[now * SA_STRIDE + 1], 1, 'slot reused: counters restarted');
      X.io.clearCaptured();
    });

    it('the shared memory re-created (other entry order, the same sequence words): each SA goes on from its own state', () => {
      const slice = { worker: 0, fields: new Float64Array(8), counters: new Float64Array(4 * 512), sa: new Float64Array(SAS * SA_STRIDE) };
      const shm = (objs: AnyObject[]): SharedArrayBuffer => {
        const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
        const w = ShmWriter.create(sab, SMALL_CONFIG);
        for (const o of objs) w.upsert(o);
        w.setPorts(PORT_NAMES);
        return sab;
      };
      const inner = ipv4({ src: '10.99.1.1', dst: '10.0.1.5', payload: [] });
      X.g.close();
      X = world({ stats: slice, sab: shm(objects()) });
      X.run([1, 2].map((j) => ({ port: 0, frame: lan('10.0.1.5', '10.99.1.1', { len: j }) })));
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 40, inner, 4)));
      const before = [saIndex(X, PEER, 0x1001), saIndex(X, LOCAL, 0x2001)];
      X.io.clearCaptured();
      X.g.close();
      // fpmd --fresh: a new file, the SAs written in the other order (so in each other's entries, whose sequence
      // words are the same as before); the fast path restarts on the kept stats blocks (by index, as createFile does)
      const objs = objects();
      X = world({ stats: slice, sab: shm([...objs.filter((o) => o.kind !== 'sa'), ...objs.filter((o) => o.kind === 'sa').reverse()]) });
      const after = [saIndex(X, PEER, 0x1001), saIndex(X, LOCAL, 0x2001)];
      assert.notDeepStrictEqual(after, before, 'the SAs moved to other entries');
      const seqWord = (i: number): number => { const b = new Uint32Array(176); X.r.readSa(i, b); return b[0]; };
      assert.ok(slice.sa.some((t, k) => k % SA_STRIDE === SA_C_TAG && t !== 0 && t === seqWord(Math.floor(k / SA_STRIDE))),
        'a stale block carries a sequence word of the new file');
      X.one(0, lan('10.0.1.5', '10.99.1.1'));
      assert.strictEqual(espOpen(espOf(parse(X.io.sent[1][0])), GCM_A).sn, 3, 'outbound numbering goes on from the SA\'s own oseq');
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 40, inner, 4)));
      assert.deepStrictEqual(drops(X, 1), { 'esp-replay': 1 }, 'inbound: its own iseq counts as seen');
      X.one(1, wan(PEER, LOCAL, espSeal(GCM_B, 0x2001, 41, inner, 4)));
      assert.strictEqual(X.io.sent[0].length, 1);
      X.io.clearCaptured();
    });

    it('an SA that carries the kernel\'s oseq (Linux or an HA peer sent on it): numbering goes on above it', () => {
      X.g.close();
      const objs = objects().map((o) => (o.kind === 'sa' && o.obj.spi === 0x1001 ? { kind: 'sa', obj: { ...o.obj, oseq: 1000 } } as AnyObject : o));
      X = world({ objs });
      X.one(0, lan('10.0.1.5', '10.99.1.1'));
      assert.strictEqual(espOpen(espOf(parse(X.io.sent[1][0])), GCM_A).sn, 1001);
      X.io.clearCaptured();
    });

    it('StatsFile.createFile keepSas carries the SA blocks of the previous file (native mapping)', function () {
      if (!nativeAvailable()) this.skip();
      const path = `/dev/shm/lfp-test-stats-${process.pid}`;
      try {
        const f1 = StatsFile.createFile(path, { workers: 1, ports: 2, sas: 8 });
        const s = f1.worker(0).sa;
        s[3 * SA_STRIDE] = 77; s[3 * SA_STRIDE + 1] = 5; s[3 * SA_STRIDE + 6] = 1234;
        const f2 = StatsFile.createFile(path, { workers: 2, ports: 2, sas: 8 }, { keepSas: true });
        assert.deepStrictEqual(f2.readSa(3), { tag: 77, packets: 5, bytes: 0, errors: 0, replayDrops: 0, authDrops: 0, oseq: 1234, iseq: 0, ident: 0 });
        const f3 = StatsFile.createFile(path, { workers: 1, ports: 2, sas: 8 });
        assert.strictEqual(f3.readSa(3).oseq, 0, 'without keepSas: zeroed');
      } finally { fs.rmSync(path, { force: true }); }
    });
  });
});
