// The lfp configuration file (JSON), read by `fpctl start -c FILE` and by each daemon.
// docs/config.md documents every key; unknown keys and wrong types are refused with a clear error.
import * as fs from 'fs';

export interface ShmSizes {
  maxVrfs?: number; maxLinks?: number; maxAddrs?: number; maxRoutes?: number;
  fib4Tables?: number; tbl8Groups?: number; fib6Tables?: number; fib6Entries?: number;
  maxNexthops?: number; maxGroups?: number; maxNeigh?: number; maxRules?: number;
  maxPolicies?: number; maxSas?: number;
}

/**
 * A fast-path port: its name (the DPVI created in the control plane has this name and the port's
 * MAC) and where its packets come from: a DPDK device string, or an existing Linux interface
 * (AF_PACKET). `netns`: the namespace of that interface (for DPDK: where an af_packet/af_xdp vdev
 * opens its socket); default the fast path's own.
 */
export interface PortSpec { name: string; dpdk?: string; kernel?: string; netns?: string }

export interface FastpathConfig {
  /** Extra DPDK EAL arguments. */
  eal: string[];
  /** Packet memory (MB) and number of mbufs. */
  memMB: number;
  mbufs: number;
  /** Packets per vector (32..256). */
  burst: number;
  /** IPsec ESP in the fast path (SAs and policies mirrored from XFRM); false: Linux does all of IPsec. Default true. */
  ipsec?: boolean;
  /** IPv4 packets without DF that do not fit the egress MTU once encrypted: fragment the ESP packet, or the inner packet first. Default 'after-encrypt'. */
  ipsecFragment?: 'after-encrypt' | 'before-encrypt';
  /**
   * ESP for this host decrypted by the fast path too (transport mode, and tunnel-mode inner packets for
   * the box), handed to Linux in clear through DPVIs that Linux trusts (disable_policy); the fast path
   * then checks the 'in' policies of clear packets for the box itself (IKE excepted). Default true.
   */
  ipsecLocalDecrypt?: boolean;
  /**
   * DPVIs outlive a crash of the fast path (persistent TAPs marked with the alias DPVI_ALIAS): a restarted
   * fp re-attaches to them, so the addresses, routes and neighbours Linux has on them stay. A clean stop
   * removes them. Default true.
   */
  dpviPersist?: boolean;
}

/** The interface alias (`ip link show`: "alias ...") of the DPVIs lfp keeps over a fast-path crash. */
export const DPVI_ALIAS = 'lfp DPVI';

export interface LfpConfig {
  /** Linux network namespace that is the control plane (VRF 0); "" = the namespace fpctl runs in. */
  controlPlaneNetns: string;
  /**
   * Names of the network namespaces that are VRFs (VRF id = their nsid in the control plane), or null:
   * every namespace with an nsid. (The kernel also gives nsids to namespaces that merely hold the
   * peer of a veth, which a list keeps out.)
   */
  vrfNetns: string[] | null;
  /** The interfaces the fast path owns (see PortSpec); a plain name = a port that is only mirrored. */
  ports: string[];
  /** The full port specs, in port order (portSpecs[i].name === ports[i]). */
  portSpecs: PortSpec[];
  fastpath: FastpathConfig;
  /** FPC endpoint: ipc:///path (default) or tcp://host:port. */
  fpc: string;
  /** Shared-memory file and table sizes. */
  /** path: the shared-memory file; hugePages: fpmd prepares its directory for huge pages (shared-mem/huge.ts). */
  shm: { path: string; hugePages: boolean } & ShmSizes;
  /** Where pid files and the FPC socket live. */
  runDir: string;
  /** Where daemon logs go. */
  logDir: string;
  /** Netlink event socket receive buffer in bytes (SO_RCVBUFFORCE). */
  netlinkRcvbuf: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Stats daemon (fpsd) settings, docs/stats-daemon.md; checked here for types, defaults in stats-daemon/fpsd.ts. */
  statsDaemon?: StatsDaemonConfig;
  /** `fpctl start` also starts a watcher that restarts a daemon that died (crash, kill), with back-off. Default true. */
  respawn: boolean;
}

export interface StatsDaemonConfig {
  periodMs?: number; saCounters?: boolean; expire?: boolean; stateFile?: string; requestTimeoutMs?: number;
  /** Sequence numbers kept between Linux and the fast path on one outbound SA (docs/stats-daemon.md). */
  oseqMargin?: number;
  snmp?: { enabled?: boolean; master?: string; masterPort?: number; oid?: string };
}

const SD_KEYS = ['periodMs', 'saCounters', 'expire', 'stateFile', 'requestTimeoutMs', 'oseqMargin', 'snmp'];
const SD_SNMP_KEYS = ['enabled', 'master', 'masterPort', 'oid'];

function parseStatsDaemon(v: unknown, source: string): StatsDaemonConfig {
  const obj = (x: unknown, k: string) => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ConfigError(`${source}: "${k}" must be an object`);
    return x as Record<string, unknown>;
  };
  const o = obj(v, 'statsDaemon');
  for (const [k, x] of Object.entries(o)) {
    if (!SD_KEYS.includes(k)) throw new ConfigError(`${source}: unknown key "statsDaemon.${k}" (known: ${SD_KEYS.join(', ')})`);
    if ((k === 'periodMs' || k === 'requestTimeoutMs') && (typeof x !== 'number' || !Number.isInteger(x) || x < 10 || x > 3_600_000)) {
      throw new ConfigError(`${source}: "statsDaemon.${k}" must be an integer number of milliseconds in [10, 3600000]`);
    }
    if (k === 'oseqMargin' && (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 65536)) {
      throw new ConfigError(`${source}: "statsDaemon.oseqMargin" must be an integer in [0, 65536]`);
    }
    if ((k === 'saCounters' || k === 'expire') && typeof x !== 'boolean') throw new ConfigError(`${source}: "statsDaemon.${k}" must be true or false`);
    if (k === 'stateFile' && (typeof x !== 'string' || (x !== '' && !x.startsWith('/')))) throw new ConfigError(`${source}: "statsDaemon.stateFile" must be an absolute path or ""`);
    if (k === 'snmp') {
      for (const [sk, sx] of Object.entries(obj(x, 'statsDaemon.snmp'))) {
        if (!SD_SNMP_KEYS.includes(sk)) throw new ConfigError(`${source}: unknown key "statsDaemon.snmp.${sk}" (known: ${SD_SNMP_KEYS.join(', ')})`);
        if (sk === 'enabled' && typeof sx !== 'boolean') throw new ConfigError(`${source}: "statsDaemon.snmp.enabled" must be true or false`);
        if (sk === 'master' && (typeof sx !== 'string' || !sx)) throw new ConfigError(`${source}: "statsDaemon.snmp.master" must be a host name or address`);
        if (sk === 'masterPort' && (typeof sx !== 'number' || !Number.isInteger(sx) || sx < 1 || sx > 65535)) throw new ConfigError(`${source}: "statsDaemon.snmp.masterPort" must be a TCP port (1 to 65535)`);
        if (sk === 'oid' && (typeof sx !== 'string' || !/^\d+(\.\d+)+$/.test(sx))) throw new ConfigError(`${source}: "statsDaemon.snmp.oid" must be a dotted OID such as 1.3.6.1.3.8765`);
      }
    }
  }
  return JSON.parse(JSON.stringify(o)) as StatsDaemonConfig;
}

export const DEFAULT_CONFIG: LfpConfig = {
  controlPlaneNetns: '',
  vrfNetns: null,
  ports: [],
  portSpecs: [],
  fastpath: { eal: [], memMB: 256, mbufs: 16384, burst: 256, ipsec: true, ipsecFragment: 'after-encrypt', ipsecLocalDecrypt: true, dpviPersist: true },
  fpc: 'ipc:///run/lfp/fpc.sock',
  shm: { path: '/run/lfp/shm/lfp', hugePages: true },
  runDir: '/run/lfp',
  logDir: '/var/log/lfp',
  netlinkRcvbuf: 256 * 1024 * 1024,
  logLevel: 'info',
  respawn: true,
};

const SHM_KEYS = ['path', 'hugePages', 'maxVrfs', 'maxLinks', 'maxAddrs', 'maxRoutes', 'fib4Tables', 'tbl8Groups', 'fib6Tables',
  'fib6Entries', 'maxNexthops', 'maxGroups', 'maxNeigh', 'maxRules', 'maxPolicies', 'maxSas'];

export class ConfigError extends Error {}

const IFNAME = /^[^\s/:]{1,15}$/;

function parsePort(p: unknown, where: string): PortSpec {
  if (typeof p === 'string') {
    if (!IFNAME.test(p)) throw new ConfigError(`${where}: "ports" must be a list of interface names (1 to 15 characters)`);
    return { name: p };
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new ConfigError(`${where}: a port is a name or an object {name, dpdk | kernel, netns?}`);
  const o = p as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['name', 'dpdk', 'kernel', 'netns'].includes(key)) throw new ConfigError(`${where}: unknown key "${key}" (known: name, dpdk, kernel, netns)`);
  }
  if (typeof o.name !== 'string' || !IFNAME.test(o.name)) throw new ConfigError(`${where}: "name" must be an interface name (1 to 15 characters)`);
  const spec: PortSpec = { name: o.name };
  if (o.dpdk !== undefined) {
    if (typeof o.dpdk !== 'string' || !o.dpdk) throw new ConfigError(`${where}: "dpdk" must be a DPDK device string such as "net_af_xdp0,iface=enp1s0"`);
    spec.dpdk = o.dpdk;
  }
  if (o.kernel !== undefined) {
    if (typeof o.kernel !== 'string' || !IFNAME.test(o.kernel)) throw new ConfigError(`${where}: "kernel" must be the name of an existing Linux interface`);
    spec.kernel = o.kernel;
  }
  if (spec.dpdk && spec.kernel) throw new ConfigError(`${where}: give "dpdk" or "kernel", not both`);
  if (o.netns !== undefined) {
    if (typeof o.netns !== 'string' || !(spec.kernel || spec.dpdk)) throw new ConfigError(`${where}: "netns" goes with "kernel" or "dpdk" and is a netns name`);
    spec.netns = o.netns;
  }
  return spec;
}

export function parseConfig(text: string, source = 'config'): LfpConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: must be a JSON object`);
  const r = raw as Record<string, unknown>;
  const c: LfpConfig = { ...DEFAULT_CONFIG, shm: { ...DEFAULT_CONFIG.shm }, ports: [], portSpecs: [], fastpath: { ...DEFAULT_CONFIG.fastpath } };
  const str = (k: string) => { if (typeof r[k] !== 'string') throw new ConfigError(`${source}: "${k}" must be a string`); return r[k] as string; };
  const posInt = (v: unknown, k: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(`${source}: "${k}" must be a positive integer`);
    return v;
  };
  for (const k of Object.keys(r)) {
    switch (k) {
      case 'controlPlaneNetns': c.controlPlaneNetns = str(k); break;
      case 'fpc': c.fpc = str(k);
        if (!/^(ipc:\/\/\/.+|tcp:\/\/.+:\d+)$/.test(c.fpc)) throw new ConfigError(`${source}: "fpc" must be ipc:///path or tcp://host:port`);
        break;
      case 'runDir': c.runDir = str(k); break;
      case 'logDir': c.logDir = str(k); break;
      case 'logLevel': {
        const v = str(k);
        if (!['debug', 'info', 'warn', 'error'].includes(v)) throw new ConfigError(`${source}: "logLevel" must be debug, info, warn or error`);
        c.logLevel = v as LfpConfig['logLevel'];
        break;
      }
      case 'netlinkRcvbuf': c.netlinkRcvbuf = posInt(r[k], k); break;
      case 'vrfNetns': {
        const v = r[k];
        if (v !== null && (!Array.isArray(v) || v.some((p) => typeof p !== 'string' || p.length === 0))) {
          throw new ConfigError(`${source}: "vrfNetns" must be a list of network namespace names, or null for all`);
        }
        c.vrfNetns = v as string[] | null;
        break;
      }
      case 'ports': {
        const v = r[k];
        if (!Array.isArray(v)) throw new ConfigError(`${source}: "ports" must be a list of interface names or port objects`);
        c.portSpecs = v.map((p, i) => parsePort(p, `${source}: ports[${i}]`));
        c.ports = c.portSpecs.map((p) => p.name);
        if (new Set(c.ports).size !== c.ports.length) throw new ConfigError(`${source}: "ports" lists an interface twice`);
        break;
      }
      case 'fastpath': {
        const v = r[k];
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${source}: "fastpath" must be an object`);
        for (const [fk, fv] of Object.entries(v as Record<string, unknown>)) {
          if (fk === 'eal') {
            if (!Array.isArray(fv) || fv.some((a) => typeof a !== 'string')) throw new ConfigError(`${source}: "fastpath.eal" must be a list of strings`);
            c.fastpath.eal = fv as string[];
          } else if (fk === 'memMB' || fk === 'mbufs' || fk === 'burst') {
            c.fastpath[fk] = posInt(fv, `fastpath.${fk}`);
          } else if (fk === 'ipsec') {
            if (typeof fv !== 'boolean') throw new ConfigError(`${source}: "fastpath.ipsec" must be true or false`);
            c.fastpath.ipsec = fv;
          } else if (fk === 'ipsecFragment') {
            if (fv !== 'after-encrypt' && fv !== 'before-encrypt') throw new ConfigError(`${source}: "fastpath.ipsecFragment" must be "after-encrypt" or "before-encrypt"`);
            c.fastpath.ipsecFragment = fv;
          } else if (fk === 'ipsecLocalDecrypt') {
            if (typeof fv !== 'boolean') throw new ConfigError(`${source}: "fastpath.ipsecLocalDecrypt" must be true or false`);
            c.fastpath.ipsecLocalDecrypt = fv;
          } else if (fk === 'dpviPersist') {
            if (typeof fv !== 'boolean') throw new ConfigError(`${source}: "fastpath.dpviPersist" must be true or false`);
            c.fastpath.dpviPersist = fv;
          } else {
            throw new ConfigError(`${source}: unknown key "fastpath.${fk}" (known: eal, memMB, mbufs, burst, ipsec, ipsecFragment, ipsecLocalDecrypt, dpviPersist)`);
          }
        }
        if (c.fastpath.burst < 32 || c.fastpath.burst > 256) throw new ConfigError(`${source}: "fastpath.burst" must be between 32 and 256`);
        break;
      }
      case 'shm': {
        const v = r[k];
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${source}: "shm" must be an object`);
        for (const [sk, sv] of Object.entries(v as Record<string, unknown>)) {
          if (!SHM_KEYS.includes(sk)) throw new ConfigError(`${source}: unknown key "shm.${sk}" (known: ${SHM_KEYS.join(', ')})`);
          if (sk === 'path') {
            if (typeof sv !== 'string' || !sv.startsWith('/')) throw new ConfigError(`${source}: "shm.path" must be an absolute path`);
            c.shm.path = sv;
          } else if (sk === 'hugePages') {
            if (typeof sv !== 'boolean') throw new ConfigError(`${source}: "shm.hugePages" must be true or false`);
            c.shm.hugePages = sv;
          } else {
            (c.shm as unknown as Record<string, unknown>)[sk] = posInt(sv, `shm.${sk}`);
          }
        }
        break;
      }
      case 'statsDaemon': c.statsDaemon = parseStatsDaemon(r[k], source); break;
      case 'respawn':
        if (typeof r[k] !== 'boolean') throw new ConfigError(`${source}: "respawn" must be true or false`);
        c.respawn = r[k] as boolean;
        break;
      default:
        throw new ConfigError(`${source}: unknown key "${k}" (known: controlPlaneNetns, vrfNetns, ports, fastpath, fpc, shm, runDir, logDir, netlinkRcvbuf, logLevel, statsDaemon, respawn)`);
    }
  }
  return c;
}

export function loadConfig(file: string): LfpConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, file);
}

/** The file form of a config (what parseConfig reads back to the same config). */
export function configToJson(c: LfpConfig): string {
  const { portSpecs, ports: _names, ...rest } = c;
  void _names;
  return JSON.stringify({ ...rest, ports: portSpecs.map((p) => (p.dpdk || p.kernel ? p : p.name)) }, null, 2);
}

/** The fast path's statistics file (next to the shared-memory file). */
export function statsPath(c: LfpConfig): string { return `${c.shm.path}-stats`; }
