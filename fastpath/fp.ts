// The fast-path process: opens the ports of the config (DPDK devices or kernel interfaces), creates
// one DPVI (a TAP with the port's name and MAC) per port in the control-plane netns, and polls:
// port -> graph (forward, or exception to the DPVI), DPVI -> port (what Linux sends).
// A control timer applies what the user set on a DPVI with `ip link` (MTU, MAC, up/down, mirrored
// into shared memory by cmgrd/fpmd) to the port, and reflects the port's carrier on the DPVI.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from '../native/crypto';
import * as pktio from '../native/pktio';
import { ShmReader } from '../shared-mem/reader';
import { StatsFile } from '../shared-mem/stats';
import { Graph } from './graph';
import { createVector, Vector } from './vector';
import type { PacketIo } from './io';
import { DPVI_ALIAS, statsPath } from '../lib/config';
import type { LfpConfig, PortSpec } from '../lib/config';
import type { Logger } from '../lib/log';
import type { Link } from '../lib/model';

const NETNS_DIR = '/run/netns';
/** DPVIs are polled on every DPVI_EVERY-th iteration of a busy poll loop (a power of two). */
const DPVI_EVERY = 4;


interface FpPort {
  spec: PortSpec;
  index: number;
  dev: number; // pktio handle of the device, -1 when the port has no packet I/O
  dpvi: number; // pktio handle of the DPVI tap, -1 when none
  mtu: number;
  mac: string;
  adminUp: boolean;
  carrier: boolean;
}

/** PacketIo over the native addon; a class so that the graph's call sites stay monomorphic. */
class PktioIo implements PacketIo {
  readonly mem: Uint8Array;
  readonly bufSize: number;
  constructor(pool: pktio.Pool, private dev: Int32Array, private dpvi: Int32Array) {
    this.mem = pool.mem;
    this.bufSize = pool.bufSize;
  }
  tx(port: number, v: Vector, count: number): number {
    const h = this.dev[port];
    return h < 0 ? 0 : pktio.tx(h, v.mbuf, v.off, v.len, count);
  }
  toDpvi(port: number, v: Vector, count: number): number {
    const h = this.dpvi[port];
    return h < 0 ? 0 : pktio.tx(h, v.mbuf, v.off, v.len, count);
  }
  free(mbuf: Uint32Array, count: number): void { pktio.free(mbuf, count); }
  alloc(mbuf: Uint32Array, off: Uint32Array, count: number): number { return pktio.alloc(mbuf, off, count); }
}

/**
 * The poll loop of one worker: port -> graph (forward, or exception to the DPVI), DPVI -> port (what
 * Linux sends). `slice()` runs up to 64 iterations and returns; the caller yields to the event loop
 * between slices (signals, control timer). Exported for the benchmarks (tests/bench/fwd-memif.ts).
 */
export class PollLoop {
  private readonly v: Vector = createVector();
  private readonly nap = new Int32Array(new SharedArrayBuffer(4));
  private idle = 0;
  /** Frames Linux sent through a DPVI that went out of its port / could not (port full: freed). */
  dpviToPort = 0;
  dpviTxFull = 0;

  constructor(private readonly graph: Graph, private readonly dev: Int32Array, private readonly dpvi: Int32Array,
    private readonly burst: number) {}

  slice(): void {
    const v = this.v, dev = this.dev, dpvi = this.dpvi, nports = dev.length;
    for (let iter = 0; iter < 64; iter++) {
      let got = 0;
      // The DPVIs (a read() syscall each, ~0.3 us with the N-API call) are polled on every iteration
      // while the ports are idle, and on every DPVI_EVERY-th while they are busy: what Linux sends
      // waits at most that many bursts.
      const dpviNow = this.idle > 0 || (iter & (DPVI_EVERY - 1)) === 0;
      for (let i = 0; i < nports; i++) {
        const d = dev[i];
        if (d < 0) continue;
        const n = pktio.rx(d, v.mbuf, v.off, v.len, this.burst);
        if (n > 0) {
          v.n = n;
          v.port.fill(i, 0, n);
          this.graph.process(v);
          got += n;
        }
        if (!dpviNow) continue;
        // What Linux sends through the DPVI goes out of the port unchanged.
        const m = pktio.rx(dpvi[i], v.mbuf, v.off, v.len, this.burst);
        if (m > 0) {
          const sent = pktio.tx(d, v.mbuf, v.off, v.len, m);
          this.dpviToPort += sent;
          if (sent < m) {
            this.dpviTxFull += m - sent;
            v.mbuf.copyWithin(0, sent, m);
            pktio.free(v.mbuf, m - sent);
          }
          got += m;
        }
      }
      if (got === 0) {
        // Idle: back off with short sleeps (the VM has 2 cores shared with Linux and the daemons).
        this.idle++;
        if (this.idle > 16) Atomics.wait(this.nap, 0, 0, this.idle > 1000 ? 1 : 0.05);
      } else {
        this.idle = 0;
      }
    }
  }
}

export class FastPath {
  private ports: FpPort[] = [];
  private reader!: ShmReader;
  private stats!: StatsFile;
  private graph!: Graph;
  private loop!: PollLoop;
  private burst: number;
  private running = false;
  private control: NodeJS.Timeout | null = null;

  constructor(readonly cfg: LfpConfig, private log: Logger) {
    this.burst = cfg.fastpath.burst;
  }

  async start(): Promise<void> {
    const cpPath = this.cfg.controlPlaneNetns ? path.join(NETNS_DIR, this.cfg.controlPlaneNetns) : undefined;
    const pool = pktio.init({ eal: this.cfg.fastpath.eal, memMB: this.cfg.fastpath.memMB, mbufs: this.cfg.fastpath.mbufs });
    this.log.info(`packet pool: ${pool.mbufs} mbufs of ${pool.bufLen} bytes${pool.hugepages ? ' (hugepages)' : ''}`);
    this.cfg.portSpecs.forEach((spec, index) => {
      const p: FpPort = { spec, index, dev: -1, dpvi: -1, mtu: 1500, mac: '', adminUp: true, carrier: false };
      if (spec.dpdk || spec.kernel) {
        const netns = spec.netns ? path.join(NETNS_DIR, spec.netns) : undefined;
        // Kernel ports: many small ring blocks. A block is handed over when full or after 1 ms, so at
        // low rates each block holds ~1 ms of traffic: 256 blocks ride out a stall of the process.
        p.dev = spec.dpdk ? pktio.dpdkPort(spec.dpdk, { netns })
          : pktio.kernelPort(spec.kernel!, { netns, blockSize: 1 << 16, blocks: 256, blockTimeoutMs: 1 });
        const info = pktio.portInfo(p.dev);
        p.mtu = info.mtu;
        p.mac = info.mac;
        p.carrier = info.linkUp;
        const persist = this.cfg.fastpath.dpviPersist !== false;
        const adopt = persist && this.leftDpvi(spec.name);
        p.dpvi = pktio.tapPort(spec.name, { netns: cpPath, mac: info.mac, mtu: info.mtu, persist, adopt });
        if (persist && !adopt) this.markDpvi(spec.name);
        pktio.setCarrier(p.dpvi, p.carrier);
        this.log.info(`port ${index} ${spec.name}: ${spec.dpdk ? `DPDK ${spec.dpdk}` : `kernel ${spec.kernel}`}, mac ${p.mac}, mtu ${p.mtu}, carrier ${p.carrier ? 'up' : 'down'}; DPVI ${spec.name} in ${this.cfg.controlPlaneNetns || 'this netns'}${adopt ? ' (re-attached: left by a previous fast path, with its addresses and routes)' : ''}`);
      } else {
        this.log.info(`port ${index} ${spec.name}: mirrored only (no packet I/O configured)`);
      }
      this.ports.push(p);
    });
    this.reader = await this.openShm();
    // per-SA blocks: one per shm SA entry; kept from the previous run (sequence numbers go on, ipsec.ts)
    this.stats = StatsFile.createFile(statsPath(this.cfg), { workers: 1, ports: Math.max(1, this.ports.length), sas: this.reader.config.maxSas },
      { keepSas: true });
    const dev = Int32Array.from(this.ports.map((p) => p.dev));
    const dpvi = Int32Array.from(this.ports.map((p) => p.dpvi));
    const ipsec = this.cfg.fastpath.ipsec !== false;
    const ipsecFragment = this.cfg.fastpath.ipsecFragment ?? 'after-encrypt';
    if (ipsec && !crypto.available()) this.log.warn('IPsec: the lfp_crypto addon is not built: every SA is left to Linux (make -C native/crypto)');
    const ipsecLocalDecrypt = ipsec && this.cfg.fastpath.ipsecLocalDecrypt !== false && this.trustDpvis();
    this.graph = new Graph({ io: new PktioIo(pool, dev, dpvi), shm: this.reader, ports: this.ports.length, stats: this.stats.worker(0),
      ipsec, ipsecFragment, ipsecLocalDecrypt });
    this.loop = new PollLoop(this.graph, dev, dpvi, this.burst);
    this.log.info(`IPsec in the fast path: ${ipsec ? `on (fragmentation ${ipsecFragment}; ESP for this host decrypted ${ipsecLocalDecrypt ? 'here, DPVIs trusted by Linux' : 'by Linux'})` : 'off (Linux does IPsec)'}`);
    this.running = true;
    this.control = setInterval(() => this.controlTick(), 100);
    setImmediate(() => this.poll());
  }

  /**
   * fastpath.ipsecLocalDecrypt: Linux must accept what the fast path decrypted for this host, in clear,
   * from the DPVIs: disable_policy on each DPVI (IPv4 and IPv6; the fast path checks the 'in' policies
   * of those packets instead). False (and a warning) when that cannot be set: Linux then decrypts ESP
   * for this host itself.
   */
  private trustDpvis(): boolean {
    const names = this.ports.filter((p) => p.dpvi >= 0).map((p) => p.spec.name);
    // slash-separated keys: an interface name may contain dots
    const keys = names.flatMap((n) => [`net/ipv4/conf/${n}/disable_policy`, `net/ipv6/conf/${n}/disable_policy`]);
    if (keys.length === 0) return true;
    try {
      if (this.cfg.controlPlaneNetns) {
        execFileSync('ip', ['netns', 'exec', this.cfg.controlPlaneNetns, 'sysctl', '-q', '-w', ...keys.map((k) => `${k}=1`)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
      } else {
        for (const k of keys) fs.writeFileSync(`/proc/sys/${k}`, '1');
      }
      this.log.info(`IPsec: disable_policy set on the DPVIs ${names.join(', ')} (the fast path checks their 'in' policies)`);
      return true;
    } catch (e) {
      const err = e as Error & { stderr?: Buffer };
      this.log.warn(`IPsec: cannot set disable_policy on the DPVIs (${(err.stderr?.toString() || err.message).trim()}): ESP for this host is left to Linux`);
      return false;
    }
  }

  /** `ip` in the control-plane netns (cold path: start-up only). */
  private cpIp(args: string[]): string {
    const ns = this.cfg.controlPlaneNetns ? ['-n', this.cfg.controlPlaneNetns] : [];
    return execFileSync('ip', [...ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 }).toString();
  }

  /**
   * True when `name` is a DPVI a previous fast path left (fastpath.dpviPersist after a crash): a TAP with the alias
   * DPVI_ALIAS. Any other interface of that name is not taken over (tapPort then refuses it: EEXIST).
   */
  private leftDpvi(name: string): boolean {
    let l: { ifalias?: string; linkinfo?: { info_kind?: string; info_data?: { type?: string } } } | undefined;
    try {
      l = (JSON.parse(this.cpIp(['-d', '-j', 'link', 'show', 'dev', name])) as typeof l[])[0];
    } catch {
      return false; // no such interface
    }
    const ours = l?.ifalias === DPVI_ALIAS && l.linkinfo?.info_kind === 'tun' && l.linkinfo.info_data?.type === 'tap';
    if (!ours) this.log.error(`an interface named ${name} exists in ${this.cfg.controlPlaneNetns || 'this netns'} and is not a DPVI left by lfp (alias "${l?.ifalias ?? ''}", kind ${l?.linkinfo?.info_kind ?? 'none'}): remove or rename it`);
    return ours;
  }

  /** Marks a new persistent DPVI as lfp's (its alias), so that a fast path restarted after a crash re-attaches to it. */
  private markDpvi(name: string): void {
    try {
      this.cpIp(['link', 'set', 'dev', name, 'alias', DPVI_ALIAS]);
    } catch (e) {
      const err = e as Error & { stderr?: Buffer };
      this.log.warn(`DPVI ${name}: cannot set its alias (${(err.stderr?.toString() || err.message).trim()}): a restarted fast path will not re-attach to it`);
    }
  }

  private async openShm(): Promise<ShmReader> {
    const end = Date.now() + 10000;
    for (;;) {
      try {
        return ShmReader.open(this.cfg.shm.path, { writable: true });
      } catch (e) {
        if (Date.now() > end) throw new Error(`shared memory ${this.cfg.shm.path}: ${(e as Error).message} (is fpmd running?)`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** One slice of the poll loop; yields to the event loop between slices (signals, control timer). */
  private poll(): void {
    if (!this.running) return;
    this.loop.slice();
    setImmediate(() => this.poll());
  }

  /** Applies DPVI settings made with `ip link` to the ports; reflects carrier on the DPVIs. */
  private controlTick(): void {
    this.graph.heartbeat();
    let links: Link[];
    try {
      links = this.reader.list('link', { vrf: 0 }).map((o) => o.obj as Link);
    } catch {
      return;
    }
    for (const p of this.ports) {
      if (p.dev < 0) continue;
      const l = links.find((x) => x.name === p.spec.name);
      if (l) {
        try {
          if (l.mtu !== p.mtu) { pktio.setMtu(p.dev, l.mtu); p.mtu = l.mtu; this.log.info(`port ${p.spec.name}: mtu ${l.mtu} (from ip link)`); }
          if (l.mac && l.mac !== p.mac) { pktio.setMac(p.dev, l.mac); p.mac = l.mac; this.log.info(`port ${p.spec.name}: mac ${l.mac} (from ip link)`); }
          if (l.adminUp !== p.adminUp) { pktio.setUp(p.dev, l.adminUp); p.adminUp = l.adminUp; this.log.info(`port ${p.spec.name}: ${l.adminUp ? 'up' : 'down'} (from ip link)`); }
        } catch (e) {
          this.log.error(`port ${p.spec.name}: ${(e as Error).message}`);
        }
      }
      const carrier = pktio.portInfo(p.dev).linkUp;
      if (carrier !== p.carrier) {
        p.carrier = carrier;
        pktio.setCarrier(p.dpvi, carrier);
        this.log.info(`port ${p.spec.name}: carrier ${carrier ? 'up' : 'down'}`);
      }
    }
  }

  close(): void {
    this.running = false;
    if (this.control) clearInterval(this.control);
    if (this.graph) this.graph.close(); // IPsec: native SA contexts freed, keys wiped
    for (const p of this.ports) {
      if (p.dpvi >= 0) {
        try { pktio.setPersist(p.dpvi, false); } catch { /* gone already */ } // a clean stop removes the DPVI
        pktio.close(p.dpvi);
      }
      if (p.dev >= 0) pktio.close(p.dev);
    }
    try { pktio.shutdown(); } catch { /* already */ }
  }
}
