// fpsd, the stats daemon: pushes the fast path's per-SA counters into the kernel's XFRM SAs
// (XFRM_MSG_NEWAE) so that `ip -s xfrm state` shows the fast path's traffic, and raises the SAs'
// soft / hard byte and packet expiries (XFRM_MSG_EXPIRE) that the kernel cannot see itself, so
// IKE daemons (strongSwan) rekey on byte/packet lifetimes. See README.md and docs/stats-daemon.md.
//
// Inputs: the shared state memory (SA table: identity, lifetimes, entry sequence word = the tag of
// the SA incarnation; VRF table: VRF → netns name) and the fast path's stats file (per-SA slots,
// slot = SA entry index). Output: netlink XFRM requests in the SA's netns (VRF 0 = the control
// plane), and the stats file's oseq floors (the only thing fpsd writes there): every period, each SA's
// kernel oseq is read (GETAE); when Linux sent on the SA itself (its oseq moved away from what fpsd
// pushed) and is above the fast path's, it becomes the SA's floor, and the fast path numbers above it.
// Nothing is written to the shared memory.

import * as fs from 'fs';
import * as path from 'path';
import { RequestSocket, NetlinkError } from '../cache-manager/nlsock';
import type { LfpConfig } from '../lib/config';
import { statsPath } from '../lib/config';
import type { Logger } from '../lib/log';
import type { XfrmSa } from '../lib/model';
import { decodeXfrm, expireRequest, getAe, newAe, type XfrmAe, type XfrmSaRef } from '../netlink/xfrm';
import { NETLINK_XFRM } from '../netlink/constants';
import { decodeSa } from '../shared-mem/entries';
import { SA_E } from '../shared-mem/layout';
import { READ_BUSY, READ_OK, ShmReader } from '../shared-mem/reader';
import { StatsFile, type SaStats } from '../shared-mem/stats';
import { SNMP_DEFAULTS, SnmpExporter, type SnmpOptions } from './snmp';
import {
  expireAction, floorFor, type FpSaCounters, kernelOseq, type Limits, limitsOf, planChanges, planPush, replayChanges, sameCounters, ZERO_COUNTERS,
} from './sa-push';

const ESRCH = 3, ENOENT = 2, EINVAL = 22;
const NETNS_DIR = '/run/netns';

/** The daemon's settings (config key "statsDaemon", docs/config.md). */
export interface FpsdOptions {
  /** Period of the push (ms). */
  periodMs: number;
  /** Push per-SA counters into the kernel (NEWAE). */
  saCounters: boolean;
  /** Send XFRM_MSG_EXPIRE when the counters cross an SA's soft / hard byte or packet limit. */
  expire: boolean;
  /** Where the last pushed fast-path values are kept across fpsd restarts ("" = not kept). */
  stateFile: string;
  /** Per-request netlink timeout (ms). */
  requestTimeoutMs: number;
  /** Port counters to net-snmp through AgentX (off by default). */
  snmp: SnmpOptions;
  /**
   * Outbound SAs: the kernel's oseq is set to the fast path's oseq + this margin, so that packets Linux
   * encrypts itself take numbers the fast path does not reach before fpsd's next period (keep it below the
   * peers' replay windows: the fast path's numbers in between must stay inside the window). Default OSEQ_MARGIN.
   */
  oseqMargin?: number;
}

export const FPSD_DEFAULTS = { periodMs: 1000, saCounters: true, expire: true, requestTimeoutMs: 2000 } as const;

/**
 * The daemon's options: the config's `statsDaemon` object (validated by lib/config.ts when the file was
 * read) over the defaults, then overrides (command line). An `snmp` object enables SNMP unless it says
 * `enabled: false`.
 */
export function fpsdOptions(cfg: LfpConfig, over: Partial<FpsdOptions> = {}): FpsdOptions {
  const sd = cfg.statsDaemon ?? {};
  const o: FpsdOptions = { ...FPSD_DEFAULTS, stateFile: path.join(cfg.runDir, 'fpsd.state'), snmp: { ...SNMP_DEFAULTS } };
  if (sd.periodMs !== undefined) o.periodMs = sd.periodMs;
  if (sd.requestTimeoutMs !== undefined) o.requestTimeoutMs = sd.requestTimeoutMs;
  if (sd.saCounters !== undefined) o.saCounters = sd.saCounters;
  if (sd.expire !== undefined) o.expire = sd.expire;
  if (sd.stateFile !== undefined) o.stateFile = sd.stateFile;
  if (sd.oseqMargin !== undefined) o.oseqMargin = sd.oseqMargin;
  if (sd.snmp !== undefined) o.snmp = { ...SNMP_DEFAULTS, enabled: true, ...sd.snmp };
  return { ...o, ...over };
}

/** Number of SA slots of a stats file (0: the fast path keeps no per-SA counters). */
export function statsSaSlots(s: StatsFile): number { return s.layout.sas ?? 0; }

/** Counters of SA slot `slot` (the current incarnation's, summed over the workers), or null when out of range. */
export function readSaSlot(s: StatsFile, slot: number): SaStats | null {
  if (slot < 0 || slot >= statsSaSlots(s)) return null;
  return s.readSa(slot);
}

/** One SA of the shm SA table, as followed by the daemon. */
interface Track {
  slot: number;
  key: string; // vrf/daddr/spi/proto
  tag: number; // the entry's sequence word when read
  sa: XfrmSa;
  ref: XfrmSaRef;
  limits: Limits;
  /** Fast-path counters at the last successful push (or as restored from the state file). */
  last: FpSaCounters;
  /** Kernel add_time of the incarnation the expiry flags belong to (0 = not known yet). */
  addTime: string;
  softSent: boolean;
  hardSent: boolean;
  /** The kernel does not know the SA (ESRCH): skipped until the shm entry changes. */
  gone: boolean;
  /** Current values of the last push when an EXPIRE request failed (retried next period even without traffic). */
  expireRetry: { bytes: bigint; packets: bigint } | null;
  /** The kernel oseq fpsd last set (NEWAE); -1 = none. The kernel's oseq moving away from it = Linux sent. */
  pushedOseq: number;
}

interface VrfSock { netns: string | undefined; socks: (RequestSocket | undefined)[] }

/** Requests in flight per period: that many SAs are handled concurrently, each on its own socket of its VRF. */
export const CONCURRENCY = 8;

export interface FpsdCounters {
  ticks: number; pushes: number; unchanged: number; staleTags: number; getaeErrors: number; pushErrors: number;
  softExpires: number; hardExpires: number; expireErrors: number; goneSas: number; rescans: number;
  /** Oseq floors written (Linux sent on an SA above the fast path's numbers). */
  floors: number;
}

/** Default statsDaemon.oseqMargin: sequence numbers left to the fast path above its oseq in the kernel SA. */
export const OSEQ_MARGIN = 8;
/**
 * Packets Linux may send on an SA between fpsd's GETAE and its NEWAE (which sets the kernel's oseq without
 * seeing them): before a NEWAE that moves the kernel's oseq, the fast path's floor is set this far above the
 * GETAE's oseq, so that those numbers stay Linux's.
 */
export const OSEQ_RACE_SLACK = 2;

interface StateFile {
  version: 1;
  statsCreated: number;
  statsPid: number;
  sas: Record<string, { tag: number; last: FpSaCounters; addTime: string; softSent: boolean; hardSent: boolean; pushedOseq?: number }>;
}

export function saKey(sa: { vrf: number; daddr: string; spi: number; proto: number }): string {
  return `${sa.vrf}/${sa.daddr}/${sa.spi >>> 0}/${sa.proto}`;
}

export class StatsDaemon {
  readonly opts: FpsdOptions;
  readonly counters: FpsdCounters = {
    ticks: 0, pushes: 0, unchanged: 0, staleTags: 0, getaeErrors: 0, pushErrors: 0, softExpires: 0, hardExpires: 0,
    expireErrors: 0, goneSas: 0, rescans: 0, floors: 0,
  };
  /** The stats file is mapped writable (oseq floors); false: read-only, no floors. */
  private statsWritable = false;
  private reader: ShmReader | null = null;
  private readerIno = 0;
  private stats: StatsFile | null = null;
  private statsIno = 0;
  private statsCreated = -1;
  private statsPid = -1;
  private saGen = -1;
  private vrfGen = -1;
  private readonly tracks = new Map<number, Track>();
  private readonly socks = new Map<number, VrfSock>();
  /** VRF → its netns file (/run/netns/NAME); null = a VRF whose netns has no name (not reachable). */
  private vrfNetns = new Map<number, string | null>();
  private restored: StateFile['sas'] | null = null;
  private readonly startedAt = Date.now();
  private readonly buf = new Uint32Array(SA_E.WORDS);
  private readonly buf8 = new Uint8Array(this.buf.buffer);
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private ticking: Promise<void> | null = null;
  private waitingSaid = '';
  private dirtyState = false;

  private readonly snmp: SnmpExporter | null;

  constructor(readonly cfg: LfpConfig, private readonly log: Logger, opts: Partial<FpsdOptions> = {}) {
    this.opts = fpsdOptions(cfg, opts);
    this.snmp = this.opts.snmp.enabled ? new SnmpExporter(this.opts.snmp, cfg.ports, log) : null;
    this.loadState();
  }

  /** Runs tick() every period until close(). */
  start(): this {
    const loop = () => {
      if (this.closed) return;
      this.ticking = this.tick().catch((e: Error) => this.log.error(`period failed: ${e.stack ?? e.message}`)).finally(() => {
        this.ticking = null;
        if (!this.closed) this.timer = setTimeout(loop, this.opts.periodMs);
      });
    };
    loop();
    return this;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.saveState();
    this.snmp?.close();
    for (const v of this.socks.values()) this.closeSocks(v);
    this.socks.clear();
  }

  /** Resolves when a running period is over (tests, shutdown). */
  async idle(): Promise<void> { if (this.ticking) await this.ticking; }

  status(): Record<string, unknown> {
    return {
      pid: process.pid, periodMs: this.opts.periodMs, saCounters: this.opts.saCounters, expire: this.opts.expire,
      shm: this.reader ? this.cfg.shm.path : null, stats: this.stats ? statsPath(this.cfg) : null,
      statsSaSlots: this.stats ? statsSaSlots(this.stats) : 0, sas: this.tracks.size, counters: { ...this.counters },
      snmp: this.snmp ? { connected: this.snmp.connected, ...this.snmp.counters } : null,
    };
  }

  // -------------------------------------------------------------------------------------------

  private waiting(what: string): void {
    if (this.waitingSaid !== what) this.log.info(`waiting for ${what}`);
    this.waitingSaid = what;
  }

  private inode(p: string): number { try { return fs.statSync(p).ino; } catch { return -1; } }

  /** (Re)opens the shm when missing or replaced. False: not there (yet). */
  private attachShm(): boolean {
    const shmPath = this.cfg.shm.path;
    const shmIno = this.inode(shmPath);
    if (this.reader && (shmIno !== this.readerIno || !this.reader.valid())) {
      this.log.info(`shared memory ${shmPath} was replaced: re-reading it`);
      this.reader = null;
    }
    if (!this.reader) {
      try {
        this.reader = ShmReader.open(shmPath);
        this.readerIno = shmIno;
        this.saGen = -1; this.vrfGen = -1;
      } catch (e) {
        this.waiting(`the shared memory ${shmPath} (${(e as Error).message})`);
        return false;
      }
    }
    return true;
  }

  /** (Re)opens the fast path's stats file when missing or replaced. False: not there (yet). */
  private attachStats(): boolean {
    const sp = statsPath(this.cfg);
    const stIno = this.inode(sp);
    if (this.stats && (stIno !== this.statsIno || !this.stats.valid() || this.stats.created() !== this.statsCreated)) {
      this.log.info(`stats file ${sp} was replaced: re-reading it`);
      this.stats = null;
    }
    if (!this.stats) {
      try {
        try {
          this.stats = StatsFile.open(sp, { writable: true });
          this.statsWritable = true;
        } catch (e) {
          this.stats = StatsFile.open(sp);
          this.statsWritable = false;
          this.log.warn(`stats file ${sp} not writable (${(e as Error).message}): no oseq floors for the fast path`);
        }
        this.statsIno = stIno;
      } catch (e) {
        this.waiting(`the fast path's stats file ${sp} (${(e as Error).message})`);
        return false;
      }
      if (statsSaSlots(this.stats) === 0 && this.opts.saCounters) this.log.warn(`stats file ${sp} has no per-SA counters: no SA to push`);
    }
    // A fast path that restarted either carried its SA counters over (StatsFile.createFile keepSas) or
    // counts from 0 again: counterDelta() takes a counter that went down as new traffic from 0.
    const created = this.stats.created(), pid = this.workerPid();
    if (created !== this.statsCreated || pid !== this.statsPid) {
      if (this.statsCreated !== -1) this.log.info('the fast path restarted (new stats file)');
      this.statsCreated = created; this.statsPid = pid;
    }
    return true;
  }

  private workerPid(): number {
    try { return this.stats!.worker(0).fields[0]; } catch { return 0; }
  }

  /** netns path of a VRF (undefined = the daemon's own namespace), or null when unknown. */
  private netnsOf(vrf: number): string | undefined | null {
    if (vrf === 0) return this.cfg.controlPlaneNetns ? path.join(NETNS_DIR, this.cfg.controlPlaneNetns) : undefined;
    const ns = this.vrfNetns.get(vrf);
    if (ns === undefined || ns === null) {
      if (!this.unreachableVrfs.has(vrf)) this.log.warn(`VRF ${vrf}: ${ns === null ? 'its netns has no name in /run/netns' : 'unknown VRF'}: its SAs are not pushed`);
      this.unreachableVrfs.add(vrf);
      return null;
    }
    return ns;
  }
  private readonly unreachableVrfs = new Set<number>();

  private closeSocks(v: VrfSock): void {
    for (const s of v.socks) { try { s?.close(); } catch { /* closed */ } }
    v.socks = [];
  }

  /** Socket `k` (0 .. CONCURRENCY-1) of a VRF's netns, opened on first use; null: not reachable. */
  private sockFor(vrf: number, k = 0): RequestSocket | null {
    const ns = this.netnsOf(vrf);
    if (ns === null) return null;
    let have = this.socks.get(vrf);
    if (have && have.netns !== ns) { this.closeSocks(have); this.socks.delete(vrf); have = undefined; }
    if (!have) { have = { netns: ns, socks: [] }; this.socks.set(vrf, have); }
    const got = have.socks[k];
    if (got) return got;
    try {
      const sock = new RequestSocket(`xfrm vrf ${vrf}`, NETLINK_XFRM, ns, this.log);
      have.socks[k] = sock;
      return sock;
    } catch (e) {
      if (!this.unreachableVrfs.has(vrf)) this.log.error(`VRF ${vrf}: cannot open an XFRM netlink socket in ${ns ?? 'own netns'}: ${(e as Error).message}`);
      this.unreachableVrfs.add(vrf); // said once; retried every period, cleared when the VRF table changes
      return null;
    }
  }

  /** Re-reads the VRF and SA tables when their generation changed. */
  private rescan(): void {
    const r = this.reader!;
    const vg = r.kindGeneration('vrf');
    if (vg !== this.vrfGen) {
      const m = new Map<number, string | null>();
      try {
        for (const { obj } of r.list('vrf')) if (obj.vrf !== 0) m.set(obj.vrf, obj.name ? path.join(NETNS_DIR, obj.name) : null);
        this.vrfNetns = m;
        this.unreachableVrfs.clear();
        for (const [vrf, s] of this.socks) {
          if (vrf !== 0 && !m.has(vrf)) { this.closeSocks(s); this.socks.delete(vrf); }
        }
        this.vrfGen = vg;
      } catch (e) {
        this.log.warn(`VRF table busy: ${(e as Error).message}`);
      }
    }
    const sg = r.kindGeneration('sa');
    if (sg === this.saGen) return;
    this.counters.rescans++;
    let complete = true;
    const seen = new Set<number>();
    const n = r.config.maxSas;
    for (let i = 0; i < n; i++) {
      const res = r.readSa(i, this.buf);
      if (res === READ_BUSY) { complete = false; if (this.tracks.has(i)) seen.add(i); continue; }
      if (res !== READ_OK) continue;
      seen.add(i);
      const tag = this.buf[0];
      const prev = this.tracks.get(i);
      if (prev && prev.tag === tag) continue;
      const sa = decodeSa(this.buf, this.buf8);
      const key = saKey(sa);
      const ref: XfrmSaRef = { daddr: sa.daddr, spi: sa.spi, proto: sa.proto, family: sa.family, saddr: sa.saddr, reqid: sa.reqid };
      if (sa.mark) ref.mark = sa.mark;
      if (prev && prev.key === key) {
        // the same SA rewritten in place (e.g. an update): keep its counters and expiry flags
        prev.tag = tag; prev.sa = sa; prev.ref = ref; prev.limits = limitsOf(sa.lifetime); prev.gone = false;
        continue;
      }
      const t: Track = {
        slot: i, key, tag, sa, ref, limits: limitsOf(sa.lifetime), last: { ...ZERO_COUNTERS },
        addTime: '0', softSent: false, hardSent: false, gone: false, expireRetry: null, pushedOseq: -1,
      };
      const saved = this.restored?.[key];
      if (saved) {
        delete this.restored![key];
        t.last = { ...saved.last }; t.addTime = saved.addTime; t.softSent = saved.softSent; t.hardSent = saved.hardSent;
        if (typeof saved.pushedOseq === 'number') t.pushedOseq = saved.pushedOseq;
      }
      this.tracks.set(i, t);
    }
    for (const i of [...this.tracks.keys()]) if (!seen.has(i)) this.tracks.delete(i);
    // restored values apply to the SAs that show up in the first minute (cmgrd may still be syncing)
    if (this.restored && Date.now() - this.startedAt > 60_000) this.restored = null;
    this.dirtyState = true;
    if (complete) this.saGen = sg;
  }

  /** One period: every SA whose fast-path counters changed is pushed (and expired when due). */
  async tick(): Promise<void> {
    this.counters.ticks++;
    const haveStats = this.attachStats();
    this.snmp?.update(haveStats ? this.stats : null);
    if (!this.opts.saCounters || !haveStats || !this.attachShm()) return;
    if (this.waitingSaid) { this.log.info('shared memory and stats file attached'); this.waitingSaid = ''; }
    this.rescan();
    const stats = this.stats!;
    const nowSec = Date.now() / 1000;
    // SAs with work this period: changed counters (push), or else the floor check (GETAE: did Linux send on
    // the SA itself?) and an EXPIRE to retry
    const work: { t: Track; now: FpSaCounters | null; fpOseq: number }[] = [];
    for (const t of this.tracks.values()) {
      if (t.gone) continue;
      const c = readSaSlot(stats, t.slot);
      if (!c) continue;
      if (c.tag !== t.tag) { // an older SA's counts (or none: the fast path did not use this SA yet)
        if (c.packets || c.bytes) this.counters.staleTags++;
        if (this.statsWritable) work.push({ t, now: null, fpOseq: 0 });
        continue;
      }
      const now: FpSaCounters = { packets: c.packets, bytes: c.bytes, oseq: c.oseq, iseq: c.iseq };
      if (!sameCounters(now, t.last)) work.push({ t, now, fpOseq: c.oseq });
      else {
        this.counters.unchanged++;
        if (this.statsWritable || (t.expireRetry && this.opts.expire)) work.push({ t, now: null, fpOseq: c.oseq });
      }
    }
    // CONCURRENCY workers, each with its own socket per VRF (one request in flight per socket)
    let next = 0;
    const worker = async (k: number): Promise<void> => {
      while (next < work.length && !this.closed) {
        const { t, now, fpOseq } = work[next++];
        const sock = this.sockFor(t.sa.vrf, k);
        if (!sock) continue;
        if (now) await this.pushOne(t, sock, now, nowSec);
        else {
          if (this.statsWritable) await this.floorOne(t, sock, fpOseq);
          if (t.expireRetry && this.opts.expire && !t.gone) await this.expireIfDue(t, sock, t.expireRetry.bytes, t.expireRetry.packets);
        }
      }
    };
    const n = Math.min(CONCURRENCY, work.length);
    await Promise.all(Array.from({ length: n }, (_, k) => worker(k)));
    if (this.dirtyState) this.saveState();
  }

  private async request(sock: RequestSocket, build: (seq: number) => Uint8Array) {
    return sock.request(build, false, this.opts.requestTimeoutMs);
  }

  /** GETAE of an SA; null when it failed (counted; `gone` set on ESRCH). */
  private async getAeOf(t: Track, sock: RequestSocket): Promise<XfrmAe | null> {
    try {
      const msgs = await this.request(sock, (seq) => getAe(t.ref, seq));
      const r = msgs.length ? decodeXfrm(msgs[0], t.sa.vrf) : null;
      if (!r || r.kind !== 'ae') throw new Error(`unexpected answer to GETAE: ${r ? r.kind : 'none'}`);
      return r.ae;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ESRCH) {
        t.gone = true; this.counters.goneSas++;
        this.log.debug(`SA ${t.key}: not in the kernel (any more)`);
        return null;
      }
      this.counters.getaeErrors++;
      this.log.warn(`SA ${t.key}: GETAE failed: ${(e as Error).message}`);
      return null;
    }
  }

  /**
   * Writes the SA's oseq floor when Linux sent on it above the fast path's numbers (floorFor): the kernel's
   * oseq + `ahead` (the margin: Linux, which is sending, keeps its next numbers until the next period).
   * Returns the floor the fast path goes on from (0: none), so that the push sets the kernel above it.
   */
  private checkFloor(t: Track, kOseq: number, fpOseq: number, pushed = t.pushedOseq, ahead = 0): number {
    if (!this.statsWritable || !this.stats || t.slot >= statsSaSlots(this.stats)) return 0;
    let f = floorFor(kOseq, fpOseq, pushed);
    if (f === 0) return 0;
    f += ahead;
    const cur = this.stats.readFloor(t.slot);
    if (cur.tag === t.tag && cur.oseq >= f) return cur.oseq;
    try {
      this.stats.writeFloor(t.slot, t.tag, f);
      this.counters.floors++;
      this.log.debug(`SA ${t.key}: Linux sent up to ${f} (fast path at ${fpOseq}): floor written`);
      return f;
    } catch (e) {
      this.log.warn(`SA ${t.key}: cannot write the oseq floor: ${(e as Error).message}`);
      return 0;
    }
  }

  /** No new fast-path traffic: only the floor check (GETAE). */
  private async floorOne(t: Track, sock: RequestSocket, fpOseq: number): Promise<void> {
    const ae = await this.getAeOf(t, sock);
    if (ae) this.checkFloor(t, kernelOseq(ae), fpOseq, t.pushedOseq, this.opts.oseqMargin ?? OSEQ_MARGIN);
  }

  private async pushOne(t: Track, sock: RequestSocket, now: FpSaCounters, nowSec: number): Promise<void> {
    let ae: XfrmAe;
    try {
      const msgs = await this.request(sock, (seq) => getAe(t.ref, seq));
      const r = msgs.length ? decodeXfrm(msgs[0], t.sa.vrf) : null;
      if (!r || r.kind !== 'ae') throw new Error(`unexpected answer to GETAE: ${r ? r.kind : 'none'}`);
      ae = r.ae;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ESRCH) {
        t.gone = true; this.counters.goneSas++;
        this.log.debug(`SA ${t.key}: not in the kernel (any more)`);
        return;
      }
      this.counters.getaeErrors++;
      this.log.warn(`SA ${t.key}: GETAE failed: ${(e as Error).message}`);
      return;
    }
    // A new kernel incarnation under the same key (deleted and re-added): expiry flags start over.
    const addTime = ae.lifetime?.addTime ?? '0';
    if (t.addTime !== addTime) {
      if (t.addTime !== '0') { t.softSent = false; t.hardSent = false; }
      t.addTime = addTime;
    }
    const kOseq = kernelOseq(ae);
    // the fast path goes on above a floor written now: the kernel is set above that (+ margin)
    const margin = this.opts.oseqMargin ?? OSEQ_MARGIN;
    const floor = this.checkFloor(t, kOseq, now.oseq, t.pushedOseq, margin);
    let base = floor > now.oseq ? { ...now, oseq: floor } : now;
    let plan = planPush(ae, base, t.last, nowSec, margin);
    if (planChanges(ae, plan)) {
      // the replay state only when it changes: a copy of the GETAE's would set back an oseq Linux moved meanwhile
      const withReplay = replayChanges(ae, plan);
      if (withReplay && now.oseq > 0) {
        // Linux may send between this GETAE and the NEWAE: its next numbers (kOseq + 1 ..) stay its own
        const f = this.checkFloor(t, kOseq + OSEQ_RACE_SLACK, base.oseq, -1);
        if (f > base.oseq) { base = { ...now, oseq: f }; plan = planPush(ae, base, t.last, nowSec, margin); }
      }
      try {
        await this.request(sock, (seq) => newAe({
          ...t.ref, lifetime: plan.lifetime, replay: withReplay ? plan.replay : undefined, replayEsn: withReplay ? plan.replayEsn : undefined,
        }, seq, true));
        this.counters.pushes++;
        const pushed = plan.replayEsn ? plan.replayEsn.oseqHi * 0x100000000 + plan.replayEsn.oseq : plan.replay ? plan.replay.oseq : -1;
        if (withReplay && pushed !== kOseq) { t.pushedOseq = pushed; this.dirtyState = true; }
      } catch (e) {
        if (e instanceof NetlinkError && e.errno === ESRCH) { t.gone = true; this.counters.goneSas++; return; }
        this.counters.pushErrors++;
        this.log.warn(`SA ${t.key}: NEWAE failed: ${(e as Error).message}`);
        return; // t.last unchanged: the delta is pushed next period
      }
    }
    t.last = now;
    this.dirtyState = true;
    if (this.opts.expire) await this.expireIfDue(t, sock, plan.lifetime.bytes, plan.lifetime.packets);
  }

  private async expireIfDue(t: Track, sock: RequestSocket, bytes: bigint, packets: bigint): Promise<void> {
    t.expireRetry = null;
    for (;;) {
      const act = expireAction(t.limits, bytes, packets, t.softSent, t.hardSent);
      if (act === 'none') return;
      const hard = act === 'hard';
      try {
        await this.request(sock, (seq) => expireRequest(t.ref, hard, seq));
        if (hard) this.counters.hardExpires++; else this.counters.softExpires++;
        this.log.info(`SA ${t.key}: ${act} ${hard ? 'limit reached: the kernel deletes it' : 'limit reached: expire sent (rekey)'} (${bytes} bytes, ${packets} packets)`);
      } catch (e) {
        const errno = e instanceof NetlinkError ? e.errno : 0;
        if (errno !== ENOENT && errno !== EINVAL) {
          this.counters.expireErrors++;
          this.log.warn(`SA ${t.key}: ${act} EXPIRE failed: ${(e as Error).message}`);
          t.expireRetry = { bytes, packets }; // retried next period
          return;
        }
        // ENOENT: gone; EINVAL: the kernel already expires it (not valid any more): nothing to send
      }
      if (hard) { t.hardSent = true; t.gone = true; } else t.softSent = true;
      this.dirtyState = true;
    }
  }

  // ---- state file: the fast-path values already pushed, so a restarted fpsd does not push them twice ----

  private loadState(): void {
    const f = this.opts.stateFile;
    if (!f) return;
    let s: StateFile;
    try {
      s = JSON.parse(fs.readFileSync(f, 'utf8')) as StateFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn(`state file ${f} unreadable (${(e as Error).message}): starting from the fast path's counters`);
      return;
    }
    if (!s || s.version !== 1 || typeof s.sas !== 'object' || s.sas === null) {
      this.log.warn(`state file ${f} has an unknown format: ignored`);
      return;
    }
    this.restored = s.sas;
  }

  private saveState(): void {
    const f = this.opts.stateFile;
    this.dirtyState = false;
    if (!f || this.statsCreated < 0) return;
    const s: StateFile = { version: 1, statsCreated: this.statsCreated, statsPid: this.statsPid, sas: {} };
    for (const t of this.tracks.values()) {
      s.sas[t.key] = { tag: t.tag, last: t.last, addTime: t.addTime, softSent: t.softSent, hardSent: t.hardSent, pushedOseq: t.pushedOseq };
    }
    try {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      const tmp = `${f}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(s));
      fs.renameSync(tmp, f);
    } catch (e) {
      this.log.warn(`cannot write the state file ${f}: ${(e as Error).message}`);
    }
  }
}

