// The lfp object model: what cmgrd builds from netlink, what FPC carries, what the shared-memory
// writer stores and what `fpctl show --json` prints. Defined here once.
//
// Conventions: addresses are canonical strings ("10.0.0.1", "2001:db8::1"), MACs lower-case
// "aa:bb:cc:dd:ee:ff", family is 4 or 6, vrf 0 is the control-plane netns, other VRFs are nsids.

export type Family = 4 | 6;

export interface Vrf {
  vrf: number;
  nsid: number; // -1 for VRF 0
  name: string; // netns name ("" when unknown)
}

export interface Link {
  vrf: number;
  ifindex: number;
  name: string;
  kind: string; // IFLA_INFO_KIND ("veth", "tun", ...) or "" (loopback, physical)
  mac: string; // "" when the link has no L2 address
  mtu: number;
  flags: number; // IFF_* bits as in ifinfomsg.ifi_flags
  adminUp: boolean; // IFF_UP
  operUp: boolean; // IFF_RUNNING / IFF_LOWER_UP
  master: number; // 0 when none
  link: number; // IFLA_LINK, 0 when none
  port: number; // fast-path port id owning this link, -1 for a Linux-only interface
}

export interface Address {
  vrf: number;
  ifindex: number;
  family: Family;
  addr: string;
  plen: number;
  peer?: string; // IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point)
  scope: number; // RT_SCOPE_*
  flags: number; // IFA_F_*
}

export type RouteType =
  | 'unicast' | 'local' | 'broadcast' | 'anycast' | 'multicast'
  | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | 'nat';

export interface NextHop {
  gw?: string; // absent for a connected (device) route
  ifindex: number; // 0 when the route has no device (blackhole, ...)
  weight: number; // 1..256 (rtnh_hops + 1)
  flags: number; // RTNH_F_* (onlink, dead, linkdown)
}

export interface Route {
  vrf: number;
  table: number; // RT_TABLE_* or user table id (u32)
  family: Family;
  dst: string; // network address, masked
  plen: number;
  tos: number;
  priority: number; // metric
  type: RouteType;
  protocol: number; // RTPROT_*
  scope: number; // RT_SCOPE_*
  prefsrc?: string;
  mtu?: number; // RTAX_MTU
  nexthops: NextHop[]; // empty for blackhole/unreachable/prohibit/throw
}

export type RuleAction = 'to_tbl' | 'goto' | 'nop' | 'blackhole' | 'unreachable' | 'prohibit';

export interface Rule {
  vrf: number;
  family: Family;
  priority: number;
  table: number;
  action: RuleAction;
  src?: string; srcLen: number;
  dst?: string; dstLen: number;
  iif?: string; oif?: string;
  fwmark: number; fwmask: number;
  tos: number;
  invert: boolean; // "not"
  ipproto: number; // 0 = any
  sport?: [number, number]; dport?: [number, number];
  suppressPrefixlen: number; // -1 when unset
  gotoTarget: number; // 0 when unset
}

export interface Neighbour {
  vrf: number;
  ifindex: number;
  family: Family;
  addr: string;
  lladdr?: string;
  state: number; // NUD_* bits
  flags: number; // NTF_* bits
}

export interface XfrmSelector {
  family: Family;
  saddr: string; daddr: string;
  splen: number; dplen: number;
  sport: number; sportMask: number;
  dport: number; dportMask: number;
  proto: number; // 0 = any
  ifindex: number;
}

export interface XfrmMark { value: number; mask: number }

export type XfrmMode = 'transport' | 'tunnel' | 'beet' | 'ro' | 'in_trigger';
export type XfrmDir = 'in' | 'out' | 'fwd';

export interface XfrmTemplate {
  family: Family;
  daddr: string; saddr: string; // tunnel endpoints ("" / "::" for transport)
  spi: number;
  proto: number; // IPPROTO_ESP 50, AH 51, COMP 108
  mode: XfrmMode;
  reqid: number;
  optional: boolean;
  share: number;
  aalgos: number; ealgos: number; calgos: number;
}

export interface XfrmPolicy {
  vrf: number;
  index: number;
  dir: XfrmDir;
  priority: number;
  action: 'allow' | 'block';
  flags: number;
  selector: XfrmSelector;
  mark?: XfrmMark;
  ifId: number; // 0 when unset
  tmpls: XfrmTemplate[];
}

export interface XfrmAlgo {
  name: string; // kernel name: "rfc4106(gcm(aes))", "cbc(aes)", "hmac(sha256)", "ecb(cipher_null)"
  key: string; // hex; never printed by fpctl unless asked
  icvBits?: number; // AEAD ICV length
  truncBits?: number; // auth truncation length
}

export interface XfrmEncap {
  type: number; // UDP_ENCAP_ESPINUDP = 2
  sport: number;
  dport: number;
  oa?: string;
}

export interface XfrmLifetime {
  softBytes: string; hardBytes: string; // decimal strings (u64, "18446744073709551615" = inf)
  softPackets: string; hardPackets: string;
  softAddSeconds: number; hardAddSeconds: number;
  softUseSeconds: number; hardUseSeconds: number;
}

export interface XfrmSa {
  vrf: number;
  daddr: string;
  spi: number; // host order u32
  proto: number;
  family: Family;
  saddr: string;
  mode: XfrmMode;
  reqid: number;
  flags: number; // XFRM_STATE_*
  replayWindow: number; // bits (from the ESN replay state when present)
  esn: boolean;
  selector: XfrmSelector;
  aead?: XfrmAlgo;
  enc?: XfrmAlgo;
  auth?: XfrmAlgo;
  encap?: XfrmEncap;
  mark?: XfrmMark;
  ifId: number;
  lifetime: XfrmLifetime;
  /** The kernel's last outbound sequence number (ESN: oseq_hi * 2^32 + oseq) when the SA was read (dump, NEWSA,
   *  UPDSA), absent when 0. The fast path numbers above it when it takes the SA (fastpath/ipsec.ts load). */
  oseq?: number;
}

export type ObjectKind = 'vrf' | 'link' | 'address' | 'route' | 'rule' | 'neighbour' | 'policy' | 'sa';

export type AnyObject =
  | { kind: 'vrf'; obj: Vrf }
  | { kind: 'link'; obj: Link }
  | { kind: 'address'; obj: Address }
  | { kind: 'route'; obj: Route }
  | { kind: 'rule'; obj: Rule }
  | { kind: 'neighbour'; obj: Neighbour }
  | { kind: 'policy'; obj: XfrmPolicy }
  | { kind: 'sa'; obj: XfrmSa };

/** Canonical identity of an object inside its kind (used by caches and the shm writer). */
export function objectKey(o: AnyObject): string {
  switch (o.kind) {
    case 'vrf': return `${o.obj.vrf}`;
    case 'link': return `${o.obj.vrf}/${o.obj.ifindex}`;
    case 'address': return `${o.obj.vrf}/${o.obj.ifindex}/${o.obj.addr}/${o.obj.plen}`;
    case 'route': return routeKey(o.obj);
    case 'rule': return ruleKey(o.obj);
    case 'neighbour': return `${o.obj.vrf}/${o.obj.ifindex}/${o.obj.addr}`;
    case 'policy': return `${o.obj.vrf}/${o.obj.index}`;
    case 'sa': return `${o.obj.vrf}/${o.obj.daddr}/${o.obj.spi}/${o.obj.proto}`;
  }
}

/**
 * IPv4 routes are identified by (table, prefix, tos, metric). IPv6 keeps several routes with the same
 * prefix and metric when they have no gateway (fe80::/64 on every link, ff00::/8 in table local):
 * there the device is part of the identity. IPv6 routes through gateways with the same prefix and
 * metric are one multipath route.
 */
export function routeKey(r: Route): string {
  const base = `${r.vrf}/${r.table}/${r.dst}/${r.plen}/${r.tos}/${r.priority}`;
  if (r.family === 6 && r.nexthops.length === 1 && r.nexthops[0].gw === undefined) return `${base}/dev${r.nexthops[0].ifindex}`;
  return base;
}

export function ruleKey(r: Rule): string {
  return [r.vrf, r.family, r.priority, r.table, r.action, r.src ?? '', r.srcLen, r.dst ?? '', r.dstLen,
    r.iif ?? '', r.oif ?? '', r.fwmark, r.fwmask, r.tos, r.invert ? 1 : 0, r.ipproto,
    r.sport ? r.sport.join('-') : '', r.dport ? r.dport.join('-') : '', r.suppressPrefixlen, r.gotoTarget].join('/');
}

/** The model type of each kind. */
export interface ObjectOf {
  vrf: Vrf; link: Link; address: Address; route: Route; rule: Rule; neighbour: Neighbour; policy: XfrmPolicy; sa: XfrmSa;
}
