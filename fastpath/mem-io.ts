// In-memory PacketIo: a pool of fixed-size buffers in one ArrayBuffer with a free list. Used by the
// unit tests (frames are captured per port) and by the in-process benchmark (capture off: sent
// packets are just counted and freed).

import type { PacketIo } from './io';
import { VEC, type Vector } from './vector';

export interface MemIoOptions {
  buffers?: number; // default 8192
  bufSize?: number; // total bytes per buffer, default 2048
  headroom?: number; // default 128
  ports?: number; // default 8
  capture?: boolean; // keep a copy of every sent frame (tests), default true
  shared?: boolean; // SharedArrayBuffer memory, default false
}

export class MemIo implements PacketIo {
  readonly mem: Uint8Array;
  readonly bufSize: number;
  readonly stride: number;
  readonly headroom: number;
  readonly buffers: number;
  readonly ports: number;
  capture: boolean;
  /** Frames sent per port (capture mode). */
  readonly sent: Uint8Array[][] = [];
  /** Frames handed to the DPVI per port (capture mode). */
  readonly dpvi: Uint8Array[][] = [];
  /** Packets taken by tx / toDpvi per port. */
  readonly txCount: Float64Array;
  readonly dpviCount: Float64Array;
  /** Max packets tx / toDpvi take per call and port (-1 = unlimited): to test full queues. */
  readonly txLimit: Int32Array;
  readonly dpviLimit: Int32Array;
  /** Errors of the caller: freeing a free buffer or a bad index. */
  doubleFrees = 0;
  badIndex = 0;

  private readonly freeList: Uint32Array;
  private nfree: number;
  private readonly inUse: Uint8Array;

  constructor(opts: MemIoOptions = {}) {
    this.buffers = opts.buffers ?? 8192;
    this.stride = opts.bufSize ?? 2048;
    this.headroom = opts.headroom ?? 128;
    this.bufSize = this.stride - this.headroom;
    this.ports = opts.ports ?? 8;
    this.capture = opts.capture ?? true;
    const bytes = this.buffers * this.stride;
    this.mem = new Uint8Array(opts.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    this.freeList = new Uint32Array(this.buffers);
    for (let i = 0; i < this.buffers; i++) this.freeList[i] = this.buffers - 1 - i;
    this.nfree = this.buffers;
    this.inUse = new Uint8Array(this.buffers);
    for (let p = 0; p < this.ports; p++) { this.sent.push([]); this.dpvi.push([]); }
    this.txCount = new Float64Array(this.ports);
    this.dpviCount = new Float64Array(this.ports);
    this.txLimit = new Int32Array(this.ports).fill(-1);
    this.dpviLimit = new Int32Array(this.ports).fill(-1);
  }

  /** Free buffers. */
  available(): number { return this.nfree; }

  /** Buffers not in the free list. */
  inFlight(): number { return this.buffers - this.nfree; }

  alloc(mbuf: Uint32Array, off: Uint32Array, count: number): number {
    const n = Math.min(count, this.nfree);
    for (let i = 0; i < n; i++) {
      const b = this.freeList[--this.nfree];
      this.inUse[b] = 1;
      mbuf[i] = b;
      off[i] = b * this.stride + this.headroom;
    }
    return n;
  }

  free(mbuf: Uint32Array, count: number): void {
    for (let i = 0; i < count; i++) this.freeOne(mbuf[i]);
  }

  private freeOne(b: number): void {
    if (b >= this.buffers) { this.badIndex++; return; }
    if (this.inUse[b] === 0) { this.doubleFrees++; return; }
    this.inUse[b] = 0;
    this.freeList[this.nfree++] = b;
  }

  tx(port: number, v: Vector, count: number): number {
    return this.take(port, v, count, this.txLimit, this.txCount, this.sent);
  }

  toDpvi(port: number, v: Vector, count: number): number {
    return this.take(port, v, count, this.dpviLimit, this.dpviCount, this.dpvi);
  }

  private take(port: number, v: Vector, count: number, limit: Int32Array, counter: Float64Array, store: Uint8Array[][]): number {
    if (port >= this.ports) return 0;
    const lim = limit[port];
    const n = lim < 0 ? count : Math.min(count, lim);
    for (let i = 0; i < n; i++) {
      const b = v.mbuf[i], off = v.off[i], len = v.len[i];
      if (b >= this.buffers || off < b * this.stride || off + len > (b + 1) * this.stride) {
        throw new RangeError(`packet ${b} off ${off} len ${len} outside its buffer`);
      }
      if (this.capture) store[port].push(this.mem.slice(off, off + len));
      this.freeOne(b);
    }
    counter[port] += n;
    return n;
  }

  /** Test / benchmark helper: copies `frame` into a new buffer appended to `v` (false: pool empty or v full). */
  inject(v: Vector, port: number, frame: Uint8Array): boolean {
    if (v.n >= VEC || this.nfree === 0) return false;
    if (frame.length > this.bufSize) throw new RangeError(`frame of ${frame.length} bytes > buffer room ${this.bufSize}`);
    const i = v.n++;
    this.alloc(v.mbuf.subarray(i, i + 1), v.off.subarray(i, i + 1), 1);
    this.mem.set(frame, v.off[i]);
    v.len[i] = frame.length;
    v.port[i] = port;
    v.aux[i] = 0;
    return true;
  }

  /** Forgets the captured frames. */
  clearCaptured(): void {
    for (let p = 0; p < this.ports; p++) { this.sent[p].length = 0; this.dpvi[p].length = 0; }
  }
}
