// Netlink sockets of the cache manager, over the native addon.
// EventSocket: joined to multicast groups, hands every message (with the VRF from its nsid) to a
// callback; an overrun (ENOBUFS) is reported, never fatal. RequestSocket: no groups, one request at
// a time, collects the replies of a dump or the answer of a get.
import { nl } from '../native';
import { parseMessages, parseMessagesAt, NlMsg, cloneMsg } from '../netlink/codec';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR } from '../netlink/constants';
import type { Logger } from '../lib/log';

const EAGAIN = 11, ENOBUFS = 105, EMSGSIZE = 90;
const RECV_BUF = 1 << 20;
/** Datagrams handled per readable callback before yielding to the event loop (FPC must get CPU too). */
const MAX_PER_WAKEUP = 1024;
/**
 * Event sockets receive a burst of datagrams per native call (recvmmsg, 64 at a time) into this
 * buffer, each into a slot of EVENT_SLOT bytes. Kernel notifications are small (a few hundred bytes;
 * a link's carries no VF list): one larger than a slot is a counted overrun and a resync, never a
 * silent loss.
 */
const BURST_BUF = 4 << 20;
const EVENT_SLOT = 64 << 10;

export interface SocketCounters { datagrams: number; messages: number; overruns: number; malformed: number }

export class EventSocket {
  readonly fd: number;
  private buf = Buffer.alloc(BURST_BUF);
  private meta = new Int32Array(3 * MAX_PER_WAKEUP);
  readonly counters: SocketCounters = { datagrams: 0, messages: 0, overruns: 0, malformed: 0 };

  constructor(
    readonly name: string,
    protocol: number,
    opts: { groups: number[]; rcvbuf: number; netns?: string },
    private onMessage: (msg: NlMsg, nsid: number) => void,
    private onOverrun: (why: string) => void,
    private log: Logger,
  ) {
    this.fd = nl.open(protocol, { groups: opts.groups, rcvbuf: opts.rcvbuf, listenAllNsid: true, netns: opts.netns });
    const got = nl.rcvbufSize(this.fd);
    if (got < opts.rcvbuf) log.warn(`${name}: netlink receive buffer is ${got} bytes (asked ${opts.rcvbuf})`);
    nl.watch(this.fd, () => this.drain());
  }

  /** One burst per wakeup (up to MAX_PER_WAKEUP datagrams); a socket with more stays readable. */
  private drain(): void {
    const k = nl.recvMany(this.fd, this.buf, this.meta, EVENT_SLOT);
    if (k === -EAGAIN) return;
    const meta = this.meta;
    for (let i = 0; i < k; i++) {
      const off = meta[3 * i], n = meta[3 * i + 1], nsid = meta[3 * i + 2];
      if (n === -ENOBUFS) {
        this.counters.overruns++;
        this.log.warn(`${this.name}: netlink receive buffer overrun (ENOBUFS): events were lost, resyncing`);
        this.onOverrun('ENOBUFS');
        continue;
      }
      if (n === -EMSGSIZE) {
        this.counters.overruns++;
        this.log.error(`${this.name}: netlink datagram larger than ${EVENT_SLOT} bytes was truncated, resyncing`);
        this.onOverrun('EMSGSIZE');
        continue;
      }
      if (n < 0) continue;
      this.counters.datagrams++;
      const { msgs, errors } = parseMessagesAt(this.buf, off, n);
      for (const e of errors) {
        this.counters.malformed++;
        this.log.error(`${this.name}: malformed netlink datagram: ${e}`);
        this.onOverrun('malformed datagram');
      }
      for (const m of msgs) {
        this.counters.messages++;
        this.onMessage(m, nsid);
      }
    }
  }

  close(): void { nl.close(this.fd); }
}

export class NetlinkError extends Error {
  constructor(readonly errno: number, message: string) { super(message); }
}

type Pending = {
  seq: number; dump: boolean; msgs: NlMsg[]; interrupted: boolean;
  resolve: (m: NlMsg[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout;
};

/** Requests (dumps and gets) in one namespace. Replies are copied: they outlive the receive buffer. */
export class RequestSocket {
  readonly fd: number;
  private buf = new Uint8Array(RECV_BUF);
  private meta = new Int32Array(2);
  private seq = Math.floor(Math.random() * 1e6);
  private pending: Pending | null = null;
  private queue: (() => void)[] = [];

  constructor(readonly name: string, protocol: number, netns: string | undefined, private log: Logger) {
    this.fd = nl.open(protocol, { netns, rcvbuf: 32 * 1024 * 1024 });
    nl.watch(this.fd, () => this.drain());
  }

  nextSeq(): number { this.seq = (this.seq + 1) >>> 0 || 1; return this.seq; }

  /**
   * Sends the message built by `build(seq)` and resolves with its replies: every message up to
   * NLMSG_DONE for a dump (retried when the kernel flags it interrupted), the first reply otherwise.
   */
  async request(build: (seq: number) => Uint8Array, dump: boolean, timeoutMs = 60000): Promise<NlMsg[]> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.requestOnce(build, dump, timeoutMs);
      if (!r.interrupted) return r.msgs;
      if (attempt >= 5) throw new Error(`${this.name}: dump kept being interrupted by changes (5 tries)`);
      this.log.debug(`${this.name}: dump interrupted, retrying`);
    }
  }

  private requestOnce(build: (seq: number) => Uint8Array, dump: boolean, timeoutMs: number): Promise<{ msgs: NlMsg[]; interrupted: boolean }> {
    return new Promise((resolve, reject) => {
      const go = () => {
        const seq = this.nextSeq();
        const p: Pending = {
          seq, dump, msgs: [], interrupted: false,
          resolve: (msgs) => resolve({ msgs, interrupted: p.interrupted }),
          reject,
          timer: setTimeout(() => this.finish(new Error(`${this.name}: no answer to request ${seq} within ${timeoutMs} ms`)), timeoutMs),
        };
        this.pending = p;
        try {
          nl.send(this.fd, build(seq));
        } catch (e) {
          this.finish(e as Error);
        }
      };
      if (this.pending) this.queue.push(go); else go();
    });
  }

  private finish(err: Error | null): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    if (err) p.reject(err); else p.resolve(p.msgs);
    const next = this.queue.shift();
    if (next) next();
  }

  private drain(): void {
    for (;;) {
      const n = nl.recv(this.fd, this.buf, this.meta);
      if (n === -EAGAIN) return;
      if (n < 0) {
        // A reply was lost (ENOBUFS, EMSGSIZE): the request has to be redone.
        if (this.pending) this.finish(new NetlinkError(-n, `${this.name}: reply lost (errno ${-n})`));
        continue;
      }
      const { msgs, errors } = parseMessages(this.buf, n);
      const p = this.pending;
      if (!p) continue; // late answer to a request that timed out
      if (errors.length) { this.finish(new Error(`${this.name}: malformed reply: ${errors[0]}`)); continue; }
      for (const m of msgs) {
        if (m.seq !== p.seq) continue;
        if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
        if (m.type === NLMSG_ERROR) {
          const errno = m.payload.length >= 4 ? -new DataView(m.payload.buffer, m.payload.byteOffset, 4).getInt32(0, true) : 0;
          if (errno === 0) { this.finish(null); break; }
          this.finish(new NetlinkError(errno, `${this.name}: kernel answered errno ${errno}`));
          break;
        }
        if (m.type === NLMSG_DONE) { this.finish(null); break; }
        p.msgs.push(cloneMsg(m));
        if (!p.dump) { this.finish(null); break; }
      }
    }
  }

  close(): void {
    this.finish(new Error(`${this.name}: closed`));
    nl.close(this.fd);
  }
}
