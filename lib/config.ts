// The lfp configuration file (JSON), read by `fpctl start -c FILE` and by each daemon.
// docs/config.md documents every key; unknown keys and wrong types are refused with a clear error.
import * as fs from 'fs';

export interface ShmSizes {
  maxVrfs?: number; maxLinks?: number; maxAddrs?: number; maxRoutes?: number;
  fib4Tables?: number; tbl8Groups?: number; fib6Tables?: number; fib6Entries?: number;
  maxNexthops?: number; maxGroups?: number; maxNeigh?: number; maxRules?: number;
  maxPolicies?: number; maxSas?: number;
}

export interface LfpConfig {
  /** Linux network namespace that is the control plane (VRF 0); "" = the namespace fpctl runs in. */
  controlPlaneNetns: string;
  /**
   * Names of the network namespaces that are VRFs (VRF id = their nsid in the control plane), or null:
   * every namespace with an nsid. (The kernel also gives nsids to namespaces that merely hold the
   * peer of a veth, which a list keeps out.)
   */
  vrfNetns: string[] | null;
  /** Names of the interfaces the fast path owns (in the control-plane netns). */
  ports: string[];
  /** FPC endpoint: ipc:///path (default) or tcp://host:port. */
  fpc: string;
  /** Shared-memory file and table sizes. */
  shm: { path: string } & ShmSizes;
  /** Where pid files and the FPC socket live. */
  runDir: string;
  /** Where daemon logs go. */
  logDir: string;
  /** Netlink event socket receive buffer in bytes (SO_RCVBUFFORCE). */
  netlinkRcvbuf: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export const DEFAULT_CONFIG: LfpConfig = {
  controlPlaneNetns: '',
  vrfNetns: null,
  ports: [],
  fpc: 'ipc:///run/lfp/fpc.sock',
  shm: { path: '/dev/shm/lfp' },
  runDir: '/run/lfp',
  logDir: '/var/log/lfp',
  netlinkRcvbuf: 256 * 1024 * 1024,
  logLevel: 'info',
};

const SHM_KEYS = ['path', 'maxVrfs', 'maxLinks', 'maxAddrs', 'maxRoutes', 'fib4Tables', 'tbl8Groups', 'fib6Tables',
  'fib6Entries', 'maxNexthops', 'maxGroups', 'maxNeigh', 'maxRules', 'maxPolicies', 'maxSas'];

export class ConfigError extends Error {}

export function parseConfig(text: string, source = 'config'): LfpConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: must be a JSON object`);
  const r = raw as Record<string, unknown>;
  const c: LfpConfig = { ...DEFAULT_CONFIG, shm: { ...DEFAULT_CONFIG.shm }, ports: [] };
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
        if (!Array.isArray(v) || v.some((p) => typeof p !== 'string' || p.length === 0 || p.length > 15)) {
          throw new ConfigError(`${source}: "ports" must be a list of interface names (1 to 15 characters)`);
        }
        if (new Set(v).size !== v.length) throw new ConfigError(`${source}: "ports" lists an interface twice`);
        c.ports = v as string[];
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
          } else {
            (c.shm as unknown as Record<string, unknown>)[sk] = posInt(sv, `shm.${sk}`);
          }
        }
        break;
      }
      default:
        throw new ConfigError(`${source}: unknown key "${k}" (known: controlPlaneNetns, vrfNetns, ports, fpc, shm, runDir, logDir, netlinkRcvbuf, logLevel)`);
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
