// Tests of the native addon (native/) against the real kernel: netlink sockets (dump, groups, namespaces,
// NETLINK_LISTEN_ALL_NSID, ENOBUFS), shared memory across processes, bad input.
// Needs root (network namespaces) and the built addon (make -C native).

import { strict as assert } from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { EAGAIN, EMSGSIZE, ENOBUFS, monotonicNs, netns, nl, shm } from '../../native/index';

// Netlink numbers, written out here on purpose: this test checks the addon, not netlink/.
const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWROUTE = 24;
const IFLA_IFNAME = 3;
const RTA_DST = 1;
const RTNLGRP_LINK = 1;
const RTNLGRP_IPV4_ROUTE = 7;
const RTNLGRP_NEXTHOP = 32;
const RTM_NEWNEXTHOP = 104;

const INDEX_JS = path.resolve(__dirname, '../../native/index.js');

interface Msg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  body: Buffer; // after the 16-byte header
}

function parse(buf: Buffer, n: number): Msg[] {
  const out: Msg[] = [];
  let off = 0;
  while (off + 16 <= n) {
    const len = buf.readUInt32LE(off);
    assert.ok(len >= 16 && off + len <= n, `bad nlmsg_len ${len} at ${off} of ${n}`);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      body: Buffer.from(buf.subarray(off + 16, off + len)),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

function attrs(b: Buffer, off: number): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  while (off + 4 <= b.length) {
    const len = b.readUInt16LE(off);
    if (len < 4 || off + len > b.length) break;
    m.set(b.readUInt16LE(off + 2) & 0x3fff, b.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return m;
}

/** IFLA_IFNAME of an RTM_NEWLINK (ifinfomsg is 16 bytes). */
function linkName(m: Msg): string | undefined {
  const a = attrs(m.body, 16).get(IFLA_IFNAME);
  return a === undefined ? undefined : a.toString('latin1').replace(/\0.*$/s, '');
}

/** "a.b.c.d/len" of an IPv4 RTM_NEWROUTE (rtmsg is 12 bytes). */
function routeDst(m: Msg): string | undefined {
  const a = attrs(m.body, 12).get(RTA_DST);
  return a === undefined || a.length !== 4 ? undefined : `${a[0]}.${a[1]}.${a[2]}.${a[3]}/${m.body[1]}`;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function ipBatch(ns: string, lines: string[]): void {
  execFileSync('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] });
}

function rand(): string {
  return crypto.randomBytes(4).toString('hex');
}

interface Received {
  msg: Msg;
  nsid: number;
  senderPid: number;
}

/**
 * Drain fd through nl.watch()/nl.recv() until `match` returns true for a message (resolves with it) or the
 * timeout passes (rejects). Counts the -ENOBUFS results in `stats`.
 */
function receive(
  fd: number,
  match: (r: Received) => boolean,
  timeoutMs = 5000,
  stats: { enobufs: number; messages: number } = { enobufs: 0, messages: 0 },
): Promise<Received> {
  const buf = Buffer.alloc(65536);
  const meta = new Int32Array(3);
  const p = new Promise<Received>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, r?: Received): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      nl.unwatch(fd);
      if (err) reject(err);
      else resolve(r as Received);
    };
    const timer = setTimeout(() => finish(new Error(`timeout after ${timeoutMs} ms (${stats.messages} messages, ${stats.enobufs} ENOBUFS)`)), timeoutMs);
    const drain = (): void => {
      try {
        while (!done) {
          const n = nl.recv(fd, buf, meta);
          if (n === -EAGAIN) return;
          if (n === -ENOBUFS) {
            stats.enobufs++;
            continue;
          }
          assert.ok(n > 0, `recv returned ${n}`);
          for (const msg of parse(buf, n)) {
            stats.messages++;
            const r = { msg, nsid: meta[0], senderPid: meta[1] };
            if (match(r)) {
              finish(null, r);
              return;
            }
          }
        }
      } catch (e) {
        finish(e as Error);
      }
    };
    nl.watch(fd, drain);
    drain(); // what is already queued (watch only reports new readiness on the next loop turn)
  });
  p.catch(() => undefined); // a test that fails before awaiting must not leave an unhandled rejection behind
  return p;
}

function childNode(script: string, args: string[] = [], nodeArgs: string[] = []): { status: number | null; signal: string | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...nodeArgs, '-e', script, ...args], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('native addon (lfp_native, real kernel)', function () {
  const namespaces: string[] = [];
  const files: string[] = [];
  const fds = new Set<number>();

  function newNs(): string {
    const name = `lfp-t-nat-${rand()}`;
    ip('netns', 'add', name);
    namespaces.push(name);
    return name;
  }

  function open(opts?: Parameters<typeof nl.open>[1]): number {
    const fd = nl.open(NETLINK_ROUTE, opts);
    fds.add(fd);
    return fd;
  }

  function close(fd: number): void {
    fds.delete(fd);
    nl.close(fd);
  }

  function tmpShm(tag: string): string {
    const f = `/dev/shm/lfp-t-nat-${tag}-${rand()}`;
    files.push(f);
    return f;
  }

  after(function () {
    for (const fd of fds) {
      try {
        nl.close(fd);
      } catch {
        /* already closed */
      }
    }
    for (const ns of namespaces) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
    for (const f of files) fs.rmSync(f, { force: true });
  });

  describe('netlink', function () {
    it('dumps the links of the own namespace (RTM_GETLINK) and finds lo', async function () {
      const fd = open({ extAck: true, strictChk: true });
      const req = Buffer.alloc(32);
      req.writeUInt32LE(32, 0);
      req.writeUInt16LE(RTM_GETLINK, 4);
      req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
      req.writeUInt32LE(4242, 8); // seq
      req[16] = 0; // ifi_family AF_UNSPEC
      nl.send(fd, req);

      const names: string[] = [];
      const done = await receive(fd, (r) => {
        assert.equal(r.senderPid, 0, 'replies come from the kernel');
        assert.equal(r.nsid, -1, 'no nsid without LISTEN_ALL_NSID');
        assert.equal(r.msg.seq, 4242);
        assert.notEqual(r.msg.type, NLMSG_ERROR, 'dump failed');
        if (r.msg.type === RTM_NEWLINK) names.push(linkName(r.msg) ?? '?');
        return r.msg.type === NLMSG_DONE;
      });
      assert.equal(done.msg.pid, nl.localPid(fd), 'replies are addressed to our port id');
      assert.ok(names.includes('lo'), `lo not in ${names.join(',')}`);
      close(fd);
    });

    it('creates a socket inside a namespace and gets its RTNLGRP_LINK events through watch()', async function () {
      const ns = newNs();
      const before = netns.inode('/proc/thread-self/ns/net');
      const fd = open({ netns: `/run/netns/${ns}`, groups: [RTNLGRP_LINK] });
      assert.equal(netns.inode('/proc/thread-self/ns/net'), before, 'the thread is back in its namespace');
      const got = receive(fd, (r) => r.msg.type === RTM_NEWLINK && ['v0', 'v1'].includes(linkName(r.msg) ?? ''));
      ip('-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
      const r = await got;
      assert.equal(r.nsid, -1);
      assert.equal(r.senderPid, 0);
      close(fd);
    });

    it('does not see events of another namespace without LISTEN_ALL_NSID (socket in the own namespace)', async function () {
      const ns = newNs();
      const fd = open({ groups: [RTNLGRP_LINK] });
      ip('-n', ns, 'link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'x1');
      await assert.rejects(
        receive(fd, (r) => r.msg.type === RTM_NEWLINK && linkName(r.msg) === 'x0', 300),
        /timeout/,
      );
      close(fd);
    });

    it('LISTEN_ALL_NSID: events of a peer namespace carry its nsid, own events carry -1', async function () {
      const a = newNs();
      const b = newNs();
      const fd = open({ netns: `/run/netns/${a}`, groups: [RTNLGRP_LINK], listenAllNsid: true });
      ip('-n', a, 'netns', 'set', b, '7');

      const fromB = receive(fd, (r) => r.msg.type === RTM_NEWLINK && linkName(r.msg) === 'b0');
      ip('-n', b, 'link', 'add', 'b0', 'type', 'veth', 'peer', 'name', 'b1');
      assert.equal((await fromB).nsid, 7);

      const fromA = receive(fd, (r) => r.msg.type === RTM_NEWLINK && linkName(r.msg) === 'a0');
      ip('-n', a, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1');
      assert.equal((await fromA).nsid, -1);
      close(fd);
    });

    it('joins groups after open (addMembership) and leaves them (dropMembership)', async function () {
      const ns = newNs();
      const fd = open({ netns: `/run/netns/${ns}` });
      nl.addMembership(fd, RTNLGRP_LINK);
      const got = receive(fd, (r) => r.msg.type === RTM_NEWLINK && linkName(r.msg) === 'm0');
      ip('-n', ns, 'link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'm1');
      await got;
      nl.dropMembership(fd, RTNLGRP_LINK);
      ip('-n', ns, 'link', 'add', 'n0', 'type', 'veth', 'peer', 'name', 'n1');
      await assert.rejects(receive(fd, (r) => linkName(r.msg) === 'n0', 300), /timeout/);
      close(fd);
    });

    it('joins groups above 31 by number (RTNLGRP_NEXTHOP = 32)', async function () {
      const ns = newNs();
      ip('-n', ns, 'link', 'set', 'lo', 'up'); // a blackhole nexthop needs an up device
      const fd = open({ netns: `/run/netns/${ns}`, groups: [RTNLGRP_NEXTHOP] });
      const got = receive(fd, (r) => r.msg.type === RTM_NEWNEXTHOP);
      ip('-n', ns, 'nexthop', 'add', 'id', '42', 'blackhole');
      const r = await got;
      assert.equal(r.msg.body.length >= 8, true);
      close(fd);
    });

    it('ENOBUFS: a tiny receive buffer overflows, recv reports -105, the socket (and its watch) keep working', async function () {
      const ns = newNs();
      const fd = open({ netns: `/run/netns/${ns}`, groups: [RTNLGRP_IPV4_ROUTE], rcvbuf: 4096 });
      const granted = nl.rcvbufSize(fd);
      assert.ok(granted >= 4096 && granted <= 65536, `rcvbuf granted ${granted}`);

      const stats = { enobufs: 0, messages: 0 };
      const marker = '10.250.0.0/24';
      const got = receive(fd, (r) => r.msg.type === RTM_NEWROUTE && routeDst(r.msg) === marker, 10000, stats);
      // Blocks the event loop: nothing is read while 2000 route events arrive.
      const lines: string[] = [];
      for (let i = 0; i < 2000; i++) lines.push(`route add blackhole 10.${i >> 8}.${i & 255}.0/24`);
      ipBatch(ns, lines);
      // Let the watch callback drain the overflowed socket, then add one more route.
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(stats.enobufs >= 1, `expected ENOBUFS, got ${stats.enobufs} (${stats.messages} messages)`);
      assert.ok(stats.messages < 2000, `all ${stats.messages} events arrived: no overflow?`);
      ip('-n', ns, 'route', 'add', 'blackhole', marker);
      const r = await got;
      assert.equal(routeDst(r.msg), marker);
      close(fd);
    });

    it('recv of a datagram larger than the buffer returns -EMSGSIZE and reports its size', async function () {
      const ns = newNs();
      const fd = open({ netns: `/run/netns/${ns}`, groups: [RTNLGRP_LINK] });
      ip('-n', ns, 'link', 'add', 't0', 'type', 'veth', 'peer', 'name', 't1');
      const small = new Uint8Array(16);
      const meta = new Int32Array(3);
      const deadline = Date.now() + 5000;
      let n = -EAGAIN;
      while (n === -EAGAIN && Date.now() < deadline) {
        n = nl.recv(fd, small, meta);
        if (n === -EAGAIN) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(n, -EMSGSIZE);
      assert.ok(meta[2] > 16, `real size ${meta[2]}`);
      close(fd);
    });

    it('recvMany: a burst of 3000 events in few calls, in order, back to back, with their nsid', function () {
      const a = newNs();
      const b = newNs();
      ip('-n', a, 'netns', 'set', b, '9');
      const fd = open({ netns: `/run/netns/${a}`, groups: [RTNLGRP_IPV4_ROUTE], listenAllNsid: true, rcvbuf: 64 << 20 });
      const lines: string[] = [];
      for (let i = 0; i < 3000; i++) lines.push(`route add blackhole 10.${i >> 8}.${i & 255}.0/24`);
      ipBatch(b, lines);
      const buf = Buffer.alloc(1 << 20);
      const meta = new Int32Array(3 * 1024);
      const dsts: string[] = [];
      let calls = 0;
      for (;;) {
        const k = nl.recvMany(fd, buf, meta, 16 << 10);
        if (k === -EAGAIN) break;
        calls++;
        assert.ok(k > 0 && k <= 1024, `records ${k}`);
        let prevEnd = 0;
        for (let i = 0; i < k; i++) {
          const [off, len, nsid] = [meta[3 * i], meta[3 * i + 1], meta[3 * i + 2]];
          assert.ok(len > 0, `record ${i}: ${len}`);
          assert.equal(off, prevEnd, 'datagrams lie back to back (8-byte aligned)');
          prevEnd = off + ((len + 7) & ~7);
          assert.equal(nsid, 9);
          for (const m of parse(buf.subarray(off), len)) if (m.type === RTM_NEWROUTE) dsts.push(routeDst(m)!);
        }
      }
      assert.equal(dsts.length, 3000);
      for (let i = 0; i < 3000; i++) assert.equal(dsts[i], `10.${i >> 8}.${i & 255}.0/24`);
      // 1 MiB / 16 KiB slots: at most 64 - 1 datagrams per call after the first ones settle; 1024 per call at most
      assert.ok(calls >= 3 && calls < 3000, `${calls} calls`);
      close(fd);
    });

    it('recvMany: a datagram larger than the slot is an -EMSGSIZE record; ENOBUFS is a record and reading goes on', async function () {
      const ns = newNs();
      const fd = open({ netns: `/run/netns/${ns}`, groups: [RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE], rcvbuf: 4096 });
      ip('-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1');
      const buf = Buffer.alloc(4096);
      const meta = new Int32Array(3 * 8);
      let k = nl.recvMany(fd, buf, meta, 64);
      assert.ok(k >= 1, `records ${k}`);
      assert.equal(meta[1], -EMSGSIZE);
      while (nl.recvMany(fd, buf, meta, 64) !== -EAGAIN) { /* drain */ }
      const lines: string[] = [];
      for (let i = 0; i < 2000; i++) lines.push(`route add blackhole 10.${i >> 8}.${i & 255}.0/24`);
      ipBatch(ns, lines);
      const big = Buffer.alloc(1 << 20);
      const meta2 = new Int32Array(3 * 1024);
      let enobufs = 0, datagrams = 0;
      while ((k = nl.recvMany(fd, big, meta2, 16 << 10)) !== -EAGAIN) {
        for (let i = 0; i < k; i++) if (meta2[3 * i + 1] === -ENOBUFS) enobufs++; else if (meta2[3 * i + 1] > 0) datagrams++;
      }
      assert.ok(enobufs >= 1, `expected ENOBUFS, got ${enobufs} (${datagrams} datagrams)`);
      assert.ok(datagrams > 0 && datagrams < 2000, `${datagrams} datagrams`);
      ip('-n', ns, 'route', 'add', 'blackhole', '10.250.0.0/24');
      k = nl.recvMany(fd, big, meta2, 16 << 10);
      assert.equal(k, 1);
      assert.equal(routeDst(parse(big, meta2[1])[0]), '10.250.0.0/24');
      assert.throws(() => nl.recvMany(fd, big, new Int32Array(2), 16), /meta/);
      assert.throws(() => nl.recvMany(fd, Buffer.alloc(8), meta2, 16), /slot/);
      close(fd);
    });

    it('opens and closes 5000 sockets without leaking descriptors', function () {
      const count = (): number => fs.readdirSync('/proc/self/fd').length;
      const before = count();
      for (let i = 0; i < 5000; i++) {
        const fd = nl.open(NETLINK_ROUTE, { groups: [RTNLGRP_LINK], rcvbuf: 1 << 20 });
        nl.watch(fd, () => {});
        nl.close(fd);
      }
      assert.ok(count() <= before + 2, `descriptors: ${before} -> ${count()}`);
    });

    it('closes the sockets of a terminated Worker (async cleanup of watched sockets, no abort)', function () {
      const script = `
        const { Worker } = require('worker_threads');
        const fs = require('fs');
        const before = fs.readdirSync('/proc/self/fd').length;
        const code = 'const { nl } = require(' + JSON.stringify(process.argv[1]) + ');' +
          'const { parentPort } = require("worker_threads");' +
          'for (let i = 0; i < 3; i++) { const fd = nl.open(0, { groups: [1] }); nl.watch(fd, () => {}); }' +
          'parentPort.postMessage("ready");' +
          'if (process.argv.includes("exit")) process.exit(0);';
        let left = 2;
        for (const mode of ['terminate', 'exit']) {
          const w = new Worker(code, { eval: true, argv: [mode] });
          w.on('message', () => { if (mode === 'terminate') w.terminate(); });
          w.on('exit', () => {
            if (--left === 0) {
              const after = fs.readdirSync('/proc/self/fd').length;
              console.log(after <= before + 1 ? 'ok' : 'leak ' + before + ' -> ' + after);
            }
          });
        }`;
      const r = childNode(script, [INDEX_JS]);
      assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'ok', r.stderr);
    });

    it('an exception thrown by a watch callback is an uncaught exception (not an abort)', function () {
      const script = `
        const { nl } = require(process.argv[1]);
        const { execFileSync } = require('child_process');
        process.on('uncaughtException', (e) => { console.log('caught ' + e.message); process.exit(0); });
        const fd = nl.open(0, { groups: [1] });
        nl.watch(fd, () => { throw new Error('boom'); });
        execFileSync('ip', ['link', 'set', 'lo', 'up']);  // any RTNLGRP_LINK event
        execFileSync('ip', ['link', 'set', 'lo', 'mtu', '65536']);`;
      // Run in a private namespace so the host's lo is not touched.
      const ns = newNs();
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script, INDEX_JS], { encoding: 'utf8', timeout: 30000 });
      assert.equal(r.signal, null, r.stderr);
      assert.equal(r.stdout.trim(), 'caught boom', r.stderr);
    });
  });

  describe('shared memory', function () {
    it('maps a new file; another process sees Atomics.store and writes back', function () {
      const f = tmpShm('a');
      const sab = shm.map(f, { size: 1 << 20, create: true });
      assert.ok(sab instanceof SharedArrayBuffer);
      assert.equal(sab.byteLength, 1 << 20);
      assert.equal(shm.fileSize(f), 1 << 20);
      const i32 = new Int32Array(sab);
      Atomics.store(i32, 5, 0x12345678);

      const reader = childNode(
        `const { shm } = require(process.argv[1]);
         const a = new Int32Array(shm.map(process.argv[2], { readonly: true }));
         console.log(a.length, Atomics.load(a, 5));`,
        [INDEX_JS, f],
      );
      assert.equal(reader.status, 0, reader.stderr);
      assert.equal(reader.stdout.trim(), `${(1 << 20) / 4} ${0x12345678}`);

      const writer = childNode(
        `const { shm } = require(process.argv[1]);
         const a = new Int32Array(shm.map(process.argv[2], { size: 4096 }));
         Atomics.store(a, 6, -99); Atomics.add(a, 5, 1);`,
        [INDEX_JS, f],
      );
      assert.equal(writer.status, 0, writer.stderr);
      assert.equal(Atomics.load(i32, 6), -99);
      assert.equal(Atomics.load(i32, 5), 0x12345679);
    });

    it('never shrinks: create with a smaller size maps the real size; a larger size grows the file', function () {
      const f = tmpShm('b');
      shm.map(f, { size: 8192, create: true });
      assert.equal(shm.map(f, { size: 4096, create: true }).byteLength, 8192);
      assert.equal(shm.fileSize(f), 8192);
      assert.equal(shm.map(f, { size: 16384, create: true }).byteLength, 16384);
      assert.equal(shm.fileSize(f), 16384);
      assert.equal(shm.map(f, {}).byteLength, 16384, 'size 0: the whole file');
      assert.equal(shm.map(f, { size: 4096 }).byteLength, 4096);
      assert.throws(() => shm.map(f, { size: 1 << 20 }), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.message.includes(f));
    });

    it('maps several GiB (sparse) and addresses beyond 4 GiB', function () {
      const f = tmpShm('big');
      const size = 5 * 1024 * 1024 * 1024;
      const sab = shm.map(f, { size, create: true });
      assert.equal(sab.byteLength, size);
      const hi = new Int32Array(sab, size - 4096, 1024);
      Atomics.store(hi, 3, 77);
      const again = new Int32Array(shm.map(f, { readonly: true }), size - 4096, 1024);
      assert.equal(Atomics.load(again, 3), 77);
    });

    it('unmaps when the SharedArrayBuffer is garbage collected', function () {
      const f = tmpShm('gc');
      shm.map(f, { size: 64 << 20, create: true });
      const r = childNode(
        `const { shm } = require(process.argv[1]);
         const f = process.argv[2];
         const mapped = () => require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(f)).length;
         (async () => {
           const touch = (i) => { const a = new Int32Array(shm.map(f, {})); a[i] = i; };
           for (let i = 0; i < 200; i++) touch(i);
           const before = mapped();
           for (let i = 0; i < 20 && mapped() > 1; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
           console.log(before, mapped());
         })();`,
        [INDEX_JS, f],
        ['--expose-gc'],
      );
      assert.equal(r.status, 0, r.stderr);
      const [before, after] = r.stdout.trim().split(' ').map(Number);
      assert.ok(before > 10, `mapped before gc: ${before}`);
      // V8 may keep the most recent buffer alive a little longer (feedback/registers): at most one left.
      assert.ok(after <= 1, `still mapped after gc: ${after} of ${before}`);
    });

    it('reports a missing file with its path', function () {
      const f = `/dev/shm/lfp-t-nat-missing-${rand()}`;
      assert.throws(() => shm.map(f, {}), (e: NodeJS.ErrnoException) => e instanceof Error && e.code === 'ENOENT' && e.message.includes(f) && e.path === f);
      assert.throws(() => shm.fileSize(f), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.message.includes(f));
    });
  });

  describe('bad input', function () {
    it('close of an unknown fd: Error EBADF', function () {
      assert.throws(() => nl.close(99999), (e: NodeJS.ErrnoException) => e instanceof Error && e.code === 'EBADF' && /nl\.close/.test(e.message));
      assert.throws(() => nl.close(1), (e: NodeJS.ErrnoException) => e.code === 'EBADF', 'never closes a descriptor it does not own');
      assert.throws(() => netns.close(0), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
      const fd = nl.open(NETLINK_ROUTE);
      nl.close(fd);
      assert.throws(() => nl.close(fd), (e: NodeJS.ErrnoException) => e.code === 'EBADF', 'double close');
      assert.throws(() => nl.recv(fd, new Uint8Array(16), new Int32Array(2)), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
    });

    it('recv with a zero-length buffer or a short meta: Error', function () {
      const fd = open();
      assert.throws(() => nl.recv(fd, new Uint8Array(0), new Int32Array(2)), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /buf is empty/.test(e.message));
      assert.throws(() => nl.recv(fd, new Uint8Array(64), new Int32Array(1)), (e: NodeJS.ErrnoException) => e.code === 'EINVAL');
      assert.throws(() => nl.recv(fd, new Uint8Array(64), new Uint32Array(2) as unknown as Int32Array), TypeError);
      assert.throws(() => nl.send(fd, new Uint8Array(0)), (e: NodeJS.ErrnoException) => e.code === 'EINVAL');
      assert.equal(nl.recv(fd, new Uint8Array(64), new Int32Array(2)), -EAGAIN);
      close(fd);
    });

    it('map of a directory or a path in a missing directory: Error with the path', function () {
      assert.throws(() => shm.map('/dev/shm', { size: 4096, create: true }), (e: NodeJS.ErrnoException) => e.code === 'EISDIR' && e.message.includes('/dev/shm'));
      assert.throws(() => shm.map('/dev/shm', { readonly: true }), (e: NodeJS.ErrnoException) => e.code === 'EISDIR');
      const p = `/nonexistent-${rand()}/x`;
      assert.throws(() => shm.map(p, { size: 4096, create: true }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.message.includes(p));
      const empty = tmpShm('empty');
      fs.writeFileSync(empty, '');
      assert.throws(() => shm.map(empty, {}), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.message.includes(empty));
      assert.throws(() => shm.map(empty, { create: true, readonly: true, size: 10 }), (e: NodeJS.ErrnoException) => e.code === 'EINVAL');
      assert.throws(() => shm.map(empty, { size: -1 }), RangeError);
      assert.throws(() => shm.map('', {}), TypeError);
    });

    it('open errors: bad protocol, group 0, missing or wrong namespace; the thread stays in its namespace', function () {
      const own = netns.inode('/proc/thread-self/ns/net');
      assert.throws(() => nl.open(200), (e: NodeJS.ErrnoException) => e.code === 'EPROTONOSUPPORT' && /socket\(AF_NETLINK, 200\)/.test(e.message));
      assert.throws(() => nl.open(NETLINK_ROUTE, { groups: [0] }), RangeError);
      assert.throws(() => nl.open(NETLINK_ROUTE, { groups: [1 << 0, 1.5] }), RangeError);
      assert.throws(() => nl.open('0' as unknown as number), TypeError);
      const missing = `/run/netns/lfp-t-nat-missing-${rand()}`;
      assert.throws(() => nl.open(NETLINK_ROUTE, { netns: missing }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.message.includes(missing));
      assert.throws(() => nl.open(NETLINK_ROUTE, { netns: '/proc/self/ns/mnt' }), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /not a network namespace/.test(e.message));
      assert.equal(netns.inode('/proc/thread-self/ns/net'), own);
      const before = fs.readdirSync('/proc/self/fd').length;
      for (let i = 0; i < 100; i++) assert.throws(() => nl.open(NETLINK_ROUTE, { netns: '/proc/self/ns/mnt' }));
      assert.equal(fs.readdirSync('/proc/self/fd').length, before, 'no descriptor leaks on error');
    });
  });

  describe('netns and clock', function () {
    it('opens namespace files and tells namespaces apart by inode', function () {
      const ns = newNs();
      const fd = netns.open(`/run/netns/${ns}`);
      assert.ok(fd > 2);
      assert.notEqual(netns.inode(`/run/netns/${ns}`), netns.inode('/proc/self/ns/net'));
      assert.equal(netns.inode('/proc/self/ns/net'), fs.statSync('/proc/self/ns/net').ino);
      netns.close(fd);
      assert.throws(() => netns.open('/proc/self/ns/uts'), (e: NodeJS.ErrnoException) => e.code === 'EINVAL');
      assert.throws(() => netns.open('/etc/hostname'), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /not a namespace file/.test(e.message));
      assert.throws(() => netns.inode('/run/netns/lfp-t-nat-none'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    });

    it('monotonicNs increases', function () {
      const a = monotonicNs();
      const b = monotonicNs();
      assert.equal(typeof a, 'bigint');
      assert.ok(b >= a && a > 0n);
    });
  });
});
