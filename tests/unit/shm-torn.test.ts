// Torn-read test: the main thread rewrites entries of several kinds in a tight loop (self-checking
// contents) while two worker_threads read the same SharedArrayBuffer and check every entry they read
// is internally consistent and every FIB lookup returns the old or the new value.
// (Same memory semantics as two processes mapping the file; the cross-process variant, through a real
// /dev/shm mapping and the addon, is tests/kernel/shm-crossproc.test.ts.)

import * as assert from 'assert';
import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';
import type { Route, XfrmSa } from '../../lib/model';
import { LIFE, LOOKUP_BUSY, NEIGH_E, SA_E, ALGO, computeLayout, type ShmConfig } from '../../shared-mem/layout';
import { ShmWriter } from '../../shared-mem/writer';
import { BUSY, NOT_FOUND, READ_BUSY, READ_OK, ShmReader } from '../../shared-mem/reader';
import { SMALL_CONFIG, route4, route6, sa } from '../../shared-mem/test-fixtures';
import { parse4, parse6 } from '../../shared-mem/addr';
import { checkNeighbours, checkSas } from '../lib/shm-checks';

const CFG: Partial<ShmConfig> = { ...SMALL_CONFIG, fib6Entries: 512, maxNeigh: 512 };
const STABLE_NEIGH = 32;
const SAS = 8;
const G1 = '192.0.2.1', G2 = '192.0.2.2';

function neigh(i: number, n: number) {
  const v = (n & 0xffff) || 1;
  const b = (v & 255).toString(16).padStart(2, '0');
  return { vrf: 0, ifindex: 2, family: 4 as const, addr: `10.0.0.${i + 1}`, lladdr: Array(6).fill(b).join(':'), state: v, flags: v ^ 0x5a5a };
}

function saOf(j: number, n: number): XfrmSa {
  return sa(0, `192.0.2.${100 + j}`, 0x1000 + j, {
    reqid: n, replayWindow: (n ^ 0xffff) >>> 0,
    aead: { name: 'rfc4106(gcm(aes))', key: (n & 255).toString(16).padStart(2, '0').repeat(20), icvBits: 128 },
    lifetime: { softBytes: '1', hardBytes: '2', softPackets: '3', hardPackets: '4', softAddSeconds: n, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 },
  });
}

const routeA = (n: number): Route => route4('10.20.0.0', 16, n & 1 ? G2 : G1, { mtu: n & 1 ? 1500 : 1400 });
const routeD = (): Route => route4('10.30.1.64', 26, G2, { mtu: 1500 });
const routeF = (): Route => route6('2001:db8:1:2::', 64, 'fe80::2');
const routeM = (n: number): Route => ({ ...route4('10.40.0.0', 16, undefined), nexthops: [
  { gw: G1, ifindex: 2, weight: 1 + (n & 1), flags: 0 }, { gw: G2, ifindex: 2, weight: 2 - (n & 1), flags: 0 }] });
// Default routes around more specific prefixes, step s = 0, 1, 2, ...: s % 4 = 0 add the defaults,
// 1 delete X, Y, X6, 2 add them, 3 delete the defaults. Inside X (Y, X6) there is always a route.
const routeX = (): Route => route4('10.50.0.0', 16, G1, { mtu: 1400 });
const routeY = (): Route => route4('10.51.7.128', 25, G2, { mtu: 1500 });
const routeX6 = (): Route => route6('2001:db8:50::', 48, 'fe80::1');
const default4 = (c: number): Route => route4('0.0.0.0', 0, c & 1 ? G2 : G1, { mtu: c & 1 ? 1500 : 1400 });
const default6 = (c: number): Route => route6('::', 0, c & 1 ? 'fe80::2' : 'fe80::1');
function defaultStep(w: ShmWriter, s: number): void {
  const cycle = s >>> 2;
  switch (s & 3) {
    case 0: w.upsert({ kind: 'route', obj: default4(cycle) }); w.upsert({ kind: 'route', obj: default6(cycle) }); break;
    case 1: for (const r of [routeX(), routeY(), routeX6()]) w.remove({ kind: 'route', obj: r }); break;
    case 2: for (const r of [routeX(), routeY(), routeX6()]) w.upsert({ kind: 'route', obj: r }); break;
    default: w.remove({ kind: 'route', obj: default4(cycle) }); w.remove({ kind: 'route', obj: default6(cycle) });
  }
}

interface ReaderReport { reads: number; lookups: number; retries: number; busy: number; errors: string[] }

// ---------------------------------------------------------------------------------------------
// Reader (worker thread)

function runReader(sab: SharedArrayBuffer, ctrl: Int32Array, id: number): ReaderReport {
  const r = ShmReader.attach(sab);
  const rep: ReaderReport = { reads: 0, lookups: 0, retries: 0, busy: 0, errors: [] };
  const err = (s: string) => { if (rep.errors.length < 20) rep.errors.push(`reader ${id}: ${s}`); };
  const out = new Int32Array(SA_E.WORDS);
  const u8 = new Uint8Array(out.buffer);
  const s4 = r.fib4Slot(0, 254), s6 = r.fib6Slot(0, 254);
  const nh = (v: number) => v & 0x3fffff;
  const vG1 = r.lookup4(s4, parse4('10.99.1.1')), vG2 = r.lookup4(s4, parse4('10.99.2.1'));
  const [iG1, iG2] = [nh(vG1), nh(vG2)];
  const val = (i: number, plen: number) => ((1 << 30) | (plen << 22) | i) >>> 0;
  const a6 = (s: string) => { const w = new Uint32Array(4); parse6(s, w, 0); return w; };
  const v6a = r.lookup6(s6, a6('2001:db8:99:1::1')), v6b = r.lookup6(s6, a6('2001:db8:99:2::1'));
  const allowA = [val(iG1, 16), val(iG2, 16)];
  const allowIn26 = [val(iG1, 24), val(iG2, 26)];
  const withPlen = (v: number, plen: number) => ((v & ~(0xff << 22)) | (plen << 22)) >>> 0;
  const allowE = [withPlen(v6a, 48)];
  const allowIn64 = [allowE[0], withPlen(v6b, 64)];
  const defaults4 = [val(iG1, 0), val(iG2, 0)], defaults6 = [withPlen(v6a, 0), withPlen(v6b, 0)];
  const allowX = [val(iG1, 16), ...defaults4], allowY = [val(iG2, 25), ...defaults4], allowNo4 = [0, ...defaults4];
  const allowX6 = [withPlen(v6a, 48), ...defaults6], allowNo6 = [0, ...defaults6];
  const aX = parse4('10.50.0.0'), aY = parse4('10.51.7.128'), aYout = parse4('10.51.7.0'), aNo = parse4('100.64.0.1');
  const aX6 = a6('2001:db8:50:1::1'), aNo6 = a6('3fff::1');
  const addrs = Array.from({ length: STABLE_NEIGH }, (_, i) => parse4(`10.0.0.${i + 1}`));
  const saAddrs = Array.from({ length: SAS }, (_, j) => parse4(`192.0.2.${100 + j}`));
  const aIn64 = a6('2001:db8:1:2::5'), aOut64 = a6('2001:db8:1:3::5');
  // the ECMP members (no mtu: other next hops than the anchors); they outlive every group flip
  const members = r.group(r.lookup4(s4, parse4('10.40.0.1')) & 0x3fffff)!.members.map((x) => x.nexthop);
  let routeAIdx = -1;
  for (let i = 0; i < r.config.maxRoutes && routeAIdx < 0; i++) { const ro = r.routeAt(i); if (ro && ro.dst === '10.20.0.0') routeAIdx = i; }
  Atomics.add(ctrl, 1, 1);
  let k = 0;
  while (Atomics.load(ctrl, 0) === 0) {
    k++;
    checkNeighbours(r, addrs, out, u8, rep, err);
    checkSas(r, saAddrs, out, u8, rep, err);
    // IPv4 FIB: old or new value, never anything else
    for (let t = 0; t < 16; t++) {
      const a = (parse4('10.20.0.0') + ((k * 7919 + t * 104729) & 0xffff)) >>> 0;
      const v = r.lookup4(s4, a);
      rep.lookups++;
      if (!allowA.includes(v)) err(`lookup4 ${a.toString(16)} -> ${v.toString(16)}`);
      const in26 = r.lookup4(s4, (parse4('10.30.1.64') + (t & 63)) >>> 0), out26 = r.lookup4(s4, (parse4('10.30.1.0') + (t & 63)) >>> 0);
      rep.lookups += 2;
      if (!allowIn26.includes(in26)) err(`lookup4 in /26 -> ${in26.toString(16)}`);
      if (out26 !== allowIn26[0]) err(`lookup4 outside /26 -> ${out26.toString(16)}`);
      const m = r.lookup4(s4, (parse4('10.40.0.0') + t) >>> 0);
      rep.lookups++;
      if ((m >>> 30) !== 2) err(`ECMP route -> ${m.toString(16)}`);
      const sel = r.groupSelect(m & 0x3fffff, k + t);
      if (!members.includes(sel) && sel !== -1) err(`groupSelect -> ${sel} (members ${members})`);
      // default routes coming and going around X, Y
      const checks: [number, number[], string][] = [[(aX + ((k * 31 + t * 4099) & 0xffff)) >>> 0, allowX, 'inside X'],
        [(aY + ((k + t) & 127)) >>> 0, allowY, 'inside Y'], [(aYout + ((k + t) & 127)) >>> 0, allowNo4, 'beside Y'], [aNo, allowNo4, 'no route but the default']];
      for (const [a, allow, what] of checks) {
        const v = r.lookup4(s4, a);
        rep.lookups++;
        if (!allow.includes(v)) err(`lookup4 ${what} ${a.toString(16)} -> ${v.toString(16)}`);
      }
    }
    // IPv6 FIB (hash with churn and rebuilds)
    for (let t = 0; t < 4; t++) {
      const v1 = r.lookup6(s6, aIn64), v2 = r.lookup6(s6, aOut64);
      rep.lookups += 2;
      if (v1 === LOOKUP_BUSY || v2 === LOOKUP_BUSY) { rep.busy++; continue; }
      if (!allowIn64.includes(v1)) err(`lookup6 in /64 -> ${v1.toString(16)}`);
      if (!allowE.includes(v2)) err(`lookup6 outside /64 -> ${v2.toString(16)}`);
      const v3 = r.lookup6(s6, aX6), v4 = r.lookup6(s6, aNo6);
      rep.lookups += 2;
      if (v3 === LOOKUP_BUSY || v4 === LOOKUP_BUSY) { rep.busy++; continue; }
      if (!allowX6.includes(v3)) err(`lookup6 inside X6 -> ${v3.toString(16)}`);
      if (!allowNo6.includes(v4)) err(`lookup6 no route but the default -> ${v4.toString(16)}`);
    }
    // route entry + its next hop, consistent (gw <-> mtu)
    if ((k & 7) === 0 && routeAIdx >= 0) {
      const ro = r.routeAt(routeAIdx);
      rep.reads++;
      if (!ro) err('route A vanished');
      else if (!((ro.nexthops[0].gw === G1 && ro.mtu === 1400) || (ro.nexthops[0].gw === G2 && ro.mtu === 1500))) err(`torn route ${JSON.stringify(ro)}`);
    }
  }
  rep.retries = r.retries;
  return rep;
}

if (!isMainThread && workerData?.shmTorn) {
  const { sab, ctrl, id } = workerData as { sab: SharedArrayBuffer; ctrl: SharedArrayBuffer; id: number };
  parentPort!.postMessage(runReader(sab, new Int32Array(ctrl), id));
}

// ---------------------------------------------------------------------------------------------
// Writer (main thread)

if (isMainThread) {
  describe('shm torn reads (writer + 2 worker_threads readers)', function () {
    this.timeout(120000);

    it('readers never see a torn entry; FIB lookups return the old or the new value', async () => {
      const sab = new SharedArrayBuffer(computeLayout(CFG).totalSize);
      const w = ShmWriter.create(sab, CFG);
      for (let i = 0; i < STABLE_NEIGH; i++) w.upsert({ kind: 'neighbour', obj: neigh(i, 1) });
      for (let j = 0; j < SAS; j++) w.upsert({ kind: 'sa', obj: saOf(j, 1) });
      w.upsert({ kind: 'route', obj: route4('10.99.1.0', 24, G1, { mtu: 1400 }) });
      w.upsert({ kind: 'route', obj: route4('10.99.2.0', 24, G2, { mtu: 1500 }) });
      w.upsert({ kind: 'route', obj: route4('10.30.1.0', 24, G1, { mtu: 1400 }) });
      w.upsert({ kind: 'route', obj: routeA(0) });
      w.upsert({ kind: 'route', obj: routeM(0) });
      w.upsert({ kind: 'route', obj: route6('2001:db8:99:1::', 64, 'fe80::1') });
      w.upsert({ kind: 'route', obj: route6('2001:db8:99:2::', 64, 'fe80::2') });
      w.upsert({ kind: 'route', obj: route6('2001:db8:1::', 48, 'fe80::1') });
      for (const ro of [routeX(), routeY(), routeX6()]) w.upsert({ kind: 'route', obj: ro });

      const ctrlBuf = new SharedArrayBuffer(16);
      const ctrl = new Int32Array(ctrlBuf);
      const workers = [0, 1].map((id) => new Worker(__filename, { workerData: { shmTorn: true, sab, ctrl: ctrlBuf, id } }));
      const reports = workers.map((wk) => new Promise<ReaderReport>((res, rej) => { wk.once('message', res); wk.once('error', rej); }));
      const t0 = Date.now();
      while (Atomics.load(ctrl, 1) < 2) {
        if (Date.now() - t0 > 30000) throw new Error('readers did not start');
        Atomics.wait(ctrl, 3, 0, 5);
      }
      // tight write loop for ~4 s, and at least 10,000 iterations (a loaded machine is slower: the
      // loop goes on until then, up to 60 s, rather than failing on time)
      let n = 1;
      const end = Date.now() + 4000, hardEnd = Date.now() + 60000;
      while ((Date.now() < end || n <= 10050) && Date.now() < hardEnd) {
        for (let b = 0; b < 50; b++, n++) {
          w.upsert({ kind: 'neighbour', obj: neigh(n % STABLE_NEIGH, n) });
          const c = n % 1000; // 300 live churn entries, 700 tombstones' worth of keys
          w.upsert({ kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: `10.1.${c >> 8}.${c & 255}`, state: 2, flags: 0 } });
          const d = (n + 700) % 1000;
          w.remove({ kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: `10.1.${d >> 8}.${d & 255}`, state: 2, flags: 0 } });
          w.upsert({ kind: 'sa', obj: saOf(n % SAS, n) });
          w.upsert({ kind: 'route', obj: routeA(n) });
          w.upsert({ kind: 'route', obj: routeM(n) });
          if (n & 1) w.upsert({ kind: 'route', obj: routeD() }); else w.remove({ kind: 'route', obj: routeD() });
          if (n & 2) w.upsert({ kind: 'route', obj: routeF() }); else w.remove({ kind: 'route', obj: routeF() });
          w.upsert({ kind: 'route', obj: route6(`2001:db8:ff:${(n % 1000).toString(16)}::`, 64, 'fe80::3') });
          w.remove({ kind: 'route', obj: route6(`2001:db8:ff:${((n + 700) % 1000).toString(16)}::`, 64, 'fe80::3') });
          defaultStep(w, n - 1);
        }
      }
      Atomics.store(ctrl, 0, 1);
      const reps = await Promise.all(reports);
      await Promise.all(workers.map((wk) => wk.terminate()));
      const sum = (f: (x: ReaderReport) => number) => reps.reduce((s, x) => s + f(x), 0);
      console.log(`      writer: ${n - 1} iterations (~${(n - 1) * 12} operations); readers: ${sum((x) => x.reads)} entry reads, `
        + `${sum((x) => x.lookups)} lookups, ${sum((x) => x.retries)} sequence-lock retries, ${sum((x) => x.busy)} busy results`);
      const errors = reps.flatMap((x) => x.errors);
      assert.deepStrictEqual(errors, []);
      assert.ok(sum((x) => x.reads) > 10000, 'readers made progress');
      assert.ok(n > 10000, 'writer made progress');
      // the churn went through IPv6 hash and neighbour index rebuilds
      const rebuilds6 = new Uint32Array(sab, computeLayout(CFG).regions.fib6Hash.offset, 1)[0];
      const rebuildsN = new Uint32Array(sab, computeLayout(CFG).regions.neighHash.offset, 1)[0];
      console.log(`      index rebuilds during the run: IPv6 FIB hash ${rebuilds6}, neighbour hash ${rebuildsN}`);
      assert.ok(rebuilds6 > 2, 'no IPv6 hash rebuild happened');
      assert.ok(rebuildsN > 2, 'no neighbour index rebuild happened');
    });
  });
}
