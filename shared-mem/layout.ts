// THE definition of the lfp shared-memory layout. Everything that reads or writes the file (fpmd's
// writer, the fast path, fpctl, the daemons) takes offsets, entry formats and encodings from here.
//
// The file is an array of little-endian u32 words. Regions are page aligned; entry tables are arrays
// of fixed-size entries. Offsets below named `*_E.X` are word offsets inside one entry.
//
// Consistency rules (see README.md):
// - one writer (fpmd). Every multi-word entry starts with a sequence word (SEQ): the writer
//   increments it (Atomics) before and after changing the entry, so it is odd while being written.
//   Readers read SEQ, copy, re-read SEQ and retry when it was odd or changed.
// - IPv4 FIB words (tbl24 / tbl8) are single u32 words written with Atomics.store. A tbl8 group is
//   completely filled before the tbl24 word pointing to it is stored; a group is reused only after
//   it was unpublished and at least one later write operation completed (free lists are FIFO).
//   The default route (/0) of a table is not in tbl24 / tbl8 but in its descriptor word
//   FIB4D_E.DEFAULT (one Atomics.store): a lookup that finds 0 in tbl24 / tbl8 returns it.
// - Each IPv4 table has a summary bitmap (region fib4Sum, FIB4_SUM_WORDS words, one bit per /16):
//   a bit is set (Atomics.or) BEFORE the first non-zero tbl24 word of its /16 is stored and is
//   cleared only while the table slot is unused (or rebuilt). A lookup whose bit is 0 returns the
//   DEFAULT word without touching tbl24: a sparse table (local, a VRF's few routes) then costs two
//   cache-resident plain loads instead of a TLB miss into its 64 MB tbl24. The two loads are not
//   ordered (an Atomics.load is a ~4 ns builtin call in Node 20, and this runs for every packet and
//   table): any pair of values they see is a state the table was in, except "bit clear (read before
//   the first prefix of the /16 was added), DEFAULT 0 (read after the default route was deleted)",
//   which answers "no route in this table" for a packet that had one all along. The packet then goes
//   on to the next table of the rules or, in the usual case (main table), to Linux as a 'no-route'
//   exception, and Linux, which has both states, forwards it. Two updates of one table (a prefix
//   added to a /16 that had none, then its default route deleted) must race a packet for it.
// - Hash indexes use open addressing with linear probing and tombstones; a live entry never moves
//   until a rebuild, which is done into the other of two index arrays and published by bumping the
//   index generation word (its low bit selects the active array). A reader that misses re-checks
//   the generation and retries if a rebuild happened meanwhile.

// ---------------------------------------------------------------------------------------------
// Identification

export const SHM_MAGIC = 0x5350464c; // "LFPS" in little-endian bytes
export const LAYOUT_VERSION = 3; // 2: IPv4 default in FIB4D_E.DEFAULT (not tbl24), tbl8 incarnations, FIB6D_E.CHG; 3: fib4Sum
export const PAGE_SIZE = 4096;
export const DEFAULT_SHM_PATH = '/run/lfp/shm/lfp'; // lib/config.ts shm.path

// ---------------------------------------------------------------------------------------------
// Configuration

export interface ShmConfig {
  maxVrfs: number; // VRF ids are < maxVrfs
  maxLinks: number;
  maxAddrs: number;
  maxRoutes: number; // IPv4 + IPv6 route entries
  fib4Tables: number; // DIR-24-8 tables (one per (vrf, table) with IPv4 routes), 64 MiB each
  tbl8Groups: number; // shared by all IPv4 tables
  fib6Tables: number;
  fib6Entries: number; // IPv6 FIB hash slots (rounded up to a power of 2); at most 70 % can be used
  maxNexthops: number;
  maxGroups: number; // ECMP groups
  maxNeigh: number;
  maxRules: number;
  maxPolicies: number;
  maxSas: number;
}

export const DEFAULT_CONFIG: Readonly<ShmConfig> = Object.freeze({
  maxVrfs: 256,
  maxLinks: 4096,
  maxAddrs: 16384,
  maxRoutes: 1_500_000,
  fib4Tables: 16,
  tbl8Groups: 65536,
  fib6Tables: 16,
  fib6Entries: 262144,
  maxNexthops: 65536,
  maxGroups: 8192,
  maxNeigh: 65536,
  maxRules: 4096,
  maxPolicies: 16384,
  maxSas: 16384,
});

/** Order in which the config is stored in the header (HDR.CONFIG + i). Append only. */
export const CONFIG_FIELDS: readonly (keyof ShmConfig)[] = [
  'maxVrfs', 'maxLinks', 'maxAddrs', 'maxRoutes', 'fib4Tables', 'tbl8Groups', 'fib6Tables',
  'fib6Entries', 'maxNexthops', 'maxGroups', 'maxNeigh', 'maxRules', 'maxPolicies', 'maxSas',
];

/** Largest index that fits a FIB value (22 bits). */
export const FIB_INDEX_MAX = (1 << 22) - 1;

const CONFIG_LIMITS: Record<keyof ShmConfig, [number, number]> = {
  maxVrfs: [1, 65536],
  maxLinks: [1, 1 << 24],
  maxAddrs: [1, 1 << 24],
  maxRoutes: [1, 1 << 26],
  fib4Tables: [1, 64],
  tbl8Groups: [1, FIB_INDEX_MAX],
  fib6Tables: [1, 255],
  fib6Entries: [16, 1 << 26],
  maxNexthops: [1, FIB_INDEX_MAX],
  maxGroups: [1, FIB_INDEX_MAX],
  maxNeigh: [1, 1 << 24],
  maxRules: [1, 1 << 20],
  maxPolicies: [1, 1 << 24],
  maxSas: [1, 1 << 24],
};

/** Defaults + overrides, validated. fib6Entries is rounded up to a power of two. */
export function resolveConfig(partial: Partial<ShmConfig> = {}): ShmConfig {
  const cfg = { ...DEFAULT_CONFIG, ...partial } as ShmConfig;
  for (const k of CONFIG_FIELDS) {
    const v = cfg[k];
    const [lo, hi] = CONFIG_LIMITS[k];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`shm config ${k}=${v}: must be an integer in [${lo}, ${hi}]`);
  }
  for (const k of Object.keys(partial)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(k)) throw new RangeError(`unknown shm config field "${k}"`);
  }
  cfg.fib6Entries = nextPow2(cfg.fib6Entries);
  return cfg;
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Size of the u32 index array of a hashed table holding up to n entries (load <= 50 %). */
export function hashSlots(n: number): number {
  return nextPow2(Math.max(16, 2 * n));
}

/** Live entries an IPv6 FIB hash of `slots` slots accepts (70 % load). */
export function fib6Capacity(slots: number): number {
  return Math.floor(slots * 0.7);
}

// ---------------------------------------------------------------------------------------------
// Header (page 0), word offsets

export const HDR = {
  MAGIC: 0,
  VERSION: 1,
  HEADER_BYTES: 2,
  PAGE: 3,
  TOTAL_LO: 4, // total size in bytes (lo, hi)
  TOTAL_HI: 5,
  WRITER_PID: 6,
  HEARTBEAT: 7, // unix seconds, stored by the writer's heartbeat()
  GEN: 8, // global generation: +1 per write operation that changed something
  EPOCH: 9, // current mark-and-sweep epoch (informative)
  DIRTY: 10, // 1 while the writer is inside a write operation (crash detection)
  CREATED: 11, // unix seconds at create()
  NREGIONS: 12,
  SYNCING: 13, // 1 between beginSync() and endSync()
  HEARTBEAT_MS_U64: 7, // index into a BigUint64Array view (words 14-15): unix milliseconds of the last heartbeat
  CONFIG: 16, // CONFIG_FIELDS.length words
  KIND_GEN: 48, // 16 per-kind generations (STAT_KINDS order)
  KIND_COUNT: 64, // 16 per-kind entry counts
  REGIONS: 80, // per region: offset in pages, size in pages (REGION_NAMES order), 2 words each
  COUNTERS_U64: 128, // index into a BigUint64Array view: 16 u64 counters (byte offset 1024)
  WORDS: 1024,
} as const;

export const HEADER_BYTES = PAGE_SIZE;

/** Kinds with a generation and count in the header. */
export const STAT_KINDS = [
  'vrf', 'link', 'address', 'route', 'rule', 'neighbour', 'policy', 'sa',
  'nexthop', 'group', 'fib4Table', 'tbl8', 'fib6Table', 'fib6Prefix',
] as const;
export type StatKind = typeof STAT_KINDS[number];
export const STAT: { readonly [K in StatKind]: number } =
  Object.freeze(Object.fromEntries(STAT_KINDS.map((k, i) => [k, i]))) as { [K in StatKind]: number };

/** The 16 general u64 counters owned by fpmd (names in slot order). */
export const COUNTER_NAMES = [
  'messages', 'upserts', 'removes', 'unchanged', 'errors', 'capacityErrors', 'hellos', 'syncBegins',
  'syncEnds', 'swept', 'peerRejects', 'decodeErrors', 'vrfRemoves', 'resyncs', 'spare14', 'spare15',
] as const;
export type CounterName = typeof COUNTER_NAMES[number];

// ---------------------------------------------------------------------------------------------
// FIB value encoding (one u32; IPv4 tbl24/tbl8 words and IPv6 hash entry values)
//
//   bits 31..30  kind: 0 = no route (the whole word is 0), 1 = next hop, 2 = ECMP group,
//                3 = tbl8 group pointer (only inside tbl24 words; never returned by a lookup)
//   bits 29..22  prefix length of the route that produced the word (0..32 / 0..128); the writer
//                uses it for longest-prefix bookkeeping, readers may use it as "matched plen".
//                In a tbl8 pointer: the group's incarnation (+1 mod 256 each time it is allocated),
//                so that a reader re-checking the tbl24 word after reading the group notices a group
//                freed and reused meanwhile
//   bits 21..0   index: next-hop index, ECMP group index or tbl8 group index
//
// A lookup returns the stored word: `fibKind(v)`, `fibIndex(v)`, `fibPlen(v)`. LOOKUP_BUSY
// (0xffffffff, kind 3) is returned when an entry stayed write-locked past the retry bound.

export const FIB_NONE = 0;
export const FIB_NEXTHOP = 1;
export const FIB_GROUP = 2;
export const FIB_TBL8 = 3;
export const FIB_PLEN_SHIFT = 22;
export const FIB_INDEX_MASK = 0x3fffff;
export const LOOKUP_BUSY = 0xffffffff;

export function fibValue(kind: number, plen: number, index: number): number {
  return ((kind << 30) | (plen << FIB_PLEN_SHIFT) | index) >>> 0;
}
export function fibKind(v: number): number { return v >>> 30; }
export function fibIndex(v: number): number { return v & FIB_INDEX_MASK; }
export function fibPlen(v: number): number { return (v >>> FIB_PLEN_SHIFT) & 0xff; }
/** The reference part (kind + index) of a value, without the prefix length. */
export function fibRef(v: number): number { return (v & 0xc03fffff) >>> 0; }

export const TBL24_ENTRIES = 1 << 24;
export const TBL8_ENTRIES = 256;
/** Words of one IPv4 table's summary bitmap: one bit per /16 (bit (a >>> 16) & 31 of word a >>> 21). */
export const FIB4_SUM_WORDS = 1 << 11;

// ---------------------------------------------------------------------------------------------
// Enumerations stored as codes

/** RTN_* values. */
export const ROUTE_TYPES = ['', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole',
  'unreachable', 'prohibit', 'throw', 'nat'] as const;
export const RTN_UNICAST = 1, RTN_LOCAL = 2, RTN_BROADCAST = 3, RTN_BLACKHOLE = 6, RTN_UNREACHABLE = 7,
  RTN_PROHIBIT = 8, RTN_THROW = 9;

/** FR_ACT_* values (index = code; '' = unused code). */
export const RULE_ACTIONS = ['', 'to_tbl', 'goto', 'nop', '', '', 'blackhole', 'unreachable', 'prohibit'] as const;
export const FR_ACT_TO_TBL = 1, FR_ACT_GOTO = 2, FR_ACT_NOP = 3, FR_ACT_BLACKHOLE = 6,
  FR_ACT_UNREACHABLE = 7, FR_ACT_PROHIBIT = 8;

/** XFRM_MODE_* values. */
export const XFRM_MODES = ['transport', 'tunnel', 'ro', 'in_trigger', 'beet'] as const;
export const XFRM_DIRS = ['in', 'out', 'fwd'] as const;
export const XFRM_POLICY_ACTIONS = ['allow', 'block'] as const;

/** XFRM algorithm names by code; code 0 = other (the name string is stored in the entry). */
export const XFRM_ALG_NAMES = [
  '',
  'rfc4106(gcm(aes))', 'rfc4309(ccm(aes))', 'rfc7539esp(chacha20,poly1305)', 'rfc4543(gcm(aes))',
  'cbc(aes)', 'cbc(des3_ede)', 'cbc(des)', 'ctr(aes)', 'rfc3686(ctr(aes))', 'ecb(cipher_null)',
  'cbc(cast5)', 'cbc(blowfish)', 'cbc(serpent)', 'cbc(twofish)', 'cbc(camellia)', 'cbc(sm4)',
  'hmac(md5)', 'hmac(sha1)', 'hmac(sha256)', 'hmac(sha384)', 'hmac(sha512)', 'hmac(rmd160)',
  'xcbc(aes)', 'cmac(aes)', 'digest_null', 'hmac(sm3)', 'deflate', 'lzs', 'lzjh',
] as const;
export const XFRM_ALG_OTHER = 0;

// ---------------------------------------------------------------------------------------------
// Entry formats (word offsets). Every entry: SEQ (sequence lock), USED (0 free, 1 in use).
// Packed META words list their fields low bits first.

export const VRF_NAME_MAX = 128;
export const VRF_E = { SEQ: 0, USED: 1, VRF: 2, NSID: 3, NAMELEN: 4, NAME: 8, WORDS: 40 } as const;

export const LINK_NAME_MAX = 16;
export const LINK_KIND_MAX = 16;
export const LINK_MAC_MAX = 32;
/** LENS: nameLen | kindLen << 8 | macLen << 16. BITS: adminUp 1, operUp 2. PORT: i32. */
export const LINK_E = {
  SEQ: 0, USED: 1, VRF: 2, IFINDEX: 3, MTU: 4, FLAGS: 5, BITS: 6, MASTER: 7, LINK: 8, PORT: 9,
  LENS: 10, NAME: 12, KIND: 16, MAC: 20, WORDS: 32,
} as const;

/** META: family | plen << 8 | peerKind << 16 (ADDR_*). */
export const ADDR_E = { SEQ: 0, USED: 1, VRF: 2, IFINDEX: 3, META: 4, SCOPE: 5, FLAGS: 6, ADDR: 8, PEER: 12, WORDS: 16 } as const;

/**
 * META: family | plen << 8 | tos << 16 | type (RTN_*) << 24.
 * META2: protocol | scope << 8 | nhCount << 16 | prefsrcKind << 24 | hasMtu << 26.
 * REF: FIB value without plen (kind + index) of the next hop or ECMP group.
 * WEIGHT: weight of the single next hop (multipath weights are in the group).
 */
export const ROUTE_E = {
  SEQ: 0, USED: 1, VRF: 2, TABLE: 3, META: 4, PRIORITY: 5, META2: 6, MTU: 7, REF: 8, WEIGHT: 9,
  DST: 12, PREFSRC: 16, WORDS: 24,
} as const;
export const ROUTE_MAX_NEXTHOPS = 16;

/** META: type (RTN_*) | family << 8 | gwKind << 16. FAMILY is the route's family. */
export const NH_E = { SEQ: 0, USED: 1, META: 2, VRF: 3, IFINDEX: 4, FLAGS: 5, MTU: 6, GW: 8, WORDS: 16 } as const;

/**
 * ECMP group: COUNT members, MEMBERS[i] = next-hop index, WEIGHTS[i] = weight; BUCKETS =
 * GROUP_BUCKETS bytes, each the member slot (0..15) owning that bucket; a flow hash selects
 * MEMBERS[BUCKETS[hash % GROUP_BUCKETS]]. Buckets are spread in proportion to the weights.
 */
export const GROUP_E = { SEQ: 0, USED: 1, COUNT: 2, TOTAL: 3, MEMBERS: 4, WEIGHTS: 20, BUCKETS: 36, WORDS: 128 } as const;
export const GROUP_BUCKETS = 256;

/**
 * FIB table descriptors: a slot is owned by (VRF, TABLE) while USED.
 * DEFAULT (IPv4): the FIB value of the table's default route (0.0.0.0/0; 0 = none), a single word
 * stored with Atomics.store outside the sequence lock. A /0 is never written into tbl24 / tbl8: a
 * lookup whose tbl24 word (or the tbl8 entry it points to) is 0 returns DEFAULT, so adding,
 * replacing or deleting a default route is one word write whatever the table holds.
 */
export const FIB4D_E = { SEQ: 0, USED: 1, VRF: 2, TABLE: 3, DEFAULT: 4, WORDS: 8 } as const;
/**
 * LENS: 5 words, bit l set when a prefix of length l (0..128) is present (updated with Atomics).
 * CHG: change sequence of the table's IPv6 FIB, odd while the writer changes one of its prefixes
 * (Atomics.add before and after): lookup6 retries when it changed meanwhile, so that its answer is the
 * one of a single moment although it probes several prefix lengths one after the other.
 */
export const FIB6D_E = { SEQ: 0, USED: 1, VRF: 2, TABLE: 3, LENS: 4, CHG: 9, WORDS: 16 } as const;

/** IPv6 FIB hash entry. META: plen | slot << 8 | state << 16 (FIB6_EMPTY/USED/TOMB). */
export const FIB6E = { SEQ: 0, META: 1, PREFIX: 2, VALUE: 6, WORDS: 8 } as const;
export const FIB6_EMPTY = 0, FIB6_USED = 1, FIB6_TOMB = 2;

/**
 * META: family | action (FR_ACT_*) << 8 | srcLen << 16 | dstLen << 24.
 * BITS: srcKind (2 bits) | dstKind << 2 | hasIif << 4 | hasOif << 5 | hasSport << 6 |
 *       hasDport << 7 | invert << 8.
 * SPORT/DPORT: lo | hi << 16. SUPPRESS: i32. SERIAL: insertion order among equal priorities.
 * LENS: iifLen | oifLen << 8.
 */
export const RULE_E = {
  SEQ: 0, USED: 1, VRF: 2, META: 3, PRIORITY: 4, TABLE: 5, BITS: 6, FWMARK: 7, FWMASK: 8, TOS: 9,
  IPPROTO: 10, SPORT: 11, DPORT: 12, SUPPRESS: 13, GOTO: 14, SERIAL: 15, SRC: 16, DST: 20, LENS: 24,
  IIF: 25, OIF: 29, WORDS: 40,
} as const;
/** Rule order: SEQ, COUNT, then COUNT rule indices sorted by (vrf, family, priority, serial). */
export const RULE_ORDER = { SEQ: 0, COUNT: 1, IDX: 4 } as const;

export const NEIGH_LLADDR_MAX = 32;
/** HIT: set by readers (fast path) with Atomics.store, taken by the hitflags daemon; outside the
 *  sequence lock. META: family | llLen << 8 | hasLladdr << 16. */
export const NEIGH_E = {
  SEQ: 0, USED: 1, HIT: 2, VRF: 3, IFINDEX: 4, META: 5, STATE: 6, FLAGS: 7, ADDR: 8, LLADDR: 12, WORDS: 24,
} as const;

/** Selector block (inside policies and SAs). META: family | saddrKind << 8 | daddrKind << 10 |
 *  splen << 16 | dplen << 24. SPORT/DPORT: port | mask << 16. */
export const SEL = { META: 0, SADDR: 1, DADDR: 5, SPORT: 9, DPORT: 10, PROTO: 11, IFINDEX: 12, WORDS: 16 } as const;

/** Template block. META: family | mode << 8 | optional << 16 | daddrKind << 20 | saddrKind << 22. */
export const TMPL = {
  META: 0, DADDR: 1, SADDR: 5, SPI: 9, PROTO: 10, REQID: 11, SHARE: 12, AALGOS: 13, EALGOS: 14,
  CALGOS: 15, WORDS: 16,
} as const;
export const POLICY_MAX_TMPLS = 6;

/** META: dir | action << 8 | ntmpl << 16 | hasMark << 24. */
export const POLICY_E = {
  SEQ: 0, USED: 1, VRF: 2, INDEX: 3, META: 4, PRIORITY: 5, FLAGS: 6, IFID: 7, MARKV: 8, MARKM: 9,
  SEL: 10, TMPLS: 26, WORDS: 128,
} as const;

export const SA_KEY_MAX = 64;
export const SA_ALG_NAME_MAX = 64;
/** Algorithm block. META: keyLen | nameLen << 8 | hasIcv << 16 | hasTrunc << 17. NAME only set
 *  when CODE = XFRM_ALG_OTHER. */
export const ALGO = { CODE: 0, META: 1, ICV: 2, TRUNC: 3, NAME: 4, KEY: 20, WORDS: 36 } as const;
/** Lifetime block: softBytes, hardBytes, softPackets, hardPackets, softAdd, hardAdd, softUse,
 *  hardUse, each two words (lo, hi). */
export const LIFE = { SOFT_BYTES: 0, HARD_BYTES: 2, SOFT_PACKETS: 4, HARD_PACKETS: 6, SOFT_ADD: 8, HARD_ADD: 10,
  SOFT_USE: 12, HARD_USE: 14, WORDS: 16 } as const;

/**
 * META: proto | family << 8 | mode << 16 | esn << 24.
 * BITS: hasAead 1 | hasEnc 2 | hasAuth 4 | hasEncap 8 | hasMark 16 | daddrKind << 8 |
 *       saddrKind << 10 | encapOaKind << 12.
 * ENCAP_PORTS: sport | dport << 16.
 * OSEQ (lo, hi): the kernel's outbound sequence number when cmgrd read the SA (0: none; words that files
 * written before it was added hold 0 too, so no layout version change).
 */
export const SA_E = {
  SEQ: 0, USED: 1, VRF: 2, SPI: 3, META: 4, REQID: 5, FLAGS: 6, REPLAY: 7, IFID: 8, BITS: 9,
  MARKV: 10, MARKM: 11, DADDR: 12, SADDR: 16, SEL: 20, ENCAP_TYPE: 36, ENCAP_PORTS: 37,
  ENCAP_OA: 38, LIFE: 42, AEAD: 58, ENC: 94, AUTH: 130, OSEQ: 166, WORDS: 176,
} as const;

/** Hash index regions: GEN word (low bit = active array), then two arrays of `slots` u32. Slot
 *  value: 0 empty, HASH_TOMB deleted, otherwise entry index + 1. */
export const HASH_HDR_WORDS = 16;
export const HASH_TOMB = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Hashing (shared by writer and reader)

// MurmurHash3 (x86, 32-bit) word step and finalizer. Changing these changes the layout (bump
// LAYOUT_VERSION): the hash indexes in an existing file were built with them.
export function hashStart(seed: number): number { return Math.imul(seed, 0x9e3779b1); }
export function hashMix(h: number, w: number): number {
  let k = Math.imul(w, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
export function hashEnd(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0; // int32: no heap number when >= 2^31 (callers mask it)
}

export const HSEED_LINK = 1, HSEED_NEIGH = 2, HSEED_POLICY = 3, HSEED_SA = 4, HSEED_FIB6 = 5;

export function hashLink(vrf: number, ifindex: number): number {
  return hashEnd(hashMix(hashMix(hashStart(HSEED_LINK), vrf), ifindex));
}
export function hashNeigh(vrf: number, ifindex: number, family: number, a0: number, a1: number, a2: number, a3: number): number {
  let h = hashStart(HSEED_NEIGH);
  h = hashMix(h, vrf); h = hashMix(h, ifindex); h = hashMix(h, family);
  h = hashMix(h, a0); h = hashMix(h, a1); h = hashMix(h, a2); h = hashMix(h, a3);
  return hashEnd(h);
}
export function hashPolicy(vrf: number, index: number): number {
  return hashEnd(hashMix(hashMix(hashStart(HSEED_POLICY), vrf), index));
}
/** addrKind: ADDR_V4 or ADDR_V6. */
export function hashSa(vrf: number, addrKind: number, a0: number, a1: number, a2: number, a3: number, spi: number, proto: number): number {
  let h = hashStart(HSEED_SA);
  h = hashMix(h, vrf); h = hashMix(h, addrKind);
  h = hashMix(h, a0); h = hashMix(h, a1); h = hashMix(h, a2); h = hashMix(h, a3);
  h = hashMix(h, spi); h = hashMix(h, proto);
  return hashEnd(h);
}
export function hashFib6(slot: number, plen: number, p0: number, p1: number, p2: number, p3: number): number {
  let h = hashStart(HSEED_FIB6);
  h = hashMix(h, slot | (plen << 8));
  h = hashMix(h, p0); h = hashMix(h, p1); h = hashMix(h, p2); h = hashMix(h, p3);
  return hashEnd(h);
}

// ---------------------------------------------------------------------------------------------
// Region layout

export const REGION_NAMES = [
  'header', 'vrfs', 'links', 'linkHash', 'addrs', 'routes', 'nexthops', 'groups', 'fib4Desc',
  'tbl24', 'tbl8', 'fib4Sum', 'fib6Desc', 'fib6Hash', 'rules', 'ruleOrder', 'neighs', 'neighHash', 'policies',
  'policyHash', 'sas', 'saHash',
] as const;
export type RegionName = typeof REGION_NAMES[number];

export interface Region {
  name: RegionName;
  offset: number; // bytes, page aligned
  size: number; // bytes, page aligned
}

export interface Layout {
  config: ShmConfig;
  totalSize: number; // bytes
  regions: { readonly [K in RegionName]: Region };
  /** u32 slots of each hash index array. */
  linkHashSlots: number;
  neighHashSlots: number;
  policyHashSlots: number;
  saHashSlots: number;
  fib6Slots: number;
  fib6Capacity: number;
}

function pageAlign(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

export function computeLayout(partial: Partial<ShmConfig> = {}): Layout {
  const config = resolveConfig(partial);
  const linkHashSlots = hashSlots(config.maxLinks);
  const neighHashSlots = hashSlots(config.maxNeigh);
  const policyHashSlots = hashSlots(config.maxPolicies);
  const saHashSlots = hashSlots(config.maxSas);
  const fib6Slots = config.fib6Entries;
  const sizes: Record<RegionName, number> = {
    header: HEADER_BYTES,
    vrfs: config.maxVrfs * VRF_E.WORDS * 4,
    links: config.maxLinks * LINK_E.WORDS * 4,
    linkHash: (HASH_HDR_WORDS + 2 * linkHashSlots) * 4,
    addrs: config.maxAddrs * ADDR_E.WORDS * 4,
    routes: config.maxRoutes * ROUTE_E.WORDS * 4,
    nexthops: config.maxNexthops * NH_E.WORDS * 4,
    groups: config.maxGroups * GROUP_E.WORDS * 4,
    fib4Desc: config.fib4Tables * FIB4D_E.WORDS * 4,
    tbl24: config.fib4Tables * TBL24_ENTRIES * 4,
    tbl8: config.tbl8Groups * TBL8_ENTRIES * 4,
    fib4Sum: config.fib4Tables * FIB4_SUM_WORDS * 4,
    fib6Desc: config.fib6Tables * FIB6D_E.WORDS * 4,
    fib6Hash: (HASH_HDR_WORDS + 2 * fib6Slots * FIB6E.WORDS) * 4,
    rules: config.maxRules * RULE_E.WORDS * 4,
    ruleOrder: (RULE_ORDER.IDX + config.maxRules) * 4,
    neighs: config.maxNeigh * NEIGH_E.WORDS * 4,
    neighHash: (HASH_HDR_WORDS + 2 * neighHashSlots) * 4,
    policies: config.maxPolicies * POLICY_E.WORDS * 4,
    policyHash: (HASH_HDR_WORDS + 2 * policyHashSlots) * 4,
    sas: config.maxSas * SA_E.WORDS * 4,
    saHash: (HASH_HDR_WORDS + 2 * saHashSlots) * 4,
  };
  let off = 0;
  const regions = {} as Record<RegionName, Region>;
  for (const name of REGION_NAMES) {
    const size = pageAlign(sizes[name]);
    regions[name] = { name, offset: off, size };
    off += size;
  }
  if (off / 4 >= 2 ** 32) throw new RangeError(`shm layout of ${off} bytes is too large (at most 16 GiB): lower fib4Tables or maxRoutes`);
  return {
    config, totalSize: off, regions, linkHashSlots, neighHashSlots, policyHashSlots, saHashSlots,
    fib6Slots, fib6Capacity: fib6Capacity(fib6Slots),
  };
}

// ---------------------------------------------------------------------------------------------
// Header write / validation

export function writeHeader(u32: Uint32Array, layout: Layout, pid: number): void {
  u32[HDR.VERSION] = LAYOUT_VERSION;
  u32[HDR.HEADER_BYTES] = HEADER_BYTES;
  u32[HDR.PAGE] = PAGE_SIZE;
  u32[HDR.TOTAL_LO] = layout.totalSize % 0x100000000;
  u32[HDR.TOTAL_HI] = Math.floor(layout.totalSize / 0x100000000);
  u32[HDR.WRITER_PID] = pid;
  u32[HDR.CREATED] = Math.floor(Date.now() / 1000);
  u32[HDR.HEARTBEAT] = u32[HDR.CREATED];
  CONFIG_FIELDS.forEach((k, i) => { u32[HDR.CONFIG + i] = layout.config[k]; });
  u32[HDR.NREGIONS] = REGION_NAMES.length;
  REGION_NAMES.forEach((name, i) => {
    u32[HDR.REGIONS + 2 * i] = layout.regions[name].offset / PAGE_SIZE;
    u32[HDR.REGIONS + 2 * i + 1] = layout.regions[name].size / PAGE_SIZE;
  });
  Atomics.store(u32, HDR.MAGIC, SHM_MAGIC); // last: the file is valid from here on
}

/**
 * Validates the header of a mapping and returns its layout. `name` (the path) is used in the
 * error messages.
 */
export function validateHeader(sab: SharedArrayBuffer, name: string): Layout {
  if (sab.byteLength < HEADER_BYTES) throw new Error(`${name} is not an lfp shared-memory file`);
  const u32 = new Uint32Array(sab, 0, HDR.WORDS);
  if (Atomics.load(u32, HDR.MAGIC) !== SHM_MAGIC) throw new Error(`${name} is not an lfp shared-memory file`);
  const version = u32[HDR.VERSION];
  if (version !== LAYOUT_VERSION) {
    throw new Error(`${name}: layout version ${version}, this program expects ${LAYOUT_VERSION} — restart fpmd with a fresh file`);
  }
  const cfg: Partial<ShmConfig> = {};
  CONFIG_FIELDS.forEach((k, i) => { cfg[k] = u32[HDR.CONFIG + i]; });
  let layout: Layout;
  try {
    layout = computeLayout(cfg);
  } catch (e) {
    throw new Error(`${name}: corrupt header (${(e as Error).message})`);
  }
  const total = u32[HDR.TOTAL_HI] * 0x100000000 + u32[HDR.TOTAL_LO];
  if (total !== layout.totalSize || u32[HDR.NREGIONS] !== REGION_NAMES.length) {
    throw new Error(`${name}: corrupt header (size ${total} does not match its configuration, ${layout.totalSize})`);
  }
  REGION_NAMES.forEach((rn, i) => {
    if (u32[HDR.REGIONS + 2 * i] * PAGE_SIZE !== layout.regions[rn].offset) {
      throw new Error(`${name}: corrupt header (region ${rn} offset mismatch)`);
    }
  });
  if (sab.byteLength < total) {
    throw new Error(`${name}: mapping is ${sab.byteLength} bytes but the file needs ${total} (truncated?)`);
  }
  return layout;
}

/** Interface of the native addon (build/native/index.js). */
export interface NativeShm {
  shm: { map(path: string, opts: { size: number; create?: boolean; readonly?: boolean; mode?: number }): SharedArrayBuffer };
}

/** Loads the native addon lazily (only the open() conveniences need it). */
export function loadNative(): NativeShm {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../native') as NativeShm;
}
