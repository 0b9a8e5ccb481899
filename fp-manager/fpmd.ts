// fpmd: applies FPC messages to shared memory. The only writer of the shared-memory file.
// On start it re-attaches to an existing file (the fast path keeps forwarding with what is there),
// and the FPC Hello makes cmgrd replay its cache inside SYNC_BEGIN/SYNC_END (mark and sweep).
import { FpcServer } from '../fpc/transport';
import { decodeObject, Envelope, FpcError, kindOf, MsgType, msgTypeName, ReportCode } from '../fpc/codec';
import { dirname } from 'path';
import { prepareHugeDir } from '../shared-mem/huge';
import { ShmWriter, ShmFullError } from '../shared-mem/writer';
import type { CounterName } from '../shared-mem/layout';
import type { LfpConfig } from '../lib/config';
import type { Logger } from '../lib/log';
import type { Hello } from '../fpc/codec';

export class FpManager {
  writer!: ShmWriter;
  server!: FpcServer;
  private syncing = false;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(readonly cfg: LfpConfig, private log: Logger, private opts: { fresh?: boolean } = {}) {}

  async start(): Promise<void> {
    const { path, hugePages, ...sizes } = this.cfg.shm;
    if (hugePages !== false) {
      const h = prepareHugeDir(dirname(path));
      if (h.state === 'mounted' || h.state === 'huge') this.log.info(`shared memory in ${h.dir}: ${h.detail}`);
      else this.log.warn(`shared memory in ${h.dir}: ${h.detail} (FIB lookups are slower on 4 KiB pages; docs/config.md, shm.hugePages)`);
    }
    this.writer = ShmWriter.open(path, { config: sizes, fresh: !!this.opts.fresh });
    if (this.writer.attached) {
      const differ = Object.entries(sizes).filter(([k, v]) => (this.writer.config as unknown as Record<string, number>)[k] !== v);
      if (differ.length) {
        this.log.warn(`shared memory ${path} keeps its sizes (${differ.map(([k]) => `${k} ${(this.writer.config as unknown as Record<string, number>)[k]}`).join(', ')}); restart with --fresh to apply the configured ones`);
      }
    }
    this.writer.setPorts(this.cfg.ports);
    this.log.info(`${this.writer.attached ? 're-attached to' : 'created'} shared memory ${path}`);
    this.server = new FpcServer(this.cfg.fpc, {
      onHello: (h: Hello) => this.onHello(h),
      onMessage: (env: Envelope) => this.onMessage(env),
      onBatchEnd: () => this.flushCounts(),
    }, this.log);
    await this.server.start();
    this.beat();
    this.heartbeat = setInterval(() => this.beat(), 500);
  }

  /** Heartbeat, and the FPC server's own counters (frames refused before they reach apply()). */
  private beat(): void {
    this.flushCounts();
    this.writer.heartbeat();
    this.writer.setCounter('decodeErrors', this.server.counters.malformed);
    this.writer.setCounter('peerRejects', this.server.counters.refused);
  }

  private count(name: CounterName, n = 1): void {
    this.writer.addCounter(name, n);
  }

  private onHello(h: Hello): void {
    this.count('hellos');
    this.log.info(`peer ${h.role} ${h.instance}: expecting a full replay`);
  }

  /** Messages handled since the last flush: the shared counter is updated once per ZeroMQ message. */
  private messages = 0;

  private flushCounts(): void {
    if (this.messages) { this.count('messages', this.messages); this.messages = 0; }
  }

  private onMessage(env: Envelope): { code: ReportCode; text?: string } {
    this.messages++;
    try {
      return this.apply(env);
    } catch (e) {
      this.count('errors');
      if (e instanceof ShmFullError) {
        this.count('capacityErrors');
        this.log.error(`${msgTypeName(env.type)} seq ${env.seq}: ${e.message}`);
        return { code: ReportCode.E_NOSPACE, text: e.message };
      }
      if (e instanceof FpcError) {
        this.log.error(`${msgTypeName(env.type)} seq ${env.seq}: ${e.message}`);
        return { code: e.code, text: e.message };
      }
      throw e;
    }
  }

  private apply(env: Envelope): { code: ReportCode; text?: string } {
    switch (env.type) {
      case MsgType.SYNC_BEGIN:
        this.writer.beginSync();
        this.syncing = true;
        this.count('syncBegins');
        this.log.info('full replay started');
        return { code: ReportCode.OK };
      case MsgType.SYNC_END: {
        if (!this.syncing) throw new FpcError(ReportCode.E_INVALID, 'SYNC_END without SYNC_BEGIN');
        const swept = this.writer.endSync();
        this.syncing = false;
        this.count('syncEnds');
        const list = Object.entries(swept).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
        this.log.info(`full replay done; swept ${list.length ? list.join(', ') : 'nothing'}`);
        return { code: ReportCode.OK };
      }
    }
    const k = kindOf(env.type);
    if (!k) throw new FpcError(ReportCode.E_MALFORMED, `unexpected message type ${msgTypeName(env.type)}`);
    const o = decodeObject(k.kind, env.body);
    if (k.del) {
      if (o.kind === 'vrf') {
        if (o.obj.vrf === 0) throw new FpcError(ReportCode.E_INVALID, 'VRF 0 cannot be removed');
        this.writer.removeVrf(o.obj.vrf);
      } else {
        this.writer.remove(o);
      }
    } else {
      this.writer.upsert(o);
    }
    return { code: ReportCode.OK };
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.server?.close();
  }
}
