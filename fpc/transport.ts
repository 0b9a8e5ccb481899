// FPC transport over ZeroMQ: cmgrd's FpcClient (DEALER, connects) and fpmd's FpcServer (ROUTER, binds).
// Messages and reports are fpc/codec.ts envelopes; many envelopes travel in one multipart message.
import * as zmq from 'zeromq';
import * as fs from 'fs';
import * as os from 'os';
import * as crypto from 'crypto';
import { EventEmitter } from 'events';
import {
  BatchWriter, decodeEnvelope, decodeHello, encodeEnvelope, encodeHello, encodeObject, FpcError, forEachInBatch,
  Hello, isBatchFrame, isPlainOk, MsgType, msgTypeFor, msgTypeName, ReportCode, SCHEMA_VERSION, Envelope,
} from './codec';
import type { AnyObject } from '../lib/model';
import type { Logger } from '../lib/log';

export const DEFAULT_ENDPOINT = 'ipc:///run/lfp/fpc.sock';
const BATCH = 1024;         // envelopes per ZeroMQ message (one Batch frame)
const BATCH_BYTES = 1 << 20; // ... or fewer when they reach this size
const COALESCE_MS = 2;       // during a burst, at most one ZeroMQ message per this time (see kick())
const MAX_IN_FLIGHT = 65536; // unacknowledged requests before the client waits

function prepareEndpoint(endpoint: string): void {
  if (endpoint.startsWith('ipc://')) {
    const p = endpoint.slice('ipc://'.length);
    const dir = p.substring(0, p.lastIndexOf('/'));
    if (dir) fs.mkdirSync(dir, { recursive: true });
  } else if (!endpoint.startsWith('tcp://')) {
    throw new Error(`FPC endpoint "${endpoint}": use ipc:///path or tcp://host:port`);
  }
}

export function newInstanceId(): string { return crypto.randomBytes(6).toString('hex'); }

export function helloOf(role: string, instance: string): Hello {
  return { schemaVersion: SCHEMA_VERSION, role, instance, pid: process.pid, host: os.hostname() };
}

type Pending = { type: MsgType; obj?: AnyObject; raw?: Uint8Array };

export interface ClientCounters {
  sent: number; acked: number; errors: number; dropped: number; hellos: number;
  /** ZeroMQ messages sent (each carries up to BATCH envelopes) */
  messages: number;
  errorsByCode: Record<string, number>;
}

/**
 * cmgrd's side. States: down -> (connection) -> hello sent -> ready. Objects sent while not ready are
 * dropped (counted): a full replay follows every Hello. Events: 'ready' (peer Hello), 'down',
 * 'report' (error report envelope), 'resync' (peer asked for one).
 */
export class FpcClient extends EventEmitter {
  private sock: zmq.Dealer;
  private queue: Pending[] = [];
  private qHead = 0;
  private pumping = false;
  private seq = 0;
  private helloSeq = -1;
  state: 'down' | 'hello' | 'ready' = 'down';
  peer: Hello | null = null;
  readonly instance = newInstanceId();
  readonly counters: ClientCounters = { sent: 0, acked: 0, errors: 0, dropped: 0, hellos: 0, messages: 0, errorsByCode: {} };
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private batch = new BatchWriter();
  private kicked = false;
  private lastSend = -1e9;
  private readonly onEnvelopeBytes = (f: Uint8Array) => this.onReply(f);

  constructor(readonly endpoint: string, private log: Logger) {
    super();
    this.sock = new zmq.Dealer({
      immediate: true, sendTimeout: 2000, sendHighWaterMark: 10000, receiveHighWaterMark: 0,
      heartbeatInterval: 1000, heartbeatTimeout: 5000, reconnectInterval: 100, reconnectMaxInterval: 1000,
      linger: 0,
    });
  }

  start(): void {
    if (this.endpoint.startsWith('ipc://')) prepareEndpoint(this.endpoint);
    void this.watchEvents(); // before connect(): an ipc connection is up at once
    void this.receiveLoop();
    this.sock.connect(this.endpoint);
    this.log.info(`FPC: connecting to ${this.endpoint}`);
  }

  private async watchEvents(): Promise<void> {
    try {
      for await (const ev of this.sock.events) {
        if (this.closed) return;
        if (ev.type === 'connect') {
          this.log.info(`FPC: connected to ${this.endpoint}, sending Hello`);
          this.sendHello();
        } else if (ev.type === 'disconnect') {
          this.log.warn(`FPC: peer ${this.endpoint} disconnected`);
          this.goDown();
        }
      }
    } catch (e) {
      if (!this.closed) this.log.error(`FPC: event monitor failed: ${(e as Error).message}`);
    }
  }

  private goDown(): void {
    const was = this.state;
    this.state = 'down';
    this.dropQueue();
    if (was !== 'down') this.emit('down');
  }

  private dropQueue(): void {
    this.counters.dropped += this.queue.length - this.qHead;
    this.queue = [];
    this.qHead = 0;
  }

  /** (Re)start the handshake: everything queued is dropped, the peer will get a full replay. */
  sendHello(): void {
    this.dropQueue();
    this.state = 'hello';
    this.counters.hellos++;
    this.helloSeq = this.nextSeq();
    const frame = encodeEnvelope(MsgType.HELLO, this.helloSeq, encodeHello(helloOf('cmgrd', this.instance)));
    this.queue.push({ type: MsgType.HELLO, raw: frame });
    void this.pump();
  }

  private nextSeq(): number { this.seq = (this.seq + 1) >>> 0; return this.seq; }

  get inFlight(): number { return this.counters.sent - this.counters.acked; }
  get queued(): number { return this.queue.length - this.qHead; }

  /** Queue an object add/replace or delete. Returns false when dropped because the peer is not ready. */
  sendObject(o: AnyObject, del: boolean): boolean {
    if (this.state !== 'ready') { this.counters.dropped++; return false; }
    this.queue.push({ type: msgTypeFor(o.kind, del), obj: o });
    this.kick();
    return true;
  }

  sendControl(type: MsgType.SYNC_BEGIN | MsgType.SYNC_END): boolean {
    if (this.state !== 'ready') return false;
    this.queue.push({ type });
    this.kick();
    return true;
  }

  /** Sends a raw, possibly malformed frame (tests of the peer's robustness). */
  sendRaw(frame: Uint8Array): void {
    this.queue.push({ type: MsgType.MSG_UNSPEC, raw: frame });
    this.kick();
  }

  /** Resolves when everything queued has been sent and acknowledged. */
  drained(): Promise<void> {
    if (this.queued === 0 && this.inFlight <= 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  private checkDrained(): void {
    if (this.queued === 0 && this.inFlight <= 0 && this.drainWaiters.length) {
      const w = this.drainWaiters; this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /**
   * Starts the pump after the current event-loop phase (setImmediate), so that the objects queued
   * by all the netlink events of this loop iteration travel in one ZeroMQ message; and at most one
   * message per COALESCE_MS unless a full batch is waiting (a ZeroMQ message costs ~15 us of CPU
   * between the two processes, as much as handling a few routes end to end). A change after a
   * quiet period leaves at once; during a burst a change waits at most COALESCE_MS.
   */
  private kick(): void {
    if (this.pumping || this.kicked || this.closed) return;
    this.kicked = true;
    const wait = this.lastSend + COALESCE_MS - performance.now();
    if (wait <= 0 || this.queued >= BATCH) setImmediate(this.kickNow);
    else setTimeout(this.kickNow, wait);
  }

  private readonly kickNow = (): void => { this.kicked = false; void this.pump(); };

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let first = true; !this.closed && this.qHead < this.queue.length; first = false) {
        if (this.inFlight > MAX_IN_FLIGHT) { await new Promise((r) => setTimeout(r, 1)); continue; }
        // After a message, only a full batch leaves at once; a remainder waits for kick()'s timer.
        if (!first && this.queued < BATCH && this.queue[this.qHead].raw === undefined) break;
        // Objects go into Batch frames; raw frames (Hello, tests' malformed ones) travel alone.
        const frames: Uint8Array[] = [];
        const bw = this.batch;
        let i = this.qHead;
        const end = Math.min(this.queue.length, this.qHead + BATCH);
        for (; i < end && bw.bytes < BATCH_BYTES; i++) {
          const p = this.queue[i];
          if (p.raw) {
            if (bw.count) frames.push(bw.finish());
            frames.push(p.raw);
          } else {
            if (p.obj) bw.addObject(p.type, this.nextSeq(), p.obj);
            else bw.add(p.type, this.nextSeq());
          }
        }
        if (bw.count) frames.push(bw.finish());
        const n = i - this.qHead;
        this.qHead = i;
        if (this.qHead === this.queue.length) {
          this.queue.length = 0; this.qHead = 0; // (sent entries must not keep their objects alive)
        } else if (this.qHead > 100000 && this.qHead * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.qHead); this.qHead = 0;
        }
        try {
          this.lastSend = performance.now();
          this.counters.messages++;
          await this.sock.send(frames);
          this.counters.sent += n;
        } catch (e) {
          if (this.closed) return;
          this.log.warn(`FPC: send failed (${(e as Error).message}); waiting for the peer`);
          this.counters.dropped += n;
          this.goDown();
          return;
        }
      }
    } finally {
      this.pumping = false;
      this.checkDrained();
      if (this.qHead < this.queue.length) this.kick();
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.sock) {
        for (const f of frames) {
          if (!isBatchFrame(f)) { this.onReply(f); continue; }
          const err = forEachInBatch(f, this.onEnvelopeBytes);
          if (err) { this.counters.errors++; this.log.error(`FPC: malformed reply from peer: ${err}`); }
        }
        this.checkDrained();
      }
    } catch (e) {
      if (!this.closed) this.log.error(`FPC: receive failed: ${(e as Error).message}`);
    }
  }

  private onReply(f: Uint8Array): void {
    if (isPlainOk(f)) { this.counters.acked++; return; } // (the bulk of the replies)
    let env: Envelope;
    try {
      env = decodeEnvelope(f);
    } catch (e) {
      this.counters.errors++;
      this.log.error(`FPC: malformed reply from peer: ${(e as Error).message}`);
      return;
    }
    if (env.type === MsgType.RESYNC_REQUEST) {
      this.log.warn(`FPC: peer asked for a resync${env.report ? ` (${ReportCode[env.report.code]}: ${env.report.text})` : ''}`);
      this.sendHello();
      return;
    }
    this.counters.acked++;
    const code = env.report?.code ?? ReportCode.REQUEST;
    if (env.type === MsgType.HELLO && env.seq === this.helloSeq) {
      if (code !== ReportCode.OK) {
        this.log.error(`FPC: peer refused Hello: ${ReportCode[code]}: ${env.report?.text}`);
        this.countError(code);
        this.state = 'down';
        this.emit('refused', env.report?.text ?? '');
        return;
      }
      try {
        this.peer = decodeHello(env.body);
      } catch (e) {
        this.log.error(`FPC: bad Hello reply: ${(e as Error).message}`);
        return;
      }
      this.state = 'ready';
      this.log.info(`FPC: peer ${this.peer.role} ${this.peer.instance} (pid ${this.peer.pid} on ${this.peer.host}) ready`);
      this.emit('ready', this.peer);
      return;
    }
    if (code !== ReportCode.OK) {
      this.countError(code);
      if (code === ReportCode.E_NOT_SYNCED && this.state !== 'hello') {
        this.log.warn(`FPC: peer says it is not synced (${env.report?.text}); new handshake`);
        this.sendHello();
        return;
      }
      if (code !== ReportCode.E_NOT_SYNCED) {
        this.log.error(`FPC: ${msgTypeName(env.type)} seq ${env.seq} refused: ${ReportCode[code]}: ${env.report?.text}`);
      }
      this.emit('report', env);
    }
  }

  private countError(code: ReportCode): void {
    this.counters.errors++;
    const k = ReportCode[code] ?? String(code);
    this.counters.errorsByCode[k] = (this.counters.errorsByCode[k] ?? 0) + 1;
  }

  close(): void {
    this.closed = true;
    try { this.sock.close(); } catch { /* already closed */ }
  }
}

export interface ServerHandler {
  /** Called for every request of a peer that passed Hello; returns the report for it. */
  onMessage(env: Envelope): { code: ReportCode; text?: string };
  /** A peer completed the Hello. */
  onHello(peer: Hello): void;
  /** Every envelope of one ZeroMQ message has been handled (its replies are about to leave). */
  onBatchEnd?(): void;
}

interface ReplySink { add(type: MsgType, seq: number, body: Uint8Array | undefined, code: ReportCode, text: string): void }

export interface ServerCounters { received: number; errors: number; malformed: number; hellos: number; refused: number }

/** fpmd's side: binds, answers every envelope with a report. */
export class FpcServer {
  private sock: zmq.Router;
  private synced = new Map<string, Hello>();
  private closed = false;
  readonly counters: ServerCounters = { received: 0, errors: 0, malformed: 0, hellos: 0, refused: 0 };
  readonly instance = newInstanceId();
  private replyBatch = new BatchWriter();
  private singleReply: Uint8Array | null = null;
  /** Reply sink of a single-envelope frame: its reply is a single-envelope frame too. */
  private readonly single: ReplySink = {
    add: (type, seq, body, code, text) => { this.singleReply = encodeEnvelope(type, seq, body, { code, text }); },
  };

  constructor(readonly endpoint: string, private handler: ServerHandler, private log: Logger) {
    this.sock = new zmq.Router({ heartbeatInterval: 1000, heartbeatTimeout: 5000, linger: 0, receiveHighWaterMark: 0, sendHighWaterMark: 0 });
  }

  async start(): Promise<void> {
    prepareEndpoint(this.endpoint);
    if (this.endpoint.startsWith('ipc://')) {
      try { fs.unlinkSync(this.endpoint.slice(6)); } catch { /* not there */ }
    }
    await this.sock.bind(this.endpoint);
    this.log.info(`FPC: listening on ${this.endpoint}`);
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for await (const [id, ...frames] of this.sock) {
        const peer = id.toString('hex');
        const replies: Uint8Array[] = [];
        for (const f of frames) {
          if (!isBatchFrame(f)) {
            this.handle(peer, f, this.single);
            replies.push(this.singleReply!);
            this.singleReply = null;
            continue;
          }
          const bw = this.replyBatch;
          const err = forEachInBatch(f, (e) => this.handle(peer, e, bw));
          if (err) {
            // The rest of the frame is lost: like an undecodable envelope, ask for a resync.
            this.counters.received++;
            this.counters.errors++;
            this.counters.malformed++;
            this.log.error(`FPC: from peer ${peer}: ${err}`);
            bw.add(MsgType.RESYNC_REQUEST, 0, undefined, ReportCode.E_MALFORMED, err);
          }
          replies.push(bw.finish());
        }
        this.handler.onBatchEnd?.();
        await this.sock.send([id, ...replies]);
      }
    } catch (e) {
      if (!this.closed) this.log.error(`FPC: server loop failed: ${(e as Error).message}`);
    }
  }

  /** Handles one envelope and adds its reply to `out`. */
  private handle(peer: string, f: Uint8Array, out: ReplySink): void {
    this.counters.received++;
    let env: Envelope;
    try {
      env = decodeEnvelope(f);
    } catch (e) {
      this.counters.errors++;
      this.counters.malformed++;
      const code = e instanceof FpcError ? e.code : ReportCode.E_MALFORMED;
      this.log.error(`FPC: from peer ${peer}: ${(e as Error).message}`);
      // The frame's type and seq are unknown, so what it carried may be lost: ask for a resync.
      return out.add(MsgType.RESYNC_REQUEST, 0, undefined, code, (e as Error).message);
    }
    const reply = (code: ReportCode, text = '', body?: Uint8Array) => {
      if (code !== ReportCode.OK) this.counters.errors++;
      out.add(env.type, env.seq, body, code, text);
    };
    if (env.type === MsgType.HELLO) {
      let h: Hello;
      try { h = decodeHello(env.body); } catch (e) { return reply(ReportCode.E_MALFORMED, (e as Error).message); }
      if (h.schemaVersion !== SCHEMA_VERSION) {
        this.counters.refused++;
        const text = `FPC schema version ${h.schemaVersion} from ${h.role} ${h.instance} (pid ${h.pid} on ${h.host}) refused: this fpmd speaks version ${SCHEMA_VERSION}`;
        this.log.error(text);
        this.synced.delete(peer);
        return reply(ReportCode.E_VERSION, text);
      }
      this.counters.hellos++;
      this.synced.set(peer, h);
      this.log.info(`FPC: Hello from ${h.role} ${h.instance} (pid ${h.pid} on ${h.host})`);
      this.handler.onHello(h);
      return reply(ReportCode.OK, '', encodeHello(helloOf('fpmd', this.instance)));
    }
    if (!this.synced.has(peer)) {
      return reply(ReportCode.E_NOT_SYNCED, 'no Hello received on this connection');
    }
    try {
      const r = this.handler.onMessage(env);
      if (r.code === ReportCode.OK && !r.text) return out.add(env.type, env.seq, undefined, ReportCode.OK, '');
      return reply(r.code, r.text ?? '');
    } catch (e) {
      const code = e instanceof FpcError ? e.code : ReportCode.E_INTERNAL;
      const text = `${msgTypeName(env.type)} seq ${env.seq}: ${(e as Error).message}`;
      this.log.error(`FPC: ${text}`);
      return reply(code, text);
    }
  }

  close(): void {
    this.closed = true;
    try { this.sock.close(); } catch { /* already closed */ }
  }
}
