// State shared by the nodes of one worker's graph: packet memory, I/O, the shm reader, this
// worker's counters (its slice of the stats file) and the port table (fast-path port -> VRF,
// ifindex, MAC, MTU), refreshed from the shm link entries when their generation changes.

import { LINK_E } from '../shared-mem/layout';
import { READ_BUSY, READ_OK, type ShmReader } from '../shared-mem/reader';
import { PORT_STRIDE, W_BAD_PORT, type WorkerSlice } from '../shared-mem/stats';
import type { PacketIo } from './io';

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;

export class FpContext {
  readonly mem: Uint8Array;
  /**
   * The same memory as 16-bit words (host order; m16[k] = mem[2k .. 2k+1]) for the header at an
   * even offset (checksums); an empty array when mem starts at an odd byte offset.
   */
  readonly mem16: Uint16Array;
  readonly io: PacketIo;
  readonly shm: ShmReader;
  readonly nports: number;
  /** This worker's counters: ports × PORT_STRIDE (stats.ts layout). */
  readonly counters: Float64Array;
  /** This worker's fields (WORKER_FIELDS). */
  readonly fields: Float64Array;
  /** markNeighbourHit needs a writable mapping. */
  readonly markHits: boolean;

  // Port table (index = port id). portVrf -1: no shm link entry carries this port.
  readonly portVrf: Int32Array;
  readonly portIfindex: Uint32Array;
  readonly portMtu: Uint32Array;
  readonly portMac: Uint8Array; // 6 bytes per port
  /** portMac as three 16-bit words per port, in host order (compared with mem16 words). */
  readonly portMac16: Uint16Array;
  private readonly portMac16U8: Uint8Array;
  readonly portName: string[];
  /** Link generation the port table was read at (-1: never). */
  private linkGen = -1;
  private readonly linkBuf = new Uint32Array(LINK_E.WORDS);
  private readonly linkBufU8 = new Uint8Array(this.linkBuf.buffer);

  constructor(io: PacketIo, shm: ShmReader, nports: number, stats: WorkerSlice) {
    if (stats.counters.length < nports * PORT_STRIDE) throw new RangeError(`stats slice has room for ${stats.counters.length / PORT_STRIDE} ports, graph has ${nports}`);
    if (nports > 65536) throw new RangeError('at most 65536 ports');
    this.io = io;
    this.mem = io.mem;
    this.mem16 = (io.mem.byteOffset & 1) === 0 ? new Uint16Array(io.mem.buffer, io.mem.byteOffset, io.mem.byteLength >>> 1) : new Uint16Array(0);
    this.shm = shm;
    this.nports = nports;
    this.counters = stats.counters;
    this.fields = stats.fields;
    this.markHits = shm.writable;
    this.portVrf = new Int32Array(nports).fill(-1);
    this.portIfindex = new Uint32Array(nports);
    this.portMtu = new Uint32Array(nports);
    this.portMac = new Uint8Array(nports * 6);
    this.portMac16 = new Uint16Array(nports * 3);
    this.portMac16U8 = new Uint8Array(this.portMac16.buffer);
    this.portName = new Array<string>(nports).fill('');
  }

  /** Re-reads the port table when the shm links changed (once per vector; allocation-free unless changed). */
  refreshPorts(force = false): void {
    const gen = this.shm.kindGeneration('link');
    if (!force && gen === this.linkGen) return;
    this.readPorts(gen);
  }

  private readPorts(gen: number): void {
    const r = this.shm, b = this.linkBuf, b8 = this.linkBufU8, n = r.config.maxLinks;
    const vrf = new Int32Array(this.nports).fill(-1);
    let busy = false;
    for (let i = 0; i < n; i++) {
      const res = r.readLink(i, b);
      if (res === READ_BUSY) { busy = true; continue; }
      if (res !== READ_OK) continue;
      const port = b[LINK_E.PORT] | 0;
      if (port < 0 || port >= this.nports) continue;
      vrf[port] = b[LINK_E.VRF];
      this.portIfindex[port] = b[LINK_E.IFINDEX];
      this.portMtu[port] = b[LINK_E.MTU];
      const macLen = (b[LINK_E.LENS] >>> 16) & 255;
      for (let k = 0; k < 6; k++) this.portMac[port * 6 + k] = macLen === 6 ? b8[LINK_E.MAC * 4 + k] : 0;
      const nameLen = b[LINK_E.LENS] & 255;
      let name = '';
      for (let k = 0; k < nameLen; k++) name += String.fromCharCode(b8[LINK_E.NAME * 4 + k]);
      this.portName[port] = name;
      if (macLen !== 6) vrf[port] = -1; // not an Ethernet port: everything goes to Linux
    }
    this.portVrf.set(vrf);
    this.portMac16U8.set(this.portMac);
    for (let p = 0; p < this.nports; p++) if (vrf[p] < 0) this.portName[p] = '';
    this.linkGen = busy ? -1 : gen; // busy: read again next vector
  }

  badPort(): void { this.fields[W_BAD_PORT]++; }
}

/** Big-endian u16 of packet memory. */
export function rd16(m: Uint8Array, o: number): number {
  return (m[o] << 8) | m[o + 1];
}
/**
 * Big-endian 32 bits of packet memory as a SIGNED int32. The hot path passes addresses and FIB
 * values as int32 on purpose: V8 keeps int32 values in Smis, while a uint32 >= 2^31 crossing a
 * (non-inlined) call or return is boxed in a new HeapNumber, an allocation per packet.
 */
export function rd32(m: Uint8Array, o: number): number {
  return (m[o] << 24) | (m[o + 1] << 16) | (m[o + 2] << 8) | m[o + 3];
}
export function wr16(m: Uint8Array, o: number, v: number): void {
  m[o] = v >>> 8;
  m[o + 1] = v;
}
