// The forwarding graph of one worker: wires the nodes and runs received vectors through them.
//
//   eth-input ─┬─> ipv4-input ─> ipv4-lookup ─> ipv4-rewrite ─┬─> port-tx
//              │                                              └─> ipv4-fragment ─> port-tx
//              └─> ipv6-input ─> ipv6-lookup ─> ipv6-rewrite ───> port-tx
//   every node ──> exception (input port's DPVI, original frame) / drop (free), counted by reason
//   GraphOptions.ipsec (off by default): ipv4-lookup ─> esp-encrypt ─> ipv4-lookup (outer) / ipv4-rewrite (no policy);
//   ipv4-lookup (ESP to a local address) ─> esp-decrypt ─> ipv4-input (inner packet)
//
// process(v) takes ownership of every packet of v: each ends up sent, handed to Linux or freed
// before process returns. Nodes run in topological order; a node whose output vector fills up
// runs the next node early (fragmentation can multiply packets), so no vector ever overflows.
// Nothing is allocated per packet.

import type { ShmReader } from '../shared-mem/reader';
import { PORT_STRIDE, W_HEARTBEAT_MS, W_PACKETS, W_VECTORS, portStatsOf, privateSlice, type PortStats, type WorkerSlice } from '../shared-mem/stats';
import { Adjacency } from './adjacency';
import { FpContext } from './context';
import { FibResolver } from './fib';
import type { PacketIo } from './io';
import { IpsecState } from './ipsec';
import { DropNode } from './nodes/drop';
import { EspDecryptNode } from './nodes/esp-decrypt';
import { EspEncryptNode } from './nodes/esp-encrypt';
import { EthInputNode } from './nodes/eth-input';
import { ExceptionNode } from './nodes/exception';
import { Ipv4FragmentNode } from './nodes/ipv4-fragment';
import { Ipv4InputNode } from './nodes/ipv4-input';
import { Ipv4LookupNode } from './nodes/ipv4-lookup';
import { Ipv4RewriteNode } from './nodes/ipv4-rewrite';
import { Ipv6InputNode } from './nodes/ipv6-input';
import { Ipv6LookupNode } from './nodes/ipv6-lookup';
import { Ipv6RewriteNode } from './nodes/ipv6-rewrite';
import { PortTxNode } from './nodes/port-tx';
import type { Vector } from './vector';

export interface GraphOptions {
  io: PacketIo;
  /** The state (links, routes, neighbours...). Writable mapping: neighbour hit flags are set. */
  shm: ShmReader;
  /** Fast-path ports: ids 0 .. ports-1. */
  ports: number;
  /** This worker's counters (StatsFile.worker(w)); default: private counters. */
  stats?: WorkerSlice;
  /**
   * IPsec ESP in the fast path (off by default): esp-encrypt after ipv4-lookup (SPD 'out'), esp-decrypt for
   * protocol 50 to local addresses (fastpath/ipsec.ts, nodes/esp-*.ts). Needs the lfp_crypto addon.
   */
  ipsec?: boolean;
}

export class Graph {
  readonly ctx: FpContext;
  readonly fib: FibResolver;
  readonly adjacency: Adjacency;
  readonly ethInput: EthInputNode;
  readonly ipv4Input: Ipv4InputNode;
  readonly ipv4Lookup: Ipv4LookupNode;
  readonly ipv4Rewrite: Ipv4RewriteNode;
  readonly ipv4Fragment: Ipv4FragmentNode;
  readonly ipv6Input: Ipv6InputNode;
  readonly ipv6Lookup: Ipv6LookupNode;
  readonly ipv6Rewrite: Ipv6RewriteNode;
  readonly portTx: PortTxNode;
  readonly exception: ExceptionNode;
  readonly drop: DropNode;
  readonly stats: WorkerSlice;
  /** IPsec state and nodes (null unless GraphOptions.ipsec). */
  readonly ipsec: IpsecState | null = null;
  readonly espEncrypt: EspEncryptNode | null = null;
  readonly espDecrypt: EspDecryptNode | null = null;

  constructor(opts: GraphOptions) {
    if (!Number.isInteger(opts.ports) || opts.ports < 1 || opts.ports > 4096) throw new RangeError(`graph ports=${opts.ports}: must be in [1, 4096]`);
    this.stats = opts.stats ?? privateSlice(opts.ports);
    const ctx = this.ctx = new FpContext(opts.io, opts.shm, opts.ports, this.stats);
    this.fib = new FibResolver(opts.shm);
    this.adjacency = new Adjacency(ctx);
    const drop = this.drop = new DropNode(ctx);
    const exc = this.exception = new ExceptionNode(ctx);
    const tx = this.portTx = new PortTxNode(ctx);
    const eth = this.ethInput = new EthInputNode(ctx);
    const v4in = this.ipv4Input = new Ipv4InputNode(ctx);
    const v4lk = this.ipv4Lookup = new Ipv4LookupNode(ctx, this.fib);
    const v4rw = this.ipv4Rewrite = new Ipv4RewriteNode(ctx, this.adjacency);
    const v4fr = this.ipv4Fragment = new Ipv4FragmentNode(ctx);
    const v6in = this.ipv6Input = new Ipv6InputNode(ctx);
    const v6lk = this.ipv6Lookup = new Ipv6LookupNode(ctx, this.fib);
    const v6rw = this.ipv6Rewrite = new Ipv6RewriteNode(ctx, this.adjacency);
    eth.ipv4 = v4in; eth.ipv6 = v6in; eth.exception = exc; eth.drop = drop;
    v4in.lookup = v4lk; v4in.exception = exc; v4in.drop = drop;
    v4lk.rewrite = v4rw; v4lk.exception = exc; v4lk.drop = drop;
    v4rw.tx = tx; v4rw.fragment = v4fr; v4rw.exception = exc;
    v4fr.tx = tx; v4fr.drop = drop;
    v6in.lookup = v6lk; v6in.exception = exc; v6in.drop = drop;
    v6lk.rewrite = v6rw; v6lk.exception = exc; v6lk.drop = drop;
    v6rw.tx = tx; v6rw.exception = exc;
    if (opts.ipsec === true) {
      const ips = this.ipsec = new IpsecState(opts.shm);
      const enc = this.espEncrypt = new EspEncryptNode(ctx, ips);
      const dec = this.espDecrypt = new EspDecryptNode(ctx, ips);
      enc.lookup = v4lk; enc.rewrite = v4rw; enc.exception = exc; enc.drop = drop;
      dec.input4 = v4in; dec.exception = exc; dec.drop = drop;
      v4lk.espEncrypt = enc; v4lk.espDecrypt = dec;
    }
    ctx.refreshPorts(true);
  }

  /** Runs a received vector through the graph; every packet is consumed; v.n is 0 afterwards. */
  process(v: Vector): void {
    const ctx = this.ctx;
    ctx.refreshPorts();
    if (this.ipsec !== null) this.ipsec.sync();
    ctx.fields[W_VECTORS]++;
    ctx.fields[W_PACKETS] += v.n;
    this.ethInput.process(v);
    v.n = 0;
    if (this.ipv4Input.input.n > 0) this.ipv4Input.run();
    if (this.ipv6Input.input.n > 0) this.ipv6Input.run();
    if (this.ipv4Lookup.input.n > 0) this.ipv4Lookup.run();
    if (this.ipv6Lookup.input.n > 0) this.ipv6Lookup.run();
    if (this.ipsec !== null) this.runIpsec();
    if (this.ipv4Rewrite.input.n > 0) this.ipv4Rewrite.run();
    if (this.ipv6Rewrite.input.n > 0) this.ipv6Rewrite.run();
    if (this.ipv4Fragment.input.n > 0) this.ipv4Fragment.run();
    if (this.portTx.input.n > 0) this.portTx.run();
    if (this.exception.input.n > 0) this.exception.run();
    if (this.drop.input.n > 0) this.drop.run();
  }

  /**
   * IPsec part of process(): ESP nodes and the IPv4 nodes they feed until all are empty. Terminates:
   * every decryption shrinks a packet and an encapsulated packet (aux 1) is never encrypted again.
   */
  private runIpsec(): void {
    const enc = this.espEncrypt as EspEncryptNode, dec = this.espDecrypt as EspDecryptNode;
    const v4in = this.ipv4Input, v4lk = this.ipv4Lookup;
    for (;;) {
      if (dec.input.n > 0) dec.run();
      if (v4in.input.n > 0) v4in.run();
      if (v4lk.input.n > 0) v4lk.run();
      if (enc.input.n > 0) enc.run();
      if (v4lk.input.n > 0) v4lk.run();
      if (dec.input.n === 0 && v4in.input.n === 0 && v4lk.input.n === 0 && enc.input.n === 0) break;
    }
  }

  /** Frees the native IPsec contexts (SA keys wiped); the graph must not process packets afterwards. */
  close(): void {
    if (this.ipsec !== null) this.ipsec.close();
  }

  /** Stores the current time in this worker's heartbeat field (call from the worker loop, e.g. once per ms). */
  heartbeat(nowMs = Date.now()): void {
    this.stats.fields[W_HEARTBEAT_MS] = nowMs;
  }

  /** Counters of one port (allocating; tests and tools). */
  portStats(port: number): PortStats {
    return portStatsOf(this.stats.counters, port * PORT_STRIDE);
  }

  /** Node names in processing order (docs, fpctl). */
  static readonly NODES = ['eth-input', 'ipv4-input', 'ipv6-input', 'ipv4-lookup', 'ipv6-lookup', 'ipv4-rewrite', 'ipv6-rewrite',
    'ipv4-fragment', 'port-tx', 'exception', 'drop'] as const;
}
