// netlink/ builders and decoders against the running kernel, without the native addon: requests
// built by netlink/ are sent from a throw-away network namespace by
// tests/fixtures/netlink/nlsend.py, the replies are decoded and compared with `ip -j` output.
// Needs root and python3; skipped otherwise. The namespace is always removed.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Address, Link, Neighbour, Route, Rule, XfrmPolicy } from '../../lib/model';
import { NlMsg, parseHex } from '../../netlink/codec';
import * as C from '../../netlink/constants';
import { decodeRtnl, dumpRequest, getNsidByFd, neighUse, RtnlResult } from '../../netlink/rtnl';
import { decodeXfrm, dumpPolicy, dumpSa, encodePolicy, encodeSa, newAe, XfrmResult } from '../../netlink/xfrm';

const ROOT = path.resolve(__dirname, '../../..');
const NLSEND = path.join(ROOT, 'tests/fixtures/netlink/nlsend.py');

function run(cmd: string, args: string[], opts: { fd3?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', ...(opts.fd3 !== undefined ? [opts.fd3] : [])] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function usable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (spawnSync('python3', ['-c', 'import socket; socket.AF_NETLINK']).status !== 0) return 'no python3 with AF_NETLINK';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no iproute2';
  return undefined;
}

describe('netlink (kernel): builders and decoders against the running kernel', function () {
  this.timeout(60000);
  const why = usable();
  const ns = `lfp-t-nl-${crypto.randomBytes(3).toString('hex')}`;
  const peer = `${ns}-p`;
  const created: string[] = [];
  const cleanup = () => { for (const n of created.splice(0)) spawnSync('ip', ['netns', 'del', n]); };
  process.on('exit', cleanup);
  const ip = (args: string) => run('ip', ['-n', ns, ...args.split(/\s+/)]);
  const ipj = <T>(args: string): T => JSON.parse(run('ip', ['-n', ns, '-j', ...args.split(/\s+/)]) || '[]') as T;
  let seq = 100;

  /** Send requests from inside the namespace, return the decoded replies per request. */
  function send(proto: 'rtnl' | 'xfrm', reqs: Buffer[], fd3?: number): NlMsg[][] {
    const out = JSON.parse(run('python3', [NLSEND, ns, proto, ...reqs.map(r => r.toString('hex'))], { fd3 })) as string[][];
    return out.map(dgrams => dgrams.flatMap(h => {
      const p = parseHex(h);
      assert.deepEqual(p.errors, []);
      return p.msgs;
    }));
  }
  const rtnl = (req: Buffer, fd3?: number): RtnlResult[] => send('rtnl', [req], fd3)[0].map(m => decodeRtnl(m, 0));
  const xfrm = (req: Buffer): XfrmResult[] => send('xfrm', [req])[0].map(m => decodeXfrm(m, 0));
  interface Objs { link: Link; address: Address; route: Route; rule: Rule; neighbour: Neighbour }
  const objs = <K extends keyof Objs>(rs: RtnlResult[], kind: K): Objs[K][] => {
    assert.equal(rs[rs.length - 1].kind, 'done', JSON.stringify(rs[rs.length - 1]));
    for (const r of rs) assert.notEqual(r.kind, 'malformed', JSON.stringify(r));
    const out = rs.filter(r => r.kind === kind).map(r => (r as unknown as { obj: Objs[K] }).obj);
    assert.ok(out.length >= 1, `no ${kind} objects in the dump`);
    return out;
  };

  before(function () {
    if (why) this.skip();
    run('ip', ['netns', 'add', ns]); created.push(ns);
    run('ip', ['netns', 'add', peer]); created.push(peer);
    for (const c of [
      'link set lo up',
      'link add veth0 type veth peer name veth1',
      'link set veth0 address 02:00:00:00:01:01 mtu 1400 up',
      'link set veth1 address 02:00:00:00:01:02 up',
      'addr add 10.1.0.1/24 dev veth0',
      'addr add 10.2.0.1/24 dev veth1',
      'addr add 10.3.0.1 peer 10.3.0.2/32 dev veth0',
      '-6 addr add 2001:db8:1::1/64 dev veth0 nodad',
      '-6 addr add 2001:db8:2::1/64 dev veth1 nodad',
      'route add 192.168.20.0/24 nexthop via 10.1.0.2 dev veth0 weight 3 nexthop via 10.2.0.2 dev veth1',
      'route add 192.168.30.0/24 via 10.1.0.2 metric 7 mtu 1300 table 100',
      'route add blackhole 192.168.31.0/24',
      '-6 route add 2001:db8:20::/48 nexthop via 2001:db8:1::2 dev veth0 weight 2 nexthop via 2001:db8:2::2 dev veth1',
      '-6 route add unreachable 2001:db8:30::/48',
      'rule add from 10.0.0.0/8 table 100 pref 100',
      'rule add not fwmark 0x10/0xff iif veth0 table 101 pref 101',
      '-6 rule add to 2001:db8::/32 table 200 pref 200',
      'neigh add 10.1.0.5 lladdr 02:00:00:00:00:05 dev veth0 nud permanent',
      'neigh add 10.1.0.6 lladdr 02:00:00:00:00:06 dev veth0 nud stale',
      '-6 neigh add 2001:db8:1::7 lladdr 02:00:00:00:00:07 dev veth0 nud reachable',
    ]) ip(c);
    run('ip', ['-n', ns, 'netns', 'set', peer, '42']);
  });

  after(cleanup);

  it('links: the RTM_GETLINK dump matches ip -j link', () => {
    const links = objs(rtnl(dumpRequest(C.RTM_GETLINK, C.AF_UNSPEC, ++seq)), 'link');
    const want = ipj<{ ifindex: number; ifname: string; mtu: number; address?: string; link_type: string }[]>('link show')
      .map(l => `${l.ifindex} ${l.ifname} ${l.mtu} ${l.link_type === 'none' ? '' : l.address ?? ''}`).sort();
    assert.deepEqual(links.map(l => `${l.ifindex} ${l.name} ${l.mtu} ${l.mac}`).sort(), want);
    assert.ok(links.every(l => l.port === -1));
    assert.equal(links.find(l => l.name === 'veth0')!.kind, 'veth');
  });

  it('addresses: the RTM_GETADDR dumps (v4 + v6) match ip -j addr', () => {
    const got = [C.AF_INET, C.AF_INET6].flatMap(af => objs(rtnl(dumpRequest(C.RTM_GETADDR, af, ++seq)), 'address'))
      .map(a => `${a.ifindex} ${a.addr}/${a.plen} ${a.peer ?? '-'} ${a.scope}`).sort();
    const scope: Record<string, number> = { global: 0, link: 253, host: 254 };
    const want = ipj<{ ifindex: number; addr_info: { local: string; prefixlen: number; address?: string; scope: string }[] }[]>('addr show')
      .flatMap(l => l.addr_info.map(a => `${l.ifindex} ${a.local}/${a.prefixlen} ${a.address ?? '-'} ${scope[a.scope] ?? a.scope}`)).sort();
    assert.deepEqual(got, want);
  });

  it('routes: the RTM_GETROUTE dumps (v4 + v6, all tables) match ip -j route show table all', () => {
    const idx = new Map(ipj<{ ifindex: number; ifname: string }[]>('link show').map(l => [l.ifname, l.ifindex]));
    const line = (f: number, table: number, type: string, dst: string, metric: number, nh: string[]) =>
      `v${f} ${table} ${type} ${dst} m${metric} [${nh.sort().join(',')}]`;
    const got = [C.AF_INET, C.AF_INET6].flatMap(af => objs(rtnl(dumpRequest(C.RTM_GETROUTE, af, ++seq)), 'route'))
      .map(r => line(r.family, r.table, r.type, `${r.dst}/${r.plen}`, r.priority,
        r.nexthops.map(n => `${n.gw ?? '-'}@${n.ifindex}*${r.nexthops.length > 1 ? n.weight : 1}`))).sort();
    const tables: Record<string, number> = { main: 254, local: 255, default: 253 };
    type J = { type?: string; dst: string; table?: string; metric?: number; gateway?: string; dev?: string; nexthops?: { gateway?: string; dev?: string; weight?: number }[] };
    const want = [4, 6].flatMap(f => ipj<J[]>(`-${f} route show table all`).map(r => {
      const type = r.type ?? 'unicast';
      let dst = r.dst === 'default' ? (f === 4 ? '0.0.0.0/0' : '::/0') : r.dst;
      if (!dst.includes('/')) dst += f === 4 ? '/32' : '/128';
      const reject = ['blackhole', 'unreachable', 'prohibit', 'throw'].includes(type);
      const nh = reject ? [] : r.nexthops
        ? r.nexthops.map(n => `${n.gateway ?? '-'}@${idx.get(n.dev ?? '') ?? 0}*${n.weight ?? 1}`)
        : [`${r.gateway ?? '-'}@${idx.get(r.dev ?? '') ?? 0}*1`];
      return line(f, r.table ? tables[r.table] ?? Number(r.table) : 254, type, dst, r.metric ?? 0, nh);
    })).sort();
    assert.deepEqual(got, want);
  });

  it('rules: the RTM_GETRULE dumps match ip -j rule', () => {
    const got = [C.AF_INET, C.AF_INET6].flatMap(af => objs(rtnl(dumpRequest(C.RTM_GETRULE, af, ++seq)), 'rule'))
      .map(r => `v${r.family} ${r.priority} ${r.table} ${r.src ?? 'all'} ${r.dst ?? 'all'} ${r.invert} ${r.fwmark}/${r.fwmask} ${r.iif ?? '-'}`).sort();
    const tables: Record<string, number> = { main: 254, local: 255, default: 253 };
    type J = { priority: number; table: string; src: string; srclen?: number; dst?: string; dstlen?: number; not?: null; fwmark?: string; fwmask?: string; iif?: string };
    const want = [4, 6].flatMap(f => ipj<J[]>(`-${f} rule show`).map(r => {
      const fwmark = r.fwmark ? Number(r.fwmark) : 0;
      const fwmask = r.fwmask ? Number(r.fwmask) : fwmark ? 0xffffffff : 0;
      return `v${f} ${r.priority} ${tables[r.table] ?? Number(r.table)} ${r.src === 'all' ? 'all' : r.src} ${r.dst ?? 'all'} ${'not' in r} ${fwmark}/${fwmask} ${r.iif ?? '-'}`;
    })).sort();
    assert.deepEqual(got, want);
  });

  it('neighbours: the RTM_GETNEIGH dumps match ip -j neigh', () => {
    const nud: Record<string, number> = { INCOMPLETE: 1, REACHABLE: 2, STALE: 4, DELAY: 8, PROBE: 16, FAILED: 32, NOARP: 64, PERMANENT: 128 };
    const idx = new Map(ipj<{ ifindex: number; ifname: string }[]>('link show').map(l => [l.ifname, l.ifindex]));
    const got = [C.AF_INET, C.AF_INET6].flatMap(af => objs(rtnl(dumpRequest(C.RTM_GETNEIGH, af, ++seq)), 'neighbour'))
      .filter(n => !n.addr.startsWith('ff02:')).map(n => `${n.ifindex} ${n.addr} ${n.lladdr ?? '-'} ${n.state}`).sort();
    const want = ipj<{ dst: string; dev: string; lladdr?: string; state: string[] }[]>('neigh show nud all')
      .filter(n => !n.dst.startsWith('ff02:'))
      .map(n => `${idx.get(n.dev)} ${n.dst} ${n.lladdr ?? '-'} ${n.state.reduce((a, s) => a | (nud[s] ?? 0), 0)}`).sort();
    assert.deepEqual(got, want);
  });

  it('nsid: the RTM_GETNSID dump and getNsidByFd', () => {
    assert.deepEqual(rtnl(dumpRequest(C.RTM_GETNSID, C.AF_UNSPEC, ++seq)), [
      { kind: 'nsid', op: 'new', nsid: 42 }, { kind: 'done', errno: 0, interrupted: false },
    ]);
    const fd = fs.openSync(`/run/netns/${peer}`, 'r');
    try {
      assert.deepEqual(rtnl(getNsidByFd(3, ++seq), fd), [{ kind: 'nsid', op: 'new', nsid: 42 }]);
    } finally {
      fs.closeSync(fd);
    }
    const bad = rtnl(getNsidByFd(999, ++seq))[0];
    assert.equal(bad.kind, 'error');
  });

  it('neighUse: refreshes a STALE neighbour (ACK, state leaves STALE); ENOENT for a missing one', () => {
    const idx = new Map(ipj<{ ifindex: number; ifname: string }[]>('link show').map(l => [l.ifname, l.ifindex]));
    const r = rtnl(neighUse(idx.get('veth0')!, 4, '10.1.0.6', ++seq));
    assert.deepEqual(r, [{ kind: 'ack', seq, requestType: C.RTM_NEWNEIGH }]);
    const st = ipj<{ dst: string; state: string[] }[]>('neigh show 10.1.0.6 dev veth0')[0].state;
    assert.ok(!st.includes('STALE'), `state after NTF_USE: ${st}`);
    const missing = rtnl(neighUse(idx.get('veth0')!, 4, '10.1.0.77', ++seq))[0];
    assert.ok(missing.kind === 'error' && missing.name === 'ENOENT', JSON.stringify(missing));
  });

  it('xfrm: encodePolicy is accepted by the kernel and dumps back identical (index assigned by the kernel)', () => {
    const pol: XfrmPolicy = {
      vrf: 0, index: 0, dir: 'out', priority: 77, action: 'allow', flags: 0,
      selector: { family: 4, saddr: '10.1.0.0', splen: 24, daddr: '10.9.0.0', dplen: 16, proto: 17, sport: 0, sportMask: 0, dport: 4500, dportMask: 0xffff, ifindex: 0 },
      mark: { value: 5, mask: 0xff }, ifId: 3,
      tmpls: [{ family: 4, daddr: '10.2.0.2', saddr: '10.1.0.1', spi: 0, proto: 50, mode: 'tunnel', reqid: 9, optional: false, share: 0, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff }],
    };
    const v6: XfrmPolicy = {
      ...pol, dir: 'in', priority: 5, mark: undefined, ifId: 0,
      selector: { ...pol.selector, family: 6, saddr: '2001:db8:1::', splen: 48, daddr: '2001:db8:2::', dplen: 48, proto: 0, dport: 0, dportMask: 0 },
      tmpls: [{ ...pol.tmpls[0], family: 6, daddr: '::', saddr: '::', mode: 'transport', optional: true }],
    };
    delete v6.mark;
    const [a1, a2] = send('xfrm', [encodePolicy(pol, ++seq), encodePolicy(v6, ++seq)]).map(ms => ms.map(m => decodeXfrm(m, 0)));
    assert.equal(a1[0].kind, 'ack', JSON.stringify(a1));
    assert.equal(a2[0].kind, 'ack', JSON.stringify(a2));
    const dump = xfrm(dumpPolicy(++seq));
    assert.equal(dump[dump.length - 1].kind, 'done');
    const got = dump.filter(r => r.kind === 'policy').map(r => (r as { obj: XfrmPolicy }).obj);
    const strip = (p: XfrmPolicy) => ({ ...p, index: 0 });
    assert.deepEqual(got.map(strip).sort((x, y) => x.priority - y.priority), [strip(v6), strip(pol)]);
    ip('xfrm policy flush');
  });

  it('xfrm: encodeSa / newAe / dumpSa against this kernel (no ESP here: the error is decoded)', () => {
    const sa = {
      vrf: 0, daddr: '10.2.0.1', spi: 0x2001, proto: 50, family: 4 as const, saddr: '10.1.0.1', mode: 'tunnel' as const, reqid: 1,
      flags: 0, replayWindow: 32, esn: false, ifId: 0,
      selector: { family: 4 as const, saddr: '0.0.0.0', daddr: '0.0.0.0', splen: 0, dplen: 0, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 },
      aead: { name: 'rfc4106(gcm(aes))', key: '00112233445566778899aabbccddeeff01020304', icvBits: 128 },
      lifetime: { softBytes: C.XFRM_INF.toString(), hardBytes: C.XFRM_INF.toString(), softPackets: C.XFRM_INF.toString(), hardPackets: C.XFRM_INF.toString(), softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
    };
    const r = xfrm(encodeSa(sa, ++seq));
    if (r[0].kind === 'ack') {
      const dump = xfrm(dumpSa(++seq)).filter(x => x.kind === 'sa');
      assert.deepEqual(dump, [{ kind: 'sa', op: 'new', obj: sa }]);
      const ae = xfrm(newAe({ daddr: sa.daddr, spi: sa.spi, proto: 50, family: 4, replay: { oseq: 5, seq: 4, bitmap: 1 } }, ++seq));
      assert.equal(ae[0].kind, 'ack', JSON.stringify(ae));
      ip('xfrm state flush');
    } else {
      assert.equal(r[0].kind, 'error', JSON.stringify(r));
      if (r[0].kind === 'error') assert.ok(['EPROTONOSUPPORT', 'ENOSYS', 'EINVAL'].includes(r[0].name), r[0].text);
      const ae = xfrm(newAe({ daddr: sa.daddr, spi: sa.spi, proto: 50, family: 4, replay: { oseq: 5, seq: 4, bitmap: 1 } }, ++seq))[0];
      assert.ok(ae.kind === 'error' && ae.name === 'ESRCH', JSON.stringify(ae));
      assert.deepEqual(xfrm(dumpSa(++seq)), [{ kind: 'done', errno: 0, interrupted: false }]);
    }
  });
});
