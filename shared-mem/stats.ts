// THE layout of the fast-path statistics file (default /run/lfp/shm/lfp-stats), a shared-memory file
// SEPARATE from the state file (layout.ts): the fast path writes it, fpctl and the stats daemon read
// it. Counter and reason names are defined here once (PORT_COUNTERS, EXCEPTION_REASONS, DROP_REASONS);
// the fast path's nodes take their counter indices from these arrays.
//
// File = page 0 (header, u32 words STATS_HDR.*) + one page-aligned slice per worker. Each worker
// writes only its own slice (no atomics needed, no false sharing between workers):
//
//   slice w (Float64): WORKER_FIELDS (8 values), then `ports` blocks of PORT_STRIDE counters:
//     [C_RX_PACKETS .. C_DPVI_BYTES]        PORT_COUNTERS
//     [EXC_BASE + r]                        exceptions (packets sent to Linux) by reason r
//     [DROP_BASE + r]                       drops by reason r
//   then `sas` blocks of SA_STRIDE per-SA counters (SA_COUNTERS; block i = shm SA entry index i):
//     tag      the shm SA entry's sequence word when the worker (re)loaded the SA into its cache; a
//              DIFFERENT SA (identity: VRF, destination, SPI, protocol, keys) loaded into the slot zeroes
//              the block first; the same SA re-read after its entry was rewritten keeps the counters
//              and updates the tag. 0 = never used by this worker.
//     packets, bytes   ESP packets / payload bytes (ESP payload = what was encrypted / decrypted) of
//              this SA that the fast path encrypted (outbound SA) or decrypted and accepted (inbound SA)
//     errors   packets of this SA dropped for any other reason (trailer, policy, crypto, seq overflow)
//     replayDrops, authDrops   inbound: anti-replay rejects ('esp-replay'), ICV failures ('esp-icv')
//     oseq     outbound: last sequence number used (64-bit with ESN, as a Float64 integer)
//     iseq     inbound: highest authenticated sequence number (64-bit with ESN)
//     ident    a 32-bit digest (SHA-256) of the SA's identity (VRF, destination, SPI, protocol, keys); 0 = none.
//              A restarted fast path goes on from a block only for the SA that wrote it: from block i when
//              its tag and ident are the entry's (same shared memory), else from the block of the previous
//              file with the SA's ident, wherever it was (the shared memory was re-created: other entry
//              indexes and sequence words; fastpath/ipsec.ts load)
//   StatsFile.readSa(i) sums a block over the workers whose tag is the highest (tag/oseq/iseq: max).
//
// After the worker slices (page aligned), the oseq FLOOR region: `sas` entries of FLOOR_STRIDE Float64
// (FLOOR_FIELDS), written ONLY by the stats daemon (fpsd), read by the fast path:
//     tag      the shm SA entry's sequence word of the SA incarnation the floor belongs to (a floor whose
//              tag is not the entry's current one, e.g. of an old SA in a reused slot, is ignored)
//     oseq     the highest outbound sequence number the Linux kernel used on the SA (its own packets:
//              exceptions, locally originated traffic): the fast path numbers above it (IpsecState.nextSeq)
//
// Counters are Float64 (exact integers up to 2^53; incrementing them allocates nothing, unlike
// BigInt). Readers may read while a worker writes: 8-byte aligned Float64 stores are single stores
// on 64-bit hosts, so a reader sees the old or the new value of each counter (the counters of a
// port are not a consistent snapshot among themselves).
//
// Which port a counter is charged to: rx, forwarded, exceptions (dpvi*) and drops to the INPUT port,
// except 'tx-full' (charged to the egress port); tx to the egress port.

import { loadNative } from './layout';

export const STATS_MAGIC = 0x5453464c; // "LFST" in little-endian bytes
export const STATS_VERSION = 4; // 2: per-SA counters (StatsConfig.sas), header word SAS; 3: oseq floor region (header word FLOORS); 4: SA ident
export const DEFAULT_STATS_PATH = '/run/lfp/shm/lfp-stats';
export const STATS_PAGE = 4096;

/** Per-port counters besides the reasons (index = counter slot in a port block). */
export const PORT_COUNTERS = [
  'rxPackets', 'rxBytes', // received on the port (every packet handed to the graph)
  'txPackets', 'txBytes', // sent on the port by port-tx (forwarded packets and fragments)
  'forwarded', // packets received on the port and forwarded by the fast path (a fragmented packet counts once)
  'dpviPackets', 'dpviBytes', // exceptions received on the port and handed to its DPVI (Linux)
] as const;
export type PortCounter = typeof PORT_COUNTERS[number];

/** Why a packet was handed to Linux (the input port's DPVI, original frame). */
export const EXCEPTION_REASONS = [
  'port-unknown', // no shm link entry carries the input port (VRF, MAC unknown)
  'arp', // ethertype ARP
  'ndp', // ICMPv6 133..137 (RS, RA, NS, NA, redirect)
  'vlan', // 802.1Q / 802.1ad tagged: not supported by the fast path
  'unsupported-l2', // other ethertypes (and 802.3 length frames)
  'l2-broadcast', // destination MAC ff:ff:ff:ff:ff:ff
  'l2-multicast', // other group destination MACs
  'ip-options', // IPv4 IHL > 5
  'ttl-expired', // IPv4 TTL <= 1 / IPv6 hop limit <= 1 (Linux sends time exceeded)
  'fragment', // IPv4 fragment addressed to this host (Linux reassembles it; transit fragments are forwarded)
  'ipv4-multicast', // IPv4 destination 224/4 or 255.255.255.255
  'ipv6-ext', // IPv6 extension header (hop-by-hop, routing, fragment, dest options, AH, mobility, ...)
  'ipv6-link-local', // IPv6 fe80::/10 source or destination
  'ipv6-multicast', // IPv6 destination ff00::/8
  'local', // route of type local / broadcast / multicast / anycast: for this host
  'no-route', // no route (Linux answers ICMP unreachable)
  'unreachable', // route or rule of type unreachable
  'prohibit', // route or rule of type prohibit
  'route-type', // other route types (nat, throw...)
  'shm-busy', // a shared-memory entry stayed locked / changed under the reader
  'no-neighbour', // no neighbour entry with a usable state and a 6-byte lladdr (Linux resolves)
  'not-fp-port', // egress interface is not a fast-path port (or has no 6-byte MAC)
  'egress-down', // egress link administratively down
  'frag-needed', // IPv4 longer than the egress MTU with DF set (Linux sends frag needed)
  'too-big', // IPv6 longer than the egress MTU (Linux sends packet too big)
  'no-sa', // IPsec (GraphOptions.ipsec): an 'out' policy matches but no usable SA (Linux raises ACQUIRE)
  'ipsec-unsupported', // IPsec: policy / SA feature the fast path does not do (if_id, mark != 0, bundles, AH / IPComp, algorithm...): Linux does it
  'esp-no-room', // IPsec: the encapsulated packet would not fit the buffer (headroom / tailroom)
  'ipsec-local', // IPsec inbound: ESP whose packet is for this host (transport mode, or a tunnel-mode inner packet to a local address): given to Linux as received, Linux decrypts it
  'esp-too-big', // IPsec outbound: the ESP packet would exceed the egress MTU and the graph cannot fragment it (IPv6 outer without ipv6-fragment): Linux does it
  'esp-outer-route', // IPsec outbound: no unicast route to the SA's outer destination (next hop / neighbour problems count under their own reasons): Linux encrypts it
] as const;
export type ExceptionReason = typeof EXCEPTION_REASONS[number];

/** Why a packet was freed without being sent anywhere. */
export const DROP_REASONS = [
  'runt', // shorter than an Ethernet header
  'not-for-us', // unicast destination MAC other than the port's
  'own-mac', // source MAC is the port's own: a frame we sent, seen again (e.g. an AF_PACKET port sees its own tx)
  'ipv4-truncated', // frame too short for an IPv4 header
  'ipv4-version', // version != 4 with ethertype IPv4
  'ipv4-bad-ihl', // IHL < 5
  'ipv4-bad-length', // total length < header length or > frame
  'ipv4-checksum', // header checksum error
  'ipv4-martian', // source or destination in 127/8, 0/8; multicast/broadcast source
  'ipv6-truncated', // frame too short for an IPv6 header
  'ipv6-version', // version != 6 with ethertype IPv6
  'ipv6-bad-length', // payload length > frame
  'ipv6-martian', // loopback / unspecified destination, loopback / multicast source
  'blackhole', // route or rule of type blackhole
  'tx-full', // the egress port did not take the packet (charged to the egress port)
  'dpvi-full', // the DPVI did not take the exception
  'no-mbuf', // fragmentation: the pool had no free buffer
  'frag-error', // fragmentation impossible (MTU smaller than header + 8)
  'esp-replay', // IPsec inbound: sequence number replayed or left of the anti-replay window
  'esp-icv', // IPsec inbound: integrity check failed
  'esp-bad-spi', // IPsec inbound: no SA for (destination, SPI, ESP)
  'esp-truncated', // IPsec inbound: too short for the SA's header / IV / ICV, bad length or trailer
  'esp-policy', // IPsec inbound: decrypted packet not allowed by an 'in'/'fwd' policy for this SA
  'ipsec-block', // IPsec outbound: the matching 'out' policy is 'block'
  'esp-seq-overflow', // IPsec outbound: the SA's sequence number space is exhausted (no ESN)
  'esp-crypto-error', // IPsec: the crypto addon refused or failed a burst (never seen)
  'ipsec-clear-in', // IPsec: a clear-text packet (not decrypted by the fast path) matching an 'in'/'fwd' policy that requires ESP (Linux: XfrmInTmplMismatch)
  'reasm-overlap', // reassembly (ESP fragments to this box): overlapping fragments (RFC 5722): the datagram is discarded
  'reasm-too-many-frags', // reassembly: more fragments than the per-datagram limit
  'reasm-too-big', // reassembly: the datagram would exceed 65535 bytes or one buffer
  'reasm-timeout', // reassembly: datagram not complete in time (fragments discarded)
  'reasm-table-full', // reassembly: the oldest incomplete datagram evicted for a new one
  'esp-encap', // IPsec inbound: ESP in UDP (NAT-T) for an SA without UDP encapsulation, or plain ESP for an SA with it
  'vector-full', // a node's input vector was full while a chain of early runs inside one vector kept the node busy (not expected: fastpath/vector.ts handOn)
] as const;
export type DropReason = typeof DROP_REASONS[number];

/** Per-worker fields at the start of its slice (Float64). */
export const WORKER_FIELDS = [
  'pid', 'heartbeatMs', 'vectors', 'packets', 'badPort', 'spare5', 'spare6', 'spare7',
] as const;
export type WorkerField = typeof WORKER_FIELDS[number];

export const C_RX_PACKETS = 0, C_RX_BYTES = 1, C_TX_PACKETS = 2, C_TX_BYTES = 3, C_FORWARDED = 4,
  C_DPVI_PACKETS = 5, C_DPVI_BYTES = 6;
export const W_PID = 0, W_HEARTBEAT_MS = 1, W_VECTORS = 2, W_PACKETS = 3, W_BAD_PORT = 4;
export const EXC_BASE = PORT_COUNTERS.length;
export const DROP_BASE = EXC_BASE + EXCEPTION_REASONS.length;
/** Counters per port block (rounded up to 8 Float64 = one 64-byte cache line). */
export const PORT_STRIDE = Math.ceil((DROP_BASE + DROP_REASONS.length) / 8) * 8;

/** Index of an exception reason (throws on an unknown name: catches typos at module load). */
export function exceptionReason(name: ExceptionReason): number {
  const i = (EXCEPTION_REASONS as readonly string[]).indexOf(name);
  if (i < 0) throw new RangeError(`unknown exception reason "${name}"`);
  return i;
}
export function dropReason(name: DropReason): number {
  const i = (DROP_REASONS as readonly string[]).indexOf(name);
  if (i < 0) throw new RangeError(`unknown drop reason "${name}"`);
  return i;
}

/** Per-SA counters (one block of SA_STRIDE Float64 per shm SA entry index, per worker). */
/** `tag`: the shm SA entry's sequence word when the block was (re)started; `ident`: a 32-bit digest of the SA's
 *  identity (VRF, destination, SPI, protocol, keys: SHA-256, never the keys themselves), so that a block is only
 *  taken for the SA that wrote it, also across a re-created shared memory (fastpath/ipsec.ts load). */
export const SA_COUNTERS = ['tag', 'packets', 'bytes', 'errors', 'replayDrops', 'authDrops', 'oseq', 'iseq', 'ident'] as const;
export type SaCounter = typeof SA_COUNTERS[number];
export const SA_STRIDE = 9;
export const SA_C_TAG = 0, SA_C_PACKETS = 1, SA_C_BYTES = 2, SA_C_ERRORS = 3, SA_C_REPLAY = 4, SA_C_AUTH = 5, SA_C_OSEQ = 6,
  SA_C_ISEQ = 7, SA_C_IDENT = 8;
export type SaStats = Record<SaCounter, number>;

/** Per-SA oseq floor (one entry of FLOOR_STRIDE Float64 per SA slot, after the worker slices; written by fpsd only). */
export const FLOOR_FIELDS = ['tag', 'oseq'] as const;
export const FLOOR_STRIDE = 2;
export const FL_TAG = 0, FL_OSEQ = 1;

/** FNV-1a of every name, in order: a reader built from other names refuses the file. */
export const STATS_SCHEMA = ((): number => {
  let h = 0x811c9dc5;
  for (const s of [...PORT_COUNTERS, '|', ...EXCEPTION_REASONS, '|', ...DROP_REASONS, '|', ...WORKER_FIELDS, '|', ...SA_COUNTERS, '|', ...FLOOR_FIELDS, `|${PORT_STRIDE}|${SA_STRIDE}|${FLOOR_STRIDE}`]) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 44, 0x01000193);
  }
  return h >>> 0;
})();

/** Header words (u32, page 0). */
export const STATS_HDR = {
  MAGIC: 0, VERSION: 1, SCHEMA: 2, WORKERS: 3, PORTS: 4, PORT_STRIDE: 5, WORKER_FIELDS: 6,
  NPORT_COUNTERS: 7, NEXC: 8, NDROP: 9, SLICE_BYTES: 10, HEADER_BYTES: 11, TOTAL_LO: 12, TOTAL_HI: 13,
  CREATED: 14, SAS: 15, FLOORS: 16, WORDS: 1024,
} as const;

export interface StatsConfig {
  workers: number; // 1..256
  ports: number; // 1..4096; port ids 0..ports-1
  /** SA slots per worker (= the shm SA table capacity, maxSas; slot i = SA entry index i). Default 0. */
  sas?: number; // 0..1048576
}

export interface StatsLayout extends StatsConfig {
  sas: number;
  sliceBytes: number; // page aligned
  headerBytes: number;
  /** Byte offset of the oseq floor region (sas × FLOOR_STRIDE Float64, page aligned size floorBytes). */
  floorOffset: number;
  floorBytes: number;
  totalSize: number;
}

export function statsLayout(cfg: StatsConfig): StatsLayout {
  const { workers, ports } = cfg;
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new RangeError(`stats workers=${workers}: must be an integer in [1, 256]`);
  if (!Number.isInteger(ports) || ports < 1 || ports > 4096) throw new RangeError(`stats ports=${ports}: must be an integer in [1, 4096]`);
  const sas = cfg.sas ?? 0;
  if (!Number.isInteger(sas) || sas < 0 || sas > 1048576) throw new RangeError(`stats sas=${sas}: must be an integer in [0, 1048576]`);
  const sliceBytes = Math.ceil(((WORKER_FIELDS.length + ports * PORT_STRIDE + sas * SA_STRIDE) * 8) / STATS_PAGE) * STATS_PAGE;
  const floorOffset = STATS_PAGE + workers * sliceBytes;
  const floorBytes = Math.ceil((sas * FLOOR_STRIDE * 8) / STATS_PAGE) * STATS_PAGE;
  return { workers, ports, sas, sliceBytes, headerBytes: STATS_PAGE, floorOffset, floorBytes, totalSize: floorOffset + floorBytes };
}

/** One worker's slice: `fields` (WORKER_FIELDS), `counters` (ports × PORT_STRIDE), `sa` (sas × SA_STRIDE). */
export interface WorkerSlice {
  worker: number;
  fields: Float64Array;
  counters: Float64Array;
  sa: Float64Array;
}

export type PortStats = { [K in PortCounter]: number } & {
  exceptions: Record<ExceptionReason, number>;
  drops: Record<DropReason, number>;
};

export interface WorkerStats {
  worker: number;
  fields: Record<WorkerField, number>;
  ports: PortStats[];
}

export interface StatsSnapshot {
  workers: number;
  ports: number;
  created: number; // unix seconds
  perWorker: WorkerStats[];
  total: PortStats[]; // summed over the workers, per port
}

/** Index of counter `c` of `port` in a slice's `counters` array. */
export function counterIndex(port: number, c: number): number {
  return port * PORT_STRIDE + c;
}

/** PortStats of one port block (counters[base .. base + PORT_STRIDE)). */
export function portStatsOf(counters: Float64Array, base: number): PortStats {
  const p = {} as PortStats;
  PORT_COUNTERS.forEach((n, i) => { p[n] = counters[base + i]; });
  p.exceptions = {} as Record<ExceptionReason, number>;
  EXCEPTION_REASONS.forEach((n, i) => { p.exceptions[n] = counters[base + EXC_BASE + i]; });
  p.drops = {} as Record<DropReason, number>;
  DROP_REASONS.forEach((n, i) => { p.drops[n] = counters[base + DROP_BASE + i]; });
  return p;
}

function addPortStats(into: PortStats, p: PortStats): void {
  for (const n of PORT_COUNTERS) into[n] += p[n];
  for (const n of EXCEPTION_REASONS) into.exceptions[n] += p.exceptions[n];
  for (const n of DROP_REASONS) into.drops[n] += p.drops[n];
}

export class StatsFile {
  readonly layout: StatsLayout;
  readonly name: string;
  readonly sab: SharedArrayBuffer;
  private readonly u32: Uint32Array;

  private constructor(sab: SharedArrayBuffer, layout: StatsLayout, name: string) {
    this.sab = sab;
    this.layout = layout;
    this.name = name;
    this.u32 = new Uint32Array(sab, 0, STATS_HDR.WORDS);
  }

  /** Initialises a mapping (zeroes it) for `cfg`. The fast path (writer side) calls this. */
  static create(sab: SharedArrayBuffer, cfg: StatsConfig, name = 'stats memory'): StatsFile {
    const L = statsLayout(cfg);
    if (sab.byteLength < L.totalSize) throw new RangeError(`${name}: mapping is ${sab.byteLength} bytes, the stats layout needs ${L.totalSize}`);
    const u = new Uint32Array(sab, 0, STATS_HDR.WORDS);
    Atomics.store(u, STATS_HDR.MAGIC, 0);
    new Uint8Array(sab, 0, L.totalSize).fill(0);
    u[STATS_HDR.VERSION] = STATS_VERSION;
    u[STATS_HDR.SCHEMA] = STATS_SCHEMA;
    u[STATS_HDR.WORKERS] = L.workers;
    u[STATS_HDR.PORTS] = L.ports;
    u[STATS_HDR.PORT_STRIDE] = PORT_STRIDE;
    u[STATS_HDR.WORKER_FIELDS] = WORKER_FIELDS.length;
    u[STATS_HDR.NPORT_COUNTERS] = PORT_COUNTERS.length;
    u[STATS_HDR.NEXC] = EXCEPTION_REASONS.length;
    u[STATS_HDR.NDROP] = DROP_REASONS.length;
    u[STATS_HDR.SLICE_BYTES] = L.sliceBytes;
    u[STATS_HDR.HEADER_BYTES] = L.headerBytes;
    u[STATS_HDR.TOTAL_LO] = L.totalSize % 0x100000000;
    u[STATS_HDR.TOTAL_HI] = Math.floor(L.totalSize / 0x100000000);
    u[STATS_HDR.CREATED] = Math.floor(Date.now() / 1000);
    u[STATS_HDR.SAS] = L.sas;
    u[STATS_HDR.FLOORS] = L.floorOffset;
    Atomics.store(u, STATS_HDR.MAGIC, STATS_MAGIC); // last: valid from here on
    return new StatsFile(sab, L, name);
  }

  /** Attaches to an initialised mapping (readers, and workers given the SharedArrayBuffer). */
  static attach(sab: SharedArrayBuffer, name = 'stats memory'): StatsFile {
    if (sab.byteLength < STATS_PAGE) throw new Error(`${name} is not an lfp stats file`);
    const u = new Uint32Array(sab, 0, STATS_HDR.WORDS);
    if (Atomics.load(u, STATS_HDR.MAGIC) !== STATS_MAGIC) throw new Error(`${name} is not an lfp stats file`);
    if (u[STATS_HDR.VERSION] !== STATS_VERSION) {
      throw new Error(`${name}: stats layout version ${u[STATS_HDR.VERSION]}, this program expects ${STATS_VERSION}`);
    }
    if (u[STATS_HDR.SCHEMA] !== STATS_SCHEMA) {
      throw new Error(`${name}: counter names differ from this program's (fast path and reader built from different versions)`);
    }
    let L: StatsLayout;
    try {
      L = statsLayout({ workers: u[STATS_HDR.WORKERS], ports: u[STATS_HDR.PORTS], sas: u[STATS_HDR.SAS] });
    } catch (e) {
      throw new Error(`${name}: corrupt stats header (${(e as Error).message})`);
    }
    const total = u[STATS_HDR.TOTAL_HI] * 0x100000000 + u[STATS_HDR.TOTAL_LO];
    if (total !== L.totalSize || u[STATS_HDR.SLICE_BYTES] !== L.sliceBytes || u[STATS_HDR.FLOORS] !== L.floorOffset) throw new Error(`${name}: corrupt stats header (size)`);
    if (sab.byteLength < total) throw new Error(`${name}: mapping is ${sab.byteLength} bytes but the stats file needs ${total} (truncated?)`);
    return new StatsFile(sab, L, name);
  }

  /**
   * Writer: maps (creating / growing) `path` with the native addon and initialises it. keepSas: the per-SA
   * blocks of a previous file at `path` (same version and names), summed over its workers, are carried into
   * worker 0 of the new file (a restarted fast path goes on counting, and its outbound sequence numbers go on
   * from `oseq`, instead of restarting at 1 with the same keys). The oseq floors (fpsd's) are carried over too.
   */
  static createFile(path: string, cfg: StatsConfig, opts: { keepSas?: boolean } = {}): StatsFile {
    const L = statsLayout(cfg);
    let kept: SaStats[] = [];
    let keptFloors: Float64Array | null = null;
    if (opts.keepSas === true && L.sas > 0) {
      try {
        const old = StatsFile.open(path);
        const n = Math.min(old.layout.sas, L.sas);
        for (let i = 0; i < n; i++) kept.push(old.readSa(i));
        keptFloors = old.floors().slice(0, n * FLOOR_STRIDE);
      } catch {
        kept = []; keptFloors = null; // no previous file, or another layout: start from zero
      }
    }
    const sab = loadNative().shm.map(path, { size: L.totalSize, create: true });
    const f = StatsFile.create(sab, cfg, path);
    if (kept.length > 0) {
      const sa = f.worker(0).sa;
      kept.forEach((k, i) => { SA_COUNTERS.forEach((c, j) => { sa[i * SA_STRIDE + j] = k[c]; }); });
    }
    if (keptFloors) f.floors().set(keptFloors);
    return f;
  }

  /** Reader: maps an existing stats file (read-only unless writable). */
  static open(path = DEFAULT_STATS_PATH, opts: { writable?: boolean } = {}): StatsFile {
    const sab = loadNative().shm.map(path, { size: 0, create: false, readonly: !opts.writable });
    return StatsFile.attach(sab, path);
  }

  /** True while the mapping carries the stats magic. */
  valid(): boolean { return Atomics.load(this.u32, STATS_HDR.MAGIC) === STATS_MAGIC; }

  created(): number { return this.u32[STATS_HDR.CREATED]; }

  /** Views of worker `w`'s slice (the worker increments `counters` in place). */
  worker(w: number): WorkerSlice {
    const L = this.layout;
    if (!Number.isInteger(w) || w < 0 || w >= L.workers) throw new RangeError(`worker ${w}: the stats file has ${L.workers} workers`);
    const base = L.headerBytes + w * L.sliceBytes;
    return {
      worker: w,
      fields: new Float64Array(this.sab, base, WORKER_FIELDS.length),
      counters: new Float64Array(this.sab, base + WORKER_FIELDS.length * 8, L.ports * PORT_STRIDE),
      sa: new Float64Array(this.sab, base + (WORKER_FIELDS.length + L.ports * PORT_STRIDE) * 8, L.sas * SA_STRIDE),
    };
  }

  /**
   * Counters of SA slot `slot` (= shm SA entry index): packets, bytes, errors, replayDrops, authDrops summed
   * over the workers whose block carries the highest tag (the current incarnation); tag, oseq, iseq: their
   * maximum. All zero for a slot no worker used. (Allocates: for daemons and tools.)
   */
  readSa(slot: number): SaStats {
    const L = this.layout;
    if (!Number.isInteger(slot) || slot < 0 || slot >= L.sas) throw new RangeError(`SA slot ${slot}: the stats file has ${L.sas} SA slots`);
    const out = { tag: 0, packets: 0, bytes: 0, errors: 0, replayDrops: 0, authDrops: 0, oseq: 0, iseq: 0, ident: 0 };
    const blocks: Float64Array[] = [];
    for (let w = 0; w < L.workers; w++) {
      const base = L.headerBytes + w * L.sliceBytes + (WORKER_FIELDS.length + L.ports * PORT_STRIDE + slot * SA_STRIDE) * 8;
      blocks.push(new Float64Array(this.sab, base, SA_STRIDE));
    }
    for (const b of blocks) if (b[SA_C_TAG] > out.tag) out.tag = b[SA_C_TAG];
    for (const b of blocks) {
      if (b[SA_C_TAG] !== out.tag) continue;
      out.packets += b[SA_C_PACKETS]; out.bytes += b[SA_C_BYTES]; out.errors += b[SA_C_ERRORS];
      out.replayDrops += b[SA_C_REPLAY]; out.authDrops += b[SA_C_AUTH];
      if (b[SA_C_OSEQ] > out.oseq) out.oseq = b[SA_C_OSEQ];
      if (b[SA_C_ISEQ] > out.iseq) out.iseq = b[SA_C_ISEQ];
      if (b[SA_C_IDENT] !== 0) out.ident = b[SA_C_IDENT];
    }
    return out;
  }

  /** The oseq floor region: FLOOR_STRIDE Float64 per SA slot (FL_TAG, FL_OSEQ); fpsd writes it, the fast path reads it. */
  floors(): Float64Array {
    return new Float64Array(this.sab, this.layout.floorOffset, this.layout.sas * FLOOR_STRIDE);
  }

  /** The oseq floor of SA slot `slot` (tag 0: none). */
  readFloor(slot: number): { tag: number; oseq: number } {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.layout.sas) throw new RangeError(`SA slot ${slot}: the stats file has ${this.layout.sas} SA slots`);
    const f = new Float64Array(this.sab, this.layout.floorOffset + slot * FLOOR_STRIDE * 8, FLOOR_STRIDE);
    return { tag: f[FL_TAG], oseq: f[FL_OSEQ] };
  }

  /**
   * fpsd (the only writer): the kernel used outbound sequence numbers up to `oseq` on the SA incarnation `tag`
   * (shm entry sequence word) in slot `slot`. Needs a writable mapping (open(path, { writable: true })).
   */
  writeFloor(slot: number, tag: number, oseq: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.layout.sas) throw new RangeError(`SA slot ${slot}: the stats file has ${this.layout.sas} SA slots`);
    if (!Number.isInteger(oseq) || oseq < 0 || oseq > Number.MAX_SAFE_INTEGER) throw new RangeError(`oseq floor ${oseq}: must be a non-negative integer`);
    const f = new Float64Array(this.sab, this.layout.floorOffset + slot * FLOOR_STRIDE * 8, FLOOR_STRIDE);
    // A reader between the two stores sees a mixed pair at worst: it then only skips numbers, never reuses one.
    f[FL_TAG] = tag >>> 0;
    f[FL_OSEQ] = oseq;
  }

  /** Zeroes worker `w`'s slice (a worker starting over). */
  resetWorker(w: number): void {
    const s = this.worker(w);
    s.fields.fill(0);
    s.counters.fill(0);
    s.sa.fill(0);
  }

  /** A copy of every counter, per worker and summed per port (allocating: for fpctl / daemons). */
  read(): StatsSnapshot {
    const L = this.layout;
    const perWorker: WorkerStats[] = [];
    const total: PortStats[] = [];
    const zero = new Float64Array(PORT_STRIDE);
    for (let p = 0; p < L.ports; p++) total.push(portStatsOf(zero, 0));
    for (let w = 0; w < L.workers; w++) {
      const s = this.worker(w);
      const counters = s.counters.slice();
      const fields = {} as Record<WorkerField, number>;
      WORKER_FIELDS.forEach((n, i) => { fields[n] = s.fields[i]; });
      const ports: PortStats[] = [];
      for (let p = 0; p < L.ports; p++) {
        const ps = portStatsOf(counters, p * PORT_STRIDE);
        ports.push(ps);
        addPortStats(total[p], ps);
      }
      perWorker.push({ worker: w, fields, ports });
    }
    return { workers: L.workers, ports: L.ports, created: this.created(), perWorker, total };
  }
}

/** Private (non-shared) counters with the same layout as one worker slice (tests, single process). */
export function privateSlice(ports: number, sas = 0): WorkerSlice {
  statsLayout({ workers: 1, ports, sas });
  return { worker: 0, fields: new Float64Array(WORKER_FIELDS.length), counters: new Float64Array(ports * PORT_STRIDE), sa: new Float64Array(sas * SA_STRIDE) };
}

/** Only the non-zero counters of a PortStats (for display). */
export function nonZero(p: PortStats): Record<string, number> {
  const o: Record<string, number> = {};
  for (const n of PORT_COUNTERS) if (p[n] !== 0) o[n] = p[n];
  for (const n of EXCEPTION_REASONS) if (p.exceptions[n] !== 0) o[`exception:${n}`] = p.exceptions[n];
  for (const n of DROP_REASONS) if (p.drops[n] !== 0) o[`drop:${n}`] = p.drops[n];
  return o;
}
