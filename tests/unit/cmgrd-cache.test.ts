// cmgrd's cache (cache-manager/cache.ts): IPv4 routes live in grouped numeric maps, everything
// else under objectKey; both must behave like one map keyed by objectKey.
import { strict as assert } from 'assert';
import { Cache, canonicalIpv4 } from '../../cache-manager/cache';
import { objectKey } from '../../lib/model';
import type { AnyObject, Route } from '../../lib/model';

const r4 = (dst: string, extra: Partial<Route> = {}): AnyObject => ({
  kind: 'route',
  obj: { vrf: 0, table: 254, family: 4, dst, plen: 24, tos: 0, priority: 0, type: 'unicast', protocol: 3, scope: 0,
    nexthops: [{ gw: '10.0.0.2', ifindex: 2, weight: 1, flags: 0 }], ...extra },
});

describe('cmgrd cache', () => {
  it('canonicalIpv4 accepts only canonical dotted quads', () => {
    assert.equal(canonicalIpv4('0.0.0.0'), 0);
    assert.equal(canonicalIpv4('255.255.255.255'), 0xffffffff);
    assert.equal(canonicalIpv4('11.2.3.0'), (11 * 2 ** 24) + (2 << 16) + (3 << 8));
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.256', '1..3.4', '1.2.3.4 ', 'a.b.c.d', '::1']) {
      assert.equal(canonicalIpv4(bad), -1, bad);
    }
  });

  it('put / get / remove of IPv4 routes by their key (vrf, table, dst, plen, tos, priority)', () => {
    const c = new Cache();
    const a = r4('11.0.1.0');
    assert.equal(c.put(a), true);
    assert.equal(c.put(r4('11.0.1.0')), false, 'identical object: nothing to send');
    assert.equal(c.put(r4('11.0.1.0', { protocol: 4 })), true, 'changed object');
    assert.deepEqual(c.get(r4('11.0.1.0', { nexthops: [] })), r4('11.0.1.0', { protocol: 4 }));
    // other key fields make other routes
    for (const x of [{ vrf: 1 }, { table: 100 }, { plen: 25, dst: '11.0.1.0' }, { tos: 8 }, { priority: 5 }] as Partial<Route>[]) {
      assert.equal(c.get(r4('11.0.1.0', x)), undefined);
      assert.equal(c.put(r4('11.0.1.0', x)), true);
    }
    assert.equal(c.counts().route, 6);
    assert.deepEqual(c.remove(r4('11.0.1.0', { tos: 8 })), r4('11.0.1.0', { tos: 8 }));
    assert.equal(c.remove(r4('11.0.1.0', { tos: 8 })), undefined);
    assert.equal(c.counts().route, 5);
  });

  it('IPv6 routes, other kinds and non-canonical IPv4 text go by objectKey; all() and ofVrf() see everything once', () => {
    const c = new Cache();
    const objs: AnyObject[] = [
      r4('11.0.1.0'), r4('11.0.2.0', { vrf: 3 }), r4('011.0.3.0'),
      { kind: 'route', obj: { vrf: 0, table: 254, family: 6, dst: '2001:db8::', plen: 64, tos: 0, priority: 1024, type: 'unicast', protocol: 3, scope: 0, nexthops: [] } },
      { kind: 'vrf', obj: { vrf: 3, nsid: 3, name: 'x' } },
      { kind: 'neighbour', obj: { vrf: 3, ifindex: 2, family: 4, addr: '10.0.0.2', lladdr: '02:00:00:00:00:01', state: 2, flags: 0 } },
    ];
    for (const o of objs) assert.equal(c.put(o), true);
    const keys = (it: Iterable<AnyObject>) => [...it].map((o) => `${o.kind}|${objectKey(o)}`).sort();
    assert.deepEqual(keys(c.all()), keys(objs));
    assert.deepEqual(keys(c.ofVrf(3)), keys(objs.filter((o) => o.obj.vrf === 3)));
    assert.deepEqual(keys(c.ofVrf(0, ['route'])), keys(objs.filter((o) => o.obj.vrf === 0 && o.kind === 'route')));
    assert.equal(c.removeVrf(3), 3);
    assert.deepEqual(keys(c.all()), keys(objs.filter((o) => o.obj.vrf !== 3)));
    assert.equal(c.counts().route, 3);
  });

  it('many routes: groups and halves are created and dropped as routes come and go', () => {
    const c = new Cache();
    const all: AnyObject[] = [];
    for (let i = 0; i < 70000; i++) all.push(r4(`${11 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0`, { priority: i % 3 }));
    for (const o of all) c.put(o);
    assert.equal(c.counts().route, 70000);
    for (let i = 0; i < all.length; i += 2) assert.ok(c.remove(all[i]));
    assert.equal(c.counts().route, 35000);
    assert.equal([...c.all()].length, 35000);
    for (let i = 1; i < all.length; i += 2) assert.deepEqual(c.get(all[i]), all[i]);
    for (let i = 1; i < all.length; i += 2) assert.ok(c.remove(all[i]));
    assert.equal([...c.all()].length, 0);
    assert.equal(c.put(all[5]), true);
    assert.deepEqual([...c.all()], [all[5]]);
  });
});
