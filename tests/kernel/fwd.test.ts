// Issue 3 acceptance: lfp between two hosts, configured with ip; the fast path forwards, Linux
// handles the exceptions (ARP/ND, local, no route, TTL, first packets of a flow).
import { strict as assert } from 'assert';
import * as path from 'path';
import { spawn } from 'child_process';
import { startLfpBetweenHosts, Topology } from '../lib/topology';
import { LfpEnv, waitUntil, sleep } from '../lib/lfp-env';
import { runIn, udpFlow as flow } from '../lib/traffic';
import type { Neighbour } from '../../lib/model';
import type { Netns } from '../lib/netns';

const UDP_TOOL = path.resolve(__dirname, '../lib/udp-tool.js');

const run = (ns: Netns, cmd: string, args: string[]) => runIn(ns, cmd, args);
const udpFlow = (from: Netns, to: Netns, dst: string, count: number, pps: number) => flow(from, to, dst, count, pps, { size: 18 });

for (const kind of ['kernel', 'dpdk'] as const) describe(`fast path forwarding between two hosts (${kind === 'kernel' ? 'kernel AF_PACKET' : 'DPDK net_af_packet'} ports, DPVIs)`, function () {
  this.timeout(120000);
  let t: Topology;
  let env: LfpEnv;

  before(async () => {
    ({ t, env } = await startLfpBetweenHosts(kind));
  });
  after(() => { env?.stop(); t?.destroy(); });

  it('creates a DPVI per port in the control plane, with the port name and MAC', () => {
    const links = t.cp.ipJson<{ ifname: string; address: string }[]>('link show');
    const phy = t.phy.ipJson<{ ifname: string; address: string }[]>('link show');
    for (const [dpvi, dev] of [['eth1', 'pA'], ['eth2', 'pB']]) {
      const l = links.find((x) => x.ifname === dpvi);
      assert.ok(l, `DPVI ${dpvi} exists`);
      assert.equal(l!.address, phy.find((x) => x.ifname === dev)!.address, `${dpvi} has the MAC of ${dev}`);
    }
  });

  it('host A pings host B (IPv4 and IPv6) and lfp\'s own address', async () => {
    let r = await run(t.a, 'ping', ['-c', '3', '-i', '0.2', '-w', '10', '10.2.0.2']);
    assert.equal(r.code, 0, r.out + r.err + env.logs());
    r = await run(t.a, 'ping', ['-6', '-c', '3', '-i', '0.2', '-w', '10', '2001:db8:2::2']);
    assert.equal(r.code, 0, r.out + r.err);
    r = await run(t.a, 'ping', ['-c', '2', '-i', '0.2', '-w', '5', '10.1.0.1']);
    assert.equal(r.code, 0, 'ping to lfp itself (local exception)');
  });

  it('learns ARP/ND entries through the DPVIs and shows them in fpctl show neighbours', async () => {
    await waitUntil('neighbours', 5000, () => {
      const n = env.fpctlJson<Neighbour[]>(['show', 'neighbours']);
      return n.some((x) => x.addr === '10.2.0.2' && !!x.lladdr) && n.some((x) => x.addr === '2001:db8:2::2' && !!x.lladdr);
    }, 100);
  });

  it('forwards a 100,000-packet UDP flow completely, >= 99% of it in the fast path', async () => {
    const before = env.stats();
    const got = await udpFlow(t.a, t.b, '10.2.0.2', 100000, 20000);
    assert.equal(got, 100000, `received ${got} of 100000\nport0 ${JSON.stringify(env.stats()[0]).slice(0, 120)}\nport1 ${JSON.stringify(env.stats()[1]).slice(0, 120)} tx-full ${env.stats()[1].drops["tx-full"]}\n` +
      `b0: ${t.b.ip('-s link show b0')}\n${t.b.exec('nstat', ['-az', 'UdpInErrors', 'UdpRcvbufErrors', 'UdpInCsumErrors', 'UdpInDatagrams'])}\n` +
      `pB: ${t.phy.ip('-s link show pB')}`);
    const after = env.stats();
    const fwd = after[0].forwarded - before[0].forwarded;
    const dpvi = after[0].dpviPackets - before[0].dpviPackets;
    assert.ok(fwd >= 99000, `fast-path forwarded ${fwd} of 100000 (to Linux: ${dpvi})`);
    await sleep(10);
  });

  it('applies MAC and up/down set on a DPVI with ip link to the port, and shows the port\'s carrier on the DPVI', async () => {
    const phyLink = (n: string) => t.phy.ipJson<{ ifname: string; address: string; flags: string[] }[]>('link show').find((l) => l.ifname === n)!;
    const dpvi = (n: string) => t.cp.ipJson<{ ifname: string; flags: string[] }[]>('link show').find((l) => l.ifname === n)!;
    const mac0 = phyLink('pA').address;
    t.cp.ip('link set eth1 address 02:aa:bb:cc:dd:01');
    await waitUntil('port MAC follows the DPVI', 3000, () => phyLink('pA').address === '02:aa:bb:cc:dd:01', 20);
    t.cp.ip(`link set eth1 address ${mac0}`);
    await waitUntil('port MAC back', 3000, () => phyLink('pA').address === mac0, 20);
    // carrier: the wire side goes down (host A unplugged), the DPVI loses LOWER_UP. (DPDK's
    // net_af_packet reports a fixed link state, not its interface's carrier: kernel ports only.)
    if (kind === 'kernel') {
      t.a.ip('link set a0 down');
      await waitUntil('DPVI carrier down', 3000, () => !dpvi('eth1').flags.includes('LOWER_UP'), 20);
      t.a.ip('link set a0 up');
      t.a.ip('route replace default via 10.1.0.1'); // (host A's routes went with its link)
      await waitUntil('DPVI carrier up', 3000, () => dpvi('eth1').flags.includes('LOWER_UP'), 20);
    }
    // admin down on the DPVI stops the port; up again and traffic flows
    t.cp.ip('link set eth1 down');
    let r = await run(t.a, 'ping', ['-c', '2', '-i', '0.2', '-w', '2', '10.2.0.2']);
    assert.notEqual(r.code, 0, 'no traffic through a port whose DPVI is down');
    t.cp.ip('link set eth1 up'); // the connected route comes back with the link
    r = await run(t.a, 'ping', ['-c', '3', '-i', '0.3', '-w', '10', '10.2.0.2']);
    assert.equal(r.code, 0, r.out);
  });
});

describe('fast path: exceptions, route changes, ECMP, MTU, malformed frames', function () {
  this.timeout(120000);
  let t: Topology;
  let env: LfpEnv;

  before(async () => {
    ({ t, env } = await startLfpBetweenHosts('kernel'));
    try {
      // resolve both hosts from the control plane, as traffic would
      await run(t.cp, 'ping', ['-c', '1', '-w', '5', '10.1.0.2']);
      await run(t.cp, 'ping', ['-c', '1', '-w', '5', '10.2.0.2']);
      await waitUntil('neighbours in lfp', 5000, () => env.list('neighbour').filter((n) => n.lladdr && (n.addr === '10.1.0.2' || n.addr === '10.2.0.2')).length === 2, 50);
    } catch (e) {
      env?.stop();
      t.destroy();
      throw e;
    }
  });
  after(() => { env?.stop(); t?.destroy(); });

  it('traceroute through lfp shows lfp\'s hop (TTL exception to Linux)', async () => {
    const r = await run(t.a, 'traceroute', ['-n', '-q', '1', '-w', '2', '-m', '3', '10.2.0.2']);
    assert.equal(r.code, 0, r.err);
    const hops = r.out.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]);
    assert.deepEqual(hops.slice(0, 2), ['10.1.0.1', '10.2.0.2'], r.out);
    assert.ok(env.stats()[0].exceptions['ttl-expired'] > 0);
  });

  it('a destination with no route gets Linux\'s ICMP unreachable', async () => {
    const r = await run(t.a, 'ping', ['-c', '1', '-w', '3', '10.99.0.1']);
    assert.match(r.out, /From 10\.1\.0\.1 .*Destination Net Unreachable/, r.out);
    assert.ok(env.stats()[0].exceptions['no-route'] > 0);
  });

  it('ip route change moves a flow to another port within 100 ms', async () => {
    t.cp.ip('route add 10.50.0.0/24 via 10.2.0.2');
    await waitUntil('route', 1000, () => env.list('route').some((r) => r.dst === '10.50.0.0'), 5);
    // nobody answers 10.50.0.1: the ports' counters tell where the flow goes
    const flow = run(t.a, process.execPath, [UDP_TOOL, 'send', '10.50.0.1', '5002', '30000', '10000']);
    await sleep(1000);
    const tx0 = env.stats()[0].txPackets;
    const t0 = Date.now();
    t.cp.ip('route change 10.50.0.0/24 via 10.1.0.2'); // back out of port 0 (eth1), towards host A
    const moved = await waitUntil('flow on port 0', 2000, () => env.stats()[0].txPackets - tx0 > 10, 2);
    await flow;
    void t0;
    assert.ok(moved < 100, `the flow moved after ${moved} ms`);
  });

  it('ECMP spreads flows over two next hops', async () => {
    t.cp.ip('route add 10.60.0.0/24 nexthop via 10.1.0.2 nexthop via 10.2.0.2');
    await waitUntil('route', 1000, () => env.list('route').some((r) => r.dst === '10.60.0.0'), 5);
    const s0 = env.stats();
    for (let i = 0; i < 16; i++) await run(t.a, process.execPath, [UDP_TOOL, 'send', `10.60.0.${1 + i}`, String(6000 + i), '50', '5000']);
    const s1 = env.stats();
    const out0 = s1[0].txPackets - s0[0].txPackets, out1 = s1[1].txPackets - s0[1].txPackets;
    assert.ok(out0 >= 100 && out1 >= 100, `flows per next hop: port 0 ${out0} packets, port 1 ${out1} packets`);
  });

  it('fragments IPv4 over a lower egress MTU; DF gets "frag needed"; IPv6 gets packet too big', async () => {
    // the link towards B becomes a 1280-byte link: both ends (lfp's port through its DPVI, and B)
    t.cp.ip('link set eth2 mtu 1280');
    t.b.ip('link set b0 mtu 1280');
    await waitUntil('mtu in lfp', 2000, () => env.list('link', 0).find((l) => l.name === 'eth2')?.mtu === 1280, 10);
    await sleep(300); // the port follows the DPVI on the fast path's control tick
    const tx1 = env.stats()[1].txPackets;
    let r = await run(t.a, 'ping', ['-M', 'dont', '-s', '1472', '-c', '5', '-i', '0.2', '-w', '10', '10.2.0.2']);
    assert.match(r.out, /5 received/, r.out);
    assert.ok(env.stats()[1].txPackets - tx1 >= 10, 'each 1500-byte echo left as two fragments');
    r = await run(t.a, 'ping', ['-M', 'do', '-s', '1472', '-c', '1', '-w', '3', '10.2.0.2']);
    assert.match(r.out, /Frag needed and DF set \(mtu = 1280\)/, r.out);
    await run(t.a, 'ping', ['-6', '-c', '1', '-w', '5', '2001:db8:2::2']); // resolve B's IPv6 neighbour first
    await waitUntil('ND entry', 3000, () => env.list('neighbour').some((n) => n.addr === '2001:db8:2::2' && !!n.lladdr), 20);
    r = await run(t.a, 'ping', ['-6', '-s', '1452', '-c', '2', '-i', '0.5', '-w', '5', '2001:db8:2::2']);
    assert.match(r.out, /Packet too big: mtu=1280/, r.out);
    assert.ok(env.stats()[0].exceptions['frag-needed'] > 0 && env.stats()[0].exceptions['too-big'] > 0);
    t.cp.ip('link set eth2 mtu 1500');
    t.b.ip('link set b0 mtu 1500');
  });

  it('drops malformed frames by reason and keeps forwarding', async () => {
    const mac = t.cp.ipJson<{ ifname: string; address: string }[]>('link show').find((l) => l.ifname === 'eth1')!.address.replace(/:/g, '');
    const src = '020000000001';
    const ipv4 = (ihlVer: string, totLen: number, csum: string, rest = '') =>
      `${mac}${src}0800${ihlVer}00${totLen.toString(16).padStart(4, '0')}00004000401${'1'}${csum}0a0100020a020002${rest}`;
    const good = ipv4('45', 28, '0000', '1388138800080000');
    const frames = [
      `${mac}${src}0800450000`, // truncated IPv4 header
      ipv4('43', 28, '0000', '1388138800080000'), // IHL 3
      ipv4('45', 28, 'ffff', '1388138800080000'), // bad checksum
      ipv4('45', 900, '0000', '1388138800080000'), // total length beyond the frame
      `${mac}${src}0800`, // Ethernet header only
    ];
    void good;
    let seed = 1;
    for (let i = 0; i < 200; i++) {
      let hex = `${mac}${src}0800`;
      const n = 20 + (seed % 100);
      for (let j = 0; j < n; j++) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; hex += ((seed >> 16) & 255).toString(16).padStart(2, '0'); }
      frames.push(hex);
    }
    const d0 = env.stats()[0].drops;
    const p = spawn('ip', ['netns', 'exec', t.a.name, 'python3', path.resolve(__dirname, '../../../tests/lib/rawframes.py'), 'a0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    p.stdin.end(frames.join('\n') + '\n');
    await new Promise<void>((r) => p.on('exit', () => r()));
    await sleep(300);
    const d1 = env.stats()[0].drops;
    const st = env.stats()[0];
    const why = `rx ${st.rxPackets}, exceptions ${JSON.stringify(Object.fromEntries(Object.entries(st.exceptions).filter(([, n]) => n > 0)))}, drops ${JSON.stringify(Object.fromEntries(Object.entries(st.drops).filter(([, n]) => n > 0)))}`;
    for (const reason of ['ipv4-truncated', 'ipv4-bad-ihl', 'ipv4-checksum', 'ipv4-bad-length'] as const) {
      assert.ok(d1[reason] > d0[reason], `${reason} counted (${d0[reason]} -> ${d1[reason]})`);
    }
    const total = Object.values(d1).reduce((a, b) => a + b, 0) - Object.values(d0).reduce((a, b) => a + b, 0);
    assert.ok(total >= 100, `${total} drops counted for ${frames.length} bad frames: ${why}`);
    assert.ok(env.alive('fp'));
    const r = await run(t.a, 'ping', ['-c', '2', '-i', '0.2', '-w', '5', '10.2.0.2']);
    assert.equal(r.code, 0, 'still forwarding');
  });
});
