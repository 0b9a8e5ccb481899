// Generic netlink encoding/decoding: message framing, attributes (TLVs), a message builder,
// NLMSG_ERROR / NLMSG_DONE decoding and address/MAC text formatting. Pure bytes, no sockets.
//
// Robustness contract: the parse functions here never read outside the buffers they are given.
// Helpers that validate (Attrs getters, need(), parseAttrs()) throw DecodeError; the top-level
// decoders (rtnl.ts, xfrm.ts) catch everything and turn it into a {kind:'malformed'} result.

import { getSystemErrorMap } from 'util';
import type { Family } from '../lib/model';
import {
  AF_INET, AF_INET6, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK, NLM_F_ACK_TLVS, NLM_F_CAPPED,
  NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from './constants';

// ---------------------------------------------------------------------------------------------
// errors

/** Thrown by validating helpers; `offset` is relative to the start of the netlink message when known. */
export class DecodeError extends Error {
  constructor(message: string, public readonly offset?: number) {
    super(message);
    this.name = 'DecodeError';
  }
}

// ---------------------------------------------------------------------------------------------
// alignment / small helpers

export const align4 = (n: number): number => (n + 3) & ~3;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Throw a DecodeError when `buf` is shorter than `size`. */
export function need(buf: Uint8Array, size: number, what: string): void {
  if (buf.length < size) throw new DecodeError(`${what}: ${buf.length} bytes, need ${size}`);
}

export function afToFamily(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

export function familyToAf(f: Family | 0): number {
  return f === 4 ? AF_INET : f === 6 ? AF_INET6 : 0;
}

export const addrLen = (f: Family): number => (f === 4 ? 4 : 16);

/** Read an unsigned 64-bit little-endian (host order on x86_64) value as a bigint. */
export function readU64(buf: Buffer, off: number): bigint {
  return buf.readBigUInt64LE(off);
}

/** C string inside a fixed-size char array (stops at the first NUL). */
export function readCString(buf: Buffer, off = 0, max = buf.length - off): string {
  const end = Math.min(buf.length, off + max);
  let i = off;
  while (i < end && buf[i] !== 0) i++;
  return buf.toString('utf8', off, i);
}

// ---------------------------------------------------------------------------------------------
// message framing

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** View on the bytes after the 16-byte header (nlmsg_len - 16 bytes). Not a copy. */
  payload: Buffer;
  /** Offset of the nlmsghdr inside the received buffer (for error texts). */
  offset: number;
  /** nlmsg_len */
  len: number;
}

/** Alias of NlMsg. */
export type NlMessage = NlMsg;

export interface ParseResult {
  msgs: NlMsg[];
  /** Framing problems (truncated datagram, bad nlmsg_len); parsing stops at the first one. */
  errors: string[];
}

/**
 * Split a received datagram into netlink messages. `len` is the number of valid bytes (recv's
 * return value, defaults to buf.length). Never throws.
 */
export function parseMessages(buf: Uint8Array, len: number = buf.length): ParseResult {
  return parseMessagesAt(buf, 0, len);
}

/**
 * parseMessages of the datagram of `len` bytes at `start` in buf (offsets in the messages and the
 * error texts are relative to the datagram). Never throws.
 */
export function parseMessagesAt(buf: Uint8Array, start: number, len: number): ParseResult {
  const msgs: NlMsg[] = [];
  const errors: string[] = [];
  let b: Buffer;
  try {
    b = asBuffer(buf);
  } catch (e) {
    return { msgs, errors: [`not a byte buffer: ${(e as Error).message}`] };
  }
  start = Math.max(0, Math.min(Number.isFinite(start) ? Math.floor(start) : 0, b.length));
  const total = Math.max(0, Math.min(Number.isFinite(len) ? Math.floor(len) : 0, b.length - start));
  let off = 0;
  while (off < total) {
    const left = total - off;
    if (left < NLMSG_HDRLEN) {
      errors.push(`truncated netlink header at offset ${off}: ${left} bytes left, need ${NLMSG_HDRLEN}`);
      break;
    }
    const at = start + off;
    const mlen = b.readUInt32LE(at);
    const type = b.readUInt16LE(at + 4);
    const flags = b.readUInt16LE(at + 6);
    const seq = b.readUInt32LE(at + 8);
    const pid = b.readUInt32LE(at + 12);
    if (mlen < NLMSG_HDRLEN) {
      errors.push(`message type ${type} at offset ${off}: invalid nlmsg_len ${mlen} (< ${NLMSG_HDRLEN})`);
      break;
    }
    if (mlen > left) {
      errors.push(`message type ${type} at offset ${off}: nlmsg_len ${mlen} exceeds the ${left} bytes left (truncated datagram)`);
      break;
    }
    msgs.push({ type, flags, seq, pid, payload: b.subarray(at + NLMSG_HDRLEN, at + mlen), offset: off, len: mlen });
    off += align4(mlen);
  }
  return { msgs, errors };
}

/** Convenience: parse a hex string (fixtures, logs). */
export function parseHex(hex: string): ParseResult {
  return parseMessages(Buffer.from(hex, 'hex'));
}

// ---------------------------------------------------------------------------------------------
// attributes

export interface NlAttr {
  /** type with NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off */
  type: number;
  nested: boolean;
  netByteOrder: boolean;
  /** payload view (nla_len - 4 bytes) */
  data: Buffer;
  /** offset of the attribute header relative to the start of the buffer given to parseAttrs + base */
  offset: number;
}

/**
 * Parse a run of aligned TLVs. `base` is added to the offsets (use the offset of `buf` inside the
 * netlink message to get meaningful error texts). Trailing 1..3 bytes (padding) are tolerated.
 * Throws DecodeError on an attribute whose length is < 4 or runs past the end of `buf`.
 */
export function parseAttrs(buf: Buffer, base = 0): NlAttr[] {
  const out: NlAttr[] = [];
  let off = 0;
  while (buf.length - off >= 4) {
    const nlaLen = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (nlaLen < 4) {
      throw new DecodeError(`attribute type ${rawType & NLA_TYPE_MASK} at offset ${base + off}: invalid nla_len ${nlaLen}`, base + off);
    }
    if (nlaLen > buf.length - off) {
      throw new DecodeError(
        `attribute type ${rawType & NLA_TYPE_MASK} at offset ${base + off}: nla_len ${nlaLen} exceeds the ${buf.length - off} bytes left`,
        base + off);
    }
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      data: buf.subarray(off + 4, off + nlaLen),
      offset: base + off,
    });
    off += align4(nlaLen);
  }
  return out;
}

/** Non-throwing variant of parseAttrs. */
export function tryParseAttrs(buf: Buffer, base = 0): { attrs: NlAttr[]; error?: string } {
  try {
    return { attrs: parseAttrs(buf, base) };
  } catch (e) {
    return { attrs: [], error: (e as Error).message };
  }
}

/**
 * Indexed attribute set (the last occurrence of a type wins, like nla_parse) with validating
 * getters. `names` maps type numbers to names for error texts.
 */
export class Attrs {
  readonly list: NlAttr[];
  private readonly byType = new Map<number, NlAttr>();

  constructor(list: NlAttr[], private readonly names: Record<number, string> = {}, readonly base = 0) {
    this.list = list;
    for (const a of list) this.byType.set(a.type, a);
  }

  static parse(buf: Buffer, base = 0, names: Record<number, string> = {}): Attrs {
    return new Attrs(parseAttrs(buf, base), names, base);
  }

  has(type: number): boolean { return this.byType.has(type); }
  get(type: number): NlAttr | undefined { return this.byType.get(type); }
  all(type: number): NlAttr[] { return this.list.filter(a => a.type === type); }

  private name(type: number): string {
    return this.names[type] ? `${this.names[type]} (${type})` : `attribute type ${type}`;
  }

  private sized(type: number, size: number): NlAttr | undefined {
    const a = this.byType.get(type);
    if (a && a.data.length < size) {
      throw new DecodeError(`${this.name(type)} at offset ${a.offset}: payload ${a.data.length} bytes, expected ${size}`, a.offset);
    }
    return a;
  }

  /** Raw payload; when `min` is given, shorter payloads are an error. */
  bytes(type: number, min = 0): Buffer | undefined { return this.sized(type, min)?.data; }
  u8(type: number): number | undefined { return this.sized(type, 1)?.data.readUInt8(0); }
  u16(type: number): number | undefined { return this.sized(type, 2)?.data.readUInt16LE(0); }
  u32(type: number): number | undefined { return this.sized(type, 4)?.data.readUInt32LE(0); }
  s32(type: number): number | undefined { return this.sized(type, 4)?.data.readInt32LE(0); }
  u64(type: number): bigint | undefined { return this.sized(type, 8)?.data.readBigUInt64LE(0); }
  /** NUL-terminated (or unterminated) string */
  str(type: number): string | undefined {
    const a = this.byType.get(type);
    return a ? readCString(a.data) : undefined;
  }
  /** Address of the given family (payload must be 4 or 16 bytes accordingly). */
  addr(type: number, family: Family): string | undefined {
    const a = this.byType.get(type);
    if (!a) return undefined;
    const n = addrLen(family);
    if (a.data.length < n) {
      throw new DecodeError(`${this.name(type)} at offset ${a.offset}: ${a.data.length}-byte address for IPv${family}, expected ${n}`, a.offset);
    }
    return formatAddr(family, a.data, 0);
  }
  /** Nested attribute set (NLA_F_NESTED is not required: old kernels do not set it). */
  nested(type: number, names: Record<number, string> = {}): Attrs | undefined {
    const a = this.byType.get(type);
    return a ? new Attrs(parseAttrs(a.data, a.offset + 4), names, a.offset + 4) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// builder

/** Monotonic sequence numbers for requests (wraps at 2^32, skips 0). */
export class Sequencer {
  private n: number;
  constructor(start = 1) { this.n = start >>> 0 || 1; }
  next(): number {
    const v = this.n;
    this.n = (this.n + 1) >>> 0 || 1;
    return v;
  }
}

/**
 * Builds one netlink message: header + fixed struct + attributes (nested supported).
 *   new MessageBuilder(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq).fixed(rtmsg).build()
 */
export class MessageBuilder {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(public type: number, public flags: number, public seq: number, public pid = 0) {}

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  /** Append the fixed family header (padded to 4 bytes). */
  fixed(b: Uint8Array): this {
    const buf = Buffer.alloc(align4(b.length));
    buf.set(b, 0);
    return this.push(buf);
  }

  attr(type: number, data: Uint8Array = Buffer.alloc(0)): this {
    const len = 4 + data.length;
    const buf = Buffer.alloc(align4(len));
    buf.writeUInt16LE(len, 0);
    buf.writeUInt16LE(type & 0xffff, 2);
    buf.set(data, 4);
    return this.push(buf);
  }

  u8(type: number, v: number): this { const b = Buffer.alloc(1); b.writeUInt8(v & 0xff); return this.attr(type, b); }
  u16(type: number, v: number): this { const b = Buffer.alloc(2); b.writeUInt16LE(v & 0xffff); return this.attr(type, b); }
  u32(type: number, v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return this.attr(type, b); }
  s32(type: number, v: number): this { const b = Buffer.alloc(4); b.writeInt32LE(v | 0); return this.attr(type, b); }
  u64(type: number, v: bigint): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt.asUintN(64, v)); return this.attr(type, b); }
  /** NUL-terminated string */
  str(type: number, s: string): this { return this.attr(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)])); }
  addr(type: number, family: Family, s: string): this { return this.attr(type, parseAddr(family, s)); }

  /** Nested attribute: `fn` adds the inner attributes to a sub-builder. */
  nested(type: number, fn: (b: MessageBuilder) => void): this {
    const inner = new MessageBuilder(0, 0, 0);
    fn(inner);
    return this.attr(type | NLA_F_NESTED, inner.body());
  }

  /** Everything after the header. */
  body(): Buffer { return Buffer.concat(this.parts, this.size); }

  build(): Buffer {
    const body = this.body();
    const hdr = Buffer.alloc(NLMSG_HDRLEN);
    hdr.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
    hdr.writeUInt16LE(this.type & 0xffff, 4);
    hdr.writeUInt16LE(this.flags & 0xffff, 6);
    hdr.writeUInt32LE(this.seq >>> 0, 8);
    hdr.writeUInt32LE(this.pid >>> 0, 12);
    return Buffer.concat([hdr, body]);
  }
}

/** Encode one attribute (header + payload + padding) outside a builder. */
export function encodeAttr(type: number, data: Uint8Array): Buffer {
  return new MessageBuilder(0, 0, 0).attr(type, data).body();
}

// ---------------------------------------------------------------------------------------------
// NLMSG_ERROR / NLMSG_DONE / control messages

const errMap: Map<number, [string, string]> = (() => {
  try { return getSystemErrorMap(); } catch { return new Map<number, [string, string]>(); }
})();

/** "EEXIST" for 17 (positive errno), "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return errMap.get(-Math.abs(errno))?.[0] ?? `E${errno}`;
}

/** "EEXIST (file already exists)" */
export function errnoText(errno: number): string {
  const e = errMap.get(-Math.abs(errno));
  return e ? `${e[0]} (${e[1]})` : `errno ${errno}`;
}

export type ControlResult =
  | { kind: 'ack'; seq: number; requestType: number }
  | { kind: 'error'; errno: number; name: string; text: string; extAck?: string; badAttrOffset?: number;
    seq: number; requestType: number }
  | { kind: 'done'; errno: number; interrupted: boolean; extAck?: string }
  | { kind: 'ignored'; why: string }
  | { kind: 'malformed'; text: string };

/**
 * Decode NLMSG_ERROR (ACK when error == 0), NLMSG_DONE, NLMSG_NOOP and NLMSG_OVERRUN.
 * Returns undefined for any other message type. Never throws.
 *
 * error: errno is positive (kernel sends -errno); text = extended-ack message when present
 * (NLMSGERR_ATTR_MSG), else the errno description; requestType = nlmsg_type of the request.
 */
export function decodeControl(msg: NlMsg): ControlResult | undefined {
  const p = msg.payload;
  switch (msg.type) {
    case NLMSG_NOOP: return { kind: 'ignored', why: 'NLMSG_NOOP' };
    case NLMSG_OVERRUN: return { kind: 'ignored', why: 'NLMSG_OVERRUN' };
    case NLMSG_DONE: {
      // Payload is an int (dump status) on all current kernels; tolerate an empty one.
      const errno = p.length >= 4 ? -p.readInt32LE(0) | 0 : 0;
      let extAck: string | undefined;
      if (msg.flags & NLM_F_ACK_TLVS && p.length > 4) {
        const r = tryParseAttrs(p.subarray(4), NLMSG_HDRLEN + 4);
        const m = r.attrs.find(a => a.type === NLMSGERR_ATTR_MSG);
        if (m) extAck = readCString(m.data);
      }
      return { kind: 'done', errno, interrupted: (msg.flags & NLM_F_DUMP_INTR) !== 0, ...(extAck ? { extAck } : {}) };
    }
    case NLMSG_ERROR: {
      if (p.length < 4) {
        return { kind: 'malformed', text: `NLMSG_ERROR at offset ${msg.offset}: payload ${p.length} bytes, need at least 4` };
      }
      const errno = -p.readInt32LE(0) | 0;
      let requestType = 0;
      let seq = msg.seq;
      if (p.length >= 20) {
        requestType = p.readUInt16LE(8);
        seq = p.readUInt32LE(12);
      }
      if (errno === 0) return { kind: 'ack', seq, requestType };
      let extAck: string | undefined;
      let badAttrOffset: number | undefined;
      if (msg.flags & NLM_F_ACK_TLVS && p.length >= 20) {
        // The original request follows unless NLM_F_CAPPED: skip its nlmsg_len.
        let tlvStart = 20;
        if (!(msg.flags & NLM_F_CAPPED)) {
          const origLen = p.readUInt32LE(4);
          tlvStart = 4 + align4(Math.max(origLen, NLMSG_HDRLEN));
        }
        if (tlvStart < p.length) {
          const r = tryParseAttrs(p.subarray(tlvStart), NLMSG_HDRLEN + tlvStart);
          for (const a of r.attrs) {
            if (a.type === NLMSGERR_ATTR_MSG) extAck = readCString(a.data);
            else if (a.type === NLMSGERR_ATTR_OFFS && a.data.length >= 4) badAttrOffset = a.data.readUInt32LE(0);
          }
        }
      }
      const name = errnoName(errno);
      const text = extAck ? `${name}: ${extAck}` : errnoText(errno);
      return {
        kind: 'error', errno, name, text, seq, requestType,
        ...(extAck !== undefined ? { extAck } : {}),
        ...(badAttrOffset !== undefined ? { badAttrOffset } : {}),
      };
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// addresses

export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/**
 * Canonical IPv6 text exactly as glibc/libuv inet_ntop prints it (what `ip` and Node print):
 * lower-case, no leading zeros, the first longest run (>= 2) of zero groups as "::", and
 * "::ffff:a.b.c.d" / "::a.b.c.d" for IPv4-mapped / -compatible addresses.
 */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  let bestBase = -1, bestLen = 0, curBase = -1, curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      if (curBase === -1) { curBase = i; curLen = 1; } else curLen++;
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) { bestBase = curBase; bestLen = curLen; }
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) { bestBase = curBase; bestLen = curLen; }
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i !== 0) s += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      s += formatIPv4(b, off + 12);
      break;
    }
    s += w[i].toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) s += ':';
  return s;
}

export function formatAddr(family: Family, b: Uint8Array, off = 0): string {
  return family === 4 ? formatIPv4(b, off) : formatIPv6(b, off);
}

/** Parse IPv4/IPv6 text into 4/16 bytes. "" parses as the all-zero address. Throws on bad input. */
export function parseAddr(family: Family, s: string): Buffer {
  if (s === '') return Buffer.alloc(addrLen(family));
  if (family === 4) {
    const v4 = parseIPv4(s);
    if (!v4) throw new Error(`invalid IPv4 address ${JSON.stringify(s)}`);
    return v4;
  }
  const v6 = parseIPv6(s);
  if (!v6) throw new Error(`invalid IPv6 address ${JSON.stringify(s)}`);
  return v6;
}

function parseIPv4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const v = Number(parts[i]);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

function parseIPv6(s: string): Buffer | undefined {
  let str = s;
  const pct = str.indexOf('%');
  if (pct >= 0) str = str.slice(0, pct);
  let tail4: Buffer | undefined;
  const lastColon = str.lastIndexOf(':');
  if (str.includes('.', lastColon)) {
    tail4 = parseIPv4(str.slice(lastColon + 1));
    if (!tail4) return undefined;
    str = str.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = str.split('::');
  if (dbl.length > 2) return undefined;
  const parseGroups = (p: string): number[] | undefined => {
    if (p === '') return [];
    const gs = p.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(dbl[0]);
  const tail = dbl.length === 2 ? parseGroups(dbl[1]) : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (dbl.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  if (tail4) tail4.copy(out, 12);
  return out;
}

/** Canonicalise address text ("2001:DB8:0::1" → "2001:db8::1"). Throws on bad input. */
export function canonicalAddr(family: Family, s: string): string {
  return formatAddr(family, parseAddr(family, s));
}

/** Copy of `addr` with the host bits beyond `plen` cleared. */
export function maskAddr(addr: Uint8Array, plen: number): Buffer {
  const out = Buffer.from(addr);
  const bits = out.length * 8;
  const p = Math.max(0, Math.min(plen, bits));
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, p - i * 8));
    out[i] &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/** Lower-case "aa:bb:cc:dd:ee:ff" for any length ("" for an empty address). */
export function formatMac(b: Uint8Array, off = 0, len = b.length - off): string {
  const parts: string[] = [];
  for (let i = 0; i < len; i++) parts.push(b[off + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}

export function parseMac(s: string): Buffer {
  if (s === '') return Buffer.alloc(0);
  const parts = s.split(':');
  if (!parts.every(p => /^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`invalid MAC ${JSON.stringify(s)}`);
  return Buffer.from(parts.map(p => parseInt(p, 16)));
}

// ---------------------------------------------------------------------------------------------
// misc

/** Hex dump of a message (for logs/fixtures). */
export function toHex(b: Uint8Array): string {
  return asBuffer(b).toString('hex');
}

/** A copy of a message that outlives the receive buffer it was parsed from. */
export function cloneMsg(m: NlMsg): NlMsg {
  return { ...m, payload: Buffer.from(m.payload) };
}
