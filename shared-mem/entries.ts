// Model object <-> entry words, for every kind. Encoders fill a scratch entry (word 0 = SEQ left 0,
// USED = 1) that the writer compares with / copies into shared memory; decoders read a consistent
// copy of an entry (taken under its sequence lock). The word formats are defined in layout.ts.

import type {
  Address, Family, Link, NextHop, Neighbour, Route, RouteType, Rule, RuleAction, Vrf, XfrmAlgo,
  XfrmPolicy, XfrmSa, XfrmSelector, XfrmTemplate, XfrmMode,
} from '../lib/model';
import {
  ADDR_E, ALGO, LIFE, LINK_E, LINK_KIND_MAX, LINK_MAC_MAX, LINK_NAME_MAX, NEIGH_E, NEIGH_LLADDR_MAX, NH_E,
  POLICY_E, POLICY_MAX_TMPLS, ROUTE_E, ROUTE_TYPES, RULE_ACTIONS, RULE_E, SA_ALG_NAME_MAX, SA_E, SA_KEY_MAX, SEL,
  TMPL, VRF_E, VRF_NAME_MAX, XFRM_ALG_NAMES, XFRM_ALG_OTHER, XFRM_DIRS, XFRM_MODES, XFRM_POLICY_ACTIONS,
} from './layout';
import {
  ADDR_ABSENT, ADDR_V4, ADDR_V6, decodeAddr, decodeHex, decodeMac, decodeNum64, decodeStr, decodeU64,
  encodeAddr, encodeAddrOf, encodeHex, encodeMac, encodeNum64, encodeStr, encodeU64,
} from './addr';

type W = Uint32Array;
type B = Uint8Array;

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`invalid ${what} ${v}`);
  return v;
}
function i32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new TypeError(`invalid ${what} ${v}`);
  return v >>> 0;
}
function bits(v: number, n: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** n) throw new TypeError(`invalid ${what} ${v}`);
  return v;
}
function fam(f: Family, what: string): number {
  if (f !== 4 && f !== 6) throw new TypeError(`invalid ${what} family ${f}`);
  return f;
}
function plenOf(f: number, p: number, what: string): number {
  if (!Number.isInteger(p) || p < 0 || p > (f === 4 ? 32 : 128)) throw new TypeError(`invalid ${what} prefix length ${p}`);
  return p;
}
function code<T extends string>(table: readonly T[], v: string, what: string): number {
  const c = v === '' ? -1 : (table as readonly string[]).indexOf(v);
  if (c < 0) throw new TypeError(`invalid ${what} "${v}"`);
  return c;
}
function clear(w: W, n: number): void {
  for (let i = 0; i < n; i++) w[i] = 0;
}
function i32of(v: number): number { return v | 0; }

// ---------------------------------------------------------------------------------------------
// VRF

export function encodeVrf(o: Vrf, w: W, b: B): void {
  clear(w, VRF_E.WORDS);
  w[VRF_E.USED] = 1;
  w[VRF_E.VRF] = u32(o.vrf, 'vrf');
  w[VRF_E.NSID] = i32(o.nsid, 'nsid');
  w[VRF_E.NAMELEN] = encodeStr(o.name, b, VRF_E.NAME * 4, VRF_NAME_MAX, 'netns name');
}

export function decodeVrf(w: W, b: B): Vrf {
  return { vrf: w[VRF_E.VRF], nsid: i32of(w[VRF_E.NSID]), name: decodeStr(b, VRF_E.NAME * 4, w[VRF_E.NAMELEN]) };
}

// ---------------------------------------------------------------------------------------------
// Link (PORT is given separately: the writer computes it from its port list)

export function encodeLink(o: Link, port: number, w: W, b: B): void {
  clear(w, LINK_E.WORDS);
  w[LINK_E.USED] = 1;
  w[LINK_E.VRF] = u32(o.vrf, 'vrf');
  w[LINK_E.IFINDEX] = u32(o.ifindex, 'ifindex');
  w[LINK_E.MTU] = u32(o.mtu, 'mtu');
  w[LINK_E.FLAGS] = u32(o.flags, 'link flags');
  w[LINK_E.BITS] = (o.adminUp ? 1 : 0) | (o.operUp ? 2 : 0);
  w[LINK_E.MASTER] = u32(o.master, 'master');
  w[LINK_E.LINK] = u32(o.link, 'link');
  w[LINK_E.PORT] = i32(port, 'port');
  const nl = encodeStr(o.name, b, LINK_E.NAME * 4, LINK_NAME_MAX, 'link name');
  const kl = encodeStr(o.kind, b, LINK_E.KIND * 4, LINK_KIND_MAX, 'link kind');
  const ml = encodeMac(o.mac, b, LINK_E.MAC * 4, LINK_MAC_MAX, 'link address');
  w[LINK_E.LENS] = nl | (kl << 8) | (ml << 16);
}

export function decodeLink(w: W, b: B): Link {
  const lens = w[LINK_E.LENS];
  return {
    vrf: w[LINK_E.VRF], ifindex: w[LINK_E.IFINDEX],
    name: decodeStr(b, LINK_E.NAME * 4, lens & 255),
    kind: decodeStr(b, LINK_E.KIND * 4, (lens >>> 8) & 255),
    mac: decodeMac(b, LINK_E.MAC * 4, (lens >>> 16) & 255),
    mtu: w[LINK_E.MTU], flags: w[LINK_E.FLAGS],
    adminUp: (w[LINK_E.BITS] & 1) !== 0, operUp: (w[LINK_E.BITS] & 2) !== 0,
    master: w[LINK_E.MASTER], link: w[LINK_E.LINK], port: i32of(w[LINK_E.PORT]),
  };
}

// ---------------------------------------------------------------------------------------------
// Address

export function encodeAddress(o: Address, w: W): void {
  clear(w, ADDR_E.WORDS);
  w[ADDR_E.USED] = 1;
  const f = fam(o.family, 'address');
  w[ADDR_E.VRF] = u32(o.vrf, 'vrf');
  w[ADDR_E.IFINDEX] = u32(o.ifindex, 'ifindex');
  encodeAddrOf(f, o.addr, w, ADDR_E.ADDR, 'interface');
  const pk = encodeAddr(o.peer, w, ADDR_E.PEER, 'peer');
  w[ADDR_E.META] = f | (plenOf(f, o.plen, 'address') << 8) | (pk << 16);
  w[ADDR_E.SCOPE] = u32(o.scope, 'scope');
  w[ADDR_E.FLAGS] = u32(o.flags, 'address flags');
}

export function decodeAddress(w: W): Address {
  const m = w[ADDR_E.META];
  const family = (m & 255) as Family;
  const o: Address = {
    vrf: w[ADDR_E.VRF], ifindex: w[ADDR_E.IFINDEX], family,
    addr: decodeAddr(family === 4 ? ADDR_V4 : ADDR_V6, w, ADDR_E.ADDR)!,
    plen: (m >>> 8) & 255, scope: w[ADDR_E.SCOPE], flags: w[ADDR_E.FLAGS],
  };
  const peer = decodeAddr((m >>> 16) & 3, w, ADDR_E.PEER);
  if (peer !== undefined) o.peer = peer;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Route (the writer fills REF; nexthops are reconstructed from the next hop / group entries)

export function routeTypeCode(t: RouteType): number {
  return code(ROUTE_TYPES, t, 'route type');
}

/** Encodes everything except REF (left 0) and WEIGHT. Returns the family. */
export function encodeRoute(o: Route, w: W): number {
  clear(w, ROUTE_E.WORDS);
  w[ROUTE_E.USED] = 1;
  const f = fam(o.family, 'route');
  w[ROUTE_E.VRF] = u32(o.vrf, 'vrf');
  w[ROUTE_E.TABLE] = u32(o.table, 'table');
  encodeAddrOf(f, o.dst, w, ROUTE_E.DST, 'route destination');
  w[ROUTE_E.META] = (f | (plenOf(f, o.plen, 'route') << 8) | (bits(o.tos, 8, 'tos') << 16) | (routeTypeCode(o.type) << 24)) >>> 0;
  w[ROUTE_E.PRIORITY] = u32(o.priority, 'priority');
  const pk = encodeAddr(o.prefsrc, w, ROUTE_E.PREFSRC, 'prefsrc');
  const n = o.nexthops.length;
  w[ROUTE_E.META2] = bits(o.protocol, 8, 'protocol') | (bits(o.scope, 8, 'scope') << 8) | (n << 16) | (pk << 24) |
    (o.mtu !== undefined ? 1 << 26 : 0);
  w[ROUTE_E.MTU] = o.mtu !== undefined ? u32(o.mtu, 'route mtu') : 0;
  return f;
}

export function routeFamily(w: W): number { return w[ROUTE_E.META] & 255; }
export function routePlen(w: W): number { return (w[ROUTE_E.META] >>> 8) & 255; }
export function routeTos(w: W): number { return (w[ROUTE_E.META] >>> 16) & 255; }
export function routeType(w: W): number { return w[ROUTE_E.META] >>> 24; }
export function routeNhCount(w: W): number { return (w[ROUTE_E.META2] >>> 16) & 255; }

/** Route without its next hops (nexthops: []). */
export function decodeRouteBase(w: W): Route {
  const m = w[ROUTE_E.META], m2 = w[ROUTE_E.META2];
  const family = (m & 255) as Family;
  const r: Route = {
    vrf: w[ROUTE_E.VRF], table: w[ROUTE_E.TABLE], family,
    dst: decodeAddr(family === 4 ? ADDR_V4 : ADDR_V6, w, ROUTE_E.DST)!,
    plen: (m >>> 8) & 255, tos: (m >>> 16) & 255, priority: w[ROUTE_E.PRIORITY],
    type: ROUTE_TYPES[m >>> 24] as RouteType,
    protocol: m2 & 255, scope: (m2 >>> 8) & 255, nexthops: [],
  };
  const prefsrc = decodeAddr((m2 >>> 24) & 3, w, ROUTE_E.PREFSRC);
  if (prefsrc !== undefined) r.prefsrc = prefsrc;
  if (m2 & (1 << 26)) r.mtu = w[ROUTE_E.MTU];
  return r;
}

// ---------------------------------------------------------------------------------------------
// Next hop

/** Encodes a next hop of a route of family `family`. */
export function encodeNexthop(type: number, family: number, vrf: number, nh: NextHop | undefined, mtu: number, w: W): void {
  clear(w, NH_E.WORDS);
  w[NH_E.USED] = 1;
  let gk = ADDR_ABSENT;
  if (nh) {
    gk = encodeAddr(nh.gw, w, NH_E.GW, 'gateway');
    w[NH_E.IFINDEX] = u32(nh.ifindex, 'ifindex');
    w[NH_E.FLAGS] = u32(nh.flags, 'next-hop flags');
  }
  w[NH_E.META] = type | (family << 8) | (gk << 16);
  w[NH_E.VRF] = vrf;
  w[NH_E.MTU] = mtu;
}

export interface NexthopInfo {
  type: RouteType;
  family: Family; // the route's family
  vrf: number;
  gw?: string;
  ifindex: number;
  flags: number;
  mtu: number; // 0 when unset
}

export function decodeNexthop(w: W): NexthopInfo {
  const m = w[NH_E.META];
  const o: NexthopInfo = {
    type: ROUTE_TYPES[m & 255] as RouteType, family: ((m >>> 8) & 255) as Family, vrf: w[NH_E.VRF],
    ifindex: w[NH_E.IFINDEX], flags: w[NH_E.FLAGS], mtu: w[NH_E.MTU],
  };
  const gw = decodeAddr((m >>> 16) & 3, w, NH_E.GW);
  if (gw !== undefined) o.gw = gw;
  return o;
}

/** Model NextHop from a next-hop entry and a weight. */
export function modelNexthop(w: W, weight: number): NextHop {
  const m = w[NH_E.META];
  const o: NextHop = { ifindex: w[NH_E.IFINDEX], weight, flags: w[NH_E.FLAGS] };
  const gw = decodeAddr((m >>> 16) & 3, w, NH_E.GW);
  if (gw !== undefined) o.gw = gw;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Rule

export function encodeRule(o: Rule, serial: number, w: W, b: B): void {
  clear(w, RULE_E.WORDS);
  w[RULE_E.USED] = 1;
  const f = fam(o.family, 'rule');
  w[RULE_E.VRF] = u32(o.vrf, 'vrf');
  const action = code(RULE_ACTIONS, o.action, 'rule action');
  const sk = encodeAddr(o.src, w, RULE_E.SRC, 'rule source');
  const dk = encodeAddr(o.dst, w, RULE_E.DST, 'rule destination');
  w[RULE_E.META] = (f | (action << 8) | (plenOf(f, o.srcLen, 'rule source') << 16) | (plenOf(f, o.dstLen, 'rule destination') << 24)) >>> 0;
  w[RULE_E.PRIORITY] = u32(o.priority, 'rule priority');
  w[RULE_E.TABLE] = u32(o.table, 'rule table');
  w[RULE_E.FWMARK] = u32(o.fwmark, 'fwmark');
  w[RULE_E.FWMASK] = u32(o.fwmask, 'fwmask');
  w[RULE_E.TOS] = bits(o.tos, 8, 'tos');
  w[RULE_E.IPPROTO] = bits(o.ipproto, 8, 'ipproto');
  if (o.sport) w[RULE_E.SPORT] = (bits(o.sport[0], 16, 'sport') | (bits(o.sport[1], 16, 'sport') << 16)) >>> 0;
  if (o.dport) w[RULE_E.DPORT] = (bits(o.dport[0], 16, 'dport') | (bits(o.dport[1], 16, 'dport') << 16)) >>> 0;
  w[RULE_E.SUPPRESS] = i32(o.suppressPrefixlen, 'suppress_prefixlength');
  w[RULE_E.GOTO] = u32(o.gotoTarget, 'goto target');
  w[RULE_E.SERIAL] = serial;
  let il = 0, ol = 0;
  if (o.iif !== undefined) il = encodeStr(o.iif, b, RULE_E.IIF * 4, LINK_NAME_MAX, 'rule iif');
  if (o.oif !== undefined) ol = encodeStr(o.oif, b, RULE_E.OIF * 4, LINK_NAME_MAX, 'rule oif');
  w[RULE_E.LENS] = il | (ol << 8);
  w[RULE_E.BITS] = sk | (dk << 2) | (o.iif !== undefined ? 16 : 0) | (o.oif !== undefined ? 32 : 0) |
    (o.sport ? 64 : 0) | (o.dport ? 128 : 0) | (o.invert ? 256 : 0);
}

export function decodeRule(w: W, b: B): Rule {
  const m = w[RULE_E.META], bt = w[RULE_E.BITS];
  const r: Rule = {
    vrf: w[RULE_E.VRF], family: (m & 255) as Family, priority: w[RULE_E.PRIORITY], table: w[RULE_E.TABLE],
    action: RULE_ACTIONS[(m >>> 8) & 255] as RuleAction,
    srcLen: (m >>> 16) & 255, dstLen: m >>> 24,
    fwmark: w[RULE_E.FWMARK], fwmask: w[RULE_E.FWMASK], tos: w[RULE_E.TOS], invert: (bt & 256) !== 0,
    ipproto: w[RULE_E.IPPROTO], suppressPrefixlen: i32of(w[RULE_E.SUPPRESS]), gotoTarget: w[RULE_E.GOTO],
  };
  const src = decodeAddr(bt & 3, w, RULE_E.SRC);
  if (src !== undefined) r.src = src;
  const dst = decodeAddr((bt >>> 2) & 3, w, RULE_E.DST);
  if (dst !== undefined) r.dst = dst;
  const lens = w[RULE_E.LENS];
  if (bt & 16) r.iif = decodeStr(b, RULE_E.IIF * 4, lens & 255);
  if (bt & 32) r.oif = decodeStr(b, RULE_E.OIF * 4, (lens >>> 8) & 255);
  if (bt & 64) r.sport = [w[RULE_E.SPORT] & 0xffff, w[RULE_E.SPORT] >>> 16];
  if (bt & 128) r.dport = [w[RULE_E.DPORT] & 0xffff, w[RULE_E.DPORT] >>> 16];
  return r;
}

// ---------------------------------------------------------------------------------------------
// Neighbour (HIT is not part of the encoded content)

export function encodeNeighbour(o: Neighbour, w: W, b: B): void {
  clear(w, NEIGH_E.WORDS);
  w[NEIGH_E.USED] = 1;
  const f = fam(o.family, 'neighbour');
  w[NEIGH_E.VRF] = u32(o.vrf, 'vrf');
  w[NEIGH_E.IFINDEX] = u32(o.ifindex, 'ifindex');
  encodeAddrOf(f, o.addr, w, NEIGH_E.ADDR, 'neighbour');
  let ll = 0;
  if (o.lladdr !== undefined) ll = encodeMac(o.lladdr, b, NEIGH_E.LLADDR * 4, NEIGH_LLADDR_MAX, 'neighbour lladdr');
  w[NEIGH_E.META] = f | (ll << 8) | (o.lladdr !== undefined ? 1 << 16 : 0);
  w[NEIGH_E.STATE] = u32(o.state, 'neighbour state');
  w[NEIGH_E.FLAGS] = u32(o.flags, 'neighbour flags');
}

export function decodeNeighbour(w: W, b: B): Neighbour {
  const m = w[NEIGH_E.META];
  const family = (m & 255) as Family;
  const o: Neighbour = {
    vrf: w[NEIGH_E.VRF], ifindex: w[NEIGH_E.IFINDEX], family,
    addr: decodeAddr(family === 4 ? ADDR_V4 : ADDR_V6, w, NEIGH_E.ADDR)!,
    state: w[NEIGH_E.STATE], flags: w[NEIGH_E.FLAGS],
  };
  if (m & (1 << 16)) o.lladdr = decodeMac(b, NEIGH_E.LLADDR * 4, (m >>> 8) & 255);
  return o;
}

// ---------------------------------------------------------------------------------------------
// XFRM

function encodeSel(s: XfrmSelector, w: W, off: number): void {
  const f = fam(s.family, 'selector');
  const sk = encodeAddr(s.saddr, w, off + SEL.SADDR, 'selector source');
  const dk = encodeAddr(s.daddr, w, off + SEL.DADDR, 'selector destination');
  w[off + SEL.META] = (f | (sk << 8) | (dk << 10) | (bits(s.splen, 8, 'selector prefix length') << 16) |
    (bits(s.dplen, 8, 'selector prefix length') << 24)) >>> 0;
  w[off + SEL.SPORT] = (bits(s.sport, 16, 'selector sport') | (bits(s.sportMask, 16, 'selector sport mask') << 16)) >>> 0;
  w[off + SEL.DPORT] = (bits(s.dport, 16, 'selector dport') | (bits(s.dportMask, 16, 'selector dport mask') << 16)) >>> 0;
  w[off + SEL.PROTO] = bits(s.proto, 8, 'selector proto');
  w[off + SEL.IFINDEX] = i32(s.ifindex, 'selector ifindex');
}

function decodeSel(w: W, off: number): XfrmSelector {
  const m = w[off + SEL.META];
  return {
    family: (m & 255) as Family,
    saddr: decodeAddr((m >>> 8) & 3, w, off + SEL.SADDR) ?? '',
    daddr: decodeAddr((m >>> 10) & 3, w, off + SEL.DADDR) ?? '',
    splen: (m >>> 16) & 255, dplen: m >>> 24,
    sport: w[off + SEL.SPORT] & 0xffff, sportMask: w[off + SEL.SPORT] >>> 16,
    dport: w[off + SEL.DPORT] & 0xffff, dportMask: w[off + SEL.DPORT] >>> 16,
    proto: w[off + SEL.PROTO], ifindex: i32of(w[off + SEL.IFINDEX]),
  };
}

function encodeTmpl(t: XfrmTemplate, w: W, off: number): void {
  const f = fam(t.family, 'template');
  const dk = encodeAddr(t.daddr, w, off + TMPL.DADDR, 'template destination');
  const sk = encodeAddr(t.saddr, w, off + TMPL.SADDR, 'template source');
  w[off + TMPL.META] = f | (code(XFRM_MODES, t.mode, 'xfrm mode') << 8) | (t.optional ? 1 << 16 : 0) | (dk << 20) | (sk << 22);
  w[off + TMPL.SPI] = u32(t.spi, 'spi');
  w[off + TMPL.PROTO] = bits(t.proto, 8, 'proto');
  w[off + TMPL.REQID] = u32(t.reqid, 'reqid');
  w[off + TMPL.SHARE] = u32(t.share, 'share');
  w[off + TMPL.AALGOS] = u32(t.aalgos, 'aalgos');
  w[off + TMPL.EALGOS] = u32(t.ealgos, 'ealgos');
  w[off + TMPL.CALGOS] = u32(t.calgos, 'calgos');
}

function decodeTmpl(w: W, off: number): XfrmTemplate {
  const m = w[off + TMPL.META];
  return {
    family: (m & 255) as Family,
    daddr: decodeAddr((m >>> 20) & 3, w, off + TMPL.DADDR) ?? '',
    saddr: decodeAddr((m >>> 22) & 3, w, off + TMPL.SADDR) ?? '',
    spi: w[off + TMPL.SPI], proto: w[off + TMPL.PROTO], mode: XFRM_MODES[(m >>> 8) & 255] as XfrmMode,
    reqid: w[off + TMPL.REQID], optional: (m & (1 << 16)) !== 0, share: w[off + TMPL.SHARE],
    aalgos: w[off + TMPL.AALGOS], ealgos: w[off + TMPL.EALGOS], calgos: w[off + TMPL.CALGOS],
  };
}

export function encodePolicy(o: XfrmPolicy, w: W): void {
  clear(w, POLICY_E.WORDS);
  w[POLICY_E.USED] = 1;
  w[POLICY_E.VRF] = u32(o.vrf, 'vrf');
  w[POLICY_E.INDEX] = u32(o.index, 'policy index');
  if (o.tmpls.length > POLICY_MAX_TMPLS) throw new TypeError(`policy with ${o.tmpls.length} templates: at most ${POLICY_MAX_TMPLS} supported`);
  w[POLICY_E.META] = code(XFRM_DIRS, o.dir, 'policy dir') | (code(XFRM_POLICY_ACTIONS, o.action, 'policy action') << 8) |
    (o.tmpls.length << 16) | (o.mark ? 1 << 24 : 0);
  w[POLICY_E.PRIORITY] = u32(o.priority, 'policy priority');
  w[POLICY_E.FLAGS] = u32(o.flags, 'policy flags');
  w[POLICY_E.IFID] = u32(o.ifId, 'if_id');
  if (o.mark) { w[POLICY_E.MARKV] = u32(o.mark.value, 'mark'); w[POLICY_E.MARKM] = u32(o.mark.mask, 'mark mask'); }
  encodeSel(o.selector, w, POLICY_E.SEL);
  for (let i = 0; i < o.tmpls.length; i++) encodeTmpl(o.tmpls[i], w, POLICY_E.TMPLS + i * TMPL.WORDS);
}

export function decodePolicy(w: W): XfrmPolicy {
  const m = w[POLICY_E.META];
  const n = (m >>> 16) & 255;
  const tmpls: XfrmTemplate[] = [];
  for (let i = 0; i < n; i++) tmpls.push(decodeTmpl(w, POLICY_E.TMPLS + i * TMPL.WORDS));
  const p: XfrmPolicy = {
    vrf: w[POLICY_E.VRF], index: w[POLICY_E.INDEX], dir: XFRM_DIRS[m & 255],
    priority: w[POLICY_E.PRIORITY], action: XFRM_POLICY_ACTIONS[(m >>> 8) & 255], flags: w[POLICY_E.FLAGS],
    selector: decodeSel(w, POLICY_E.SEL), ifId: w[POLICY_E.IFID], tmpls,
  };
  if (m & (1 << 24)) p.mark = { value: w[POLICY_E.MARKV], mask: w[POLICY_E.MARKM] };
  return p;
}

function encodeAlgo(a: XfrmAlgo, w: W, b: B, off: number): void {
  const c = (XFRM_ALG_NAMES as readonly string[]).indexOf(a.name);
  let nl = 0;
  if (c <= 0) {
    w[off + ALGO.CODE] = XFRM_ALG_OTHER;
    nl = encodeStr(a.name, b, (off + ALGO.NAME) * 4, SA_ALG_NAME_MAX, 'algorithm name');
  } else w[off + ALGO.CODE] = c;
  const kl = encodeHex(a.key, b, (off + ALGO.KEY) * 4, SA_KEY_MAX, 'SA key');
  w[off + ALGO.META] = kl | (nl << 8) | (a.icvBits !== undefined ? 1 << 16 : 0) | (a.truncBits !== undefined ? 1 << 17 : 0);
  if (a.icvBits !== undefined) w[off + ALGO.ICV] = u32(a.icvBits, 'icv length');
  if (a.truncBits !== undefined) w[off + ALGO.TRUNC] = u32(a.truncBits, 'truncation length');
}

function decodeAlgo(w: W, b: B, off: number): XfrmAlgo {
  const m = w[off + ALGO.META];
  const c = w[off + ALGO.CODE];
  const a: XfrmAlgo = {
    name: c === XFRM_ALG_OTHER ? decodeStr(b, (off + ALGO.NAME) * 4, (m >>> 8) & 255) : XFRM_ALG_NAMES[c],
    key: decodeHex(b, (off + ALGO.KEY) * 4, m & 255),
  };
  if (m & (1 << 16)) a.icvBits = w[off + ALGO.ICV];
  if (m & (1 << 17)) a.truncBits = w[off + ALGO.TRUNC];
  return a;
}

export function encodeSa(o: XfrmSa, w: W, b: B): void {
  clear(w, SA_E.WORDS);
  w[SA_E.USED] = 1;
  const f = fam(o.family, 'SA');
  w[SA_E.VRF] = u32(o.vrf, 'vrf');
  w[SA_E.SPI] = u32(o.spi, 'spi');
  w[SA_E.META] = bits(o.proto, 8, 'proto') | (f << 8) | (code(XFRM_MODES, o.mode, 'xfrm mode') << 16) | (o.esn ? 1 << 24 : 0);
  w[SA_E.REQID] = u32(o.reqid, 'reqid');
  w[SA_E.FLAGS] = u32(o.flags, 'SA flags');
  w[SA_E.REPLAY] = u32(o.replayWindow, 'replay window');
  w[SA_E.IFID] = u32(o.ifId, 'if_id');
  const dk = encodeAddr(o.daddr, w, SA_E.DADDR, 'SA destination');
  if (dk !== ADDR_V4 && dk !== ADDR_V6) throw new TypeError(`invalid SA destination address "${o.daddr}"`);
  const sk = encodeAddr(o.saddr, w, SA_E.SADDR, 'SA source');
  let ok = ADDR_ABSENT;
  let bt = (dk << 8) | (sk << 10);
  if (o.aead) { bt |= 1; encodeAlgo(o.aead, w, b, SA_E.AEAD); }
  if (o.enc) { bt |= 2; encodeAlgo(o.enc, w, b, SA_E.ENC); }
  if (o.auth) { bt |= 4; encodeAlgo(o.auth, w, b, SA_E.AUTH); }
  if (o.encap) {
    bt |= 8;
    w[SA_E.ENCAP_TYPE] = u32(o.encap.type, 'encap type');
    w[SA_E.ENCAP_PORTS] = (bits(o.encap.sport, 16, 'encap sport') | (bits(o.encap.dport, 16, 'encap dport') << 16)) >>> 0;
    ok = encodeAddr(o.encap.oa, w, SA_E.ENCAP_OA, 'encap oa');
  }
  if (o.mark) { bt |= 16; w[SA_E.MARKV] = u32(o.mark.value, 'mark'); w[SA_E.MARKM] = u32(o.mark.mask, 'mark mask'); }
  w[SA_E.BITS] = bt | (ok << 12);
  encodeSel(o.selector, w, SA_E.SEL);
  const l = o.lifetime, L = SA_E.LIFE;
  encodeU64(l.softBytes, w, L + LIFE.SOFT_BYTES, 'soft byte limit');
  encodeU64(l.hardBytes, w, L + LIFE.HARD_BYTES, 'hard byte limit');
  encodeU64(l.softPackets, w, L + LIFE.SOFT_PACKETS, 'soft packet limit');
  encodeU64(l.hardPackets, w, L + LIFE.HARD_PACKETS, 'hard packet limit');
  encodeNum64(l.softAddSeconds, w, L + LIFE.SOFT_ADD, 'soft add expire');
  encodeNum64(l.hardAddSeconds, w, L + LIFE.HARD_ADD, 'hard add expire');
  encodeNum64(l.softUseSeconds, w, L + LIFE.SOFT_USE, 'soft use expire');
  encodeNum64(l.hardUseSeconds, w, L + LIFE.HARD_USE, 'hard use expire');
  if (o.oseq !== undefined) encodeNum64(o.oseq, w, SA_E.OSEQ, 'outbound sequence number');
}

export function decodeSa(w: W, b: B): XfrmSa {
  const m = w[SA_E.META], bt = w[SA_E.BITS], L = SA_E.LIFE;
  const s: XfrmSa = {
    vrf: w[SA_E.VRF], daddr: decodeAddr((bt >>> 8) & 3, w, SA_E.DADDR) ?? '', spi: w[SA_E.SPI], proto: m & 255,
    family: ((m >>> 8) & 255) as Family, saddr: decodeAddr((bt >>> 10) & 3, w, SA_E.SADDR) ?? '',
    mode: XFRM_MODES[(m >>> 16) & 255] as XfrmMode, reqid: w[SA_E.REQID], flags: w[SA_E.FLAGS],
    replayWindow: w[SA_E.REPLAY], esn: (m & (1 << 24)) !== 0, selector: decodeSel(w, SA_E.SEL),
    ifId: w[SA_E.IFID],
    lifetime: {
      softBytes: decodeU64(w, L + LIFE.SOFT_BYTES), hardBytes: decodeU64(w, L + LIFE.HARD_BYTES),
      softPackets: decodeU64(w, L + LIFE.SOFT_PACKETS), hardPackets: decodeU64(w, L + LIFE.HARD_PACKETS),
      softAddSeconds: decodeNum64(w, L + LIFE.SOFT_ADD), hardAddSeconds: decodeNum64(w, L + LIFE.HARD_ADD),
      softUseSeconds: decodeNum64(w, L + LIFE.SOFT_USE), hardUseSeconds: decodeNum64(w, L + LIFE.HARD_USE),
    },
  };
  if (bt & 1) s.aead = decodeAlgo(w, b, SA_E.AEAD);
  if (bt & 2) s.enc = decodeAlgo(w, b, SA_E.ENC);
  if (bt & 4) s.auth = decodeAlgo(w, b, SA_E.AUTH);
  if (bt & 8) {
    s.encap = { type: w[SA_E.ENCAP_TYPE], sport: w[SA_E.ENCAP_PORTS] & 0xffff, dport: w[SA_E.ENCAP_PORTS] >>> 16 };
    const oa = decodeAddr((bt >>> 12) & 3, w, SA_E.ENCAP_OA);
    if (oa !== undefined) s.encap.oa = oa;
  }
  if (bt & 16) s.mark = { value: w[SA_E.MARKV], mask: w[SA_E.MARKM] };
  const oseq = decodeNum64(w, SA_E.OSEQ);
  if (oseq > 0) s.oseq = oseq;
  return s;
}
