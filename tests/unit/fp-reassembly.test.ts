import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { MemIo } from '../../fastpath/mem-io';
import { GW3, PORT_MACS, assertIpv4Checksum, hex, mac, makeWorld, rng, udp, udp4Frame, type World } from './fp-helpers';
import {
  bytes, frag4, frag6, frags4, frags6, reasonName, shuffle, v4Harness, v6Harness, whole4, whole6, type Dgram4, type Dgram6, type Frame,
} from './fp-reasm-helpers';

describe('fast path: IPv4 reassembly (ipv4-reassembly)', () => {
  let W: World;
  afterEach(() => {
    assert.strictEqual(W.io.doubleFrees, 0, 'double frees');
    assert.strictEqual(W.io.badIndex, 0);
    assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
  });

  const dg = (n: number, extra: Partial<Dgram4> = {}): Dgram4 => ({ dst: '10.0.1.254', src: '10.0.2.9', proto: 50, id: 0x4242, payload: bytes(n, n), ...extra });

  it('a 1500-byte datagram in order (3 fragments): one complete frame, byte-identical to the unfragmented one, new buffer', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const d = dg(1480);
    const fr = frags4(d, 512);
    assert.strictEqual(fr.length, 3);
    const out = H.feed(fr.slice(0, 2));
    assert.strictEqual(out.length, 0);
    assert.strictEqual(H.node.table.used, 1);
    assert.strictEqual(W.io.inFlight(), 1, 'one buffer per datagram in progress (fragments freed once copied)');
    const out2 = H.feed(fr.slice(2));
    assert.strictEqual(out2.length, 1);
    assert.strictEqual(hex(out2[0].frame), hex(whole4(d)));
    assert.strictEqual(out2[0].frame.length, 1514);
    assertIpv4Checksum(out2[0].frame);
    assert.strictEqual(out2[0].port, 0);
    assert.strictEqual(H.node.table.used, 0);
    assert.strictEqual(H.node.table.completed, 1);
    const drops = Object.values(H.drops()).reduce((a, b) => a + b, 0);
    assert.strictEqual(drops, 0);
  });

  it('out of order, interleaved datagrams in the same vectors (random sizes and permutations): every one reassembled exactly', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const rnd = rng(7);
    const dgs: Dgram4[] = [];
    let frames: Frame[] = [];
    for (let k = 0; k < 200; k++) {
      const d = dg(9 + rnd(1880), { id: k, src: `10.0.2.${1 + (k % 7)}`, port: k % 2, tos: (k % 3) * 4, df: k % 5 === 0 });
      dgs.push(d);
      const min = Math.ceil(d.payload.length / 64 / 8) * 8; // at most 64 fragments
      frames.push(...shuffle(frags4(d, Math.max(min, 8 * (1 + rnd(100)))), rnd));
    }
    // interleave: a random permutation keeps each datagram's fragments in random relative order
    frames = shuffle(frames, rnd);
    const out = H.feed(frames);
    assert.strictEqual(out.length, dgs.length);
    const byKey = new Map(out.map((o) => [hex(o.frame.subarray(14 + 4, 14 + 6)) + hex(o.frame.subarray(14 + 12, 14 + 16)), o]));
    for (const [k, d] of dgs.entries()) {
      const want = whole4(d);
      const got = byKey.get(hex(want.subarray(18, 20)) + hex(want.subarray(26, 30)));
      assert.ok(got, `datagram ${k}`);
      assert.strictEqual(hex(got.frame), hex(want), `datagram ${k}`);
      assert.strictEqual(got.port, d.port);
    }
    assert.strictEqual(H.node.table.used, 0);
  });

  it('duplicates (first, middle and last fragment sent twice) are tolerated: one datagram, no drop counted', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const d = dg(1000);
    const fr = frags4(d, 256);
    const out = H.feed([fr[0], fr[0], fr[2], fr[1], fr[2], fr[3]]);
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole4(d)));
    assert.strictEqual(H.node.table.duplicates, 2);
    assert.strictEqual(Object.values(H.drops()).reduce((a, b) => a + b, 0), 0);
    // a duplicate after completion starts a new datagram that can only time out
    H.feed([fr[1]]);
    assert.strictEqual(H.node.table.used, 1);
    H.advance(2001);
    assert.strictEqual(H.drops()[reasonName('reasm-timeout')], 1);
  });

  it('overlapping fragments: the whole datagram is dropped (reasm-overlap), later fragments too, until the timeout', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const d = dg(64);
    // [0,24) [16,40): overlap
    const out = H.feed([frag4(d, 0, 24), frag4(d, 16, 24, true)]);
    assert.strictEqual(out.length, 0);
    assert.strictEqual(H.drops()[reasonName('reasm-overlap')], 2);
    // the rest of the datagram (which would complete it) is dropped with the same reason
    const out2 = H.feed([frag4(d, 24, 40), frag4(d, 40, 24)]);
    assert.strictEqual(out2.length, 0);
    assert.strictEqual(H.drops()[reasonName('reasm-overlap')], 4);
    // a fragment inside a received one, and one covering two, are overlaps too
    const d2 = dg(64, { id: 2 });
    H.feed([frag4(d2, 0, 32), frag4(d2, 8, 8, true)]);
    const d3 = dg(64, { id: 3 });
    H.feed([frag4(d3, 8, 8, true), frag4(d3, 24, 8, true), frag4(d3, 0, 40, true)]);
    assert.strictEqual(H.drops()[reasonName('reasm-overlap')], 4 + 2 + 3);
    // after the timeout the same key reassembles again
    H.advance(2000);
    assert.strictEqual(H.node.table.used, 0);
    const out3 = H.feed(frags4(d, 16));
    assert.strictEqual(out3.length, 1);
    assert.strictEqual(hex(out3[0].frame), hex(whole4(d)));
    if (reasonName('reasm-timeout') !== 'frag-error') assert.strictEqual(H.drops()['reasm-timeout'], 0, 'dead datagrams are not counted again');
  });

  it('a missing fragment: nothing is delivered, the datagram times out after 2 s (reasm-timeout counts its fragments)', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const d = dg(1480), d2 = dg(800, { id: 77 });
    const fr = frags4(d, 400);
    H.feed([fr[0], fr[1], fr[3]]);
    H.advance(1000);
    H.feed([frags4(d2, 400)[0]]);
    H.advance(999);
    assert.strictEqual(H.node.table.used, 2, 'not expired before 2000 ms');
    assert.strictEqual(W.io.inFlight(), 2);
    H.advance(1);
    assert.strictEqual(H.node.table.used, 1, 'the first expired, the younger one not');
    assert.strictEqual(H.drops()[reasonName('reasm-timeout')], 3);
    assert.strictEqual(H.node.table.timedOut, 1);
    // the late fragment starts a new datagram (that times out too)
    H.feed([fr[2]]);
    H.advance(2000);
    assert.strictEqual(H.node.table.used, 0);
    assert.strictEqual(H.drops()[reasonName('reasm-timeout')], 5);
  });

  it('default clock: the worker heartbeat field (Graph.heartbeat), read once per vector', () => {
    W = makeWorld();
    const H = v4Harness(W, { now: undefined });
    assert.strictEqual(H.node.table.clock, null);
    W.g.heartbeat(1.7e12);
    H.feed([frag4(dg(64), 0, 32)]);
    W.g.heartbeat(1.7e12 + 1999);
    H.node.tick();
    assert.strictEqual(H.node.table.used, 1);
    W.g.heartbeat(1.7e12 + 2000);
    H.node.tick();
    H.flush();
    assert.strictEqual(H.node.table.used, 0);
    assert.strictEqual(H.node.table.timedOut, 1);
  });

  it('too big for one buffer: dropped (reasm-too-big) at the fragment that passes the limit, with the earlier ones and the later ones', () => {
    W = makeWorld(); // MemIo buffers: 2048 - 128 headroom = 1920 bytes
    const H = v4Harness(W);
    const max = W.io.bufSize - 34;
    assert.strictEqual(H.node.table.maxPayload, max);
    const ok = dg(max, { id: 1 });
    const out = H.feed(shuffle(frags4(ok, 600), rng(3)));
    assert.strictEqual(out.length, 1, 'exactly one buffer: fits');
    assert.strictEqual(out[0].frame.length, W.io.bufSize);
    assert.strictEqual(hex(out[0].frame), hex(whole4(ok)));
    const big = dg(max + 1, { id: 2 });
    const fr = frags4(big, 600);
    assert.strictEqual(fr.length, 4);
    assert.strictEqual(H.feed([fr[0], fr[1], fr[3], fr[2]]).length, 0);
    assert.strictEqual(H.drops()[reasonName('reasm-too-big')], 4);
    // with IP options in the first fragment, the header counts too (checked at completion)
    const opt = [0x94, 4, 0, 0]; // router alert
    const fitsOpt = dg(max - 4, { id: 3, options: opt });
    const out4 = H.feed(frags4(fitsOpt, 600));
    assert.strictEqual(out4.length, 1);
    assert.strictEqual(hex(out4[0].frame), hex(whole4(fitsOpt)));
    H.expectDrops('reasm-too-big', 4, () => assert.strictEqual(H.feed(frags4(dg(max - 3, { id: 4, options: opt }), 600)).length, 0));
    // beyond 65535 (total length) is too big whatever the buffers: with jumbo buffers too
    const W2 = makeWorld({ io: new MemIo({ buffers: 256, bufSize: 70000, ports: 4 }) });
    const H2 = v4Harness(W2);
    assert.strictEqual(H2.node.table.maxPayload, 65515);
    H2.feed([frag4(dg(65536 - 8), 65528 - 8, 8, true)]);
    assert.strictEqual(H2.drops()[reasonName('reasm-too-big')], 1);
    H2.advance(3000);
    assert.strictEqual(W2.io.inFlight(), 0);
  });

  it('an 8000-byte datagram with jumbo buffers (10 KiB), and fragments produced by ipv4-fragment reassemble to the forwarded packet', () => {
    W = makeWorld({ io: new MemIo({ buffers: 4096, bufSize: 10240, ports: 4 }) });
    const H = v4Harness(W);
    const d = dg(8000 - 20);
    const out = H.feed(shuffle(frags4(d, 1480), rng(5)));
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole4(d)));
    // ipv4-fragment (MTU 1280 on eth2) then reassembly
    const f = udp4Frame(0, '198.18.1.1', { id: 0xbeef }, 5555, 6666, bytes(6000 - 28));
    W.one(0, f);
    const sent = W.io.sent[2];
    assert.strictEqual(sent.length, 5);
    const out2 = H.feed(sent.map((frame) => ({ port: 2, frame })));
    assert.strictEqual(out2.length, 1);
    const g = out2[0].frame;
    assertIpv4Checksum(g);
    assert.strictEqual(hex(g.subarray(0, 6)), hex(mac(GW3)));
    assert.strictEqual(hex(g.subarray(6, 12)), hex(mac(PORT_MACS[2])));
    assert.strictEqual(g[14 + 8], f[14 + 8] - 1, 'TTL - 1 (forwarded)');
    // everything but TTL and checksum equals the original
    const a = Array.from(g.subarray(14)), b = Array.from(f.subarray(14));
    a[8] = b[8] = 0; a[10] = b[10] = 0; a[11] = b[11] = 0;
    assert.strictEqual(hex(a), hex(b));
  });

  it('table full: the oldest datagram is evicted (reasm-table-full counts its fragments), the others complete', () => {
    W = makeWorld();
    const H = v4Harness(W, { contexts: 4 });
    const dgs = [0, 1, 2, 3, 4].map((k) => dg(100, { id: 100 + k }));
    for (const d of dgs) { H.feed([frag4(d, 0, 48)]); H.now += 1; }
    assert.strictEqual(H.node.table.used, 4);
    assert.strictEqual(H.node.table.evicted, 1);
    assert.strictEqual(H.drops()[reasonName('reasm-table-full')], 1);
    assert.strictEqual(W.io.inFlight(), 4);
    // the 4 datagrams left complete; dgs[0]'s last fragment starts a new datagram (its first was evicted)
    const out = H.feed([...dgs.slice(1), dgs[0]].map((d) => frag4(d, 48, 52)));
    assert.strictEqual(out.length, 4);
    for (const o of out) assert.strictEqual(hex(o.frame), hex(whole4(dgs[((o.frame[18] << 8) | o.frame[19]) - 100])));
    assert.deepStrictEqual(out.map((o) => (o.frame[18] << 8) | o.frame[19]), [101, 102, 103, 104]);
    assert.strictEqual(H.node.table.used, 1);
    assert.strictEqual(H.drops()[reasonName('reasm-table-full')], 1);
    H.advance(5000);
    assert.strictEqual(H.node.table.used, 0);
    assert.strictEqual(H.node.table.timedOut, 1);
  });

  it('at most 64 fragments per datagram: 64 reassemble, 65 are dropped (reasm-too-many-frags)', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const d64 = dg(64 * 8, { id: 1 });
    const out = H.feed(shuffle(frags4(d64, 8), rng(9)));
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole4(d64)));
    const d65 = dg(65 * 8, { id: 2 });
    assert.strictEqual(H.feed(frags4(d65, 8)).length, 0);
    assert.strictEqual(H.drops()[reasonName('reasm-too-many-frags')], 65);
    H.advance(2000);
  });

  it('malformed fragments are dropped (frag-error): non-last not a multiple of 8, empty, conflicting ends; non-fragments pass unchanged', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const d = dg(100);
    H.feed([frag4(d, 0, 12, true)]); // MF with 12 bytes
    assert.strictEqual(H.drops()['frag-error'], 1);
    H.feed([frag4(d, 8, 0, true)]); // empty
    assert.strictEqual(H.drops()['frag-error'], 2);
    // two different last fragments
    const d2 = dg(100, { id: 9 });
    H.feed([frag4(d2, 0, 16), frag4(d2, 32, 8, false), frag4(d2, 48, 8, false)]);
    assert.strictEqual(H.drops()['frag-error'], 2 + 3);
    // data beyond the end of the last fragment
    const d3 = dg(100, { id: 10 });
    H.feed([frag4(d3, 32, 8), frag4(d3, 8, 8, false)]);
    assert.strictEqual(H.drops()['frag-error'], 5 + 2);
    const plain = whole4(dg(40, { id: 11 }));
    const out = H.feed([{ port: 1, frame: plain, aux: 7 }]);
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(plain));
    assert.strictEqual(out[0].aux, 7);
    assert.strictEqual(out[0].port, 1);
    H.advance(2000);
  });

  it('keys: protocol, addresses and VRF separate datagrams with the same id; first fragment with options; DF kept; ECN CE', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const a = dg(64, { proto: 50 }), b = dg(64, { proto: 17, payload: bytes(64, 99) }), c = dg(64, { src: '10.0.2.10', payload: bytes(64, 98) });
    const out = H.feed([frag4(a, 0, 32), frag4(b, 0, 32), frag4(c, 0, 32), frag4(a, 32, 32), frag4(b, 32, 32), frag4(c, 32, 32)]);
    assert.strictEqual(out.length, 3);
    assert.deepStrictEqual(out.map((o) => hex(o.frame)), [whole4(a), whole4(b), whole4(c)].map(hex));
    // the same datagram's fragments received in two VRFs do not meet
    W.g.ctx.portVrf[1] = 7;
    const v = dg(64, { id: 0x77 });
    assert.strictEqual(H.feed([frag4(v, 0, 32), { ...frag4(v, 32, 32), port: 1 }]).length, 0);
    assert.strictEqual(H.node.table.used, 2);
    assert.strictEqual(H.feed([{ ...frag4(v, 0, 32), port: 1 }])[0].port, 1);
    assert.strictEqual(H.feed([frag4(v, 32, 32)])[0].port, 0);
    // options in the first fragment only (not copied), DF set, ECT(0) with one CE fragment
    const opts = [0x07, 7, 4, 0, 0, 0, 0, 0]; // record route + EOL padding
    const o = dg(200, { id: 5, options: opts, df: true, tos: 0x02 });
    const fr = [frag4(o, 0, 96), frag4(o, 96, 64, undefined, { tos: 0x03 }), frag4(o, 160, 40)];
    const out2 = H.feed([fr[2], fr[1], fr[0]]);
    assert.strictEqual(out2.length, 1);
    const want = whole4({ ...o, tos: 0x03 });
    assert.strictEqual(hex(out2[0].frame), hex(want));
    assert.strictEqual(out2[0].frame[14] & 15, 7);
  });

  it('more outputs than a vector holds: the next node is run early, nothing lost', () => {
    W = makeWorld();
    const H = v4Harness(W);
    const frames: Frame[] = [];
    for (let k = 0; k < 700; k++) {
      const d = dg(16, { id: k });
      frames.push(k % 2 ? { port: 0, frame: whole4(d) } : frag4(d, 8, 8), ...(k % 2 ? [] : [frag4(d, 0, 8)]));
    }
    const out = H.feed(frames);
    assert.strictEqual(out.length, 700);
    assert.strictEqual(H.node.table.completed, 350);
  });

  it('no buffer for a new datagram: dropped (no-mbuf), nothing leaks', () => {
    W = makeWorld({ io: new MemIo({ buffers: 3, ports: 4 }) });
    const H = v4Harness(W);
    const d = dg(64), d2 = dg(64, { id: 3 });
    // 2 fragments injected = 2 buffers; the context of d takes the third; d2 finds none
    H.feed([frag4(d, 0, 32), frag4(d2, 0, 32)]);
    assert.strictEqual(H.drops()['no-mbuf'], 1);
    const out = H.feed([frag4(d, 32, 32)]);
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole4(d)));
  });

  it('fuzz: random fragment sets (gaps, overlaps, duplicates, bad lengths) never throw nor leak', () => {
    W = makeWorld();
    const H = v4Harness(W, { contexts: 16 });
    const rnd = rng(1234);
    for (let round = 0; round < 50; round++) {
      const frames: Frame[] = [];
      for (let k = 0; k < 40; k++) {
        const d = dg(8 + rnd(1500), { id: rnd(8) });
        const start = rnd(200) * 8;
        frames.push(frag4(d, Math.min(start, d.payload.length), rnd(3) === 0 ? rnd(600) : 8 * rnd(80), rnd(2) === 0));
      }
      H.feed(frames);
      H.advance(rnd(700));
    }
    H.advance(3000);
    assert.strictEqual(H.node.table.used, 0);
  });
});

describe('fast path: IPv6 reassembly (ipv6-reassembly)', () => {
  let W: World;
  afterEach(() => {
    assert.strictEqual(W.io.doubleFrees, 0, 'double frees');
    assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
  });

  const dg = (n: number, extra: Partial<Dgram6> = {}): Dgram6 => ({ dst: '2001:db8:1::fe', src: '2001:db8:2::9', nh: 50, id: 0xdeadbeef, payload: bytes(n, n), ...extra });

  it('a 1500-byte packet in order and out of order: byte-identical to the unfragmented packet', () => {
    W = makeWorld();
    const H = v6Harness(W);
    const d = dg(1460);
    const out = H.feed(frags6(d, 512));
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole6(d)));
    const d2 = dg(1460, { id: 1, tc: 0x28, flow: 0x12345 });
    const out2 = H.feed(frags6(d2, 504).reverse());
    assert.strictEqual(hex(out2[0].frame), hex(whole6(d2)));
    assert.strictEqual(H.node.table.used, 0);
  });

  it('interleaved random datagrams, duplicates tolerated', () => {
    W = makeWorld();
    const H = v6Harness(W);
    const rnd = rng(77);
    const dgs: Dgram6[] = [];
    let frames: Frame[] = [];
    for (let k = 0; k < 150; k++) {
      const d = dg(200 + rnd(1660), { id: k * 0x01000193, src: `2001:db8:2::${(k % 5) + 1}`, port: k % 2 });
      dgs.push(d);
      const min = Math.ceil(d.payload.length / 64 / 8) * 8; // at most 64 fragments
      const fr = frags6(d, Math.max(min, 8 * (1 + rnd(24))));
      frames.push(...fr, fr[rnd(fr.length)]);
    }
    frames = shuffle(frames, rnd);
    const out = H.feed(frames);
    assert.strictEqual(out.length, dgs.length);
    const got = new Set(out.map((o) => hex(o.frame)));
    for (const d of dgs) assert.ok(got.has(hex(whole6(d))));
    assert.strictEqual(Object.values(H.drops(0)).reduce((a, b) => a + b, 0) + Object.values(H.drops(1)).reduce((a, b) => a + b, 0), 0);
    // duplicates that arrive after completion start new datagrams that time out
    H.advance(2000);
  });

  it('overlap, timeout, too big, too many fragments, table full: counted by reason', () => {
    W = makeWorld();
    const H = v6Harness(W, { contexts: 2 });
    const d = dg(64);
    H.expectDrops('reasm-overlap', 2, () => H.feed([frag6(d, 0, 24), frag6(d, 16, 16)]));
    H.expectDrops('reasm-overlap', 1, () => H.feed([frag6(d, 32, 32)]));
    H.advance(2000);
    H.feed([frag6(dg(64, { id: 2 }), 0, 16)]);
    H.expectDrops('reasm-timeout', 1, () => H.advance(2000));
    assert.strictEqual(H.node.table.timedOut, 1);
    const max = W.io.bufSize - 54;
    const ok = dg(max, { id: 3 });
    const out = H.feed(frags6(ok, 800));
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole6(ok)));
    H.expectDrops('reasm-too-big', 3, () => H.feed(frags6(dg(max + 1, { id: 4 }), 800)));
    H.advance(2000);
    H.expectDrops('reasm-too-many-frags', 65, () => H.feed(frags6(dg(65 * 8, { id: 5 }), 8)));
    H.advance(2000);
    H.expectDrops('reasm-table-full', 1, () => { for (let k = 0; k < 3; k++) H.feed([frag6(dg(64, { id: 10 + k }), 0, 32)]); });
    assert.strictEqual(H.node.table.evicted, 1);
    H.expectDrops('reasm-timeout', 2, () => H.advance(2000));
    assert.strictEqual(H.node.table.used, 0);
  });

  it('atomic fragment (offset 0, M clear): header removed in place; other extension headers -> exception ipv6-ext; no extension -> unchanged', () => {
    W = makeWorld();
    const H = v6Harness(W);
    const d = dg(100, { nh: 17 });
    const out = H.feed([frag6(d, 0, 100, false)]);
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole6(d)));
    assert.strictEqual(H.node.atomic, 1);
    // hop-by-hop then fragment: to Linux, unchanged
    const hbh = whole6({ ...d, nh: 0, payload: [44, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 1, ...udp(1, 2)] });
    assert.strictEqual(H.feed([{ port: 0, frame: hbh }]).length, 0);
    assert.strictEqual(W.io.dpvi[0].length, 1);
    assert.strictEqual(hex(W.io.dpvi[0][0]), hex(hbh));
    assert.strictEqual(W.g.portStats(0).exceptions['ipv6-ext'], 1);
    const plain = whole6(dg(30, { nh: 17 }));
    const out2 = H.feed([{ port: 0, frame: plain }]);
    assert.strictEqual(hex(out2[0].frame), hex(plain));
    // malformed: M set with a length not a multiple of 8; payload length < 8
    H.feed([frag6(dg(100, { id: 6 }), 0, 12, true)]);
    assert.strictEqual(H.drops()['frag-error'], 1);
    H.feed([{ port: 0, frame: whole6({ ...d, nh: 44, payload: [17, 0, 0] }) }]);
    assert.strictEqual(H.drops()['frag-error'], 2);
  });

  it('a 8000-byte packet with jumbo buffers', () => {
    W = makeWorld({ io: new MemIo({ buffers: 1024, bufSize: 10240, ports: 4 }) });
    const H = v6Harness(W);
    const d = dg(8000 - 40);
    const out = H.feed(shuffle(frags6(d, 1232), rng(2)));
    assert.strictEqual(out.length, 1);
    assert.strictEqual(hex(out[0].frame), hex(whole6(d)));
  });
});

describe('fast path: reassembly and IPv6 fragmentation allocate nothing per packet', function () {
  this.timeout(180000);
  it('1e6 fragments (in order, shuffled, duplicates, overlaps, timeouts, evictions, too big, malformed, atomic) and IPv6 fragmentation, 1 MB young generation -> no scavenge', () => {
    const child = path.join(__dirname, 'fp-reasm-alloc-child.js');
    const r = spawnSync(process.execPath, ['--min-semi-space-size=1', '--max-semi-space-size=1', child, '1000000'], { encoding: 'utf8', timeout: 120000 });
    assert.strictEqual(r.status, 0, `child: status ${r.status} signal ${r.signal}\n${r.stderr}`);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, r.stdout);
    const s = JSON.parse(line) as Record<string, number>;
    console.log(`      ${JSON.stringify(s)}`);
    for (const k of ['completed4', 'completed6', 'duplicates', 'timedOut', 'evicted', 'atomic', 'fragments6', 'drops']) assert.ok(s[k] > 0, `${k}: ${JSON.stringify(s)}`);
    assert.strictEqual(s.inFlight, 0);
    assert.ok(s.scavenges <= 2, `${s.scavenges} scavenges during 1e6 packets: something allocates per packet`);
  });
});
