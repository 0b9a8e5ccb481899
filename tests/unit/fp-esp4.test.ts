// IPsec in the fast path, part 4: packet ORDER when some packets of a vector are fragmented (issue 4).
// Host A sends 2000-byte UDP datagrams as two IPv4 fragments (1500 + 548); the fast path encrypts each,
// and the ESP packet of the big one no longer fits the MTU, so it is fragmented after encryption
// (ipv4-rewrite -> ipv4-fragment; IPv6 outer: ipv6-fragment) or, in before-encrypt mode, the inner
// packet is fragmented first. The fragments used to be queued until the end of the vector, so every
// packet of the vector that fitted left first: with a full vector (a stall of the process, a burst)
// the two fragments of one datagram arrived > 64 fragments apart at host B, whose kernel drops such a
// datagram (net.ipv4.ipfrag_max_dist, IpReasmFails; the UML test host-fragments-tunnel-gcm-ipv4 lost
// ~60% of them), and the ESP sequence numbers left out of order (beyond a peer's replay window).
// Here: one vector of interleaved big / small packets; what leaves eth2 must be in input order, the
// fragments of one packet adjacent, the sequence numbers increasing. Plain forwarding as well.

import * as assert from 'assert';
import * as nodeCrypto from 'crypto';
import type { AnyObject, XfrmPolicy, XfrmSa, XfrmSelector, XfrmTemplate } from '../../lib/model';
import { computeLayout } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6 } from '../../shared-mem/test-fixtures';
import { Graph } from '../../fastpath/graph';
import { MemIo } from '../../fastpath/mem-io';
import { Vector } from '../../fastpath/vector';
import * as nativeCrypto from '../../native/crypto';
import { HOST5, HOST6, PORT_MACS, PORT_NAMES, eth, ipv4, ipv6, udp, worldObjects } from './fp-helpers';

const KEY = '000102030405060708090a0b0c0d0e0f' + 'cafebabe'; // rfc4106(gcm(aes)) 128 + salt
const LOCAL = '10.0.1.254', LOCAL6 = '2001:db8:1::fe';
const FARPEER = '198.18.0.1', FARPEER6 = '2001:db8:300::1'; // both routed out of eth2 (MTU 1280)
const INF = '18446744073709551615';

const fam = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4);
function sel(saddr: string, splen: number, daddr: string, dplen: number): XfrmSelector {
  return { family: fam(daddr), saddr, daddr, splen, dplen, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 };
}
function sa(saddr: string, daddr: string, spi: number, reqid: number): AnyObject {
  const s: XfrmSa = {
    vrf: 0, daddr, saddr, spi, proto: 50, family: fam(daddr), mode: 'tunnel', reqid, flags: 0, replayWindow: 32, esn: false,
    selector: sel(fam(daddr) === 4 ? '0.0.0.0' : '::', 0, fam(daddr) === 4 ? '0.0.0.0' : '::', 0), ifId: 0,
    lifetime: { softBytes: INF, hardBytes: INF, softPackets: INF, hardPackets: INF, softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
    aead: { name: 'rfc4106(gcm(aes))', key: KEY, icvBits: 128 },
  };
  return { kind: 'sa', obj: s };
}
function tmpl(saddr: string, daddr: string, reqid: number): XfrmTemplate {
  return { family: fam(daddr), daddr, saddr, spi: 0, proto: 50, mode: 'tunnel', reqid, optional: false, share: 0, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff };
}
let polIndex = 1;
function pol(selector: XfrmSelector, t: XfrmTemplate): AnyObject {
  const p: XfrmPolicy = { vrf: 0, index: (polIndex += 8), dir: 'out', priority: 1000, action: 'allow', flags: 0, selector, ifId: 0, tmpls: [t] };
  return { kind: 'policy', obj: p };
}

function objects(): AnyObject[] {
  const via = (dst: string, plen: number): AnyObject => ({ kind: 'route', obj: dst.includes(':')
    ? route6(dst, plen, '2001:db8:2::1', { nexthops: [{ gw: '2001:db8:2::1', ifindex: 3, weight: 1, flags: 0 }] })
    : route4(dst, plen, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] }) });
  return [...worldObjects(), via('10.96.0.0', 16), via('10.95.0.0', 16), via('2001:db8:96::', 48),
    pol(sel('10.0.1.0', 24, '10.96.0.0', 16), tmpl(LOCAL, FARPEER, 51)), sa(LOCAL, FARPEER, 0x7001, 51), // IPv4 in IPv4
    pol(sel('2001:db8:1::', 64, '2001:db8:96::', 48), tmpl(LOCAL, FARPEER, 51)), // IPv6 in IPv4
    pol(sel('10.0.1.0', 24, '10.95.0.0', 16), tmpl(LOCAL6, FARPEER6, 52)), sa(LOCAL6, FARPEER6, 0x7002, 52), // IPv4 in IPv6
  ];
}

interface W { io: MemIo; g: Graph; run(frames: Uint8Array[]): void }

function world(fragment: 'after-encrypt' | 'before-encrypt'): W {
  const sab = new SharedArrayBuffer(computeLayout(SMALL_CONFIG).totalSize);
  const w = ShmWriter.create(sab, SMALL_CONFIG);
  for (const o of objects()) w.upsert(o);
  w.setPorts(PORT_NAMES);
  const io = new MemIo({ buffers: 4096, ports: 4 });
  const g = new Graph({ io, shm: ShmReader.attach(sab), ports: 4, ipsec: true, ipsecFragment: fragment });
  const v = new Vector();
  return {
    io, g,
    // all frames (from the LAN, port 0) in ONE vector, as after a stall of the poll loop
    run: (frames) => {
      assert.ok(frames.length <= 256);
      for (const f of frames) assert.ok(io.inject(v, 0, f), 'pool exhausted');
      g.process(v);
    },
  };
}

/** One packet of the input: IPv4 ID (IPv6: flow label) and the byte range of the original datagram it carries. */
interface In { id: number; lo: number; hi: number; frame: Uint8Array }

/**
 * The input: n times [the first fragment of a 2-fragment UDP datagram (1268 bytes: its ESP packet does
 * not fit 1280), the second fragment (548 bytes: fits), a small unfragmented datagram]; IPv4 to dst4.
 */
function input4(dst: string, n: number): In[] {
  const out: In[] = [];
  const first = 1248, second = 528; // payload bytes of the two fragments (first: a multiple of 8)
  for (let k = 0; k < n; k++) {
    const id = 0x100 + k, data = Array.from({ length: first + second - 8 }, (_, j) => (j + k) & 255);
    const dgram = udp(1000 + k, 2000, data);
    out.push({ id, lo: 0, hi: first, frame: eth(PORT_MACS[0], HOST5, 0x0800, ipv4({ dst, id, mf: true, payload: dgram.slice(0, first) })) });
    out.push({ id, lo: first, hi: first + second, frame: eth(PORT_MACS[0], HOST5, 0x0800, ipv4({ dst, id, fragOff: first / 8, payload: dgram.slice(first) })) });
    const sid = 0x4000 + k;
    out.push({ id: sid, lo: 0, hi: 28, frame: eth(PORT_MACS[0], HOST5, 0x0800, ipv4({ dst, id: sid, payload: udp(3000 + k, 2000, [k & 255]) })) });
  }
  return out;
}

/** IPv6: n times [a 1240-byte datagram (its ESP packet does not fit 1280), a small one]; flow label = id. */
function input6(dst: string, n: number): In[] {
  const out: In[] = [];
  for (let k = 0; k < n; k++) {
    const big = 0x100 + k, small = 0x4000 + k;
    out.push({ id: big, lo: 0, hi: 1200, frame: eth(PORT_MACS[0], HOST6, 0x86dd, ipv6({ dst, flow: big, payload: udp(1000 + k, 2000, new Array(1192).fill(k & 255)) })) });
    out.push({ id: small, lo: 0, hi: 9, frame: eth(PORT_MACS[0], HOST6, 0x86dd, ipv6({ dst, flow: small, payload: udp(3000 + k, 2000, [k & 255]) })) });
  }
  return out;
}

/** Opens an rfc4106(gcm(aes)) ESP packet (SPI .. ICV) with node:crypto. */
function espOpen(esp: Buffer): { spi: number; sn: number; inner: Buffer } {
  const iv = esp.subarray(8, 16), ct = esp.subarray(16, esp.length - 16), tag = esp.subarray(esp.length - 16);
  const d = nodeCrypto.createDecipheriv('aes-128-gcm', Buffer.from(KEY.slice(0, 32), 'hex'), Buffer.concat([Buffer.from(KEY.slice(32), 'hex'), iv]));
  d.setAAD(esp.subarray(0, 8));
  d.setAuthTag(tag);
  const plain = Buffer.concat([d.update(ct), d.final()]);
  const pad = plain[plain.length - 2];
  return { spi: esp.readUInt32BE(0), sn: esp.readUInt32BE(4), inner: plain.subarray(0, plain.length - 2 - pad) };
}

/**
 * The ESP packets of the frames sent on a port, in the order they left (a fragmented one at its first
 * fragment); asserts that the fragments of each ESP packet left one after the other.
 */
function espStream(frames: Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  let cur: { key: string; parts: { off: number; mf: boolean; data: Buffer }[] } | null = null;
  const close = () => {
    if (cur === null) return;
    const parts = cur.parts.sort((a, b) => a.off - b.off);
    let at = 0;
    for (const p of parts) { assert.strictEqual(p.off, at, `fragments of ${cur.key} contiguous`); at += p.data.length; }
    assert.ok(!parts[parts.length - 1].mf && parts.slice(0, -1).every((p) => p.mf), `fragments of ${cur.key}: MF on all but the last`);
    out.push(Buffer.concat(parts.map((p) => p.data)));
    cur = null;
  };
  const seen = new Set<string>();
  for (const f of frames) {
    const b = Buffer.from(f), ip = b.subarray(14);
    let key: string | null = null, off = 0, mf = false, data: Buffer;
    if ((ip[0] >>> 4) === 4) {
      const hl = (ip[0] & 15) * 4, tot = ip.readUInt16BE(2), fw = ip.readUInt16BE(6);
      assert.strictEqual(ip[9], 50, 'ESP');
      data = ip.subarray(hl, tot);
      if ((fw & 0x3fff) !== 0) { key = `id ${ip.readUInt16BE(4)}`; off = (fw & 0x1fff) * 8; mf = (fw & 0x2000) !== 0; }
    } else if (ip[6] === 44) {
      assert.strictEqual(ip[40], 50, 'fragment of ESP');
      const fo = ip.readUInt16BE(42);
      key = `ident ${ip.readUInt32BE(44)}`; off = fo & 0xfff8; mf = (fo & 1) !== 0;
      data = ip.subarray(48, 40 + ip.readUInt16BE(4));
    } else {
      assert.strictEqual(ip[6], 50, 'ESP');
      data = ip.subarray(40, 40 + ip.readUInt16BE(4));
    }
    if (cur !== null && cur.key !== key) close();
    if (key === null) { out.push(Buffer.from(data)); continue; }
    if (cur === null) {
      assert.ok(!seen.has(key), `fragments of ESP packet ${key} separated by other packets`);
      seen.add(key);
      cur = { key, parts: [] };
    }
    cur.parts.push({ off, mf, data: Buffer.from(data) });
  }
  close();
  return out;
}

/**
 * Opens the ESP stream of eth2 and checks it against the input: sequence numbers 1, 2, 3 ... in the
 * order the packets left, and the inner packets (or, before-encrypt, their fragments) in input order.
 */
function checkOrder(frames: Uint8Array[], input: In[], spi: number): void {
  const esps = espStream(frames);
  const order: number[] = [];
  esps.forEach((e, j) => {
    const o = espOpen(e);
    assert.strictEqual(o.spi, spi);
    assert.strictEqual(o.sn, j + 1, `ESP packet ${j} (in the order sent) has sequence number ${o.sn}`);
    const ip = o.inner;
    let id: number, lo: number;
    if ((ip[0] >>> 4) === 4) { id = ip.readUInt16BE(4); lo = (ip.readUInt16BE(6) & 0x1fff) * 8; } else { id = ip.readUInt32BE(0) & 0xfffff; lo = 0; }
    const k = input.findIndex((x) => x.id === id && x.lo <= lo && lo < x.hi);
    assert.ok(k >= 0, `inner packet id ${id} offset ${lo} is one of the input`);
    order.push(k);
  });
  // every input packet, in order (before-encrypt: a fragmented one is several consecutive ESP packets)
  const dedup = order.filter((k, j) => j === 0 || order[j - 1] !== k);
  assert.deepStrictEqual(dedup, input.map((_, k) => k), `inner packets leave in input order (got input indexes ${order.join(' ')})`);
}

describe('fast path: packet order kept when some packets of a vector are fragmented', () => {
  let X: W | null = null;
  afterEach(() => {
    if (X !== null) {
      assert.strictEqual(X.io.inFlight(), 0, 'buffers leaked');
      X.g.close();
      X = null;
    }
  });

  it('plain forwarding: big (fragmented by ipv4-rewrite) and small packets leave in input order', () => {
    X = world('after-encrypt');
    const input: Uint8Array[] = [];
    for (let k = 0; k < 80; k++) {
      input.push(eth(PORT_MACS[0], HOST5, 0x0800, ipv4({ dst: '198.18.5.5', id: 0x100 + k, payload: udp(1, 2, new Array(1400).fill(k)) })));
      input.push(eth(PORT_MACS[0], HOST5, 0x0800, ipv4({ dst: '198.18.5.5', id: 0x4000 + k, payload: udp(1, 2, [k]) })));
    }
    X.run(input);
    const ids = X.io.sent[2].map((f) => Buffer.from(f).readUInt16BE(18));
    const want: number[] = [];
    for (let k = 0; k < 80; k++) want.push(0x100 + k, 0x100 + k, 0x4000 + k);
    assert.deepStrictEqual(ids, want, 'IPv4 IDs on eth2, in order: both fragments of each big packet, then the small one');
  });

  describe('ESP (GCM), host fragments and small packets interleaved in one vector', function () {
    before(function () { if (!nativeCrypto.available()) this.skip(); });

    it('after-encrypt, IPv4 outer: each too-big ESP packet is fragmented in its place; sequence numbers in order', () => {
      X = world('after-encrypt');
      const input = input4('10.96.1.1', 80); // 240 packets
      X.run(input.map((x) => x.frame));
      assert.strictEqual(X.io.sent[2].length, 80 * 4, 'the big fragment: 2 ESP fragments; the 2nd fragment and the small one: 1 each');
      checkOrder(X.io.sent[2], input, 0x7001);
    });

    it('after-encrypt, IPv6 outer: each too-big ESP packet is cut by ipv6-fragment in its place', () => {
      X = world('after-encrypt');
      const input = input4('10.95.1.1', 80);
      X.run(input.map((x) => x.frame));
      assert.strictEqual(X.io.sent[2].length, 80 * 4);
      checkOrder(X.io.sent[2], input, 0x7002);
    });

    it('after-encrypt, IPv6 inner packets too big for the tunnel and small ones: order kept', () => {
      X = world('after-encrypt');
      const input = input6('2001:db8:96::1', 120);
      X.run(input.map((x) => x.frame));
      assert.strictEqual(X.io.sent[2].length, 120 * 3);
      checkOrder(X.io.sent[2], input, 0x7001);
    });

    it('before-encrypt: the inner fragments of a too-big packet are encrypted and sent in its place; sequence numbers in order', () => {
      X = world('before-encrypt');
      const input = input4('10.96.1.1', 80);
      X.run(input.map((x) => x.frame));
      assert.strictEqual(X.io.sent[2].length, 80 * 4, 'the big fragment: 2 ESP packets (inner fragments); the others: 1 each');
      checkOrder(X.io.sent[2], input, 0x7001);
    });
  });
});
