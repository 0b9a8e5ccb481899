// Canonical one-line forms of routes and neighbours, from `ip -j` output and from lfp's model
// objects, so that tests can compare what the kernel has with what lfp mirrors.
import type { Netns } from './netns';
import type { Route, Neighbour } from '../../lib/model';

const TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };
const NUD: Record<string, number> = { INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20, NOARP: 0x40, PERMANENT: 0x80 };

type IpRoute = {
  type?: string; dst: string; table?: string; metric?: number; tos?: string; gateway?: string; dev?: string;
  nexthops?: { gateway?: string; dev?: string; weight?: number }[];
};
type IpNeigh = { dst: string; dev: string; lladdr?: string; state?: string[] };

export function ifindexMap(ns: Netns): Map<string, number> {
  const links = ns.ipJson<{ ifname: string; ifindex: number }[]>('link show');
  return new Map(links.map((l) => [l.ifname, l.ifindex]));
}

function routeLine(family: 4 | 6, table: number, type: string, dst: string, plen: number, tos: number, metric: number,
  nhs: { gw?: string; ifindex: number; weight: number }[]): string {
  const multi = nhs.length > 1;
  const nh = nhs.map((n) => `${n.gw ?? '-'}@${n.ifindex}${multi ? `*${n.weight}` : ''}`).sort().join(',');
  return `v${family} t${table} ${type} ${dst}/${plen} tos${tos} m${metric} [${nh}]`;
}

export function kernelRoutes(ns: Netns): string[] {
  const idx = ifindexMap(ns);
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    for (const r of ns.ipJson<IpRoute[]>(`-${family} route show table all`)) {
      const table = r.table === undefined ? 254 : (TABLES[r.table] ?? Number(r.table));
      let dst = r.dst, plen = family === 4 ? 32 : 128;
      if (dst === 'default') { dst = family === 4 ? '0.0.0.0' : '::'; plen = 0; }
      else if (dst.includes('/')) { const [a, p] = dst.split('/'); dst = a; plen = Number(p); }
      const nhs = r.nexthops
        ? r.nexthops.map((n) => ({ gw: n.gateway, ifindex: n.dev ? idx.get(n.dev) ?? -1 : 0, weight: n.weight ?? 1 }))
        : (r.gateway || r.dev) ? [{ gw: r.gateway, ifindex: r.dev ? idx.get(r.dev) ?? -1 : 0, weight: 1 }] : [];
      out.push(routeLine(family, table, r.type ?? 'unicast', dst, plen, r.tos ? Number(r.tos) : 0, r.metric ?? 0, nhs));
    }
  }
  return out.sort();
}

export function lfpRoutes(routes: Route[]): string[] {
  return routes.map((r) => routeLine(r.family, r.table, r.type, r.dst, r.plen, r.tos, r.priority,
    r.nexthops.map((n) => ({ gw: n.gw, ifindex: n.ifindex, weight: n.weight })))).sort();
}

function neighLine(ifindex: number, addr: string, lladdr: string | undefined, state: number): string {
  return `${ifindex} ${addr} ${lladdr ?? '-'} ${state}`;
}

export function kernelNeighbours(ns: Netns): string[] {
  const idx = ifindexMap(ns);
  // multicast entries are not mirrored (cache-manager isMulticastNeighbour: the kernel does not notify them)
  return ns.ipJson<IpNeigh[]>('neigh show nud all').filter((n) => !/^(ff|22[4-9]\.|23\d\.)/i.test(n.dst)).map((n) =>
    neighLine(idx.get(n.dev) ?? -1, n.dst, n.lladdr, (n.state ?? []).reduce((a, s) => a | (NUD[s] ?? 0), 0))).sort();
}

export function lfpNeighbours(ns: Neighbour[]): string[] {
  return ns.map((n) => neighLine(n.ifindex, n.addr, n.lladdr, n.state)).sort();
}

/** A short description of how two sorted lists differ (for assertion messages). */
export function diff(kernel: string[], lfp: string[], max = 10): string {
  const k = new Set(kernel), l = new Set(lfp);
  const missing = kernel.filter((x) => !l.has(x));
  const extra = lfp.filter((x) => !k.has(x));
  return `kernel ${kernel.length}, lfp ${lfp.length}; missing in lfp (${missing.length}): ${missing.slice(0, max).join(' ; ')}; ` +
    `stale in lfp (${extra.length}): ${extra.slice(0, max).join(' ; ')}`;
}
