// lfp as an IPsec gateway, for tests that run INSIDE user-mode Linux (tests/uml/, a kernel with ESP):
// builds the topology below, starts lfp (fpmd, the fast path with kernel AF_PACKET ports, cmgrd) and
// configures addresses and routes with ip. What protects the traffic (ip xfrm states/policies, or an
// IKE daemon such as strongSwan in `cp` and `peer`) is the caller's.
//
//   host A (a0) ──── pA [ phy ] pB ──── (p0) peer (p1) ──── (b0) host B
//                      fast path ports eth1 (pA), eth2 (pB); DPVIs eth1, eth2 in `cp` (lfp's control
//                      plane, configured with ip). `peer` is a plain Linux router with kernel ESP.
//
//   net   | A        | lfp eth1  | lfp eth2  | peer p0   | peer p1  | B
//   IPv4  | 10.1.0.2 | 10.1.0.1  | 10.2.0.1  | 10.2.0.2  | 10.3.0.1 | 10.3.0.2   (/24 each)
//   IPv6  | …:1::2   | …:1::1    | …:2::1    | …:2::2    | …:3::1   | …:3::2     (2001:db8:N::/64)
//
// lfp routes 10.3.0.0/24 and 2001:db8:3::/64 via the peer; the peer routes 10.1.0.0/24 and
// 2001:db8:1::/64 via lfp. So A ↔ B crosses lfp and the peer, and the lfp ↔ peer link (eth2 / p0) is
// where ESP runs.
//
// Usage (inside the guest, as root):
//   const g = await startUmlLfp();          // topology + lfp running + ip configured + neighbours resolved
//   g.cp.ip('xfrm state add …'); g.peer.ip('xfrm state add …');
//   await g.ping(g.a, ADDR.b4);              // → { ok, out }
//   const r = await g.udpFlow(g.a, g.b, ADDR.b4, 10000, 5000);   // → packets received at B
//   g.env.stats(), g.env.fpctlJson(['show', 'sa']) …
//   g.stop();                               // always (lfp stopped, namespaces removed)
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configToJson } from '../../lib/config';
import { StatsFile } from '../../shared-mem/stats';
import { statsPath } from '../../lib/config';
import { parse4, parse6 } from '../../shared-mem/addr';
import { runIn, udpFlow } from './traffic';
import { LfpEnv, waitUntil } from './lfp-env';
import { Netns } from './netns';

export const ADDR = {
  a4: '10.1.0.2', lfp1v4: '10.1.0.1', lfp2v4: '10.2.0.1', peer4: '10.2.0.2', peerB4: '10.3.0.1', b4: '10.3.0.2',
  a6: '2001:db8:1::2', lfp1v6: '2001:db8:1::1', lfp2v6: '2001:db8:2::1', peer6: '2001:db8:2::2', peerB6: '2001:db8:3::1', b6: '2001:db8:3::2',
  netA4: '10.1.0.0/24', netB4: '10.3.0.0/24', netA6: '2001:db8:1::/64', netB6: '2001:db8:3::/64',
} as const;

export interface UmlLfpOptions {
  /** Extra keys merged into the config's `fastpath` object (e.g. `{ ipsecFragment: 'before-encrypt' }`). */
  fastpath?: Record<string, unknown>;
  /** MTU of the lfp ↔ peer link (eth2 / pB / p0), default 1500. */
  wanMtu?: number;
}

export interface UmlLfp {
  env: LfpEnv;
  cp: Netns; phy: Netns; a: Netns; peer: Netns; b: Netns;
  /** Runs `cmd args` in `ns`; never rejects. */
  run(ns: Netns, cmd: string, args: string[], timeoutMs?: number): Promise<{ code: number; out: string; err: string }>;
  /** `ping -c count` from ns to dst (IPv6 when dst has a ':'); ok = exit status 0. */
  ping(ns: Netns, dst: string, count?: number, size?: number): Promise<{ ok: boolean; out: string }>;
  /** Sends `count` numbered UDP datagrams from `from` to dst:port at `pps`; resolves with how many distinct ones `to` got. */
  udpFlow(from: Netns, to: Netns, dst: string, count: number, pps: number, opts?: { port?: number; size?: number }): Promise<number>;
  /**
   * Restarts fpmd, the fast path and cmgrd (LfpEnv.restartAll: a new shared memory unless fresh is false; dropStats:
   * without the fast path's stats file). The DPVIs outlive the killed fast path with their addresses and routes
   * (fastpath.dpviPersist); the neighbours Linux flushed when they lost carrier are resolved again; the XFRM state
   * is untouched.
   */
  restart(o?: { fresh?: boolean; dropStats?: boolean }): Promise<void>;
  /** Stops lfp, removes the namespaces. Idempotent. */
  stop(): void;
}

const run = runIn;

/** Builds the topology, starts lfp in `cp`, configures ip, resolves the neighbours. */
export async function startUmlLfp(o: UmlLfpOptions = {}): Promise<UmlLfp> {
  const made: Netns[] = [];
  let env: LfpEnv | null = null;
  const stop = () => {
    try { env?.stop(); } catch { /* gone */ }
    env = null;
    for (const n of made.splice(0).reverse()) n.destroy();
  };
  try {
    // Inside the UML guest (its own kernel) only: room for 10,000-datagram bursts in the receivers'
    // sockets (net.core.rmem_max is global in 6.1; udp-tool asks for 16 MB).
    if (os.hostname() === 'lfp-uml') fs.writeFileSync('/proc/sys/net/core/rmem_max', '16777216');
    const mk = (p: string) => { const n = Netns.create(p); made.push(n); return n; };
    const cp = mk('cp'), phy = mk('phy'), a = mk('ha'), peer = mk('peer'), b = mk('hb');
    phy.ip(`link add pA type veth peer name a0 netns ${a.name}`);
    phy.ip(`link add pB type veth peer name p0 netns ${peer.name}`);
    peer.ip(`link add p1 type veth peer name b0 netns ${b.name}`);
    const wanMtu = o.wanMtu ?? 1500;
    phy.ip(`link set pB mtu ${wanMtu}`);
    peer.ip(`link set p0 mtu ${wanMtu}`);
    for (const l of ['pA', 'pB']) phy.ip(`link set ${l} up`);

    // lfp: LfpEnv with the fast-path keys of the caller (the file is rewritten before anything starts).
    const e = new LfpEnv({ cpNetns: cp.name, portSpecs: [{ name: 'eth1', kernel: 'pA', netns: phy.name }, { name: 'eth2', kernel: 'pB', netns: phy.name }], shm: { maxRoutes: 10000, tbl8Groups: 512 } });
    env = e;
    (e.cfg as unknown as { fastpath: Record<string, unknown> }).fastpath = { ...e.cfg.fastpath, memMB: 64, mbufs: 4096, ...(o.fastpath ?? {}) };
    fs.writeFileSync(e.cfgFile, configToJson(e.cfg));
    // fpmd and the fast path start together (fp waits for the shared memory itself): node takes ~1 s to start in UML
    e.spawn('fpmd', ['--fresh']);
    e.spawn('fp');
    await waitUntil('fpmd shared memory', 20_000, () => fs.existsSync(e.cfg.shm.path) && !!e.reader, 50);
    await waitUntil('fast path running', 60_000, () => {
      if (!e.alive('fp')) throw new Error('fp exited');
      return StatsFile.open(statsPath(e.cfg)).read().perWorker[0].fields.heartbeatMs > 0;
    }, 100).catch((err) => { throw new Error(`${(err as Error).message}\n${e.logs()}`); });
    e.spawn('cmgrd');
    await e.waitSynced(60_000);

    // ip configuration
    const configureCp = async (): Promise<void> => {
      cp.batch([
        'link set eth1 up', 'link set eth2 up',
        `addr add ${ADDR.lfp1v4}/24 dev eth1`, `addr add ${ADDR.lfp2v4}/24 dev eth2`,
        `addr add ${ADDR.lfp1v6}/64 dev eth1 nodad`, `addr add ${ADDR.lfp2v6}/64 dev eth2 nodad`,
        `route add ${ADDR.netB4} via ${ADDR.peer4}`, `route add ${ADDR.netB6} via ${ADDR.peer6}`,
      ]);
      if (wanMtu !== 1500) {
        // the DPVI's MTU is the port's (the fast path applies it to pB on its control tick)
        cp.ip(`link set eth2 mtu ${wanMtu}`);
        await waitUntil('eth2 MTU in lfp', 10_000, () => e.list('link', 0).find((l) => l.name === 'eth2')?.mtu === wanMtu, 50);
      }
    };
    const waitCarrier = () => waitUntil('DPVI carrier', 10_000, () => ['eth1', 'eth2'].every((l) => cp.ip(`link show ${l}`).includes('LOWER_UP')), 50);
    await configureCp();
    peer.batch([
      'link set p0 up', 'link set p1 up',
      `addr add ${ADDR.peer4}/24 dev p0`, `addr add ${ADDR.peerB4}/24 dev p1`,
      `addr add ${ADDR.peer6}/64 dev p0 nodad`, `addr add ${ADDR.peerB6}/64 dev p1 nodad`,
      `route add ${ADDR.netA4} via ${ADDR.lfp2v4}`, `route add ${ADDR.netA6} via ${ADDR.lfp2v6}`,
    ]);
    for (const ns of [cp, peer]) ns.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const [h, dev, n, gw4, gw6] of [[a, 'a0', 1, ADDR.lfp1v4, ADDR.lfp1v6], [b, 'b0', 3, ADDR.peerB4, ADDR.peerB6]] as const) {
      h.ip(`link set ${dev} up`);
      // veth leaves UDP checksums to "hardware"; a packet crossing an AF_PACKET port would keep a bad one
      h.exec('ethtool', ['-K', dev, 'tx', 'off']);
      h.batch([`addr add 10.${n}.0.2/24 dev ${dev}`, `addr add 2001:db8:${n}::2/64 dev ${dev} nodad`,
        `route add default via ${gw4}`, `route add default via ${gw6}`]);
    }
    peer.exec('ethtool', ['-K', 'p0', 'tx', 'off']);
    peer.exec('ethtool', ['-K', 'p1', 'tx', 'off']);
    await waitCarrier();

    const g: UmlLfp = {
      env: e, cp, phy, a, peer, b, run, udpFlow, stop,
      restart: async (ro = {}) => {
        await e.restartAll(ro);
        await waitCarrier(); // the DPVIs kept their addresses and routes (fastpath.dpviPersist)
        await resolveNeighbours();
      },
      ping: async (ns, dst, count = 3, size) => {
        const args = [...(dst.includes(':') ? ['-6'] : []), '-c', String(count), '-i', '0.2', '-w', String(10 + count), ...(size ? ['-s', String(size)] : []), dst];
        const r = await run(ns, 'ping', args);
        return { ok: r.code === 0, out: r.out + r.err };
      },
    };
    // Resolve every neighbour lfp and the peer need before any policy exists: the first packets of a
    // flow would otherwise go to Linux (no-neighbour), which would encrypt them itself. (After a restart the
    // policies exist: these pings are clear traffic between directly connected addresses, outside them.)
    const resolveNeighbours = async (): Promise<void> => {
      await Promise.all(([[cp, ADDR.a4], [cp, ADDR.peer4], [cp, ADDR.a6], [cp, ADDR.peer6], [peer, ADDR.b4], [peer, ADDR.b6], [a, ADDR.lfp1v4],
        [a, ADDR.lfp1v6], [b, ADDR.peerB4], [b, ADDR.peerB6]] as const).map(async ([ns, dst]) => {
        const r = await g.ping(ns, dst, 1);
        if (!r.ok) throw new Error(`ping ${dst} from ${ns.name}: ${r.out}`);
      }));
      await waitUntil('neighbours in lfp', 10_000, () => {
        const n = e.list('neighbour').filter((x) => !!x.lladdr).map((x) => x.addr);
        return [ADDR.a4, ADDR.peer4, ADDR.a6, ADDR.peer6].every((x) => n.includes(x));
      }, 50);
    };
    await resolveNeighbours();
    return g;
  } catch (err) {
    const logs = env ? env.logs() : '';
    stop();
    throw new Error(`startUmlLfp: ${(err as Error).message}${logs && !(err as Error).message.includes('--- logs') ? `\n--- logs ---\n${logs}` : ''}`);
  }
}

/** Fast-path counters of one SA (vrf 0, ESP), by destination and SPI: the stats file's per-SA block
 *  (`StatsFile.readSa`, packets/bytes/errors…); null when the SA is not in shared memory or the fast
 *  path keeps no per-SA counters. */
export function fpSaCounters(env: LfpEnv, daddr: string, spi: number): Record<string, number> | null {
  let key: number | Uint32Array;
  if (daddr.includes(':')) { const w = new Uint32Array(4); if (!parse6(daddr, w, 0)) return null; key = w; } else key = parse4(daddr);
  const slot = env.reader.saLookup(0, key, spi, 50);
  if (slot < 0) return null;
  const sf = StatsFile.open(statsPath(env.cfg)) as unknown as { readSa?: (i: number) => Record<string, number>; layout?: { sas?: number } };
  if (typeof sf.readSa !== 'function' || !sf.layout?.sas || slot >= sf.layout.sas) return null;
  return sf.readSa(slot);
}

/** `ip -s xfrm state` of a namespace, per SPI (hex, 0x%08x): packets and bytes of "lifetime current". */
export function kernelSaCounters(ns: Netns): Record<string, { src: string; dst: string; packets: number; bytes: number }> {
  const out: Record<string, { src: string; dst: string; packets: number; bytes: number }> = {};
  let cur: { src: string; dst: string; packets: number; bytes: number } | null = null;
  let inCurrent = false;
  for (const line of ns.ip('-s xfrm state').split('\n')) {
    let m = /^src (\S+) dst (\S+)/.exec(line);
    if (m) { cur = { src: m[1], dst: m[2], packets: 0, bytes: 0 }; inCurrent = false; continue; }
    m = /proto esp spi (0x[0-9a-f]+)/.exec(line);
    if (m && cur) { out[m[1]] = cur; continue; }
    if (/lifetime current:/.test(line)) { inCurrent = true; continue; }
    m = /^\s+(\d+)\(bytes\), (\d+)\(packets\)/.exec(line);
    if (m && cur && inCurrent) { cur.bytes = Number(m[1]); cur.packets = Number(m[2]); inCurrent = false; }
  }
  return out;
}
