// Issue 2 acceptance: every object kind configured with `ip` in the control-plane netns shows up in
// lfp's shared memory (and `fpctl show --json`) within 100 ms.
import { strict as assert } from 'assert';
import { Netns, sh } from '../lib/netns';
import { LfpEnv, waitUntil, sleep } from '../lib/lfp-env';
import type { Route, Link, Address, Neighbour, Rule, XfrmPolicy, Vrf } from '../../lib/model';

const DEADLINE_MS = Number(process.env.LFP_SYNC_DEADLINE_MS ?? 100);

describe('sync spine: ip -> cmgrd -> FPC -> fpmd -> shared memory', function () {
  this.timeout(60000);
  let cp: Netns;
  let env: LfpEnv;
  const extra: Netns[] = [];
  let ifA = 0, ifB = 0;

  before(async () => {
    cp = Netns.create('cp');
    cp.ip('link add veth0 type veth peer name veth1');
    cp.ip('link set veth0 up');
    cp.ip('link set veth1 up');
    env = await LfpEnv.start({ cpNetns: cp.name, ports: ['veth0'] });
    const idx = cp.ipJson<{ ifname: string; ifindex: number }[]>('link show');
    ifA = idx.find((l) => l.ifname === 'veth0')!.ifindex;
    ifB = idx.find((l) => l.ifname === 'veth1')!.ifindex;
  });
  after(() => {
    env?.stop();
    for (const n of extra) n.destroy();
    cp?.destroy();
  });

  /** Runs an ip command, then waits (at most DEADLINE_MS) for `cond` to hold in shared memory. */
  async function ipThen(cmd: string, what: string, cond: () => boolean): Promise<number> {
    cp.ip(cmd);
    try {
      return await waitUntil(what, DEADLINE_MS, cond, 1);
    } catch (e) {
      let later = 'not within 3 s either';
      try { later = `it took ${DEADLINE_MS + await waitUntil(what, 3000, cond, 1)} ms`; } catch { /* never */ }
      throw new Error(`"ip ${cmd}": ${(e as Error).message} (${later})\n${env.logs()}`);
    }
  }
  const link = (name: string) => env.list('link', 0).find((l: Link) => l.name === name);
  const route = (pred: (r: Route) => boolean) => env.list('route').find(pred);

  it('mirrors links: the initial dump, then MTU, MAC and admin state changes', async () => {
    assert.ok(link('veth0'), 'veth0 in shared memory after the initial dump');
    assert.equal(link('veth0')!.port, 0, 'veth0 is fast-path port 0 (from the config)');
    assert.equal(link('veth1')!.port, -1);
    await ipThen('link set veth0 mtu 1400', 'mtu 1400', () => link('veth0')?.mtu === 1400);
    await ipThen('link set veth0 address 02:00:00:aa:bb:cc', 'new mac', () => link('veth0')?.mac === '02:00:00:aa:bb:cc');
    await ipThen('link set veth0 down', 'admin down', () => link('veth0')?.adminUp === false);
    await ipThen('link set veth0 up', 'admin up', () => link('veth0')?.adminUp === true);
    await ipThen('link add dummyv0 type veth peer name dummyv1', 'new link', () => !!link('dummyv0'));
    await ipThen('link del dummyv0', 'link gone', () => !link('dummyv0') && !link('dummyv1'));
    const json = env.fpctlJson<Link[]>(['show', 'interfaces']);
    assert.ok(json.some((l) => l.name === 'veth0' && l.mtu === 1400 && l.mac === '02:00:00:aa:bb:cc'));
    const ports = env.fpctlJson<Link[]>(['show', 'ports']);
    assert.deepEqual(ports.map((l) => l.name), ['veth0']);
  });

  it('mirrors IPv4 and IPv6 addresses, and their removal', async () => {
    const addr = (a: string) => env.list('address').find((x: Address) => x.addr === a);
    await ipThen('addr add 10.1.0.1/24 dev veth0', 'v4 address', () => addr('10.1.0.1')?.plen === 24 && addr('10.1.0.1')?.ifindex === ifA);
    await ipThen('addr add 10.2.0.1/24 dev veth1', 'v4 address', () => !!addr('10.2.0.1'));
    await ipThen('-6 addr add 2001:db8:1::1/64 dev veth0 nodad', 'v6 address', () => addr('2001:db8:1::1')?.plen === 64);
    await ipThen('-6 addr add 2001:db8:2::1/64 dev veth1 nodad', 'v6 address', () => !!addr('2001:db8:2::1'));
    await ipThen('addr add 10.3.0.1/24 dev veth0', 'v4 address', () => !!addr('10.3.0.1'));
    await ipThen('addr del 10.3.0.1/24 dev veth0', 'v4 address removed', () => !addr('10.3.0.1'));
    await ipThen('-6 addr add 2001:db8:3::1/64 dev veth0 nodad', 'v6 address', () => !!addr('2001:db8:3::1'));
    await ipThen('-6 addr del 2001:db8:3::1/64 dev veth0', 'v6 address removed', () => !addr('2001:db8:3::1'));
    // the connected and local routes follow the addresses
    assert.ok(route((r) => r.dst === '10.1.0.0' && r.plen === 24 && r.table === 254));
    assert.ok(route((r) => r.dst === '10.1.0.1' && r.type === 'local' && r.table === 255));
    assert.ok(!route((r) => r.dst === '10.3.0.0' && r.plen === 24), 'prefix route of the removed address is gone');
  });

  it('mirrors IPv4 routes: add, ECMP with weights, replace, change, special types, metrics, delete', async () => {
    const r1 = () => route((r) => r.dst === '198.51.100.0' && r.plen === 24 && r.table === 254 && r.priority === 0);
    await ipThen('route add 198.51.100.0/24 via 10.1.0.2', 'route', () => r1()?.nexthops[0]?.gw === '10.1.0.2' && r1()!.nexthops[0].ifindex === ifA);
    await ipThen('route replace 198.51.100.0/24 via 10.2.0.2', 'replace', () => r1()?.nexthops[0]?.gw === '10.2.0.2' && r1()!.nexthops[0].ifindex === ifB);
    await ipThen('route change 198.51.100.0/24 nexthop via 10.1.0.2 weight 3 nexthop via 10.2.0.2 weight 1', 'ECMP',
      () => r1()?.nexthops.length === 2 && r1()!.nexthops.some((n) => n.gw === '10.1.0.2' && n.weight === 3) && r1()!.nexthops.some((n) => n.gw === '10.2.0.2' && n.weight === 1));
    await ipThen('route add 198.51.100.0/24 via 10.1.0.2 metric 50 mtu 1300', 'second metric',
      () => route((r) => r.dst === '198.51.100.0' && r.priority === 50)?.mtu === 1300);
    await ipThen('route add blackhole 203.0.113.0/24', 'blackhole', () => route((r) => r.dst === '203.0.113.0')?.type === 'blackhole');
    await ipThen('route add unreachable 203.0.113.128/25', 'unreachable', () => route((r) => r.dst === '203.0.113.128')?.type === 'unreachable');
    await ipThen('route add prohibit 203.0.114.0/24', 'prohibit', () => route((r) => r.dst === '203.0.114.0')?.type === 'prohibit');
    await ipThen('route add default via 10.1.0.254 proto static', 'default', () => route((r) => r.family === 4 && r.plen === 0 && r.table === 254)?.protocol === 4);
    await ipThen('route del 198.51.100.0/24 metric 0', 'delete', () => !r1());
    assert.ok(route((r) => r.dst === '198.51.100.0' && r.priority === 50), 'the metric-50 route stays');
    const json = env.fpctlJson<Route[]>(['show', 'routes']);
    assert.ok(json.some((r) => r.type === 'blackhole' && r.dst === '203.0.113.0'));
  });

  it('mirrors IPv6 routes: add, multipath, replace, delete', async () => {
    const r6 = () => route((r) => r.dst === '2001:db8:100::' && r.plen === 48);
    await ipThen('-6 route add 2001:db8:100::/48 via 2001:db8:1::2', 'v6 route', () => r6()?.nexthops[0]?.gw === '2001:db8:1::2');
    await ipThen('-6 route replace 2001:db8:100::/48 nexthop via 2001:db8:1::2 nexthop via 2001:db8:2::2', 'v6 ECMP',
      () => r6()?.nexthops.length === 2);
    await ipThen('-6 route add 2001:db8:200::/48 dev veth1 metric 7', 'v6 device route', () => route((r) => r.dst === '2001:db8:200::')?.nexthops[0]?.ifindex === ifB);
    await ipThen('-6 route add unreachable 2001:db8:300::/48', 'v6 unreachable', () => route((r) => r.dst === '2001:db8:300::')?.type === 'unreachable');
    await ipThen('-6 route del 2001:db8:100::/48', 'v6 delete', () => !r6());
    assert.ok(env.list('route').filter((r: Route) => r.dst === 'fe80::' && r.plen === 64).length >= 2, 'fe80::/64 on each link');
  });

  it('mirrors routes in table 100 and the ip rule that selects it', async () => {
    await ipThen('route add 192.0.2.0/24 via 10.1.0.2 table 100', 'table 100', () => route((r) => r.table === 100 && r.dst === '192.0.2.0')?.nexthops[0]?.gw === '10.1.0.2');
    const rule = () => env.list('rule').find((r: Rule) => r.priority === 100 && r.table === 100);
    await ipThen('rule add from 10.1.0.0/24 table 100 pref 100', 'rule', () => rule()?.src === '10.1.0.0' && rule()?.srcLen === 24);
    await ipThen('-6 rule add from 2001:db8:1::/64 table 100 pref 101', 'v6 rule', () => !!env.list('rule').find((r: Rule) => r.family === 6 && r.priority === 101));
    await ipThen('rule add fwmark 0x10 table 100 pref 102', 'fwmark rule', () => env.list('rule').find((r: Rule) => r.priority === 102)?.fwmark === 16);
    await ipThen('rule del pref 100', 'rule removed', () => !rule());
    const json = env.fpctlJson<Rule[]>(['show', 'rules']);
    assert.ok(json.some((r) => r.priority === 32766 && r.table === 254), 'the main-table rule');
  });

  it('mirrors neighbours (ARP and NDP): add, lladdr change, state change, delete', async () => {
    const nb = (a: string) => env.list('neighbour').find((n: Neighbour) => n.addr === a);
    await ipThen('neigh add 10.1.0.2 lladdr 02:00:00:00:00:02 dev veth0 nud permanent', 'arp entry', () => nb('10.1.0.2')?.lladdr === '02:00:00:00:00:02' && nb('10.1.0.2')?.state === 0x80);
    await ipThen('neigh replace 10.1.0.2 lladdr 02:00:00:00:00:22 dev veth0 nud permanent', 'lladdr change', () => nb('10.1.0.2')?.lladdr === '02:00:00:00:00:22');
    await ipThen('neigh replace 10.1.0.2 lladdr 02:00:00:00:00:22 dev veth0 nud stale', 'state change', () => nb('10.1.0.2')?.state === 0x04);
    await ipThen('-6 neigh add 2001:db8:1::2 lladdr 02:00:00:00:00:62 dev veth0 nud reachable', 'ndp entry', () => nb('2001:db8:1::2')?.lladdr === '02:00:00:00:00:62');
    await ipThen('neigh del 10.1.0.2 dev veth0', 'arp deleted', () => !nb('10.1.0.2'));
    await ipThen('-6 neigh del 2001:db8:1::2 dev veth0', 'ndp deleted', () => !nb('2001:db8:1::2'));
  });

  it('mirrors XFRM policies: add, update, delete', async () => {
    const pol = () => env.list('policy').find((p: XfrmPolicy) => p.dir === 'out' && p.selector.daddr === '10.20.0.0');
    await ipThen('xfrm policy add src 10.10.0.0/16 dst 10.20.0.0/16 proto udp dport 4789 dir out priority 10 tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 7 mode tunnel',
      'policy', () => pol()?.priority === 10 && pol()?.tmpls[0]?.reqid === 7 && pol()?.selector.proto === 17 && pol()?.selector.dport === 4789);
    await ipThen('xfrm policy update src 10.10.0.0/16 dst 10.20.0.0/16 proto udp dport 4789 dir out priority 20 tmpl src 192.0.2.1 dst 192.0.2.3 proto esp reqid 8 mode tunnel',
      'policy update', () => pol()?.priority === 20 && pol()?.tmpls[0]?.daddr === '192.0.2.3');
    await ipThen('xfrm policy add src 10.20.0.0/16 dst 10.10.0.0/16 dir in tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 7 mode tunnel',
      'in policy', () => !!env.list('policy').find((p: XfrmPolicy) => p.dir === 'in'));
    const sp = env.fpctlJson<XfrmPolicy[]>(['show', 'sp']);
    assert.equal(sp.length, 2);
    await ipThen('xfrm policy del src 10.10.0.0/16 dst 10.20.0.0/16 proto udp dport 4789 dir out', 'policy deleted', () => !pol());
  });

  it('turns a netns with an nsid into a VRF, with its objects, and removes it with the netns', async () => {
    const v = Netns.create('vrf');
    extra.push(v);
    v.ip('link add vv0 type veth peer name vv1');
    v.ip('addr add 172.16.0.1/24 dev vv0');
    v.ip('link set vv0 up');
    await ipThen(`netns set ${v.name} 5`, 'VRF 5', () => env.list('vrf').some((x: Vrf) => x.vrf === 5 && x.name === v.name)
      && env.list('route', 5).some((r: Route) => r.dst === '172.16.0.0'));
    const t0 = Date.now();
    v.ip('route add 172.17.0.0/16 via 172.16.0.2');
    await waitUntil('route in VRF 5', DEADLINE_MS, () => env.list('route', 5).some((r: Route) => r.dst === '172.17.0.0'), 1);
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(env.fpctlJson<Link[]>(['show', 'interfaces', '--vrf', '5']).some((l) => l.name === 'vv0'));
    v.destroy();
    await waitUntil('VRF 5 removed', 2000, () => !env.list('vrf').some((x: Vrf) => x.vrf === 5) && env.list('route', 5).length === 0 && env.list('link', 5).length === 0, 2);
  });

  it('refuses nsid 0 for a VRF with a clear error and keeps running', async () => {
    const v = Netns.create('vrf0');
    extra.push(v);
    cp.ip(`netns set ${v.name} 0`);
    await waitUntil('logged error', 2000, () => /nsid 0, which is reserved/.test(env.logs()), 20);
    assert.ok(env.alive('cmgrd'));
    v.destroy();
  });

  it('hides SA keys unless asked and keeps fpctl usable on bad arguments', () => {
    assert.throws(() => env.fpctl(['show', 'nonsense']), /unknown "show nonsense"/);
    assert.throws(() => env.fpctl(['show', 'routes', '--vrf', 'x']), /--vrf takes a VRF number/);
    const txt = env.fpctl(['show', 'routes']);
    assert.match(txt, /table 254/);
    void sh;
  });
});

describe('VRF selection (vrfNetns), FPC over tcp://', function () {
  this.timeout(60000);
  let cp: Netns, vrf: Netns, host: Netns;
  let env: LfpEnv;
  before(async () => {
    cp = Netns.create('cpsel');
    vrf = Netns.create('vrfsel');
    host = Netns.create('hostsel');
    // FPC over TCP, as when the control plane runs on another host
    env = await LfpEnv.start({ cpNetns: cp.name, vrfNetns: [vrf.name], fpc: `tcp://127.0.0.1:${20000 + Math.floor(Math.random() * 20000)}` });
  });
  after(() => { env?.stop(); for (const n of [host, vrf, cp]) n?.destroy(); });

  it('mirrors only the listed namespaces; a namespace with an auto-assigned nsid (veth peer) is not a VRF', async () => {
    // a veth whose peer lives in `host`: the kernel gives `host` an nsid in the control plane
    cp.ip(`link add hv0 type veth peer name hv1 netns ${host.name}`);
    host.ip('link set hv1 up');
    const ids = cp.ip('netns list-id');
    assert.match(ids, new RegExp(host.name), 'the kernel assigned an nsid to the veth peer namespace');
    vrf.ip('link add sv0 type veth peer name sv1');
    cp.ip(`netns set ${vrf.name} 9`);
    await waitUntil('VRF 9', 2000, () => env.list('link', 9).some((l: Link) => l.name === 'sv0'), 2);
    await sleep(200);
    assert.deepEqual(env.list('vrf').map((v: Vrf) => v.vrf).sort(), [0, 9]);
    assert.ok(/is not a VRF: not listed in vrfNetns/.test(env.logs()));
  });
});
