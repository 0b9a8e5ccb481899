// One outbound SA, two senders (issue 4): the fast path encrypts most traffic, the Linux kernel of lfp's
// control plane encrypts what it sends itself (here: ping from the control-plane netns into the tunnel).
// fpsd closes the loop every period: it pushes the fast path's oseq (+ margin) into the kernel SA, and
// writes the kernel's oseq as a floor the fast path numbers above (stats-daemon/, docs/stats-daemon.md).
// The peer (kernel ESP, replay window 32) must see no replayed sequence number and get every packet.
//
// Runs on the host as one test that boots user-mode Linux (tests/uml/, kernel 6.1 with ESP) and runs
// ITSELF there with LFP_IPSEC_SEQ_IN_UML=1 (tests/lib/uml-lfp.ts: fpmd, the fast path, cmgrd; fpsd in-process).
import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { statsPath } from '../../lib/config';
import { silentLogger } from '../../lib/log';
import { StatsFile } from '../../shared-mem/stats';
import { StatsDaemon } from '../../stats-daemon/fpsd';
import { sleep, waitUntil } from '../lib/lfp-env';
import { sh } from '../lib/netns';
import { mirrorUmlTests, repoRoot } from '../uml/uml';
import type { UmlLfp } from '../lib/uml-lfp';

const IN_UML = process.env.LFP_IPSEC_SEQ_IN_UML === '1';

const T = {
  control: 'control, without fpsd: Linux and the fast path both number from 1 on the SA: the peer drops the duplicates as replays',
  rounds: 'with fpsd: pings Linux encrypts and UDP flows the fast path encrypts, interleaved: no replay error at the peer, every packet arrives',
  concurrent: 'with fpsd: a ping running while the fast path sends (Linux numbers above the fast path by the margin): no replay error, nothing lost',
  restart: 'lfp restarted with a new shared memory (fpmd --fresh), with and without the fast path\'s stats file: the fast path numbers on from where it was (the kernel\'s oseq / its own kept state): every packet arrives',
} as const;

if (!IN_UML) {
  describe('IPsec: one outbound SA used by Linux and the fast path (inside user-mode Linux, kernel 6.1 with ESP)', function () {
    this.timeout(600_000);
    mirrorUmlTests(path.join(__dirname, 'ipsec-seq.test.js'), Object.values(T), { timeoutMs: 540_000, env: { LFP_IPSEC_SEQ_IN_UML: '1' } });
  });
} else {
  describeInUml();
}

/** /proc/net/xfrm_stat of a netns. */
function xfrmStat(ns: string): Record<string, number> {
  const o: Record<string, number> = {};
  for (const l of sh('ip', ['netns', 'exec', ns, 'cat', '/proc/net/xfrm_stat']).split('\n')) {
    const m = /^(\w+)\s+(\d+)/.exec(l);
    if (m) o[m[1]] = Number(m[2]);
  }
  return o;
}

/** An SA of `ip -s xfrm state` in a netns: packets, the replay stats and the anti-replay context. */
function ksa(ns: string, spi: number): { packets: number; replay: number; failed: number; seq: number; oseq: number } {
  const out = sh('ip', ['-n', ns, '-s', 'xfrm', 'state']);
  const blk = out.split(/^src /m).slice(1).find((b) => b.includes(`spi 0x${spi.toString(16).padStart(8, '0')}(`));
  assert.ok(blk, `SA 0x${spi.toString(16)} not in ${ns}`);
  const lt = /lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)/.exec(blk);
  const st = /replay-window \d+ replay (\d+) failed (\d+)/.exec(blk);
  const ar = /anti-replay context: seq 0x([0-9a-f]+), oseq 0x([0-9a-f]+)/.exec(blk);
  assert.ok(lt && st && ar, `unexpected ip -s xfrm state output:\n${blk}`);
  return { packets: Number(lt[2]), replay: Number(st[1]), failed: Number(st[2]), seq: parseInt(ar[1], 16), oseq: parseInt(ar[2], 16) };
}

function describeInUml(): void {
  describe('one outbound SA, two senders: Linux and the fast path', function () {
    this.timeout(300_000);
    let g: UmlLfp | null = null;
    let d: StatsDaemon | null = null;
    const OUT = 0x3101, IN = 0x3102, CTL_OUT = 0x3201, CTL_IN = 0x3202;
    let slot = -1;

    const setup = (me: string, him: string, myNet: string, hisNet: string, out: number, inb: number): string[] => {
      const kOut = '0x' + (out & 0xff).toString(16).padStart(2, '0').repeat(16) + 'c0c1c2c3', kIn = '0x' + (inb & 0xff).toString(16).padStart(2, '0').repeat(16) + 'c4c5c6c7';
      const [o, i] = me < him ? [out, inb] : [inb, out]; // the same SPIs on both sides: lfp's out is the peer's in
      const [ko, ki] = me < him ? [kOut, kIn] : [kIn, kOut];
      return [
        `xfrm state add src ${me} dst ${him} proto esp spi ${o} reqid 9 mode tunnel replay-window 32 aead rfc4106(gcm(aes)) ${ko} 128`,
        `xfrm state add src ${him} dst ${me} proto esp spi ${i} reqid 9 mode tunnel replay-window 32 aead rfc4106(gcm(aes)) ${ki} 128`,
        `xfrm policy add src ${myNet} dst ${hisNet} dir out tmpl src ${me} dst ${him} proto esp reqid 9 mode tunnel`,
        `xfrm policy add src ${hisNet} dst ${myNet} dir fwd tmpl src ${him} dst ${me} proto esp reqid 9 mode tunnel`,
        `xfrm policy add src ${hisNet} dst ${myNet} dir in tmpl src ${him} dst ${me} proto esp reqid 9 mode tunnel`,
      ];
    };
    const install = async (out: number, inb: number) => {
      const { ADDR } = await import('../lib/uml-lfp');
      for (const ns of [g!.cp, g!.peer]) {
        try { ns.ip('xfrm policy flush'); ns.ip('xfrm state flush'); } catch { /* empty */ }
      }
      await waitUntil('SAs gone from lfp', 20_000, () => g!.env.list('sa').length === 0 && g!.env.list('policy').length === 0, 50);
      g!.cp.batch(setup(ADDR.lfp2v4, ADDR.peer4, ADDR.netA4, ADDR.netB4, out, inb));
      g!.peer.batch(setup(ADDR.peer4, ADDR.lfp2v4, ADDR.netB4, ADDR.netA4, out, inb));
      await waitUntil('SAs and policies in lfp', 20_000, () => g!.env.list('sa').length === 2 && g!.env.list('policy').length === 3, 50);
      const { parse4 } = await import('../../shared-mem/addr');
      slot = g!.env.reader.saLookup(0, parse4(ADDR.peer4), out, 50);
      assert.ok(slot >= 0, 'outbound SA in shm');
    };
    /** ping B from lfp's control plane, sourced from eth1's address (the out policy's selector): Linux encrypts it. */
    const cpPing = async (count: number) => {
      const { ADDR } = await import('../lib/uml-lfp');
      const r = await g!.run(g!.cp, 'ping', ['-I', ADDR.lfp1v4, '-c', String(count), '-i', '0.2', '-w', String(10 + count), ADDR.b4]);
      const m = /(\d+) packets transmitted, (\d+) received/.exec(r.out);
      return { sent: m ? Number(m[1]) : 0, got: m ? Number(m[2]) : 0, out: r.out + r.err };
    };
    const fpOseq = (): number => {
      const c = StatsFile.open(statsPath(g!.env.cfg)).readSa(slot);
      return c.oseq;
    };
    const detailOf = (out: number) => JSON.stringify({ cp: ksa(g!.cp.name, out), peer: ksa(g!.peer.name, out), fpOseq: fpOseq(), floor: StatsFile.open(statsPath(g!.env.cfg)).readFloor(slot), fpsd: d?.counters, peerStat: xfrmStat(g!.peer.name) });

    before(async function () {
      if (!fs.existsSync(path.join(repoRoot(), 'build', 'tests', 'lib', 'uml-lfp.js'))) { console.log('      skipping: tests/lib/uml-lfp.ts not built'); this.skip(); }
      const { startUmlLfp } = await import('../lib/uml-lfp');
      g = await startUmlLfp();
    });

    after(() => {
      try { d?.close(); } catch { /* closed */ }
      g?.stop();
    });

    const detail = detailOf;

    it(T.control, async () => {
      const { ADDR } = await import('../lib/uml-lfp');
      await install(CTL_OUT, CTL_IN);
      const e0 = xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0;
      const p = await cpPing(3);
      assert.strictEqual(p.got, 3, `ping through the tunnel: ${p.out}`);
      const got = await g!.udpFlow(g!.a, g!.b, ADDR.b4, 100, 500);
      const errs = (xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0) - e0;
      // Linux used 1..3, the fast path 1..100: the peer drops the fast path's 1..3 as replays
      assert.ok(errs >= 3 && got <= 97, `expected replays at the peer without fpsd: seq errors ${errs}, UDP ${got}/100\n${detail(CTL_OUT)}`);
      assert.ok(ksa(g!.peer.name, CTL_OUT).replay >= 3, detail(CTL_OUT));
    });

    it(T.rounds, async () => {
      const { ADDR } = await import('../lib/uml-lfp');
      await install(OUT, IN);
      d = new StatsDaemon(g!.env.cfg, silentLogger, { stateFile: '', periodMs: 200 }).start();
      const e0 = xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0;
      let pings = 0, dgrams = 0;
      for (let round = 0; round < 3; round++) {
        const p = await cpPing(4);
        assert.deepStrictEqual([p.sent, p.got], [4, 4], `round ${round}: ping through the tunnel: ${p.out}\n${detail(OUT)}`);
        pings += 4;
        // fpsd's next period: the kernel's oseq is the fast path's floor
        const k = ksa(g!.cp.name, OUT).oseq;
        await waitUntil(`round ${round}: floor ${k} for the fast path`, 20_000, () => {
          const f = StatsFile.open(statsPath(g!.env.cfg)).readFloor(slot);
          return fpOseq() >= k || f.oseq >= k;
        }, 50).catch((e) => { throw new Error(`${(e as Error).message}\n${detail(OUT)}`); });
        const got = await g!.udpFlow(g!.a, g!.b, ADDR.b4, 150, 500);
        assert.strictEqual(got, 150, `round ${round}: UDP ${got}/150\n${detail(OUT)}`);
        dgrams += 150;
        // fpsd's next period: the fast path's oseq (+ margin) is in the kernel SA
        const o = fpOseq();
        await waitUntil(`round ${round}: kernel oseq above ${o}`, 20_000, () => ksa(g!.cp.name, OUT).oseq >= o, 50)
          .catch((e) => { throw new Error(`${(e as Error).message}\n${detail(OUT)}`); });
      }
      const peer = ksa(g!.peer.name, OUT);
      assert.strictEqual((xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0) - e0, 0, `replay errors at the peer\n${detail(OUT)}`);
      assert.strictEqual(peer.replay, 0, detail(OUT));
      assert.strictEqual(peer.packets, pings + dgrams, `the peer accepted ${peer.packets} of ${pings + dgrams}\n${detail(OUT)}`);
      assert.ok(d.counters.floors >= 3, `a floor per round: ${detail(OUT)}`);
    });

    it(T.concurrent, async () => {
      const { ADDR } = await import('../lib/uml-lfp');
      const e0 = xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0;
      const before = ksa(g!.peer.name, OUT).packets;
      await sleep(500); // fpsd pushed the last flow's oseq
      // a slow flow and a ping at the same time. The flow must use fewer numbers per fpsd period than the
      // margin (8): 8 pps, and fpsd's 200 ms period takes ~500 ms in UML (one slow CPU) -> ~4 per period
      // the ESP packets the peer receives (sequence number, length: pings and datagrams differ), for the failure message
      const cap = spawn('ip', ['netns', 'exec', g!.peer.name, 'tcpdump', '-l', '-n', '-i', 'p0', 'esp'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let wire = '';
      cap.stdout.on('data', (b: Buffer) => { wire += b.toString(); });
      await sleep(1000);
      let got = 0, p = { sent: 0, got: 0, out: '' };
      try {
        [got, p] = await Promise.all([g!.udpFlow(g!.a, g!.b, ADDR.b4, 40, 8), cpPing(4)]);
        await sleep(500);
      } finally { cap.kill('SIGKILL'); }
      const esp = wire.split('\n').map((l) => /seq=0x([0-9a-f]+)\), length (\d+)/.exec(l)).filter((m) => m).map((m) => `${parseInt(m![1], 16)}/${m![2]}`).join(' ');
      const detail = (spi: number) => `${detailOf(spi)}\nESP at the peer (seq/length): ${esp}`;
      assert.strictEqual(p.sent, 4, `ping: a request was lost and sent again: ${p.out}\n${detail(OUT)}`);
      assert.strictEqual(p.got, 4, `ping: ${p.out}\n${detail(OUT)}`);
      assert.strictEqual(got, 40, `UDP ${got}/40\n${detail(OUT)}`);
      const peer = ksa(g!.peer.name, OUT);
      assert.strictEqual((xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0) - e0, 0, `replay errors at the peer\n${detail(OUT)}`);
      assert.strictEqual(peer.packets - before, 44, detail(OUT));
    });

    it(T.restart, async () => {
      const { ADDR } = await import('../lib/uml-lfp');
      const { parse4 } = await import('../../shared-mem/addr');
      const e0 = xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0;
      const before = ksa(g!.peer.name, OUT).packets;
      const flow = async (what: string, n: number) => {
        const got = await g!.udpFlow(g!.a, g!.b, ADDR.b4, n, 500);
        assert.strictEqual(got, n, `${what}: UDP ${got}/${n}\n${detail(OUT)}\n${g!.env.logs()}`);
      };
      // 1. fpsd pushed the fast path's oseq (+ margin) into the kernel SA; lfp restarts from scratch: new shared
      //    memory, no stats file. Only the kernel's oseq, mirrored into the new SA entry by cmgrd, can carry the
      //    numbering (from 1, the peer would drop every packet as a replay).
      await flow('before the restart', 100);
      const o1 = fpOseq();
      await waitUntil('kernel oseq above the fast path\'s', 20_000, () => ksa(g!.cp.name, OUT).oseq >= o1, 50);
      d!.close(); d = null;
      await g!.restart({ dropStats: true });
      await waitUntil('SAs in the new shared memory', 20_000, () => g!.env.list('sa').length === 2, 50);
      assert.ok((g!.env.list('sa').find((x) => x.spi === OUT)?.oseq ?? 0) >= o1, `the SA entry carries the kernel's oseq: ${JSON.stringify(g!.env.list('sa'))}`);
      slot = g!.env.reader.saLookup(0, parse4(ADDR.peer4), OUT, 50);
      await flow('after a restart without the stats file', 100);
      assert.ok(fpOseq() > o1 + 100, `numbering went on above the kernel's oseq: ${fpOseq()} (was ${o1})`);
      // 2. Without fpsd (the kernel's oseq stays behind): the fast path's own state, kept in its stats file, carries
      //    it across a new shared memory.
      await flow('before the second restart', 100);
      const o2 = fpOseq();
      assert.ok(ksa(g!.cp.name, OUT).oseq < o2, 'the kernel is behind the fast path');
      await g!.restart();
      slot = g!.env.reader.saLookup(0, parse4(ADDR.peer4), OUT, 50);
      await flow('after a restart with the stats file kept', 100);
      assert.strictEqual(fpOseq(), o2 + 100, 'numbering went on exactly');
      const peer = ksa(g!.peer.name, OUT);
      assert.strictEqual((xfrmStat(g!.peer.name).XfrmInStateSeqError ?? 0) - e0, 0, `replay errors at the peer\n${detail(OUT)}`);
      assert.strictEqual(peer.packets - before, 400, detail(OUT));
    });
  });
}
