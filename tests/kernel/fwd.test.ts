// Issue 3 acceptance: lfp between two hosts, configured with ip; the fast path forwards, Linux
// handles the exceptions (ARP/ND, local, no route, TTL, first packets of a flow).
import { strict as assert } from 'assert';
import * as path from 'path';
import { spawn } from 'child_process';
import { buildTopology, configureIp, Topology } from '../lib/topology';
import { LfpEnv, waitUntil, sleep } from '../lib/lfp-env';
import type { Neighbour } from '../../lib/model';
import type { Netns } from '../lib/netns';

const UDP_TOOL = path.resolve(__dirname, '../lib/udp-tool.js');

function run(ns: Netns, cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

/** Sends `count` UDP datagrams from host `from` to `dst`, returns how many distinct ones arrived. */
async function udpFlow(from: Netns, to: Netns, dst: string, count: number, pps: number, port = 5001, size = 18): Promise<number> {
  const recv = spawn('ip', ['netns', 'exec', to.name, process.execPath, UDP_TOOL, 'recv', String(port), String(count), String(Math.ceil(count / pps * 1000) + 5000), dst.includes(':') ? '6' : '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  recv.stdout.on('data', (d) => { out += d; });
  const exited = new Promise<void>((r) => recv.on('exit', () => r()));
  await new Promise<void>((r) => recv.stderr.once('data', () => r()));
  const s = await run(from, process.execPath, [UDP_TOOL, 'send', dst, String(port), String(count), String(pps), String(size)]);
  assert.equal(s.code, 0, s.err);
  await exited;
  return (JSON.parse(out) as { received: number }).received;
}

describe('fast path forwarding between two hosts (kernel ports, DPVIs)', function () {
  this.timeout(120000);
  let t: Topology;
  let env: LfpEnv;

  before(async () => {
    t = buildTopology('kernel');
    try {
      env = await LfpEnv.start({ cpNetns: t.cp.name, portSpecs: t.ports });
      configureIp(t);
    } catch (e) {
      env?.stop();
      t.destroy();
      throw e;
    }
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
});
