// DPVIs outlive a crash of the fast path (fastpath.dpviPersist, default): the addresses, routes and
// neighbours a user configured with ip on eth1/eth2 are still there when the fast path comes back, and it
// forwards again through the same interfaces; a clean stop removes them; an interface of that name that lfp
// did not leave is never taken over.
import { strict as assert } from 'assert';
import { DPVI_ALIAS, statsPath } from '../../lib/config';
import { StatsFile } from '../../shared-mem/stats';
import { startLfpBetweenHosts, Topology } from '../lib/topology';
import { LfpEnv, waitUntil } from '../lib/lfp-env';
import { runIn, udpFlow } from '../lib/traffic';
import type { Netns } from '../lib/netns';

const run = (ns: Netns, cmd: string, args: string[]) => runIn(ns, cmd, args);

interface IpLink { ifname: string; ifindex: number; ifalias?: string; flags: string[]; addr_info?: { local: string; prefixlen: number }[] }

describe('DPVIs outlive a fast-path crash (fastpath.dpviPersist)', function () {
  this.timeout(120000);
  let t: Topology;
  let env: LfpEnv;
  const link = (n: string): IpLink | undefined => {
    const l = t.cp.ipJson<IpLink[]>('link show').find((x) => x.ifname === n);
    return l && { ...l, addr_info: t.cp.ipJson<IpLink[]>('addr show').find((x) => x.ifname === n)?.addr_info };
  };
  const startFp = async () => {
    const t0 = Date.now();
    env.spawn('fp');
    await waitUntil('fast path running', 30000, () => {
      if (!env.alive('fp')) throw new Error(`fp exited\n${env.logs()}`);
      return StatsFile.open(statsPath(env.cfg)).read().perWorker[0].fields.heartbeatMs > t0;
    }, 50);
  };

  before(async () => {
    ({ t, env } = await startLfpBetweenHosts('kernel'));
  });
  after(() => { env?.stop(); t?.destroy(); });

  it('a crashed fast path leaves eth1/eth2 with their addresses and routes; restarted, it re-attaches and forwards again', async () => {
    let r = await run(t.a, 'ping', ['-c', '2', '-i', '0.2', '-w', '10', '10.2.0.2']);
    assert.equal(r.code, 0, r.out + r.err + env.logs());
    const before = link('eth1')!;
    assert.equal(before.ifalias, DPVI_ALIAS, 'the DPVI carries the alias');
    await env.kill('fp'); // SIGKILL: a crash
    const left = link('eth1');
    assert.ok(left, 'eth1 is still there');
    assert.equal(left!.ifindex, before.ifindex);
    assert.ok(left!.addr_info?.some((a) => a.local === '10.1.0.1'), `eth1 keeps 10.1.0.1: ${JSON.stringify(left)}`);
    assert.ok(!left!.flags.includes('LOWER_UP'), 'no carrier while no fast path runs');
    assert.ok(t.cp.ip('route show').includes('10.2.0.0/24 dev eth2'), 'the connected route via eth2 stays');

    await startFp();
    const again = link('eth1')!;
    assert.equal(again.ifindex, before.ifindex, 'the same interface (re-attached, not re-created)');
    assert.ok(again.addr_info?.some((a) => a.local === '10.1.0.1'));
    assert.match(env.logs(), /re-attached: left by a previous fast path/);
    await waitUntil('DPVI carrier', 10000, () => ['eth1', 'eth2'].every((n) => link(n)!.flags.includes('LOWER_UP')), 50);
    r = await run(t.a, 'ping', ['-c', '2', '-i', '0.2', '-w', '10', '10.2.0.2']);
    assert.equal(r.code, 0, r.out + r.err + env.logs());
    const s0 = env.stats();
    const got = await udpFlow(t.a, t.b, '10.2.0.2', 10000, 10000, { size: 18 });
    assert.equal(got, 10000);
    const fwd = env.stats()[0].forwarded - s0[0].forwarded;
    assert.ok(fwd >= 9900, `fast-path forwarded ${fwd} of 10000 after the restart`);
  });

  it('a clean stop removes the DPVIs', async () => {
    await env.kill('fp', 'SIGTERM');
    assert.equal(link('eth1'), undefined);
    assert.equal(link('eth2'), undefined);
  });

  it('an interface of the DPVI\'s name that lfp did not leave is not taken over: the fast path refuses to start', async () => {
    t.cp.ip('tuntap add dev eth1 mode tap');
    try {
      const t0 = Date.now();
      const c = env.spawn('fp');
      await new Promise<void>((r) => { if (c.exitCode !== null) r(); else c.once('exit', () => r()); });
      assert.notEqual(c.exitCode, 0);
      assert.match(env.logs(), /eth1 exists in .* is not a DPVI left by lfp/);
      assert.ok(Date.now() - t0 < 30000);
      assert.equal(link('eth1')!.ifalias, undefined, 'the foreign TAP is left as it was');
    } finally {
      t.cp.ip('link del eth1');
    }
  });
});
