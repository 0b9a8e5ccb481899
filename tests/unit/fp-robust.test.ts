import * as assert from 'assert';
import type { PortStats } from '../../shared-mem/stats';
import { MemIo } from '../../fastpath/mem-io';
import {
  GW2, PEER_MAC, PORT_MACS, eth, hex, ip4, ipv4, ipv6, mac, makeWorld, rng, udp, udp4Frame, udp6Frame, type World,
} from './fp-helpers';

function total(W: World, f: (p: PortStats) => number): number {
  let s = 0;
  for (let p = 0; p < 4; p++) s += f(W.g.portStats(p));
  return s;
}

/** rx = tx + exceptions + drops (no fragmentation in these tests), no leak, no double free. */
function accounted(W: World, what: string): void {
  const rx = total(W, (p) => p.rxPackets);
  assert.strictEqual(W.g.ipv4Fragment.fragments, 0);
  const tx = total(W, (p) => p.txPackets);
  const exc = total(W, (p) => Object.values(p.exceptions).reduce((a, b) => a + b, 0));
  const drops = total(W, (p) => Object.values(p.drops).reduce((a, b) => a + b, 0));
  assert.strictEqual(rx, tx + exc + drops, `${what}: rx ${rx} != tx ${tx} + exceptions ${exc} + drops ${drops}`);
  assert.strictEqual(W.io.inFlight(), 0, `${what}: buffers leaked`);
  assert.strictEqual(W.io.doubleFrees + W.io.badIndex, 0, `${what}: bad frees`);
}

/** After abuse, a valid packet still forwards. */
function stillForwards(W: World): void {
  W.io.clearCaptured();
  const f = udp4Frame(0, '192.168.9.9');
  W.one(0, f);
  assert.strictEqual(W.io.sent[1].length, 1, 'a valid packet still forwards');
  assert.strictEqual(hex(W.io.sent[1][0].subarray(0, 6)), hex(mac(GW2)));
  W.io.clearCaptured();
}

const VALID: [string, number, Uint8Array][] = [
  ['IPv4/UDP', 0, udp4Frame(0, '192.168.1.1', {}, 1, 2, new Array(18).fill(7))],
  ['IPv4 with options', 0, eth(PORT_MACS[0], PEER_MAC, 0x0800, ipv4({ dst: '192.168.1.1', options: [0x94, 4, 0, 0, 1, 1, 1, 0], payload: udp(1, 2) }))],
  ['IPv6/UDP', 0, udp6Frame(0, '2001:db8:100::1', {}, 1, 2, [])],
  ['ARP', 0, eth('ff:ff:ff:ff:ff:ff', PEER_MAC, 0x0806, [0, 1, 8, 0, 6, 4, 0, 1, ...mac(PEER_MAC), ...ip4('10.0.1.5'), 0, 0, 0, 0, 0, 0, ...ip4('10.0.1.254')])],
  ['NDP NS', 0, eth(PORT_MACS[0], PEER_MAC, 0x86dd, ipv6({ dst: '2001:db8:1::fe', nh: 58, hl: 255, payload: [135, 0, 0, 0, 0, 0, 0, 0] }))],
  ['IPv4 TTL 1', 0, udp4Frame(0, '192.168.1.1', { ttl: 1 })],
];

describe('fast path robustness: malformed frames', () => {
  let W: World;
  beforeEach(() => { W = makeWorld(); });

  for (const [name, port, frame] of VALID) {
    it(`${name} truncated at every length 0..${Math.min(60, frame.length)}: counted, never thrown`, () => {
      const frames = [];
      for (let n = 0; n <= Math.min(60, frame.length); n++) frames.push({ port, frame: frame.slice(0, n) });
      W.run(frames);
      accounted(W, name);
      stillForwards(W);
    });
  }

  it('every IHL value, bad checksums, every total length from 0 to frame + 10', () => {
    const frames: { port: number; frame: Uint8Array }[] = [];
    const base = udp4Frame(0, '192.168.1.1', {}, 1, 2, new Array(40).fill(1));
    for (let ihl = 0; ihl < 16; ihl++) frames.push({ port: 0, frame: eth(PORT_MACS[0], PEER_MAC, 0x0800, ipv4({ dst: '192.168.1.1', ihl, payload: udp(1, 2, new Array(60).fill(0)) })) });
    for (let i = 0; i < 40; i++) frames.push({ port: 0, frame: udp4Frame(0, '192.168.1.1', { badChecksum: true, id: i }) });
    for (let tl = 0; tl <= base.length - 14 + 10; tl++) frames.push({ port: 0, frame: udp4Frame(0, '192.168.1.1', { totalLength: tl }, 1, 2, new Array(40).fill(1)) });
    for (let pl = 0; pl <= 60; pl++) frames.push({ port: 0, frame: udp6Frame(0, '2001:db8:100::1', { payloadLength: pl }, 1, 2, new Array(20).fill(1)) });
    W.run(frames);
    accounted(W, 'header fields');
    const st = W.g.portStats(0);
    assert.ok(st.drops['ipv4-checksum'] >= 40); // + IHL 6..15 (the checksum covers 20 bytes only)
    assert.ok(st.drops['ipv4-bad-ihl'] >= 5);
    assert.ok(st.drops['ipv4-bad-length'] > 0);
    assert.ok(st.drops['ipv6-bad-length'] > 0);
    stillForwards(W);
  });

  it('random bytes x 10000 (lengths 0..200, some with a valid MAC and IP ethertype)', () => {
    const rnd = rng(99);
    const frames: { port: number; frame: Uint8Array }[] = [];
    for (let i = 0; i < 10000; i++) {
      const len = rnd(201);
      const f = new Uint8Array(len);
      for (let k = 0; k < len; k++) f[k] = rnd(256);
      const port = rnd(4);
      const kind = rnd(4);
      if (kind > 0 && len >= 14) {
        f.set(mac(PORT_MACS[port]), 0);
        f[12] = kind === 1 ? 0x08 : 0x86; f[13] = kind === 1 ? 0x00 : 0xdd;
        if (kind === 3 && len >= 15) f[14] = rnd(2) ? 0x45 : 0x60;
      }
      frames.push({ port, frame: f });
    }
    W.run(frames);
    accounted(W, 'random bytes');
    stillForwards(W);
  });

  it('valid frames with random byte mutations x 10000', () => {
    const rnd = rng(5);
    const bases = [
      udp4Frame(0, '192.168.1.1', {}, 1, 2, new Array(30).fill(3)), udp4Frame(0, '172.16.1.1'), udp4Frame(0, '10.0.1.5'),
      udp4Frame(0, '198.18.1.1', {}, 1, 2, new Array(1400).fill(3)), udp6Frame(0, '2001:db8:100::1'), udp6Frame(0, '2001:db8:200::1'),
    ];
    const frames: { port: number; frame: Uint8Array }[] = [];
    for (let i = 0; i < 10000; i++) {
      const f = Uint8Array.from(bases[rnd(bases.length)]);
      for (let k = 1 + rnd(3); k > 0; k--) f[12 + rnd(Math.min(50, f.length - 12))] = rnd(256);
      frames.push({ port: 0, frame: rnd(4) === 0 ? f.slice(0, rnd(f.length)) : f });
    }
    W.run(frames);
    const rx = total(W, (p) => p.rxPackets);
    assert.strictEqual(rx, 10000);
    assert.strictEqual(W.io.inFlight(), 0);
    assert.strictEqual(W.io.doubleFrees + W.io.badIndex, 0);
    stillForwards(W);
  });

  it('packets on a port id beyond the graph\'s ports are freed and counted per worker', () => {
    const io = new MemIo({ buffers: 64, ports: 8 });
    W = makeWorld({ io });
    W.run([{ port: 6, frame: udp4Frame(0, '192.168.1.1') }, { port: 0, frame: udp4Frame(0, '192.168.1.1') }]);
    assert.strictEqual(W.g.stats.fields[4], 1); // badPort
    assert.strictEqual(W.io.sent[1].length, 1);
    assert.strictEqual(W.io.inFlight(), 0);
  });
});
