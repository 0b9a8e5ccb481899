// Typed wrapper of the native addon lfp_native (native/*.cc): netlink sockets, network namespace files,
// shared memory mapped as a SharedArrayBuffer, and a monotonic clock. See native/README.md.
//
// The addon is loaded on first use, so importing this module never fails; a missing build is reported
// (with the command that builds it) by the first call.

import * as fs from 'fs';
import * as path from 'path';

/** Where the compiled addon lives, relative to this file once compiled (build/native/index.js). */
export const addonPath = path.resolve(__dirname, '../../native/build/Release/lfp_native.node');

const BUILD_HINT = 'run "make -C native" from the project root (= cd native && npx node-gyp rebuild --nodedir=/usr)';

export interface NlOpenOptions {
  /** Multicast group numbers (RTNLGRP_*, XFRMNLGRP_*), not bitmasks: groups > 31 work. */
  groups?: number[];
  /** Receive buffer in bytes: SO_RCVBUFFORCE, or SO_RCVBUF (capped by rmem_max) without CAP_NET_ADMIN. */
  rcvbuf?: number;
  /** NETLINK_LISTEN_ALL_NSID: also receive the groups' events of every namespace that has an nsid here. */
  listenAllNsid?: boolean;
  /** Create the socket inside this network namespace (/run/netns/NAME, /proc/PID/ns/net). */
  netns?: string;
  /** NETLINK_EXT_ACK: extended acks (error message / offset attributes). */
  extAck?: boolean;
  /** NETLINK_GET_STRICT_CHK: strict checking of dump requests (header filters honoured). */
  strictChk?: boolean;
}

export interface ShmMapOptions {
  /** Bytes to map. With create: the minimum file size. 0/absent without create: the whole file. */
  size?: number;
  /** O_CREAT; grows a new or shorter file to size (never shrinks; maps the real size when larger). */
  create?: boolean;
  /** O_RDONLY + PROT_READ, for inspection tools. Any write to the buffer then kills the process (SIGSEGV). */
  readonly?: boolean;
  /** File mode when created (default 0o644, minus umask). */
  mode?: number;
}

/** recv() results other than a byte count. */
export const EAGAIN = 11;
export const EMSGSIZE = 90;
export const ENOBUFS = 105;

interface Addon {
  monotonicNs(): bigint;
  nlOpen(protocol: number, opts?: NlOpenOptions): number;
  nlSend(fd: number, data: Uint8Array): void;
  nlRecv(fd: number, buf: Uint8Array, meta: Int32Array): number;
  nlRecvMany(fd: number, buf: Uint8Array, meta: Int32Array, slot: number): number;
  nlWatch(fd: number, cb: () => void): void;
  nlUnwatch(fd: number): void;
  nlClose(fd: number): void;
  nlAddMembership(fd: number, group: number): void;
  nlDropMembership(fd: number, group: number): void;
  nlRcvbufSize(fd: number): number;
  nlLocalPid(fd: number): number;
  netnsOpen(path: string): number;
  netnsClose(fd: number): void;
  netnsInode(path: string): number;
  shmMap(path: string, opts: ShmMapOptions): SharedArrayBuffer;
  shmFileSize(path: string): number;
}

let addon: Addon | undefined;

/** Load the addon now (it is loaded on first use otherwise). Throws a clear Error when it is not built. */
export function load(): Addon {
  if (addon !== undefined) return addon;
  if (!fs.existsSync(addonPath)) {
    throw new Error(`lfp_native addon not built: ${addonPath} is missing; ${BUILD_HINT}`);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(addonPath) as Addon;
  } catch (e) {
    const err = new Error(`lfp_native addon at ${addonPath} cannot be loaded (${(e as Error).message}); rebuild it: ${BUILD_HINT}`);
    (err as Error & { cause?: unknown }).cause = e;
    throw err;
  }
  return addon;
}

/** True when the addon is built and loads. */
export function available(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

function A(): Addon {
  return addon ?? load();
}

export const nl: {
  /**
   * Create a netlink socket (SOCK_RAW|SOCK_CLOEXEC|SOCK_NONBLOCK) of `protocol` (NETLINK_ROUTE=0, NETLINK_XFRM=6, ...),
   * bound with a kernel-assigned port id and joined to `groups`. Returns the fd (owned by this addon: close it
   * with nl.close).
   */
  open(protocol: number, opts?: NlOpenOptions): number;
  /** sendto the kernel (nl_pid 0); throws on error. */
  send(fd: number, data: Uint8Array): void;
  /**
   * Non-blocking recvmsg of ONE datagram into buf. Returns its length (> 0), or -EAGAIN (-11) when nothing is
   * queued, -ENOBUFS (-105) when the kernel dropped messages (the socket stays usable: resync), -EMSGSIZE (-90)
   * when the datagram was larger than buf (it is consumed; use a 64 KiB buffer). On a datagram, meta[0] = nsid
   * of the sending namespace (NETLINK_LISTEN_ALL_NSID) or -1, meta[1] = sender port id (0 = kernel; as int32),
   * and meta[2] (when meta has 3 elements) = the datagram's real length.
   */
  recv(fd: number, buf: Uint8Array, meta: Int32Array): number;
  /**
   * Non-blocking receive of every queued datagram (up to meta.length / 3 of them) in one call: recvmmsg() of
   * up to 64 datagrams at a time, each into a slot of `slot` bytes, then moved to lie back to back in buf
   * (8-byte aligned). Record i: meta[3i] = offset in buf, meta[3i+1] = length, or -ENOBUFS (messages were
   * dropped; the datagrams after it are fine) or -EMSGSIZE (a datagram larger than `slot` was consumed
   * truncated), meta[3i+2] = nsid or -1. Returns the number of records, or -EAGAIN when nothing was queued.
   */
  recvMany(fd: number, buf: Uint8Array, meta: Int32Array, slot: number): number;
  /**
   * Call cb on the Node main loop whenever fd is readable (or has a pending error such as ENOBUFS); cb drains with
   * recv() until -EAGAIN. Watching again replaces the callback. An exception thrown by cb is an uncaught exception.
   * A watched fd keeps the process alive until unwatch() or close().
   */
  watch(fd: number, cb: () => void): void;
  unwatch(fd: number): void;
  /** Close the socket (unwatches too). Unknown fd: Error EBADF. */
  close(fd: number): void;
  addMembership(fd: number, group: number): void;
  dropMembership(fd: number, group: number): void;
  /** getsockopt SO_RCVBUF: what was granted (the kernel doubles the requested value). */
  rcvbufSize(fd: number): number;
  /** The socket's port id (nl_pid) assigned by the kernel, unsigned. */
  localPid(fd: number): number;
} = {
  open: (protocol, opts) => A().nlOpen(protocol, opts),
  send: (fd, data) => A().nlSend(fd, data),
  recv: (fd, buf, meta) => A().nlRecv(fd, buf, meta),
  recvMany: (fd, buf, meta, slot) => A().nlRecvMany(fd, buf, meta, slot),
  watch: (fd, cb) => A().nlWatch(fd, cb),
  unwatch: (fd) => A().nlUnwatch(fd),
  close: (fd) => A().nlClose(fd),
  addMembership: (fd, group) => A().nlAddMembership(fd, group),
  dropMembership: (fd, group) => A().nlDropMembership(fd, group),
  rcvbufSize: (fd) => A().nlRcvbufSize(fd),
  localPid: (fd) => A().nlLocalPid(fd),
};

export const netns: {
  /** O_RDONLY|O_CLOEXEC fd of a network namespace file (checked to be one), e.g. for RTM_GETNSID with NETNSA_FD. */
  open(path: string): number;
  close(fd: number): void;
  /** st_ino of the namespace file (to tell namespaces apart; /proc/self/ns/net is the own one). */
  inode(path: string): number;
} = {
  open: (p) => A().netnsOpen(p),
  close: (fd) => A().netnsClose(fd),
  inode: (p) => A().netnsInode(p),
};

export const shm: {
  /**
   * Map a file MAP_SHARED and return it as a SharedArrayBuffer backed by the mapping itself (unmapped when the
   * buffer is garbage collected). Writes are visible to every process mapping the file; Atomics work on it.
   */
  map(path: string, opts: ShmMapOptions): SharedArrayBuffer;
  fileSize(path: string): number;
} = {
  map: (p, opts) => A().shmMap(p, opts),
  fileSize: (p) => A().shmFileSize(p),
};

/** clock_gettime(CLOCK_MONOTONIC) in nanoseconds. */
export function monotonicNs(): bigint {
  return A().monotonicNs();
}
