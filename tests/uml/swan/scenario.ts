// strongSwan scenario, run INSIDE user-mode Linux by tests/kernel/ipsec-swan.test.ts:
//   node build/tests/uml/swan/scenario.js a   # two kernels: charon in "left" and "right" (kernel ESP both sides)
//   node build/tests/uml/swan/scenario.js b   # "left" = lfp's control-plane netns (tests/lib/uml-lfp.ts)
// Each step is run in order; a failed step stops the ones that depend on it. The result is ONE line
// on stdout: `SWAN-REPORT {json}` (steps with ok/error/data, timings); progress goes to stderr.
//
// Addresses (phase B's topology of tests/lib/uml-lfp.ts; phase A builds the same with plain netns):
//   hostA 10.1.0.2, 10.1.1.2 ── left 10.1.0.1 | 10.2.0.1 ══ IKE/ESP ══ 10.2.0.2 right | 10.3.0.1 ── hostB 10.3.0.2, 10.3.1.2
//   CHILD_SA psk-gcm  (PSK,  AES-128-GCM):          10.1.0.0/24 <-> 10.3.0.0/24
//   CHILD_SA cert-cbc (ECDSA certs, AES-CBC+SHA256): 10.1.1.0/24 <-> 10.3.1.0/24, byte lifetime on left only
import * as assert from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
// lfp's modules are loaded only in phase B (lazily), so phase A depends on nothing of lfp.
type StatsFile = import('../../../shared-mem/stats').StatsFile;
import { Netns } from '../../lib/netns';
import {
  Charon, hexSpi, makePki, repoRoot, rmrf, run, sleep, swanUnavailableReason, UdpFlow, waitFor, xfrmStates, type XfrmState,
} from '../../lib/swan';

const PHASE = process.argv[2] === 'b' ? 'b' : 'a';
const T = {
  left: '10.2.0.1', right: '10.2.0.2',
  a1: '10.1.0.2', a2: '10.1.1.2', b1: '10.3.0.2', b2: '10.3.1.2',
  netA1: '10.1.0.0/24', netA2: '10.1.1.0/24', netB1: '10.3.0.0/24', netB2: '10.3.1.0/24',
};
/** Byte lifetime of left's cert-cbc SAs (bytes as the kernel / fpsd count them: ~148 B per 100-byte datagram). */
const REKEY_BYTES = Number(process.env.SWAN_REKEY_BYTES || 120_000);
const LIFE_BYTES = REKEY_BYTES * 3;
const FLOW = { count: Number(process.env.SWAN_FLOW_COUNT || 3000), pps: Number(process.env.SWAN_FLOW_PPS || 400), size: 100 };

interface StepResult { ok: boolean; skipped?: boolean; pending?: string; error?: string; ms: number; data: Record<string, unknown> }
/** Thrown by a step that cannot run yet for a known reason (reported as pending, not failed). */
class Pending extends Error {}
const report: { phase: string; kernel: string; steps: Record<string, StepResult>; logs: Record<string, string> } = {
  phase: PHASE, kernel: os.release(), steps: {}, logs: {},
};
const log = (s: string) => process.stderr.write(`[swan ${PHASE} ${new Date().toISOString().slice(11, 23)}] ${s}\n`);

async function step(name: string, deps: string[], f: (data: Record<string, unknown>) => Promise<void> | void): Promise<boolean> {
  const data: Record<string, unknown> = {};
  const bad = deps.find((d) => !report.steps[d]?.ok);
  if (bad) {
    report.steps[name] = { ok: false, skipped: true, error: `not run: step "${bad}" did not pass`, ms: 0, data };
    return false;
  }
  log(`${name} ...`);
  const t0 = Date.now();
  try {
    await f(data);
    report.steps[name] = { ok: true, ms: Date.now() - t0, data };
  } catch (e) {
    const err = e as Error;
    report.steps[name] = { ok: false, error: err.message, ms: Date.now() - t0, data };
    if (e instanceof Pending) report.steps[name].pending = err.message;
  }
  log(`${name}: ${report.steps[name].ok ? 'ok' : 'FAILED ' + report.steps[name].error} (${Date.now() - t0} ms)`);
  return report.steps[name].ok;
}

// ---- the gateway side: phase A = plain netns, phase B = lfp --------------------------------------
interface Gw {
  left: Netns; right: Netns; a: Netns; b: Netns;
  /** phase B only: lfp, and fpsd (null: not available, fpsdWhy says why) */
  lfp?: import('../../lib/uml-lfp').UmlLfp;
  fpsd?: ChildProcess | null;
  fpsdWhy?: string;
  stop(): void;
}

async function kernelTopology(): Promise<Gw> {
  const made: Netns[] = [];
  const mk = (p: string) => { const n = Netns.create(p); made.push(n); return n; };
  const stop = () => { for (const n of made.splice(0).reverse()) n.destroy(); };
  try {
    const a = mk('ha'), left = mk('left'), right = mk('right'), b = mk('hb');
    left.ip(`link add l0 type veth peer name a0 netns ${a.name}`);
    left.ip(`link add l1 type veth peer name r1 netns ${right.name}`);
    right.ip(`link add r0 type veth peer name b0 netns ${b.name}`);
    left.batch(['link set l0 up', 'link set l1 up', 'addr add 10.1.0.1/24 dev l0', `addr add ${T.left}/24 dev l1`,
      `route add ${T.netB1} via ${T.right}`]);
    right.batch(['link set r1 up', 'link set r0 up', `addr add ${T.right}/24 dev r1`, 'addr add 10.3.0.1/24 dev r0',
      `route add ${T.netA1} via ${T.left}`]);
    a.batch(['link set a0 up', `addr add ${T.a1}/24 dev a0`, 'route add default via 10.1.0.1']);
    b.batch(['link set b0 up', `addr add ${T.b1}/24 dev b0`, 'route add default via 10.3.0.1']);
    for (const ns of [left, right]) ns.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    return { left, right, a, b, stop };
  } catch (e) {
    stop();
    throw e;
  }
}

async function lfpTopology(): Promise<Gw> {
  // Loaded only in phase B (tests/lib/uml-lfp.ts pulls in lfp's modules).
  const { startUmlLfp } = await import('../../lib/uml-lfp');
  const g = await startUmlLfp();
  // fpsd (stats daemon) pushes the fast path's per-SA counters into the control plane's kernel SAs
  // and raises their soft/hard byte expiries: without it charon never sees the bytes the fast path
  // encrypted. Started here (tests/lib/uml-lfp.ts does not) when it is built.
  const main = path.join(repoRoot(), 'build', 'stats-daemon', 'main.js');
  let fpsd: ChildProcess | null = null, fpsdWhy = '';
  if (process.env.SWAN_NO_FPSD) fpsdWhy = 'fpsd not started (SWAN_NO_FPSD is set)';
  else if (!fs.existsSync(main)) fpsdWhy = 'fpsd (build/stats-daemon/main.js) is not built';
  else {
    const out = fs.openSync(path.join(g.env.dir, 'fpsd.log'), 'a');
    fpsd = spawn(process.execPath, [main, '-c', g.env.cfgFile, '--period-ms', '250'], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    await sleep(1500);
    if (fpsd.exitCode !== null || fpsd.signalCode !== null) {
      fpsdWhy = `fpsd exited (${fpsd.exitCode ?? fpsd.signalCode}): ${fs.readFileSync(path.join(g.env.dir, 'fpsd.log'), 'utf8').slice(-1500)}`;
      fpsd = null;
    }
  }
  return {
    left: g.cp, right: g.peer, a: g.a, b: g.b, lfp: g, fpsd, fpsdWhy,
    stop: () => { if (fpsd && fpsd.exitCode === null) fpsd.kill('SIGKILL'); g.stop(); },
  };
}

/** The second pair of subnets (certificate connection), on top of either topology. */
function addSecondSubnets(g: Gw, leftLan: string): void {
  g.a.ip(`addr add ${T.a2}/24 dev a0`);
  g.a.ip(`route add ${T.netB2} via 10.1.0.1 src ${T.a2}`);
  g.b.ip(`addr add ${T.b2}/24 dev b0`);
  g.b.ip(`route add ${T.netA2} via 10.3.0.1 src ${T.b2}`);
  g.left.ip(`route add ${T.netB2} via ${T.right}`);
  g.left.ip(`route add ${T.netA2} via ${T.a1} dev ${leftLan}`);
  g.right.ip(`route add ${T.netA2} via ${T.left}`);
  g.right.ip(`route add ${T.netB2} via ${T.b1}`);
}

// ---- lfp views (phase B) ---------------------------------------------------------------------------
interface FpSa { spi: number; daddr: string; saddr: string; mode: string; reqid: number }
function fpSas(g: Gw): FpSa[] {
  return g.lfp!.env.fpctlJson<FpSa[]>(['show', 'sa']);
}

/** The fast path's per-SA counters of the outbound SAs (to `daddr`) of one reqid, per SPI, including
 *  SAs deleted since: each SA's stats slot (= its shm entry index) and tag are noted while it exists
 *  (sampled every 20 ms, in-process); the slot keeps the SA's final counters after the SA is deleted
 *  until another SA is loaded into it (which changes the tag), so final() reads them exactly unless
 *  the slot was reused first (then the last sample counts: a lower bound). */
class FpSaSampler {
  private readonly slots = new Map<number, { slot: number; tag: number; packets: number; bytes: number }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly stats: StatsFile;
  constructor(private readonly g: Gw, private readonly daddr: string, private readonly reqid: number) {
    const { StatsFile } = require('../../../shared-mem/stats') as typeof import('../../../shared-mem/stats');
    const { statsPath } = require('../../../lib/config') as typeof import('../../../lib/config');
    this.stats = StatsFile.open(statsPath(g.lfp!.env.cfg));
  }
  sample(): void {
    const { parse4 } = require('../../../shared-mem/addr') as typeof import('../../../shared-mem/addr');
    const env = this.g.lfp!.env;
    for (const s of env.list('sa', 0)) {
      if (s.daddr !== this.daddr || s.reqid !== this.reqid || this.slots.has(s.spi)) continue;
      const slot = env.reader.saLookup(0, parse4(s.daddr), s.spi, 50);
      if (slot >= 0) this.slots.set(s.spi, { slot, tag: 0, packets: 0, bytes: 0 });
    }
    for (const v of this.slots.values()) {
      const c = this.stats.readSa(v.slot);
      if (v.tag === 0 && c.tag !== 0) v.tag = c.tag;
      if (v.tag !== 0 && c.tag !== v.tag) continue; // slot now holds another SA
      v.packets = Math.max(v.packets, c.packets); v.bytes = Math.max(v.bytes, c.bytes);
    }
  }
  start(periodMs = 20): void { this.timer = setInterval(() => { try { this.sample(); } catch { /* SA changing */ } }, periodMs); }
  stop(): void { if (this.timer) clearInterval(this.timer); this.timer = null; try { this.sample(); } catch { /* */ } }
  packets(spi: number): number { return this.slots.get(spi)?.packets ?? 0; }
  total(): number { let n = 0; for (const v of this.slots.values()) n += v.packets; return n; }
  perSpi(): Record<string, number> { const o: Record<string, number> = {}; for (const [k, v] of this.slots) o[hexSpi(k)] = v.packets; return o; }
}

/** The fast path's counters of port eth1 (port 0, hostA side): forwarded, handed to Linux (by reason). */
interface LanCounters { forwarded: number; dpvi: number; exceptions: Record<string, number> }
function lanCounters(g: Gw): LanCounters {
  const p = g.lfp!.env.stats()[0];
  return { forwarded: p.forwarded, dpvi: p.dpviPackets, exceptions: { ...p.exceptions } };
}
function lanDelta(a: LanCounters, b: LanCounters): Record<string, unknown> {
  const exc: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.exceptions)) if (v - (a.exceptions[k] ?? 0) > 0) exc[k] = v - (a.exceptions[k] ?? 0);
  return { lanForwarded: b.forwarded - a.forwarded, lanToLinux: b.dpvi - a.dpvi, lanExceptions: exc };
}
function fpsdExpires(g: Gw): number {
  try { return fs.readFileSync(path.join(g.lfp!.env.dir, 'fpsd.log'), 'utf8').split('\n').filter((x) => /soft limit reached/.test(x)).length; } catch { return 0; }
}

// ---- the scenario ------------------------------------------------------------------------------
function outSas(states: XfrmState[], from: string, to: string, reqid?: number): XfrmState[] {
  return states.filter((s) => s.src === from && s.dst === to && (reqid === undefined || s.reqid === reqid));
}

async function main(): Promise<void> {
  const why = swanUnavailableReason();
  if (why) { report.steps.prerequisites = { ok: false, error: why, ms: 0, data: {} }; return; }
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'swan-'));
  // set inside the steps (an object, so that TypeScript does not narrow them to null)
  const st: { g: Gw | null; L: Charon | null; R: Charon | null; reqPsk: number; reqCert: number } = { g: null, L: null, R: null, reqPsk: 0, reqCert: 0 };
  const charons: Charon[] = [];
  try {
    await step('topology', [], async (d) => {
      const t0 = Date.now();
      st.g = PHASE === 'b' ? await lfpTopology() : await kernelTopology();
      addSecondSubnets(st.g, PHASE === 'b' ? 'eth1' : 'l0');
      d.setupMs = Date.now() - t0;
    });
    await step('pki', [], (d) => {
      d.ms = makePki(path.join(base, 'pki'), ['left', 'right']);
    });
    await step('charon-start', ['topology', 'pki'], (d) => {
      const gw = st.g!;
      const common = { psk: `lfp-test-${Math.random().toString(36).slice(2)}-psk`, pskLocalTs: '', pskRemoteTs: '', certLocalTs: '', certRemoteTs: '' };
      const L = Charon.prepare(path.join(base, 'left'), {
        ...common, name: 'left', peerName: 'right', netns: gw.left.name, localAddr: T.left, remoteAddr: T.right,
        pskLocalTs: T.netA1, pskRemoteTs: T.netB1, certLocalTs: T.netA2, certRemoteTs: T.netB2, rekeyBytes: REKEY_BYTES, lifeBytes: LIFE_BYTES,
      }, path.join(base, 'pki'));
      const R = Charon.prepare(path.join(base, 'right'), {
        ...common, name: 'right', peerName: 'left', netns: gw.right.name, localAddr: T.right, remoteAddr: T.left,
        pskLocalTs: T.netB1, pskRemoteTs: T.netA1, certLocalTs: T.netB2, certRemoteTs: T.netA2, rekeyBytes: 0, lifeBytes: 0,
      }, path.join(base, 'pki'));
      st.L = L; st.R = R;
      charons.push(L, R);
      d.leftMs = L.start();
      d.rightMs = R.start();
    });
    const l = () => st.L!, r = () => st.R!, gw = () => st.g!;

    await step('ike-psk', ['charon-start'], (d) => {
      const t0 = Date.now();
      const out = l().swanctl(['--initiate', '--child', 'psk-gcm', '--timeout', '30']);
      d.ms = Date.now() - t0;
      assert.match(out, /CHILD_SA psk-gcm\{\d+\} established/, out);
      const sa = l().swanctl(['--list-sas', '--ike', 'psk']);
      assert.match(sa, /ESTABLISHED/, sa);
      assert.match(sa, /AES_GCM_16-128/, sa);
    });
    await step('ike-cert', ['charon-start'], (d) => {
      const t0 = Date.now();
      const out = l().swanctl(['--initiate', '--child', 'cert-cbc', '--timeout', '30']);
      d.ms = Date.now() - t0;
      assert.match(out, /CHILD_SA cert-cbc\{\d+\} established/, out);
      const sa = r().swanctl(['--list-sas', '--ike', 'cert']);
      assert.match(sa, /C=CH, O=lfp test, CN=left/, sa);
      assert.match(sa, /AES_CBC-128\/HMAC_SHA2_256_128/, sa);
    });
    await step('xfrm-states', ['ike-psk', 'ike-cert'], (d) => {
      const ls = xfrmStates(gw().left.name), rs = xfrmStates(gw().right.name);
      d.left = ls.map((s) => ({ src: s.src, dst: s.dst, spi: hexSpi(s.spi), reqid: s.reqid, alg: s.alg, mode: s.mode, softBytes: s.softBytes }));
      d.right = rs.map((s) => ({ src: s.src, dst: s.dst, spi: hexSpi(s.spi), reqid: s.reqid, alg: s.alg, mode: s.mode }));
      assert.strictEqual(ls.length, 4, 'left: 4 ESP SAs (2 CHILD_SAs x in/out)');
      assert.strictEqual(rs.length, 4, 'right: 4 ESP SAs');
      for (const s of ls) {
        assert.strictEqual(s.mode, 'tunnel');
        const twin = rs.find((x) => x.spi === s.spi && x.src === s.src && x.dst === s.dst);
        assert.ok(twin, `SA spi ${hexSpi(s.spi)} of left not on right`);
        assert.strictEqual(twin.alg, s.alg);
      }
      const gcm = ls.filter((s) => s.alg === 'rfc4106(gcm(aes))'), cbc = ls.filter((s) => s.alg === 'cbc(aes)');
      assert.strictEqual(gcm.length, 2, 'two AES-GCM SAs'); assert.strictEqual(cbc.length, 2, 'two AES-CBC SAs');
      st.reqPsk = gcm[0].reqid; st.reqCert = cbc[0].reqid;
      for (const s of cbc) assert.strictEqual(s.softBytes, REKEY_BYTES, `left cert-cbc SA ${hexSpi(s.spi)}: soft byte limit`);
      for (const s of rs) assert.strictEqual(s.softBytes, null, 'right has no byte limits');
    });
    if (PHASE === 'b') {
      await step('fpctl-show-sa', ['xfrm-states'], async (d) => {
        const ks = xfrmStates(gw().left.name);
        const fp = await waitFor(() => { const x = fpSas(gw()); return ks.every((k) => x.some((f) => f.spi === k.spi && f.daddr === k.dst)) ? x : null; }, 10_000,
          'the CHILD_SAs\' SPIs in fpctl show sa').catch((e) => { d.fpctl = fpSas(gw()).map((x) => hexSpi(x.spi)); throw e; });
        d.kernel = ks.map((k) => hexSpi(k.spi));
        d.fpctl = fp.map((x) => hexSpi(x.spi));
        const text = gw().lfp!.env.fpctl(['show', 'sa']);
        assert.doesNotMatch(text, /0x[0-9a-f]{32,}/, 'fpctl show sa printed key material');
      });
    }
    await step('ping', ['xfrm-states'], async () => {
      for (const [src, dst] of [[T.a1, T.b1], [T.a2, T.b2]]) {
        const p = await run('ip', ['netns', 'exec', gw().a.name, 'ping', '-c', '3', '-i', '0.2', '-w', '10', '-I', src, dst]);
        assert.match(p, / 0% packet loss/, p);
      }
      // both directions went through the right SAs: right's inbound SAs (from left) counted them
      const rs = xfrmStates(gw().right.name);
      for (const s of outSas(rs, T.left, T.right)) assert.ok(s.packets >= 3, `right in SA ${hexSpi(s.spi)}: ${s.packets} packets`);
    });

    // swanctl --rekey of psk-gcm (AES-GCM) in the middle of a UDP flow A -> B: nothing lost
    await step('rekey-manual', ['ping'], async (d) => {
      const before = outSas(xfrmStates(gw().left.name), T.left, T.right, st.reqPsk).map((s) => s.spi);
      const flow = new UdpFlow(gw().a.name, gw().b.name, T.b1, 5001, FLOW.count, FLOW.pps, FLOW.size);
      const sampler = PHASE === 'b' ? new FpSaSampler(gw(), T.right, st.reqPsk) : null;
      const lan0 = PHASE === 'b' ? lanCounters(gw()) : null;
      const flowSec = FLOW.count / FLOW.pps;
      try {
        await flow.listen(flowSec * 1000 + 15_000);
        sampler?.start();
        const sending = flow.send();
        await sleep(flowSec * 1000 * 0.4);
        const t0 = Date.now();
        const rk = await l().swanctlAsync(['--rekey', '--child', 'psk-gcm']);
        d.rekeyMs = Date.now() - t0;
        d.rekeyOut = rk.out.split('\n').filter((x) => /rekey|CHILD_SA/.test(x)).slice(0, 6);
        assert.strictEqual(rk.code, 0, `swanctl --rekey: ${rk.out}`);
        const res = await sending;
        Object.assign(d, { sent: res.sent, received: res.received, flowMs: res.ms });
      } finally {
        sampler?.stop();
        flow.kill();
      }
      const after = outSas(xfrmStates(gw().left.name), T.left, T.right, st.reqPsk);
      d.spisBefore = before.map(hexSpi); d.spisAfter = after.map((s) => hexSpi(s.spi));
      d.newSaPackets = after.map((s) => s.packets);
      assert.strictEqual(d.sent, FLOW.count);
      assert.strictEqual(d.received, d.sent, `UDP flow across swanctl --rekey: ${d.received} of ${d.sent} received`);
      assert.strictEqual(after.length, 1, 'one outbound psk-gcm SA after the rekey');
      assert.ok(!before.includes(after[0].spi), 'the outbound SA changed (rekeyed)');
      if (sampler) {
        Object.assign(d, lanDelta(lan0!, lanCounters(gw())));
        d.fpPerSpi = sampler.perSpi(); d.fpEncrypted = sampler.total();
        assert.ok(sampler.packets(after[0].spi) > 0, 'the new SA carried fast-path traffic');
        assert.ok(before.every((spi) => sampler.packets(spi) > 0), 'the old SA carried fast-path traffic');
        assert.ok((d.lanForwarded as number) >= 0.99 * FLOW.count, `fast path forwarded ${d.lanForwarded} of ${FLOW.count} (< 99%)`);
        assert.ok(sampler.total() >= 0.99 * FLOW.count, `fast-path per-SA counters: ${sampler.total()} of ${FLOW.count} encrypted (< 99%)`);
        if (gw().fpsd) {
          // fpsd pushed the fast path's counters of the new SA into the control plane's kernel SA
          const k = await waitFor(() => { const x = outSas(xfrmStates(gw().left.name), T.left, T.right, st.reqPsk)[0]; return x && x.packets > 0 ? x : null; }, 5_000,
            'the kernel SA counters (ip -s xfrm state) to show the fast path\'s packets').catch(() => null);
          d.kernelSaPackets = k?.packets ?? 0;
          assert.ok(k, 'ip -s xfrm state in the control plane shows no packets on the new SA (fpsd)');
        }
      } else {
        assert.ok(after[0].packets > 0, 'the new outbound SA carried traffic');
      }
    });

    // byte lifetime: left's cert-cbc SAs have a soft limit; a flow A2 -> B2 crosses it (more than once)
    await step('rekey-bytes', ['ping'], async (d) => {
      if (PHASE === 'b' && !gw().fpsd) throw new Pending(`byte-lifetime rekey through the fast path needs fpsd: ${gw().fpsdWhy}`);
      const log0 = l().log().split('\n').length - 1; // (the last element is the empty string after the last newline)
      const before = outSas(xfrmStates(gw().left.name), T.left, T.right, st.reqCert).map((s) => s.spi);
      const flow = new UdpFlow(gw().a.name, gw().b.name, T.b2, 5002, FLOW.count, FLOW.pps, FLOW.size);
      const sampler = PHASE === 'b' ? new FpSaSampler(gw(), T.right, st.reqCert) : null;
      const fpsd0 = PHASE === 'b' ? fpsdExpires(gw()) : 0;
      const seen = new Set<number>(before);
      const poll = setInterval(() => { try { for (const s of outSas(xfrmStates(gw().left.name), T.left, T.right, st.reqCert)) seen.add(s.spi); } catch { /* */ } }, 200);
      const lan0 = PHASE === 'b' ? lanCounters(gw()) : null;
      try {
        await flow.listen(FLOW.count / FLOW.pps * 1000 + 15_000);
        sampler?.start();
        const res = await flow.send();
        Object.assign(d, { sent: res.sent, received: res.received, flowMs: res.ms });
      } finally {
        clearInterval(poll);
        sampler?.stop();
        flow.kill();
      }
      await sleep(500);
      const newLog = l().log().split('\n').slice(log0);
      const softExpires = newLog.filter((x) => /creating rekey job for CHILD_SA/.test(x));
      const rekeyed = newLog.filter((x) => /CHILD_SA cert-cbc\{\d+\} established/.test(x));
      const rightSoft = r().log().split('\n').filter((x) => /creating rekey job/.test(x));
      const after = outSas(xfrmStates(gw().left.name), T.left, T.right, st.reqCert);
      Object.assign(d, {
        spisBefore: before.map(hexSpi), spisSeen: [...seen].map(hexSpi), spisAfter: after.map((s) => hexSpi(s.spi)),
        rekeys: seen.size - 1, leftSoftExpires: softExpires.length, leftNewChildSas: rekeyed.length, rightSoftExpires: rightSoft.length,
        expectedRekeys: Math.floor(FLOW.count * (FLOW.size + 28) / REKEY_BYTES),
      });
      if (sampler) {
        Object.assign(d, lanDelta(lan0!, lanCounters(gw())));
        d.fpPerSpi = sampler.perSpi(); d.fpEncrypted = sampler.total();
        d.fpsdExpires = fpsdExpires(gw()) - fpsd0;
      }
      assert.strictEqual(d.received, d.sent, `UDP flow across byte-lifetime rekeys: ${d.received} of ${d.sent} received`);
      assert.ok(softExpires.length >= 1, 'left charon got no soft byte expire from the kernel');
      assert.ok(seen.size >= 2, 'no new outbound cert-cbc SA seen during the flow');
      assert.ok(rekeyed.length >= 1, 'no new cert-cbc CHILD_SA after the soft expire');
      assert.strictEqual(rightSoft.length, 0, 'right (no byte limits) saw a soft expire?');
      assert.ok(after.length === 1 && !before.includes(after[0].spi), 'the outbound cert-cbc SA changed');
      if (sampler) {
        assert.ok((d.fpsdExpires as number) >= 1, 'fpsd sent no soft expire');
        assert.ok((d.lanForwarded as number) >= 0.99 * FLOW.count, `fast path forwarded ${d.lanForwarded} of ${FLOW.count} (< 99%)`);
        assert.ok(sampler.total() >= 0.99 * FLOW.count, `fast-path per-SA counters: ${sampler.total()} of ${FLOW.count} encrypted (< 99%)`);
      }
    });

    await step('still-up', ['ike-psk'], () => {
      const sas = l().swanctl(['--list-sas']);
      assert.match(sas, /psk-gcm: #\d+, reqid \d+, INSTALLED, TUNNEL, ESP:AES_GCM_16-128/, sas);
      assert.match(sas, /cert-cbc: #\d+, reqid \d+, INSTALLED, TUNNEL, ESP:AES_CBC-128\/HMAC_SHA2_256_128/, sas);
      assert.ok(l().alive() && r().alive(), 'a charon died');
    });
  } finally {
    for (const [n, c] of [['left', st.L], ['right', st.R]] as const) {
      if (!c) continue;
      // the end of each charon log, for failures (no keys in charon logs at these levels)
      report.logs[`charon-${n}`] = c.log().split('\n').slice(-60).join('\n');
    }
    const lfp = st.g?.lfp;
    if (lfp) {
      try { report.logs.lfp = lfp.env.logs(); } catch { /* */ }
      try { report.logs.fpsd = fs.readFileSync(path.join(lfp.env.dir, 'fpsd.log'), 'utf8').slice(-3000); } catch { /* */ }
    }
    for (const c of charons) c.stop();
    try { st.g?.stop(); } catch { /* */ }
    rmrf(base);
  }
}

main()
  .catch((e) => { report.steps.internal = { ok: false, error: (e as Error).stack ?? String(e), ms: 0, data: {} }; })
  .finally(() => {
    process.stdout.write(`SWAN-REPORT ${JSON.stringify(report)}\n`);
    process.exit(0);
  });
