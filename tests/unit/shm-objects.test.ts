import * as assert from 'assert';
import { objectKey, type AnyObject, type ObjectKind, type Neighbour } from '../../lib/model';
import { HDR, NEIGH_E, SA_E, computeLayout, fibKind, type ShmConfig } from '../../shared-mem/layout';
import { ShmFullError, ShmWriter } from '../../shared-mem/writer';
import { BUSY, NOT_FOUND, READ_OK, RESOLVE_BLACKHOLE, RESOLVE_NONE, RESOLVE_PROHIBIT, RESOLVE_UNREACHABLE, ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6, sa, sampleObjects } from '../../shared-mem/test-fixtures';
import { parse4, parse6 } from '../../shared-mem/addr';

const KINDS: ObjectKind[] = ['vrf', 'link', 'address', 'route', 'rule', 'neighbour', 'policy', 'sa'];

function setup(cfg: Partial<ShmConfig> = SMALL_CONFIG): { sab: SharedArrayBuffer; w: ShmWriter; r: ShmReader } {
  const sab = new SharedArrayBuffer(computeLayout(cfg).totalSize);
  const w = ShmWriter.create(sab, cfg);
  return { sab, w, r: ShmReader.attach(sab) };
}

function sorted(objs: AnyObject[]): AnyObject[] {
  return [...objs].sort((a, b) => (a.kind + objectKey(a) < b.kind + objectKey(b) ? -1 : 1));
}

function all(r: ShmReader, vrf?: number): AnyObject[] {
  const out: AnyObject[] = [];
  for (const k of KINDS) out.push(...r.list(k, vrf !== undefined ? { vrf } : {}));
  return sorted(out);
}

function snapshot(sab: SharedArrayBuffer): Buffer {
  return Buffer.from(new Uint8Array(sab).slice());
}

/** Byte equality of two snapshots, ignoring the header's heartbeat / dirty words. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  for (const buf of [x, y]) { buf.writeUInt32LE(0, HDR.HEARTBEAT * 4); buf.writeBigUInt64LE(0n, 56); }
  return x.equals(y);
}

const v4 = (s: string): number => parse4(s);
function v6(s: string): Uint32Array { const w = new Uint32Array(4); assert.ok(parse6(s, w, 0)); return w; }

describe('shm objects', () => {
  it('every kind round-trips (upsert -> list deep-equals the model object)', () => {
    const { w, r } = setup();
    const objs = [...sampleObjects(0), ...sampleObjects(3)];
    for (const o of objs) assert.strictEqual(w.upsert(o), true, objectKey(o));
    assert.deepStrictEqual(all(r), sorted(objs));
    assert.deepStrictEqual(all(r, 3), sorted(sampleObjects(3)));
    for (const k of KINDS) assert.strictEqual(w.count(k), objs.filter((o) => o.kind === k).length, k);
    const h = r.header();
    assert.strictEqual(h.kinds.route.count, objs.filter((o) => o.kind === 'route').length);
    assert.strictEqual(h.kinds.sa.count, 6);
    assert.ok(h.generation >= objs.length);
  });

  it('an identical upsert writes nothing; a changed one bumps the generations', () => {
    const { sab, w, r } = setup({ ...SMALL_CONFIG, fib4Tables: 1, fib6Tables: 1 });
    const objs = sampleObjects(0).filter((o) => o.kind !== 'route' || o.obj.table === 254);
    for (const o of objs) w.upsert(o);
    const before = snapshot(sab);
    for (const o of objs) assert.strictEqual(w.upsert(JSON.parse(JSON.stringify(o)) as AnyObject), false, objectKey(o));
    assert.ok(sameBytes(before, snapshot(sab)), 'shared memory changed');
    const g = r.header();
    const link = objs.find((o) => o.kind === 'link')!;
    assert.strictEqual(w.upsert({ kind: 'link', obj: { ...(link.obj as never as object), mtu: 9000 } as never }), true);
    const g2 = r.header();
    assert.strictEqual(g2.generation, g.generation + 1);
    assert.strictEqual(g2.kinds.link.generation, g.kinds.link.generation + 1);
    assert.strictEqual(g2.kinds.route.generation, g.kinds.route.generation);
    assert.strictEqual(w.remove(link), true);
    assert.strictEqual(w.remove(link), false);
    assert.strictEqual(r.header().kinds.link.count, 2);
  });

  it('remove uses only the key fields', () => {
    const { w, r } = setup();
    w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 6, addr: '2001:db8::5', lladdr: '00:11:22:33:44:55', state: 2, flags: 0 } });
    assert.strictEqual(w.remove({ kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 6, addr: '2001:0db8:0::5', state: 0, flags: 0 } }), true);
    assert.strictEqual(r.list('neighbour').length, 0);
    w.upsert({ kind: 'route', obj: route4('10.0.0.0', 8, '10.9.9.9') });
    assert.strictEqual(w.remove({ kind: 'route', obj: { ...route4('10.0.0.0', 8, undefined), nexthops: [], protocol: 0, type: 'blackhole' } }), true);
    assert.strictEqual(r.list('route').length, 0);
    assert.strictEqual(r.header().kinds.nexthop.count, 0);
  });

  it('rejects invalid objects without changing anything', () => {
    const { sab, w } = setup();
    for (const o of sampleObjects(0)) w.upsert(o);
    const before = snapshot(sab);
    const bad: AnyObject[] = [
      { kind: 'route', obj: route4('10.0.0.256', 24, '1.1.1.1') },
      { kind: 'route', obj: route4('10.0.0.0', 33, '1.1.1.1') },
      { kind: 'route', obj: route4('10.0.0.1', 24, '1.1.1.1') },
      { kind: 'route', obj: route6('2001:db8::1', 64, 'fe80::1') },
      { kind: 'route', obj: route4('10.0.0.0', 24, 'zz') },
      { kind: 'route', obj: { ...route4('10.0.0.0', 24, '1.1.1.1'), type: 'weird' as never } },
      { kind: 'route', obj: { ...route4('10.0.0.0', 24, '1.1.1.1'), nexthops: Array.from({ length: 17 }, (_, i) => ({ gw: `1.1.1.${i}`, ifindex: 2, weight: 1, flags: 0 })) } },
      { kind: 'link', obj: { vrf: 0, ifindex: 9, name: 'a-very-long-interface-name', kind: '', mac: '', mtu: 1500, flags: 0, adminUp: true, operUp: true, master: 0, link: 0, port: -1 } },
      { kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 4, addr: '2001:db8::1', state: 0, flags: 0 } },
      { kind: 'sa', obj: sa(0, '10.0.0.1', 1, { aead: { name: 'rfc4106(gcm(aes))', key: 'ab'.repeat(65) } }) },
      { kind: 'sa', obj: sa(0, '10.0.0.1', 1, { aead: { name: 'rfc4106(gcm(aes))', key: 'xyz' } }) },
    ];
    for (const o of bad) assert.throws(() => w.upsert(o), TypeError, objectKey(o));
    assert.throws(() => w.upsert({ kind: 'vrf', obj: { vrf: 16, nsid: 16, name: '' } }), { name: 'ShmFullError', message: 'VRF 16 out of range (maxVrfs 16): raise maxVrfs' });
    assert.ok(sameBytes(before, snapshot(sab)));
  });

  it('capacity exhausted: ShmFullError and the previous state intact', () => {
    const cfg: Partial<ShmConfig> = { ...SMALL_CONFIG, maxRoutes: 5, maxNexthops: 3, maxGroups: 1, tbl8Groups: 1, fib4Tables: 1, fib6Tables: 1, fib6Entries: 16, maxNeigh: 2, maxSas: 1 };
    const { sab, w, r } = setup(cfg);
    w.upsert({ kind: 'route', obj: route4('10.0.0.0', 8, '1.1.1.1') });
    w.upsert({ kind: 'route', obj: route4('10.1.1.128', 25, '1.1.1.1') });
    w.upsert({ kind: 'route', obj: { ...route4('10.3.0.0', 16, undefined), nexthops: [{ gw: '1.1.1.1', ifindex: 2, weight: 1, flags: 0 }, { gw: '1.1.1.2', ifindex: 2, weight: 1, flags: 0 }] } });
    w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 4, addr: '1.1.1.1', state: 2, flags: 0 } });
    w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 4, addr: '1.1.1.2', state: 2, flags: 0 } });
    w.upsert({ kind: 'sa', obj: sa(0, '1.1.1.1', 5) });
    const before = snapshot(sab);
    const listed = all(r);
    const cases: [AnyObject, string][] = [
      [{ kind: 'route', obj: route4('10.2.2.128', 25, '1.1.1.1') }, 'IPv4 tbl8 group pool full (1 groups): raise tbl8Groups'],
      [{ kind: 'route', obj: route4('10.4.0.0', 16, '1.1.1.3') }, undefined as never],
      [{ kind: 'route', obj: route4('10.5.0.0', 16, '1.1.1.4') }, 'next-hop table full (3 entries): raise maxNexthops'],
      [{ kind: 'route', obj: { ...route4('10.6.0.0', 16, undefined), nexthops: [{ gw: '1.1.1.1', ifindex: 2, weight: 2, flags: 0 }, { gw: '1.1.1.2', ifindex: 2, weight: 1, flags: 0 }] } }, 'ECMP group table full (1 entries): raise maxGroups'],
      [{ kind: 'route', obj: route4('10.0.0.0', 8, '1.1.1.1', { table: 100 }) }, 'IPv4 FIB table set full (1 tables): raise fib4Tables'],
      [{ kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 4, addr: '1.1.1.3', state: 2, flags: 0 } }, 'neighbour table full (2 entries): raise maxNeigh'],
      [{ kind: 'sa', obj: sa(0, '1.1.1.2', 5) }, 'SA table full (1 entries): raise maxSas'],
    ];
    let snap = before;
    let expectList = listed;
    for (const [o, msg] of cases) {
      if (msg === undefined) { // fills the last next hop and the route table
        assert.strictEqual(w.upsert(o), true);
        snap = snapshot(sab);
        expectList = all(r);
        continue;
      }
      assert.throws(() => w.upsert(o), (e: Error) => e instanceof ShmFullError && e.message === msg, msg);
      assert.ok(sameBytes(snap, snapshot(sab)), `state changed by a failed upsert (${msg})`);
      assert.deepStrictEqual(all(r), expectList);
    }
    assert.strictEqual(w.upsert({ kind: 'route', obj: route4('10.7.0.0', 16, '1.1.1.1') }), true);
    snap = snapshot(sab);
    assert.throws(() => w.upsert({ kind: 'route', obj: route4('10.8.0.0', 16, '1.1.1.1') }), { message: 'route table full (5 entries): raise maxRoutes' });
    assert.ok(sameBytes(snap, snapshot(sab)));
    // replacing an existing route needs no new entry
    assert.strictEqual(w.upsert({ kind: 'route', obj: route4('10.4.0.0', 16, '1.1.1.1') }), true);
    // and the writer still works after the errors
    assert.strictEqual(w.remove({ kind: 'route', obj: route4('10.1.1.128', 25, undefined) }), true);
    assert.strictEqual(w.upsert({ kind: 'route', obj: route4('10.2.2.128', 25, '1.1.1.1') }), true);
    const s = r.fib4Slot(0, 254);
    assert.strictEqual(r.nexthop(r.lookup4(s, v4('10.2.2.130')) & 0x3fffff)!.gw, '1.1.1.1');
    // IPv6 FIB capacity (16 slots -> 11 prefixes)
    const { w: w6 } = setup({ ...cfg, maxRoutes: 100, fib6Entries: 16 });
    for (let i = 0; i < 11; i++) w6.upsert({ kind: 'route', obj: route6(`2001:db8:${i}::`, 48, 'fe80::1') });
    assert.throws(() => w6.upsert({ kind: 'route', obj: route6('2001:db8:99::', 48, 'fe80::1') }), { message: 'IPv6 FIB full (11 prefixes in 16 slots): raise fib6Entries' });
  });

  it('setPorts: VRF 0 links named in the list get their index, others -1 (also on later upserts)', () => {
    const { w, r } = setup();
    for (const o of [...sampleObjects(0), ...sampleObjects(2)]) w.upsert(o);
    w.setPorts(['tun0', 'veth-a.100']);
    const ports = (vrf: number) => Object.fromEntries(r.list('link', { vrf }).map((l) => [l.obj.name, l.obj.port]));
    assert.deepStrictEqual(ports(0), { lo: -1, 'veth-a.100': 1, tun0: 0 });
    assert.deepStrictEqual(ports(2), { lo: -1, 'veth-a.100': -1, tun0: -1 });
    w.upsert({ kind: 'link', obj: { vrf: 0, ifindex: 7, name: 'tun0', kind: 'tun', mac: '', mtu: 1400, flags: 0, adminUp: true, operUp: true, master: 0, link: 0, port: 99 } });
    assert.strictEqual(r.list('link').find((l) => l.obj.ifindex === 7)!.obj.port, 0);
    w.setPorts([]);
    assert.ok(r.list('link').every((l) => l.obj.port === -1));
    const idx = r.linkLookup(0, 2);
    const out = new Int32Array(32);
    assert.strictEqual(r.readLink(idx, out), READ_OK);
    assert.strictEqual(r.linkLookup(0, 999), NOT_FOUND);
  });

  it('mark and sweep', () => {
    const { w, r } = setup();
    const objs = [...sampleObjects(0), ...sampleObjects(1)];
    for (const o of objs) w.upsert(o);
    w.beginSync();
    assert.strictEqual(r.header().syncing, true);
    const keep = objs.filter((_, i) => i % 3 !== 0);
    for (const o of keep) w.upsert(o);
    const swept = w.endSync();
    const expected: Record<string, number> = { vrf: 0, link: 0, address: 0, route: 0, rule: 0, neighbour: 0, policy: 0, sa: 0 };
    for (const o of objs.filter((_, i) => i % 3 === 0)) expected[o.kind]++;
    assert.deepStrictEqual(swept, expected);
    assert.deepStrictEqual(all(r), sorted(keep));
    assert.strictEqual(r.header().syncing, false);
    assert.throws(() => w.endSync(), /without beginSync/);
    // an empty sync sweeps everything, including next hops and FIB tables
    w.beginSync();
    w.endSync();
    assert.deepStrictEqual(all(r), []);
    const k = r.header().kinds;
    assert.deepStrictEqual([k.nexthop.count, k.group.count, k.fib4Table.count, k.fib6Table.count, k.tbl8.count, k.fib6Prefix.count], [0, 0, 0, 0, 0, 0]);
  });

  it('removeVrf drops the VRF, its objects and FIB tables; other VRFs are untouched', () => {
    const { w, r } = setup();
    for (const o of [...sampleObjects(1), ...sampleObjects(2)]) w.upsert(o);
    const tables = r.fibTables().length;
    const n = w.removeVrf(1);
    assert.strictEqual(n, sampleObjects(1).length);
    assert.deepStrictEqual(all(r), sorted(sampleObjects(2)));
    assert.strictEqual(r.fibTables().length, tables / 2);
    assert.strictEqual(r.fib4Slot(1, 254), -1);
    assert.ok(r.fib4Slot(2, 254) >= 0);
    assert.strictEqual(w.removeVrf(1), 0);
    w.removeVrf(2);
    assert.deepStrictEqual(all(r), []);
    assert.strictEqual(r.header().kinds.nexthop.count, 0);
  });

  it('hash lookups: links, neighbours, SAs, policies (with churn and index rebuilds)', () => {
    const { w, r } = setup();
    for (const o of sampleObjects(4)) w.upsert(o);
    const out = new Int32Array(SA_E.WORDS);
    let i = r.neighbourLookup(4, 2, 4, v4('10.0.0.254'));
    assert.ok(i >= 0);
    assert.strictEqual(r.readNeighbour(i, out), READ_OK);
    assert.strictEqual(out[NEIGH_E.STATE], 2);
    assert.ok(r.neighbourLookup(4, 3, 6, v6('fe80::1')) >= 0);
    assert.strictEqual(r.neighbourLookup(4, 2, 6, v6('fe80::1')), NOT_FOUND);
    assert.strictEqual(r.neighbourLookup(5, 2, 4, v4('10.0.0.254')), NOT_FOUND);
    i = r.saLookup(4, v4('192.0.2.2'), 0xc0ffee01, 50);
    assert.ok(i >= 0);
    assert.strictEqual(r.readSa(i, out), READ_OK);
    assert.strictEqual(out[SA_E.SPI] >>> 0, 0xc0ffee01);
    assert.ok(r.saLookup(4, v6('2001:db8::2'), 0x100, 50) >= 0);
    assert.strictEqual(r.saLookup(4, v4('192.0.2.2'), 0xc0ffee01, 51), NOT_FOUND);
    assert.ok(r.policyLookup(4, 17) >= 0);
    assert.strictEqual(r.policyLookup(4, 18), NOT_FOUND);
    // churn: many inserts / deletes (tombstones, rebuilds); a stable entry is always found
    const stable = r.neighbourLookup(4, 2, 4, v4('10.0.0.254'));
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < 100; k++) w.upsert({ kind: 'neighbour', obj: { vrf: 4, ifindex: 9, family: 4, addr: `10.8.${round}.${k}`, state: 2, flags: 0 } });
      for (let k = 0; k < 100; k++) assert.ok(r.neighbourLookup(4, 9, 4, v4(`10.8.${round}.${k}`)) >= 0);
      for (let k = 0; k < 100; k++) w.remove({ kind: 'neighbour', obj: { vrf: 4, ifindex: 9, family: 4, addr: `10.8.${round}.${k}`, state: 0, flags: 0 } });
      assert.strictEqual(r.neighbourLookup(4, 2, 4, v4('10.0.0.254')), stable);
      assert.strictEqual(r.neighbourLookup(4, 9, 4, v4(`10.8.${round}.5`)), NOT_FOUND);
    }
    assert.notStrictEqual(BUSY, NOT_FOUND);
  });

  it('neighbour hit flags', () => {
    const { sab, w, r } = setup();
    for (const o of sampleObjects(0)) w.upsert(o);
    const i = r.neighbourLookup(0, 2, 4, v4('10.0.0.254'));
    const j = r.neighbourLookup(0, 3, 6, v6('fe80::1'));
    r.markNeighbourHit(i);
    r.markNeighbourHit(i);
    r.markNeighbourHit(j);
    // an update of the neighbour does not clear its hit flag, and does not count as a change
    const n = sampleObjects(0).find((o) => o.kind === 'neighbour')!;
    assert.strictEqual(w.upsert(n), false);
    const daemon = ShmReader.attach(sab);
    const hits = daemon.takeNeighbourHits().map((x: Neighbour) => x.addr).sort();
    assert.deepStrictEqual(hits, ['10.0.0.254', 'fe80::1']);
    assert.deepStrictEqual(daemon.takeNeighbourHits(), []);
    const ro = ShmReader.attach(sab, { readonly: true });
    assert.throws(() => ro.markNeighbourHit(i), /read-only/);
  });

  it('rules in priority order and resolve4/resolve6 (Linux semantics for the simple cases)', () => {
    const { w, r } = setup();
    const base = { vrf: 1, family: 4 as const, srcLen: 0, dstLen: 0, fwmark: 0, fwmask: 0, tos: 0, invert: false, ipproto: 0, suppressPrefixlen: -1, gotoTarget: 0, table: 0 };
    // no rules: local, main, default
    w.upsert({ kind: 'route', obj: route4('10.0.0.0', 8, '1.1.1.1', { vrf: 1 }) });
    const res = (dst: string, flow = {}) => r.resolve4(1, v4(dst), flow);
    const gw = (v: number) => (v > 0 ? r.nexthop(v & 0x3fffff)!.gw ?? r.nexthop(v & 0x3fffff)!.type : v);
    assert.strictEqual(gw(res('10.1.2.3')), '1.1.1.1');
    assert.strictEqual(res('11.0.0.1'), RESOLVE_NONE);
    w.upsert({ kind: 'route', obj: route4('11.0.0.0', 8, '2.2.2.2', { vrf: 1, table: 100 }) });
    w.upsert({ kind: 'route', obj: { ...route4('10.9.0.0', 16, undefined, { vrf: 1, table: 100, type: 'throw' }), nexthops: [] } });
    w.upsert({ kind: 'route', obj: route4('10.0.0.0', 8, '3.3.3.3', { vrf: 1, table: 100 }) });
    const rules = [
      { ...base, priority: 0, table: 255, action: 'to_tbl' as const },
      { ...base, priority: 10, action: 'goto' as const, gotoTarget: 30, src: '172.16.0.0', srcLen: 12 },
      { ...base, priority: 15, action: 'prohibit' as const, src: '172.16.0.0', srcLen: 12 },
      { ...base, priority: 30, action: 'blackhole' as const, dst: '12.0.0.0', dstLen: 8 },
      { ...base, priority: 40, action: 'unreachable' as const, fwmark: 0x5, fwmask: 0xf },
      { ...base, priority: 50, action: 'to_tbl' as const, table: 100, iif: 'eth1' },
      { ...base, priority: 60, action: 'to_tbl' as const, table: 100, suppressPrefixlen: 8 },
      { ...base, priority: 70, action: 'nop' as const },
      { ...base, priority: 80, action: 'to_tbl' as const, table: 100, invert: true, dst: '10.0.0.0', dstLen: 8 },
      { ...base, priority: 32766, action: 'to_tbl' as const, table: 254 },
    ];
    for (const x of [...rules].reverse()) w.upsert({ kind: 'rule', obj: x });
    const idx = new Int32Array(64);
    const n = r.rules(1, 4, idx);
    assert.strictEqual(n, rules.length);
    const rb = new Uint32Array(64);
    assert.deepStrictEqual(Array.from(idx.subarray(0, n)).map((i) => { assert.strictEqual(r.readRule(i, rb), READ_OK); return rb[4]; }),
      rules.map((x) => x.priority));
    assert.deepStrictEqual(r.list('rule', { vrf: 1 }).map((x) => x.obj.priority), rules.map((x) => x.priority));
    assert.strictEqual(gw(res('10.1.2.3')), '1.1.1.1'); // rule 60 suppressed (/8 <= 8), 80 inverted no match: main
    assert.strictEqual(gw(res('10.1.2.3', { iif: 'eth1' })), '3.3.3.3'); // rule 50
    assert.strictEqual(gw(res('10.9.2.3', { iif: 'eth1' })), '1.1.1.1'); // throw in table 100 -> main
    assert.strictEqual(gw(res('11.0.0.1')), '2.2.2.2'); // rule 80 (not to 10/8)
    assert.strictEqual(res('12.0.0.1'), RESOLVE_BLACKHOLE);
    assert.strictEqual(res('10.1.2.3', { mark: 0x15 }), RESOLVE_UNREACHABLE);
    assert.strictEqual(gw(res('10.1.2.3', { mark: 0x16 })), '1.1.1.1'); // (0x5 ^ 0x16) & 0xf != 0
    assert.strictEqual(gw(res('10.1.2.3', { src: v4('172.16.5.5') })), '1.1.1.1'); // goto 30 skips 15
    assert.strictEqual(res('12.1.2.3', { src: v4('172.16.5.5') }), RESOLVE_BLACKHOLE);
    w.remove({ kind: 'rule', obj: rules[1] });
    assert.strictEqual(res('10.1.2.3', { src: v4('172.16.5.5') }), RESOLVE_PROHIBIT);
    // local table: type local
    w.upsert({ kind: 'route', obj: route4('10.0.0.1', 32, undefined, { vrf: 1, table: 255, type: 'local', scope: 254 }) });
    const lv = res('10.0.0.1');
    assert.strictEqual(r.nexthop(lv & 0x3fffff)!.type, 'local');
    assert.strictEqual(fibKind(lv), 1);
    // IPv6 without rules: main
    w.upsert({ kind: 'route', obj: route6('2001:db8::', 32, 'fe80::9', { vrf: 1 }) });
    assert.strictEqual(gw(r.resolve6(1, v6('2001:db8:1::1'))), 'fe80::9');
    assert.strictEqual(r.resolve6(1, v6('2001:db9::1')), RESOLVE_NONE);
  });

  it('attach() after a populated create rebuilds indexes: further operations behave like a writer that never restarted', () => {
    const cfg = { ...SMALL_CONFIG, fib4Tables: 10, fib6Tables: 4, maxRoutes: 5000 };
    const a = setup(cfg), b = setup(cfg);
    let seed = 7;
    const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
    const gen = (): AnyObject => {
      const vrf = rnd(3);
      const k = rnd(10);
      if (k < 6) {
        const plen = [8, 16, 24, 25, 30, 32][rnd(6)];
        const p = (((10 << 24) | (rnd(4) << 16) | (rnd(4) << 8) | rnd(256)) & (plen === 0 ? 0 : -1 << (32 - plen))) >>> 0;
        const dst = `${p >>> 24}.${(p >>> 16) & 255}.${(p >>> 8) & 255}.${p & 255}`;
        const nh = rnd(3) === 0 ? [{ gw: `1.1.1.${rnd(4)}`, ifindex: 2, weight: 1 + rnd(3), flags: 0 }, { gw: `1.1.2.${rnd(4)}`, ifindex: 3, weight: 1, flags: 0 }]
          : [{ gw: `1.1.1.${rnd(8)}`, ifindex: 2, weight: 1, flags: 0 }];
        return { kind: 'route', obj: { ...route4(dst, plen, undefined, { vrf, priority: rnd(3) * 10, table: [254, 100][rnd(2)] }), nexthops: nh } };
      }
      if (k < 8) {
        const plen = [48, 64][rnd(2)];
        return { kind: 'route', obj: route6(plen === 64 ? `2001:db8:${rnd(4)}:${1 + rnd(15)}::` : `2001:db8:${rnd(4)}::`, plen, `fe80::${1 + rnd(4)}`, { vrf }) };
      }
      if (k < 9) return { kind: 'neighbour', obj: { vrf, ifindex: 2, family: 4, addr: `1.1.1.${rnd(16)}`, lladdr: `00:00:00:00:00:0${rnd(8)}`, state: 2, flags: 0 } };
      return sampleObjects(vrf)[rnd(sampleObjects(vrf).length)];
    };
    const step = (ws: ShmWriter[], o: AnyObject, del: boolean) => { for (const x of ws) { if (del) x.remove(o); else x.upsert(o); } };
    for (let i = 0; i < 1500; i++) step([a.w, b.w], gen(), rnd(4) === 0);
    const wa = ShmWriter.attach(a.sab);
    assert.strictEqual(wa.attached, true);
    assert.deepStrictEqual(all(a.r), all(b.r));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 600; i++) step([wa, b.w], gen(), rnd(4) === 0);
      for (const x of [wa, b.w]) x.beginSync();
      seed = 1000 + round;
      const keepSeed = seed;
      for (const x of [wa, b.w]) {
        seed = keepSeed;
        for (let i = 0; i < 400; i++) x.upsert(gen());
      }
      assert.deepStrictEqual(wa.endSync(), b.w.endSync());
      assert.deepStrictEqual(all(a.r), all(b.r));
      const ha = a.r.header(), hb = b.r.header();
      for (const k of Object.keys(ha.kinds) as (keyof typeof ha.kinds)[]) assert.strictEqual(ha.kinds[k].count, hb.kinds[k].count, k);
      // forwarding: same next hops for the same destinations
      for (let vrf = 0; vrf < 3; vrf++) {
        for (const table of [254, 100]) {
          const sa4 = a.r.fib4Slot(vrf, table), sb4 = b.r.fib4Slot(vrf, table);
          assert.strictEqual(sa4 < 0, sb4 < 0);
          if (sa4 < 0) continue;
          for (let i = 0; i < 3000; i++) {
            const addr = ((10 << 24) | (rnd(4) << 16) | (rnd(4) << 8) | rnd(256)) >>> 0;
            const va = a.r.lookup4(sa4, addr), vb = b.r.lookup4(sb4, addr);
            assert.deepStrictEqual(describeFib(a.r, va), describeFib(b.r, vb));
          }
        }
        const s6a = a.r.fib6Slot(vrf, 254), s6b = b.r.fib6Slot(vrf, 254);
        assert.strictEqual(s6a < 0, s6b < 0);
        if (s6a >= 0) {
          for (let i = 0; i < 500; i++) {
            const x = v6(`2001:db8:${rnd(4)}:${rnd(16).toString(16)}::${rnd(100)}`);
            assert.deepStrictEqual(describeFib(a.r, a.r.lookup6(s6a, x)), describeFib(b.r, b.r.lookup6(s6b, x)));
          }
        }
      }
    }
  });

  it('attach() after a crash in the middle of a write repairs the tables and the FIB', () => {
    const { sab, w, r } = setup();
    for (const o of sampleObjects(0)) w.upsert(o);
    w.upsert({ kind: 'route', obj: route4('10.1.1.0', 26, '10.0.0.254') });
    const u = new Uint32Array(sab);
    const s = r.fib4Slot(0, 254);
    const good = describeFib(r, r.lookup4(s, v4('10.1.1.1')));
    // simulate: dirty flag set, a neighbour entry half-written, a FIB word clobbered
    u[HDR.DIRTY] = 1;
    const ni = r.neighbourLookup(0, 2, 4, v4('10.0.0.9'));
    const nOff = computeLayout(SMALL_CONFIG).regions.neighs.offset / 4 + ni * NEIGH_E.WORDS;
    u[nOff] += 1;
    const t24 = computeLayout(SMALL_CONFIG).regions.tbl24.offset / 4 + s * (1 << 24);
    u[t24 + (v4('10.200.0.0') >>> 8)] = 0x40000000 | (24 << 22) | 5;
    const w2 = ShmWriter.attach(sab);
    assert.strictEqual(r.header().dirty, false);
    assert.strictEqual(r.neighbourLookup(0, 2, 4, v4('10.0.0.9')), NOT_FOUND);
    assert.strictEqual(r.list('neighbour').length, 2);
    assert.deepStrictEqual(describeFib(r, r.lookup4(s, v4('10.1.1.1'))), good);
    assert.deepStrictEqual(describeFib(r, r.lookup4(s, v4('10.200.0.1'))), describeFib(r, r.lookup4(s, v4('10.201.0.1'))));
    // the dropped neighbour comes back with the next sync
    w2.beginSync();
    for (const o of sampleObjects(0)) w2.upsert(o);
    w2.upsert({ kind: 'route', obj: route4('10.1.1.0', 26, '10.0.0.254') });
    assert.deepStrictEqual(w2.endSync(), { vrf: 0, link: 0, address: 0, route: 0, rule: 0, neighbour: 0, policy: 0, sa: 0 });
    assert.ok(r.neighbourLookup(0, 2, 4, v4('10.0.0.9')) >= 0);
  });
});

/** Content of what a FIB value points to (indices differ between two writers). */
export function describeFib(r: ShmReader, v: number): unknown {
  if (v === 0) return 0;
  const kind = v >>> 30, plen = (v >>> 22) & 255, idx = v & 0x3fffff;
  if (kind === 1) return { plen, nh: r.nexthop(idx) };
  const g = r.group(idx)!;
  return { plen, members: g.members.map((m) => ({ w: m.weight, nh: r.nexthop(m.nexthop) })), buckets: g.buckets };
}
