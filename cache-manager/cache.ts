// cmgrd's cache: the last state of every object it has sent to fpmd, per kind, keyed by objectKey.
//
// The objects are stored bare (no {kind, obj} wrapper; one is made when asked for). IPv4 routes,
// the bulk of a large table, are not kept under objectKey strings: a Map of a million string keys
// costs about a microsecond per insert (hashing, cache misses) and a million retained strings. They
// are grouped by (vrf, table, tos, priority, plen) and then found by the destination as two 16-bit
// halves (small-integer keys, small maps): the same identity as objectKey (vrf, table, dst, plen, tos,
// priority), since the destination text is canonical; a destination that is not canonical
// dotted-quad text goes to the plain string map instead, so the key stays the same either way.
import { AnyObject, ObjectKind, objectKey, Route } from '../lib/model';

export const KIND_ORDER: ObjectKind[] = ['vrf', 'link', 'address', 'neighbour', 'rule', 'route', 'policy', 'sa'];

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** u32 of canonical dotted-quad text ("10.0.0.0"; no leading zeros), -1 for anything else. */
export function canonicalIpv4(s: string): number {
  let v = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      v = v * 256 + part; part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return v * 256 + part;
}

type Hi = Map<number, Map<number, Route>>;

/** IPv4 routes by (vrf, table, tos, priority, plen) then destination. */
class Route4Store {
  private groups = new Map<string, Hi>();
  private last: Hi | undefined;
  private lv = -1; private lt = -1; private ltos = -1; private lp = -1; private lplen = -1;
  size = 0;

  private group(r: Route, create: boolean): Hi | undefined {
    if (this.last !== undefined && r.vrf === this.lv && r.table === this.lt && r.tos === this.ltos && r.priority === this.lp && r.plen === this.lplen) {
      return this.last;
    }
    const k = `${r.vrf}/${r.table}/${r.tos}/${r.priority}/${r.plen}`;
    let g = this.groups.get(k);
    if (g === undefined) {
      if (!create) return undefined;
      g = new Map();
      this.groups.set(k, g);
    }
    this.last = g;
    this.lv = r.vrf; this.lt = r.table; this.ltos = r.tos; this.lp = r.priority; this.lplen = r.plen;
    return g;
  }

  get(r: Route, dst: number): Route | undefined {
    return this.group(r, false)?.get(dst >>> 16)?.get(dst & 0xffff);
  }

  /** Stores r; returns the route it replaced. */
  set(r: Route, dst: number): Route | undefined {
    const g = this.group(r, true)!;
    let lo = g.get(dst >>> 16);
    if (lo === undefined) { lo = new Map(); g.set(dst >>> 16, lo); }
    const old = lo.get(dst & 0xffff);
    lo.set(dst & 0xffff, r);
    if (old === undefined) this.size++;
    return old;
  }

  delete(r: Route, dst: number): Route | undefined {
    const g = this.group(r, false);
    const lo = g?.get(dst >>> 16);
    const old = lo?.get(dst & 0xffff);
    if (old === undefined) return undefined;
    lo!.delete(dst & 0xffff);
    this.size--;
    if (lo!.size === 0) {
      g!.delete(dst >>> 16);
      if (g!.size === 0) {
        this.groups.delete(`${r.vrf}/${r.table}/${r.tos}/${r.priority}/${r.plen}`);
        this.last = undefined;
      }
    }
    return old;
  }

  *values(): Generator<Route> {
    for (const g of this.groups.values()) for (const lo of g.values()) yield* lo.values();
  }

  /** Removes every route of a VRF; returns how many. */
  removeVrf(vrf: number): number {
    let n = 0;
    const prefix = `${vrf}/`;
    for (const [k, g] of this.groups) {
      if (!k.startsWith(prefix)) continue;
      for (const lo of g.values()) n += lo.size;
      this.groups.delete(k);
    }
    this.size -= n;
    this.last = undefined;
    return n;
  }
}

export class Cache {
  private maps = new Map<ObjectKind, Map<string, AnyObject['obj']>>();
  private routes4 = new Route4Store();

  constructor() {
    for (const k of KIND_ORDER) this.maps.set(k, new Map());
  }

  private map(kind: ObjectKind): Map<string, AnyObject['obj']> { return this.maps.get(kind)!; }

  private static dst4(o: AnyObject): number {
    return o.kind === 'route' && o.obj.family === 4 ? canonicalIpv4(o.obj.dst) : -1;
  }

  get(o: AnyObject): AnyObject | undefined {
    const d = Cache.dst4(o);
    const obj = d >= 0 ? this.routes4.get(o.obj as Route, d) : this.map(o.kind).get(objectKey(o));
    return obj === undefined ? undefined : { kind: o.kind, obj } as AnyObject;
  }

  /** Stores o; returns false when an identical object was already there. */
  put(o: AnyObject): boolean {
    const d = Cache.dst4(o);
    if (d >= 0) {
      const r = o.obj as Route;
      const old = this.routes4.get(r, d);
      if (old !== undefined && same(old, r)) return false;
      this.routes4.set(r, d);
      return true;
    }
    const m = this.map(o.kind);
    const key = objectKey(o);
    const old = m.get(key);
    if (old && same(old, o.obj)) return false;
    m.set(key, o.obj);
    return true;
  }

  /** Removes the object with o's key; returns the removed object. */
  remove(o: AnyObject): AnyObject | undefined {
    const d = Cache.dst4(o);
    let old: AnyObject['obj'] | undefined;
    if (d >= 0) {
      old = this.routes4.delete(o.obj as Route, d);
    } else {
      const m = this.map(o.kind);
      const key = objectKey(o);
      old = m.get(key);
      if (old) m.delete(key);
    }
    return old === undefined ? undefined : { kind: o.kind, obj: old } as AnyObject;
  }

  private *valuesOf(kind: ObjectKind): Generator<AnyObject> {
    for (const obj of this.map(kind).values()) yield { kind, obj } as AnyObject;
    if (kind === 'route') for (const obj of this.routes4.values()) yield { kind, obj };
  }

  *ofVrf(vrf: number, kinds: ObjectKind[] = KIND_ORDER): Generator<AnyObject> {
    for (const k of kinds) for (const o of this.valuesOf(k)) if (o.obj.vrf === vrf) yield o;
  }

  removeVrf(vrf: number): number {
    let n = 0;
    for (const m of this.maps.values()) {
      for (const [key, o] of m) if (o.vrf === vrf) { m.delete(key); n++; }
    }
    return n + this.routes4.removeVrf(vrf);
  }

  counts(): Record<ObjectKind, number> {
    const r = {} as Record<ObjectKind, number>;
    for (const k of KIND_ORDER) r[k] = this.map(k).size + (k === 'route' ? this.routes4.size : 0);
    return r;
  }

  *all(): Generator<AnyObject> {
    for (const k of KIND_ORDER) yield* this.valuesOf(k);
  }
}
