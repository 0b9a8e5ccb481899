import * as assert from 'assert';
import type { AnyObject, Route, Rule } from '../../lib/model';
import { computeLayout } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6 } from '../../shared-mem/test-fixtures';
import { FOUND, FibResolver } from '../../fastpath/fib';
import { GW2, hex, mac, makeWorld, rng, udp4Frame, worldObjects } from './fp-helpers';

function rule(vrf: number, family: 4 | 6, priority: number, table: number, extra: Partial<Rule> = {}): AnyObject {
  return {
    kind: 'rule', obj: {
      vrf, family, priority, table, action: 'to_tbl', srcLen: 0, dstLen: 0, fwmark: 0, fwmask: 0, tos: 0, invert: false,
      ipproto: 0, suppressPrefixlen: -1, gotoTarget: 0, ...extra,
    },
  };
}

const LINUX_DEFAULT = (vrf: number, family: 4 | 6): AnyObject[] => [rule(vrf, family, 0, 255), rule(vrf, family, 32766, 254), rule(vrf, family, 32767, 253)];

function setup(objects: AnyObject[]): { r: ShmReader; fib: FibResolver; w: ShmWriter } {
  const cfg = { ...SMALL_CONFIG, fib4Tables: 16, fib6Tables: 16 }; // 4 VRFs x 4 tables (sparse memory)
  const sab = new SharedArrayBuffer(computeLayout(cfg).totalSize);
  const w = ShmWriter.create(sab, cfg);
  for (const o of objects) w.upsert(o);
  const r = ShmReader.attach(sab);
  return { r, fib: new FibResolver(r), w };
}

function routes(vrf: number): AnyObject[] {
  const R = (x: Route): AnyObject => ({ kind: 'route', obj: x });
  const nh = (gw: string) => ({ nexthops: [{ gw, ifindex: 2, weight: 1, flags: 0 }] });
  return [
    R(route4('10.0.0.0', 8, '192.0.2.1', { vrf, ...nh('192.0.2.1') })),
    R(route4('10.1.0.0', 16, '192.0.2.2', { vrf, ...nh('192.0.2.2') })),
    R(route4('10.1.2.0', 24, '192.0.2.3', { vrf, table: 100, ...nh('192.0.2.3') })),
    R(route4('0.0.0.0', 0, '192.0.2.4', { vrf, table: 100, ...nh('192.0.2.4') })),
    R(route4('0.0.0.0', 0, '192.0.2.5', { vrf, table: 253, ...nh('192.0.2.5') })),
    R({ ...route4('10.9.0.0', 16, undefined, { vrf, table: 100, type: 'throw' }), nexthops: [] }),
    R(route4('10.0.0.1', 32, undefined, { vrf, table: 255, type: 'local', nexthops: [{ ifindex: 2, weight: 1, flags: 0 }] })),
    R(route6('2001:db8::', 32, '2001:db8::1', { vrf, ...{ nexthops: [{ gw: '2001:db8::1', ifindex: 2, weight: 1, flags: 0 }] } })),
    R(route6('::', 0, '2001:db8::2', { vrf, table: 100, nexthops: [{ gw: '2001:db8::2', ifindex: 2, weight: 1, flags: 0 }] })),
  ];
}

/** FibResolver's answer in ShmReader.resolve4's terms (FIB value u32 or RESOLVE_*). */
function got(fib: FibResolver, res: number): number {
  return res === FOUND ? fib.value >>> 0 : res;
}

function compare(r: ShmReader, fib: FibResolver, vrf: number, n: number, seed: number): void {
  const rnd = rng(seed);
  const a6 = new Uint32Array(4);
  fib.beginVector();
  for (let i = 0; i < n; i++) {
    const a = rnd(4) === 0 ? rnd(0x100000000) : ((10 << 24) | rnd(1 << 24)) >>> 0;
    const src = rnd(2) ? ((10 << 24) | rnd(1 << 24)) >>> 0 : rnd(0x100000000);
    if (fib.needsFlow(vrf, 4)) fib.flow4.src = src;
    assert.strictEqual(got(fib, fib.resolve4(vrf, a)), r.resolve4(vrf, a, { src, iif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0 }), `vrf ${vrf} ${a.toString(16)}`);
    a6[0] = rnd(2) ? 0x20010db8 : rnd(0x100000000); a6[1] = rnd(0x100000000); a6[2] = 0; a6[3] = rnd(16);
    assert.strictEqual(got(fib, fib.resolve6(vrf, a6)), r.resolve6(vrf, a6, { src: new Uint32Array(4), iif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0 }));
  }
}

describe('fast path FIB resolution (rule plans) = ShmReader.resolve4/6', () => {
  it('no rules (tables local, main, default); Linux default rules; suppress_prefixlength; throw routes; several VRFs', () => {
    const { r, fib } = setup([
      ...routes(0), ...routes(2), ...routes(3), ...routes(4),
      ...LINUX_DEFAULT(2, 4), ...LINUX_DEFAULT(2, 6),
      rule(3, 4, 0, 255), rule(3, 4, 100, 254, { suppressPrefixlen: 8 }), rule(3, 4, 200, 100), rule(3, 4, 300, 0, { action: 'nop' }),
      rule(3, 6, 100, 254, { suppressPrefixlen: 0 }), rule(3, 6, 200, 100),
      rule(4, 4, 50, 100, { src: '10.0.0.0', srcLen: 8 }), ...LINUX_DEFAULT(4, 4), rule(4, 6, 10, 0, { action: 'blackhole' }),
    ]);
    for (const vrf of [0, 2, 3, 4, 5]) compare(r, fib, vrf, 3000, vrf + 1);
    assert.ok(!fib.needsFlow(0, 4) && !fib.needsFlow(2, 4) && !fib.needsFlow(3, 4) && !fib.needsFlow(3, 6));
    assert.ok(fib.needsFlow(4, 4) && fib.needsFlow(4, 6), 'selectors / blackhole action: rule evaluation per packet');
  });

  it('plans follow rule and table changes (shm generation)', () => {
    const { r, fib, w } = setup([...routes(0), ...LINUX_DEFAULT(0, 4)]);
    compare(r, fib, 0, 500, 1);
    w.upsert(rule(0, 4, 10, 100));
    compare(r, fib, 0, 500, 2);
    w.remove(rule(0, 4, 32766, 254));
    compare(r, fib, 0, 500, 3);
    w.upsert({ kind: 'route', obj: route4('10.3.0.0', 16, '192.0.2.9', { table: 253, nexthops: [{ gw: '192.0.2.9', ifindex: 2, weight: 1, flags: 0 }] }) });
    compare(r, fib, 0, 500, 4);
  });

  it('graph: a source rule and an iif rule pick table 100 only for matching packets', () => {
    const objects = [
      ...worldObjects(),
      { kind: 'route', obj: route4('0.0.0.0', 0, '10.0.2.1', { table: 100, nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] }) } as AnyObject,
      ...LINUX_DEFAULT(0, 4),
      rule(0, 4, 100, 100, { src: '10.0.1.128', srcLen: 25 }),
      rule(0, 4, 101, 100, { iif: 'eth2' }),
    ];
    const W = makeWorld({ objects });
    W.one(0, udp4Frame(0, '8.8.8.8', { src: '10.0.1.5' }));
    assert.strictEqual(W.g.portStats(0).exceptions['no-route'], 1);
    W.one(0, udp4Frame(0, '8.8.8.8', { src: '10.0.1.200' }));
    assert.strictEqual(W.io.sent[1].length, 1);
    assert.strictEqual(hex(W.io.sent[1][0].subarray(0, 6)), hex(mac(GW2)));
    W.one(2, udp4Frame(2, '8.8.4.4', { src: '10.0.3.5' }));
    assert.strictEqual(W.io.sent[1].length, 2);
    assert.ok(W.g.fib.slow > 0);
  });
});
