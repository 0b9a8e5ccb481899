import * as assert from 'assert';
import { MemIo } from '../../fastpath/mem-io';
import { Ipv6FragmentNode } from '../../fastpath/nodes/ipv6-fragment';
import { Vector } from '../../fastpath/vector';
import { PEER_MAC, PORT_MACS, eth, hex, ipv6, makeWorld, rng, udp, type World } from './fp-helpers';
import { Sink, bytes, reasonName, v6Harness, whole6, type Dgram6 } from './fp-reasm-helpers';

interface Frag6 { unf: Uint8Array; nhPos: number; fnh: number; off: number; m: boolean; id: number; data: Uint8Array }

/**
 * Independent parser: the unfragmentable part (IPv6 header + hop-by-hop / routing chain and the
 * destination options before a routing header) must be followed by a Fragment header.
 */
function parseFrag6(f: Uint8Array, unfLen: number): Frag6 {
  assert.strictEqual((f[12] << 8) | f[13], 0x86dd);
  const ip = f.subarray(14);
  const pl = (ip[4] << 8) | ip[5];
  assert.strictEqual(f.length, 14 + 40 + pl, 'frame length = 14 + 40 + payload length');
  // position of the next-header byte that must say 44
  let nhPos = 6, p = 40;
  while (p < unfLen) { nhPos = p; p += (ip[p + 1] + 1) * 8; }
  assert.strictEqual(p, unfLen, 'unfragmentable part');
  assert.strictEqual(ip[nhPos], 44, 'next header 44 before the Fragment header');
  const fh = ip.subarray(unfLen, unfLen + 8);
  assert.strictEqual(fh[1], 0, 'reserved');
  assert.strictEqual(fh[3] & 6, 0, 'res bits');
  const ow = (fh[2] << 8) | fh[3];
  return {
    unf: ip.subarray(0, unfLen), nhPos, fnh: fh[0], off: ow & 0xfff8, m: (ow & 1) === 1,
    id: ((fh[4] << 24) | (fh[5] << 16) | (fh[6] << 8) | fh[7]) >>> 0, data: ip.subarray(unfLen + 8, 40 + pl),
  };
}

/** Checks the fragments of `orig` (a frame) independently: sizes, offsets, M, id, repeated headers; returns the id. */
function checkFrags(out: Uint8Array[], orig: Uint8Array, mtu: number, unfLen: number, fnh: number): number {
  const oip = orig.subarray(14);
  const total = 40 + ((oip[4] << 8) | oip[5]);
  const frs = out.map((f) => parseFrag6(f, unfLen));
  const id = frs[0].id;
  let at = 0;
  for (const [i, f] of frs.entries()) {
    assert.ok(out[i].length - 14 <= mtu, `fragment ${i}: ${out[i].length - 14} bytes > MTU ${mtu}`);
    assert.strictEqual(hex(out[i].subarray(0, 14)), hex(orig.subarray(0, 14)), 'Ethernet header copied');
    assert.strictEqual(f.id, id, 'same identification');
    assert.strictEqual(f.fnh, fnh, 'next header of the fragmentable part');
    assert.strictEqual(f.off, at, `fragment ${i} at ${f.off}, expected ${at}`);
    assert.strictEqual(f.off % 8, 0);
    assert.strictEqual(f.m, i < frs.length - 1, 'M on all but the last');
    if (f.m) {
      assert.strictEqual(f.data.length % 8, 0, 'non-last fragment: multiple of 8');
      // as large as the MTU allows (the node fills fragments)
      assert.ok(unfLen + 8 + f.data.length + 8 > mtu, 'fragment not filled');
    }
    assert.ok(f.data.length > 0);
    // the unfragmentable part is the original's except the payload length and the next-header byte
    const u = Array.from(f.unf), o = Array.from(oip.subarray(0, unfLen));
    u[4] = o[4]; u[5] = o[5]; u[f.nhPos] = o[f.nhPos];
    assert.strictEqual(hex(u), hex(o), 'unfragmentable part repeated');
    at += f.data.length;
  }
  assert.strictEqual(at, total - unfLen, 'fragments cover the fragmentable part');
  assert.strictEqual(hex(Buffer.concat(frs.map((f) => f.data))), hex(oip.subarray(unfLen, total)), 'data = the original fragmentable part');
  return id;
}

describe('fast path: IPv6 fragmentation (ipv6-fragment)', () => {
  let W: World;
  let node: Ipv6FragmentNode;
  afterEach(() => {
    assert.strictEqual(W.io.doubleFrees, 0);
    assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
  });

  function setup(io?: MemIo, idStart = 0x7ffffffe): void {
    W = makeWorld(io ? { io } : {});
    node = new Ipv6FragmentNode(W.g.ctx, idStart);
    node.tx = W.g.portTx;
    node.drop = W.g.drop;
  }

  /** Runs frames through ipv6-fragment towards `egress` with `mtu`; returns the frames sent on egress. */
  function frag(frames: Uint8Array[], egress: number, mtu: number, port = 0): Uint8Array[] {
    const q = node.input;
    const before = W.io.sent[egress].length;
    for (const f of frames) {
      if (q.n === 256) node.run();
      assert.ok(W.io.inject(q, port, f));
      q.aux[q.n - 1] = egress | (mtu << 16);
    }
    node.run();
    W.g.portTx.run();
    W.g.drop.run();
    return W.io.sent[egress].slice(before);
  }

  const esp6 = (n: number, extra: Partial<Dgram6> = {}): Dgram6 => ({ src: '2001:db8:1::fe', dst: '2001:db8:2::9', nh: 50, id: 0, payload: bytes(n, n), ...extra });

  it('a 1500-byte ESP packet over MTU 1280 and 1400: fragments checked independently, then reassembled by ipv6-reassembly byte for byte', () => {
    setup();
    for (const mtu of [1280, 1400]) {
      const d = esp6(1460);
      const f = whole6(d);
      const out = frag([f], 2, mtu);
      assert.strictEqual(out.length, 2);
      checkFrags(out, f, mtu, 40, 50);
      // sizes: first fragment full (multiple of 8), the rest in the second
      const first = ((mtu - 48) >> 3) << 3;
      assert.strictEqual(out[0].length, 14 + 48 + first);
      assert.strictEqual(out[1].length, 14 + 48 + 1460 - first);
      const H = v6Harness(W);
      const r = H.feed(out.reverse().map((frame) => ({ port: 0, frame })));
      assert.strictEqual(r.length, 1);
      assert.strictEqual(hex(r[0].frame), hex(f));
    }
    assert.strictEqual(node.fragments, 4);
    assert.strictEqual(W.g.portStats(2).txPackets, 4);
  });

  it('identification: a per-worker counter (wraps at 2^32), the same for all fragments of a packet', () => {
    setup(undefined, -2); // 0xfffffffe
    const out = frag([whole6(esp6(1800)), whole6(esp6(1800)), whole6(esp6(1800))], 2, 700);
    const ids = out.map((f) => parseFrag6(f, 40).id);
    assert.deepStrictEqual(ids, [0xfffffffe, 0xfffffffe, 0xfffffffe, 0xffffffff, 0xffffffff, 0xffffffff, 0, 0, 0]);
    // default start: random
    const a = new Ipv6FragmentNode(W.g.ctx), b = new Ipv6FragmentNode(W.g.ctx);
    const ida = (a as unknown as { nextId: Int32Array }).nextId[0], idb = (b as unknown as { nextId: Int32Array }).nextId[0];
    assert.ok(ida !== idb || ida !== 0);
  });

  it('every size from 1281 to 1600 and random sizes up to 9000 (jumbo buffers), MTUs 1280 .. 1500, mixed in vectors; all reassemble', () => {
    setup(new MemIo({ buffers: 8192, bufSize: 10240, ports: 4 }));
    const rnd = rng(21);
    const cases: { f: Uint8Array; mtu: number }[] = [];
    for (let tot = 1281; tot <= 1600; tot++) cases.push({ f: whole6(esp6(tot - 40, { payload: bytes(tot - 40, tot) })), mtu: 1280 });
    for (let i = 0; i < 300; i++) {
      const tot = 1281 + rnd(9000 - 1281);
      cases.push({ f: whole6(esp6(tot - 40, { payload: Array.from({ length: tot - 40 }, () => rnd(256)), nh: i % 2 ? 50 : 17 })), mtu: 1280 + rnd(221) });
    }
    const H = v6Harness(W);
    let nextId = 0x7ffffffe, fits = 0;
    for (const [k, { f, mtu }] of cases.entries()) {
      const out = frag([f], 1, mtu);
      if (f.length - 14 <= mtu) {
        fits++;
        assert.deepStrictEqual(out.map(hex), [hex(f)], 'fits: unchanged');
        continue;
      }
      const fnh = f[14 + 6];
      const id = checkFrags(out, f, mtu, 40, fnh);
      assert.strictEqual(id, nextId >>> 0);
      nextId++;
      const r = H.feed(out.map((frame) => ({ port: 1, frame })));
      assert.strictEqual(r.length, 1, `case ${k}`);
      assert.strictEqual(hex(r[0].frame), hex(f), `case ${k}`);
    }
    assert.ok(fits < 40, `${fits} packets fit`);
    // and many at once in the same vectors
    const frames = cases.slice(0, 200).map((c) => c.f);
    const out = frag(frames, 1, 1280);
    const r = H.feed(out.map((frame) => ({ port: 1, frame })));
    assert.strictEqual(r.length, 200);
    const want = new Set(frames.map(hex));
    for (const o of r) assert.ok(want.has(hex(o.frame)));
  });

  it('a packet that fits the MTU goes out unchanged (Ethernet padding trimmed)', () => {
    setup();
    const f = whole6(esp6(1000));
    const padded = Uint8Array.from([...f, 0, 0, 0, 0]);
    const out = frag([padded], 2, 1280);
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0]), hex(f));
    assert.strictEqual(node.fragments, 0);
  });

  it('extension headers: hop-by-hop, destination options and routing repeated in every fragment; destination options after routing are fragmented', () => {
    setup();
    const hbh = [60, 0, 1, 4, 0, 0, 0, 0];
    const dst1 = [43, 0, 1, 4, 0, 0, 0, 0];
    const rt = [60, 2, 4, 1, ...new Array(4).fill(0), ...new Array(16).fill(0x11)]; // type 4 (SRH-like), 24 bytes
    const dst2 = [17, 0, 1, 4, 0, 0, 0, 0];
    const data = bytes(1400, 3);
    const f = eth(PORT_MACS[0], PEER_MAC, 0x86dd, ipv6({ src: '2001:db8:1::fe', dst: '2001:db8:2::9', nh: 0, payload: [...hbh, ...dst1, ...rt, ...dst2, ...udp(1, 2, data)] }));
    const unf = 40 + 8 + 8 + 24;
    const out = frag([f], 2, 1280);
    assert.strictEqual(out.length, 2);
    checkFrags(out, f, 1280, unf, 60);
    // only a hop-by-hop header: the destination options header that follows is fragmentable
    const g = eth(PORT_MACS[0], PEER_MAC, 0x86dd, ipv6({ src: '2001:db8:1::fe', dst: '2001:db8:2::9', nh: 0, payload: [...hbh, ...dst2, ...udp(1, 2, data)] }));
    checkFrags(frag([g], 2, 1280), g, 1280, 48, 60);
  });

  it('errors: MTU too small -> frag-error, already a fragment -> frag-error, jumbogram / bad length -> frag-error, no buffer -> no-mbuf', () => {
    setup();
    const f = whole6(esp6(1460));
    assert.strictEqual(frag([f], 2, 40 + 8 + 7).length, 0);
    assert.strictEqual(W.g.portStats(0).drops['frag-error'], 1);
    assert.strictEqual(frag([f], 2, 40 + 8 + 8).length, 183, 'smallest workable MTU: 8 bytes per fragment');
    const fragged = eth(PORT_MACS[0], PEER_MAC, 0x86dd, ipv6({ src: '2001:db8:1::fe', dst: '2001:db8:2::9', nh: 44, payload: [50, 0, 0, 1, 0, 0, 0, 1, ...bytes(1452)] }));
    assert.strictEqual(frag([fragged], 2, 1280).length, 0);
    assert.strictEqual(W.g.portStats(0).drops['frag-error'], 2);
    const jumbo = whole6({ ...esp6(1460), payloadLength: 0 });
    const short = whole6({ ...esp6(1460), payloadLength: 1600 });
    assert.strictEqual(frag([jumbo, short], 2, 1280).length, 0);
    assert.strictEqual(W.g.portStats(0).drops['frag-error'], 4);
    // a routing header longer than the packet
    const bad = eth(PORT_MACS[0], PEER_MAC, 0x86dd, ipv6({ src: '2001:db8:1::fe', dst: '2001:db8:2::9', nh: 43, payload: [17, 200, 4, 0, ...bytes(1400)] }));
    assert.strictEqual(frag([bad], 2, 1280).length, 0);
    assert.strictEqual(W.g.portStats(0).drops['frag-error'], 5);
    // pool: 3 buffers, 1 for the packet, 2 left; 3 fragments needed
    W = makeWorld({ io: new MemIo({ buffers: 3, ports: 4 }) });
    node = new Ipv6FragmentNode(W.g.ctx);
    node.tx = W.g.portTx;
    node.drop = W.g.drop;
    assert.strictEqual(frag([whole6(esp6(1800))], 2, 700).length, 0);
    assert.strictEqual(W.g.portStats(0).drops['no-mbuf'], 1);
  });

  it('the sink / harness helpers do not leak (sanity)', () => {
    setup();
    const s = new Sink(W.io);
    const v = new Vector();
    W.io.inject(v, 0, whole6(esp6(10)));
    s.input.mbuf[0] = v.mbuf[0]; s.input.off[0] = v.off[0]; s.input.len[0] = v.len[0]; s.input.n = 1;
    s.run();
    assert.strictEqual(s.out.length, 1);
    assert.strictEqual(reasonName('no-mbuf'), 'no-mbuf');
  });
});
