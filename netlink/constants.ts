// Kernel netlink constants used by lfp, named as in the Linux UAPI headers
// (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, if.h, neighbour.h, fib_rules.h,
// net_namespace.h, xfrm.h, in.h, socket.h). One place; values checked against the headers of
// linux-libc-dev 6.1 (plus the few newer values marked "newer than 6.1 headers").
/* eslint-disable @typescript-eslint/naming-convention */

// ---- socket families / netlink protocols ----
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_MPLS = 28;
export const RTNL_FAMILY_IPMR = 128;
export const RTNL_FAMILY_IP6MR = 129;

export const NETLINK_ROUTE = 0;
export const NETLINK_XFRM = 6;
export const SOL_NETLINK = 270;
// setsockopt(SOL_NETLINK, ...)
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_PKTINFO = 3;
export const NETLINK_BROADCAST_ERROR = 4;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_LISTEN_ALL_NSID = 8;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

// ---- netlink header ----
export const NLMSG_ALIGNTO = 4;
export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
export const NLM_F_NONREC = 0x100;
export const NLM_F_BULK = 0x200;
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export const NLA_F_NESTED = 1 << 15;
export const NLA_F_NET_BYTEORDER = 1 << 14;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const NLMSGERR_ATTR_UNUSED = 0;
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_POLICY = 4;
export const NLMSGERR_ATTR_MISS_TYPE = 5;
export const NLMSGERR_ATTR_MISS_NEST = 6;

// ---- rtnetlink message types ----
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;
export const RTM_NEWPREFIX = 52;
export const RTM_GETMULTICAST = 58;
export const RTM_GETANYCAST = 62;
export const RTM_NEWNETCONF = 80;
export const RTM_DELNETCONF = 81;
export const RTM_GETNETCONF = 82;
export const RTM_NEWNSID = 88;
export const RTM_DELNSID = 89;
export const RTM_GETNSID = 90;
export const RTM_NEWNEXTHOP = 104;
export const RTM_DELNEXTHOP = 105;
export const RTM_GETNEXTHOP = 106;

// ---- rtnetlink multicast groups (numbers, for NETLINK_ADD_MEMBERSHIP / bind mask 1 << (g-1)) ----
export const RTNLGRP_NONE = 0;
export const RTNLGRP_LINK = 1;
export const RTNLGRP_NOTIFY = 2;
export const RTNLGRP_NEIGH = 3;
export const RTNLGRP_TC = 4;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_MROUTE = 6;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV4_RULE = 8;
export const RTNLGRP_IPV6_IFADDR = 9;
export const RTNLGRP_IPV6_MROUTE = 10;
export const RTNLGRP_IPV6_ROUTE = 11;
export const RTNLGRP_IPV6_IFINFO = 12;
export const RTNLGRP_IPV6_PREFIX = 18;
export const RTNLGRP_IPV6_RULE = 19;
export const RTNLGRP_ND_USEROPT = 20;
export const RTNLGRP_IPV4_NETCONF = 24;
export const RTNLGRP_IPV6_NETCONF = 25;
export const RTNLGRP_MDB = 26;
export const RTNLGRP_MPLS_ROUTE = 27;
export const RTNLGRP_NSID = 28;
export const RTNLGRP_MPLS_NETCONF = 29;
export const RTNLGRP_IPV4_MROUTE_R = 30;
export const RTNLGRP_IPV6_MROUTE_R = 31;
export const RTNLGRP_NEXTHOP = 32;
export const RTNLGRP_BRVLAN = 33;
export const RTNLGRP_MCTP_IFADDR = 34;
export const RTNLGRP_TUNNEL = 35;
export const RTNLGRP_STATS = 36;

export const RTEXT_FILTER_VF = 1 << 0;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

// ---- links: ifinfomsg + IFLA_* ----
export const IFLA_UNSPEC = 0;
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_QDISC = 6;
export const IFLA_STATS = 7;
export const IFLA_MASTER = 10;
export const IFLA_WIRELESS = 11;
export const IFLA_PROTINFO = 12;
export const IFLA_TXQLEN = 13;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKMODE = 17;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
export const IFLA_STATS64 = 23;
export const IFLA_AF_SPEC = 26;
export const IFLA_GROUP = 27;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
export const IFLA_CARRIER = 33;
export const IFLA_LINK_NETNSID = 37;
export const IFLA_EVENT = 44;
export const IFLA_NEW_NETNSID = 45;
export const IFLA_TARGET_NETNSID = 46;
export const IFLA_NEW_IFINDEX = 49;
export const IFLA_ALT_IFNAME = 53;
export const IFLA_PERM_ADDRESS = 54;

export const IFLA_INFO_UNSPEC = 0;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_XSTATS = 3;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;

export const IFF_UP = 1 << 0;
export const IFF_BROADCAST = 1 << 1;
export const IFF_DEBUG = 1 << 2;
export const IFF_LOOPBACK = 1 << 3;
export const IFF_POINTOPOINT = 1 << 4;
export const IFF_NOTRAILERS = 1 << 5;
export const IFF_RUNNING = 1 << 6;
export const IFF_NOARP = 1 << 7;
export const IFF_PROMISC = 1 << 8;
export const IFF_ALLMULTI = 1 << 9;
export const IFF_MASTER = 1 << 10;
export const IFF_SLAVE = 1 << 11;
export const IFF_MULTICAST = 1 << 12;
export const IFF_PORTSEL = 1 << 13;
export const IFF_AUTOMEDIA = 1 << 14;
export const IFF_DYNAMIC = 1 << 15;
export const IFF_LOWER_UP = 1 << 16;
export const IFF_DORMANT = 1 << 17;
export const IFF_ECHO = 1 << 18;

// ---- addresses: ifaddrmsg + IFA_* ----
export const IFA_UNSPEC = 0;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_ANYCAST = 5;
export const IFA_CACHEINFO = 6;
export const IFA_MULTICAST = 7;
export const IFA_FLAGS = 8;
export const IFA_RT_PRIORITY = 9;
export const IFA_TARGET_NETNSID = 10;
export const IFA_PROTO = 11;

export const IFA_F_SECONDARY = 0x01;
export const IFA_F_TEMPORARY = IFA_F_SECONDARY;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;
export const IFA_F_MCAUTOJOIN = 0x400;
export const IFA_F_STABLE_PRIVACY = 0x800;

// ---- routes: rtmsg + RTA_* ----
export const RTA_UNSPEC = 0;
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_IIF = 3;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_MULTIPATH = 9;
export const RTA_PROTOINFO = 10;
export const RTA_FLOW = 11;
export const RTA_CACHEINFO = 12;
export const RTA_TABLE = 15;
export const RTA_MARK = 16;
export const RTA_MFC_STATS = 17;
export const RTA_VIA = 18;
export const RTA_NEWDST = 19;
export const RTA_PREF = 20;
export const RTA_ENCAP_TYPE = 21;
export const RTA_ENCAP = 22;
export const RTA_EXPIRES = 23;
export const RTA_PAD = 24;
export const RTA_UID = 25;
export const RTA_TTL_PROPAGATE = 26;
export const RTA_IP_PROTO = 27;
export const RTA_SPORT = 28;
export const RTA_DPORT = 29;
export const RTA_NH_ID = 30;
export const RTA_FLOWLABEL = 31; // newer than the 6.1 headers (6.14+)

export const RTAX_UNSPEC = 0;
export const RTAX_LOCK = 1;
export const RTAX_MTU = 2;
export const RTAX_WINDOW = 3;
export const RTAX_RTT = 4;
export const RTAX_RTTVAR = 5;
export const RTAX_SSTHRESH = 6;
export const RTAX_CWND = 7;
export const RTAX_ADVMSS = 8;
export const RTAX_REORDERING = 9;
export const RTAX_HOPLIMIT = 10;
export const RTAX_INITCWND = 11;
export const RTAX_FEATURES = 12;
export const RTAX_RTO_MIN = 13;
export const RTAX_INITRWND = 14;
export const RTAX_QUICKACK = 15;
export const RTAX_CC_ALGO = 16;
export const RTAX_FASTOPEN_NO_COOKIE = 17;

export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTN_THROW = 9;
export const RTN_NAT = 10;
export const RTN_XRESOLVE = 11;

export const RTPROT_UNSPEC = 0;
export const RTPROT_REDIRECT = 1;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RTPROT_GATED = 8;
export const RTPROT_RA = 9;
export const RTPROT_MRT = 10;
export const RTPROT_ZEBRA = 11;
export const RTPROT_BIRD = 12;
export const RTPROT_DNROUTED = 13;
export const RTPROT_XORP = 14;
export const RTPROT_NTK = 15;
export const RTPROT_DHCP = 16;
export const RTPROT_MROUTED = 17;
export const RTPROT_KEEPALIVED = 18;
export const RTPROT_BABEL = 42;
export const RTPROT_OPENR = 99;
export const RTPROT_BGP = 186;
export const RTPROT_ISIS = 187;
export const RTPROT_OSPF = 188;
export const RTPROT_RIP = 189;
export const RTPROT_EIGRP = 192;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_COMPAT = 252;
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RT_TABLE_MAX = 0xffffffff;

export const RTM_F_NOTIFY = 0x100;
export const RTM_F_CLONED = 0x200;
export const RTM_F_EQUALIZE = 0x400;
export const RTM_F_PREFIX = 0x800;
export const RTM_F_LOOKUP_TABLE = 0x1000;
export const RTM_F_FIB_MATCH = 0x2000;
export const RTM_F_OFFLOAD = 0x4000;
export const RTM_F_TRAP = 0x8000;
export const RTM_F_OFFLOAD_FAILED = 0x20000000;

export const RTNH_F_DEAD = 1;
export const RTNH_F_PERVASIVE = 2;
export const RTNH_F_ONLINK = 4;
export const RTNH_F_OFFLOAD = 8;
export const RTNH_F_LINKDOWN = 16;
export const RTNH_F_UNRESOLVED = 32;
export const RTNH_F_TRAP = 64;

// ---- neighbours: ndmsg + NDA_* ----
export const NDA_UNSPEC = 0;
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_CACHEINFO = 3;
export const NDA_PROBES = 4;
export const NDA_VLAN = 5;
export const NDA_PORT = 6;
export const NDA_VNI = 7;
export const NDA_IFINDEX = 8;
export const NDA_MASTER = 9;
export const NDA_LINK_NETNSID = 10;
export const NDA_SRC_VNI = 11;
export const NDA_PROTOCOL = 12;
export const NDA_NH_ID = 13;
export const NDA_FDB_EXT_ATTRS = 14;
export const NDA_FLAGS_EXT = 15;

export const NUD_NONE = 0x00;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

export const NTF_USE = 1 << 0;
export const NTF_SELF = 1 << 1;
export const NTF_MASTER = 1 << 2;
export const NTF_PROXY = 1 << 3;
export const NTF_EXT_LEARNED = 1 << 4;
export const NTF_OFFLOADED = 1 << 5;
export const NTF_STICKY = 1 << 6;
export const NTF_ROUTER = 1 << 7;

// ---- rules: fib_rule_hdr + FRA_* ----
export const FRA_UNSPEC = 0;
export const FRA_DST = 1;
export const FRA_SRC = 2;
export const FRA_IIFNAME = 3;
export const FRA_GOTO = 4;
export const FRA_PRIORITY = 6;
export const FRA_FWMARK = 10;
export const FRA_FLOW = 11;
export const FRA_TUN_ID = 12;
export const FRA_SUPPRESS_IFGROUP = 13;
export const FRA_SUPPRESS_PREFIXLEN = 14;
export const FRA_TABLE = 15;
export const FRA_FWMASK = 16;
export const FRA_OIFNAME = 17;
export const FRA_PAD = 18;
export const FRA_L3MDEV = 19;
export const FRA_UID_RANGE = 20;
export const FRA_PROTOCOL = 21;
export const FRA_IP_PROTO = 22;
export const FRA_SPORT_RANGE = 23;
export const FRA_DPORT_RANGE = 24;
// newer than the 6.1 headers (6.12+):
export const FRA_DSCP = 25;
export const FRA_FLOWLABEL = 26;
export const FRA_FLOWLABEL_MASK = 27;
export const FRA_SPORT_MASK = 28;
export const FRA_DPORT_MASK = 29;
export const FRA_DSCP_MASK = 30;

export const FR_ACT_UNSPEC = 0;
export const FR_ACT_TO_TBL = 1;
export const FR_ACT_GOTO = 2;
export const FR_ACT_NOP = 3;
export const FR_ACT_RES3 = 4;
export const FR_ACT_RES4 = 5;
export const FR_ACT_BLACKHOLE = 6;
export const FR_ACT_UNREACHABLE = 7;
export const FR_ACT_PROHIBIT = 8;

export const FIB_RULE_PERMANENT = 0x1;
export const FIB_RULE_INVERT = 0x2;
export const FIB_RULE_UNRESOLVED = 0x4;
export const FIB_RULE_IIF_DETACHED = 0x8;
export const FIB_RULE_OIF_DETACHED = 0x10;

// ---- network namespace ids: rtgenmsg + NETNSA_* ----
export const NETNSA_NONE = 0;
export const NETNSA_NSID = 1;
export const NETNSA_PID = 2;
export const NETNSA_FD = 3;
export const NETNSA_TARGET_NSID = 4;
export const NETNSA_CURRENT_NSID = 5;
export const NETNSA_NSID_NOT_ASSIGNED = -1;

// ---- XFRM ----
export const XFRM_MSG_BASE = 0x10;
export const XFRM_MSG_NEWSA = 0x10;
export const XFRM_MSG_DELSA = 0x11;
export const XFRM_MSG_GETSA = 0x12;
export const XFRM_MSG_NEWPOLICY = 0x13;
export const XFRM_MSG_DELPOLICY = 0x14;
export const XFRM_MSG_GETPOLICY = 0x15;
export const XFRM_MSG_ALLOCSPI = 0x16;
export const XFRM_MSG_ACQUIRE = 0x17;
export const XFRM_MSG_EXPIRE = 0x18;
export const XFRM_MSG_UPDPOLICY = 0x19;
export const XFRM_MSG_UPDSA = 0x1a;
export const XFRM_MSG_POLEXPIRE = 0x1b;
export const XFRM_MSG_FLUSHSA = 0x1c;
export const XFRM_MSG_FLUSHPOLICY = 0x1d;
export const XFRM_MSG_NEWAE = 0x1e;
export const XFRM_MSG_GETAE = 0x1f;
export const XFRM_MSG_REPORT = 0x20;
export const XFRM_MSG_MIGRATE = 0x21;
export const XFRM_MSG_NEWSADINFO = 0x22;
export const XFRM_MSG_GETSADINFO = 0x23;
export const XFRM_MSG_NEWSPDINFO = 0x24;
export const XFRM_MSG_GETSPDINFO = 0x25;
export const XFRM_MSG_MAPPING = 0x26;
export const XFRM_MSG_SETDEFAULT = 0x27;
export const XFRM_MSG_GETDEFAULT = 0x28;

export const XFRMA_UNSPEC = 0;
export const XFRMA_ALG_AUTH = 1;
export const XFRMA_ALG_CRYPT = 2;
export const XFRMA_ALG_COMP = 3;
export const XFRMA_ENCAP = 4;
export const XFRMA_TMPL = 5;
export const XFRMA_SA = 6;
export const XFRMA_POLICY = 7;
export const XFRMA_SEC_CTX = 8;
export const XFRMA_LTIME_VAL = 9;
export const XFRMA_REPLAY_VAL = 10;
export const XFRMA_REPLAY_THRESH = 11;
export const XFRMA_ETIMER_THRESH = 12;
export const XFRMA_SRCADDR = 13;
export const XFRMA_COADDR = 14;
export const XFRMA_LASTUSED = 15;
export const XFRMA_POLICY_TYPE = 16;
export const XFRMA_MIGRATE = 17;
export const XFRMA_ALG_AEAD = 18;
export const XFRMA_KMADDRESS = 19;
export const XFRMA_ALG_AUTH_TRUNC = 20;
export const XFRMA_MARK = 21;
export const XFRMA_TFCPAD = 22;
export const XFRMA_REPLAY_ESN_VAL = 23;
export const XFRMA_SA_EXTRA_FLAGS = 24;
export const XFRMA_PROTO = 25;
export const XFRMA_ADDRESS_FILTER = 26;
export const XFRMA_PAD = 27;
export const XFRMA_OFFLOAD_DEV = 28;
export const XFRMA_SET_MARK = 29;
export const XFRMA_SET_MARK_MASK = 30;
export const XFRMA_IF_ID = 31;
export const XFRMA_MTIMER_THRESH = 32;
export const XFRMA_SA_DIR = 33; // newer than 6.1 headers (6.10+)

export const XFRMNLGRP_NONE = 0;
export const XFRMNLGRP_ACQUIRE = 1;
export const XFRMNLGRP_EXPIRE = 2;
export const XFRMNLGRP_SA = 3;
export const XFRMNLGRP_POLICY = 4;
export const XFRMNLGRP_AEVENTS = 5;
export const XFRMNLGRP_REPORT = 6;
export const XFRMNLGRP_MIGRATE = 7;
export const XFRMNLGRP_MAPPING = 8;

export const XFRM_STATE_NOECN = 1;
export const XFRM_STATE_DECAP_DSCP = 2;
export const XFRM_STATE_NOPMTUDISC = 4;
export const XFRM_STATE_WILDRECV = 8;
export const XFRM_STATE_ICMP = 16;
export const XFRM_STATE_AF_UNSPEC = 32;
export const XFRM_STATE_ALIGN4 = 64;
export const XFRM_STATE_ESN = 128;

export const XFRM_MODE_TRANSPORT = 0;
export const XFRM_MODE_TUNNEL = 1;
export const XFRM_MODE_ROUTEOPTIMIZATION = 2;
export const XFRM_MODE_IN_TRIGGER = 3;
export const XFRM_MODE_BEET = 4;

export const XFRM_POLICY_IN = 0;
export const XFRM_POLICY_OUT = 1;
export const XFRM_POLICY_FWD = 2;
export const XFRM_POLICY_ALLOW = 0;
export const XFRM_POLICY_BLOCK = 1;
export const XFRM_POLICY_LOCALOK = 1;
export const XFRM_POLICY_ICMP = 2;
export const XFRM_POLICY_TYPE_MAIN = 0;
export const XFRM_POLICY_TYPE_SUB = 1;
export const XFRM_POLICY_TYPE_ANY = 255;

export const XFRM_SHARE_ANY = 0;
export const XFRM_SHARE_SESSION = 1;
export const XFRM_SHARE_USER = 2;
export const XFRM_SHARE_UNIQUE = 3;

export const XFRM_AE_UNSPEC = 0;
export const XFRM_AE_RTHR = 1;
export const XFRM_AE_RVAL = 2;
export const XFRM_AE_LVAL = 4;
export const XFRM_AE_ETHR = 8;
export const XFRM_AE_CR = 16;
export const XFRM_AE_CE = 32;
export const XFRM_AE_CU = 64;

export const XFRM_INF = 0xffffffffffffffffn;
export const XFRMA_REPLAY_ESN_MAX = 4096;
export const UDP_ENCAP_ESPINUDP_NON_IKE = 1;
export const UDP_ENCAP_ESPINUDP = 2;

// x86_64 struct sizes (checked with gcc against the UAPI headers)
export const SIZEOF = {
  nlmsghdr: 16,
  nlmsgerr: 20,
  nlattr: 4,
  ifinfomsg: 16,
  ifaddrmsg: 8,
  ifa_cacheinfo: 16,
  rtmsg: 12,
  rtnexthop: 8,
  rtgenmsg: 1,
  ndmsg: 12,
  fib_rule_hdr: 12,
  fib_rule_port_range: 4,
  xfrm_id: 24,
  xfrm_selector: 56,
  xfrm_lifetime_cfg: 64,
  xfrm_lifetime_cur: 32,
  xfrm_replay_state: 12,
  xfrm_replay_state_esn: 24,
  xfrm_algo: 68,
  xfrm_algo_auth: 72,
  xfrm_algo_aead: 72,
  xfrm_stats: 12,
  xfrm_user_tmpl: 64,
  xfrm_encap_tmpl: 24,
  xfrm_userpolicy_type: 6,
  xfrm_mark: 8,
  xfrm_usersa_info: 224,
  xfrm_usersa_id: 24,
  xfrm_aevent_id: 48,
  xfrm_userpolicy_info: 168,
  xfrm_userpolicy_id: 64,
  xfrm_user_acquire: 280,
  xfrm_user_expire: 232,
  xfrm_user_polexpire: 176,
  xfrm_usersa_flush: 1,
} as const;

// ---- IP protocols ----
export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_GRE = 47;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;
export const IPPROTO_COMP = 108;
