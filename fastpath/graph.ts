// The forwarding graph of one worker: wires the nodes and runs received vectors through them.
//
//   eth-input ─┬─> ipv4-input ─> ipv4-lookup ─> ipv4-rewrite ─┬─> port-tx
//              │                                              └─> ipv4-fragment ─> port-tx
//              └─> ipv6-input ─> ipv6-lookup ─> ipv6-rewrite ───> port-tx
//   every node ──> exception (input port's DPVI, original frame) / drop (free), counted by reason
//   GraphOptions.ipsec (the fast-path process: config fastpath.ipsec, default true):
//     ipv4/6-lookup (routed, VRF has policies) ─> esp-encrypt ─> ipv4/6-rewrite (outer family; clear: the packet's own)
//     ipv4/6-lookup (ESP / ESP-in-UDP to a local address) ─> esp-decrypt ─> ipv4/6-input (inner packet, marked decrypted)
//     esp-encrypt ─> ipv4-fragment (its own instance, before-encrypt mode) ─> esp-encrypt (each fragment)
//     esp-encrypt ─> ipv6-fragment (its own instance, IPv6 ESP longer than the MTU) ─> ipv6-rewrite
//     ipv4/6-input (ESP fragment) ─> ipv4/6-lookup (to this box) ─> ipv4/6-reassembly ─> esp-decrypt
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
import type { IpsecFragmentMode } from './nodes/esp-encrypt';
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
import { Ipv4ReassemblyNode } from './nodes/ipv4-reassembly';
import { Ipv6ReassemblyNode } from './nodes/ipv6-reassembly';
import { Ipv6FragmentNode } from './nodes/ipv6-fragment';
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
   * IPsec ESP in the fast path (off by default here; the fast-path process turns it on, config fastpath.ipsec):
   * esp-encrypt after the lookups (SPD), esp-decrypt for ESP to local addresses (fastpath/ipsec.ts,
   * nodes/esp-*.ts). Without the lfp_crypto addon every SA is 'ipsec-unsupported' (Linux does the work).
   */
  ipsec?: boolean;
  /** IPv4 inner packets without DF that do not fit once encrypted: 'after-encrypt' (default: the ESP packet is fragmented) or 'before-encrypt'. */
  ipsecFragment?: IpsecFragmentMode;
  /** Decrypt transport-mode ESP (for this host) in the fast path too (default false: Linux gets it, 'ipsec-local'). */
  ipsecTransportDecrypt?: boolean;
  /**
   * Linux trusts the DPVIs (fp.ts sets disable_policy on them): ESP for this host is decrypted here (transport
   * mode; tunnel-mode inner packets for the box are delivered decrypted instead of re-encrypted), and clear
   * packets for this host that an 'in' policy requires to be ESP are dropped here ('ipsec-clear-in'), IKE
   * (UDP to port 500 / 4500) excepted. Implies ipsecTransportDecrypt.
   */
  ipsecLocalDecrypt?: boolean;
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
  /** Reassembly of ESP fragments addressed to this box (IPsec only). */
  readonly ipv4Reassembly: Ipv4ReassemblyNode | null = null;
  readonly ipv6Reassembly: Ipv6ReassemblyNode | null = null;

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
      const fm = opts.ipsecFragment ?? 'after-encrypt';
      if (fm !== 'after-encrypt' && fm !== 'before-encrypt') throw new RangeError(`ipsecFragment "${String(fm)}": after-encrypt or before-encrypt`);
      const ips = this.ipsec = new IpsecState(opts.shm, this.stats.sa);
      const enc = this.espEncrypt = new EspEncryptNode(ctx, ips, this.fib, this.adjacency);
      const dec = this.espDecrypt = new EspDecryptNode(ctx, ips, this.fib);
      enc.rewrite4 = v4rw; enc.rewrite6 = v6rw; enc.tx = tx; enc.exception = exc; enc.drop = drop;
      enc.fragMode = fm;
      const fr = new Ipv4FragmentNode(ctx);
      fr.tx = enc.fragmentSink(); fr.drop = drop;
      enc.fragmenter = fr;
      const fr6 = new Ipv6FragmentNode(ctx);
      fr6.tx = enc.fragment6Sink(); fr6.drop = drop;
      enc.fragmenter6 = fr6;
      dec.input4 = v4in; dec.input6 = v6in; dec.exception = exc; dec.drop = drop;
      dec.rewrite4 = v4rw; dec.encrypt = enc;
      dec.transportDecrypt = opts.ipsecTransportDecrypt === true || opts.ipsecLocalDecrypt === true;
      dec.localDeliver = opts.ipsecLocalDecrypt === true;
      v4lk.localInCheck = v6lk.localInCheck = opts.ipsecLocalDecrypt === true;
      const ra4 = this.ipv4Reassembly = new Ipv4ReassemblyNode(ctx);
      const ra6 = this.ipv6Reassembly = new Ipv6ReassemblyNode(ctx);
      ra4.next = dec; ra4.drop = drop;
      ra6.next = dec; ra6.exception = exc; ra6.drop = drop;
      v4lk.reassembly = ra4; v6lk.reassembly = ra6;
      v4lk.espEncrypt = enc; v4lk.espDecrypt = dec; v4lk.encapPort = ips.encapPort;
      v6lk.espEncrypt = enc; v6lk.espDecrypt = dec; v6lk.encapPort = ips.encapPort;
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
   * IPsec part of process(): the ESP nodes and the input / lookup nodes they feed until all are empty.
   * Terminates: esp-encrypt only feeds the rewrite nodes, and every decryption shrinks a packet.
   */
  private runIpsec(): void {
    const enc = this.espEncrypt as EspEncryptNode, dec = this.espDecrypt as EspDecryptNode;
    const v4in = this.ipv4Input, v4lk = this.ipv4Lookup, v6in = this.ipv6Input, v6lk = this.ipv6Lookup;
    const ra4 = this.ipv4Reassembly as Ipv4ReassemblyNode, ra6 = this.ipv6Reassembly as Ipv6ReassemblyNode;
    for (;;) {
      if (ra4.input.n > 0) ra4.run();
      if (ra6.input.n > 0) ra6.run();
      if (dec.input.n > 0) dec.run();
      if (v4in.input.n > 0) v4in.run();
      if (v6in.input.n > 0) v6in.run();
      if (v4lk.input.n > 0) v4lk.run();
      if (v6lk.input.n > 0) v6lk.run();
      if (enc.input.n > 0) enc.run();
      if (dec.input.n === 0 && v4in.input.n === 0 && v6in.input.n === 0 && v4lk.input.n === 0 && v6lk.input.n === 0 &&
        enc.input.n === 0 && ra4.input.n === 0 && ra6.input.n === 0) break;
    }
  }

  /** Frees the native IPsec contexts (SA keys wiped); the graph must not process packets afterwards. */
  close(): void {
    if (this.ipsec !== null) this.ipsec.close();
  }

  /** Stores the current time in this worker's heartbeat field (call from the worker loop, e.g. once per ms). */
  heartbeat(nowMs = Date.now()): void {
    this.stats.fields[W_HEARTBEAT_MS] = nowMs;
    // incomplete datagrams time out even when no packet comes (they pin a buffer each)
    if (this.ipv4Reassembly !== null) this.ipv4Reassembly.tick();
    if (this.ipv6Reassembly !== null) this.ipv6Reassembly.tick();
    if (this.drop.input.n > 0) this.drop.run();
  }

  /** Counters of one port (allocating; tests and tools). */
  portStats(port: number): PortStats {
    return portStatsOf(this.stats.counters, port * PORT_STRIDE);
  }

  /** Node names in processing order (docs, fpctl). */
  static readonly NODES = ['eth-input', 'ipv4-input', 'ipv6-input', 'ipv4-lookup', 'ipv6-lookup', 'ipv4-reassembly', 'ipv6-reassembly',
    'esp-decrypt', 'esp-encrypt',
    'ipv4-rewrite', 'ipv6-rewrite', 'ipv4-fragment', 'port-tx', 'exception', 'drop'] as const;
}
