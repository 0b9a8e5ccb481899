// Issue 4 acceptance, inside user-mode Linux (the host kernel has no ESP): lfp's fast path encrypts
// and decrypts ESP with SAs and policies configured with plain `ip xfrm` in its control plane, and
// the Linux kernel ESP of a peer namespace is the other end. One UML boot runs every case
// (tests/uml/ipsec/ipsec-guest.ts); this file checks the results and decrypts lfp's captured ESP
// with tshark (an independent implementation) on the host.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot, runInUml, umlUnavailableReason } from '../uml/uml';
import type { IpsecCase, IpsecResult, IpsecRun, SaKeys } from '../uml/ipsec/ipsec-guest';

const COUNT = Number(process.env.LFP_IPSEC_COUNT ?? 10_000);
const PPS = Number(process.env.LFP_IPSEC_PPS ?? 1500);

const MATRIX: IpsecCase[] = [];
for (const mode of ['tunnel', 'transport'] as const) {
  for (const alg of ['gcm', 'cbc'] as const) {
    for (const family of [4, 6] as const) {
      MATRIX.push({ name: `${mode}-${alg}-ipv${family}`, mode, alg, family, count: COUNT, pps: PPS, capture: true });
    }
  }
}

/** Fragmentation: 1500-byte inner packets (10 pings, 1000 UDP datagrams each way) over a 1400-byte lfp ⇄ peer link. */
const FRAG_COUNT = Number(process.env.LFP_IPSEC_FRAG_COUNT ?? 1000);
const fragCase = (fragMode: string, mode: 'tunnel' | 'transport', family: 4 | 6 = 4): IpsecCase =>
  ({ name: `frag-${fragMode}-${mode}-gcm-ipv${family}`, mode, alg: 'gcm', family, count: FRAG_COUNT, pps: 400, size: family === 4 ? 1472 : 1452, bigPing: family === 4 ? 1472 : 1452, wanMtu: 1400 });
// Fragments the hosts send (IPv4 datagrams larger than their MTU; IPv6 after a packet too big): the
// fast path forwards and encrypts them itself (were exceptions once: Linux then encrypted them on the
// same SA with its own sequence numbers: replays at the peer, GCM nonces reused).
const hostFragmentCases: IpsecCase[] = [
  fragCase('after-encrypt', 'tunnel', 6),
  // stallMs: the fast path is stopped 300 ms every 700 ms, so it takes full vectors (order inside a vector)
  { name: 'host-fragments-tunnel-gcm-ipv4', mode: 'tunnel', alg: 'gcm', family: 4, count: 1000, pps: 400, size: 2000, stallMs: 300 },
];
// fastpath.ipsecFragment is per process: the default (after-encrypt) cases run on the first lfp.
// LFP_IPSEC_ONLY=<regexp>: only the cases whose name matches (development).
const only = process.env.LFP_IPSEC_ONLY ? new RegExp(process.env.LFP_IPSEC_ONLY) : null;
const RUNS: IpsecRun[] = [
  { cases: [...MATRIX, fragCase('after-encrypt', 'tunnel'), fragCase('after-encrypt', 'transport'), ...hostFragmentCases] },
  { options: { fastpath: { ipsecFragment: 'before-encrypt' } }, cases: [fragCase('before-encrypt', 'tunnel'), fragCase('before-encrypt', 'transport')] },
].map((r) => ({ ...r, cases: r.cases.filter((c) => !only || only.test(c.name)) })).filter((r) => r.cases.length > 0);
const FRAG_MODE = new Map<string, string>(RUNS.flatMap((r) => r.cases.map((c) => [c.name, c.wanMtu ? String(r.options?.fastpath?.ipsecFragment ?? 'after-encrypt') : ''] as [string, string])));

const ALG_NAME = { gcm: 'AES-128-GCM', cbc: 'AES-128-CBC + HMAC-SHA256-128' };

/**
 * Packets of each direction besides the flows. Tunnel: ping A → B and B → A (3 requests + 3 replies
 * each way). Transport: only A → B and B → lfp are protected (their replies are clear): 3 echo
 * requests each way. Big pings A → B (fragmentation cases): 10 more, replies protected in tunnel mode.
 */
function extra(c: IpsecCase): { ab: number; ba: number } {
  const big = c.bigPing ? 10 : 0;
  return c.mode === 'tunnel' ? { ab: 6 + big, ba: 6 + big } : { ab: 3 + big, ba: 3 };
}

function tsharkSa(sa: SaKeys): string {
  const fam = sa.src.includes(':') ? 'IPv6' : 'IPv4';
  const spi = `0x${sa.spi.toString(16).padStart(8, '0')}`;
  const enc = sa.alg === 'gcm' ? 'AES-GCM with 16 octet ICV [RFC4106]' : 'AES-CBC [RFC3602]';
  const auth = sa.alg === 'gcm' ? 'NULL' : 'HMAC-SHA-256-128 [RFC4868]';
  return `"${fam}","${sa.src}","${sa.dst}","${spi}","${enc}","0x${sa.encKey}","${auth}","${sa.authKey ? '0x' + sa.authKey : ''}"`;
}

function tshark(file: string, args: string[], fields: string[]): string[][] {
  const r = spawnSync('tshark', ['-n', '-r', file, ...args, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=l', ...fields.flatMap((f) => ['-e', f])],
    { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`tshark ${file}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
}

describe('IPsec ESP in the fast path against the Linux kernel ESP of a peer (inside UML)', function () {
  this.timeout(900_000);
  let outDir = '';
  const results = new Map<string, IpsecResult>();
  let guestOutput = '';

  before(async function () {
    const reason = umlUnavailableReason();
    if (reason !== null) {
      console.log(`      skipping the IPsec UML tests: ${reason}`);
      this.skip();
    }
    const guest = path.join(repoRoot(), 'build', 'tests', 'uml', 'ipsec', 'ipsec-guest.js');
    if (!fs.existsSync(guest)) throw new Error(`${guest} missing: build first (make build)`);
    fs.mkdirSync(path.join(repoRoot(), 'build'), { recursive: true });
    outDir = fs.mkdtempSync(path.join(repoRoot(), 'build', 'uml-ipsec-'));
    const t0 = Date.now();
    const r = await runInUml([process.execPath, guest, outDir], {
      timeoutMs: 600_000,
      env: { LFP_IPSEC_RUNS: JSON.stringify(RUNS) },
    });
    guestOutput = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
    if (process.env.LFP_IPSEC_VERBOSE) console.log(guestOutput, `(${(Date.now() - t0) / 1000} s)`);
    const file = path.join(outDir, 'results.json');
    if (!fs.existsSync(file)) throw new Error(`the guest wrote no results:\n${guestOutput}`);
    for (const x of JSON.parse(fs.readFileSync(file, 'utf8')) as IpsecResult[]) results.set(x.name, x);
  });

  after(() => {
    if (outDir && !process.env.LFP_IPSEC_KEEP) fs.rmSync(outDir, { recursive: true, force: true });
  });

  for (const c of RUNS.flatMap((r) => r.cases)) {
    const frag = FRAG_MODE.get(c.name);
    const title = `${c.mode} mode, ${ALG_NAME[c.alg]}, IPv${c.family}${c.size && c.size > 1300 ? `, ${c.size + (c.family === 4 ? 28 : 48)}-byte packets${c.wanMtu ? ` over a ${c.wanMtu}-byte MTU (fastpath.ipsecFragment ${frag})` : ' (fragmented by the hosts)'}` : ''}`;
    // tunnel: A ⇄ B through lfp and the peer router (the ESP end); transport: A → B encrypted by lfp
    // for host A, decrypted by host B's kernel, and B → lfp itself (ESP for lfp: Linux decrypts it)
    const rev = c.mode === 'tunnel' ? 'B → A' : 'B → lfp';
    const espEnd = c.mode === 'tunnel' ? "the peer's kernel" : "host B's kernel";
    const res = (): IpsecResult => {
      const r = results.get(c.name);
      assert.ok(r, `no result for ${c.name} (guest output:\n${guestOutput})`);
      assert.ok(!r.error, `${c.name}: ${r.error}\n${r.log ?? ''}`);
      return r;
    };
    const detail = (r: IpsecResult) => `\nfast path ports: ${JSON.stringify(r.ports)}\nfp SA out ${JSON.stringify(r.fpOut)} in ${JSON.stringify(r.fpIn)}\n` +
      `${espEnd} SA out ${JSON.stringify(r.peerIn)} in ${JSON.stringify(r.peerOut)}\nlfp's kernel SA out ${JSON.stringify(r.cpOut)} in ${JSON.stringify(r.cpIn)}\n${r.hostCounters ?? ''}`;

    it(`${title}: ping and ${c.count} UDP datagrams A → B and ${rev} arrive complete`, () => {
      const r = res();
      if (c.bigPing) assert.ok(r.bigPing?.ok, `ping -s ${c.bigPing} A → B failed:\n${r.bigPing?.out}`);
      if (c.bigPing) assert.doesNotMatch(r.bigPing!.out, /wrong data|DUP!/, 'echo replies intact');
      assert.ok(r.pingAB?.ok, `ping A → B failed:\n${r.pingAB?.out}`);
      assert.ok(r.pingBA?.ok, `ping ${rev} failed:\n${r.pingBA?.out}`);
      assert.equal(r.recvAB, c.count, `A → B: ${r.recvAB} of ${c.count} arrived${detail(r)}`);
      assert.equal(r.recvBA, c.count, `${rev}: ${r.recvBA} of ${c.count} arrived${detail(r)}`);
    });

    it(`${title}: ${espEnd} decrypted lfp's ESP and encrypted the reverse (ip -s xfrm state)`, () => {
      const r = res();
      const x = extra(c);
      // Everything B got went through that SA (the ESP end's policy requires ESP from lfp / host A).
      assert.ok(r.peerIn && r.peerIn.packets >= c.count + x.ab, `SA lfp → ESP end counted ${JSON.stringify(r.peerIn)}, expected ≥ ${c.count + x.ab}${detail(r)}`);
      assert.ok(r.peerOut && r.peerOut.packets >= c.count + x.ba, `SA ESP end → lfp counted ${JSON.stringify(r.peerOut)}, expected ≥ ${c.count + x.ba}${detail(r)}`);
    });

    it(`${title}: ≥ 99% of A → B is encrypted by the fast path`, () => {
      const r = res();
      const ab = c.count + extra(c).ab;
      const p0 = r.ports![0];
      assert.ok(p0.dpvi <= ab * 0.01, `A → B: ${p0.dpvi} packets went to Linux${detail(r)}`);
      assert.ok(r.fpOut, `no per-SA counters for the fast path's out SA${detail(r)}`);
      assert.ok(r.fpOut.packets >= ab * 0.99, `fast path encrypted ${r.fpOut.packets} of ${ab}${detail(r)}`);
      assert.equal(r.fpOut.errors, 0, `errors on the out SA${detail(r)}`);
    });

    if (c.mode === 'tunnel') {
      it(`${title}: ≥ 99% of B → A is decrypted by the fast path`, () => {
        const r = res();
        const ba = c.count + extra(c).ba;
        const p1 = r.ports![1];
        assert.ok(p1.dpvi <= ba * 0.01, `B → A: ${p1.dpvi} packets went to Linux${detail(r)}`);
        assert.ok(r.fpIn, `no per-SA counters for the fast path's in SA${detail(r)}`);
        assert.ok(r.fpIn.packets >= ba * 0.99, `fast path decrypted ${r.fpIn.packets} of ${ba}${detail(r)}`);
        assert.equal(r.fpIn.authDrops + r.fpIn.replayDrops + r.fpIn.errors, 0, `drops on the in SA${detail(r)}`);
      });
    } else {
      it(`${title}: ≥ 99% of the ESP for lfp itself is decrypted by the fast path, Linux takes it in clear (fastpath.ipsecLocalDecrypt)`, () => {
        // the DPVIs have disable_policy (fp.ts): Linux accepts the clear packets the fast path decrypted for
        // this host (they arrive at lfp's socket: recvBA), the fast path checks the 'in' policies instead
        const r = res();
        const ba = c.count + extra(c).ba;
        assert.ok(r.fpIn, `no per-SA counters for the fast path's in SA${detail(r)}`);
        assert.ok(r.fpIn.packets >= ba * 0.99, `fast path decrypted ${r.fpIn.packets} of ${ba}${detail(r)}`);
        assert.equal(r.fpIn.authDrops + r.fpIn.replayDrops + r.fpIn.errors, 0, `drops on the in SA${detail(r)}`);
        assert.equal(r.ports![1].exceptions['ipsec-local'] ?? 0, 0, `ESP handed to Linux undecrypted${detail(r)}`);
        assert.ok(!r.cpIn || r.cpIn.packets <= ba * 0.01, `lfp's kernel decrypted ${JSON.stringify(r.cpIn)}${detail(r)}`);
      });
    }

    if (frag) {
      const before = frag === 'before-encrypt' && c.mode === 'tunnel'; // transport mode always fragments the ESP packet
      it(`${title}: the fast path fragmented ${before ? 'the inner packets, then encrypted each fragment' : 'the ESP packets after encryption'}`, () => {
        const r = res();
        const big = c.count + 10; // 1500-byte packets A → B: the flow and the big pings
        if (before) {
          assert.ok(r.fpOut!.packets >= 2 * big, `ESP packets ${r.fpOut!.packets}, expected ≥ 2 × ${big} (one per fragment)${detail(r)}`);
        } else {
          assert.ok(r.ports![1].tx >= 2 * big, `packets out of eth2: ${r.ports![1].tx}, expected ≥ 2 × ${big} (two fragments per ESP packet)${detail(r)}`);
        }
      });
    }

    if (c.capture) {
      it(`${title}: tshark decrypts lfp's captured ESP with the SA's keys into the packets host A sent`, function () {
        const r = res();
        if (spawnSync('tshark', ['--version']).status !== 0) { console.log('      tshark not installed'); this.skip(); }
        const esp = path.join(outDir, r.espPcap!), clear = path.join(outDir, r.clearPcap!);
        // the inner packet (tunnel: the last IP header of the frame; transport: the only one, whose
        // length changed) compared with what A sent: addresses, IPv4 ID / IPv6 flow label, UDP header and payload
        const inner = c.family === 6 ? ['ipv6.src', 'ipv6.dst', 'ipv6.flow', 'udp.srcport', 'udp.dstport', 'udp.length', 'udp.payload']
          : ['ip.src', 'ip.dst', 'ip.id', 'udp.srcport', 'udp.dstport', 'udp.length', 'udp.payload'];
        const dec = tshark(esp, ['-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE', '-o', `uat:esp_sa:${tsharkSa(r.outSa!)}`],
          ['esp.spi', 'esp.icv_good', ...inner]);
        const sent = tshark(clear, [], inner);
        assert.equal(sent.length, 50, `host A's capture holds ${sent.length} datagrams\n${r.captureLog}`);
        assert.equal(dec.length, 50, `lfp's ESP capture holds ${dec.length} packets\n${r.captureLog}`);
        for (const d of dec) {
          assert.equal(Number(d[0]), r.outSa!.spi, `SPI ${d[0]}`);
          assert.equal(d[1], '1', `ICV not verified by tshark: ${d.join(' ')}`);
        }
        // inner packets (the last IP header of each frame) = what A sent, in order
        assert.deepEqual(dec.map((d) => d.slice(2).join(' ')), sent.map((s) => s.join(' ')));
        assert.ok(sent.every((s) => s[6].length === 2 * (c.size ?? 64)), `payloads of ${c.size ?? 64} bytes`);
      });
    }
  }
});
