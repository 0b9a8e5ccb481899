// The fast paths added for speed must not change what the graph does:
//  - eth-input and ipv4-input read 16-bit words (mem16) for frames at an even offset and bytes
//    otherwise; ipv4-rewrite writes the MACs as words at even offsets: a vector of mixed frames gives
//    the same output frames, exceptions and drops at even and at odd offsets;
//  - ipv4-rewrite and ipv6-rewrite reuse the previous packet's next hop / neighbour only for gateway
//    next hops: two hosts of one connected route in a row get their own MACs;
//  - ipv4-lookup's touch pass (fib.ts touchVector4) changes no answer.
import * as assert from 'assert';
import type { PortStats } from '../../shared-mem/stats';
import { GW1, GW2, GW6, GW6B, HOST5, HOST6, PEER_MAC, PORT_MACS, assertIpv4Checksum, eth, hex, ipv4, makeWorld, udp, udp4Frame, udp6Frame, type World } from './fp-helpers';

/** A mix of frames: forwarded (gateway, connected, ECMP), exceptions, drops; port 0 input. */
function frames(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < 6; k++) {
    out.push(udp4Frame(0, `192.168.${k}.1`)); // via 10.0.2.1 (gateway)
    out.push(udp4Frame(0, '10.0.1.5')); // connected: HOST5
    out.push(udp4Frame(0, '10.0.1.1')); // connected, same next hop: GW1's MAC
    out.push(udp4Frame(0, `172.16.${k}.${k + 1}`, {}, 1000 + k, 2000 + k)); // ECMP
    out.push(udp4Frame(0, '10.0.1.7')); // incomplete neighbour -> exception
    out.push(udp4Frame(0, '100.64.0.1')); // gateway without neighbour -> exception
    const bad = udp4Frame(0, '192.168.9.9');
    bad[24] ^= 0x55; // header checksum
    out.push(bad);
    out.push(eth('02:00:00:00:77:77', PEER_MAC, 0x0800, ipv4({ dst: '192.168.1.1', payload: udp(1, 2) }))); // not for us
    out.push(eth(PORT_MACS[0], PORT_MACS[0], 0x0800, ipv4({ dst: '192.168.1.1', payload: udp(1, 2) }))); // our own MAC
    out.push(eth('ff:ff:ff:ff:ff:ff', PEER_MAC, 0x0806, new Array(28).fill(0))); // ARP broadcast
    out.push(udp4Frame(0, '10.0.1.5', { ttl: 1 })); // TTL exception
    out.push(udp4Frame(0, '198.51.100.7')); // blackhole
  }
  return out;
}

/** Runs the frames as one vector, each shifted by `shift` bytes into its buffer's headroom side. */
function runShifted(W: World, list: Uint8Array[], shift: number): void {
  const { io, v, g } = W;
  for (const f of list) {
    assert.ok(io.inject(v, 0, f));
    const i = v.n - 1;
    if (shift !== 0) {
      io.mem.copyWithin(v.off[i] + shift, v.off[i], v.off[i] + v.len[i]);
      v.off[i] += shift;
    }
  }
  g.process(v);
}

function captured(W: World): { sent: string[][]; dpvi: string[][]; stats: PortStats[] } {
  return {
    sent: W.io.sent.map((l) => l.map(hex)),
    dpvi: W.io.dpvi.map((l) => l.map(hex)),
    stats: [0, 1, 2, 3].map((p) => W.g.portStats(p)),
  };
}

describe('fast path: word-wide and cached paths behave like the byte paths', () => {
  it('same output frames, exceptions and drops for frames at even and odd offsets', () => {
    const list = frames();
    const even = makeWorld(), odd = makeWorld();
    runShifted(even, list, 0);
    runShifted(odd, list, 1);
    const a = captured(even), b = captured(odd);
    assert.deepStrictEqual(b, a);
    // and they are right: forwarded frames have their MACs, TTL - 1 and a valid checksum
    const s0 = a.stats[0];
    assert.strictEqual(s0.forwarded, 6 * 4);
    assert.strictEqual(s0.drops['ipv4-checksum'], 6);
    assert.strictEqual(s0.drops['not-for-us'], 6);
    assert.strictEqual(s0.drops['own-mac'], 6);
    assert.strictEqual(s0.exceptions['arp'], 6);
    assert.strictEqual(s0.exceptions['ttl-expired'], 6);
    for (const f of even.io.sent.flat()) {
      assertIpv4Checksum(f);
      assert.strictEqual(f[22], 63, 'TTL - 1');
    }
  });

  it('two hosts of one connected route in a row get their own MACs; gateway packets share the gateway\'s', () => {
    const W = makeWorld();
    const list = [udp4Frame(0, '10.0.1.5'), udp4Frame(0, '10.0.1.1'), udp4Frame(0, '10.0.1.5'), udp4Frame(0, '192.168.0.1'), udp4Frame(0, '192.168.7.7')];
    runShifted(W, list, 0);
    const macOf = (f: Uint8Array) => Array.from(f.subarray(0, 6)).map((x) => x.toString(16).padStart(2, '0')).join(':');
    assert.deepStrictEqual(W.io.sent[0].map(macOf), [HOST5, GW1, HOST5]);
    assert.deepStrictEqual(W.io.sent[1].map(macOf), [GW2, GW2]);
    for (const p of [0, 1]) for (const f of W.io.sent[p]) assert.strictEqual(macOf(f.subarray(6)), PORT_MACS[p]);
  });

  it('IPv6: two hosts of one connected route in a row get their own MACs', () => {
    const W = makeWorld();
    const list = [udp6Frame(0, '2001:db8:1::5'), udp6Frame(0, '2001:db8:1::1'), udp6Frame(0, '2001:db8:1::5'), udp6Frame(0, '2001:db8:100::1'), udp6Frame(0, '2001:db8:100::2')];
    runShifted(W, list, 0);
    const macOf = (f: Uint8Array) => Array.from(f.subarray(0, 6)).map((x) => x.toString(16).padStart(2, '0')).join(':');
    assert.deepStrictEqual(W.io.sent[0].map(macOf), [HOST6, GW6B, HOST6]);
    assert.deepStrictEqual(W.io.sent[1].map(macOf), [GW6, GW6]);
  });

  it('the touch pass changes no answer', () => {
    const list = frames();
    const on = makeWorld(), off = makeWorld();
    on.g.fib.touchMinRoutes = 0; // the touch pass runs from 65,536 routes on: here on a small table too
    off.g.ipv4Lookup.touchPass = false;
    runShifted(on, list, 0);
    runShifted(off, list, 0);
    assert.deepStrictEqual(captured(on), captured(off));
  });
});
