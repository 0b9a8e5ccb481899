// The forwarding topology of the fast-path tests and demo:
//
//   host A (a0) ---- pA [ phy: the "physical" side ] pB ---- (b0) host B
//                     |  fast path ports eth1 (pA), eth2 (pB)  |
//                     DPVIs eth1, eth2 in the control-plane netns (cp), configured with ip
import { LfpEnv } from './lfp-env';
import { Netns } from './netns';
import type { PortSpec } from '../../lib/config';

export interface Topology { cp: Netns; phy: Netns; a: Netns; b: Netns; ports: PortSpec[]; destroy(): void }

export function buildTopology(kind: 'kernel' | 'dpdk' = 'kernel'): Topology {
  const made: Netns[] = [];
  try {
    const cp = Netns.create('cp'); made.push(cp);
    const phy = Netns.create('phy'); made.push(phy);
    const a = Netns.create('ha'); made.push(a);
    const b = Netns.create('hb'); made.push(b);
    phy.ip(`link add pA type veth peer name a0 netns ${a.name}`);
    phy.ip(`link add pB type veth peer name b0 netns ${b.name}`);
    for (const l of ['pA', 'pB']) phy.ip(`link set ${l} up`);
    const port = (name: string, iface: string, i: number): PortSpec => kind === 'kernel'
      ? { name, kernel: iface, netns: phy.name }
      // framecnt 8192 (default 512): the ring rides out the fast path being descheduled on a loaded machine
      : { name, dpdk: `net_af_packet${i},iface=${iface},framecnt=8192`, netns: phy.name };
    return {
      cp, phy, a, b,
      ports: [port('eth1', 'pA', 0), port('eth2', 'pB', 1)],
      destroy: () => { for (const n of made.reverse()) n.destroy(); },
    };
  } catch (e) {
    for (const n of made.reverse()) n.destroy();
    throw e;
  }
}

/** Addresses and routes as a user would configure them with ip (after the DPVIs exist). */
export function configureIp(t: Topology): void {
  const { cp, a, b } = t;
  cp.ip('link set eth1 up');
  cp.ip('link set eth2 up');
  cp.ip('addr add 10.1.0.1/24 dev eth1');
  cp.ip('addr add 10.2.0.1/24 dev eth2');
  cp.ip('-6 addr add 2001:db8:1::1/64 dev eth1 nodad');
  cp.ip('-6 addr add 2001:db8:2::1/64 dev eth2 nodad');
  cp.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  for (const [h, i] of [[a, 1], [b, 2]] as const) {
    const dev = h === a ? 'a0' : 'b0';
    h.ip(`link set ${dev} up`);
    // veth leaves UDP/TCP checksums to "hardware" (CHECKSUM_PARTIAL): a packet that crosses a raw
    // socket then arrives with a wrong checksum. Real hosts behind a real wire compute them.
    h.exec('ethtool', ['-K', dev, 'tx', 'off']);
    h.ip(`addr add 10.${i}.0.2/24 dev ${dev}`);
    h.ip(`-6 addr add 2001:db8:${i}::2/64 dev ${dev} nodad`);
    h.ip(`route add default via 10.${i}.0.1`);
    h.ip(`-6 route add default via 2001:db8:${i}::1`);
  }
}

/** buildTopology(kind) + lfp started on it (LfpEnv: fpmd, fp, cmgrd) + configureIp; everything removed on failure. */
export async function startLfpBetweenHosts(kind: 'kernel' | 'dpdk' = 'kernel'): Promise<{ t: Topology; env: LfpEnv }> {
  const t = buildTopology(kind);
  let env: LfpEnv | undefined;
  try {
    env = await LfpEnv.start({ cpNetns: t.cp.name, portSpecs: t.ports });
    configureIp(t);
    return { t, env };
  } catch (e) {
    env?.stop();
    t.destroy();
    throw e;
  }
}
