// strongSwan (unmodified charon + swanctl, IKEv2, PSK and ECDSA certificates) inside user-mode Linux
// (the host kernel has no ESP). One UML boot per phase runs tests/uml/swan/scenario.ts, which prints a
// JSON report; each `it` below checks one step of it. See tests/uml/swan/README.md.
//   phase A: charon in two plain netns "left" and "right" (kernel ESP on both sides)
//   phase B: "left" is lfp's control-plane netns (tests/lib/uml-lfp.ts): the CHILD_SAs charon installs
//            there are synced to the fast path, which encrypts hostA -> hostB; the peer is kernel ESP.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { swanUnavailableReason } from '../lib/swan';
import { repoRoot, runInUml, umlUnavailableReason } from '../uml/uml';

interface StepResult { ok: boolean; skipped?: boolean; pending?: string; error?: string; ms: number; data: Record<string, unknown> }
interface Report { phase: string; kernel: string; steps: Record<string, StepResult>; logs: Record<string, string> }

async function runScenario(phase: 'a' | 'b'): Promise<{ report: Report | null; raw: string; ms: number }> {
  const t0 = Date.now();
  const r = await runInUml(['node', 'build/tests/uml/swan/scenario.js', phase], { timeoutMs: 240_000, env: { TMPDIR: '/dev/shm' } });
  const line = r.stdout.split('\n').find((l) => l.startsWith('SWAN-REPORT '));
  const raw = `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;
  return { report: line ? (JSON.parse(line.slice('SWAN-REPORT '.length)) as Report) : null, raw, ms: Date.now() - t0 };
}

function describePhase(phase: 'a' | 'b', title: string, steps: [string, string][]): void {
  describe(title, function () {
    this.timeout(300_000);
    let rep: Report | null = null;
    let raw = '';
    let printedLogs = false;

    before(async function () {
      const why = umlUnavailableReason() ?? swanUnavailableReason();
      if (why) { console.log(`      skipping strongSwan tests: ${why}`); this.skip(); }
      if (!fs.existsSync(path.join(repoRoot(), 'build', 'tests', 'uml', 'swan', 'scenario.js'))) {
        console.log('      skipping: build/tests/uml/swan/scenario.js missing (run tsc)'); this.skip();
      }
      if (phase === 'b' && !fs.existsSync(path.join(repoRoot(), 'build', 'tests', 'lib', 'uml-lfp.js'))) {
        console.log('      skipping phase B: tests/lib/uml-lfp.ts (lfp inside UML) not built'); this.skip();
      }
      const r = await runScenario(phase);
      rep = r.report; raw = r.raw;
      if (process.env.SWAN_VERBOSE) console.log(raw);
      console.log(`      (UML run ${(r.ms / 1000).toFixed(1)} s${rep ? timings(rep) : ''})`);
    });

    function check(this: Mocha.Context, name: string): void {
      assert.ok(rep, `no SWAN-REPORT from the scenario:\n${raw}`);
      const pre = rep.steps.prerequisites ?? rep.steps.internal;
      assert.ok(!pre, pre?.error);
      const s = rep.steps[name];
      assert.ok(s, `step ${name} missing from the report`);
      if (s.pending) { console.log(`        pending: ${s.pending}`); this.skip(); }
      if (!s.ok) {
        let msg = `${name}: ${s.error}\n  data: ${JSON.stringify(s.data)}`;
        if (!s.skipped && !printedLogs) {
          printedLogs = true;
          msg += '\n' + Object.entries(rep.logs).map(([k, v]) => `--- ${k} (end) ---\n${v}`).join('\n') + `\n${raw}`;
        }
        assert.fail(msg);
      }
    }

    for (const [name, what] of steps) {
      it(what, function () { check.call(this, name); });
    }
  });
}

function timings(rep: Report): string {
  const d = (n: string) => rep.steps[n]?.data ?? {};
  const parts: string[] = [];
  if (rep.steps['charon-start']?.ok) parts.push(`charon start ${d('charon-start').leftMs}/${d('charon-start').rightMs} ms`);
  if (rep.steps['ike-psk']?.ok) parts.push(`IKE PSK ${d('ike-psk').ms} ms`);
  if (rep.steps['ike-cert']?.ok) parts.push(`IKE certs ${d('ike-cert').ms} ms`);
  return parts.length ? `; ${parts.join(', ')}` : '';
}

describe('strongSwan IKEv2 in user-mode Linux (tests/uml/swan)', () => {
  describePhase('a', 'phase A: charon <-> charon, kernel ESP on both sides', [
    ['topology', 'builds hostA - left - right - hostB'],
    ['pki', 'makes a CA and two ECDSA certificates with pki'],
    ['charon-start', 'starts one charon per netns (private /run, own vici socket)'],
    ['ike-psk', 'IKEv2 with a PSK: CHILD_SA psk-gcm (AES-128-GCM, tunnel) established'],
    ['ike-cert', 'IKEv2 with certificates: CHILD_SA cert-cbc (AES-128-CBC + HMAC-SHA256, tunnel) established'],
    ['xfrm-states', 'ip xfrm state on both sides: the same 4 SAs, byte limits only on left'],
    ['ping', 'ping hostA -> hostB through both CHILD_SAs'],
    ['rekey-manual', 'swanctl --rekey during a UDP flow: no packet lost, new SA carries it'],
    ['rekey-bytes', 'byte lifetime (rekey_bytes) rekeys during a UDP flow: no packet lost'],
    ['still-up', 'both CHILD_SAs still installed, both charons alive'],
  ]);
  describePhase('b', 'phase B: charon in lfp\'s control-plane netns <-> charon on a kernel-ESP peer', [
    ['topology', 'starts lfp in UML (fpmd, fast path on AF_PACKET ports, cmgrd) with hostA and hostB'],
    ['pki', 'makes a CA and two ECDSA certificates with pki'],
    ['charon-start', 'starts charon in lfp\'s control-plane netns and in the peer'],
    ['ike-psk', 'IKEv2 with a PSK through the fast path: CHILD_SA psk-gcm established'],
    ['ike-cert', 'IKEv2 with certificates through the fast path: CHILD_SA cert-cbc established'],
    ['xfrm-states', 'ip xfrm state in the control plane and the peer agree'],
    ['fpctl-show-sa', 'the CHILD_SAs\' SPIs appear in fpctl show sa (no keys printed)'],
    ['ping', 'ping hostA -> hostB through both CHILD_SAs'],
    ['rekey-manual', 'swanctl --rekey during a UDP flow: no loss, >= 99% encrypted by the fast path'],
    ['rekey-bytes', 'byte lifetime rekey (fast-path counters pushed by fpsd) during a UDP flow: no loss'],
    ['still-up', 'both CHILD_SAs still installed, both charons alive'],
  ]);
});
