// netlink/rtnl.ts against real kernel messages (tests/fixtures/netlink/*.json, recorded by
// tests/fixtures/netlink/record.py on Linux 6.18 / iproute2 6.1), builders and round trips.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { Address, Link, Neighbour, Route, Rule } from '../../lib/model';
import { encodeAttr, MessageBuilder, NlMsg, parseHex, parseMessages } from '../../netlink/codec';
import * as C from '../../netlink/constants';
import {
  decodeRtnl, dumpRequest, encodeAddress, encodeLink, encodeNeighbour, encodeRoute, encodeRule, getNsidByFd, neighUse,
  RtnlResult, setRoute4FastPath,
} from '../../netlink/rtnl';

const FIX = path.resolve(__dirname, '../../../tests/fixtures/netlink');

interface Fixture { kernel: string; steps: { command: string; messages: { source: string; proto: string; hex: string }[] }[] }
interface Decoded { command: string; source: string; msg: NlMsg; r: RtnlResult }

function load(name: string): Fixture {
  return JSON.parse(fs.readFileSync(path.join(FIX, `${name}.json`), 'utf8')) as Fixture;
}

/** Every rtnetlink message of a fixture, decoded with vrf 3. */
function decodeFixture(name: string): Decoded[] {
  const out: Decoded[] = [];
  for (const s of load(name).steps) {
    for (const d of s.messages) {
      if (d.proto !== 'rtnl') continue;
      const p = parseHex(d.hex);
      assert.deepEqual(p.errors, [], `${name}: ${s.command}`);
      for (const msg of p.msgs) out.push({ command: s.command, source: d.source, msg, r: decodeRtnl(msg, 3) });
    }
  }
  return out;
}

const of = <K extends RtnlResult['kind']>(ds: Decoded[], kind: K, filter: (d: Decoded) => boolean = () => true) =>
  ds.filter(d => d.r.kind === kind && filter(d)).map(d => d.r as Extract<RtnlResult, { kind: K }>);
const opOf = (r: RtnlResult): string | undefined => ('op' in r ? r.op : undefined);
const dumped = (ds: Decoded[], command: string) => ds.filter(d => d.command === command);

/** name → ifindex from the link messages of a fixture */
function ifindexes(ds: Decoded[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const l of of(ds, 'link')) m[l.obj.name] = l.obj.ifindex;
  return m;
}

const NAMES = ['links', 'addresses', 'routes', 'rules', 'neighbours', 'nsid', 'xfrm-policy', 'errors'];

describe('netlink rtnl: every recorded kernel message decodes', () => {
  for (const name of NAMES) {
    it(`${name}.json: no framing errors, nothing malformed, only expected 'ignored'`, () => {
      const ds = decodeFixture(name);
      assert.ok(ds.length > 0 || name === 'xfrm-policy');
      for (const d of ds) {
        assert.notEqual(d.r.kind, 'malformed', `${d.command}: ${JSON.stringify(d.r)}`);
        if (d.r.kind === 'ignored') assert.match(d.r.why, /AF_BRIDGE|NTF_PROXY|not representable/, `${d.command}: ${d.r.why}`);
        if ('obj' in d.r) assert.equal((d.r.obj as { vrf: number }).vrf, 3);
      }
    });
  }
});

describe('netlink rtnl: links', () => {
  const ds = decodeFixture('links');
  const idx = ifindexes(ds);
  const dump = of(dumped(ds, 'dump RTM_GETLINK AF_UNSPEC'), 'link').map(r => r.obj);
  const byName = (n: string) => dump.find(l => l.name === n)!;

  it('decodes the dump into model links (port -1, kind from IFLA_INFO_KIND, MAC, MTU, IFLA_LINK)', () => {
    assert.deepEqual(dump.map(l => l.name).sort(), ['br0', 'lo', 'mv0', 'tun0', 'veth0', 'veth1']);
    assert.deepEqual(byName('lo'), {
      vrf: 3, ifindex: 1, name: 'lo', kind: '', mac: '00:00:00:00:00:00', mtu: 65536,
      flags: C.IFF_UP | C.IFF_LOOPBACK | C.IFF_RUNNING | C.IFF_LOWER_UP, adminUp: true, operUp: true, master: 0, link: 0, port: -1,
    });
    const v0 = byName('veth0');
    assert.deepEqual({ ...v0, flags: 0 }, {
      vrf: 3, ifindex: idx.veth0, name: 'veth0', kind: 'veth', mac: '02:00:00:00:00:01', mtu: 1400, flags: 0,
      adminUp: false, operUp: false, master: 0, link: idx.veth1, port: -1,
    });
    const v1 = byName('veth1');
    assert.equal(v1.mtu, 9000);
    assert.equal(v1.mac, '02:00:00:00:00:02');
    assert.equal(v1.adminUp, true);
    assert.equal(v1.operUp, false, 'peer is down: no carrier');
    assert.equal(v1.link, idx.veth0);
    assert.equal(byName('br0').kind, 'bridge');
    assert.equal(byName('br0').mac, '02:00:00:00:00:10');
    assert.deepEqual([byName('mv0').kind, byName('mv0').link, byName('mv0').mac], ['macvlan', idx.veth0, '02:00:00:00:00:20']);
    assert.deepEqual([byName('tun0').kind, byName('tun0').mac], ['tun', ''], 'a tun device has no L2 address');
  });

  it('follows up/down, master and the delete of both veth ends', () => {
    const up = of(ds, 'link', d => d.command === 'ip link set veth1 up').map(r => r.obj).filter(l => l.name === 'veth1');
    assert.ok(up.some(l => l.adminUp && l.operUp));
    const enslaved = of(ds, 'link', d => d.command === 'ip link set veth1 master br0').map(r => r.obj).filter(l => l.name === 'veth1');
    assert.ok(enslaved.length > 0 && enslaved.every(l => l.master === idx.br0));
    const del = of(ds, 'link', d => d.command === 'ip link del veth0' && opOf(d.r) === 'del').map(r => r.obj.name).sort();
    assert.deepEqual(del, ['veth0', 'veth1']);
  });

  it("ignores AF_BRIDGE port messages: a bridge port's RTM_DELLINK is not a link delete", () => {
    const nomaster = ds.filter(d => d.command === 'ip link set veth1 nomaster');
    const bridgeDel = nomaster.filter(d => d.msg.type === C.RTM_DELLINK);
    assert.ok(bridgeDel.length >= 1);
    for (const d of bridgeDel) assert.deepEqual(d.r, { kind: 'ignored', why: 'link message with family 7 (AF_BRIDGE port info)' });
    assert.equal(of(ds, 'link', d => opOf(d.r) === 'del' && d.command === 'ip link set veth1 nomaster').length, 0);
  });
});

describe('netlink rtnl: addresses', () => {
  const ds = decodeFixture('addresses');
  const idx = ifindexes(ds);
  const dump = [...of(dumped(ds, 'dump RTM_GETADDR AF_INET'), 'address'), ...of(dumped(ds, 'dump RTM_GETADDR AF_INET6'), 'address')].map(r => r.obj);
  const find = (a: string) => dump.find(x => x.addr === a)!;

  it('decodes v4/v6 addresses, secondary flag, host scope and point-to-point peers', () => {
    const a = (addr: string, plen: number, ifindex: number, scope: number, flags: number, peer?: string): Address =>
      ({ vrf: 3, ifindex, family: addr.includes(':') ? 6 : 4, addr, plen, scope, flags, ...(peer ? { peer } : {}) });
    assert.deepEqual(find('10.1.0.1'), a('10.1.0.1', 24, idx.veth0, 0, C.IFA_F_PERMANENT));
    assert.deepEqual(find('10.1.0.100'), a('10.1.0.100', 24, idx.veth0, 0, C.IFA_F_PERMANENT | C.IFA_F_SECONDARY));
    assert.deepEqual(find('10.3.0.1'), a('10.3.0.1', 32, idx.veth0, 0, C.IFA_F_PERMANENT, '10.3.0.2'));
    assert.deepEqual(find('192.0.2.1'), a('192.0.2.1', 32, 1, C.RT_SCOPE_HOST, C.IFA_F_PERMANENT));
    assert.deepEqual(find('127.0.0.1'), a('127.0.0.1', 8, 1, C.RT_SCOPE_HOST, C.IFA_F_PERMANENT));
    assert.deepEqual(find('2001:db8:1::2'), a('2001:db8:1::2', 64, idx.veth0, 0, C.IFA_F_PERMANENT));
    assert.deepEqual(find('2001:db8:9::1'), a('2001:db8:9::1', 128, idx.veth1, 0, C.IFA_F_PERMANENT | C.IFA_F_NODAD, '2001:db8:9::2'));
    assert.deepEqual(find('2001:db8:3::1'), a('2001:db8:3::1', 64, idx.veth1, 0, C.IFA_F_NODAD));
    assert.ok(dump.some(x => x.family === 6 && x.addr.startsWith('fe80::') && x.scope === C.RT_SCOPE_LINK));
  });

  it('sees DAD finish (tentative, then not) and deletes', () => {
    const ev = of(ds, 'address', d => d.source === 'event').map(r => r.obj).filter(x => x.addr === '2001:db8:1::2');
    assert.ok(ev.some(x => x.flags & C.IFA_F_TENTATIVE));
    assert.ok(ev.some(x => !(x.flags & C.IFA_F_TENTATIVE)));
    const del = of(ds, 'address', d => d.command === 'ip addr del 10.3.0.1 peer 10.3.0.2/32 dev veth0');
    assert.deepEqual(del.map(r => [r.op, r.obj.addr, r.obj.peer]), [['del', '10.3.0.1', '10.3.0.2']]);
  });
});

describe('netlink rtnl: routes', () => {
  const ds = decodeFixture('routes');
  const idx = ifindexes(ds);
  const v4 = of(dumped(ds, 'dump RTM_GETROUTE AF_INET'), 'route').map(r => r.obj);
  const v6 = of(dumped(ds, 'dump RTM_GETROUTE AF_INET6'), 'route').map(r => r.obj);
  const find = (rs: Route[], dst: string, plen: number, table = 254) => {
    const r = rs.filter(x => x.dst === dst && x.plen === plen && x.table === table);
    assert.equal(r.length, 1, `${dst}/${plen} table ${table}: ${r.length} routes`);
    return r[0];
  };
  const route = (p: Partial<Route> & Pick<Route, 'family' | 'dst' | 'plen'>): Route => ({
    vrf: 3, table: 254, tos: 0, priority: 0, type: 'unicast', protocol: C.RTPROT_BOOT, scope: 0, nexthops: [], ...p,
  });

  it('default routes are 0.0.0.0/0 and ::/0', () => {
    assert.deepEqual(find(v4, '0.0.0.0', 0), route({
      family: 4, dst: '0.0.0.0', plen: 0, nexthops: [{ gw: '10.1.0.254', ifindex: idx.veth0, weight: 1, flags: 0 }],
    }));
    assert.deepEqual(find(v6, '::', 0), route({
      family: 6, dst: '::', plen: 0, priority: 1024, nexthops: [{ gw: 'fe80::1', ifindex: idx.veth0, weight: 1, flags: 0 }],
    }));
  });

  it('ECMP with weights (v4 and v6 RTA_MULTIPATH)', () => {
    assert.deepEqual(find(v4, '192.168.20.0', 24).nexthops, [
      { gw: '10.1.0.2', ifindex: idx.veth0, weight: 3, flags: 0 },
      { gw: '10.2.0.2', ifindex: idx.veth1, weight: 1, flags: 0 },
    ]);
    assert.deepEqual(find(v6, '2001:db8:20::', 48).nexthops, [
      { gw: '2001:db8:1::2', ifindex: idx.veth0, weight: 2, flags: 0 },
      { gw: '2001:db8:2::2', ifindex: idx.veth1, weight: 1, flags: 0 },
    ]);
  });

  it('blackhole/unreachable/prohibit/throw have no next hops (also v6, which the kernel attaches to lo)', () => {
    assert.deepEqual(find(v4, '192.168.30.0', 24), route({ family: 4, dst: '192.168.30.0', plen: 24, type: 'blackhole' }));
    assert.deepEqual(find(v4, '192.168.31.0', 24), route({ family: 4, dst: '192.168.31.0', plen: 24, type: 'unreachable' }));
    assert.deepEqual(find(v4, '192.168.32.0', 24), route({ family: 4, dst: '192.168.32.0', plen: 24, type: 'prohibit', priority: 7 }));
    assert.deepEqual(find(v4, '192.168.33.0', 24, 100), route({ family: 4, dst: '192.168.33.0', plen: 24, type: 'throw', table: 100 }));
    assert.deepEqual(find(v6, '2001:db8:30::', 48), route({ family: 6, dst: '2001:db8:30::', plen: 48, type: 'blackhole', priority: 1024 }));
    assert.deepEqual(find(v6, '2001:db8:31::', 48, 100), route({ family: 6, dst: '2001:db8:31::', plen: 48, type: 'prohibit', priority: 1024, table: 100 }));
  });

  it('metrics mtu, tables 100/1000, proto, scope, prefsrc, tos, onlink, via inet6', () => {
    const gw2 = (gw: string, dev = idx.veth0, flags = 0) => [{ gw, ifindex: dev, weight: 1, flags }];
    assert.deepEqual(find(v4, '192.168.10.0', 24), route({ family: 4, dst: '192.168.10.0', plen: 24, priority: 50, protocol: C.RTPROT_STATIC, nexthops: gw2('10.1.0.2') }));
    assert.deepEqual(find(v4, '192.168.40.0', 24), route({ family: 4, dst: '192.168.40.0', plen: 24, mtu: 1300, nexthops: gw2('10.1.0.2') }));
    assert.deepEqual(find(v4, '192.168.50.0', 24, 100), route({
      family: 4, dst: '192.168.50.0', plen: 24, table: 100, protocol: C.RTPROT_BABEL, scope: C.RT_SCOPE_LINK,
      nexthops: [{ ifindex: idx.veth0, weight: 1, flags: 0 }],
    }));
    assert.deepEqual(find(v4, '192.168.51.0', 24, 1000), route({ family: 4, dst: '192.168.51.0', plen: 24, table: 1000, nexthops: gw2('10.2.0.2', idx.veth1) }));
    assert.deepEqual(find(v4, '192.168.60.0', 24), route({ family: 4, dst: '192.168.60.0', plen: 24, prefsrc: '10.1.0.1', nexthops: gw2('10.1.0.2') }));
    assert.deepEqual(find(v4, '192.168.70.0', 24), route({ family: 4, dst: '192.168.70.0', plen: 24, tos: 0x10, nexthops: gw2('10.1.0.2') }));
    assert.deepEqual(find(v4, '192.168.80.0', 24).nexthops, gw2('10.9.9.9', idx.veth0, C.RTNH_F_ONLINK));
    assert.deepEqual(find(v4, '192.168.90.0', 24).nexthops, gw2('fe80::2'), 'RTA_VIA (IPv4 route via an IPv6 gateway)');
    assert.deepEqual(find(v4, '10.77.0.0', 16), route({
      family: 4, dst: '10.77.0.0', plen: 16, priority: 5, scope: C.RT_SCOPE_LINK, nexthops: [{ ifindex: idx.veth1, weight: 1, flags: 0 }],
    }));
    assert.deepEqual(find(v6, '2001:db8:40::', 48), route({
      family: 6, dst: '2001:db8:40::', plen: 48, priority: 1024, protocol: C.RTPROT_BIRD, mtu: 1280, nexthops: gw2('2001:db8:1::2'),
    }));
  });

  it('kernel routes of the local table: local, broadcast, v6 multicast', () => {
    const loc = find(v4, '10.1.0.1', 32, 255);
    assert.deepEqual(loc, route({
      family: 4, dst: '10.1.0.1', plen: 32, table: 255, type: 'local', protocol: C.RTPROT_KERNEL, scope: C.RT_SCOPE_HOST,
      prefsrc: '10.1.0.1', nexthops: [{ ifindex: idx.veth0, weight: 1, flags: 0 }],
    }));
    assert.equal(find(v4, '10.1.0.255', 32, 255).type, 'broadcast');
    assert.ok(v6.some(r => r.type === 'multicast' && r.dst === 'ff00::' && r.plen === 8 && r.table === 255));
  });

  it('IPv6 source-specific routes (subtrees) are ignored', () => {
    const r = ds.filter(d => d.command === 'ip -6 route add 2001:db8:50::/48 from 2001:db8:7::/64 via 2001:db8:1::2').map(d => d.r);
    assert.deepEqual(r, [{ kind: 'ignored', why: 'source-specific route (rtm_src_len 64): not representable in the model' }]);
    assert.ok(!v6.some(x => x.dst === '2001:db8:50::'));
  });

  it('deletes carry the whole route; a v6 multipath route goes away one next hop per message', () => {
    const del = of(ds, 'route', d => d.command === 'ip route del 192.168.20.0/24');
    assert.equal(del.length, 1);
    assert.equal(del[0].op, 'del');
    assert.equal(del[0].obj.nexthops.length, 2);
    const perNh = of(ds, 'route', d => d.command === 'ip link del veth0' && opOf(d.r) === 'del').map(r => r.obj).filter(r => r.dst === '2001:db8:20::');
    assert.equal(perNh.length, 2);
    assert.ok(perNh.every(r => r.nexthops.length === 1));
    const app = ds.filter(d => d.command === 'ip -6 route append 2001:db8:20::/48 via 2001:db8:2::2 dev veth1' && d.r.kind === 'route');
    assert.equal(app.length, 1);
    assert.ok(app[0].msg.flags & C.NLM_F_APPEND, 'append notification keeps NLM_F_APPEND');
    assert.equal((app[0].r as { obj: Route }).obj.nexthops.length, 2, 'and carries every next hop of the route');
  });
});

describe('netlink rtnl: rules', () => {
  const ds = decodeFixture('rules');
  const v4 = of(dumped(ds, 'dump RTM_GETRULE AF_INET'), 'rule').map(r => r.obj);
  const v6 = of(dumped(ds, 'dump RTM_GETRULE AF_INET6'), 'rule').map(r => r.obj);
  const pref = (rs: Rule[], p: number) => { const r = rs.filter(x => x.priority === p); assert.equal(r.length, 1, `pref ${p}`); return r[0]; };
  const rule = (p: Partial<Rule>): Rule => ({
    vrf: 3, family: 4, priority: 0, table: 0, action: 'to_tbl', srcLen: 0, dstLen: 0, fwmark: 0, fwmask: 0, tos: 0,
    invert: false, ipproto: 0, suppressPrefixlen: -1, gotoTarget: 0, ...p,
  });

  it('default rules', () => {
    assert.deepEqual(pref(v4, 0), rule({ table: 255 }));
    assert.deepEqual(pref(v4, 32766), rule({ priority: 32766, table: 254 }));
    assert.deepEqual(pref(v4, 32767), rule({ priority: 32767, table: 253 }));
    assert.deepEqual(pref(v6, 32766), rule({ family: 6, priority: 32766, table: 254 }));
  });

  it('selectors and actions', () => {
    assert.deepEqual(pref(v4, 100), rule({ priority: 100, table: 100, src: '10.0.0.0', srcLen: 8 }));
    assert.deepEqual(pref(v4, 101), rule({ priority: 101, table: 101, fwmark: 0x10, fwmask: 0xff }));
    assert.deepEqual(pref(v4, 1010), rule({ priority: 1010, table: 101, fwmark: 0x20, fwmask: 0xffffffff }));
    assert.deepEqual(pref(v4, 102), rule({ priority: 102, table: 102, iif: 'veth0' }));
    assert.deepEqual(pref(v4, 103), rule({ priority: 103, table: 103, dst: '192.168.0.0', dstLen: 16, invert: true }));
    assert.deepEqual(pref(v4, 104), rule({ priority: 104, table: 104, oif: 'veth1' }));
    assert.deepEqual(pref(v4, 105), rule({ priority: 105, table: 105, ipproto: C.IPPROTO_TCP, sport: [1000, 1000], dport: [80, 90] }));
    assert.deepEqual(pref(v4, 106), rule({ priority: 106, action: 'goto', gotoTarget: 110 }));
    assert.deepEqual(pref(v4, 107), rule({ priority: 107, action: 'blackhole' }));
    assert.deepEqual(pref(v4, 108), rule({ priority: 108, action: 'prohibit' }));
    assert.deepEqual(pref(v4, 109), rule({ priority: 109, action: 'unreachable' }));
    assert.deepEqual(pref(v4, 110), rule({ priority: 110, table: 254, suppressPrefixlen: 0 }));
    assert.deepEqual(pref(v4, 111), rule({ priority: 111, action: 'nop' }));
    assert.deepEqual(pref(v4, 112), rule({ priority: 112, table: 108, tos: 0x10 }));
    assert.deepEqual(pref(v4, 113), rule({ priority: 113, table: 1000, src: '10.5.0.0', srcLen: 16, dst: '10.6.0.0', dstLen: 16 }));
    assert.deepEqual(pref(v6, 200), rule({ family: 6, priority: 200, table: 200, src: '2001:db8::', srcLen: 32 }));
    assert.deepEqual(pref(v6, 201), rule({ family: 6, priority: 201, table: 201, src: '2001:db8:1::', srcLen: 48, iif: 'veth0', invert: true }));
  });

  it('rules with selectors the model lacks (uidrange, tun_id, l3mdev) are ignored, not widened', () => {
    for (const [cmd, what] of [['ip rule add uidrange 100-200 table 5 pref 300', 'uidrange'], ['ip rule add tun_id 5 table 6 pref 301', 'tun_id'],
      ['ip rule add l3mdev pref 302', 'l3mdev']]) {
      const r = ds.filter(d => d.command === cmd).map(d => d.r);
      assert.deepEqual(r, [{ kind: 'ignored', why: `rule with ${what}: not representable in the model` }]);
    }
    assert.ok(v4.every(r => r.priority < 300 || r.priority > 302));
  });

  it('FRA_DSCP becomes the tos match; a partial FRA_DSCP_MASK is not representable', () => {
    const hdr = Buffer.from([C.AF_INET, 0, 0, 0, 0, 0, 0, C.FR_ACT_TO_TBL, 0, 0, 0, 0]);
    const m = new MessageBuilder(C.RTM_NEWRULE, 0, 0).fixed(hdr).u32(C.FRA_TABLE, 7).u32(C.FRA_PRIORITY, 9).u8(C.FRA_DSCP, 46).build();
    const r = decodeRtnl(parseMessages(m).msgs[0], 3);
    assert.ok(r.kind === 'rule' && r.obj.tos === 46 << 2 && r.obj.table === 7);
    const partial = new MessageBuilder(C.RTM_NEWRULE, 0, 0).fixed(hdr).u8(C.FRA_DSCP, 46).u8(C.FRA_DSCP_MASK, 0x38).build();
    assert.deepEqual(decodeRtnl(parseMessages(partial).msgs[0], 3), { kind: 'ignored', why: 'rule with dscp mask: not representable in the model' });
  });

  it('rule deletes', () => {
    const del = of(ds, 'rule', d => opOf(d.r) === 'del').map(r => r.obj.priority).sort();
    assert.deepEqual(del, [100, 107, 200]);
  });
});

describe('netlink rtnl: neighbours', () => {
  const ds = decodeFixture('neighbours');
  const idx = ifindexes(ds);
  const dump = [...of(dumped(ds, 'dump RTM_GETNEIGH AF_INET'), 'neighbour'), ...of(dumped(ds, 'dump RTM_GETNEIGH AF_INET6'), 'neighbour')].map(r => r.obj);
  const find = (addr: string) => dump.find(n => n.addr === addr && n.ifindex === idx.veth0)!;
  const nb = (addr: string, state: number, lladdr?: string, flags = 0): Neighbour =>
    ({ vrf: 3, ifindex: idx.veth0, family: addr.includes(':') ? 6 : 4, addr, state, flags, ...(lladdr ? { lladdr } : {}) });

  it('ARP and NDP entries: permanent, stale, reachable, router flag', () => {
    assert.deepEqual(find('10.1.0.5'), nb('10.1.0.5', C.NUD_PERMANENT, '02:00:00:00:00:05'));
    assert.deepEqual(find('10.1.0.6'), nb('10.1.0.6', C.NUD_STALE, '02:00:00:00:00:06'));
    assert.deepEqual(find('10.1.0.7'), nb('10.1.0.7', C.NUD_REACHABLE, '02:00:00:00:00:07'));
    assert.deepEqual(find('2001:db8:1::5'), nb('2001:db8:1::5', C.NUD_PERMANENT, '02:00:00:00:00:15', C.NTF_ROUTER));
    assert.deepEqual(find('2001:db8:1::6'), nb('2001:db8:1::6', C.NUD_STALE, '02:00:00:00:00:16'));
  });

  it('entries without a link-layer address (failed resolution, nud failed)', () => {
    assert.deepEqual(find('10.1.0.99'), nb('10.1.0.99', C.NUD_FAILED));
    assert.deepEqual(find('10.1.0.9'), nb('10.1.0.9', C.NUD_FAILED));
    const ev = of(ds, 'neighbour', d => d.command.startsWith('(sleep 3.5')).map(r => r.obj);
    assert.ok(ev.some(n => n.addr === '10.1.0.99' && n.state === C.NUD_FAILED && n.lladdr === undefined));
  });

  it('deletes', () => {
    const del = of(ds, 'neighbour', d => d.command === 'ip neigh del 10.1.0.5 dev veth0' && opOf(d.r) === 'del');
    assert.deepEqual(del.map(r => r.obj.addr), ['10.1.0.5']);
  });
});

describe('netlink rtnl: nsid', () => {
  const ds = decodeFixture('nsid');
  it('RTM_NEWNSID/RTM_DELNSID events, the nsid dump and the GETNSID-by-fd reply', () => {
    assert.deepEqual(ds.filter(d => d.command === 'ip netns set lfpfx-nsid-b 5').map(d => d.r), [{ kind: 'nsid', op: 'new', nsid: 5 }]);
    assert.deepEqual(dumped(ds, 'dump RTM_GETNSID AF_UNSPEC').map(d => d.r), [
      { kind: 'nsid', op: 'new', nsid: 5 }, { kind: 'nsid', op: 'new', nsid: 7 }, { kind: 'done', errno: 0, interrupted: false },
    ]);
    assert.deepEqual(ds.filter(d => d.command === 'request RTM_GETNSID NETNSA_FD(lfpfx-nsid-b)').map(d => d.r), [{ kind: 'nsid', op: 'new', nsid: 5 }]);
    assert.deepEqual(ds.filter(d => d.command === 'ip netns del lfpfx-nsid-c').map(d => d.r), [{ kind: 'nsid', op: 'del', nsid: 7 }]);
  });

  it('decodes the optional NETNSA_* attributes', () => {
    const m = new MessageBuilder(C.RTM_NEWNSID, 0, 0).fixed(Buffer.from([0]))
      .s32(C.NETNSA_NSID, -1).u32(C.NETNSA_PID, 77).s32(C.NETNSA_TARGET_NSID, 4).s32(C.NETNSA_CURRENT_NSID, 9).build();
    assert.deepEqual(decodeRtnl(parseMessages(m).msgs[0], 0), { kind: 'nsid', op: 'new', nsid: -1, pid: 77, targetNsid: 4, currentNsid: 9 });
  });
});

/** First message of the given type in a fixture, as a mutable copy. */
function sample(name: string, pred: (d: Decoded) => boolean): Buffer {
  const d = decodeFixture(name).find(pred);
  assert.ok(d, 'sample not found');
  const m = d.msg;
  const b = Buffer.alloc(m.len);
  b.writeUInt32LE(m.len, 0); b.writeUInt16LE(m.type, 4); b.writeUInt16LE(m.flags, 6); b.writeUInt32LE(m.seq, 8); b.writeUInt32LE(m.pid, 12);
  m.payload.copy(b, 16);
  return b;
}
const dec = (b: Buffer) => decodeRtnl(parseMessages(b).msgs[0], 3);

describe('netlink rtnl: ignored and malformed', () => {
  const routeMsg = sample('routes', d => d.r.kind === 'route' && (d.r.obj as Route).dst === '192.168.20.0');

  it('ignores cloned routes, multicast-forwarding (IPMR) entries, RTN_UNSPEC, unknown message types', () => {
    const cloned = Buffer.from(routeMsg); cloned.writeUInt32LE(cloned.readUInt32LE(24) | C.RTM_F_CLONED, 24);
    assert.equal(dec(cloned).kind, 'ignored');
    assert.match((dec(cloned) as { why: string }).why, /RTM_F_CLONED/);
    const ipmr = Buffer.from(routeMsg); ipmr.writeUInt8(C.RTNL_FAMILY_IPMR, 16);
    assert.match((dec(ipmr) as { why: string }).why, /IPMR/);
    const unspec = Buffer.from(routeMsg); unspec.writeUInt8(0, 23);
    assert.equal(dec(unspec).kind, 'ignored');
    const other = Buffer.from(routeMsg); other.writeUInt16LE(C.RTM_NEWNEXTHOP, 4);
    assert.deepEqual(dec(other), { kind: 'ignored', why: 'unhandled rtnetlink message type 104' });
  });

  it('ignores proxy neighbours and bridge FDB entries', () => {
    const n = sample('neighbours', d => d.r.kind === 'neighbour');
    const proxy = Buffer.from(n); proxy.writeUInt8(C.NTF_PROXY, 26);
    assert.match((dec(proxy) as { why: string }).why, /NTF_PROXY/);
    const fdb = sample('links', d => d.msg.type === C.RTM_NEWNEIGH && d.msg.payload[0] === C.AF_BRIDGE);
    assert.match((dec(fdb) as { why: string }).why, /AF_BRIDGE/);
  });

  it('unknown attributes are skipped (same result as without them)', () => {
    const extra = encodeAttr(250, Buffer.from('garbage'));
    const nested = encodeAttr(251 | C.NLA_F_NESTED, Buffer.from([1, 2, 3]));
    const m = Buffer.concat([routeMsg, extra, nested]);
    m.writeUInt32LE(m.length, 0);
    assert.deepEqual(dec(m), dec(routeMsg));
  });

  it('malformed: truncated header struct, short attribute, bad rtnh_len, missing address, bad prefix length', () => {
    const check = (b: Buffer, re: RegExp) => {
      const r = dec(b);
      assert.equal(r.kind, 'malformed', JSON.stringify(r));
      assert.match((r as { text: string }).text, re);
    };
    const short = new MessageBuilder(C.RTM_NEWROUTE, 0, 0).fixed(Buffer.alloc(4)).build();
    check(short, /^RTM_NEWROUTE \(len 20\) at offset 0: rtmsg: 4 bytes, need 12$/);
    const badOif = new MessageBuilder(C.RTM_NEWROUTE, 0, 0).fixed(Buffer.from([2, 24, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]))
      .attr(C.RTA_OIF, Buffer.from([1, 0])).build();
    check(badOif, /RTA_OIF \(4\) at offset 28: payload 2 bytes, expected 4/);
    const mp = Buffer.alloc(8); mp.writeUInt16LE(3, 0);
    const badMp = new MessageBuilder(C.RTM_NEWROUTE, 0, 0).fixed(Buffer.from([2, 24, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]))
      .attr(C.RTA_MULTIPATH, mp).build();
    check(badMp, /RTA_MULTIPATH: rtnexthop at offset 32 has rtnh_len 3/);
    const noAddr = new MessageBuilder(C.RTM_NEWADDR, 0, 0).fixed(Buffer.from([2, 24, 0, 0, 1, 0, 0, 0])).build();
    check(noAddr, /RTM_NEWADDR .*no IFA_LOCAL\/IFA_ADDRESS/);
    const longPlen = Buffer.from(routeMsg); longPlen.writeUInt8(33, 17);
    check(longPlen, /rtm_dst_len 33 too long for IPv4/);
    const overlong = Buffer.from(routeMsg); overlong.writeUInt16LE(0xfff0, 28);
    check(overlong, /at offset 28: nla_len 65520 exceeds/);
  });

  it('a NLMSG_ERROR / NLMSG_DONE goes through the same decoder', () => {
    const r = decodeFixture('errors').filter(d => d.source === 'reply').map(d => d.r.kind);
    assert.deepEqual(r, ['ack', 'error', 'error', 'error']);
  });
});

describe('netlink rtnl: request builders', () => {
  it('dumpRequest: NLM_F_REQUEST|NLM_F_DUMP, the right family header, IFLA_EXT_MASK for links', () => {
    assert.equal(dumpRequest(C.RTM_GETLINK, C.AF_UNSPEC, 5).toString('hex'),
      '28000000120001030500000000000000' + '00'.repeat(16) + '08001d0008000000');
    assert.equal(dumpRequest(C.RTM_GETADDR, C.AF_INET, 6).toString('hex'), '18000000160001030600000000000000' + '0200000000000000');
    assert.equal(dumpRequest(C.RTM_GETROUTE, C.AF_INET6, 7).toString('hex'), '1c0000001a0001030700000000000000' + '0a' + '00'.repeat(11));
    assert.equal(dumpRequest(C.RTM_GETRULE, C.AF_INET, 8).toString('hex'), '1c000000220001030800000000000000' + '02' + '00'.repeat(11));
    assert.equal(dumpRequest(C.RTM_GETNEIGH, C.AF_INET6, 9).toString('hex'), '1c0000001e0001030900000000000000' + '0a' + '00'.repeat(11));
    assert.equal(dumpRequest(C.RTM_GETNSID, C.AF_UNSPEC, 10).toString('hex'), '140000005a0001030a00000000000000' + '00000000');
  });

  it('getNsidByFd: RTM_GETNSID + NETNSA_FD', () => {
    assert.equal(getNsidByFd(7, 3).toString('hex'), '1c0000005a000100030000000000000000000000' + '0800030007000000');
  });

  it('neighUse: RTM_NEWNEIGH, NTF_USE, NLM_F_REPLACE (+ACK, +CREATE on request), NDA_DST', () => {
    assert.equal(neighUse(3, 4, '10.1.0.6', 9).toString('hex'),
      '240000001c0005010900000000000000' + '02000000' + '03000000' + '0000' + '01' + '00' + '08000100' + '0a010006');
    const b = neighUse(5, 6, '2001:db8::1', 1, { create: true, ack: false });
    assert.equal(b.readUInt16LE(6), C.NLM_F_REQUEST | C.NLM_F_REPLACE | C.NLM_F_CREATE);
    const r = decodeRtnl(parseMessages(b).msgs[0], 0);
    assert.deepEqual(r, { kind: 'neighbour', op: 'new', obj: { vrf: 0, ifindex: 5, family: 6, addr: '2001:db8::1', state: 0, flags: C.NTF_USE } });
  });
});

describe('netlink rtnl: decode(encode(x)) round trips every object seen in the fixtures', () => {
  const all = NAMES.flatMap(decodeFixture);
  const roundTrip = <T>(kind: string, objs: T[], enc: (x: T) => Buffer) => {
    assert.ok(objs.length > 0, kind);
    for (const o of objs) {
      const r = decodeRtnl(parseMessages(enc(o)).msgs[0], 3);
      assert.equal(r.kind, kind);
      assert.deepEqual((r as unknown as { obj: T }).obj, o);
    }
  };
  it('links', () => roundTrip<Link>('link', of(all, 'link').map(r => r.obj), encodeLink));
  it('addresses', () => roundTrip<Address>('address', of(all, 'address').map(r => r.obj), encodeAddress));
  it('routes', () => roundTrip<Route>('route', of(all, 'route').map(r => r.obj), encodeRoute));
  it('rules', () => roundTrip<Rule>('rule', of(all, 'rule').map(r => r.obj), encodeRule));
  it('neighbours', () => roundTrip<Neighbour>('neighbour', of(all, 'neighbour').map(r => r.obj), encodeNeighbour));
  it('delete op is kept', () => {
    const r = of(all, 'route')[0].obj;
    assert.equal((decodeRtnl(parseMessages(encodeRoute(r, 'del')).msgs[0], 3) as { op: string }).op, 'del');
  });
});

describe('netlink rtnl: the IPv4 route fast path equals the general decoder', () => {
  after(() => setRoute4FastPath(true));
  const both = (msg: NlMsg): [RtnlResult, RtnlResult] => {
    setRoute4FastPath(true);
    const a = decodeRtnl(msg, 5);
    setRoute4FastPath(false);
    const b = decodeRtnl(msg, 5);
    setRoute4FastPath(true);
    return [a, b];
  };
  const routeMsgs = (): NlMsg[] => decodeFixture('routes').map((d) => d.msg)
    .filter((m) => m.type === C.RTM_NEWROUTE || m.type === C.RTM_DELROUTE);

  it('on every recorded route message', () => {
    const ms = routeMsgs();
    assert.ok(ms.length > 20);
    for (const m of ms) { const [a, b] = both(m); assert.deepEqual(a, b); }
  });

  it('on built routes (gateway, device only, prefsrc, table > 255, metric, tos, blackhole) and on mutated bytes', () => {
    const rs: Route[] = [
      { vrf: 5, table: 254, family: 4, dst: '11.0.1.0', plen: 24, tos: 0, priority: 0, type: 'unicast', protocol: 3, scope: 0, nexthops: [{ gw: '10.0.0.2', ifindex: 2, weight: 1, flags: 0 }] },
      { vrf: 5, table: 1000, family: 4, dst: '10.1.0.0', plen: 16, tos: 8, priority: 77, type: 'unicast', protocol: 4, scope: 253, prefsrc: '10.1.0.1', nexthops: [{ ifindex: 9, weight: 1, flags: 4 }] },
      { vrf: 5, table: 254, family: 4, dst: '0.0.0.0', plen: 0, tos: 0, priority: 5, type: 'blackhole', protocol: 4, scope: 0, nexthops: [] },
      { vrf: 5, table: 254, family: 4, dst: '192.0.2.128', plen: 25, tos: 0, priority: 0, type: 'unicast', protocol: 4, scope: 0, mtu: 1400, nexthops: [{ gw: '10.0.0.3', ifindex: 2, weight: 1, flags: 0 }] },
    ];
    let seed = 11;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    for (const r of rs) {
      const raw = encodeRoute(r, 'new', 1);
      const m = parseMessages(raw).msgs[0];
      const [a, b] = both(m);
      assert.deepEqual(a, b);
      assert.deepEqual(a, { kind: 'route', op: 'new', obj: r });
      for (let i = 0; i < 400; i++) {
        const x = Buffer.from(raw);
        for (let k = 1 + (rnd() % 3); k > 0; k--) x[16 + (rnd() % (x.length - 16))] = rnd() & 255;
        const cut = rnd() % 4 === 0 ? x.subarray(0, 16 + (rnd() % (x.length - 16))) : x;
        cut.writeUInt32LE(cut.length, 0);
        const mm = parseMessages(cut).msgs[0];
        if (!mm) continue;
        const [fa, fb] = both(mm);
        assert.deepEqual(fa, fb, `mutation ${x.toString('hex')}`);
      }
    }
  });
});
