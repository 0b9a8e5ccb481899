// IPsec ESP outbound: esp-encrypt builds an IPv4 tunnel-mode ESP packet that fits the MTU ready to send (MACs of the
// outer next hop's neighbour and egress port, TTL 64, 'forwarded' counted) and hands it to port-tx, without
// ipv4-rewrite, unless packets of its vector went to a rewrite node before it (order kept).
// IPsec ESP inbound: esp-decrypt hands a routed inner IPv4 packet on itself (forward4, docs: fastpath/README.md,
// IPsec): ipv4-input's checks (ipv4Verdict: same drop / exception reasons, the decapsulated frame to Linux),
// ipv4-lookup's next hop from the answer esp-decrypt found for the destination, then ipv4-rewrite, or esp-encrypt
// when an 'out' policy applies (a hub: in through one tunnel, out through another). Fragments and routes that are
// not unicast still go through ipv4-input / ipv4-lookup; the order of the packets is kept either way.

import * as assert from 'assert';
import type { AnyObject, XfrmPolicy, XfrmSelector } from '../../lib/model';
import { route4 } from '../../shared-mem/test-fixtures';
import * as nativeCrypto from '../../native/crypto';
import { V4_DROP, V4_OK, ipv4Verdict } from '../../fastpath/nodes/ipv4-input';
import { DROP_REASONS, EXCEPTION_REASONS } from '../../shared-mem/stats';
import { GW2, PEER_MAC, PORT_MACS, assertIpv4Checksum, eth, hex, ipv4, mac, makeWorld, rng, udp, udp4Frame } from './fp-helpers';
import { GCM_IN, espFrame, innerUdp, makeEspWorld } from './fp-esp.test';
import { DIR_IN, DIR_OUT } from '../../fastpath/ipsec';
import { Graph } from '../../fastpath/graph';
import { Vector } from '../../fastpath/vector';

const LOCAL = '10.0.1.254', PEER = '192.168.100.1';

function sel(saddr: string, splen: number, daddr: string, dplen: number, extra: Partial<XfrmSelector> = {}): XfrmSelector {
  return { family: 4, saddr, daddr, splen, dplen, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0, ...extra };
}

/** A tunnel policy (template to the peer, reqid 1 out / 2 in and fwd). */
function pol(index: number, dir: 'in' | 'out' | 'fwd', selector: XfrmSelector, vrf = 0): AnyObject {
  const p: XfrmPolicy = {
    vrf, index, dir, priority: 1000, action: 'allow', flags: 0, selector, ifId: 0,
    tmpls: [{ family: 4, daddr: dir === 'out' ? PEER : LOCAL, saddr: dir === 'out' ? LOCAL : PEER, spi: 0, proto: 50, mode: 'tunnel',
      reqid: dir === 'out' ? 1 : 2, optional: false, share: 0, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff }],
  };
  return { kind: 'policy', obj: p };
}

/** Counters of port p with a value (drops / exceptions). */
function nonZero(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, n]) => n > 0));
}

/** The inner UDP payload's first byte (tag) of frames sent on a port. */
const tags = (fs: Uint8Array[]): number[] => fs.map((f) => f[14 + 28]);

describe('fast path IPsec ESP: packets handed on past the input / lookup / rewrite nodes (esp-decrypt forward4, esp-encrypt direct)', function () {
  before(function () { if (!nativeCrypto.available()) this.skip(); });

  it("ipv4-input's checks on the inner packet: same drop / exception reasons, the decapsulated frame to Linux", () => {
    const W = makeEspWorld();
    try {
      const inner = (tag: number, o: Parameters<typeof ipv4>[0] | object = {}): number[] =>
        ipv4({ src: '10.99.1.2', dst: '10.0.1.5', ttl: 30, payload: udp(4000, 5000, [tag]), ...o });
      const ttl1 = inner(2, { ttl: 1 }), opts = inner(4, { options: [1, 1, 1, 0] });
      const frames = [
        inner(1),
        ttl1, // exception ttl-expired (Linux sends time exceeded)
        inner(3, { badChecksum: true }), // drop ipv4-checksum
        opts, // exception ip-options
        inner(5, { ihl: 4 }), // drop ipv4-bad-ihl
        inner(6, { totalLength: 200 }), // longer than what was decrypted: drop ipv4-bad-length
        inner(7),
      ].map((p, k) => espFrame(GCM_IN, k + 1, p));
      W.run(frames.map((frame) => ({ port: 1, frame })));
      assert.deepStrictEqual(tags(W.io.sent[0]), [1, 7]);
      const st = W.g.portStats(1);
      assert.deepStrictEqual(nonZero(st.drops as Record<string, number>), { 'ipv4-checksum': 1, 'ipv4-bad-ihl': 1, 'ipv4-bad-length': 1 });
      assert.deepStrictEqual(nonZero(st.exceptions as Record<string, number>), { 'ttl-expired': 1, 'ip-options': 1 });
      // to Linux: the inner packet (Ethernet header of the received frame, IPv4 ethertype), as ipv4-input gave it
      const got = W.io.dpvi[1].map((f) => Array.from(f.subarray(14)));
      assert.deepStrictEqual(got, [ttl1, opts]);
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      W.g.close();
    }
  });

  it('order kept: inner fragments (via ipv4-input) and whole packets in one vector; a route that is not unicast', () => {
    const W = makeEspWorld();
    try {
      W.w.upsert({ kind: 'route', obj: route4('10.0.1.6', 32, undefined, { type: 'blackhole', nexthops: [] }) } as AnyObject);
      const whole = (tag: number, dst = '10.0.1.5'): number[] => innerUdp('10.99.1.2', dst, [tag]);
      const frag = (tag: number): number[] => ipv4({ src: '10.99.1.2', dst: '10.0.1.5', ttl: 30, mf: true, id: 77, payload: udp(4000, 5000, [tag, 0, 0, 0, 0, 0, 0, 0]) });
      const inner = [whole(1), whole(2), frag(3), whole(4), whole(5, '10.0.1.6'), whole(6)];
      W.run(inner.map((p, k) => ({ port: 1, frame: espFrame(GCM_IN, k + 1, p) })));
      assert.deepStrictEqual(tags(W.io.sent[0]), [1, 2, 3, 4, 6], 'in the order received');
      assert.strictEqual(W.g.portStats(1).drops.blackhole, 1);
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      W.g.close();
    }
  });

  it('an out policy for the decrypted packet (hub): encrypted again (esp-encrypt); the clear ones after it keep their order', () => {
    const W = makeEspWorld();
    try {
      const p: XfrmPolicy = {
        vrf: 0, index: 41, dir: 'out', priority: 1000, action: 'allow', flags: 0, selector: sel('10.99.0.0', 16, '10.0.1.128', 25), ifId: 0,
        tmpls: [{ family: 4, daddr: PEER, saddr: LOCAL, spi: 0, proto: 50, mode: 'tunnel', reqid: 1, optional: false, share: 0,
          aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff }],
      };
      W.w.upsert({ kind: 'policy', obj: p } as AnyObject);
      const dsts = ['10.0.1.5', '10.0.1.200', '10.0.1.5', '10.0.1.201', '10.0.1.5'];
      W.run(dsts.map((d, k) => ({ port: 1, frame: espFrame(GCM_IN, k + 1, innerUdp('10.99.1.2', d, [k + 1])) })));
      assert.deepStrictEqual(tags(W.io.sent[0]), [1, 3, 5], 'clear, in order');
      const esp = W.io.sent[1];
      assert.strictEqual(esp.length, 2, 'two packets encrypted again');
      for (const [k, f] of esp.entries()) {
        assert.strictEqual(f[14 + 9], 50);
        assert.strictEqual(((f[34] << 24) | (f[35] << 16) | (f[36] << 8) | f[37]) >>> 0, 0x1001, 'SPI of the out SA');
        assert.strictEqual(((f[38] << 24) | (f[39] << 16) | (f[40] << 8) | f[41]) >>> 0, k + 1, 'sequence number');
      }
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      W.g.close();
    }
  });

  it('outbound: ESP sent without ipv4-rewrite (MACs, TTL 64, forwarded); after a clear packet of the vector: through it, in order', () => {
    const W = makeEspWorld();
    try {
      // 10.99/16: ESP (GCM SA 0x1001); UDP to port 53 of it: a bypass policy (clear)
      const frames = [udp4Frame(0, '10.99.1.2', {}, 1000), udp4Frame(0, '10.99.1.3', {}, 1001, 53), udp4Frame(0, '10.99.1.4', {}, 1002),
        udp4Frame(0, '10.99.1.5', {}, 1003)];
      W.run([{ port: 0, frame: frames[0] }]); // alone: directly to port-tx
      W.run(frames.map((frame) => ({ port: 0, frame }))); // ESP, clear, ESP, ESP: the last two through ipv4-rewrite
      const out = W.io.sent[1];
      assert.deepStrictEqual(out.map((f) => f[14 + 9]), [50, 50, 17, 50, 50]);
      const sn = out.filter((f) => f[14 + 9] === 50).map((f) => ((f[38] << 24) | (f[39] << 16) | (f[40] << 8) | f[41]) >>> 0);
      assert.deepStrictEqual(sn, [1, 2, 3, 4]);
      for (const f of out) {
        assert.strictEqual(hex(f.subarray(0, 6)), hex(mac(GW2)), 'destination MAC: the gateway to the peer');
        assert.strictEqual(hex(f.subarray(6, 12)), hex(mac(PORT_MACS[1])), 'source MAC: egress port');
        assert.strictEqual((f[12] << 8) | f[13], 0x0800);
        assert.strictEqual(f[22], f[14 + 9] === 50 ? 64 : 63, 'TTL: outer 64; the clear packet one less');
        assert.strictEqual((f[16] << 8) | f[17], f.length - 14, 'total length');
        assertIpv4Checksum(f);
      }
      assert.strictEqual(W.g.portStats(0).forwarded, 5);
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      W.g.close();
    }
  });

  it("ipv4Verdict keeps in step with ipv4-input (random headers: the same reason, or both let the packet on)", () => {
    const W = makeWorld();
    const mine = new Set(['ipv4-truncated', 'ipv4-version', 'ipv4-bad-ihl', 'ipv4-bad-length', 'ipv4-checksum', 'ipv4-martian',
      'ipv4-multicast', 'ip-options', 'ttl-expired']);
    const addrs = ['10.0.2.9', '10.0.1.5', '127.0.0.1', '0.1.2.3', '224.0.0.5', '239.1.1.1', '240.0.0.1', '255.255.255.255', '192.0.2.1'];
    const r = rng(4242);
    const seen = new Map<string, number>();
    const before = (): Map<string, number> => {
      const st = W.g.portStats(0), m = new Map<string, number>();
      for (const [k, n] of Object.entries(st.drops)) m.set(k, n);
      for (const [k, n] of Object.entries(st.exceptions)) m.set(k, (m.get(k) ?? 0) + n);
      return m;
    };
    for (let k = 0; k < 3000; k++) {
      const nopt = r(4) === 0 ? r(3) * 4 : 0;
      let p = ipv4({
        src: addrs[r(addrs.length)], dst: addrs[r(addrs.length)], ttl: [0, 1, 2, 64][r(4)], version: r(20) === 0 ? 6 : 4,
        ihl: r(10) === 0 ? r(16) : undefined, totalLength: r(10) === 0 ? r(80) : undefined, badChecksum: r(10) === 0,
        options: Array.from({ length: nopt }, () => 1), mf: r(8) === 0, payload: udp(1, 2, [k & 255]),
      });
      if (r(10) === 0) p = p.slice(0, r(p.length + 1));
      const frame = eth(PORT_MACS[0], PEER_MAC, 0x0800, p);
      // the verdict on an even offset (16-bit checksum path) and an odd one
      const buf = new Uint8Array(new ArrayBuffer(frame.length + 2));
      buf.set(frame, 0);
      const want = ipv4Verdict(buf, new Uint16Array(buf.buffer, 0, buf.length >>> 1), 14, frame.length - 14);
      buf.set(frame, 1);
      assert.strictEqual(ipv4Verdict(buf, new Uint16Array(0), 15, frame.length - 14), want);
      const b = before();
      W.one(0, frame);
      const a = before();
      let got = 'ok';
      for (const [name, n] of a) if (mine.has(name) && n !== (b.get(name) ?? 0)) got = name;
      const exp = want === V4_OK ? 'ok' : want >= V4_DROP ? DROP_REASONS[want & (V4_DROP - 1)] : EXCEPTION_REASONS[want];
      assert.strictEqual(exp, got, `packet ${k}: ${hex(p.slice(0, 20))}`);
      seen.set(got, (seen.get(got) ?? 0) + 1);
    }
    for (const name of [...mine, 'ok']) assert.ok((seen.get(name) ?? 0) > 0, `case ${name} drawn: ${JSON.stringify([...seen])}`);
    W.g.close();
  });

  it('IpsecState.pOutDisjoint: an in policy whose packets no out policy can match (addresses, protocol, ports, VRF)', () => {
    // the world's in policy: 10.99/16 -> 10.0.1.0/24 (any protocol, ports); its out policies are from 10.0.1.0/24
    const cases: { extra: AnyObject[]; want: number; what: string }[] = [
      { extra: [], want: 1, what: "the world's out policies (other sources)" },
      { extra: [pol(41, 'out', sel('10.99.0.0', 16, '10.0.1.128', 25))], want: 0, what: 'overlapping addresses' },
      { extra: [pol(41, 'out', sel('10.99.1.0', 24, '10.0.0.0', 16))], want: 0, what: 'overlapping, both narrower and wider' },
      { extra: [pol(41, 'out', sel('10.99.0.0', 16, '10.0.2.0', 24))], want: 1, what: 'other destinations' },
      { extra: [pol(41, 'out', sel('0.0.0.0', 0, '0.0.0.0', 0), 1)], want: 1, what: 'another VRF' },
      { extra: [pol(41, 'out', sel('10.99.0.0', 16, '10.0.1.0', 24, { proto: 6 }))], want: 0, what: 'a protocol (the in policy: any)' },
      { extra: [pol(41, 'out', sel('10.99.0.0', 16, '10.0.1.0', 24, { dport: 53, dportMask: 0xffff }))], want: 0, what: 'a port' },
      { extra: [pol(41, 'out', sel('10.99.0.0', 16, '10.0.1.0', 24, { proto: 17 })), pol(43, 'in', sel('10.99.0.0', 16, '10.0.1.0', 24, { proto: 6 }))],
        want: 0, what: 'in policy of any protocol; the TCP one below' },
    ];
    for (const c of cases) {
      const W = makeEspWorld();
      try {
        for (const o of c.extra) W.w.upsert(o);
        const ips = W.g.ipsec!;
        ips.sync();
        let k = -1;
        for (let j = ips.dirStart[DIR_IN]; j < ips.dirStart[DIR_IN + 1]; j++) if (ips.pProto[j] === 0 && ips.pVrf[j] === 0) k = j;
        assert.ok(k >= 0);
        assert.strictEqual(ips.pOutDisjoint[k], c.want, c.what);
        if (c.extra.length === 2) { // UDP out vs TCP in: disjoint by protocol
          let t = -1;
          for (let j = ips.dirStart[DIR_IN]; j < ips.dirStart[DIR_IN + 1]; j++) if (ips.pProto[j] === 6) t = j;
          assert.strictEqual(ips.pOutDisjoint[t], 1, 'TCP in policy vs UDP out policy');
        }
        for (let j = ips.dirStart[DIR_IN + 1]; j < ips.dirStart[DIR_IN + 2]; j++) assert.strictEqual(ips.pOutDisjoint[j], 0, 'out policies: 0');
      } finally {
        W.g.close();
      }
    }
  });

  it('outbound: an IPv4 transit fragment matches the SPD with ports 0 (as Linux), not with the bytes where ports would be', () => {
    const W = makeEspWorld();
    try {
      // UDP to port 53 of 10.99/16 would match the bypass policy (priority 10); a fragment has no ports for the SPD
      // (even the first one, as Linux's decode_session4): it matches the ESP policy of 10.99/16
      const first = eth(PORT_MACS[0], PEER_MAC, 0x0800, ipv4({ src: '10.0.1.5', dst: '10.99.1.2', mf: true, id: 9, payload: udp(1000, 53, [1, 2, 3, 4, 5, 6, 7, 8]) }));
      const whole = udp4Frame(0, '10.99.1.3', {}, 1000, 53);
      W.run([{ port: 0, frame: first }, { port: 0, frame: whole }]);
      assert.deepStrictEqual(W.io.sent[1].map((f) => f[14 + 9]), [50, 17], 'the fragment encrypted, the whole packet bypassed');
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      W.g.close();
    }
  });

  it('ipsecLocalDecrypt (the fp process default): routed inner packets handed on by forward4 too; those for this host go to Linux decrypted', () => {
    const W = makeEspWorld();
    const g = new Graph({ io: W.io, shm: W.r, ports: 4, ipsec: true, ipsecLocalDecrypt: true });
    try {
      const v = new Vector();
      const inner = [innerUdp('10.99.1.2', '10.0.1.5', [1]), innerUdp('10.99.1.2', LOCAL, [2]), innerUdp('10.99.1.2', '10.0.1.5', [3]),
        ipv4({ src: '10.99.1.2', dst: '10.0.1.5', ttl: 1, payload: udp(4000, 5000, [4]) })];
      for (const [k, p] of inner.entries()) assert.ok(W.io.inject(v, 1, espFrame(GCM_IN, k + 1, p)));
      const fast0 = g.fib.fast;
      g.process(v);
      assert.deepStrictEqual(tags(W.io.sent[0]), [1, 3]);
      assert.deepStrictEqual(nonZero(g.portStats(1).exceptions as Record<string, number>), { local: 1, 'ttl-expired': 1 });
      const clear = W.io.dpvi[1].map((f) => hex(f.subarray(14))).sort();
      assert.deepStrictEqual(clear, [inner[1], inner[3]].map(hex).sort(), 'decrypted, in clear');
      // the outer destination once, each inner one once (esp-decrypt), the one for this host again (ipv4-lookup)
      assert.strictEqual(g.fib.fast - fast0, 6, 'FIB resolutions');
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      g.close();
      W.g.close();
    }
  });

  it("outbound: the fwd clear-text check is skipped only when no fwd policy can match the out policy's packets (pFwdDisjoint)", () => {
    const W = makeEspWorld();
    try {
      // a fwd policy (ESP required) for 10.0.1.0/24 -> 10.99.5.0/24: meets the out policy 10.0.1.0/24 -> 10.99/16
      W.w.upsert(pol(42, 'fwd', sel('10.0.1.0', 24, '10.99.5.0', 24)));
      W.run([udp4Frame(0, '10.99.5.1', {}, 1000), udp4Frame(0, '10.99.6.1', {}, 1001), udp4Frame(0, '10.98.1.1', {}, 1002)].map((frame) => ({ port: 0, frame })));
      assert.deepStrictEqual(nonZero(W.g.portStats(0).drops as Record<string, number>), { 'ipsec-clear-in': 1 }, 'clear text the fwd policy requires as ESP');
      assert.deepStrictEqual(W.io.sent[1].map((f) => ((f[34] << 24) | (f[35] << 16) | (f[36] << 8) | f[37]) >>> 0), [0x1001, 0x1002]);
      const ips = W.g.ipsec!;
      const outOf = (dst: number): number => {
        for (let k = ips.dirStart[DIR_OUT]; k < ips.dirStart[DIR_OUT + 1]; k++) if (ips.pDaddr[k * 4] === dst && ips.pDmask[k * 4] === -65536 && ips.pProto[k] === 0) return k;
        return -1;
      };
      assert.strictEqual(ips.pFwdDisjoint[outOf(0x0a630000)], 0, '10.99/16 meets the fwd policy');
      assert.strictEqual(ips.pFwdDisjoint[outOf(0x0a620000)], 1, '10.98/16 does not');
      assert.strictEqual(W.io.inFlight(), 0, 'buffers leaked');
    } finally {
      W.g.close();
    }
  });
});
