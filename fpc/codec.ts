// Encoding and decoding of FPC envelopes and bodies (the schema is fpc/fpc.proto).
import * as path from 'path';
import * as fs from 'fs';
import * as protobuf from 'protobufjs';
import * as net from 'net';
import type { AnyObject, ObjectKind, Rule } from '../lib/model';

export const SCHEMA_VERSION = 1;

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

export function encodeEnvelope(type: MsgType, seq: number, body?: Uint8Array,
  report?: { code: ReportCode; text?: string }): Uint8Array {
  const b = body ?? new Uint8Array(0);
  const env: Record<string, unknown> = { type, seq, length: b.length, body: b };
  if (report) env.report = { code: report.code, text: report.text ?? '' };
  return T.Envelope.encode(T.Envelope.fromObject(env)).finish();
}

export function decodeEnvelope(buf: Uint8Array): Envelope {
  let m: protobuf.Message;
  try {
    m = T.Envelope.decode(buf);
  } catch (e) {
    throw new FpcError(ReportCode.E_MALFORMED, `undecodable envelope (${buf.length} bytes): ${(e as Error).message}`);
  }
  const o = m as unknown as { type: number; seq: number; report?: { code: number; text: string } | null; length: number; body: Uint8Array };
  const body = o.body ?? new Uint8Array(0);
  const seq = o.seq ?? 0;
  if ((o.length ?? 0) !== body.length) {
    throw new FpcError(ReportCode.E_MALFORMED, `seq ${seq}: length field ${o.length ?? 0} but body has ${body.length} bytes`);
  }
  const type = o.type ?? 0;
  if (MsgType[type] === undefined || type === MsgType.MSG_UNSPEC) {
    throw new FpcError(ReportCode.E_MALFORMED, `seq ${seq}: unknown message type ${type}`);
  }
  const report = o.report && o.report.code ? { code: o.report.code as ReportCode, text: o.report.text ?? '' } : null;
  return { type, seq, report, body };
}

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

export function encodeObject(o: AnyObject): Uint8Array {
  // The model objects already have the wire's field names and types: encode them as they are
  // (fromObject would copy every object first).
  return T[o.kind].encode(toWire(o) as unknown as protobuf.Message).finish();
}

export function decodeObject(kind: ObjectKind, body: Uint8Array): AnyObject {
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
  const v = net.isIP(a);
  return f === undefined ? v !== 0 : v === f;
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
      return null;
  }
}
