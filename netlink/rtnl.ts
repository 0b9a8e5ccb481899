// rtnetlink (NETLINK_ROUTE) → lfp object model, plus the request builders cmgrd needs.
//
// decodeRtnl() never throws: malformed input gives {kind:'malformed', text} naming the message
// type, its offset in the datagram and what was wrong; unknown attributes are ignored.

import type { Address, Family, Link, Neighbour, NextHop, Route, RouteType, Rule, RuleAction } from '../lib/model';
import {
  AF_BRIDGE, AF_UNSPEC, FIB_RULE_INVERT, FR_ACT_BLACKHOLE, FR_ACT_GOTO, FR_ACT_NOP,
  FR_ACT_PROHIBIT, FR_ACT_TO_TBL, FR_ACT_UNREACHABLE, FRA_DPORT_RANGE, FRA_DST, FRA_FWMARK, FRA_FWMASK, FRA_GOTO,
  FRA_DPORT_MASK, FRA_DSCP, FRA_DSCP_MASK, FRA_FLOWLABEL_MASK, FRA_IIFNAME, FRA_IP_PROTO, FRA_L3MDEV, FRA_OIFNAME,
  FRA_PRIORITY, FRA_SPORT_MASK, FRA_SPORT_RANGE, FRA_SRC, FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_PREFIXLEN, FRA_TABLE,
  FRA_TUN_ID, FRA_UID_RANGE,
  IFA_ADDRESS, IFA_FLAGS, IFA_LOCAL, IFF_RUNNING, IFF_UP, IFLA_ADDRESS, IFLA_EXT_MASK, IFLA_IFNAME, IFLA_INFO_KIND,
  IFLA_LINK, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, NDA_DST, NDA_LLADDR, NETNSA_CURRENT_NSID, NETNSA_FD, NETNSA_NSID,
  NETNSA_PID, NETNSA_TARGET_NSID, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NTF_PROXY,
  NTF_USE, NUD_NONE, RTA_DST, RTA_GATEWAY, RTA_METRICS, RTA_MULTIPATH, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY,
  RTA_TABLE, RTA_VIA, RTAX_MTU, RTEXT_FILTER_SKIP_STATS, RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH, RTM_DELNSID,
  RTM_DELROUTE, RTM_DELRULE, RTM_F_CLONED, RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETNSID, RTM_GETROUTE,
  RTM_GETRULE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWNSID, RTM_NEWROUTE, RTM_NEWRULE, RTN_ANYCAST,
  RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_NAT, RTN_PROHIBIT, RTN_THROW, RTN_UNICAST,
  RTN_UNREACHABLE, RTNL_FAMILY_IP6MR, RTNL_FAMILY_IPMR, NLA_TYPE_MASK,
} from './constants';
import {
  addrLen, afToFamily, Attrs, DecodeError, decodeControl, familyToAf, formatAddr, formatMac, maskAddr,
  MessageBuilder, need, NlMsg, parseAddr, parseAttrs,
} from './codec';

export type Op = 'new' | 'del';

export type RtnlResult =
  | { kind: 'link'; op: Op; obj: Link }
  | { kind: 'address'; op: Op; obj: Address }
  | { kind: 'route'; op: Op; obj: Route }
  | { kind: 'rule'; op: Op; obj: Rule }
  | { kind: 'neighbour'; op: Op; obj: Neighbour }
  /** nsid: NETNSA_NSID (-1 = not assigned); the others only when the kernel included them. */
  | { kind: 'nsid'; op: Op; nsid: number; pid?: number; fd?: number; targetNsid?: number; currentNsid?: number }
  /** End of a dump. errno != 0: the dump failed; interrupted: NLM_F_DUMP_INTR (redo the dump). */
  | { kind: 'done'; errno: number; interrupted: boolean; extAck?: string }
  /** NLMSG_ERROR with error 0 (acknowledgement of request `seq`). */
  | { kind: 'ack'; seq: number; requestType: number }
  /** NLMSG_ERROR: errno positive, text = extended ack message or errno description. */
  | { kind: 'error'; errno: number; name: string; text: string; extAck?: string; badAttrOffset?: number;
    seq: number; requestType: number }
  | { kind: 'ignored'; why: string }
  | { kind: 'malformed'; text: string };

export const RTM_NAMES: Record<number, string> = {
  [RTM_NEWLINK]: 'RTM_NEWLINK', [RTM_DELLINK]: 'RTM_DELLINK', [RTM_GETLINK]: 'RTM_GETLINK',
  [RTM_NEWADDR]: 'RTM_NEWADDR', [RTM_DELADDR]: 'RTM_DELADDR', [RTM_GETADDR]: 'RTM_GETADDR',
  [RTM_NEWROUTE]: 'RTM_NEWROUTE', [RTM_DELROUTE]: 'RTM_DELROUTE', [RTM_GETROUTE]: 'RTM_GETROUTE',
  [RTM_NEWNEIGH]: 'RTM_NEWNEIGH', [RTM_DELNEIGH]: 'RTM_DELNEIGH', [RTM_GETNEIGH]: 'RTM_GETNEIGH',
  [RTM_NEWRULE]: 'RTM_NEWRULE', [RTM_DELRULE]: 'RTM_DELRULE', [RTM_GETRULE]: 'RTM_GETRULE',
  [RTM_NEWNSID]: 'RTM_NEWNSID', [RTM_DELNSID]: 'RTM_DELNSID', [RTM_GETNSID]: 'RTM_GETNSID',
  2: 'NLMSG_ERROR', 3: 'NLMSG_DONE', 1: 'NLMSG_NOOP', 4: 'NLMSG_OVERRUN',
};

const IFLA_N: Record<number, string> = { 1: 'IFLA_ADDRESS', 3: 'IFLA_IFNAME', 4: 'IFLA_MTU', 5: 'IFLA_LINK', 10: 'IFLA_MASTER', 18: 'IFLA_LINKINFO' };
const IFLA_INFO_N: Record<number, string> = { 1: 'IFLA_INFO_KIND' };
const IFA_N: Record<number, string> = { 1: 'IFA_ADDRESS', 2: 'IFA_LOCAL', 8: 'IFA_FLAGS' };
const RTA_N: Record<number, string> = {
  1: 'RTA_DST', 4: 'RTA_OIF', 5: 'RTA_GATEWAY', 6: 'RTA_PRIORITY', 7: 'RTA_PREFSRC', 8: 'RTA_METRICS',
  9: 'RTA_MULTIPATH', 15: 'RTA_TABLE', 18: 'RTA_VIA',
};
const RTAX_N: Record<number, string> = { 2: 'RTAX_MTU' };
const NDA_N: Record<number, string> = { 1: 'NDA_DST', 2: 'NDA_LLADDR' };
const FRA_N: Record<number, string> = {
  1: 'FRA_DST', 2: 'FRA_SRC', 3: 'FRA_IIFNAME', 4: 'FRA_GOTO', 6: 'FRA_PRIORITY', 10: 'FRA_FWMARK',
  14: 'FRA_SUPPRESS_PREFIXLEN', 15: 'FRA_TABLE', 16: 'FRA_FWMASK', 17: 'FRA_OIFNAME', 22: 'FRA_IP_PROTO',
  23: 'FRA_SPORT_RANGE', 24: 'FRA_DPORT_RANGE', 12: 'FRA_TUN_ID', 13: 'FRA_SUPPRESS_IFGROUP', 19: 'FRA_L3MDEV',
  20: 'FRA_UID_RANGE', 25: 'FRA_DSCP', 27: 'FRA_FLOWLABEL_MASK', 28: 'FRA_SPORT_MASK', 29: 'FRA_DPORT_MASK',
  30: 'FRA_DSCP_MASK',
};
const NETNSA_N: Record<number, string> = { 1: 'NETNSA_NSID', 2: 'NETNSA_PID', 3: 'NETNSA_FD', 4: 'NETNSA_TARGET_NSID', 5: 'NETNSA_CURRENT_NSID' };

export const ROUTE_TYPES: Record<number, RouteType> = {
  [RTN_UNICAST]: 'unicast', [RTN_LOCAL]: 'local', [RTN_BROADCAST]: 'broadcast', [RTN_ANYCAST]: 'anycast',
  [RTN_MULTICAST]: 'multicast', [RTN_BLACKHOLE]: 'blackhole', [RTN_UNREACHABLE]: 'unreachable',
  [RTN_PROHIBIT]: 'prohibit', [RTN_THROW]: 'throw', [RTN_NAT]: 'nat',
};
export const ROUTE_TYPE_NUMBERS: Record<RouteType, number> = Object.fromEntries(
  Object.entries(ROUTE_TYPES).map(([k, v]) => [v, Number(k)])) as Record<RouteType, number>;

export const RULE_ACTIONS: Record<number, RuleAction> = {
  [FR_ACT_TO_TBL]: 'to_tbl', [FR_ACT_GOTO]: 'goto', [FR_ACT_NOP]: 'nop', [FR_ACT_BLACKHOLE]: 'blackhole',
  [FR_ACT_UNREACHABLE]: 'unreachable', [FR_ACT_PROHIBIT]: 'prohibit',
};

/** Route types without a nexthop (the kernel still attaches IPv6 ones to "lo": not reported). */
const NO_NEXTHOP_TYPES = new Set<RouteType>(['blackhole', 'unreachable', 'prohibit', 'throw']);

// ---------------------------------------------------------------------------------------------

/**
 * Decode one rtnetlink message into the lfp model (objects stamped with `vrf`).
 * Never throws.
 */
export function decodeRtnl(msg: NlMsg, vrf: number): RtnlResult {
  const name = RTM_NAMES[msg.type] ?? `message type ${msg.type}`;
  try {
    const ctl = decodeControl(msg);
    if (ctl) return ctl;
    switch (msg.type) {
      case RTM_NEWLINK: case RTM_DELLINK: return decodeLink(msg, vrf);
      case RTM_NEWADDR: case RTM_DELADDR: return decodeAddress(msg, vrf);
      case RTM_NEWROUTE: case RTM_DELROUTE: return decodeRoute(msg, vrf);
      case RTM_NEWRULE: case RTM_DELRULE: return decodeRule(msg, vrf);
      case RTM_NEWNEIGH: case RTM_DELNEIGH: return decodeNeigh(msg, vrf);
      case RTM_NEWNSID: case RTM_DELNSID: return decodeNsid(msg);
      default: return { kind: 'ignored', why: `unhandled rtnetlink ${name}` };
    }
  } catch (e) {
    const detail = e instanceof DecodeError ? e.message : `internal decoder error: ${(e as Error)?.message ?? String(e)}`;
    return { kind: 'malformed', text: `${name} (len ${msg.len}) at offset ${msg.offset}: ${detail}` };
  }
}

const op = (msg: NlMsg, newType: number): Op => (msg.type === newType ? 'new' : 'del');
const maxPlen = (f: Family): number => (f === 4 ? 32 : 128);

function decodeLink(msg: NlMsg, vrf: number): RtnlResult {
  const p = msg.payload;
  need(p, 16, 'ifinfomsg');
  const family = p.readUInt8(0);
  if (family !== AF_UNSPEC) {
    // AF_BRIDGE: bridge-port notifications (a port's bridge state); a DELLINK of this family
    // only means "no longer a bridge port". AF_INET6: RA/IFINFO events. Neither is a link change.
    return { kind: 'ignored', why: `link message with family ${family}${family === AF_BRIDGE ? ' (AF_BRIDGE port info)' : ''}` };
  }
  const ifindex = p.readInt32LE(4);
  const flags = p.readUInt32LE(8);
  const a = Attrs.parse(p.subarray(16), 32, IFLA_N);
  const addr = a.bytes(IFLA_ADDRESS);
  const info = a.nested(IFLA_LINKINFO, IFLA_INFO_N);
  const obj: Link = {
    vrf,
    ifindex,
    name: a.str(IFLA_IFNAME) ?? '',
    kind: info?.str(IFLA_INFO_KIND) ?? '',
    mac: addr ? formatMac(addr) : '',
    mtu: a.u32(IFLA_MTU) ?? 0,
    flags,
    adminUp: (flags & IFF_UP) !== 0,
    operUp: (flags & IFF_RUNNING) !== 0,
    master: a.u32(IFLA_MASTER) ?? 0,
    link: a.u32(IFLA_LINK) ?? 0,
    port: -1,
  };
  return { kind: 'link', op: op(msg, RTM_NEWLINK), obj };
}

function decodeAddress(msg: NlMsg, vrf: number): RtnlResult {
  const p = msg.payload;
  need(p, 8, 'ifaddrmsg');
  const f = afToFamily(p.readUInt8(0));
  if (!f) return { kind: 'ignored', why: `address of family ${p.readUInt8(0)}` };
  const plen = p.readUInt8(1);
  const a = Attrs.parse(p.subarray(8), 24, IFA_N);
  const local = a.addr(IFA_LOCAL, f);
  const address = a.addr(IFA_ADDRESS, f);
  const addr = local ?? address;
  if (addr === undefined) throw new DecodeError('no IFA_LOCAL/IFA_ADDRESS attribute');
  if (plen > maxPlen(f)) throw new DecodeError(`prefix length ${plen} too long for IPv${f}`);
  const obj: Address = {
    vrf,
    ifindex: p.readUInt32LE(4),
    family: f,
    addr,
    plen,
    scope: p.readUInt8(3),
    flags: a.u32(IFA_FLAGS) ?? p.readUInt8(2),
  };
  if (local !== undefined && address !== undefined && address !== local) obj.peer = address;
  return { kind: 'address', op: op(msg, RTM_NEWADDR), obj };
}

function decodeRoute(msg: NlMsg, vrf: number): RtnlResult {
  const p = msg.payload;
  need(p, 12, 'rtmsg');
  const af = p.readUInt8(0);
  const rtmFlags = p.readUInt32LE(8);
  const f = afToFamily(af);
  if (!f) {
    const why = af === RTNL_FAMILY_IPMR || af === RTNL_FAMILY_IP6MR
      ? 'multicast forwarding cache entry (RTNL_FAMILY_IPMR/IP6MR), not a unicast FIB route'
      : `route of family ${af}`;
    return { kind: 'ignored', why };
  }
  if (rtmFlags & RTM_F_CLONED) {
    return { kind: 'ignored', why: 'cloned route (RTM_F_CLONED): a cached/exception entry (PMTU, redirect), not a FIB route' };
  }
  const plen = p.readUInt8(1);
  if (plen > maxPlen(f)) throw new DecodeError(`rtm_dst_len ${plen} too long for IPv${f}`);
  const srcLen = p.readUInt8(2);
  if (srcLen > 0) {
    // IPv6 subtrees ("from" routes): the model has no source prefix; taking the route without it
    // would collide with (and override) the plain route of the same destination.
    return { kind: 'ignored', why: `source-specific route (rtm_src_len ${srcLen}): not representable in the model` };
  }
  const rtype = p.readUInt8(7);
  const type = ROUTE_TYPES[rtype];
  if (!type) return { kind: 'ignored', why: `route type ${rtype} (RTN_UNSPEC/RTN_XRESOLVE or unknown)` };
  if (f === 4 && route4FastOn) {
    const fast = route4Fast(msg, vrf, p, plen, type, rtmFlags);
    if (fast) return fast;
  }
  const a = Attrs.parse(p.subarray(12), 28, RTA_N);
  const dstRaw = a.bytes(RTA_DST);
  let dst: string;
  if (dstRaw) {
    need(dstRaw, addrLen(f), 'RTA_DST');
    dst = formatAddr(f, maskAddr(dstRaw.subarray(0, addrLen(f)), plen));
  } else {
    dst = f === 4 ? '0.0.0.0' : '::';
  }
  const obj: Route = {
    vrf,
    table: a.u32(RTA_TABLE) ?? p.readUInt8(4),
    family: f,
    dst,
    plen,
    tos: p.readUInt8(3),
    priority: a.u32(RTA_PRIORITY) ?? 0,
    type,
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    nexthops: [],
  };
  const prefsrc = a.addr(RTA_PREFSRC, f);
  if (prefsrc !== undefined) obj.prefsrc = prefsrc;
  const metrics = a.nested(RTA_METRICS, RTAX_N);
  const mtu = metrics?.u32(RTAX_MTU);
  if (mtu !== undefined) obj.mtu = mtu;

  const nexthops: NextHop[] = [];
  const mp = a.get(RTA_MULTIPATH);
  if (mp) {
    const d = mp.data;
    let off = 0;
    while (d.length - off >= 8) {
      const len = d.readUInt16LE(off);
      const at = mp.offset + 4 + off;
      if (len < 8 || len > d.length - off) {
        throw new DecodeError(`RTA_MULTIPATH: rtnexthop at offset ${at} has rtnh_len ${len} (${d.length - off} bytes left)`, at);
      }
      const nha = new Attrs(parseAttrs(d.subarray(off + 8, off + len), at + 8), RTA_N);
      const nh: NextHop = {
        ifindex: d.readInt32LE(off + 4),
        weight: d.readUInt8(off + 3) + 1,
        flags: d.readUInt8(off + 2),
      };
      const gw = nexthopGateway(nha, f);
      if (gw !== undefined) nh.gw = gw;
      nexthops.push(nh);
      off += (len + 3) & ~3;
    }
  } else {
    const oif = a.u32(RTA_OIF);
    const gw = nexthopGateway(a, f);
    if (oif !== undefined || gw !== undefined) {
      const nh: NextHop = { ifindex: oif ?? 0, weight: 1, flags: rtmFlags & 0xff };
      if (gw !== undefined) nh.gw = gw;
      nexthops.push(nh);
    }
  }
  if (!NO_NEXTHOP_TYPES.has(type)) obj.nexthops = nexthops;
  return { kind: 'route', op: op(msg, RTM_NEWROUTE), obj };
}

// ---- IPv4 route fast path (a full table arrives as hundreds of thousands of these) ----
// The attributes are located in one pass with plain reads (no attribute objects, no subarrays), and
// the single next hop list of a route is shared with the previous route that had the same one (a
// bulk of routes through one gateway keeps one NextHop object, not one per route; nobody mutates a
// decoded route's next hops). Anything unusual (RTA_MULTIPATH, RTA_VIA, RTA_METRICS, an attribute of
// an unexpected size, a framing problem) returns undefined: the general decoder then produces the
// result or the error text.

let route4FastOn = true;
/** Tests: turn the IPv4 route fast path off to compare it with the general decoder. */
export function setRoute4FastPath(on: boolean): void { route4FastOn = on; }

const attrAt = new Int32Array(32);
const attrLen = new Int32Array(32);
let lastNh: NextHop[] | null = null;
let lastOif = -1, lastGw = -1, lastFlags = -1;

function route4Fast(msg: NlMsg, vrf: number, p: Buffer, plen: number, type: RouteType, rtmFlags: number): RtnlResult | undefined {
  attrAt.fill(-1);
  const end = p.length;
  let off = 12;
  while (end - off >= 4) {
    const len = p[off] | (p[off + 1] << 8);
    const t = (p[off + 2] | (p[off + 3] << 8)) & NLA_TYPE_MASK;
    if (len < 4 || len > end - off) return undefined;
    if (t < 32) { attrAt[t] = off + 4; attrLen[t] = len - 4; }
    off += (len + 3) & ~3;
  }
  if (attrAt[RTA_MULTIPATH] >= 0 || attrAt[RTA_VIA] >= 0 || attrAt[RTA_METRICS] >= 0) return undefined;
  for (const t of [RTA_DST, RTA_TABLE, RTA_PRIORITY, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC]) {
    if (attrAt[t] >= 0 && attrLen[t] < 4) return undefined;
  }
  let dst = '0.0.0.0';
  const d = attrAt[RTA_DST];
  if (d >= 0) {
    const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
    const v = (((p[d] << 24) | (p[d + 1] << 16) | (p[d + 2] << 8) | p[d + 3]) & mask) >>> 0;
    dst = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const u32 = (t: number): number => p.readUInt32LE(attrAt[t]);
  const obj: Route = {
    vrf,
    table: attrAt[RTA_TABLE] >= 0 ? u32(RTA_TABLE) : p[4],
    family: 4,
    dst,
    plen,
    tos: p[3],
    priority: attrAt[RTA_PRIORITY] >= 0 ? u32(RTA_PRIORITY) : 0,
    type,
    protocol: p[5],
    scope: p[6],
    nexthops: [],
  };
  const ps = attrAt[RTA_PREFSRC];
  if (ps >= 0) obj.prefsrc = `${p[ps]}.${p[ps + 1]}.${p[ps + 2]}.${p[ps + 3]}`;
  if (!NO_NEXTHOP_TYPES.has(type)) {
    const o = attrAt[RTA_OIF], g = attrAt[RTA_GATEWAY];
    if (o >= 0 || g >= 0) {
      const oif = o >= 0 ? p.readUInt32LE(o) : 0;
      const gw = g >= 0 ? p.readUInt32BE(g) : -1;
      const flags = rtmFlags & 0xff;
      if (lastNh === null || oif !== lastOif || gw !== lastGw || flags !== lastFlags) {
        const nh: NextHop = { ifindex: oif, weight: 1, flags };
        if (gw >= 0) nh.gw = `${p[g]}.${p[g + 1]}.${p[g + 2]}.${p[g + 3]}`;
        lastNh = [nh];
        lastOif = oif; lastGw = gw; lastFlags = flags;
      }
      obj.nexthops = lastNh;
    }
  }
  return { kind: 'route', op: op(msg, RTM_NEWROUTE), obj };
}

/** RTA_GATEWAY (same family as the route) or RTA_VIA (struct rtvia: u16 family + address). */
function nexthopGateway(a: Attrs, f: Family): string | undefined {
  const gw = a.addr(RTA_GATEWAY, f);
  if (gw !== undefined) return gw;
  const via = a.bytes(RTA_VIA, 2);
  if (!via) return undefined;
  const vf = afToFamily(via.readUInt16LE(0));
  if (!vf) throw new DecodeError(`RTA_VIA: unsupported address family ${via.readUInt16LE(0)}`);
  need(via, 2 + addrLen(vf), 'RTA_VIA');
  return formatAddr(vf, via, 2);
}

function decodeRule(msg: NlMsg, vrf: number): RtnlResult {
  const p = msg.payload;
  need(p, 12, 'fib_rule_hdr');
  const f = afToFamily(p.readUInt8(0));
  if (!f) return { kind: 'ignored', why: `rule of family ${p.readUInt8(0)} (not IPv4/IPv6)` };
  const actionNum = p.readUInt8(7);
  const action = RULE_ACTIONS[actionNum];
  if (!action) return { kind: 'ignored', why: `rule with unsupported action ${actionNum}` };
  const dstLen = p.readUInt8(1);
  const srcLen = p.readUInt8(2);
  if (dstLen > maxPlen(f) || srcLen > maxPlen(f)) throw new DecodeError(`prefix length ${Math.max(dstLen, srcLen)} too long for IPv${f}`);
  const flags = p.readUInt32LE(8);
  const a = Attrs.parse(p.subarray(12), 28, FRA_N);
  const unsupported = unsupportedRuleSelector(a);
  if (unsupported) return { kind: 'ignored', why: `rule with ${unsupported}: not representable in the model` };
  let tos = p.readUInt8(3);
  const dscp = a.u8(FRA_DSCP);
  if (dscp !== undefined) tos = (dscp & 0x3f) << 2; // FRA_DSCP (full mask) is the tos match in DSCP form
  const obj: Rule = {
    vrf,
    family: f,
    priority: a.u32(FRA_PRIORITY) ?? 0,
    table: a.u32(FRA_TABLE) ?? p.readUInt8(4),
    action,
    srcLen,
    dstLen,
    fwmark: a.u32(FRA_FWMARK) ?? 0,
    fwmask: a.u32(FRA_FWMASK) ?? 0,
    tos,
    invert: (flags & FIB_RULE_INVERT) !== 0,
    ipproto: a.u8(FRA_IP_PROTO) ?? 0,
    suppressPrefixlen: a.s32(FRA_SUPPRESS_PREFIXLEN) ?? -1,
    gotoTarget: a.u32(FRA_GOTO) ?? 0,
  };
  const src = a.addr(FRA_SRC, f);
  if (src !== undefined) obj.src = formatAddr(f, maskAddr(parseAddr(f, src), srcLen)); // canonical + masked
  const dst = a.addr(FRA_DST, f);
  if (dst !== undefined) obj.dst = formatAddr(f, maskAddr(parseAddr(f, dst), dstLen));
  const iif = a.str(FRA_IIFNAME);
  if (iif !== undefined) obj.iif = iif;
  const oif = a.str(FRA_OIFNAME);
  if (oif !== undefined) obj.oif = oif;
  const sp = a.bytes(FRA_SPORT_RANGE, 4);
  if (sp) obj.sport = [sp.readUInt16LE(0), sp.readUInt16LE(2)];
  const dp = a.bytes(FRA_DPORT_RANGE, 4);
  if (dp) obj.dport = [dp.readUInt16LE(0), dp.readUInt16LE(2)];
  return { kind: 'rule', op: op(msg, RTM_NEWRULE), obj };
}

/**
 * Rule selectors the model has no field for. Decoding such a rule without them would make it
 * match more traffic than it does in the kernel, so these rules are ignored instead.
 */
function unsupportedRuleSelector(a: Attrs): string | undefined {
  if (a.u8(FRA_L3MDEV)) return 'l3mdev';
  if (a.has(FRA_UID_RANGE)) return 'uidrange';
  if (a.has(FRA_TUN_ID) && a.u64(FRA_TUN_ID) !== 0n) return 'tun_id';
  const ifgroup = a.s32(FRA_SUPPRESS_IFGROUP);
  if (ifgroup !== undefined && ifgroup !== -1) return 'suppress_ifgroup';
  if (a.u32(FRA_FLOWLABEL_MASK)) return 'flowlabel';
  const sm = a.u16(FRA_SPORT_MASK);
  if (sm !== undefined && sm !== 0xffff) return 'sport mask';
  const dm = a.u16(FRA_DPORT_MASK);
  if (dm !== undefined && dm !== 0xffff) return 'dport mask';
  const dscpMask = a.u8(FRA_DSCP_MASK);
  if (dscpMask !== undefined && (dscpMask & 0x3f) !== 0x3f) return 'dscp mask';
  return undefined;
}

function decodeNeigh(msg: NlMsg, vrf: number): RtnlResult {
  const p = msg.payload;
  need(p, 12, 'ndmsg');
  const af = p.readUInt8(0);
  const f = afToFamily(af);
  if (!f) {
    return { kind: 'ignored', why: af === AF_BRIDGE ? 'bridge FDB entry (AF_BRIDGE)' : `neighbour of family ${af}` };
  }
  const flags = p.readUInt8(10);
  if (flags & NTF_PROXY) {
    return { kind: 'ignored', why: 'proxy neighbour entry (NTF_PROXY): answered for, not a next hop' };
  }
  const a = Attrs.parse(p.subarray(12), 28, NDA_N);
  const addr = a.addr(NDA_DST, f);
  if (addr === undefined) throw new DecodeError('no NDA_DST attribute');
  const obj: Neighbour = {
    vrf,
    ifindex: p.readInt32LE(4),
    family: f,
    addr,
    state: p.readUInt16LE(8),
    flags,
  };
  const ll = a.bytes(NDA_LLADDR);
  if (ll && ll.length > 0) obj.lladdr = formatMac(ll);
  return { kind: 'neighbour', op: op(msg, RTM_NEWNEIGH), obj };
}

function decodeNsid(msg: NlMsg): RtnlResult {
  const p = msg.payload;
  need(p, 1, 'rtgenmsg');
  const a = Attrs.parse(p.subarray(4), 20, NETNSA_N);
  const nsid = a.s32(NETNSA_NSID);
  if (nsid === undefined) throw new DecodeError('no NETNSA_NSID attribute');
  const r: RtnlResult & { kind: 'nsid' } = { kind: 'nsid', op: op(msg, RTM_NEWNSID), nsid };
  const pid = a.u32(NETNSA_PID);
  if (pid !== undefined) r.pid = pid;
  const fd = a.u32(NETNSA_FD);
  if (fd !== undefined) r.fd = fd;
  const target = a.s32(NETNSA_TARGET_NSID);
  if (target !== undefined) r.targetNsid = target;
  const current = a.s32(NETNSA_CURRENT_NSID);
  if (current !== undefined) r.currentNsid = current;
  return r;
}

// ---------------------------------------------------------------------------------------------
// builders

export type DumpType = typeof RTM_GETLINK | typeof RTM_GETADDR | typeof RTM_GETROUTE | typeof RTM_GETRULE
  | typeof RTM_GETNEIGH | typeof RTM_GETNSID;

/**
 * Dump request (NLM_F_REQUEST | NLM_F_DUMP) with the family-specific header the kernel expects
 * (ifinfomsg, ifaddrmsg, rtmsg, fib_rule_hdr, ndmsg, rtgenmsg), zeroed except the family.
 * `af` is an address family number: AF_UNSPEC (all), AF_INET, AF_INET6 (not the model's 4/6).
 * GETLINK adds IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS (no statistics blobs).
 */
export function dumpRequest(type: DumpType, af: number, seq: number): Buffer {
  const b = new MessageBuilder(type, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const hdrSize: Record<number, number> = {
    [RTM_GETLINK]: 16, [RTM_GETADDR]: 8, [RTM_GETROUTE]: 12, [RTM_GETRULE]: 12, [RTM_GETNEIGH]: 12, [RTM_GETNSID]: 1,
  };
  const size = hdrSize[type];
  if (size === undefined) throw new Error(`dumpRequest: unsupported message type ${type}`);
  const hdr = Buffer.alloc(size);
  hdr.writeUInt8(af, 0);
  b.fixed(hdr);
  if (type === RTM_GETLINK) b.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return b.build();
}

/** RTM_GETNSID with NETNSA_FD: "which nsid does the namespace behind `fd` have here?" */
export function getNsidByFd(fd: number, seq: number): Buffer {
  return new MessageBuilder(RTM_GETNSID, NLM_F_REQUEST, seq)
    .fixed(Buffer.from([AF_UNSPEC]))
    .u32(NETNSA_FD, fd)
    .build();
}

export interface NeighUseOptions {
  /** also create the entry when missing (NLM_F_CREATE); default false (ENOENT when missing) */
  create?: boolean;
  /** request an ACK (NLM_F_ACK); default true */
  ack?: boolean;
}

/**
 * RTM_NEWNEIGH with NTF_USE: make the kernel treat the neighbour as used (a STALE entry goes to
 * DELAY/PROBE and gets re-confirmed) without touching its state or lladdr. Sent on the socket of
 * the neighbour's namespace (no vrf here).
 */
export function neighUse(ifindex: number, family: Family, addr: string, seq: number, opts: NeighUseOptions = {}): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(familyToAf(family), 0);
  hdr.writeInt32LE(ifindex, 4);
  hdr.writeUInt16LE(NUD_NONE, 8);
  hdr.writeUInt8(NTF_USE, 10);
  let flags = NLM_F_REQUEST | NLM_F_REPLACE;
  if (opts.ack ?? true) flags |= NLM_F_ACK;
  if (opts.create) flags |= NLM_F_CREATE;
  return new MessageBuilder(RTM_NEWNEIGH, flags, seq).fixed(hdr).addr(NDA_DST, family, addr).build();
}

// ---------------------------------------------------------------------------------------------
// encoders for the model objects (tests, round trips, tools). Fields the model does not carry
// (cache info, route preference, ...) are left out; decode(encode(x)) deep-equals x.

function rtFlags(op: Op): number {
  return op === 'new' ? NLM_F_REQUEST | NLM_F_CREATE : NLM_F_REQUEST;
}

export function encodeLink(l: Link, op: Op = 'new', seq = 0): Buffer {
  const hdr = Buffer.alloc(16);
  hdr.writeInt32LE(l.ifindex, 4);
  hdr.writeUInt32LE(l.flags >>> 0, 8);
  const b = new MessageBuilder(op === 'new' ? RTM_NEWLINK : RTM_DELLINK, rtFlags(op), seq).fixed(hdr).str(IFLA_IFNAME, l.name);
  if (l.mac !== '') b.attr(IFLA_ADDRESS, Buffer.from(l.mac.split(':').map(h => parseInt(h, 16))));
  b.u32(IFLA_MTU, l.mtu);
  if (l.master) b.u32(IFLA_MASTER, l.master);
  if (l.link) b.u32(IFLA_LINK, l.link);
  if (l.kind !== '') b.nested(IFLA_LINKINFO, n => n.str(IFLA_INFO_KIND, l.kind));
  return b.build();
}

export function encodeAddress(x: Address, op: Op = 'new', seq = 0): Buffer {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt8(familyToAf(x.family), 0);
  hdr.writeUInt8(x.plen, 1);
  hdr.writeUInt8(x.flags & 0xff, 2);
  hdr.writeUInt8(x.scope, 3);
  hdr.writeUInt32LE(x.ifindex >>> 0, 4);
  return new MessageBuilder(op === 'new' ? RTM_NEWADDR : RTM_DELADDR, rtFlags(op), seq).fixed(hdr)
    .addr(IFA_LOCAL, x.family, x.addr)
    .addr(IFA_ADDRESS, x.family, x.peer ?? x.addr)
    .u32(IFA_FLAGS, x.flags)
    .build();
}

export function encodeRoute(r: Route, op: Op = 'new', seq = 0): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(familyToAf(r.family), 0);
  hdr.writeUInt8(r.plen, 1);
  hdr.writeUInt8(r.tos, 3);
  hdr.writeUInt8(r.table > 255 ? 252 : r.table, 4);
  hdr.writeUInt8(r.protocol, 5);
  hdr.writeUInt8(r.scope, 6);
  hdr.writeUInt8(ROUTE_TYPE_NUMBERS[r.type], 7);
  if (r.nexthops.length === 1) hdr.writeUInt32LE(r.nexthops[0].flags & 0xff, 8);
  const b = new MessageBuilder(op === 'new' ? RTM_NEWROUTE : RTM_DELROUTE, rtFlags(op), seq).fixed(hdr)
    .u32(RTA_TABLE, r.table);
  if (r.plen > 0 || r.dst !== (r.family === 4 ? '0.0.0.0' : '::')) b.addr(RTA_DST, r.family, r.dst);
  if (r.priority) b.u32(RTA_PRIORITY, r.priority);
  if (r.prefsrc !== undefined) b.addr(RTA_PREFSRC, r.family, r.prefsrc);
  if (r.mtu !== undefined) { const mtu = r.mtu; b.nested(RTA_METRICS, n => n.u32(RTAX_MTU, mtu)); }
  const gwAttr = (m: MessageBuilder, gw: string): void => {
    if (gw.includes(':') === (r.family === 6)) m.addr(RTA_GATEWAY, r.family, gw);
    else {
      const vf: Family = gw.includes(':') ? 6 : 4;
      const via = Buffer.alloc(2 + addrLen(vf));
      via.writeUInt16LE(familyToAf(vf), 0);
      parseAddr(vf, gw).copy(via, 2);
      m.attr(RTA_VIA, via);
    }
  };
  if (r.nexthops.length === 1) {
    const nh = r.nexthops[0];
    if (nh.ifindex) b.u32(RTA_OIF, nh.ifindex);
    if (nh.gw !== undefined) gwAttr(b, nh.gw);
  } else if (r.nexthops.length > 1) {
    const parts: Buffer[] = [];
    for (const nh of r.nexthops) {
      const inner = new MessageBuilder(0, 0, 0);
      if (nh.gw !== undefined) gwAttr(inner, nh.gw);
      const attrs = inner.body();
      const rtnh = Buffer.alloc(8);
      rtnh.writeUInt16LE(8 + attrs.length, 0);
      rtnh.writeUInt8(nh.flags & 0xff, 2);
      rtnh.writeUInt8((nh.weight - 1) & 0xff, 3);
      rtnh.writeInt32LE(nh.ifindex, 4);
      parts.push(rtnh, attrs);
    }
    b.attr(RTA_MULTIPATH, Buffer.concat(parts));
  }
  return b.build();
}

export function encodeRule(r: Rule, op: Op = 'new', seq = 0): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(familyToAf(r.family), 0);
  hdr.writeUInt8(r.dstLen, 1);
  hdr.writeUInt8(r.srcLen, 2);
  hdr.writeUInt8(r.tos, 3);
  hdr.writeUInt8(r.table > 255 ? 252 : r.table, 4);
  const act = Number(Object.entries(RULE_ACTIONS).find(([, v]) => v === r.action)?.[0] ?? 0);
  hdr.writeUInt8(act, 7);
  hdr.writeUInt32LE(r.invert ? FIB_RULE_INVERT : 0, 8);
  const b = new MessageBuilder(op === 'new' ? RTM_NEWRULE : RTM_DELRULE, rtFlags(op), seq).fixed(hdr)
    .u32(FRA_TABLE, r.table);
  if (r.priority) b.u32(FRA_PRIORITY, r.priority);
  if (r.src !== undefined) b.addr(FRA_SRC, r.family, r.src);
  if (r.dst !== undefined) b.addr(FRA_DST, r.family, r.dst);
  if (r.iif !== undefined) b.str(FRA_IIFNAME, r.iif);
  if (r.oif !== undefined) b.str(FRA_OIFNAME, r.oif);
  if (r.fwmark) b.u32(FRA_FWMARK, r.fwmark);
  if (r.fwmask) b.u32(FRA_FWMASK, r.fwmask);
  if (r.ipproto) b.u8(FRA_IP_PROTO, r.ipproto);
  const range = (t: number, v: [number, number]): void => {
    const d = Buffer.alloc(4); d.writeUInt16LE(v[0], 0); d.writeUInt16LE(v[1], 2); b.attr(t, d);
  };
  if (r.sport) range(FRA_SPORT_RANGE, r.sport);
  if (r.dport) range(FRA_DPORT_RANGE, r.dport);
  if (r.suppressPrefixlen !== -1) b.s32(FRA_SUPPRESS_PREFIXLEN, r.suppressPrefixlen);
  if (r.gotoTarget) b.u32(FRA_GOTO, r.gotoTarget);
  return b.build();
}

export function encodeNeighbour(n: Neighbour, op: Op = 'new', seq = 0): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt8(familyToAf(n.family), 0);
  hdr.writeInt32LE(n.ifindex, 4);
  hdr.writeUInt16LE(n.state, 8);
  hdr.writeUInt8(n.flags & 0xff, 10);
  const b = new MessageBuilder(op === 'new' ? RTM_NEWNEIGH : RTM_DELNEIGH, rtFlags(op), seq).fixed(hdr)
    .addr(NDA_DST, n.family, n.addr);
  if (n.lladdr !== undefined) b.attr(NDA_LLADDR, Buffer.from(n.lladdr.split(':').map(h => parseInt(h, 16))));
  return b.build();
}
