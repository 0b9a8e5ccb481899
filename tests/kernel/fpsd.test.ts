// fpsd (stats-daemon/) against a real kernel with ESP: this file runs on the host as one test that
// boots user-mode Linux (tests/uml/) and runs ITSELF there with LFP_FPSD_IN_UML=1, where the real
// tests run: ESP SAs made with `ip xfrm state add` in a control-plane netns (and one in a VRF netns),
// real fpmd + cmgrd mirroring them into the shared memory, a real stats file written through the
// StatsFile API the fast path uses, and fpsd (in-process, then as the `node build/stats-daemon/main.js`
// process) pushing into the kernel. Asserted with `ip -s xfrm state` and `ip xfrm monitor expire`.
import * as assert from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RequestSocket } from '../../cache-manager/nlsock';
import { statsPath } from '../../lib/config';
import { silentLogger } from '../../lib/log';
import { NETLINK_XFRM } from '../../netlink/constants';
import { decodeXfrm, getAe, newAe, type XfrmSaRef } from '../../netlink/xfrm';
import { decodeSa } from '../../shared-mem/entries';
import { SA_E } from '../../shared-mem/layout';
import { READ_OK } from '../../shared-mem/reader';
import { SA_C_BYTES, SA_C_ISEQ, SA_C_OSEQ, SA_C_PACKETS, SA_C_TAG, SA_STRIDE, StatsFile } from '../../shared-mem/stats';
import { OSEQ_MARGIN, OSEQ_RACE_SLACK, StatsDaemon } from '../../stats-daemon/fpsd';
import { LfpEnv, sleep, waitUntil } from '../lib/lfp-env';
import { Netns, sh } from '../lib/netns';
import { mirrorUmlTests, repoRoot } from '../uml/uml';
import type { UmlLfp } from '../lib/uml-lfp';
import type { Charon } from '../lib/swan';

const IN_UML = process.env.LFP_FPSD_IN_UML === '1';

/** The tests that run inside UML (the host lists each of them with the guest's result). */
const T = {
  noExpire: 'NEWAE alone does not expire an SA (kernel 6.1): counters past both limits, no EXPIRE, SA kept',
  push: "pushes the fast path's packets/bytes (summed over workers) and oseq; ip -s xfrm state shows them",
  esn: 'ESN SA, inbound: 64-bit iseq as seq-hi/seq, window marked seen',
  delta: "adds only the fast path's new traffic, on top of what the kernel counted itself",
  unchanged: 'does not push when the counters did not change',
  stale: "ignores a slot whose tag is not the current SA entry's (an older SA's counts)",
  vrf: 'pushes an SA of a VRF in its own netns (VRF = nsid)',
  markV6: 'pushes an SA with a mark (found only with it) and an IPv6 SA',
  soft: 'soft byte limit crossed by fast-path traffic: one EXPIRE (hard 0) per SA, the SA stays',
  hard: "hard byte limit crossed: soft then hard EXPIRE, the kernel deletes the SA, lfp's shm follows",
  process: 'the fpsd process (main.js) takes over from the saved state without pushing anything twice, survives a restart',
  e2ePackets: "real fast path: packets and sequence numbers of A -> B (fast path encrypts) and B -> A (decrypts) match the peer's kernel",
  e2eBytes: "real fast path: bytes match the peer's kernel (Linux counts the inner IP packet)",
  swanRekey: 'strongSwan (unmodified charon): fast-path bytes over rekey_bytes -> fpsd soft EXPIRE -> charon rekeys the CHILD_SA, the old SA goes',
} as const;


if (!IN_UML) {
  // Host: one UML boot runs every guest test; each guest test then shows here as its own test.
  describe('fpsd: per-SA counters into the kernel (inside user-mode Linux, kernel 6.1 with ESP)', function () {
    this.timeout(600_000);
    mirrorUmlTests(path.join(__dirname, 'fpsd.test.js'), Object.values(T), { timeoutMs: 480_000, env: { LFP_FPSD_IN_UML: '1' } });
  });
} else {
  describeInUml();
  describeWithFastPath();
  describeWithStrongSwan();
}

// ---------------------------------------------------------------------------------------------

const K = '0x000102030405060708090a0b0c0d0e0fc0c1c2c3';
const GCM = `aead 'rfc4106(gcm(aes))' ${K} 128`;

interface KernelSa { bytes: number; packets: number; add: string; use: string; seq?: number; oseq?: number; bitmap?: string; seqHi?: number; oseqHi?: number; bmp?: string }

/** The SA with this SPI in `ip -s xfrm state` of netns `ns` (text: iproute2 6.1 has no JSON for xfrm), or null. */
function kernelSa(ns: string, spi: number): KernelSa | null {
  const out = sh('ip', ['-n', ns, '-s', 'xfrm', 'state']);
  const blk = out.split(/^src /m).slice(1).find((b) => b.includes(`spi 0x${spi.toString(16).padStart(8, '0')}(`));
  if (!blk) return null;
  const m = /lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)\s*\n\s*add (.*?) use (.*)/.exec(blk);
  assert.ok(m, `no "lifetime current" in:\n${blk}`);
  const k: KernelSa = { bytes: Number(m[1]), packets: Number(m[2]), add: m[3].trim(), use: m[4].trim() };
  const legacy = /anti-replay context: seq 0x([0-9a-f]+), oseq 0x([0-9a-f]+), bitmap 0x([0-9a-f]+)/.exec(blk);
  if (legacy) { k.seq = parseInt(legacy[1], 16); k.oseq = parseInt(legacy[2], 16); k.bitmap = legacy[3]; }
  const esn = /seq-hi 0x([0-9a-f]+), seq 0x([0-9a-f]+), oseq-hi 0x([0-9a-f]+), oseq 0x([0-9a-f]+)[\s\S]*?bitmap-length \d+\s*\n\s*([0-9a-f ]+)/.exec(blk);
  if (esn) {
    k.seqHi = parseInt(esn[1], 16); k.seq = parseInt(esn[2], 16); k.oseqHi = parseInt(esn[3], 16); k.oseq = parseInt(esn[4], 16);
    k.bmp = esn[5].trim();
  }
  return k;
}

/** `ip xfrm monitor expire` in a netns, collecting "Expired" events as {spi, hard}. */
class ExpireMonitor {
  private proc: ChildProcess;
  private out = '';
  constructor(ns: string) {
    this.proc = spawn('ip', ['-n', ns, 'xfrm', 'monitor', 'expire'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (b: Buffer) => { this.out += b.toString(); });
    this.proc.stderr!.on('data', (b: Buffer) => { this.out += b.toString(); });
  }
  events(): { spi: number; hard: number }[] {
    return this.out.split(/^Expired /m).slice(1).map((b) => {
      const spi = /spi 0x([0-9a-f]+)/.exec(b), hard = /hard (\d)/.exec(b);
      return { spi: spi ? parseInt(spi[1], 16) : -1, hard: hard ? Number(hard[1]) : -1 };
    }).filter((e) => e.hard >= 0);
  }
  of(spi: number): number[] { return this.events().filter((e) => e.spi === spi).map((e) => e.hard); }
  stop(): void { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }
}

function describeInUml(): void {
  describe('fpsd inside UML: counters and expiry pushed into kernel SAs', function () {
    this.timeout(180_000);
    let cp: Netns, vrfNs: Netns, env: LfpEnv, stats: StatsFile, d: StatsDaemon | null = null;
    let mon: ExpireMonitor;
    let proc: ChildProcess | null = null;
    const slots = new Map<string, { slot: number; tag: number }>(); // "vrf/spi"

    const SA = (spi: number, extra = '') => `xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi ${spi} reqid 1 mode tunnel ${GCM} ${extra}`;
    const A = 0x100, B = 0x101, S = 0x102, H = 0x103, N = 0x104, D = 0x105, M = 0x106, SIX = 0x107, V = 0x200;

    before(async () => {
      cp = Netns.create('fpsd');
      vrfNs = Netns.create('fpsdv');
      cp.ip(`netns set ${vrfNs.name} 7`);
      cp.batch([
        SA(A), SA(B, 'replay-window 128 flag esn'),
        SA(S, 'limit byte-soft 5000 limit byte-hard 1000000'),
        SA(H, 'limit byte-soft 2000 limit byte-hard 4000'),
        SA(N, 'limit packet-soft 10 limit packet-hard 20'),
        SA(D), SA(M, 'mark 0x10 mask 0xff'),
        `xfrm state add src 2001:db8::1 dst 2001:db8::2 proto esp spi ${SIX} reqid 2 mode tunnel ${GCM}`,
      ]);
      vrfNs.batch([SA(V)]);
      env = await LfpEnv.start({
        cpNetns: cp.name,
        shm: { maxRoutes: 4096, fib4Tables: 2, tbl8Groups: 256, fib6Tables: 2, fib6Entries: 4096, maxSas: 64 },
      });
      await waitUntil('9 SAs in the shared memory', 60_000, () => env.list('sa').length === 9, 50);
      const r = env.reader, buf = new Uint32Array(SA_E.WORDS);
      for (let i = 0; i < r.config.maxSas; i++) {
        if (r.readSa(i, buf) !== READ_OK) continue;
        const sa = decodeSa(buf, new Uint8Array(buf.buffer));
        slots.set(`${sa.vrf}/${sa.spi}`, { slot: i, tag: buf[0] });
      }
      assert.ok(slots.has(`7/${V}`), `VRF SA not mirrored: ${[...slots.keys()].join(' ')}`);
      // the fast path's stats file, created through the API the fast path uses
      stats = StatsFile.createFile(statsPath(env.cfg), { workers: 2, ports: 1, sas: r.config.maxSas });
      mon = new ExpireMonitor(cp.name);
      await sleep(500);
    });

    after(() => {
      try { d?.close(); } catch { /* closed */ }
      try { proc?.kill('SIGKILL'); } catch { /* gone */ }
      mon?.stop();
      env?.stop();
      cp?.destroy();
      vrfNs?.destroy();
    });

    /** Sets SA `spi`'s counters of worker `w` (the fast path's way: the slot of its shm entry, tagged with the entry's sequence word). */
    function setFp(spi: number, w: number, c: { packets?: number; bytes?: number; oseq?: number; iseq?: number; tag?: number }, vrf = 0): void {
      const s = slots.get(`${vrf}/${spi}`);
      assert.ok(s, `no slot for ${vrf}/${spi}`);
      const a = stats.worker(w).sa, o = s.slot * SA_STRIDE;
      a[o + SA_C_TAG] = c.tag ?? s.tag;
      if (c.packets !== undefined) a[o + SA_C_PACKETS] = c.packets;
      if (c.bytes !== undefined) a[o + SA_C_BYTES] = c.bytes;
      if (c.oseq !== undefined) a[o + SA_C_OSEQ] = c.oseq;
      if (c.iseq !== undefined) a[o + SA_C_ISEQ] = c.iseq;
    }
    const ksa = (spi: number, ns = cp.name): KernelSa => {
      const k = kernelSa(ns, spi);
      assert.ok(k, `SA 0x${spi.toString(16)} not in the kernel`);
      return k;
    };

    it(T.noExpire, async () => {
      const noExpire = new StatsDaemon(env.cfg, silentLogger, { expire: false, stateFile: '' });
      try {
        setFp(N, 0, { packets: 50, bytes: 5000, oseq: 50 });
        await noExpire.tick();
        assert.strictEqual(noExpire.counters.pushes, 1);
        const k = ksa(N);
        assert.strictEqual(k.packets, 50);
        await sleep(1000);
        assert.deepStrictEqual(mon.of(N), [], 'the kernel raised an expiry by itself');
        assert.ok(kernelSa(cp.name, N), 'SA gone');
      } finally {
        noExpire.close();
        setFp(N, 0, { packets: 0, bytes: 0, oseq: 0 }); // nothing more for the daemon below
      }
    });

    it(T.push, async () => {
      d = new StatsDaemon(env.cfg, silentLogger);
      const add0 = ksa(A).add;
      setFp(A, 0, { packets: 10, bytes: 1000, oseq: 10 });
      setFp(A, 1, { packets: 5, bytes: 500, oseq: 15 });
      await d.tick();
      const k = ksa(A);
      assert.strictEqual(k.bytes, 1500);
      assert.strictEqual(k.packets, 15);
      assert.strictEqual(k.oseq, 15 + OSEQ_MARGIN, 'the fast path\'s oseq + the margin');
      assert.strictEqual(k.seq, 0);
      assert.strictEqual(k.add, add0, 'add time kept');
      assert.notStrictEqual(k.use, '-', 'use time set at the first use');
      assert.strictEqual(d.counters.pushes, 1);
      assert.strictEqual(d.counters.getaeErrors + d.counters.pushErrors, 0);
    });

    it(T.esn, async () => {
      setFp(B, 0, { packets: 3, bytes: 300, iseq: 2 ** 32 + 9 });
      await d!.tick();
      const k = ksa(B);
      assert.strictEqual(k.bytes, 300);
      assert.strictEqual(k.packets, 3);
      assert.strictEqual(k.seqHi, 1);
      assert.strictEqual(k.seq, 9);
      assert.strictEqual(k.oseq, 0);
      assert.strictEqual(k.bmp, 'ffffffff ffffffff ffffffff ffffffff');
    });

    it(T.delta, async () => {
      // the kernel's own traffic on SA A (exceptions it encrypted): +100 bytes, +1 packet
      const sock = new RequestSocket('test', NETLINK_XFRM, cp.path, silentLogger);
      try {
        const ref: XfrmSaRef = { daddr: '10.0.0.2', spi: A, proto: 50, family: 4 };
        const m = await sock.request((seq) => getAe(ref, seq), false);
        const r = decodeXfrm(m[0], 0);
        assert.strictEqual(r.kind, 'ae');
        if (r.kind !== 'ae') return;
        const lt = r.ae.lifetime!;
        await sock.request((seq) => newAe({ ...ref, lifetime: { bytes: BigInt(lt.bytes) + 100n, packets: BigInt(lt.packets) + 1n, addTime: lt.addTime, useTime: lt.useTime }, replay: r.ae.replay }, seq), false);
      } finally {
        sock.close();
      }
      assert.strictEqual(ksa(A).bytes, 1600);
      setFp(A, 0, { packets: 12, bytes: 1200, oseq: 17 }); // +2 packets, +200 bytes
      await d!.tick();
      const k = ksa(A);
      assert.strictEqual(k.bytes, 1800);
      assert.strictEqual(k.packets, 18);
      // the kernel was at 15 + margin (fpsd's push): the fast path's floor goes above it (+ the slack for
      // packets Linux might send during the push), the kernel a margin above that
      assert.strictEqual(k.oseq, 15 + OSEQ_MARGIN + OSEQ_RACE_SLACK + OSEQ_MARGIN);
    });

    it(T.unchanged, async () => {
      const p = d!.counters.pushes, u = d!.counters.unchanged;
      await d!.tick();
      assert.strictEqual(d!.counters.pushes, p);
      assert.ok(d!.counters.unchanged > u);
      assert.strictEqual(ksa(A).bytes, 1800);
    });

    it(T.stale, async () => {
      const s = slots.get(`0/${A}`)!;
      const p = d!.counters.pushes;
      setFp(A, 0, { packets: 1000, bytes: 100000, tag: s.tag + 2 });
      setFp(A, 1, { packets: 1000, bytes: 100000, tag: s.tag + 2 });
      await d!.tick();
      assert.strictEqual(d!.counters.pushes, p);
      assert.ok(d!.counters.staleTags > 0);
      assert.strictEqual(ksa(A).bytes, 1800);
      setFp(A, 0, { packets: 12, bytes: 1200 }); // back to the current tag and values
      setFp(A, 1, { packets: 5, bytes: 500 });
    });

    it(T.vrf, async () => {
      setFp(V, 0, { packets: 7, bytes: 700, oseq: 7 }, 7);
      await d!.tick();
      const k = ksa(V, vrfNs.name);
      assert.strictEqual(k.bytes, 700);
      assert.strictEqual(k.packets, 7);
      assert.strictEqual(k.oseq, 7 + OSEQ_MARGIN);
    });

    it(T.markV6, async () => {
      setFp(M, 0, { packets: 2, bytes: 222, oseq: 2 });
      setFp(SIX, 0, { packets: 3, bytes: 333, oseq: 3 });
      const e = d!.counters.getaeErrors + d!.counters.pushErrors + d!.counters.goneSas;
      await d!.tick();
      assert.strictEqual(d!.counters.getaeErrors + d!.counters.pushErrors + d!.counters.goneSas, e);
      assert.deepStrictEqual([ksa(M).bytes, ksa(M).packets, ksa(M).oseq], [222, 2, 2 + OSEQ_MARGIN]);
      assert.deepStrictEqual([ksa(SIX).bytes, ksa(SIX).packets, ksa(SIX).oseq], [333, 3, 3 + OSEQ_MARGIN]);
    });

    it(T.soft, async () => {
      setFp(S, 0, { packets: 60, bytes: 6000, oseq: 60 });
      await d!.tick();
      await waitUntil('soft expire event', 10_000, () => mon.of(S).length > 0, 50);
      assert.deepStrictEqual(mon.of(S), [0]);
      setFp(S, 0, { packets: 70, bytes: 7000, oseq: 70 });
      await d!.tick();
      await sleep(500);
      assert.deepStrictEqual(mon.of(S), [0], 'soft expire sent again');
      assert.strictEqual(ksa(S).bytes, 7000);
      assert.strictEqual(d!.counters.softExpires, 1);
    });

    it(T.hard, async () => {
      setFp(H, 0, { packets: 50, bytes: 5000, oseq: 50 });
      await d!.tick();
      await waitUntil('hard expire event', 10_000, () => mon.of(H).includes(1), 50);
      assert.deepStrictEqual(mon.of(H), [0, 1]);
      assert.strictEqual(kernelSa(cp.name, H), null, 'SA still in the kernel');
      await waitUntil('SA gone from the shared memory', 20_000, () => !env.list('sa').some((s) => s.spi === H), 50);
      const p = d!.counters.pushes;
      setFp(H, 0, { packets: 60, bytes: 6000 });
      await d!.tick();
      assert.strictEqual(d!.counters.pushes, p, 'pushed to a deleted SA');
    });

    it(T.process, async () => {
      d!.close(); // saves RUNDIR/fpsd.state
      d = null;
      const before = [A, B, S].map((spi) => ksa(spi).bytes);
      const logFile = path.join(env.dir, 'fpsd.log');
      const start = () => {
        const out = fs.openSync(logFile, 'a');
        const c = spawn(process.execPath, [path.join(repoRoot(), 'build/stats-daemon/main.js'), '-c', env.cfgFile, '--period-ms', '200'], { stdio: ['ignore', out, out] });
        fs.closeSync(out);
        return c;
      };
      const status = () => { try { return JSON.parse(fs.readFileSync(path.join(env.dir, 'fpsd.status'), 'utf8')); } catch { return null; } };
      const log = () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
      proc = start();
      await waitUntil('fpsd running 3 periods', 60_000, () => (status()?.counters?.ticks ?? 0) >= 3, 100).catch((e) => { throw new Error(`${e.message}\n${log()}`); });
      assert.deepStrictEqual([A, B, S].map((spi) => ksa(spi).bytes), before, `pushed again after the takeover:\n${log()}`);
      setFp(D, 0, { packets: 4, bytes: 400, oseq: 4 });
      await waitUntil('D pushed by the process', 20_000, () => ksa(D).bytes === 400, 100).catch((e) => { throw new Error(`${e.message}\n${log()}`); });
      // restart: SIGTERM (state saved), start again
      await new Promise<void>((r) => { proc!.once('exit', () => r()); proc!.kill('SIGTERM'); });
      fs.rmSync(path.join(env.dir, 'fpsd.status'), { force: true });
      proc = start();
      await waitUntil('fpsd running again', 60_000, () => (status()?.counters?.ticks ?? 0) >= 3, 100);
      assert.strictEqual(ksa(D).bytes, 400, 'pushed twice after a restart');
      setFp(D, 1, { packets: 1, bytes: 100, oseq: 5 });
      await waitUntil('D +100 bytes', 20_000, () => ksa(D).bytes === 500, 100);
      assert.strictEqual(ksa(D).packets, 5);
      assert.strictEqual(ksa(D).oseq, 4 + OSEQ_MARGIN + OSEQ_RACE_SLACK + OSEQ_MARGIN);
      assert.doesNotMatch(log(), / error: /);
      // the monitor saw the expiries above, so it was listening: still none for the SA pushed without expiry
      assert.deepStrictEqual(mon.of(N), []);
      assert.ok(kernelSa(cp.name, N));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// With the real fast path (tests/lib/uml-lfp.ts: fpmd, fp on AF_PACKET ports, cmgrd) encrypting
// A -> B and decrypting B -> A on a tunnel to a kernel-ESP peer: after fpsd's period, the control
// plane's `ip -s xfrm state` must count what the PEER's kernel counted on the same SAs (the peer sees
// every packet of the SA, whoever processed it on lfp's side: the fast path or Linux).
function describeWithFastPath(): void {
  describe('fpsd with the real fast path: the control plane\'s ip -s xfrm state matches the peer\'s kernel', function () {
    this.timeout(240_000);
    let g: UmlLfp | null = null;
    let d: StatsDaemon | null = null;
    const OUT = 0x3001, IN = 0x3002;

    before(async function () {
      if (!fs.existsSync(path.join(repoRoot(), 'build', 'tests', 'lib', 'uml-lfp.js'))) { console.log('      skipping: tests/lib/uml-lfp.ts not built'); this.skip(); }
      const { startUmlLfp, ADDR } = await import('../lib/uml-lfp');
      g = await startUmlLfp();
      const kOut = '0x' + '11'.repeat(16) + 'c0c1c2c3', kIn = '0x' + '22'.repeat(16) + 'c4c5c6c7';
      const side = (me: string, him: string, myNet: string, hisNet: string) => [
        `xfrm state add src ${ADDR.lfp2v4} dst ${ADDR.peer4} proto esp spi ${OUT} reqid 9 mode tunnel replay-window 32 aead rfc4106(gcm(aes)) ${kOut} 128`,
        `xfrm state add src ${ADDR.peer4} dst ${ADDR.lfp2v4} proto esp spi ${IN} reqid 9 mode tunnel replay-window 32 aead rfc4106(gcm(aes)) ${kIn} 128`,
        `xfrm policy add src ${myNet} dst ${hisNet} dir out tmpl src ${me} dst ${him} proto esp reqid 9 mode tunnel`,
        `xfrm policy add src ${hisNet} dst ${myNet} dir fwd tmpl src ${him} dst ${me} proto esp reqid 9 mode tunnel`,
        `xfrm policy add src ${hisNet} dst ${myNet} dir in tmpl src ${him} dst ${me} proto esp reqid 9 mode tunnel`,
      ];
      g.cp.batch(side(ADDR.lfp2v4, ADDR.peer4, ADDR.netA4, ADDR.netB4));
      g.peer.batch(side(ADDR.peer4, ADDR.lfp2v4, ADDR.netB4, ADDR.netA4));
      await waitUntil('SAs and policies in lfp', 20_000, () => g!.env.list('sa').length === 2 && g!.env.list('policy').length === 3, 50);
    });

    after(() => {
      try { d?.close(); } catch { /* closed */ }
      g?.stop();
    });

    let r: Record<string, KernelSa | Record<string, number> | null> = {};
    const detail = () => JSON.stringify({ ...r, fpsd: d?.counters });

    it(T.e2ePackets, async () => {
      const { ADDR, fpSaCounters } = await import('../lib/uml-lfp');
      const got1 = await g!.udpFlow(g!.a, g!.b, ADDR.b4, 300, 1000);
      const got2 = await g!.udpFlow(g!.b, g!.a, ADDR.a4, 200, 1000);
      assert.ok(got1 >= 297 && got2 >= 198, `flows lost packets: ${got1}/300, ${got2}/200`);
      const fpOut = fpSaCounters(g!.env, ADDR.peer4, OUT), fpIn = fpSaCounters(g!.env, ADDR.lfp2v4, IN);
      assert.ok(fpOut && fpOut.packets >= 297, `the fast path did not encrypt the flow: ${JSON.stringify(fpOut)}`);
      assert.ok(fpIn && fpIn.packets >= 198, `the fast path did not decrypt the flow: ${JSON.stringify(fpIn)}`);
      r = { fpOut, fpIn, kernelOwnOut: ksa2(g!.cp.name, OUT), kernelOwnIn: ksa2(g!.cp.name, IN) };
      d = new StatsDaemon(g!.env.cfg, silentLogger, { stateFile: '' });
      await d.tick();
      r = { ...r, cpOut: ksa2(g!.cp.name, OUT), cpIn: ksa2(g!.cp.name, IN), peerOut: ksa2(g!.peer.name, OUT), peerIn: ksa2(g!.peer.name, IN) };
      const cpOut = r.cpOut as KernelSa, cpIn = r.cpIn as KernelSa, peerOut = r.peerOut as KernelSa, peerIn = r.peerIn as KernelSa;
      assert.strictEqual(cpOut.packets, peerOut.packets, `out SA packets: lfp ${cpOut.packets}, peer ${peerOut.packets}\n${detail()}`);
      assert.strictEqual(cpIn.packets, peerIn.packets, `in SA packets: lfp ${cpIn.packets}, peer ${peerIn.packets}\n${detail()}`);
      assert.strictEqual(cpOut.oseq, peerOut.seq! + OSEQ_MARGIN, `out SA sequence numbers: lfp oseq ${cpOut.oseq} = peer seq ${peerOut.seq} + margin\n${detail()}`);
      assert.strictEqual(cpIn.seq, peerIn.oseq, `in SA sequence numbers: lfp seq ${cpIn.seq}, peer oseq ${peerIn.oseq}\n${detail()}`);
    });

    it(T.e2eBytes, () => {
      const cpOut = r.cpOut as KernelSa | undefined, cpIn = r.cpIn as KernelSa | undefined;
      const peerOut = r.peerOut as KernelSa | undefined, peerIn = r.peerIn as KernelSa | undefined;
      assert.ok(cpOut && cpIn && peerOut && peerIn, 'the previous test did not get that far');
      // Linux counts the protected IP packet (tunnel mode: the inner packet, without the ESP
      // header, IV, padding, trailer and ICV); the fast path's per-SA byte counter must mean the same.
      assert.strictEqual(cpOut.bytes, peerOut.bytes, `out SA bytes: lfp ${cpOut.bytes}, peer (Linux) ${peerOut.bytes}\n${detail()}`);
      assert.strictEqual(cpIn.bytes, peerIn.bytes, `in SA bytes: lfp ${cpIn.bytes}, peer (Linux) ${peerIn.bytes}\n${detail()}`);
    });
  });
}

function ksa2(ns: string, spi: number): KernelSa {
  const k = kernelSa(ns, spi);
  assert.ok(k, `SA 0x${spi.toString(16)} not in ${ns}`);
  return k;
}

// ---------------------------------------------------------------------------------------------
// strongSwan, unmodified, between "left" (lfp's control plane: fpmd + cmgrd mirror its SAs) and
// "right", kernel ESP on both sides (no fast path needed: the fast path's counters come from a
// stats file written through StatsFile). The CHILD_SA cert-cbc has rekey_bytes on left only: the
// kernel SA's soft byte limit. Fast-path bytes pushed past it must make charon rekey.
function describeWithStrongSwan(): void {
  describe('fpsd and strongSwan: byte-lifetime rekey triggered by fast-path traffic', function () {
    this.timeout(240_000);
    const REKEY = 50_000, LIFE = 150_000, L_ADDR = '10.2.0.1', R_ADDR = '10.2.0.2';
    let left: Netns | null = null, right: Netns | null = null, env: LfpEnv | null = null, d: StatsDaemon | null = null;
    const charons: Charon[] = [];
    let base = '';

    before(async function () {
      const swan = await import('../lib/swan');
      const why = swan.swanUnavailableReason();
      if (why) { console.log(`      skipping: ${why}`); this.skip(); }
      left = Netns.create('fpsdl'); right = Netns.create('fpsdr');
      left.ip(`link add l1 type veth peer name r1 netns ${right.name}`);
      left.batch(['link set l1 up', `addr add ${L_ADDR}/24 dev l1`]);
      right.batch(['link set r1 up', `addr add ${R_ADDR}/24 dev r1`]);
      base = fs.mkdtempSync(path.join(os.tmpdir(), 'fpsd-swan-'));
      swan.makePki(path.join(base, 'pki'), ['left', 'right']);
      const common = { psk: 'fpsd-test-psk-0123456789', pskLocalTs: '', pskRemoteTs: '', certLocalTs: '', certRemoteTs: '' };
      const L = swan.Charon.prepare(path.join(base, 'left'), {
        ...common, name: 'left', peerName: 'right', netns: left.name, localAddr: L_ADDR, remoteAddr: R_ADDR,
        pskLocalTs: '10.1.0.0/24', pskRemoteTs: '10.3.0.0/24', certLocalTs: '10.1.1.0/24', certRemoteTs: '10.3.1.0/24', rekeyBytes: REKEY, lifeBytes: LIFE,
      }, path.join(base, 'pki'));
      const R = swan.Charon.prepare(path.join(base, 'right'), {
        ...common, name: 'right', peerName: 'left', netns: right.name, localAddr: R_ADDR, remoteAddr: L_ADDR,
        pskLocalTs: '10.3.0.0/24', pskRemoteTs: '10.1.0.0/24', certLocalTs: '10.3.1.0/24', certRemoteTs: '10.1.1.0/24', rekeyBytes: 0, lifeBytes: 0,
      }, path.join(base, 'pki'));
      charons.push(L, R);
      L.start(); R.start();
      const out = L.swanctl(['--initiate', '--child', 'cert-cbc', '--timeout', '30']);
      assert.match(out, /CHILD_SA cert-cbc\{\d+\} established/, out);
      env = await LfpEnv.start({ cpNetns: left.name, shm: { maxRoutes: 4096, fib4Tables: 2, tbl8Groups: 256, fib6Tables: 2, fib6Entries: 4096, maxSas: 64 } });
      await waitUntil('the CHILD_SA\'s two SAs in lfp', 30_000, () => env!.list('sa').length === 2, 50);
    });

    after(() => {
      try { d?.close(); } catch { /* closed */ }
      for (const c of charons) { try { c.stop(); } catch { /* gone */ } }
      env?.stop();
      left?.destroy(); right?.destroy();
      if (base) fs.rmSync(base, { recursive: true, force: true });
    });

    it(T.swanRekey, async () => {
      const swan = await import('../lib/swan');
      const L = charons[0];
      const outOf = () => swan.xfrmStates(left!.name).filter((x) => x.src === L_ADDR && x.dst === R_ADDR);
      const [old] = outOf();
      assert.ok(old, 'no outbound SA on left');
      assert.strictEqual(old.softBytes, REKEY, 'charon set rekey_bytes as the kernel soft byte limit');
      // the fast path's counters for that SA: past the soft limit, below the hard one
      const r = env!.reader, buf = new Uint32Array(SA_E.WORDS);
      let slot = -1, tag = 0;
      for (let i = 0; i < r.config.maxSas && slot < 0; i++) {
        if (r.readSa(i, buf) !== READ_OK) continue;
        if (decodeSa(buf, new Uint8Array(buf.buffer)).spi === old.spi) { slot = i; tag = buf[0]; }
      }
      assert.ok(slot >= 0, 'outbound SA not in the shared memory');
      const stats = StatsFile.createFile(statsPath(env!.cfg), { workers: 1, ports: 1, sas: r.config.maxSas });
      const a = stats.worker(0).sa, o = slot * SA_STRIDE;
      a[o + SA_C_TAG] = tag; a[o + SA_C_PACKETS] = 500; a[o + SA_C_BYTES] = 60_000; a[o + SA_C_OSEQ] = 500;
      const log0 = L.log().length;
      d = new StatsDaemon(env!.cfg, silentLogger, { stateFile: '' });
      await d.tick();
      assert.strictEqual(d.counters.softExpires, 1);
      const pushed = kernelSa(left!.name, old.spi); // (charon may already have rekeyed and deleted it)
      if (pushed) assert.strictEqual(pushed.bytes, 60_000);
      // charon rekeys: a new outbound SA, then the old one is deleted
      await waitUntil('charon rekeyed (new outbound SA, old one deleted)', 60_000, () => {
        const now = outOf();
        return now.length === 1 && now[0].spi !== old.spi;
      }, 200).catch((e) => { throw new Error(`${(e as Error).message}\ncharon log:\n${L.log().slice(log0).slice(-3000)}`); });
      const newLog = L.log().slice(log0);
      assert.match(newLog, /rekey/i, newLog.slice(-2000));
      const sas = L.swanctl(['--list-sas']);
      assert.match(sas, /cert-cbc: #\d+, reqid \d+, INSTALLED/, sas);
      // lfp follows: the new SA in the shared memory, the old one gone
      await waitUntil('lfp mirrors the rekeyed SAs', 30_000, () => {
        const spis = env!.list('sa').map((x) => x.spi);
        return !spis.includes(old.spi) && spis.includes(outOf()[0].spi);
      }, 100);
      // the next period: nothing pushed for the new SA (no fast-path counters), no error
      await d.tick();
      assert.strictEqual(d.counters.pushErrors + d.counters.getaeErrors + d.counters.expireErrors, 0, JSON.stringify(d.counters));
    });
  });
}
