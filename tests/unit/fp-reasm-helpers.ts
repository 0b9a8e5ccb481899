// Helpers of the reassembly / IPv6 fragmentation tests (fp-reassembly, fp-fragment6, fp-reasm-alloc-child):
// fragments crafted byte by byte (independently of the nodes), a capturing sink for the reassembly
// nodes' `next`, and a harness that wires a node into a world's drop / exception / port-tx nodes.

import { DROP_REASONS } from '../../shared-mem/stats';
import type { MemIo } from '../../fastpath/mem-io';
import { Ipv4ReassemblyNode } from '../../fastpath/nodes/ipv4-reassembly';
import { Ipv6ReassemblyNode } from '../../fastpath/nodes/ipv6-reassembly';
import type { PacketSink, ReassemblyOptions } from '../../fastpath/reassembly';
import { VEC, Vector } from '../../fastpath/vector';
import { PEER_MAC, PORT_MACS, eth, ipv4, ipv6, type Ip4Opts, type Ip6Opts, type World } from './fp-helpers';

/** Counter name a reason is counted under today: the reassembly names fall back to 'frag-error' until stats.ts has them. */
export function reasonName(name: string): string {
  return (DROP_REASONS as readonly string[]).includes(name) ? name : 'frag-error';
}

export interface Out { frame: Uint8Array; port: number; aux: number; mbuf: number; off: number }

/** A PacketSink that captures (copies) and frees what it gets (capture off: just frees). */
export class Sink implements PacketSink {
  readonly input = new Vector();
  readonly out: Out[] = [];
  count = 0;
  constructor(private readonly io: MemIo, private readonly capture = true) {}
  run(): void {
    const q = this.input;
    this.count += q.n;
    if (this.capture) {
      for (let i = 0; i < q.n; i++) {
        this.out.push({ frame: this.io.mem.slice(q.off[i], q.off[i] + q.len[i]), port: q.port[i], aux: q.aux[i], mbuf: q.mbuf[i], off: q.off[i] });
      }
    }
    this.io.free(q.mbuf, q.n);
    q.n = 0;
  }
}

export interface Frame { port: number; frame: Uint8Array; aux?: number }

/** A reassembly node of either family wired to world W (drop, exception) and a capturing sink. */
export class Harness<N extends Ipv4ReassemblyNode | Ipv6ReassemblyNode> {
  readonly sink: Sink;
  now = 1000;
  constructor(readonly W: World, readonly node: N, capture = true) {
    this.sink = new Sink(W.io, capture);
    node.next = this.sink;
    node.drop = W.g.drop;
    if (node instanceof Ipv6ReassemblyNode) node.exception = W.g.exception;
  }
  /** Runs frames through the node (vectors of up to VEC), then the sink, exception and drop nodes. */
  feed(frames: Frame[]): Out[] {
    const q = this.node.input;
    const before = this.sink.out.length;
    for (const f of frames) {
      if (q.n === VEC) this.node.run();
      if (!this.W.io.inject(q, f.port, f.frame)) throw new Error('pool exhausted');
      q.aux[q.n - 1] = f.aux ?? 0;
    }
    if (q.n > 0) this.node.run();
    this.flush();
    return this.sink.out.slice(before);
  }
  flush(): void {
    this.sink.run();
    if (this.W.g.exception.input.n > 0) this.W.g.exception.run();
    this.W.g.drop.run();
  }
  /** Advances the injected clock and lets the node expire. */
  advance(ms: number): void {
    this.now += ms;
    this.node.tick();
    this.flush();
  }
  /** Asserts that fn() adds n drops of reason `name` (or of its fallback) on `port`. */
  expectDrops(name: string, n: number, fn: () => void, port = 0): void {
    const before = this.drops(port)[reasonName(name)];
    fn();
    const got = this.drops(port)[reasonName(name)] - before;
    if (got !== n) throw new Error(`${n} drops '${name}' expected (counted as '${reasonName(name)}'), got ${got}`);
  }
  drops(port = 0): Record<string, number> {
    return this.W.g.portStats(port).drops as Record<string, number>;
  }
}

export function v4Harness(W: World, opts: ReassemblyOptions = {}, capture = true): Harness<Ipv4ReassemblyNode> {
  let h: Harness<Ipv4ReassemblyNode> | null = null;
  const node = new Ipv4ReassemblyNode(W.g.ctx, { now: () => (h as Harness<Ipv4ReassemblyNode>).now, ...opts });
  h = new Harness(W, node, capture);
  return h;
}

export function v6Harness(W: World, opts: ReassemblyOptions = {}, capture = true): Harness<Ipv6ReassemblyNode> {
  let h: Harness<Ipv6ReassemblyNode> | null = null;
  const node = new Ipv6ReassemblyNode(W.g.ctx, { now: () => (h as Harness<Ipv6ReassemblyNode>).now, ...opts });
  h = new Harness(W, node, capture);
  return h;
}

// ------------------------------------------------------------------------------------------------
// IPv4

export interface Dgram4 extends Omit<Ip4Opts, 'payload' | 'mf' | 'fragOff'> { payload: number[]; port?: number }

/** The whole datagram as a frame (what reassembly must produce). */
export function whole4(d: Dgram4): Uint8Array {
  const { port, ...ip } = d;
  return eth(PORT_MACS[port ?? 0], PEER_MAC, 0x0800, ipv4(ip));
}

/** Fragment [start, start + len) of d's payload (start multiple of 8); mf default: not the end. */
export function frag4(d: Dgram4, start: number, len: number, mf = start + len < d.payload.length, over: Partial<Ip4Opts> = {}): Frame {
  const { port, ...ip } = d;
  return {
    port: port ?? 0,
    frame: eth(PORT_MACS[port ?? 0], PEER_MAC, 0x0800, ipv4({ ...ip, ...(start > 0 ? { options: [] } : {}), ...over, payload: d.payload.slice(start, start + len), mf, fragOff: start / 8 })),
  };
}

/** Fragments of d with `size` payload bytes each (multiple of 8), in order. */
export function frags4(d: Dgram4, size: number): Frame[] {
  const out: Frame[] = [];
  for (let s = 0; s < d.payload.length; s += size) out.push(frag4(d, s, Math.min(size, d.payload.length - s)));
  return out;
}

// ------------------------------------------------------------------------------------------------
// IPv6

export interface Dgram6 extends Omit<Ip6Opts, 'payload' | 'nh'> { nh?: number; payload: number[]; port?: number; id: number }

export function whole6(d: Dgram6): Uint8Array {
  const { port, id: _id, ...ip } = d;
  return eth(PORT_MACS[port ?? 0], PEER_MAC, 0x86dd, ipv6(ip));
}

export function fragHeader(nh: number, start: number, m: boolean, id: number): number[] {
  return [nh, 0, start >>> 8, (start & 0xf8) | (m ? 1 : 0), id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255];
}

export function frag6(d: Dgram6, start: number, len: number, m = start + len < d.payload.length): Frame {
  const { port, id, nh, payload, ...ip } = d;
  return {
    port: port ?? 0,
    frame: eth(PORT_MACS[port ?? 0], PEER_MAC, 0x86dd, ipv6({ ...ip, nh: 44, payload: [...fragHeader(nh ?? 17, start, m, id), ...payload.slice(start, start + len)] })),
  };
}

export function frags6(d: Dgram6, size: number): Frame[] {
  const out: Frame[] = [];
  for (let s = 0; s < d.payload.length; s += size) out.push(frag6(d, s, Math.min(size, d.payload.length - s)));
  return out;
}

/** Deterministic bytes. */
export function bytes(n: number, seed = 1): number[] {
  return Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + (i >>> 8)) & 255);
}

export function shuffle<T>(a: T[], rnd: (n: number) => number): T[] {
  const b = [...a];
  for (let i = b.length - 1; i > 0; i--) {
    const j = rnd(i + 1);
    [b[i], b[j]] = [b[j], b[i]];
  }
  return b;
}
