// The cache manager: follows the kernel through netlink, keeps a cache of what it sent, and feeds
// fpmd over FPC. See cache-manager/README.md and docs/design.md ("Sync protocol").
import * as fs from 'fs';
import * as path from 'path';
import { netns as nsNative } from '../native';
import { EventSocket, RequestSocket } from './nlsock';
import { Cache, KIND_ORDER } from './cache';
import { FpcClient } from '../fpc/transport';
import { MsgType } from '../fpc/codec';
import { decodeRtnl, dumpRequest, getNsidByFd } from '../netlink/rtnl';
import { decodeXfrm, dumpSa, dumpPolicy } from '../netlink/xfrm';
import { cloneMsg } from '../netlink/codec';
import type { NlMsg } from '../netlink/codec';
import * as C from '../netlink/constants';
import { objectKey } from '../lib/model';
import type { AnyObject, ObjectKind, Route, Link, NextHop, Neighbour } from '../lib/model';
import type { LfpConfig } from '../lib/config';
import type { Logger } from '../lib/log';

const NETNS_DIR = '/run/netns';
const RTNL_KINDS: ObjectKind[] = ['link', 'address', 'neighbour', 'rule', 'route'];
const XFRM_KINDS: ObjectKind[] = ['policy', 'sa'];
const ALL_KINDS: ObjectKind[] = [...RTNL_KINDS, ...XFRM_KINDS];

type Proto = 'rtnl' | 'xfrm';

/**
 * Multicast neighbour entries (ff02::1:ffxx:xxxx NOARP, ...) are not mirrored: the kernel creates
 * and removes them without notifications, and the fast path derives multicast MACs from the address.
 */
export function isMulticastNeighbour(n: Neighbour): boolean {
  return n.family === 6 ? n.addr.toLowerCase().startsWith('ff') : (Number(n.addr.split('.')[0]) & 0xf0) === 224;
}
interface Buffered { proto: Proto; msg: NlMsg }

const sameNh = (a: NextHop, b: NextHop): boolean => a.ifindex === b.ifindex && (a.gw ?? '') === (b.gw ?? '');

class VrfState {
  rtnl?: RequestSocket;
  xfrm?: RequestSocket;
  running = false;
  pendingKinds = new Set<ObjectKind>();
  buffer: Buffered[] = [];
  synced = false;
  timer: NodeJS.Timeout | null = null;
  constructor(readonly vrf: number, readonly nsid: number, public name: string, public netnsPath: string | undefined) {}
  get buffering(): boolean { return this.running || !this.synced; }
}

export interface CmgrdCounters {
  rtnlEvents: number; xfrmEvents: number; overruns: number; malformed: number; resyncs: number;
  resyncErrors: number; fpcReplays: number; sentAdds: number; sentDels: number; swept: number;
  ignored: number; nsidEvents: number;
}

export class CacheManager {
  readonly cache = new Cache();
  readonly vrfs = new Map<number, VrfState>();
  private rtnlEvents!: EventSocket;
  private xfrmEvents!: EventSocket;
  readonly fpc: FpcClient;
  readonly counters: CmgrdCounters = {
    rtnlEvents: 0, xfrmEvents: 0, overruns: 0, malformed: 0, resyncs: 0, resyncErrors: 0, fpcReplays: 0,
    sentAdds: 0, sentDels: 0, swept: 0, ignored: 0, nsidEvents: 0,
  };
  private cpPath: string | undefined;
  private pendingNsid = new Map<number, Buffered[]>();
  private ignoredNsids = new Set<number>();
  private learning = new Set<number>();
  private cpInode = -1;
  private statusTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private started = false;

  constructor(readonly cfg: LfpConfig, private log: Logger) {
    this.fpc = new FpcClient(cfg.fpc, log);
  }

  async start(): Promise<void> {
    if (this.cfg.controlPlaneNetns) {
      this.cpPath = path.join(NETNS_DIR, this.cfg.controlPlaneNetns);
      if (!fs.existsSync(this.cpPath)) {
        throw new Error(`control-plane netns "${this.cfg.controlPlaneNetns}" does not exist (${this.cpPath}); create it with "ip netns add ${this.cfg.controlPlaneNetns}"`);
      }
    }
    this.cpInode = nsNative.inode(this.cpPath ?? '/proc/self/ns/net');
    // Event sockets first, so that nothing that happens during the first dump is missed.
    this.rtnlEvents = new EventSocket('rtnetlink events', C.NETLINK_ROUTE, {
      groups: [C.RTNLGRP_LINK, C.RTNLGRP_NEIGH, C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV6_IFADDR, C.RTNLGRP_IPV4_ROUTE,
        C.RTNLGRP_IPV6_ROUTE, C.RTNLGRP_IPV4_RULE, C.RTNLGRP_IPV6_RULE, C.RTNLGRP_NSID],
      rcvbuf: this.cfg.netlinkRcvbuf, netns: this.cpPath,
    }, (m, nsid) => this.handleEvent('rtnl', m, nsid), (why) => this.onOverrun('rtnl', why), this.log);
    this.xfrmEvents = new EventSocket('xfrm events', C.NETLINK_XFRM, {
      groups: [C.XFRMNLGRP_SA, C.XFRMNLGRP_POLICY, C.XFRMNLGRP_EXPIRE],
      rcvbuf: Math.min(this.cfg.netlinkRcvbuf, 64 * 1024 * 1024), netns: this.cpPath,
    }, (m, nsid) => this.handleEvent('xfrm', m, nsid), (why) => this.onOverrun('xfrm', why), this.log);

    const v0 = this.addVrfState(0, -1, this.cfg.controlPlaneNetns, this.cpPath);
    this.cache.put({ kind: 'vrf', obj: { vrf: 0, nsid: -1, name: this.cfg.controlPlaneNetns } });
    await this.discoverVrfs();
    await this.resyncVrf(v0, ALL_KINDS);
    await Promise.all([...this.vrfs.values()].filter((s) => s.vrf !== 0).map((s) => this.resyncVrf(s, ALL_KINDS)));
    this.started = true;
    const c = this.cache.counts();
    this.log.info(`initial dump done: ${Object.entries(c).map(([k, n]) => `${n} ${k}`).join(', ')}`);

    this.fpc.on('ready', () => this.replayToFpc());
    this.fpc.on('refused', (text: string) => this.log.error(`fpmd refused this cmgrd: ${text}`));
    this.fpc.start();
    this.statusTimer = setInterval(() => this.writeStatus(), 1000);
    this.statusTimer.unref();
  }

  private addVrfState(vrf: number, nsid: number, name: string, netnsPath: string | undefined): VrfState {
    const st = new VrfState(vrf, nsid, name, netnsPath);
    this.vrfs.set(vrf, st);
    if (vrf === 0 && !this.openSockets(st)) throw new Error('cannot open netlink sockets in the control-plane namespace');
    return st;
  }

  /**
   * Request sockets of a VRF. VRF 0 keeps its sockets; another VRF's are opened for one resync and
   * closed after it, because an open socket would keep a deleted namespace (and its nsid) alive.
   */
  private openSockets(st: VrfState): boolean {
    if (st.rtnl && st.xfrm) return true;
    if (st.vrf !== 0 && !st.netnsPath) return false;
    try {
      st.rtnl = new RequestSocket(`rtnetlink vrf ${st.vrf}`, C.NETLINK_ROUTE, st.netnsPath, this.log);
      st.xfrm = new RequestSocket(`xfrm vrf ${st.vrf}`, C.NETLINK_XFRM, st.netnsPath, this.log);
      return true;
    } catch (e) {
      this.closeSockets(st);
      this.log.error(`vrf ${st.vrf}: cannot open netlink sockets in ${st.netnsPath}: ${(e as Error).message}`);
      return false;
    }
  }

  private closeSockets(st: VrfState): void {
    st.rtnl?.close();
    st.xfrm?.close();
    st.rtnl = st.xfrm = undefined;
  }

  // ---- VRFs (network namespaces with an nsid in the control-plane namespace) ----

  private async nsidOf(file: string): Promise<number> {
    const v0 = this.vrfs.get(0)!;
    const fd = nsNative.open(file);
    try {
      const msgs = await v0.rtnl!.request((seq) => getNsidByFd(fd, seq), false, 5000);
      for (const m of msgs) {
        const r = decodeRtnl(m, 0);
        if (r.kind === 'nsid') return r.nsid;
      }
      return -1;
    } finally {
      nsNative.close(fd);
    }
  }

  /** Maps nsid -> netns name for every /run/netns entry that has an nsid in the control plane. */
  private async scanNetns(): Promise<Map<number, string>> {
    const found = new Map<number, string>();
    let names: string[] = [];
    try { names = fs.readdirSync(NETNS_DIR); } catch { return found; }
    for (const name of names) {
      const file = path.join(NETNS_DIR, name);
      try {
        if (nsNative.inode(file) === this.cpInode) continue;
        const nsid = await this.nsidOf(file);
        if (nsid >= 0) found.set(nsid, name);
      } catch (e) {
        this.log.debug(`netns ${name}: ${(e as Error).message}`);
      }
    }
    return found;
  }

  /** Whether the namespace with this nsid and name is a VRF (config vrfNetns; default: all). */
  private isVrfNetns(name: string): boolean {
    return this.cfg.vrfNetns === null || this.cfg.vrfNetns.includes(name);
  }

  private async discoverVrfs(): Promise<void> {
    for (const [nsid, name] of await this.scanNetns()) {
      if (this.vrfs.has(nsid)) continue;
      if (!this.isVrfNetns(name) || !this.createVrf(nsid, name)) this.ignoredNsids.add(nsid);
    }
  }

  private createVrf(nsid: number, name: string): VrfState | null {
    if (nsid === 0) {
      this.log.error(`netns "${name}" has nsid 0, which is reserved for the control-plane VRF: give it another id (ip netns set ${name || 'NAME'} <1..${(this.cfg.shm.maxVrfs ?? 256) - 1}>)`);
      return null;
    }
    if (nsid >= (this.cfg.shm.maxVrfs ?? 256)) {
      this.log.error(`netns "${name}" has nsid ${nsid}, above the configured maxVrfs ${this.cfg.shm.maxVrfs ?? 256}: ignored`);
      return null;
    }
    const st = this.addVrfState(nsid, nsid, name, name ? path.join(NETNS_DIR, name) : undefined);
    this.log.info(`VRF ${nsid}: netns "${name || '(unnamed)'}"`);
    this.upsert({ kind: 'vrf', obj: { vrf: nsid, nsid, name } });
    return st;
  }

  /**
   * A namespace got an nsid (or sent an event with an nsid not known yet): find its name, decide
   * whether it is a VRF, then dump it. Its events wait in pendingNsid meanwhile.
   */
  private async learnNsid(nsid: number): Promise<void> {
    // (vrfs always has 0, the control plane: an nsid 0 still goes through, to be refused with a reason)
    if ((nsid !== 0 && this.vrfs.has(nsid)) || this.learning.has(nsid)) return;
    this.learning.add(nsid);
    try {
      const name = (await this.scanNetns()).get(nsid) ?? '';
      const pending = this.pendingNsid.get(nsid) ?? [];
      this.pendingNsid.delete(nsid);
      if (nsid !== 0 && this.vrfs.has(nsid)) return;
      if (!this.isVrfNetns(name)) {
        this.ignoredNsids.add(nsid);
        this.log.info(`nsid ${nsid} (netns "${name || 'unnamed'}") is not a VRF: not listed in vrfNetns`);
        return;
      }
      const st = this.createVrf(nsid, name);
      if (!st) { this.ignoredNsids.add(nsid); return; }
      st.buffer.push(...pending);
      await this.resyncVrf(st, ALL_KINDS);
    } catch (e) {
      this.log.error(`nsid ${nsid}: ${(e as Error).message}`);
    } finally {
      this.learning.delete(nsid);
    }
  }

  private removeVrf(nsid: number): void {
    const st = this.vrfs.get(nsid);
    if (!st || nsid === 0) return;
    this.vrfs.delete(nsid);
    if (st.timer) clearTimeout(st.timer);
    this.closeSockets(st);
    const n = this.cache.removeVrf(nsid);
    this.log.info(`VRF ${nsid} ("${st.name}") removed with ${n} objects`);
    this.send({ kind: 'vrf', obj: { vrf: nsid, nsid, name: st.name } }, true);
  }

  // ---- events ----

  /** Entry point of every netlink event message (nsid -1: the control-plane namespace). */
  handleEvent(proto: Proto, msg: NlMsg, nsid: number): void {
    if (proto === 'rtnl') this.counters.rtnlEvents++; else this.counters.xfrmEvents++;
    if (proto === 'rtnl' && (msg.type === C.RTM_NEWNSID || msg.type === C.RTM_DELNSID)) {
      if (nsid < 0) this.onNsidEvent(msg);
      return;
    }
    const vrf = nsid < 0 ? 0 : nsid;
    // nsid 0 is never VRF 0 (the control plane has no nsid of its own): it is refused like any non-VRF
    const st = nsid === 0 ? undefined : this.vrfs.get(vrf);
    if (!st) {
      if (this.ignoredNsids.has(nsid)) { this.counters.ignored++; return; }
      // An event from a namespace whose nsid we have not processed yet: learn it, hold its events.
      let pending = this.pendingNsid.get(nsid);
      if (!pending) { pending = []; this.pendingNsid.set(nsid, pending); void this.learnNsid(nsid); }
      pending.push({ proto, msg: cloneMsg(msg) });
      return;
    }
    if (st.buffering) {
      st.buffer.push({ proto, msg: cloneMsg(msg) });
      return;
    }
    this.apply(proto, msg, vrf);
  }

  private onNsidEvent(msg: NlMsg): void {
    this.counters.nsidEvents++;
    const r = decodeRtnl(msg, 0);
    if (r.kind !== 'nsid') return;
    if (r.op === 'new') {
      this.ignoredNsids.delete(r.nsid);
      void this.learnNsid(r.nsid);
    } else {
      this.ignoredNsids.delete(r.nsid);
      this.pendingNsid.delete(r.nsid);
      this.removeVrf(r.nsid);
    }
  }

  private apply(proto: Proto, msg: NlMsg, vrf: number): void {
    if (proto === 'xfrm') return this.applyXfrm(msg, vrf);
    const r = decodeRtnl(msg, vrf);
    switch (r.kind) {
      case 'link': {
        const o = { kind: 'link', obj: r.obj } as AnyObject;
        const old = this.cache.get(o)?.obj as Link | undefined;
        if (r.op === 'new') this.upsert(o); else this.remove(o);
        // The kernel flushes IPv4 routes (and neighbours) of a link set down or removed without
        // telling: re-read them. (A carrier change only marks routes linkdown: no re-read, which
        // would cost seconds with a large table every time a cable or peer flaps.)
        const l = r.obj as Link;
        if (r.op === 'del' || (old && old.adminUp !== l.adminUp)) {
          this.scheduleResync(vrf, ['address', 'neighbour', 'route']);
        }
        return;
      }
      case 'address': case 'neighbour': case 'rule': {
        const o = { kind: r.kind, obj: r.obj } as AnyObject;
        if (o.kind === 'neighbour' && isMulticastNeighbour(o.obj)) { this.counters.ignored++; return; }
        if (r.op === 'new') this.upsert(o); else this.remove(o);
        return;
      }
      case 'route':
        return this.applyRoute(r.op, r.obj, msg.flags);
      case 'malformed':
        return this.onMalformed(vrf, 'rtnetlink', r.text, ['link', 'address', 'neighbour', 'rule', 'route']);
      default:
        this.counters.ignored++;
    }
  }

  private applyRoute(op: 'new' | 'del', r: Route, flags: number): void {
    const o: AnyObject = { kind: 'route', obj: r };
    // (the previous route matters only for IPv6 multipath merging: no second key lookup for IPv4)
    const old = r.family === 6 ? this.cache.get(o)?.obj as Route | undefined : undefined;
    if (r.family === 6 && old && old.nexthops.length > 0) {
      // IPv6 multipath: a single next hop may be appended or deleted on its own.
      if (op === 'del' && r.nexthops.length > 0 && r.nexthops.length < old.nexthops.length) {
        const left = old.nexthops.filter((a) => !r.nexthops.some((b) => sameNh(a, b)));
        if (left.length > 0 && left.length < old.nexthops.length) {
          this.upsert({ kind: 'route', obj: { ...old, nexthops: left } });
          return;
        }
      }
      if (op === 'new' && (flags & C.NLM_F_APPEND) && !(flags & C.NLM_F_REPLACE)) {
        const add = r.nexthops.filter((b) => !old.nexthops.some((a) => sameNh(a, b)));
        this.upsert({ kind: 'route', obj: { ...r, nexthops: [...old.nexthops, ...add] } });
        return;
      }
    }
    if (op === 'new') this.upsert(o); else this.remove(o);
  }

  private applyXfrm(msg: NlMsg, vrf: number): void {
    const r = decodeXfrm(msg, vrf);
    switch (r.kind) {
      case 'sa': case 'policy': {
        const o = { kind: r.kind, obj: r.obj } as AnyObject;
        if (r.op === 'new') this.upsert(o); else this.remove(o);
        return;
      }
      case 'expire':
        if (r.hard) this.remove({ kind: 'sa', obj: r.sa });
        return;
      case 'flush':
        this.scheduleResync(vrf, XFRM_KINDS);
        return;
      case 'malformed':
        return this.onMalformed(vrf, 'xfrm', r.text, XFRM_KINDS);
      default:
        this.counters.ignored++;
    }
  }

  private onMalformed(vrf: number, what: string, text: string, kinds: ObjectKind[]): void {
    this.counters.malformed++;
    this.log.error(`vrf ${vrf}: malformed ${what} message: ${text}; re-reading the kernel state`);
    this.scheduleResync(vrf, kinds);
  }

  private onOverrun(proto: Proto, why: string): void {
    this.counters.overruns++;
    for (const st of this.vrfs.values()) this.scheduleResync(st.vrf, proto === 'rtnl' ? RTNL_KINDS : XFRM_KINDS, 0);
    void why;
  }

  // ---- cache and FPC ----

  private send(o: AnyObject, del: boolean): void {
    if (del) this.counters.sentDels++; else this.counters.sentAdds++;
    this.fpc.sendObject(o, del);
  }

  private upsert(o: AnyObject): void {
    if (this.cache.put(o)) this.send(o, false);
  }

  private remove(o: AnyObject): void {
    const old = this.cache.remove(o);
    if (old) this.send(old, true);
  }

  /** Hello accepted by fpmd (first connection or fpmd restarted): replay everything for mark and sweep. */
  private replayToFpc(): void {
    this.counters.fpcReplays++;
    this.fpc.sendControl(MsgType.SYNC_BEGIN);
    let n = 0;
    for (const o of this.cache.all()) { this.fpc.sendObject(o, false); n++; }
    this.fpc.sendControl(MsgType.SYNC_END);
    this.log.info(`FPC: full replay of ${n} objects queued`);
  }

  // ---- resync: dump + mark and sweep ----

  scheduleResync(vrf: number, kinds: ObjectKind[], delayMs = 10): void {
    const st = this.vrfs.get(vrf);
    if (!st) return;
    for (const k of kinds) st.pendingKinds.add(k);
    if (st.timer || st.running) return;
    st.timer = setTimeout(() => {
      st.timer = null;
      void this.resyncVrf(st, []);
    }, delayMs);
  }

  private dumpsFor(kind: ObjectKind): { proto: Proto; build: (seq: number) => Uint8Array }[] {
    switch (kind) {
      case 'link': return [{ proto: 'rtnl', build: (s) => dumpRequest(C.RTM_GETLINK, C.AF_UNSPEC, s) }];
      case 'address': return [{ proto: 'rtnl', build: (s) => dumpRequest(C.RTM_GETADDR, C.AF_UNSPEC, s) }];
      case 'neighbour': return [{ proto: 'rtnl', build: (s) => dumpRequest(C.RTM_GETNEIGH, C.AF_UNSPEC, s) }];
      case 'rule': return [C.AF_INET, C.AF_INET6].map((f) => ({ proto: 'rtnl' as Proto, build: (s: number) => dumpRequest(C.RTM_GETRULE, f, s) }));
      case 'route': return [{ proto: 'rtnl', build: (s) => dumpRequest(C.RTM_GETROUTE, C.AF_UNSPEC, s) }];
      case 'policy': return [{ proto: 'xfrm', build: (s) => dumpPolicy(s) }];
      case 'sa': return [{ proto: 'xfrm', build: (s) => dumpSa(s) }];
      default: return [];
    }
  }

  /** Dumps `kinds` (plus whatever is pending) of one VRF, sweeps what the dump did not show, replays buffered events. */
  async resyncVrf(st: VrfState, kinds: ObjectKind[]): Promise<void> {
    for (const k of kinds) st.pendingKinds.add(k);
    if (st.running) return;
    st.running = true;
    try {
      while (st.pendingKinds.size > 0 && this.vrfs.get(st.vrf) === st && !this.closed) {
        const todo = ALL_KINDS.filter((k) => st.pendingKinds.has(k));
        st.pendingKinds.clear();
        this.counters.resyncs++;
        try {
          await this.dumpAndSweep(st, todo);
        } catch (e) {
          this.counters.resyncErrors++;
          this.log.error(`vrf ${st.vrf}: resync of ${todo.join(',')} failed: ${(e as Error).message}; retrying`);
          for (const k of todo) st.pendingKinds.add(k);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      st.synced = true;
    } finally {
      st.running = false;
      const buf = st.buffer;
      st.buffer = [];
      if (this.vrfs.get(st.vrf) === st) for (const b of buf) this.apply(b.proto, b.msg, st.vrf);
      if (st.pendingKinds.size > 0 && !st.timer && !this.closed) this.scheduleResync(st.vrf, [], 0);
    }
  }

  private async dumpAndSweep(st: VrfState, kinds: ObjectKind[]): Promise<void> {
    if (!this.openSockets(st)) return; // unnamed namespace: events only
    try {
      await this.dumpAndSweepWith(st, st.rtnl!, st.xfrm!, kinds);
    } finally {
      if (st.vrf !== 0) this.closeSockets(st);
    }
  }

  private async dumpAndSweepWith(st: VrfState, rtnl: RequestSocket, xfrm: RequestSocket, kinds: ObjectKind[]): Promise<void> {
    const seen = new Set<string>();
    const swept: ObjectKind[] = [];
    for (const kind of kinds) {
      let complete = true;
      for (const d of this.dumpsFor(kind)) {
        const sock = d.proto === 'rtnl' ? rtnl : xfrm;
        const msgs = await sock.request(d.build, true);
        for (const m of msgs) {
          const r = (d.proto === 'rtnl' ? decodeRtnl(m, st.vrf) : decodeXfrm(m, st.vrf)) as { kind: string; op?: string; obj?: unknown; text?: string };
          if (r.kind === kind && r.op === 'new') {
            const o = { kind, obj: r.obj } as AnyObject;
            if (o.kind === 'neighbour' && isMulticastNeighbour(o.obj)) continue;
            this.upsert(o);
            seen.add(kind + '|' + this.keyOf(o));
          } else if (r.kind === 'malformed') {
            complete = false;
            this.counters.malformed++;
            this.log.error(`vrf ${st.vrf}: malformed ${kind} in dump: ${r.text}`);
          }
        }
      }
      if (complete) swept.push(kind); // never sweep on the basis of a dump we could not read whole
    }
    let n = 0;
    const stale: AnyObject[] = [];
    for (const o of this.cache.ofVrf(st.vrf, swept)) if (!seen.has(o.kind + '|' + this.keyOf(o))) stale.push(o);
    for (const o of stale) { this.remove(o); n++; }
    this.counters.swept += n;
    if (n) this.log.info(`vrf ${st.vrf}: resync removed ${n} stale objects`);
  }

  private keyOf(o: AnyObject): string { return objectKey(o); }

  // ---- status ----

  status(): Record<string, unknown> {
    return {
      pid: process.pid, started: this.started, fpc: { state: this.fpc.state, endpoint: this.cfg.fpc, ...this.fpc.counters, inFlight: this.fpc.inFlight },
      vrfs: [...this.vrfs.values()].map((s) => ({ vrf: s.vrf, name: s.name, synced: s.synced })),
      cache: this.cache.counts(), counters: this.counters,
      sockets: { rtnl: this.rtnlEvents?.counters, xfrm: this.xfrmEvents?.counters },
    };
  }

  private writeStatus(): void {
    try {
      const file = path.join(this.cfg.runDir, 'cmgrd.status');
      fs.writeFileSync(file + '.tmp', JSON.stringify(this.status()));
      fs.renameSync(file + '.tmp', file);
    } catch { /* run dir missing: status is optional */ }
  }

  close(): void {
    this.closed = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.rtnlEvents?.close();
    this.xfrmEvents?.close();
    for (const st of this.vrfs.values()) { this.closeSockets(st); if (st.timer) clearTimeout(st.timer); }
    this.fpc.close();
  }
}
