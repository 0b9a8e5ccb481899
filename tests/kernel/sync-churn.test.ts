// Issue 2 acceptance: convergence under churn, netlink overruns (ENOBUFS) and daemon crashes.
import { strict as assert } from 'assert';
import { spawn, spawnSync } from 'child_process';
import { Netns } from '../lib/netns';
import { LfpEnv, waitUntil, sleep } from '../lib/lfp-env';
import { kernelRoutes, lfpRoutes, kernelNeighbours, lfpNeighbours, diff } from '../lib/normalize';
import type { Route, Neighbour } from '../../lib/model';

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; return s / 4294967296; };
}

function setupTopology(cp: Netns): void {
  cp.ip('link add veth0 type veth peer name veth1');
  cp.ip('link add veth2 type veth peer name veth3');
  for (const l of ['veth0', 'veth1', 'veth2', 'veth3']) cp.ip(`link set ${l} up`);
  cp.ip('addr add 10.0.0.1/24 dev veth0');
  cp.ip('addr add 10.0.1.1/24 dev veth2');
  cp.ip('-6 addr add 2001:db8::1/64 dev veth0 nodad');
  cp.ip('-6 addr add 2001:db8:1::1/64 dev veth2 nodad');
  // link-local addresses (and their local routes) appear when DAD ends: wait for it
  const end = Date.now() + 5000;
  while (cp.ip('-6 addr show tentative').trim() !== '' && Date.now() < end) spawnSync('sleep', ['0.05']);
}

/**
 * n random route/neighbour operations for `ip -batch`, all valid: the generator tracks what exists
 * (ip -force -batch stops applying lines after some errors, so no line may fail).
 */
export function churnOps(n: number, seed: number): string[] {
  const r = rng(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  const hex = () => Math.floor(r() * 256).toString(16).padStart(2, '0');
  const routes = new Set<string>(); // "prefix|table|metric"
  const neighs = new Set<string>(); // "addr|dev"
  const ops: string[] = [];
  const v4nh = () => r() < 0.25
    ? ` nexthop via 10.0.0.${2 + Math.floor(r() * 5)} weight ${1 + Math.floor(r() * 4)} nexthop via 10.0.1.${2 + Math.floor(r() * 5)}`
    : pick([' via 10.0.0.2', ' via 10.0.1.3', ' dev veth0', ' via 10.0.0.9']);
  const v6nh = () => r() < 0.3 ? ' nexthop via 2001:db8::2 nexthop via 2001:db8:1::3' : pick([' via 2001:db8::2', ' via 2001:db8:1::3']);
  while (ops.length < n) {
    const k = r();
    if (k < 0.6) {
      let p: string, sel: string, nh: string, special = false;
      if (k < 0.3) {
        p = `10.${100 + Math.floor(r() * 20)}.${Math.floor(r() * 50)}.0/24`;
        sel = `${r() < 0.2 ? ' table 100' : ''}${r() < 0.2 ? ' metric 20' : ' metric 0'}`; // a del without a metric takes any
        nh = v4nh();
      } else if (k < 0.36) {
        p = `10.${120 + Math.floor(r() * 5)}.${Math.floor(r() * 20)}.0/24`;
        sel = '';
        nh = '';
        special = true;
      } else {
        p = `2001:db8:${(0x100 + Math.floor(r() * 200)).toString(16)}::/48`;
        sel = r() < 0.2 ? ' metric 20' : ' metric 1024';
        nh = v6nh();
      }
      const key = `${p}|${sel}`;
      const exists = routes.has(key);
      if (special) {
        if (exists && r() < 0.4) { ops.push(`route del ${p}`); routes.delete(key); }
        else { ops.push(`route replace ${pick(['blackhole', 'unreachable', 'prohibit'])} ${p}`); routes.add(key); }
      } else if (exists) {
        const v = r();
        if (v < 0.4) { ops.push(`route del ${p}${sel}`); routes.delete(key); }
        else ops.push(`route ${v < 0.7 ? 'replace' : 'change'} ${p}${sel}${nh}`);
      } else {
        ops.push(`route ${r() < 0.5 ? 'add' : 'replace'} ${p}${sel}${nh}`);
        routes.add(key);
      }
    } else {
      const v6 = k > 0.85;
      const side = pick([0, 1]);
      const dev = side === 0 ? 'veth0' : 'veth2';
      const a = v6 ? `2001:db8:${side ? '1:' : ''}:${(0x10 + Math.floor(r() * 200)).toString(16)}` : `10.0.${side}.${10 + Math.floor(r() * 100)}`;
      const key = `${a}|${dev}`;
      if (neighs.has(key) && r() < 0.3) { ops.push(`neigh del ${a} dev ${dev}`); neighs.delete(key); continue; }
      ops.push(`neigh replace ${a} lladdr 02:00:00:${v6 ? '01' : '00'}:${hex()}:${hex()} dev ${dev} nud ${pick(v6 ? ['permanent', 'stale', 'reachable'] : ['permanent', 'stale', 'reachable', 'noarp'])}`);
      neighs.add(key);
    }
  }
  return ops;
}

async function assertConverges(env: LfpEnv, cp: Netns, timeoutMs: number, what: string): Promise<void> {
  let last = '';
  try {
    await waitUntil(`${what}: lfp equals the kernel`, timeoutMs, () => {
      const k = kernelRoutes(cp), l = lfpRoutes(env.list('route', 0) as Route[]);
      const kn = kernelNeighbours(cp), ln = lfpNeighbours(env.list('neighbour', 0) as Neighbour[]);
      const same = k.length === l.length && k.every((x, i) => x === l[i]) && kn.length === ln.length && kn.every((x, i) => x === ln[i]);
      if (!same) last = `routes: ${diff(k, l)}\nneighbours: ${diff(kn, ln)}`;
      return same;
    }, 200);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${last}\n${env.logs()}`);
  }
  // and the same through the CLI (retried: the kernel may still change something on its own)
  let viaCli: string[] = [], kernel: string[] = [];
  for (let i = 0; i < 5; i++) {
    viaCli = lfpRoutes(env.fpctlJson<Route[]>(['show', 'routes', '--vrf', '0']));
    kernel = kernelRoutes(cp);
    if (viaCli.length === kernel.length && viaCli.every((x, j) => x === kernel[j])) break;
    await sleep(200);
  }
  assert.deepEqual(viaCli, kernel);
}

function ipBatchAsync(ns: Netns, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['-n', ns.name, '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    p.on('error', reject);
    p.on('exit', () => resolve());
    p.stdin.on('error', () => { /* ip exited early: its exit code is not the point here */ });
    p.stdin.end(lines.join('\n') + '\n');
  });
}

describe('sync spine under churn, overruns and crashes', function () {
  this.timeout(300000);
  let cp: Netns;
  let env: LfpEnv | undefined;

  beforeEach(() => { cp = Netns.create('churn'); setupTopology(cp); });
  afterEach(() => { env?.stop(); env = undefined; cp.destroy(); });

  it('converges after 10,000 random route and neighbour operations', async () => {
    env = await LfpEnv.start({ cpNetns: cp.name });
    cp.batch(churnOps(10000, 1));
    await assertConverges(env, cp, 20000, 'churn');
  });

  it('converges after netlink overruns (ENOBUFS) during a 100,000-route burst with a small receive buffer', async () => {
    env = await LfpEnv.start({ cpNetns: cp.name, rcvbuf: 32 * 1024 });
    const lines: string[] = [];
    for (let i = 0; i < 100000; i++) lines.push(`route add 20.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32 via 10.0.0.2`);
    cp.batch(lines);
    await assertConverges(env, cp, 120000, 'ENOBUFS');
    const st = env.cmgrdStatus();
    assert.ok(st && st.counters.overruns > 0, `ENOBUFS was seen (overruns ${st?.counters.overruns})`);
  });

  it('kill -9 of fpmd during churn: forwarding state stays readable, the restarted fpmd re-attaches and sweeps', async () => {
    env = await LfpEnv.start({ cpNetns: cp.name });
    const ops = churnOps(12000, 2);
    cp.batch(ops.slice(0, 2000));
    await assertConverges(env, cp, 20000, 'before the kill');
    const churn = ipBatchAsync(cp, ops.slice(2000));
    await sleep(300);
    await env.kill('fpmd', 'SIGKILL');
    // With fpmd dead, the shared memory still holds the FIB: the fast path keeps forwarding.
    assert.ok(env.list('route', 0).length > 100, 'routes still in shared memory while fpmd is down');
    await sleep(200);
    const ends = env.syncEnds();
    env.spawn('fpmd'); // no --fresh: re-attach
    await churn;
    await env.waitSynced(30000, ends);
    await assertConverges(env, cp, 20000, 'after the fpmd restart');
  });

  it('kill -9 of cmgrd during churn: the restarted cmgrd resyncs and stale entries are swept', async () => {
    env = await LfpEnv.start({ cpNetns: cp.name });
    cp.batch(['route add 10.99.0.0/16 via 10.0.0.2', 'neigh add 10.0.0.99 lladdr 02:00:00:00:00:99 dev veth0 nud permanent']);
    await waitUntil('10.99.0.0/16 in lfp', 2000, () => env!.list('route', 0).some((r) => r.dst === '10.99.0.0'));
    const churn = ipBatchAsync(cp, churnOps(10000, 4));
    await sleep(300);
    await env.kill('cmgrd', 'SIGKILL');
    await churn; // changes made while cmgrd is down, including deletions:
    cp.batch(['route del 10.99.0.0/16', 'neigh del 10.0.0.99 dev veth0']);
    assert.ok(env.list('route', 0).some((r) => r.dst === '10.99.0.0'), 'lfp still has the route deleted while cmgrd was down');
    const ends = env.syncEnds();
    env.spawn('cmgrd');
    await env.waitSynced(30000, ends);
    await assertConverges(env, cp, 20000, 'after the cmgrd restart');
    assert.ok(!env.list('route', 0).some((r) => r.dst === '10.99.0.0'), 'the stale route was swept');
    assert.ok(!env.list('neighbour', 0).some((n) => n.addr === '10.0.0.99'), 'the stale neighbour was swept');
  });
});
