// IPsec ESP in the fast path (GraphOptions.ipsec): tunnel mode, IPv4 in IPv4. Every ESP packet the
// graph sends is opened here independently with node:crypto, and every ESP packet fed to it is built
// here with node:crypto (RFC 4106 GCM, RFC 3602 CBC + RFC 4868 HMAC-SHA-256-128, ESN per RFC 4303).

import * as assert from 'assert';
import * as nodeCrypto from 'crypto';
import type { AnyObject, XfrmPolicy, XfrmSa, XfrmSelector } from '../../lib/model';
import { computeLayout } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4 } from '../../shared-mem/test-fixtures';
import type { PortStats } from '../../shared-mem/stats';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { Vector } from '../../fastpath/vector';
import { SA_CTR_BYTES, SA_CTR_ERRORS, SA_CTR_PACKETS, SA_CTR_REPLAY, SA_CTR_STRIDE } from '../../fastpath/ipsec';
import * as nativeCrypto from '../../native/crypto';
import {
  GW2, HOST5, PEER_MAC, PORT_MACS, PORT_NAMES, assertIpv4Checksum, eth, hex, ip4, ipv4, mac, rng, udp, udp4Frame, worldObjects,
} from './fp-helpers';

const GCM_KEY = '000102030405060708090a0b0c0d0e0f' + 'cafebabe'; // AES-128 + salt
const CBC_KEY = '101112131415161718191a1b1c1d1e1f';
const HMAC_KEY = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
const GCM_IN_KEY = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + 'deadbeef';
const CBC_IN_KEY = 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf';
const HMAC_IN_KEY = 'c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf';
const LOCAL = '10.0.1.254'; // local address (table local) on eth0
const PEER = '192.168.100.1'; // via 10.0.2.1 (GW2) on eth1

function sel(saddr = '0.0.0.0', splen = 0, daddr = '0.0.0.0', dplen = 0, extra: Partial<XfrmSelector> = {}): XfrmSelector {
  return { family: 4, saddr, daddr, splen, dplen, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0, ...extra };
}

const INF = '18446744073709551615';
function sa(o: Partial<XfrmSa> & { daddr: string; saddr: string; spi: number; reqid: number }): AnyObject {
  const s: XfrmSa = {
    vrf: 0, proto: 50, family: 4, mode: 'tunnel', flags: 0, replayWindow: 64, esn: false, selector: sel(), ifId: 0,
    lifetime: { softBytes: INF, hardBytes: INF, softPackets: INF, hardPackets: INF, softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
    ...o,
  };
  return { kind: 'sa', obj: s };
}

function policy(index: number, dir: 'in' | 'out' | 'fwd', selector: XfrmSelector, reqid: number, tdaddr: string, tsaddr: string,
  extra: Partial<XfrmPolicy> = {}, tspi = 0): AnyObject {
  const p: XfrmPolicy = {
    vrf: 0, index, dir, priority: 1000, action: 'allow', flags: 0, selector, ifId: 0,
    tmpls: [{ family: 4, daddr: tdaddr, saddr: tsaddr, spi: tspi, proto: 50, mode: 'tunnel', reqid, optional: false, share: 0,
      aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff }],
    ...extra,
  };
  return { kind: 'policy', obj: p };
}

function ipsecObjects(): AnyObject[] {
  const via2 = (dst: string): AnyObject => ({ kind: 'route', obj: route4(dst, 16, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] }) });
  return [
    ...worldObjects(),
    via2('10.99.0.0'), via2('10.98.0.0'), via2('10.97.0.0'), via2('10.96.0.0'),
    // out: 10.0.1.0/24 -> 10.99/16 over GCM (SA by reqid), -> 10.98/16 over CBC (template SPI), -> 10.97/16 no SA, -> 10.96/16 block
    policy(1, 'out', sel('10.0.1.0', 24, '10.99.0.0', 16), 1, PEER, LOCAL),
    policy(9, 'out', sel('10.0.1.0', 24, '10.98.0.0', 16), 3, PEER, LOCAL, {}, 0x1002),
    policy(17, 'out', sel('10.0.1.0', 24, '10.97.0.0', 16), 9, PEER, LOCAL),
    policy(25, 'out', sel('10.0.1.0', 24, '10.96.0.0', 16), 0, PEER, LOCAL, { action: 'block', tmpls: [] }),
    // a higher-priority (lower value) bypass for one port of 10.99/16
    policy(33, 'out', sel('10.0.1.0', 24, '10.99.0.0', 16, { proto: 17, dport: 53, dportMask: 0xffff }), 0, PEER, LOCAL, { priority: 10, tmpls: [] }),
    sa({ daddr: PEER, saddr: LOCAL, spi: 0x1001, reqid: 1, aead: { name: 'rfc4106(gcm(aes))', key: GCM_KEY, icvBits: 128 } }),
    sa({ daddr: PEER, saddr: LOCAL, spi: 0x1002, reqid: 3, enc: { name: 'cbc(aes)', key: CBC_KEY }, auth: { name: 'hmac(sha256)', key: HMAC_KEY, truncBits: 128 } }),
    // in: 10.99/16 -> 10.0.1.0/24 from the peer, reqid 2
    policy(2, 'in', sel('10.99.0.0', 16, '10.0.1.0', 24), 2, LOCAL, PEER),
    sa({ daddr: LOCAL, saddr: PEER, spi: 0x2001, reqid: 2, aead: { name: 'rfc4106(gcm(aes))', key: GCM_IN_KEY, icvBits: 128 } }),
    sa({ daddr: LOCAL, saddr: PEER, spi: 0x2002, reqid: 2, esn: true, replayWindow: 128, enc: { name: 'cbc(aes)', key: CBC_IN_KEY },
      auth: { name: 'hmac(sha256)', key: HMAC_IN_KEY, truncBits: 128 } }),
    // an SA of another reqid: its inner packets do not match the 'in' policy's template
    sa({ daddr: LOCAL, saddr: PEER, spi: 0x2003, reqid: 7, aead: { name: 'rfc4106(gcm(aes))', key: GCM_IN_KEY, icvBits: 128 } }),
  ];
}

interface EWorld { w: ShmWriter; r: ShmReader; io: MemIo; g: Graph; run(frames: { port: number; frame: Uint8Array }[]): void; one(port: number, frame: Uint8Array): void }

export function makeEspWorld(objects = ipsecObjects(), io = new MemIo({ buffers: 4096, ports: 4 })): EWorld {
  const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
  const w = ShmWriter.create(sab, SMALL_CONFIG);
  for (const o of objects) w.upsert(o);
  w.setPorts(PORT_NAMES);
  const r = ShmReader.attach(sab);
  const g = new Graph({ io, shm: r, ports: 4, ipsec: true });
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

function checkAccounting(W: EWorld): void {
  const rx = total(W.g, (p) => p.rxPackets), tx = total(W.g, (p) => p.txPackets), dpvi = total(W.g, (p) => p.dpviPackets);
  const drops = total(W.g, (p) => Object.values(p.drops).reduce((a, b) => a + b, 0));
  assert.strictEqual(rx, tx + dpvi + drops, `rx ${rx} = tx ${tx} + dpvi ${dpvi} + drops ${drops}`);
  assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
  assert.strictEqual(W.io.doubleFrees, 0);
  assert.strictEqual(W.io.badIndex, 0);
}

function drops(W: EWorld, port: number): Record<string, number> {
  const d = W.g.portStats(port).drops as Record<string, number>;
  return Object.fromEntries(Object.entries(d).filter(([, n]) => n > 0));
}

const be32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const u32b = (x: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(x >>> 0); return b; };

/** Opens the ESP payload of an outer frame with node:crypto; returns { spi, sn, plain } (plain = payload + trailer). */
function openEsp(f: Uint8Array, alg: 'gcm' | 'cbc'): { spi: number; sn: number; plain: Buffer } {
  const esp = Buffer.from(f.subarray(14 + 20));
  const spi = esp.readUInt32BE(0), sn = esp.readUInt32BE(4);
  if (alg === 'gcm') {
    const key = Buffer.from(GCM_KEY.slice(0, 32), 'hex'), salt = Buffer.from(GCM_KEY.slice(32), 'hex');
    const iv = esp.subarray(8, 16), ct = esp.subarray(16, esp.length - 16), tag = esp.subarray(esp.length - 16);
    // The explicit IV is the sequence number XOR a random per-SA mask (native/crypto, like Linux's seqiv):
    // tests/unit/crypto-esp.test.ts checks it; here only that the peer can open the packet with it.
    const d = nodeCrypto.createDecipheriv('aes-128-gcm', key, Buffer.concat([salt, iv]));
    d.setAAD(esp.subarray(0, 8));
    d.setAuthTag(tag);
    return { spi, sn, plain: Buffer.concat([d.update(ct), d.final()]) };
  }
  const iv = esp.subarray(8, 24), ct = esp.subarray(24, esp.length - 16), icv = esp.subarray(esp.length - 16);
  const mac2 = nodeCrypto.createHmac('sha256', Buffer.from(HMAC_KEY, 'hex')).update(esp.subarray(0, esp.length - 16)).digest().subarray(0, 16);
  assert.strictEqual(hex(icv), hex(mac2), 'HMAC-SHA-256-128');
  assert.strictEqual(ct.length % 16, 0);
  const d = nodeCrypto.createDecipheriv('aes-128-cbc', Buffer.from(CBC_KEY, 'hex'), iv);
  d.setAutoPadding(false);
  return { spi, sn, plain: Buffer.concat([d.update(ct), d.final()]) };
}

/** Checks an ESP frame sent on port 1 and returns the inner IPv4 packet after checking the trailer. */
function checkOuter(f: Uint8Array, alg: 'gcm' | 'cbc', spi: number): { sn: number; inner: Buffer } {
  assert.strictEqual(hex(f.subarray(0, 6)), hex(mac(GW2)), 'destination MAC: the gateway to the peer');
  assert.strictEqual(hex(f.subarray(6, 12)), hex(mac(PORT_MACS[1])), 'source MAC: egress port');
  assert.strictEqual((f[12] << 8) | f[13], 0x0800);
  assert.strictEqual(f[14], 0x45);
  assert.strictEqual((f[16] << 8) | f[17], f.length - 14, 'outer total length');
  assert.strictEqual(f[20] & 0x40, 0, 'outer DF clear');
  assert.strictEqual(f[22], 64, 'outer TTL');
  assert.strictEqual(f[23], 50, 'protocol ESP');
  assert.strictEqual(hex(f.subarray(26, 30)), hex(ip4(LOCAL)));
  assert.strictEqual(hex(f.subarray(30, 34)), hex(ip4(PEER)));
  assertIpv4Checksum(f);
  const o = openEsp(f, alg);
  assert.strictEqual(o.spi, spi);
  const p = o.plain;
  assert.strictEqual(p.length % (alg === 'gcm' ? 4 : 16), 0, 'payload + trailer aligned to the block size');
  const nh = p[p.length - 1], padLen = p[p.length - 2];
  assert.strictEqual(nh, 4, 'next header IPv4');
  for (let k = 0; k < padLen; k++) assert.strictEqual(p[p.length - 2 - padLen + k], k + 1, 'RFC 4303 default padding');
  assert.ok(padLen < (alg === 'gcm' ? 4 : 16), 'minimal padding');
  return { sn: o.sn, inner: p.subarray(0, p.length - 2 - padLen) };
}

/** The inner packet is the original IPv4 packet with TTL - 1 and a valid checksum. */
function checkInner(orig: Uint8Array, inner: Buffer): void {
  const ip = orig.subarray(14);
  assert.strictEqual(inner.length, ip.length);
  assert.strictEqual(inner[8], ip[8] - 1, 'inner TTL - 1');
  assertIpv4Checksum(Uint8Array.from([...new Uint8Array(14), ...inner]));
  for (let k = 0; k < ip.length; k++) if (k !== 8 && k !== 10 && k !== 11) assert.strictEqual(inner[k], ip[k], `inner byte ${k}`);
}

// -------------------------------------------------------------------------------------------------
// ESP packets built by the test (inbound)

interface InSa { spi: number; alg: 'gcm' | 'cbc'; esn?: boolean }
export const GCM_IN: InSa = { spi: 0x2001, alg: 'gcm' };
const CBC_IN: InSa = { spi: 0x2002, alg: 'cbc', esn: true };

export function espFrame(s: InSa, sn: number, inner: number[], opts: { hi?: number; flip?: number; nh?: number; dst?: string; truncate?: number; padByte?: number } = {}): Uint8Array {
  const bs = s.alg === 'gcm' ? 4 : 16;
  const padLen = (bs - ((inner.length + 2) % bs)) % bs;
  const pt = Buffer.from([...inner, ...Array.from({ length: padLen }, (_, k) => k + 1), opts.padByte ?? padLen, opts.nh ?? 4]);
  const hdr = Buffer.concat([u32b(s.spi), u32b(sn)]);
  let esp: Buffer;
  if (s.alg === 'gcm') {
    const iv = nodeCrypto.randomBytes(8);
    const c = nodeCrypto.createCipheriv('aes-128-gcm', Buffer.from(GCM_IN_KEY.slice(0, 32), 'hex'), Buffer.concat([Buffer.from(GCM_IN_KEY.slice(32), 'hex'), iv]));
    c.setAAD(s.esn ? Buffer.concat([u32b(s.spi), u32b(opts.hi ?? 0), u32b(sn)]) : hdr);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    esp = Buffer.concat([hdr, iv, ct, c.getAuthTag()]);
  } else {
    const iv = nodeCrypto.randomBytes(16);
    const c = nodeCrypto.createCipheriv('aes-128-cbc', Buffer.from(CBC_IN_KEY, 'hex'), iv);
    c.setAutoPadding(false);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    const h = nodeCrypto.createHmac('sha256', Buffer.from(HMAC_IN_KEY, 'hex')).update(Buffer.concat([hdr, iv, ct]));
    if (s.esn) h.update(u32b(opts.hi ?? 0));
    esp = Buffer.concat([hdr, iv, ct, h.digest().subarray(0, 16)]);
  }
  if (opts.flip !== undefined) esp[opts.flip] ^= 1;
  if (opts.truncate !== undefined) esp = esp.subarray(0, opts.truncate);
  return eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src: PEER, dst: opts.dst ?? LOCAL, proto: 50, payload: Array.from(esp) }));
}

export function innerUdp(src = '10.99.1.2', dst = '10.0.1.5', data = [9, 8, 7, 6, 5]): number[] {
  return ipv4({ src, dst, ttl: 30, payload: udp(4000, 5000, data) });
}

function checkDelivered(W: EWorld, inner: number[]): void {
  assert.strictEqual(W.io.sent[0].length, 1, 'inner packet forwarded on eth0');
  const f = W.io.sent[0][0];
  assert.strictEqual(hex(f.subarray(0, 6)), hex(mac(HOST5)));
  assert.strictEqual(hex(f.subarray(6, 12)), hex(mac(PORT_MACS[0])));
  assert.strictEqual(f.length, 14 + inner.length);
  assert.strictEqual(f[22], inner[8] - 1, 'inner TTL - 1');
  assertIpv4Checksum(f);
  for (let k = 0; k < inner.length; k++) if (k !== 8 && k !== 10 && k !== 11) assert.strictEqual(f[14 + k], inner[k], `byte ${k}`);
  W.io.clearCaptured();
}

// -------------------------------------------------------------------------------------------------

if (typeof describe === 'function') describe('fast path IPsec ESP (GraphOptions.ipsec)', function () {
  before(function () { if (!nativeCrypto.available()) this.skip(); });
  let W: EWorld;
  beforeEach(() => { W = makeEspWorld(); });
  afterEach(() => { checkAccounting(W); W.g.close(); });

  describe('outbound (tunnel mode)', () => {
    it('AES-128-GCM: ESP to the peer, opened with node:crypto, inner = original (TTL - 1), SN 1, 2, 3 ... across vectors', () => {
      const frames = [0, 1, 2].map((k) => udp4Frame(0, '10.99.1.2', { id: 100 + k }, 1000 + k, 2000, Array.from({ length: 1 + k * 37 }, (_, j) => j)));
      W.run(frames.map((frame) => ({ port: 0, frame })));
      assert.strictEqual(W.io.sent[1].length, 3);
      W.io.sent[1].forEach((f, k) => {
        const { sn, inner } = checkOuter(f, 'gcm', 0x1001);
        assert.strictEqual(sn, k + 1);
        checkInner(frames[k], inner);
      });
      W.io.clearCaptured();
      const f4 = udp4Frame(0, '10.99.200.1');
      W.one(0, f4);
      const o = checkOuter(W.io.sent[1][0], 'gcm', 0x1001);
      assert.strictEqual(o.sn, 4);
      checkInner(f4, o.inner);
      assert.strictEqual(W.g.portStats(0).rxPackets, 4);
      assert.strictEqual(W.g.portStats(1).txPackets, 4);
      const idx = W.r.saLookup(0, be32(Uint8Array.from(ip4(PEER)), 0), 0x1001, 50);
      const c = W.g.ipsec!.saCounters;
      assert.strictEqual(c[idx * SA_CTR_STRIDE + SA_CTR_PACKETS], 4);
      assert.ok(c[idx * SA_CTR_STRIDE + SA_CTR_BYTES] > 0);
    });

    it('AES-128-CBC + HMAC-SHA-256-128 (SA from the template SPI): opened with node:crypto', () => {
      const frames = [0, 1].map((k) => udp4Frame(0, '10.98.3.4', {}, 1000, 2000, Array.from({ length: 10 + k * 100 }, (_, j) => j ^ k)));
      W.run(frames.map((frame) => ({ port: 0, frame })));
      assert.strictEqual(W.io.sent[1].length, 2);
      W.io.sent[1].forEach((f, k) => {
        const { sn, inner } = checkOuter(f, 'cbc', 0x1002);
        assert.strictEqual(sn, k + 1);
        checkInner(frames[k], inner);
      });
      W.io.clearCaptured();
    });

    it('a full vector of 256 packets: one burst, SN 1..256 in order', () => {
      const frames = Array.from({ length: 256 }, (_, k) => ({ port: 0, frame: udp4Frame(0, '10.99.0.' + (k & 255), {}, 1000 + k) }));
      W.run(frames);
      assert.strictEqual(W.io.sent[1].length, 256);
      W.io.sent[1].forEach((f, k) => { const o = checkOuter(f, 'gcm', 0x1001); assert.strictEqual(o.sn, k + 1); checkInner(frames[k].frame, o.inner); });
      W.io.clearCaptured();
    });

    it('matching policy without SA -> exception no-sa with the original frame', () => {
      const f = udp4Frame(0, '10.97.0.9');
      W.one(0, f);
      assert.strictEqual(W.io.dpvi[0].length, 1);
      assert.strictEqual(hex(W.io.dpvi[0][0]), hex(f), 'original frame');
      assert.strictEqual(W.g.portStats(0).exceptions['no-sa'], 1);
      assert.strictEqual(W.io.sent[1].length, 0);
      W.io.clearCaptured();
    });

    it('block policy -> drop ipsec-block; bypass policy and unmatched traffic forwarded in clear', () => {
      W.one(0, udp4Frame(0, '10.96.1.1'));
      assert.deepStrictEqual(drops(W, 0), { 'ipsec-block': 1 });
      const dns = udp4Frame(0, '10.99.1.2', {}, 1000, 53); // priority 10 bypass
      W.one(0, dns);
      assert.strictEqual(W.io.sent[1].length, 1);
      assert.strictEqual(W.io.sent[1][0][23], 17, 'in clear');
      W.io.clearCaptured();
      W.one(0, udp4Frame(0, '192.168.7.9'));
      assert.strictEqual(W.io.sent[1][0][23], 17);
      assert.strictEqual(hex(W.io.sent[1][0].subarray(0, 6)), hex(mac(GW2)));
      W.io.clearCaptured();
    });

    it('the SA appears later: no-sa, then ESP (SPD re-resolved on the shm generation)', () => {
      const objs = ipsecObjects().filter((o) => !(o.kind === 'sa' && o.obj.spi === 0x1001));
      W.g.close();
      W = makeEspWorld(objs);
      W.one(0, udp4Frame(0, '10.99.1.2'));
      assert.strictEqual(W.g.portStats(0).exceptions['no-sa'], 1);
      W.io.clearCaptured();
      W.w.upsert(sa({ daddr: PEER, saddr: LOCAL, spi: 0x1001, reqid: 1, aead: { name: 'rfc4106(gcm(aes))', key: GCM_KEY, icvBits: 128 } }));
      const f = udp4Frame(0, '10.99.1.2');
      W.one(0, f);
      const o = checkOuter(W.io.sent[1][0], 'gcm', 0x1001);
      assert.strictEqual(o.sn, 1);
      checkInner(f, o.inner);
      W.io.clearCaptured();
    });
  });

  describe('inbound (tunnel mode)', () => {
    it('GCM: good packet -> inner forwarded; replay -> esp-replay; counters per SA', () => {
      const inner = innerUdp();
      W.one(1, espFrame(GCM_IN, 1, inner));
      checkDelivered(W, inner);
      W.one(1, espFrame(GCM_IN, 1, inner));
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 1 });
      W.one(1, espFrame(GCM_IN, 5, inner));
      checkDelivered(W, inner);
      W.one(1, espFrame(GCM_IN, 3, inner)); // inside the window, unseen
      checkDelivered(W, inner);
      W.one(1, espFrame(GCM_IN, 3, inner));
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 2 });
      W.one(1, espFrame(GCM_IN, 100, inner));
      checkDelivered(W, inner);
      W.one(1, espFrame(GCM_IN, 36, inner)); // 100 - 36 = 64 >= window 64
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 3 });
      W.one(1, espFrame(GCM_IN, 37, inner)); // last slot of the window
      checkDelivered(W, inner);
      W.one(1, espFrame(GCM_IN, 0, inner)); // SN 0 never valid without ESN
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 4 });
      const idx = W.r.saLookup(0, be32(Uint8Array.from(ip4(LOCAL)), 0), 0x2001, 50);
      const c = W.g.ipsec!.saCounters, b = idx * SA_CTR_STRIDE;
      assert.strictEqual(c[b + SA_CTR_PACKETS], 5);
      assert.strictEqual(c[b + SA_CTR_REPLAY], 4);
      assert.strictEqual(c[b + SA_CTR_ERRORS], 0);
    });

    it('duplicates inside one vector: the first is forwarded, the second is a replay', () => {
      const inner = innerUdp();
      const f = espFrame(GCM_IN, 7, inner);
      W.run([{ port: 1, frame: f }, { port: 1, frame: f }, { port: 1, frame: espFrame(GCM_IN, 6, inner) }]);
      assert.strictEqual(W.io.sent[0].length, 2);
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 1 });
      W.io.clearCaptured();
    });

    it('bit flips -> esp-icv (window not advanced: the genuine packet is accepted afterwards)', () => {
      const inner = innerUdp();
      for (const pos of [4, 9, 20, 30, 40]) W.one(1, espFrame(GCM_IN, 50, inner, { flip: pos }));
      assert.deepStrictEqual(drops(W, 1), { 'esp-icv': 5 });
      assert.strictEqual(W.io.sent[0].length, 0);
      W.one(1, espFrame(GCM_IN, 50, inner));
      checkDelivered(W, inner);
    });

    it('unknown SPI -> esp-bad-spi; truncated -> esp-truncated; never throws', () => {
      const inner = innerUdp();
      W.one(1, espFrame({ spi: 0x9999, alg: 'gcm' }, 1, inner));
      W.one(1, espFrame(GCM_IN, 1, inner, { truncate: 6 }));
      W.one(1, espFrame(GCM_IN, 1, inner, { truncate: 8 + 8 + 16 }));
      W.one(1, espFrame(CBC_IN, 1, inner, { truncate: 8 + 16 + 8 + 16 })); // CBC: not whole blocks
      assert.deepStrictEqual(drops(W, 1), { 'esp-bad-spi': 1, 'esp-truncated': 3 });
      W.one(1, espFrame(GCM_IN, 2, inner, { padByte: 200 })); // pad length larger than the payload
      assert.strictEqual(drops(W, 1)['esp-truncated'], 4);
    });

    it('CBC + HMAC-SHA-256 with ESN: good packets, high bits inferred across the 2^32 boundary', () => {
      const inner = innerUdp('10.99.5.5', '10.0.1.5');
      W.one(1, espFrame(CBC_IN, 1, inner));
      checkDelivered(W, inner);
      W.one(1, espFrame(CBC_IN, 0x80000000, inner));
      checkDelivered(W, inner);
      W.one(1, espFrame(CBC_IN, 0xfffffff0, inner));
      checkDelivered(W, inner);
      W.one(1, espFrame(CBC_IN, 5, inner, { hi: 1 })); // next subspace
      checkDelivered(W, inner);
      W.one(1, espFrame(CBC_IN, 0xfffffff8, inner)); // hi 0, inside the window (128) of hi 1 / 5
      checkDelivered(W, inner);
      W.one(1, espFrame(CBC_IN, 0xfffffff8, inner));
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 1 });
      W.one(1, espFrame(CBC_IN, 6, inner, { hi: 0 })); // wrong high bits -> the ICV fails (inferred hi 1)
      assert.deepStrictEqual(drops(W, 1), { 'esp-replay': 1, 'esp-icv': 1 });
      W.one(1, espFrame(CBC_IN, 7, inner, { hi: 1, flip: 30 }));
      assert.strictEqual(drops(W, 1)['esp-icv'], 2);
    });

    it('inner packet not allowed by the in policy, wrong reqid, or not IPv4 -> esp-policy', () => {
      W.one(1, espFrame(GCM_IN, 1, innerUdp('10.55.1.2', '10.0.1.5'))); // source outside 10.99/16
      W.one(1, espFrame({ spi: 0x2003, alg: 'gcm' }, 1, innerUdp())); // SA reqid 7, policy template reqid 2
      W.one(1, espFrame(GCM_IN, 2, innerUdp(), { nh: 41 }));
      assert.deepStrictEqual(drops(W, 1), { 'esp-policy': 3 });
      assert.strictEqual(W.io.sent[0].length, 0);
    });

    it('ESP to an address that is not local is forwarded unchanged (transit)', () => {
      const f = espFrame(GCM_IN, 1, innerUdp(), { dst: '10.0.1.5' });
      W.one(1, f);
      assert.strictEqual(W.io.sent[0].length, 1);
      assert.strictEqual(W.io.sent[0][0][23], 50);
      W.io.clearCaptured();
    });

    it('random ESP packets (fuzz): never throw, every packet accounted for', () => {
      const R = rng(7);
      const frames: { port: number; frame: Uint8Array }[] = [];
      for (let k = 0; k < 2000; k++) {
        const s = [GCM_IN, CBC_IN, { spi: R(4), alg: 'gcm' as const }][R(3)];
        const len = R(120);
        const payload = Array.from({ length: len }, () => R(256));
        if (len >= 4 && R(2) === 0) { payload[0] = s.spi >>> 24; payload[1] = (s.spi >>> 16) & 255; payload[2] = (s.spi >>> 8) & 255; payload[3] = s.spi & 255; }
        frames.push({ port: 1, frame: R(4) === 0 ? espFrame(s, R(1000), innerUdp(), { flip: R(40) }) : eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ src: PEER, dst: LOCAL, proto: 50, payload })) });
      }
      W.run(frames);
      assert.strictEqual(W.io.sent[0].length, 0);
      W.io.clearCaptured();
    });
  });

  it('round trip through two graphs: ESP from one fast path is accepted by the other', () => {
    // the receiving side: the outbound GCM SA of W is an inbound SA there, with the mirrored in policy
    const inSide: AnyObject[] = [...worldObjects(),
      policy(2, 'in', sel('10.0.1.0', 24, '10.99.0.0', 16), 1, PEER, LOCAL),
      sa({ daddr: PEER, saddr: LOCAL, spi: 0x1001, reqid: 1, aead: { name: 'rfc4106(gcm(aes))', key: GCM_KEY, icvBits: 128 } }),
      { kind: 'route', obj: route4(PEER, 32, undefined, { table: 255, type: 'local', scope: 254, protocol: 2, nexthops: [{ ifindex: 3, weight: 1, flags: 0 }] }) },
      { kind: 'route', obj: route4('10.99.0.0', 16, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] }) },
    ];
    const B = makeEspWorld(inSide);
    try {
      const frames = [0, 1, 2].map((k) => udp4Frame(0, '10.99.1.2', { id: k }, 1000 + k, 2000, [k, k, k]));
      W.run(frames.map((frame) => ({ port: 0, frame })));
      const esp = W.io.sent[1].map((f) => { const g = Uint8Array.from(f); g.set(mac(PORT_MACS[1]), 0); g.set(mac(PEER_MAC), 6); return g; });
      W.io.clearCaptured();
      B.run(esp.map((frame) => ({ port: 1, frame })));
      assert.strictEqual(B.io.sent[1].length, 3, 'inner packets forwarded to 10.99/16 via eth1');
      B.io.sent[1].forEach((f, k) => {
        const ip = frames[k].subarray(14);
        assert.strictEqual(f[22], ip[8] - 2, 'TTL - 1 at each side');
        for (let j = 0; j < ip.length; j++) if (j !== 8 && j !== 10 && j !== 11) assert.strictEqual(f[14 + j], ip[j]);
        assertIpv4Checksum(f);
      });
      B.io.clearCaptured();
      checkAccounting(B);
    } finally { B.g.close(); }
  });

  it('graph without the ipsec option ignores policies and SAs (ESP to local -> exception local)', () => {
    const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
    const w = ShmWriter.create(sab, SMALL_CONFIG);
    for (const o of ipsecObjects()) w.upsert(o);
    w.setPorts(PORT_NAMES);
    const io = new MemIo({ buffers: 64, ports: 4 });
    const g = new Graph({ io, shm: ShmReader.attach(sab), ports: 4 });
    const v = new Vector();
    io.inject(v, 0, udp4Frame(0, '10.99.1.2'));
    io.inject(v, 1, espFrame(GCM_IN, 1, innerUdp()));
    g.process(v);
    assert.strictEqual(io.sent[1].length, 1);
    assert.strictEqual(io.sent[1][0][23], 17, 'in clear');
    assert.strictEqual(g.portStats(1).exceptions.local, 1);
    assert.strictEqual(g.ipsec, null);
  });

  void GW2; void SA_CTR_ERRORS;
});
