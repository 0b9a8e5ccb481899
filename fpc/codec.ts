// Encoding and decoding of FPC envelopes and bodies (the schema is fpc/fpc.proto).
import * as path from 'path';
import * as fs from 'fs';
import * as protobuf from 'protobufjs';
import * as net from 'net';
import type { AnyObject, NextHop, ObjectKind, Route, Rule } from '../lib/model';

// 2: several envelopes per ZeroMQ frame (Batch)
export const SCHEMA_VERSION = 2;

export enum MsgType {
  MSG_UNSPEC = 0, HELLO = 1, SYNC_BEGIN = 2, SYNC_END = 3, RESYNC_REQUEST = 4,
  VRF_ADD = 10, VRF_DEL = 11, LINK_ADD = 12, LINK_DEL = 13, ADDR_ADD = 14, ADDR_DEL = 15,
  ROUTE_ADD = 16, ROUTE_DEL = 17, RULE_ADD = 18, RULE_DEL = 19, NEIGH_ADD = 20, NEIGH_DEL = 21,
  POLICY_ADD = 22, POLICY_DEL = 23, SA_ADD = 24, SA_DEL = 25,
}

export enum ReportCode {
  REQUEST = 0, OK = 1, E_VERSION = 2, E_MALFORMED = 3, E_INVALID = 4, E_NOSPACE = 5,
  E_NOT_SYNCED = 6, E_INTERNAL = 7,
}

export interface Hello { schemaVersion: number; role: string; instance: string; pid: number; host: string }

export interface Envelope {
  type: MsgType;
  seq: number;
  report: { code: ReportCode; text: string } | null; // null on requests
  body: Uint8Array;
}

export class FpcError extends Error {
  constructor(readonly code: ReportCode, message: string) { super(message); }
}

function protoPath(): string {
  // compiled: build/fpc/codec.js -> fpc/fpc.proto ; run from source (tsx): fpc/codec.ts -> fpc/fpc.proto
  for (const p of [path.join(__dirname, '../../fpc/fpc.proto'), path.join(__dirname, 'fpc.proto')]) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error('fpc.proto not found next to ' + __dirname);
}

const root = protobuf.loadSync(protoPath());
const T = {
  Envelope: root.lookupType('lfp.fpc.Envelope'),
  Hello: root.lookupType('lfp.fpc.Hello'),
  vrf: root.lookupType('lfp.fpc.Vrf'),
  link: root.lookupType('lfp.fpc.Link'),
  address: root.lookupType('lfp.fpc.Address'),
  route: root.lookupType('lfp.fpc.Route'),
  rule: root.lookupType('lfp.fpc.Rule'),
  neighbour: root.lookupType('lfp.fpc.Neighbour'),
  policy: root.lookupType('lfp.fpc.XfrmPolicy'),
  sa: root.lookupType('lfp.fpc.XfrmSa'),
};
/** The protobufjs types of fpc.proto (for tools and tests that need to build unusual frames). */
export const schema = T;

{
  const schemaEnum = root.lookupEnum('lfp.fpc.Schema');
  if (schemaEnum.values.SCHEMA_VERSION !== SCHEMA_VERSION) {
    throw new Error(`fpc.proto SCHEMA_VERSION ${schemaEnum.values.SCHEMA_VERSION} != codec ${SCHEMA_VERSION}`);
  }
  const mt = root.lookupEnum('lfp.fpc.MsgType').values;
  for (const [k, v] of Object.entries(mt)) {
    if ((MsgType as unknown as Record<string, number>)[k] !== v) throw new Error(`MsgType ${k} differs from fpc.proto`);
  }
}

const ADD: Record<ObjectKind, MsgType> = {
  vrf: MsgType.VRF_ADD, link: MsgType.LINK_ADD, address: MsgType.ADDR_ADD, route: MsgType.ROUTE_ADD,
  rule: MsgType.RULE_ADD, neighbour: MsgType.NEIGH_ADD, policy: MsgType.POLICY_ADD, sa: MsgType.SA_ADD,
};
const KIND_OF = new Map<MsgType, { kind: ObjectKind; del: boolean }>();
for (const [k, t] of Object.entries(ADD)) {
  KIND_OF.set(t, { kind: k as ObjectKind, del: false });
  KIND_OF.set(t + 1, { kind: k as ObjectKind, del: true });
}

export function msgTypeFor(kind: ObjectKind, del: boolean): MsgType { return ADD[kind] + (del ? 1 : 0); }
export function kindOf(type: MsgType): { kind: ObjectKind; del: boolean } | undefined { return KIND_OF.get(type); }
export function msgTypeName(t: number): string { return MsgType[t] ?? `type ${t}`; }

// Envelopes are encoded and decoded by hand (they are five fields, and every message of the sync
// burst passes through here): same wire bytes as protobufjs would accept, no intermediate objects.

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function putVarint(b: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) { b[pos++] = (v & 0x7f) | 0x80; v >>>= 7; }
  b[pos++] = v;
  return pos;
}

/** Bytes of one encoded envelope (without any batch framing). */
function envelopeSize(type: number, seq: number, bodyLen: number, code: number, textLen: number): number {
  let n = 1 + varintSize(type) + 1 + varintSize(seq) + 1 + varintSize(bodyLen);
  if (bodyLen) n += 1 + varintSize(bodyLen) + bodyLen;
  if (code) {
    const r = 1 + varintSize(code) + (textLen ? 1 + varintSize(textLen) + textLen : 0);
    n += 1 + varintSize(r) + r;
  }
  return n;
}

/** Writes one envelope at pos (the caller reserved envelopeSize() bytes); returns the end. */
function putEnvelope(b: Buffer, pos: number, type: number, seq: number, body: Uint8Array | undefined,
  code: number, text: string, textLen: number): number {
  const bodyLen = body ? body.length : 0;
  b[pos++] = 0x08; pos = putVarint(b, pos, type);
  b[pos++] = 0x10; pos = putVarint(b, pos, seq);
  if (code) {
    b[pos++] = 0x1a;
    pos = putVarint(b, pos, 1 + varintSize(code) + (textLen ? 1 + varintSize(textLen) + textLen : 0));
    b[pos++] = 0x08; pos = putVarint(b, pos, code);
    if (textLen) { b[pos++] = 0x12; pos = putVarint(b, pos, textLen); pos += b.write(text, pos, textLen, 'utf8'); }
  }
  b[pos++] = 0x20; pos = putVarint(b, pos, bodyLen);
  if (bodyLen) { b[pos++] = 0x2a; pos = putVarint(b, pos, bodyLen); b.set(body!, pos); pos += bodyLen; }
  return pos;
}

export function encodeEnvelope(type: MsgType, seq: number, body?: Uint8Array,
  report?: { code: ReportCode; text?: string }): Uint8Array {
  type >>>= 0; seq >>>= 0;
  const code = report ? report.code >>> 0 : 0;
  const text = report?.text ?? '';
  const textLen = text ? Buffer.byteLength(text, 'utf8') : 0;
  const b = Buffer.allocUnsafe(envelopeSize(type, seq, body ? body.length : 0, code, textLen));
  const end = putEnvelope(b, 0, type, seq, body, code, text, textLen);
  return end === b.length ? b : b.subarray(0, end);
}

/**
 * Many envelopes in one ZeroMQ frame: the frame is a protobuf `Batch` (fpc.proto), i.e. every
 * envelope preceded by the tag of field 16 (bytes 0x82 0x01) and its length. No Envelope encoding
 * starts with those two bytes (Envelope has no field 16), so a receiver tells a batch frame from a
 * single-envelope frame by its first two bytes. Replies to a batch come back as a batch, in order.
 */
export function isBatchFrame(f: Uint8Array): boolean { return f.length >= 2 && f[0] === 0x82 && f[1] === 0x01; }

/** Builds a batch frame; reusable (finish() returns a copy and resets). */
export class BatchWriter {
  private buf = Buffer.allocUnsafe(1 << 16);
  private pos = 0;
  count = 0;

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const nb = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }

  add(type: MsgType, seq: number, body?: Uint8Array, code: ReportCode = ReportCode.REQUEST, text = ''): void {
    type >>>= 0; seq >>>= 0; code >>>= 0;
    const textLen = text ? Buffer.byteLength(text, 'utf8') : 0;
    const n = envelopeSize(type, seq, body ? body.length : 0, code, textLen);
    this.reserve(2 + 5 + n);
    const b = this.buf;
    b[this.pos++] = 0x82; b[this.pos++] = 0x01;
    this.pos = putVarint(b, this.pos, n);
    this.pos = putEnvelope(b, this.pos, type, seq, body, code, text, textLen);
    this.count++;
  }

  /** add() of an object's add/delete message; routes are encoded straight into the frame. */
  addObject(type: MsgType, seq: number, o: AnyObject): void {
    if (o.kind !== 'route') { this.add(type, seq, encodeObject(o)); return; }
    type >>>= 0; seq >>>= 0;
    const max = routeMaxSize(o.obj);
    // batch tag and length, envelope tags and varints of type, seq, length, body length: <= 31 bytes
    this.reserve(32 + max);
    const b = this.buf;
    const start = this.pos;
    // The body goes 32 bytes in; its envelope header, once its size is known, right before it.
    const bodyAt = start + 32;
    const bodyLen = putRoute(b, bodyAt, o.obj) - bodyAt;
    const envLen = 1 + varintSize(type) + 1 + varintSize(seq) + 1 + varintSize(bodyLen) + (bodyLen ? 1 + varintSize(bodyLen) : 0) + bodyLen;
    let p = start;
    b[p++] = 0x82; b[p++] = 0x01;
    p = putVarint(b, p, envLen);
    b[p++] = 0x08; p = putVarint(b, p, type);
    b[p++] = 0x10; p = putVarint(b, p, seq);
    b[p++] = 0x20; p = putVarint(b, p, bodyLen);
    if (bodyLen) { b[p++] = 0x2a; p = putVarint(b, p, bodyLen); }
    b.copyWithin(p, bodyAt, bodyAt + bodyLen);
    this.pos = p + bodyLen;
    this.count++;
  }

  get bytes(): number { return this.pos; }

  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    this.count = 0;
    return out;
  }
}

/**
 * Calls `each` with every envelope of a batch frame (views, not copies). Returns null, or the text
 * of the framing error that stopped the walk (the envelopes before it were delivered).
 */
export function forEachInBatch(f: Uint8Array, each: (env: Uint8Array) => void): string | null {
  let pos = 0;
  const n = f.length;
  while (pos < n) {
    if (pos + 2 > n || f[pos] !== 0x82 || f[pos + 1] !== 0x01) return `batch frame (${n} bytes): no envelope tag at offset ${pos}`;
    pos += 2;
    let len = 0, shift = 0, b = 0x80;
    while (b & 0x80) {
      if (pos >= n || shift > 28) return `batch frame (${n} bytes): bad length at offset ${pos}`;
      b = f[pos++];
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    if (len > n - pos) return `batch frame (${n} bytes): envelope of ${len} bytes at offset ${pos} runs past the end`;
    each(view(f, pos, len));
    pos += len;
  }
  return null;
}

class WireError extends Error {}

function getVarint(f: Uint8Array, st: { pos: number }): number {
  let pos = st.pos;
  if (pos < f.length && f[pos] < 0x80) { st.pos = pos + 1; return f[pos]; } // (most fields)
  let v = 0, shift = 0, b = 0x80;
  while (b & 0x80) {
    if (pos >= f.length) throw new WireError(`truncated varint at offset ${pos}`);
    if (shift >= 64) throw new WireError(`varint longer than 10 bytes at offset ${pos}`);
    b = f[pos++];
    if (shift < 32) v += (b & 0x7f) * 2 ** shift;
    shift += 7;
  }
  st.pos = pos;
  return v >>> 0; // uint32 / enum fields: the low 32 bits, as protobuf does
}

function getBytes(f: Uint8Array, st: { pos: number }): Uint8Array {
  const len = getVarint(f, st);
  if (len > f.length - st.pos) throw new WireError(`length ${len} at offset ${st.pos} runs past the end`);
  const v = view(f, st.pos, len);
  st.pos += len;
  return v;
}

/** A plain Uint8Array view (Buffer.subarray is several times slower: it builds a Buffer). */
function view(f: Uint8Array, at: number, len: number): Uint8Array {
  return new Uint8Array(f.buffer, f.byteOffset + at, len);
}

function skipField(f: Uint8Array, st: { pos: number }, wt: number): void {
  switch (wt) {
    case 0: getVarint(f, st); return;
    case 1: if (st.pos + 8 > f.length) throw new WireError('truncated fixed64'); st.pos += 8; return;
    case 2: getBytes(f, st); return;
    case 5: if (st.pos + 4 > f.length) throw new WireError('truncated fixed32'); st.pos += 4; return;
    default: throw new WireError(`invalid wire type ${wt} at offset ${st.pos - 1}`);
  }
}

const utf8 = new TextDecoder('utf-8');

function decodeReport(f: Uint8Array): { code: number; text: string } {
  const st = { pos: 0 };
  let code = 0, text = '';
  while (st.pos < f.length) {
    const tag = getVarint(f, st);
    if (tag === 0x08) code = getVarint(f, st);
    else if (tag === 0x12) text = utf8.decode(getBytes(f, st));
    else skipField(f, st, tag & 7);
  }
  return { code, text };
}

/**
 * True for the common reply "report OK, no text, no body" to an object or sync message (not to a
 * Hello, not a RESYNC_REQUEST), recognised without decoding it. Anything else: false (decode it).
 */
export function isPlainOk(f: Uint8Array): boolean {
  let pos = 0, type = 0, ok = false;
  const n = f.length;
  while (pos < n) {
    const tag = f[pos++];
    if (tag === 0x08 || tag === 0x10) { // type, seq: varints
      let v = 0, shift = 0, b = 0x80;
      while (b & 0x80) {
        if (pos >= n || shift > 28) return false;
        b = f[pos++];
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
      }
      if (tag === 0x08) type = v;
    } else if (tag === 0x1a) { // report { code: OK }
      if (pos + 3 > n || f[pos] !== 2 || f[pos + 1] !== 0x08 || f[pos + 2] !== ReportCode.OK) return false;
      pos += 3;
      ok = true;
    } else if (tag === 0x20) { // length 0
      if (pos >= n || f[pos] !== 0) return false;
      pos++;
    } else {
      return false;
    }
  }
  return ok && type >= MsgType.SYNC_BEGIN && type !== MsgType.RESYNC_REQUEST && MsgType[type] !== undefined;
}

export function decodeEnvelope(buf: Uint8Array): Envelope {
  let type = 0, seq = 0, length = 0;
  let body: Uint8Array = EMPTY;
  let report: { code: number; text: string } | null = null;
  const st = { pos: 0 };
  try {
    while (st.pos < buf.length) {
      const tag = getVarint(buf, st);
      switch (tag) {
        case 0x08: type = getVarint(buf, st); break;
        case 0x10: seq = getVarint(buf, st); break;
        case 0x1a: report = decodeReport(getBytes(buf, st)); break;
        case 0x20: length = getVarint(buf, st); break;
        case 0x2a: body = getBytes(buf, st); break;
        default:
          if ((tag >>> 3) === 0) throw new WireError(`invalid field number 0 at offset ${st.pos - 1}`);
          skipField(buf, st, tag & 7);
      }
    }
  } catch (e) {
    throw new FpcError(ReportCode.E_MALFORMED, `undecodable envelope (${buf.length} bytes): ${(e as Error).message}`);
  }
  if (length !== body.length) {
    throw new FpcError(ReportCode.E_MALFORMED, `seq ${seq}: length field ${length} but body has ${body.length} bytes`);
  }
  if (MsgType[type] === undefined || type === MsgType.MSG_UNSPEC) {
    throw new FpcError(ReportCode.E_MALFORMED, `seq ${seq}: unknown message type ${type}`);
  }
  return { type, seq, report: report && report.code ? { code: report.code as ReportCode, text: report.text } : null, body };
}

const EMPTY = new Uint8Array(0);

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, arrays: true };

export function encodeHello(h: Hello): Uint8Array {
  return T.Hello.encode(T.Hello.fromObject(h)).finish();
}
export function decodeHello(body: Uint8Array): Hello {
  try {
    return T.Hello.toObject(T.Hello.decode(body), TO_OBJECT) as Hello;
  } catch (e) {
    throw new FpcError(ReportCode.E_MALFORMED, `undecodable Hello: ${(e as Error).message}`);
  }
}

// Model <-> wire: identical but for the rule port ranges ([lo, hi] in the model).
function toWire(o: AnyObject): Record<string, unknown> {
  if (o.kind !== 'rule') return o.obj as unknown as Record<string, unknown>;
  const r: Record<string, unknown> = { ...o.obj };
  if (o.obj.sport) r.sport = { lo: o.obj.sport[0], hi: o.obj.sport[1] };
  if (o.obj.dport) r.dport = { lo: o.obj.dport[0], hi: o.obj.dport[1] };
  return r;
}
function fromWire(kind: ObjectKind, w: Record<string, unknown>): AnyObject {
  if (kind === 'rule') {
    const r = w as Record<string, unknown> & { sport?: { lo: number; hi: number }; dport?: { lo: number; hi: number } };
    const out = { ...r } as unknown as Rule;
    if (r.sport) out.sport = [r.sport.lo, r.sport.hi]; else delete out.sport;
    if (r.dport) out.dport = [r.dport.lo, r.dport.hi]; else delete out.dport;
    return { kind, obj: out };
  }
  return { kind, obj: w } as unknown as AnyObject;
}

// ---- Route bodies by hand (the bulk of a sync: one per route). Same bytes as fpc.proto's Route
// (zero scalars left out, as proto3 allows); decodeObject('route') gives what protobufjs would.

/** Writes s as a length-delimited field value; ASCII fast path (addresses, type names). */
function putString(b: Buffer, pos: number, s: string): number {
  const n = s.length;
  let ascii = n < 128;
  for (let i = 0; ascii && i < n; i++) if (s.charCodeAt(i) >= 0x80) ascii = false;
  if (!ascii) {
    const len = Buffer.byteLength(s, 'utf8');
    pos = putVarint(b, pos, len);
    return pos + b.write(s, pos, len, 'utf8');
  }
  b[pos++] = n;
  for (let i = 0; i < n; i++) b[pos++] = s.charCodeAt(i);
  return pos;
}

function putU32Field(b: Buffer, pos: number, tag: number, v: number): number {
  if (!v) return pos;
  b[pos++] = tag;
  return putVarint(b, pos, v >>> 0);
}

/** Upper bound of the encoded size of a route body. */
function routeMaxSize(r: Route): number {
  let n = 64 + 3 * (r.dst.length + r.type.length + (r.prefsrc?.length ?? 0));
  for (const nh of r.nexthops) n += 24 + 3 * (nh.gw?.length ?? 0);
  return n;
}

/** Encodes a route body at pos (routeMaxSize(r) bytes available); returns the end. */
function putRoute(b: Buffer, pos: number, r: Route): number {
  pos = putU32Field(b, pos, 0x08, r.vrf);
  pos = putU32Field(b, pos, 0x10, r.table);
  pos = putU32Field(b, pos, 0x18, r.family);
  if (r.dst) { b[pos++] = 0x22; pos = putString(b, pos, r.dst); }
  pos = putU32Field(b, pos, 0x28, r.plen);
  pos = putU32Field(b, pos, 0x30, r.tos);
  pos = putU32Field(b, pos, 0x38, r.priority);
  if (r.type) { b[pos++] = 0x42; pos = putString(b, pos, r.type); }
  pos = putU32Field(b, pos, 0x48, r.protocol);
  pos = putU32Field(b, pos, 0x50, r.scope);
  if (r.prefsrc !== undefined) { b[pos++] = 0x5a; pos = putString(b, pos, r.prefsrc); }
  if (r.mtu !== undefined) { b[pos++] = 0x60; pos = putVarint(b, pos, r.mtu >>> 0); }
  for (const nh of r.nexthops) {
    b[pos++] = 0x6a;
    const lenAt = pos++; // a next hop is < 128 bytes (a gateway of at most 45 characters)
    const start = pos;
    if (nh.gw !== undefined) { b[pos++] = 0x0a; pos = putString(b, pos, nh.gw); }
    pos = putU32Field(b, pos, 0x10, nh.ifindex);
    pos = putU32Field(b, pos, 0x18, nh.weight);
    pos = putU32Field(b, pos, 0x20, nh.flags);
    const len = pos - start;
    if (len >= 128) { // (only with absurd gateway strings: make room for a 2-byte length)
      b.copyWithin(start + 1, start, pos);
      b[lenAt] = (len & 0x7f) | 0x80; b[lenAt + 1] = len >>> 7;
      pos++;
    } else {
      b[lenAt] = len;
    }
  }
  return pos;
}

function getString(f: Uint8Array, st: { pos: number }): string {
  const v = getBytes(f, st);
  let ascii = v.length <= 64;
  for (let i = 0; i < v.length && ascii; i++) if (v[i] >= 0x80) ascii = false;
  return ascii ? String.fromCharCode.apply(null, v as unknown as number[]) : utf8.decode(v);
}

function wantWire(tag: number, wt: number): void {
  if ((tag & 7) !== wt) throw new WireError(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${wt}`);
}

// The gateway text of the previous next hop and its bytes: a bulk of routes through one gateway
// decodes it once.
let lastGwBytes = new Uint8Array(0);
let lastGw = '';

function getGateway(f: Uint8Array, st: { pos: number }): string {
  const len = getVarint(f, st);
  if (len > f.length - st.pos) throw new WireError(`length ${len} at offset ${st.pos} runs past the end`);
  const at = st.pos;
  if (len === lastGwBytes.length) {
    let i = 0;
    while (i < len && f[at + i] === lastGwBytes[i]) i++;
    if (i === len) { st.pos += len; return lastGw; }
  }
  const v = view(f, at, len);
  st.pos += len;
  const s = utf8.decode(v);
  if (len <= 64) { lastGwBytes = Uint8Array.from(v); lastGw = s; }
  return s;
}

// The previous next hop's bytes and object: a bulk of routes through one next hop decodes it once
// and shares the object (decoded objects are not mutated).
let lastNhBytes = new Uint8Array(0);
let lastNh: NextHop | null = null;

function nexthopOf(b: Uint8Array): NextHop {
  if (lastNh !== null && b.length === lastNhBytes.length) {
    let i = 0;
    while (i < b.length && b[i] === lastNhBytes[i]) i++;
    if (i === b.length) return lastNh;
  }
  const nh = decodeNexthop(b);
  if (b.length <= 96) { lastNhBytes = Uint8Array.from(b); lastNh = nh; }
  return nh;
}

function decodeNexthop(f: Uint8Array): NextHop {
  const st = { pos: 0 };
  const nh: NextHop = { ifindex: 0, weight: 0, flags: 0 };
  let gw: string | undefined;
  while (st.pos < f.length) {
    const tag = getVarint(f, st);
    switch (tag >>> 3) {
      case 1: wantWire(tag, 2); gw = getGateway(f, st); break;
      case 2: wantWire(tag, 0); nh.ifindex = getVarint(f, st); break;
      case 3: wantWire(tag, 0); nh.weight = getVarint(f, st); break;
      case 4: wantWire(tag, 0); nh.flags = getVarint(f, st); break;
      case 0: throw new WireError('invalid field number 0');
      default: skipField(f, st, tag & 7);
    }
  }
  if (gw !== undefined) return { gw, ifindex: nh.ifindex, weight: nh.weight, flags: nh.flags };
  return nh;
}

function decodeRouteBody(f: Uint8Array): Route {
  const st = { pos: 0 };
  let vrf = 0, table = 0, family = 0, dst = '', plen = 0, tos = 0, priority = 0, type = '', protocol = 0, scope = 0;
  let prefsrc: string | undefined, mtu: number | undefined;
  const nexthops: NextHop[] = [];
  while (st.pos < f.length) {
    const tag = getVarint(f, st);
    switch (tag >>> 3) {
      case 1: wantWire(tag, 0); vrf = getVarint(f, st); break;
      case 2: wantWire(tag, 0); table = getVarint(f, st); break;
      case 3: wantWire(tag, 0); family = getVarint(f, st); break;
      case 4: wantWire(tag, 2); dst = getString(f, st); break;
      case 5: wantWire(tag, 0); plen = getVarint(f, st); break;
      case 6: wantWire(tag, 0); tos = getVarint(f, st); break;
      case 7: wantWire(tag, 0); priority = getVarint(f, st); break;
      case 8: wantWire(tag, 2); type = getString(f, st); break;
      case 9: wantWire(tag, 0); protocol = getVarint(f, st); break;
      case 10: wantWire(tag, 0); scope = getVarint(f, st); break;
      case 11: wantWire(tag, 2); prefsrc = getString(f, st); break;
      case 12: wantWire(tag, 0); mtu = getVarint(f, st); break;
      case 13: wantWire(tag, 2); nexthops.push(nexthopOf(getBytes(f, st))); break;
      case 0: throw new WireError('invalid field number 0');
      default: skipField(f, st, tag & 7);
    }
  }
  const r = { vrf, table, family, dst, plen, tos, priority, type, protocol, scope } as Route;
  if (prefsrc !== undefined) r.prefsrc = prefsrc;
  if (mtu !== undefined) r.mtu = mtu;
  r.nexthops = nexthops;
  return r;
}

let scratch = Buffer.allocUnsafe(4096);

export function encodeObject(o: AnyObject): Uint8Array {
  if (o.kind === 'route') {
    const max = routeMaxSize(o.obj);
    if (scratch.length < max) scratch = Buffer.allocUnsafe(max * 2);
    const n = putRoute(scratch, 0, o.obj);
    return Buffer.from(scratch.subarray(0, n));
  }
  return encodeObjectPb(o);
}

function encodeObjectPb(o: AnyObject): Uint8Array {
  // The model objects already have the wire's field names and types: encode them as they are
  // (fromObject would copy every object first).
  return T[o.kind].encode(toWire(o) as unknown as protobuf.Message).finish();
}

export function decodeObject(kind: ObjectKind, body: Uint8Array): AnyObject {
  if (kind === 'route') {
    let r: Route;
    try {
      r = decodeRouteBody(body);
    } catch (e) {
      throw new FpcError(ReportCode.E_MALFORMED, `undecodable route: ${(e as Error).message}`);
    }
    const o: AnyObject = { kind, obj: r };
    const bad = validateObject(o);
    if (bad) throw new FpcError(ReportCode.E_INVALID, `route: ${bad}`);
    return o;
  }
  const t = T[kind];
  let w: Record<string, unknown>;
  try {
    w = t.toObject(t.decode(body), TO_OBJECT);
  } catch (e) {
    throw new FpcError(ReportCode.E_MALFORMED, `undecodable ${kind}: ${(e as Error).message}`);
  }
  const o = fromWire(kind, w);
  const bad = validateObject(o);
  if (bad) throw new FpcError(ReportCode.E_INVALID, `${kind}: ${bad}`);
  return o;
}

function fam(f: unknown): boolean { return f === 4 || f === 6; }
function ipOf(a: unknown, f?: number): boolean {
  if (typeof a !== 'string') return false;
  if (f !== 6 && canonicalDottedQuad(a)) return true; // (the common case, without net.isIP's regex)
  const v = net.isIP(a);
  return f === undefined ? v !== 0 : v === f;
}
/** Canonical dotted-quad IPv4 text ("10.0.0.1": 4 decimal numbers <= 255, no leading zeros). */
function canonicalDottedQuad(s: string): boolean {
  let part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return false;
      part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false;
      part = part * 10 + (c - 48);
      if (part > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  return dots === 3 && digits > 0;
}

const MAC = /^([0-9a-f]{2}(:[0-9a-f]{2})*)?$/;

/** Semantic checks a receiver applies before touching shared memory; null when fine. */
export function validateObject(o: AnyObject): string | null {
  const x = o.obj as unknown as Record<string, unknown>;
  if (typeof x.vrf !== 'number' || x.vrf < 0) return 'bad vrf';
  switch (o.kind) {
    case 'vrf': return null;
    case 'link':
      if (!o.obj.ifindex) return 'ifindex 0';
      if (!MAC.test(o.obj.mac)) return `bad mac "${o.obj.mac}"`;
      if (o.obj.name.length > 15) return `interface name too long "${o.obj.name}"`;
      return null;
    case 'address':
      if (!fam(o.obj.family) || !ipOf(o.obj.addr, o.obj.family)) return `bad address "${o.obj.addr}"`;
      if (o.obj.plen > (o.obj.family === 4 ? 32 : 128)) return `bad prefix length ${o.obj.plen}`;
      return null;
    case 'route': {
      const r = o.obj;
      if (!fam(r.family) || !ipOf(r.dst, r.family)) return `bad destination "${r.dst}"`;
      if (r.plen > (r.family === 4 ? 32 : 128)) return `bad prefix length ${r.plen}`;
      if (r.nexthops.length > 16) return `${r.nexthops.length} next hops (at most 16)`;
      for (const nh of r.nexthops) {
        if (nh.gw !== undefined && !ipOf(nh.gw)) return `bad gateway "${nh.gw}"`;
        if (nh.weight < 1 || nh.weight > 256) return `bad weight ${nh.weight}`;
      }
      return null;
    }
    case 'rule':
      if (!fam(o.obj.family)) return 'bad family';
      if (o.obj.src !== undefined && !ipOf(o.obj.src, o.obj.family)) return `bad source "${o.obj.src}"`;
      if (o.obj.dst !== undefined && !ipOf(o.obj.dst, o.obj.family)) return `bad destination "${o.obj.dst}"`;
      return null;
    case 'neighbour':
      if (!fam(o.obj.family) || !ipOf(o.obj.addr, o.obj.family)) return `bad address "${o.obj.addr}"`;
      if (o.obj.lladdr !== undefined && !MAC.test(o.obj.lladdr)) return `bad lladdr "${o.obj.lladdr}"`;
      return null;
    case 'policy':
      if (!['in', 'out', 'fwd'].includes(o.obj.dir)) return `bad dir "${o.obj.dir}"`;
      if (!o.obj.selector || !fam(o.obj.selector.family)) return 'bad selector';
      if (o.obj.tmpls.length > 6) return 'too many templates';
      return null;
    case 'sa':
      if (!fam(o.obj.family) || !ipOf(o.obj.daddr) || !ipOf(o.obj.saddr)) return 'bad SA addresses';
      for (const a of [o.obj.aead, o.obj.enc, o.obj.auth]) {
        if (a && !/^([0-9a-f]{2})*$/.test(a.key)) return `bad key for ${a.name}`;
        if (a && a.key.length > 128) return `key for ${a.name} longer than 64 bytes`;
      }
      if (o.obj.oseq !== undefined && !(Number.isSafeInteger(o.obj.oseq) && o.obj.oseq >= 0)) return `bad oseq ${o.obj.oseq}`;
      return null;
  }
}
