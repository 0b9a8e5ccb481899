// cmgrd's cache: the last state of every object it has sent to fpmd, per kind, keyed by objectKey.
import { AnyObject, ObjectKind, objectKey } from '../lib/model';

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

export class Cache {
  private maps = new Map<ObjectKind, Map<string, AnyObject>>();

  constructor() {
    for (const k of KIND_ORDER) this.maps.set(k, new Map());
  }

  map(kind: ObjectKind): Map<string, AnyObject> { return this.maps.get(kind)!; }

  get(o: AnyObject): AnyObject | undefined { return this.map(o.kind).get(objectKey(o)); }

  /** Stores o; returns false when an identical object was already there. */
  put(o: AnyObject): boolean {
    const m = this.map(o.kind);
    const key = objectKey(o);
    const old = m.get(key);
    if (old && same(old.obj, o.obj)) return false;
    m.set(key, o);
    return true;
  }

  /** Removes the object with o's key; returns the removed object. */
  remove(o: AnyObject): AnyObject | undefined {
    const m = this.map(o.kind);
    const key = objectKey(o);
    const old = m.get(key);
    if (old) m.delete(key);
    return old;
  }

  *ofVrf(vrf: number, kinds: ObjectKind[] = KIND_ORDER): Generator<AnyObject> {
    for (const k of kinds) for (const o of this.map(k).values()) if (o.obj.vrf === vrf) yield o;
  }

  removeVrf(vrf: number): number {
    let n = 0;
    for (const m of this.maps.values()) {
      for (const [key, o] of m) if (o.obj.vrf === vrf) { m.delete(key); n++; }
    }
    return n;
  }

  counts(): Record<ObjectKind, number> {
    const r = {} as Record<ObjectKind, number>;
    for (const k of KIND_ORDER) r[k] = this.map(k).size;
    return r;
  }

  *all(): Generator<AnyObject> {
    for (const k of KIND_ORDER) yield* this.map(k).values();
  }
}
