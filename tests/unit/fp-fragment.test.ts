import * as assert from 'assert';
import { MemIo } from '../../fastpath/mem-io';
import { Vector } from '../../fastpath/vector';
import { GW3, PEER_MAC, PORT_MACS, assertIpv4Checksum, eth, hex, ip4, ipv4, mac, makeWorld, rng, udp, udp4Frame, type World } from './fp-helpers';

interface Frag { id: number; off: number; mf: boolean; df: boolean; hl: number; header: Uint8Array; payload: Uint8Array }

function parseFrag(f: Uint8Array): Frag {
  assert.strictEqual((f[12] << 8) | f[13], 0x0800);
  const ip = f.subarray(14);
  const hl = (ip[0] & 15) * 4;
  const tot = (ip[2] << 8) | ip[3];
  assert.strictEqual(f.length, 14 + tot, 'frame length = 14 + total length');
  const fw = (ip[6] << 8) | ip[7];
  return { id: (ip[4] << 8) | ip[5], off: (fw & 0x1fff) * 8, mf: (fw & 0x2000) !== 0, df: (fw & 0x4000) !== 0, hl, header: ip.subarray(0, hl), payload: ip.subarray(hl, tot) };
}

/** A tiny reassembler: fragments (any order) -> payload; checks coverage without holes or overlaps. */
function reassemble(frags: Frag[], base = 0): { payload: Uint8Array; lastMf: boolean } {
  const sorted = [...frags].sort((a, b) => a.off - b.off);
  let at = base;
  const parts: Uint8Array[] = [];
  for (const f of sorted) {
    assert.strictEqual(f.off, at, `fragment at ${f.off}, expected ${at} (hole or overlap)`);
    parts.push(f.payload);
    at += f.payload.length;
  }
  sorted.slice(0, -1).forEach((f) => assert.ok(f.mf, 'MF on every fragment but the last'));
  return { payload: Uint8Array.from(Buffer.concat(parts)), lastMf: sorted[sorted.length - 1].mf };
}

function checkFragments(out: Uint8Array[], orig: Uint8Array, mtu: number, egress: number, dstMac: string): void {
  const oip = orig.subarray(14);
  const ohl = (oip[0] & 15) * 4;
  const frags = out.map(parseFrag);
  for (const [i, f] of frags.entries()) {
    const fr = out[i];
    assert.ok(fr.length - 14 <= mtu, `fragment of ${fr.length - 14} bytes > MTU ${mtu}`);
    assert.strictEqual(f.off % 8, 0, 'offset multiple of 8');
    if (f.mf) assert.strictEqual(f.payload.length % 8, 0, 'non-last fragment payload multiple of 8');
    assert.ok(!f.df);
    assertIpv4Checksum(fr);
    assert.strictEqual(hex(fr.subarray(0, 6)), hex(mac(dstMac)));
    assert.strictEqual(hex(fr.subarray(6, 12)), hex(mac(PORT_MACS[egress])));
    assert.strictEqual(f.header[8], oip[8] - 1, 'TTL - 1');
    assert.strictEqual(f.id, (oip[4] << 8) | oip[5]);
    assert.strictEqual(hex(f.header.subarray(9, 10)), hex(oip.subarray(9, 10)), 'protocol');
    assert.strictEqual(hex(f.header.subarray(12, 20)), hex(oip.subarray(12, 20)), 'addresses');
    assert.strictEqual(f.header[1], oip[1], 'tos');
  }
  const { payload, lastMf } = reassemble(frags);
  assert.ok(!lastMf);
  assert.strictEqual(hex(payload), hex(oip.subarray(ohl, (oip[2] << 8) | oip[3])), 'reassembled payload = original payload');
}

describe('fast path: IPv4 fragmentation', () => {
  let W: World;
  afterEach(() => {
    assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    assert.strictEqual(W.io.doubleFrees, 0);
  });

  it('a 1500-byte packet over MTU 1280: fragments <= 1280, offsets multiple of 8, reassemble to the original', () => {
    W = makeWorld();
    const data = Array.from({ length: 1500 - 28 }, (_, i) => (i * 7 + 3) & 255);
    const f = udp4Frame(0, '198.18.1.1', { id: 0xbeef }, 5555, 6666, data);
    assert.strictEqual(f.length, 1514);
    W.one(0, f);
    assert.strictEqual(W.io.sent[2].length, 2);
    checkFragments(W.io.sent[2], f, 1280, 2, GW3);
    assert.strictEqual(W.g.portStats(0).forwarded, 1);
    assert.strictEqual(W.g.portStats(2).txPackets, 2);
    assert.strictEqual(W.g.ipv4Fragment.fragments, 2);
  });

  it('every size from 1281 to 1600 and random sizes up to 9000 (jumbo buffers), mixed in vectors', () => {
    W = makeWorld({ io: new MemIo({ buffers: 8192, bufSize: 10240, ports: 4 }) });
    const rnd = rng(11);
    const frames: { port: number; frame: Uint8Array }[] = [];
    for (let tot = 1281; tot <= 1600; tot++) frames.push({ port: 0, frame: udp4Frame(0, '198.18.0.9', { id: tot }, 1, 2, Array.from({ length: tot - 28 }, () => rnd(256))) });
    for (let i = 0; i < 300; i++) {
      const tot = 1281 + rnd(9000 - 1281);
      frames.push({ port: 1, frame: eth(PORT_MACS[1], PEER_MAC, 0x0800, ipv4({ dst: '198.19.0.9', src: '10.0.2.8', id: 10000 + i, proto: 6, payload: Array.from({ length: tot - 20 }, () => rnd(256)) })) });
    }
    W.run(frames);
    const byId = new Map<number, Uint8Array[]>();
    for (const fr of W.io.sent[2]) {
      const id = (fr[18] << 8) | fr[19];
      if (!byId.has(id)) byId.set(id, []);
      byId.get(id)!.push(fr);
    }
    assert.strictEqual(byId.size, frames.length);
    for (const { frame } of frames) {
      const id = (frame[18] << 8) | frame[19];
      checkFragments(byId.get(id)!, frame, 1280, 2, GW3);
    }
  });

  it('DF set: exception frag-needed with the original, unmodified frame', () => {
    W = makeWorld();
    const f = udp4Frame(0, '198.18.1.1', { df: true }, 1, 2, new Array(1500 - 28).fill(0x42));
    W.one(0, f);
    assert.strictEqual(W.io.sent[2].length, 0);
    assert.strictEqual(W.io.dpvi[0].length, 1);
    assert.strictEqual(hex(W.io.dpvi[0][0]), hex(f));
    assert.strictEqual(W.g.portStats(0).exceptions['frag-needed'], 1);
  });

  it('node level: options (only copied ones repeated, padded) and a fragment of a fragment (offset, MF kept)', () => {
    W = makeWorld();
    // record route (not copied) 7 bytes, NOP, loose source route (copied) 7 bytes, EOL -> 16 bytes
    const options = [0x07, 7, 4, 0, 0, 0, 0, 0x01, 0x83, 7, 4, ...ip4('10.9.9.9'), 0x00];
    const data = Array.from({ length: 1000 }, (_, i) => i & 255);
    const f = eth(PORT_MACS[0], PEER_MAC, 0x0800, ipv4({ dst: '198.18.1.1', options, mf: true, fragOff: 100, payload: udp(1, 2, data) }));
    const v = new Vector();
    assert.ok(W.io.inject(v, 0, f));
    // as ipv4-rewrite leaves it: into ipv4-fragment with aux = egress port | MTU << 16
    const node = W.g.ipv4Fragment, q = node.input;
    q.mbuf[0] = v.mbuf[0]; q.off[0] = v.off[0]; q.len[0] = v.len[0]; q.port[0] = 0; q.aux[0] = 2 | (300 << 16);
    q.n = 1;
    node.run();
    W.g.portTx.run();
    W.g.drop.run();
    const out = W.io.sent[2];
    assert.ok(out.length >= 4);
    const frags = out.map(parseFrag);
    const oip = f.subarray(14);
    for (const [i, fr] of frags.entries()) {
      assert.ok(out[i].length - 14 <= 300);
      assertIpv4Checksum(out[i]);
      if (i === 0) {
        assert.strictEqual(fr.hl, 36);
        assert.strictEqual(hex(fr.header.subarray(20)), hex(options));
      } else {
        assert.strictEqual(fr.hl, 28);
        assert.strictEqual(hex(fr.header.subarray(20)), hex([0x83, 7, 4, ...ip4('10.9.9.9'), 0]));
      }
      assert.ok(fr.mf, 'MF on all: the original had MF');
    }
    const { payload } = reassemble(frags, 800);
    assert.strictEqual(hex(payload), hex(oip.subarray(36)));
  });
});
