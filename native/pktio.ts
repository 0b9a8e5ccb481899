// Typed wrapper of the lfp_pktio addon (native/pktio/): packet I/O of the fast path over ONE DPDK mbuf pool whose
// memory is exposed as `mem` (docs/fastpath-design.md "Packet memory"). Ports: DPDK ethdev (any EAL device string),
// kernel (an existing Linux interface through AF_PACKET), tap (DPVI: a TAP created by us). See native/pktio/README.md.
//
// A packet is (mbuf index, off, len): its bytes are mem[off .. off+len). Every I/O call handles a whole burst.
// The addon is loaded on first use, so importing this module never fails; a missing build is reported (with the
// command that builds it) by the first call.

import * as path from 'path';
import { AddonLoader } from './addon-loader';

/** Where the compiled addon lives, relative to this file once compiled (build/native/pktio.js). */
export const addonPath = path.resolve(__dirname, '../../native/pktio/build/Release/lfp_pktio.node');

const BUILD_HINT = 'build it with: cd native/pktio && ../../node_modules/.bin/node-gyp rebuild --nodedir=/usr ' +
  '(needs libdpdk-dev and pkg-config)';

export interface InitOptions {
  /** Extra EAL arguments, e.g. ['--vdev=net_ring0']. They come after (and can override) the defaults. */
  eal?: string[];
  /** EAL memory (-m) in MiB. Default: what the pool needs plus 1/8 plus 64 MiB. */
  memMB?: number;
  /** Mbufs in the pool (default 16383). */
  mbufs?: number;
  /** Data room of each mbuf, headroom included (default 2048 + 128). */
  mbufSize?: number;
  /** Use hugepages when /proc/meminfo shows free ones and a hugetlbfs is mounted (default false: --no-huge). */
  hugepages?: boolean;
  /** PCI devices will be used: do not pass --no-pci (also implied by -a/--allow/-b/--block in eal). */
  pci?: boolean;
  /** EAL main lcore (-l). Default: the first CPU the calling thread may run on. */
  core?: number;
  /** Keep the calling thread pinned to `core` (EAL pins it; by default its original affinity is restored). */
  pin?: boolean;
}

export interface Pool {
  /** The pool's single memory chunk (an external ArrayBuffer). Detached (length 0) after shutdown(). */
  mem: Uint8Array;
  /** Mbufs in the pool: indices are 0 .. mbufs-1. */
  mbufs: number;
  /** Bytes before the data start of a fresh mbuf (headers can be pushed in front, up to this much). */
  headroom: number;
  /** Buffer size of each mbuf (headroom included). */
  bufLen: number;
  /** bufLen - headroom: bytes usable from an alloc()'d offset. */
  bufSize: number;
  /** Whether hugepages are used. */
  hugepages: boolean;
  /** The EAL command line used. */
  eal: string[];
}

export interface DpdkPortOptions {
  rxq?: number;      // default 1
  txq?: number;      // default 1
  rxDesc?: number;   // default 1024 (adjusted to the device's limits)
  txDesc?: number;   // default 1024
  mtu?: number;      // rte_eth_dev_set_mtu before start; default: the device's
  /** Probe/configure inside this network namespace (/run/netns/NAME): for net_af_packet / net_af_xdp on an
   *  interface of that namespace. Control calls (setMtu, portInfo ...) enter it again. */
  netns?: string;
}

export interface KernelPortOptions {
  /** Network namespace file of the interface (/run/netns/NAME); default: the process's own. */
  netns?: string;
  mode?: 'af_packet';
  /** TPACKET_V3 ring: block size in bytes (multiple of 4096, default 256 KiB) and number of blocks (default 16). */
  blockSize?: number;
  blocks?: number;
  /** A partly filled block is handed over after this long (default 1 ms; the kernel rounds up to a jiffy). */
  blockTimeoutMs?: number;
  /** PACKET_QDISC_BYPASS for transmitted frames (default false: they go through the interface's qdisc). */
  qdiscBypass?: boolean;
}

export interface TapPortOptions {
  /** Network namespace file to create the TAP in; default: the process's own. */
  netns?: string;
  /** MAC address, aa:bb:cc:dd:ee:ff (unicast). */
  mac: string;
  /** MTU; at most bufSize - 18. */
  mtu: number;
  /** The TAP outlives the port (TUNSETPERSIST): a crash leaves it, with its addresses and routes; `setPersist(port,
   *  false)` before `close` removes it. Default false: it disappears with the port. */
  persist?: boolean;
  /** An existing TAP of that name is attached to (re-opened) instead of refused; the caller must check it is its own
   *  (a TAP that is in use, or an interface that is not a TAP, is refused by the kernel: EBUSY / EINVAL). */
  adopt?: boolean;
}

export type PortKind = 'dpdk' | 'kernel' | 'tap';

export interface PortInfo {
  kind: PortKind;
  /** dpdk: the ethdev name; kernel/tap: the interface's current name (renames are followed). */
  name: string;
  mac: string;
  mtu: number;
  /** Administratively up and link (carrier / oper state) up. */
  linkUp: boolean;
  adminUp: boolean;
  /** kernel/tap: the interface index (in its namespace); dpdk: the kernel ifindex the PMD reports, if any. */
  ifindex?: number;
  netns?: string;
  // dpdk only
  devargs?: string;
  portId?: number;
  driver?: string;
  speedMbps?: number;
  rxq?: number;
  txq?: number;
}

export interface PortStats {
  ipackets: number;
  opackets: number;
  ibytes: number;
  obytes: number;
  /** Frames the device/kernel dropped because we did not read fast enough (AF_PACKET: ring full). */
  imissed: number;
  /** Received frames dropped as unusable (too large for an mbuf, truncated, scattered). */
  ierrors: number;
  /** Frames that could not be sent (dropped). */
  oerrors: number;
  /** Receive attempts that found the pool empty. */
  rxNoMbuf: number;
}

export interface PoolStats {
  size: number;
  /** Free mbufs (in the pool's ring and per-core caches). */
  avail: number;
  inUse: number;
  /** Mbufs currently held by JS (received or allocated, not yet sent or freed). */
  held: number;
}

interface Addon {
  init(opts: InitOptions): Pool;
  shutdown(): void;
  initialised(): boolean;
  dpdkPort(devargs: string, opts?: DpdkPortOptions): number;
  kernelPort(ifname: string, opts?: KernelPortOptions): number;
  tapPort(name: string, opts: TapPortOptions): number;
  close(port: number): void;
  fd(port: number): number;
  portInfo(port: number): PortInfo;
  setMtu(port: number, mtu: number): void;
  setMac(port: number, mac: string): void;
  setUp(port: number, up: boolean): void;
  setCarrier(port: number, up: boolean): void;
  setPersist(port: number, on: boolean): void;
  stats(port: number): PortStats;
  poolStats(): PoolStats;
  rx(port: number, mbuf: Uint32Array, off: Uint32Array, len: Uint32Array, max: number, queue?: number): number;
  tx(port: number, mbuf: Uint32Array, off: Uint32Array, len: Uint32Array, count: number, queue?: number): number;
  free(mbuf: Uint32Array, count: number): void;
  alloc(mbuf: Uint32Array, off: Uint32Array, count: number): number;
  cyclesNow(): bigint;
  cyclesHz(): bigint;
}

const loader = new AddonLoader<Addon>('lfp_pktio', addonPath, BUILD_HINT);

/** Load the addon now (it is loaded on first use otherwise). Throws a clear Error when it is not built. */
export function load(): Addon { return loader.load(); }

/** True when the addon is built and loads. */
export function available(): boolean { return loader.available(); }

function A(): Addon {
  return loader.get();
}

/**
 * Initialises the EAL (once per process) and creates the pool. Calling it again with the same options returns the
 * same pool (same `mem`); with other options, or after shutdown(), it throws: DPDK cannot initialise twice.
 * Only the calling thread may use the pool and the ports afterwards.
 */
export function init(opts: InitOptions): Pool { return A().init(opts); }

/** True between a successful init() and shutdown(). */
export function initialised(): boolean { return available() && A().initialised(); }

/**
 * Closes every port, frees the pool (mbufs still held by JS included), rte_eal_cleanup(). `mem` is detached.
 * Idempotent. After it, nothing works any more in this process (DPDK cannot be initialised again).
 */
export function shutdown(): void { A().shutdown(); }

/**
 * A DPDK ethdev port: 'net_ring0', 'net_af_packet0,iface=veth1', 'net_af_xdp0,iface=X', '0000:03:00.0' ...
 * Probed (rte_dev_probe) unless already there (e.g. --vdev on the EAL line), configured, started, promiscuous.
 * Returns a port handle.
 */
export function dpdkPort(devargs: string, opts?: DpdkPortOptions): number { return A().dpdkPort(devargs, opts); }

/** An existing Linux interface through AF_PACKET (TPACKET_V3 rx ring, sendmmsg tx), promiscuous. */
export function kernelPort(ifname: string, opts?: KernelPortOptions): number { return A().kernelPort(ifname, opts); }

/**
 * A DPVI: creates TAP `name` (IFF_TAP | IFF_NO_PI, not persistent: it vanishes with its descriptor, i.e. on
 * close(), shutdown() or when the process exits or dies) in `netns`, with the MAC and MTU given. Created down.
 */
export function tapPort(name: string, opts: TapPortOptions): number { return A().tapPort(name, opts); }

/**
 * Receives up to `max` packets: fills mbuf/off/len[0 .. count) and returns count. The packets are the caller's
 * until given back with tx() or free().
 */
export function rx(port: number, mbuf: Uint32Array, off: Uint32Array, len: Uint32Array, max: number, queue?: number): number {
  const a = A();
  return queue === undefined ? a.rx(port, mbuf, off, len, max) : a.rx(port, mbuf, off, len, max, queue);
}

/**
 * Sends mbuf[0 .. count) with their data at off (absolute in mem) / len. Returns how many were taken: a prefix
 * [0 .. sent); the rest stays the caller's (free or retry). The whole burst is checked first: a bad entry throws
 * and nothing is sent.
 */
export function tx(port: number, mbuf: Uint32Array, off: Uint32Array, len: Uint32Array, count: number, queue?: number): number {
  const a = A();
  return queue === undefined ? a.tx(port, mbuf, off, len, count) : a.tx(port, mbuf, off, len, count, queue);
}

/** Returns mbuf[0 .. count) to the pool (all checked first: a bad entry throws and frees nothing). */
export function free(mbuf: Uint32Array, count: number): void { A().free(mbuf, count); }

/** Allocates up to `count` mbufs: mbuf[i] = index, off[i] = data start (after the headroom). Returns how many. */
export function alloc(mbuf: Uint32Array, off: Uint32Array, count: number): number { return A().alloc(mbuf, off, count); }

export function portInfo(port: number): PortInfo { return A().portInfo(port); }
export function setMtu(port: number, mtu: number): void { A().setMtu(port, mtu); }
export function setMac(port: number, mac: string): void { A().setMac(port, mac); }
/** dpdk: rte_eth_dev_set_link_up/down and a software admin state (rx/tx do nothing while down); kernel/tap: IFF_UP. */
export function setUp(port: number, up: boolean): void { A().setUp(port, up); }
/** TAP only: TUNSETCARRIER (the DPVI shows the carrier of the physical port). */
export function setCarrier(tapPort: number, up: boolean): void { A().setCarrier(tapPort, up); }
/** TUNSETPERSIST on a tap port: false before `close` makes the TAP disappear with it. */
export function setPersist(tapPort: number, on: boolean): void { A().setPersist(tapPort, on); }
export function stats(port: number): PortStats { return A().stats(port); }
export function poolStats(): PoolStats { return A().poolStats(); }
/** The descriptor to poll for readability (kernel and tap ports); -1 for DPDK ports. Owned by the addon. */
export function fd(port: number): number { return A().fd(port); }
/** Stops and closes the port (a DPDK vdev is removed and can be probed again; a TAP disappears). */
export function close(port: number): void { A().close(port); }
/** rte_rdtsc(). */
export function cyclesNow(): bigint { return A().cyclesNow(); }
/** rte_get_tsc_hz() (after init). */
export function cyclesHz(): bigint { return A().cyclesHz(); }
