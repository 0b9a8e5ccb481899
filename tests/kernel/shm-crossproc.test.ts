// Torn-read test across processes, through the real mapping: this process creates a shared-memory file
// under /dev/shm with ShmWriter.open() (native addon) and rewrites entries of several kinds in a tight
// loop for ~3 s with self-checking contents (neighbours, SAs, routes whose next hops change, ECMP
// groups, IPv4 and IPv6 FIB prefixes, default routes that come and go around more specific prefixes),
// while 2 child processes (this file run with --shm-crossproc-reader) map the same file with
// ShmReader.open() and read / look up continuously. Every entry a child reads must be internally
// consistent and every lookup must return a value the FIB held at some moment (old or new), never a
// mix or "no route" where a route always existed. The children print their counts (reads, lookups,
// retries, busy results, errors) as one JSON line on stdout.
//
// No root needed: only /dev/shm and the addon (make -C native). The files are removed and the children
// killed in every case.

import * as assert from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import type { Route, XfrmSa } from '../../lib/model';
import { ALGO, LIFE, LOOKUP_BUSY, NEIGH_E, SA_E, loadNative, type ShmConfig } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { BUSY, NOT_FOUND, READ_BUSY, READ_OK, ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6, sa } from '../../shared-mem/test-fixtures';
import { parse4, parse6 } from '../../shared-mem/addr';
import { checkNeighbours, checkSas } from '../lib/shm-checks';

const READER_FLAG = '--shm-crossproc-reader';
const WRITE_MS = 3000;
const READERS = 2;

const CFG: Partial<ShmConfig> = {
  ...SMALL_CONFIG, maxRoutes: 4096, fib4Tables: 1, tbl8Groups: 64, fib6Tables: 1, fib6Entries: 512, maxNeigh: 512,
};
const STABLE_NEIGH = 32;
const SAS = 8;
const G1 = '192.0.2.1', G2 = '192.0.2.2', G3 = '192.0.2.3';

// Control file words (Int32): stop flag, readers ready.
const CTL_STOP = 0, CTL_READY = 1;

// ---------------------------------------------------------------------------------------------
// The objects the writer rewrites; their contents let a reader check what it read.

/** Neighbour i, version n: state = n, flags = n ^ 0x5a5a, every lladdr byte = n & 255. */
function neigh(i: number, n: number) {
  const v = (n & 0xffff) || 1;
  const b = (v & 255).toString(16).padStart(2, '0');
  return { vrf: 0, ifindex: 2, family: 4 as const, addr: `10.0.0.${i + 1}`, lladdr: Array(6).fill(b).join(':'), state: v, flags: v ^ 0x5a5a };
}

/** SA j, version n: reqid = n, replay window = n ^ 0xffff, soft-add lifetime = n, key bytes = n & 255. */
function saOf(j: number, n: number): XfrmSa {
  return sa(0, `192.0.2.${100 + j}`, 0x1000 + j, {
    reqid: n, replayWindow: (n ^ 0xffff) >>> 0,
    aead: { name: 'rfc4106(gcm(aes))', key: (n & 255).toString(16).padStart(2, '0').repeat(20), icvBits: 128 },
    lifetime: { softBytes: '1', hardBytes: '2', softPackets: '3', hardPackets: '4', softAddSeconds: n, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
  });
}

/** Route A: its next hop flips between G1 (mtu 1400) and G2 (mtu 1500): gw and mtu must agree. */
const routeA = (n: number): Route => route4('10.20.0.0', 16, n & 1 ? G2 : G1, { mtu: n & 1 ? 1500 : 1400 });
/** A /26 (tbl8) inside 10.30.1.0/24, added and removed. */
const routeD = (): Route => route4('10.30.1.64', 26, G2, { mtu: 1500 });
/** An IPv6 /64 inside 2001:db8:1::/48, added and removed. */
const routeF = (): Route => route6('2001:db8:1:2::', 64, 'fe80::2');
/** ECMP route M: three shapes in turn (weights 1+2, 2+1, three members 1+1+1): new groups each time. */
const M_SHAPES: [string, number][][] = [[[G1, 1], [G2, 2]], [[G1, 2], [G2, 1]], [[G1, 1], [G2, 1], [G3, 1]]];
const routeM = (n: number): Route => ({
  ...route4('10.40.0.0', 16, undefined),
  nexthops: M_SHAPES[n % 3].map(([gw, weight]) => ({ gw, ifindex: 2, weight, flags: 0 })),
});

// Default routes around more specific prefixes, one step per iteration (phase = n % 4):
//   0: add the defaults (next hop G1 or G2 / fe80::1 or fe80::2, alternating per cycle)
//   1: delete X, Y, X6          2: add X, Y, X6          3: delete the defaults
// The states cycle {X} -> {X, D} -> {D} -> {X, D} -> {X}: inside X (Y, X6) an answer is X or the
// default, never "no route".
const routeX = (): Route => route4('10.50.0.0', 16, G1, { mtu: 1400 });
const routeY = (): Route => route4('10.51.7.128', 25, G2, { mtu: 1500 }); // tbl8 group created and collapsed
const routeX6 = (): Route => route6('2001:db8:50::', 48, 'fe80::1');
const default4 = (c: number): Route => route4('0.0.0.0', 0, c & 1 ? G2 : G1, { mtu: c & 1 ? 1500 : 1400 });
const default6 = (c: number): Route => route6('::', 0, c & 1 ? 'fe80::2' : 'fe80::1');

function setupState(w: ShmWriter): void {
  for (let i = 0; i < STABLE_NEIGH; i++) w.upsert({ kind: 'neighbour', obj: neigh(i, 1) });
  for (let j = 0; j < SAS; j++) w.upsert({ kind: 'sa', obj: saOf(j, 1) });
  // anchors: keep the next hops the changing routes use alive (their indices are the allowed values)
  w.upsert({ kind: 'route', obj: route4('10.99.1.0', 24, G1, { mtu: 1400 }) });
  w.upsert({ kind: 'route', obj: route4('10.99.2.0', 24, G2, { mtu: 1500 }) });
  for (const [k, gw] of [G1, G2, G3].entries()) w.upsert({ kind: 'route', obj: route4(`10.98.${k + 1}.0`, 24, gw) });
  w.upsert({ kind: 'route', obj: route6('2001:db8:99:1::', 64, 'fe80::1') });
  w.upsert({ kind: 'route', obj: route6('2001:db8:99:2::', 64, 'fe80::2') });
  w.upsert({ kind: 'route', obj: route4('10.30.1.0', 24, G1, { mtu: 1400 }) });
  w.upsert({ kind: 'route', obj: route6('2001:db8:1::', 48, 'fe80::1') });
  w.upsert({ kind: 'route', obj: routeA(0) });
  w.upsert({ kind: 'route', obj: routeM(0) });
  w.upsert({ kind: 'route', obj: routeX() });
  w.upsert({ kind: 'route', obj: routeY() });
  w.upsert({ kind: 'route', obj: routeX6() });
}

/** One iteration of the write loop (about 14 write operations). */
function writeStep(w: ShmWriter, n: number): void {
  w.upsert({ kind: 'neighbour', obj: neigh(n % STABLE_NEIGH, n) });
  const c = n % 1000; // ~300 live churn neighbours / IPv6 prefixes: tombstones and index rebuilds
  w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: `10.1.${c >> 8}.${c & 255}`, state: 2, flags: 0 } });
  const d = (n + 700) % 1000;
  w.remove({ kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: `10.1.${d >> 8}.${d & 255}`, state: 2, flags: 0 } });
  w.upsert({ kind: 'sa', obj: saOf(n % SAS, n) });
  w.upsert({ kind: 'route', obj: routeA(n) });
  w.upsert({ kind: 'route', obj: routeM(n) });
  if (n & 1) w.upsert({ kind: 'route', obj: routeD() }); else w.remove({ kind: 'route', obj: routeD() });
  if (n & 2) w.upsert({ kind: 'route', obj: routeF() }); else w.remove({ kind: 'route', obj: routeF() });
  w.upsert({ kind: 'route', obj: route6(`2001:db8:ff:${c.toString(16)}::`, 64, 'fe80::3') });
  w.remove({ kind: 'route', obj: route6(`2001:db8:ff:${d.toString(16)}::`, 64, 'fe80::3') });
  const cycle = n >>> 2;
  switch (n & 3) {
    case 0: w.upsert({ kind: 'route', obj: default4(cycle) }); w.upsert({ kind: 'route', obj: default6(cycle) }); break;
    case 1: for (const r of [routeX(), routeY(), routeX6()]) w.remove({ kind: 'route', obj: r }); break;
    case 2: for (const r of [routeX(), routeY(), routeX6()]) w.upsert({ kind: 'route', obj: r }); break;
    default: w.remove({ kind: 'route', obj: default4(cycle) }); w.remove({ kind: 'route', obj: default6(cycle) });
  }
}

// ---------------------------------------------------------------------------------------------
// Reader (child process)

interface ReaderReport { id: number; reads: number; lookups: number; retries: number; busy: number; errorCount: number; errors: string[] }

function runReader(path: string, ctlPath: string, id: number): ReaderReport {
  const r = ShmReader.open(path);
  const ctl = new Int32Array(loadNative().shm.map(ctlPath, { size: 0 }));
  const rep: ReaderReport = { id, reads: 0, lookups: 0, retries: 0, busy: 0, errorCount: 0, errors: [] };
  const err = (s: string): void => { if (rep.errorCount++ < 20) rep.errors.push(`reader ${id}: ${s}`); };
  const out = new Int32Array(SA_E.WORDS);
  const u8 = new Uint8Array(out.buffer);
  const a6 = (s: string): Uint32Array => { const x = new Uint32Array(4); parse6(s, x, 0); return x; };
  const s4 = r.fib4Slot(0, 254), s6 = r.fib6Slot(0, 254);
  const nh = (v: number): number => v & 0x3fffff;
  const val = (i: number, plen: number): number => ((1 << 30) | (plen << 22) | i) >>> 0;
  const withPlen = (v: number, plen: number): number => ((v & ~(0xff << 22)) | (plen << 22)) >>> 0;
  // next-hop indices, from the anchor routes
  const iG1 = nh(r.lookup4(s4, parse4('10.99.1.1'))), iG2 = nh(r.lookup4(s4, parse4('10.99.2.1')));
  const members = [1, 2, 3].map((k) => nh(r.lookup4(s4, parse4(`10.98.${k}.1`))));
  const v6a = r.lookup6(s6, a6('2001:db8:99:1::1')), v6b = r.lookup6(s6, a6('2001:db8:99:2::1'));
  // allowed answers
  const allowA = [val(iG1, 16), val(iG2, 16)];
  const allowIn26 = [val(iG1, 24), val(iG2, 26)];
  const allowE = [withPlen(v6a, 48)];
  const allowIn64 = [allowE[0], withPlen(v6b, 64)];
  const defaults4 = [val(iG1, 0), val(iG2, 0)];
  const defaults6 = [withPlen(v6a, 0), withPlen(v6b, 0)];
  const allowX = [val(iG1, 16), ...defaults4];
  const allowY = [val(iG2, 25), ...defaults4];
  const allowNoRoute4 = [0, ...defaults4];
  const allowX6 = [withPlen(v6a, 48), ...defaults6];
  const allowNoRoute6 = [0, ...defaults6];
  const addrs = Array.from({ length: STABLE_NEIGH }, (_, i) => parse4(`10.0.0.${i + 1}`));
  const saAddrs = Array.from({ length: SAS }, (_, j) => parse4(`192.0.2.${100 + j}`));
  const aIn64 = a6('2001:db8:1:2::5'), aOut64 = a6('2001:db8:1:3::5');
  const aX6 = [a6('2001:db8:50::1'), a6('2001:db8:50:ffff::1')], aNo6 = a6('3fff::1');
  const aX = parse4('10.50.0.0'), aY = parse4('10.51.7.128'), aYout = parse4('10.51.7.0'), aNo = parse4('100.64.0.1');
  const [routeAIdx, routeMIdx] = ['10.20.0.0', '10.40.0.0'].map((dst) => {
    for (let i = 0; i < r.config.maxRoutes; i++) { const ro = r.routeAt(i); if (ro && ro.dst === dst) return i; }
    return -1;
  });
  if (routeAIdx < 0 || routeMIdx < 0) err('routes A / M not found at start');
  const mShapes = M_SHAPES.map((s) => JSON.stringify(s));
  const look6 = (a: Uint32Array, allow: number[], what: string): void => {
    const v = r.lookup6(s6, a);
    rep.lookups++;
    if (v === LOOKUP_BUSY) rep.busy++;
    else if (!allow.includes(v)) err(`lookup6 ${what} -> ${v.toString(16)}`);
  };
  const look4 = (a: number, allow: number[], what: string): void => {
    const v = r.lookup4(s4, a);
    rep.lookups++;
    if (!allow.includes(v)) err(`lookup4 ${what} (${(a >>> 24)}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}) -> ${v.toString(16)}`);
  };

  Atomics.add(ctl, CTL_READY, 1);
  let k = 0;
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    k++;
    checkNeighbours(r, addrs, out, u8, rep, err);
    checkSas(r, saAddrs, out, u8, rep, err);
    // IPv4 FIB: old or new value, never anything else
    for (let t = 0; t < 8; t++) {
      look4((parse4('10.20.0.0') + ((k * 7919 + t * 104729) & 0xffff)) >>> 0, allowA, 'route A');
      look4((parse4('10.30.1.64') + ((k + t) & 63)) >>> 0, allowIn26, 'inside the /26');
      look4((parse4('10.30.1.0') + ((k + t) & 63)) >>> 0, [allowIn26[0]], 'outside the /26');
      const m = r.lookup4(s4, (parse4('10.40.0.0') + t) >>> 0);
      rep.lookups++;
      if ((m >>> 30) !== 2) err(`ECMP route -> ${m.toString(16)}`);
      const sel = r.groupSelect(m & 0x3fffff, k + t);
      if (sel === -1) rep.busy++; // the group was released after this lookup (a new shape replaced it)
      else if (!members.includes(sel)) err(`groupSelect -> ${sel} (members ${members})`);
      // default routes around X, Y
      look4((aX + ((k * 31 + t * 4099) & 0xffff)) >>> 0, allowX, 'inside X');
      look4((aY + ((k + t) & 127)) >>> 0, allowY, 'inside Y');
      look4((aYout + ((k + t) & 127)) >>> 0, allowNoRoute4, 'beside Y');
      look4(aNo, allowNoRoute4, 'no route but the default');
    }
    // IPv6 FIB (hash with churn and rebuilds; the default around X6)
    for (let t = 0; t < 4; t++) {
      look6(aIn64, allowIn64, 'inside the /64');
      look6(aOut64, allowE, 'outside the /64');
      look6(aX6[t & 1], allowX6, 'inside X6');
      look6(aNo6, allowNoRoute6, 'no route but the default');
    }
    // route entries with their next hops, consistent
    if ((k & 3) === 0) {
      const ra = r.routeAt(routeAIdx);
      rep.reads++;
      if (!ra) err('route A vanished');
      else if (!((ra.nexthops[0]?.gw === G1 && ra.mtu === 1400) || (ra.nexthops[0]?.gw === G2 && ra.mtu === 1500))) err(`torn route A ${JSON.stringify(ra)}`);
      const rm = r.routeAt(routeMIdx);
      rep.reads++;
      if (!rm) err('route M vanished');
      else if (!mShapes.includes(JSON.stringify(rm.nexthops.map((x) => [x.gw, x.weight])))) err(`torn route M ${JSON.stringify(rm.nexthops)}`);
    }
  }
  rep.retries = r.retries;
  return rep;
}

if (process.argv[2] === READER_FLAG) {
  let rep: ReaderReport;
  try {
    rep = runReader(process.argv[3], process.argv[4], Number(process.argv[5]));
  } catch (e) {
    rep = { id: Number(process.argv[5]), reads: 0, lookups: 0, retries: 0, busy: 0, errorCount: 1, errors: [`reader crashed: ${(e as Error).stack}`] };
  }
  process.stdout.write(`${JSON.stringify(rep)}\n`);
} else {
  // -------------------------------------------------------------------------------------------
  // Writer (the test process)

  describe('shm torn reads across processes (writer + 2 reader processes, real /dev/shm mapping)', function () {
    this.timeout(120000);
    const path = `/dev/shm/lfp-test-crossproc-${process.pid}`;
    const ctlPath = `${path}.ctl`;
    const children: ChildProcess[] = [];

    const cleanup = (): void => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      for (const f of [path, ctlPath]) fs.rmSync(f, { force: true });
    };
    after(cleanup);

    it('readers never see a torn entry; every lookup returns an old or a new value', async () => {
      try {
        const w = ShmWriter.open(path, { config: CFG, fresh: true });
        setupState(w);
        const ctl = new Int32Array(loadNative().shm.map(ctlPath, { size: 4096, create: true }));
        Atomics.store(ctl, CTL_STOP, 0);
        Atomics.store(ctl, CTL_READY, 0);

        const reports: Promise<ReaderReport>[] = [];
        for (let id = 0; id < READERS; id++) {
          const c = spawn(process.execPath, [__filename, READER_FLAG, path, ctlPath, String(id)], { stdio: ['ignore', 'pipe', 'pipe'] });
          children.push(c);
          let stdout = '', stderr = '';
          c.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
          c.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
          reports.push(new Promise((resolve, reject) => {
            c.once('error', reject);
            c.once('close', (code, sig) => {
              const line = stdout.trim().split('\n').pop() ?? '';
              try {
                resolve(JSON.parse(line) as ReaderReport);
              } catch {
                reject(new Error(`reader ${id} exited (${code ?? sig}) without a report; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-2000)}`));
              }
            });
          }));
        }
        for (const p of reports) p.catch(() => undefined); // handled below (Promise.all); no unhandled rejection
        // a reader that dies early must not leave the test waiting for it
        const early = Promise.race(reports.map((p) => p.then((x) => {
          throw new Error(`reader ${x.id} exited before the writer started: ${x.errors.join('; ')}`);
        })));
        early.catch(() => undefined);
        const t0 = Date.now();
        while (Atomics.load(ctl, CTL_READY) < READERS) {
          if (Date.now() - t0 > 30000) throw new Error('the readers did not start within 30 s');
          await Promise.race([new Promise((res) => setTimeout(res, 10)), early]);
        }

        // tight write loop (from phase 0 of the default-route cycle: X and the default are never both absent)
        let n = 0;
        const end = Date.now() + WRITE_MS;
        while (Date.now() < end) for (let b = 0; b < 20; b++, n++) writeStep(w, n);
        Atomics.store(ctl, CTL_STOP, 1);
        const iterations = n;

        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('the readers did not stop within 30 s')), 30000); });
        let reps: ReaderReport[];
        try {
          reps = await Promise.race([Promise.all(reports), timeout]);
        } finally {
          clearTimeout(timer);
        }
        const sum = (f: (x: ReaderReport) => number): number => reps.reduce((s, x) => s + f(x), 0);
        console.log(`      writer: ${iterations} iterations (~${iterations * 14} write operations) in ${WRITE_MS} ms; `
          + `readers: ${reps.map((x) => `#${x.id} ${x.reads} reads, ${x.lookups} lookups, ${x.retries} retries, ${x.busy} busy, ${x.errorCount} errors`).join('; ')}`);
        assert.deepStrictEqual(reps.flatMap((x) => x.errors), []);
        assert.strictEqual(sum((x) => x.errorCount), 0);
        for (const x of reps) {
          assert.ok(x.reads > 10000, `reader ${x.id}: only ${x.reads} reads`);
          assert.ok(x.lookups > 100000, `reader ${x.id}: only ${x.lookups} lookups`);
        }
        assert.ok(iterations > 1000, `writer: only ${iterations} iterations`);
      } finally {
        cleanup();
      }
      assert.ok(!fs.existsSync(path) && !fs.existsSync(ctlPath), 'files left in /dev/shm');
    });
  });
}
