// make bench-ipsec: Gbit/s per core of the whole ESP path of lfp's fast path -- encap + encrypt (outbound) and
// decrypt + decap (inbound) through the Graph on in-memory ports (tests/bench/ipsec-fp.ts) -- for AES-128-GCM
// (rfc4106, ICV 16) and AES-128-CBC + HMAC-SHA-256-128 at 64, 512 and 1400-byte inner packets, beside the best
// raw single-core crypto of this machine measured in the same invocation (tests/bench/ipsec-raw.ts):
//   - openssl speed -evp: aes-128-gcm with -aead (init + AAD + update + final + tag per buffer, as one ESP packet),
//     with -decrypt for the inbound side; aes-128-cbc-hmac-sha256 (OpenSSL's stitched TLS cipher: CBC + SHA-256 of
//     the data in one pass, without the HMAC finalisation) when it runs, and aes-128-cbc (encrypt / decrypt) and
//     hmac(sha256) measured separately and combined serially (1 / (1/a + 1/b): both passes on one core);
//   - dpdk-test-crypto-perf, throughput test, PMDs crypto_aesni_gcm and crypto_aesni_mb (intel-ipsec-mb):
//     aes-gcm encrypt / decrypt, aes-cbc + sha2-256-hmac chained (encrypt), aes-cbc decrypt and sha2-256-hmac
//     separately (combined serially: the chained decrypt needs a test-vector file in this tool).
// All on one core (FP_CPU; DPDK's main lcore busy-waits on the other one). Every figure is per second of CPU time of
// the thread doing the work: the machine may be shared, and a preempted process would otherwise look slower (the
// wall-clock figures are printed beside, with the CPU share each got).
// CBC rows: raw buffers of 64, 512, 1408 bytes (whole AES blocks; the ESP payload of a 1400-byte inner packet is
// 1408 bytes with its trailer). Fast-path Gbit/s count the inner packets' bytes.
// Ratio = fast path, graph alone (the in-memory NIC's frame copy subtracted, as bench-fwd) / best raw figure of the
// row (the ratio with that copy is printed beside it); goal >= 0.7 at 1400 bytes. Cycles per packet = the clock of
// /proc/cpuinfo / the fast path's packet rate per CPU-second. A benchmark, not a test.
//
// Environment: FP_CPU (1), SIZES (64,512,1400), ALGS (gcm,cbc), PARTS (fp,openssl,dpdk), POINT_MS (1500: time of
// one fast-path figure, split into ROUNDS (3) rounds; the median round is reported), TEMPLATES (1024: prepared
// frames per point), OPENSSL_S (1: seconds per openssl speed figure), DPDK_S (1.2: wall-clock seconds per DPDK figure),
// DPDK_BURSTS (32,256: dpdk-test-crypto-perf burst sizes tried; the best per buffer size is the reference), PRODUCT
// (1: the fast path as fp runs it, ipsecLocalDecrypt and strongSwan's fwd policies; 0: without them).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Alg, Dir, FpOptions, FpPoint, FpResult } from './ipsec-fp';
import { DPDK_CONFIGS, dpdkAvailable, dpdkPerf, opensslSpeed, serial, type RawError, type RawFigure } from './ipsec-raw';

const FP_CPU = Number(process.env.FP_CPU ?? 1);
const SIZES = (process.env.SIZES ?? '64,512,1400').split(',').map(Number);
const ALGS = (process.env.ALGS ?? 'gcm,cbc').split(',') as Alg[];
const PARTS = new Set((process.env.PARTS ?? 'fp,openssl,dpdk').split(','));
const POINT_MS = Number(process.env.POINT_MS ?? 1500);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const TEMPLATES = Number(process.env.TEMPLATES ?? 1024);
const OPENSSL_S = Math.max(1, Math.round(Number(process.env.OPENSSL_S ?? 1))); // openssl speed takes whole seconds
const DPDK_S = Number(process.env.DPDK_S ?? 1.2);
const DPDK_BURSTS = (process.env.DPDK_BURSTS ?? '32,256').split(',').map(Number);
const GOAL = 0.7, GOAL_SIZE = 1400;
const NCPU = os.cpus().length;

const FP_JS = path.join(__dirname, 'ipsec-fp.js');

type Fig = RawFigure | RawError | undefined;
const isFig = (f: Fig): f is RawFigure => f !== undefined && !('error' in f);
const rawSize = (alg: Alg, size: number): number => (alg === 'cbc' ? Math.ceil(size / 16) * 16 : size);

function log(s: string): void { process.stderr.write(s + '\n'); }

function cpuInfo(): { model: string; mhz: number } {
  const t = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return { model: /model name\s*:\s*(.*)/.exec(t)?.[1] ?? '?', mhz: Number(/cpu MHz\s*:\s*([\d.]+)/.exec(t)?.[1] ?? 0) };
}

function runFp(opts: FpOptions): Promise<FpResult> {
  return new Promise((resolve, reject) => {
    const c = spawn('taskset', ['-c', String(FP_CPU), process.execPath, '--expose-gc', FP_JS, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    const kill = (): void => { c.kill('SIGKILL'); };
    process.once('SIGINT', kill);
    c.on('exit', (code) => {
      process.removeListener('SIGINT', kill);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(line) as FpResult & { error?: string };
        if (r.error) reject(new Error(`fast-path part: ${r.error}`));
        else resolve(r);
      } catch {
        reject(new Error(`fast-path part exited with ${code}: ${out.slice(-500)}`));
      }
    });
  });
}

interface Row {
  alg: Alg;
  dir: Dir;
  size: number;
  fp?: FpPoint;
  /** refOnly: printed, not a candidate for the best raw figure. */
  raw: { name: string; fig: Fig; refOnly?: boolean }[];
}

function f(x: number | undefined, d = 2, w = 7): string {
  return (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d)).padStart(w);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const cpu = cpuInfo();
  const load0 = os.loadavg();
  console.log(`make bench-ipsec (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC): ${cpu.model}, ${cpu.mhz} MHz (/proc/cpuinfo), ` +
    `${NCPU} CPUs, measured on cpu${FP_CPU}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  const rows: Row[] = [];
  for (const alg of ALGS) for (const size of SIZES) for (const dir of ['out', 'in'] as Dir[]) rows.push({ alg, dir, size, raw: [] });
  const row = (alg: Alg, dir: Dir, size: number): Row => rows.find((r) => r.alg === alg && r.dir === dir && r.size === size) as Row;

  // ---------------------------------------------------------------- the fast path
  let fp: FpResult | undefined;
  if (PARTS.has('fp')) {
    log(`fast path: ${ALGS.join(', ')} x ${SIZES.join(', ')} B x out/in, ${POINT_MS} ms per figure (cpu${FP_CPU})`);
    // The product's configuration: the fp process runs with fastpath.ipsecLocalDecrypt (default), and strongSwan
    // installs a 'fwd' policy beside every 'in' one (PRODUCT=0: the bare world of earlier runs).
    const product = process.env.PRODUCT !== '0';
    const fpOpts: FpOptions = { sizes: SIZES, algs: ALGS, pointMs: POINT_MS, rounds: ROUNDS, templates: TEMPLATES, cryptoAlone: true, dirs: ['out', 'in'],
      localDecrypt: product, fwdPolicies: product };
    try {
      fp = await runFp(fpOpts);
    } catch (e) {
      // e.g. build/ being rewritten by a concurrent `tsc` while the child loads: one more try
      log(`${(e as Error).message.slice(0, 300)}\nfast path: second attempt in 3 s`);
      await new Promise((res) => setTimeout(res, 3000));
      fp = await runFp(fpOpts);
    }
    for (const p of fp.points) row(p.alg, p.dir, p.size).fp = p;
  }

  // ---------------------------------------------------------------- openssl speed
  const notes: string[] = [];
  if (PARTS.has('openssl')) {
    log('openssl speed -evp ...');
    let stitchedOk = true;
    for (const size of SIZES) {
      if (ALGS.includes('gcm')) {
        row('gcm', 'out', size).raw.push({ name: 'openssl aes-128-gcm -aead', fig: opensslSpeed({ evp: 'aes-128-gcm', aead: true }, size, FP_CPU, OPENSSL_S) });
        row('gcm', 'in', size).raw.push({ name: 'openssl aes-128-gcm -aead -decrypt', fig: opensslSpeed({ evp: 'aes-128-gcm', aead: true, decrypt: true }, size, FP_CPU, OPENSSL_S) });
      }
      if (ALGS.includes('cbc')) {
        const b = rawSize('cbc', size);
        const st = stitchedOk ? opensslSpeed({ evp: 'aes-128-cbc-hmac-sha256' }, b, FP_CPU, OPENSSL_S) : undefined;
        if (st !== undefined && 'error' in st) { stitchedOk = false; notes.push(`openssl aes-128-cbc-hmac-sha256 not usable here: ${st.error}`); }
        const enc = opensslSpeed({ evp: 'aes-128-cbc' }, b, FP_CPU, OPENSSL_S);
        const dec = opensslSpeed({ evp: 'aes-128-cbc', decrypt: true }, b, FP_CPU, OPENSSL_S);
        const mac = opensslSpeed({ hmac: 'sha256' }, b, FP_CPU, OPENSSL_S);
        const out = row('cbc', 'out', size), inn = row('cbc', 'in', size);
        // OpenSSL's stitched cipher is TLS's (MAC-then-encrypt): outside TLS, `speed` runs CBC + SHA-256 updates of the
        // data and never finalises the HMAC (~3 SHA-256 blocks per packet missing): shown, not compared.
        if (isFig(st)) out.raw.push({ name: 'openssl aes-128-cbc-hmac-sha256 (stitched)*', fig: st, refOnly: true });
        out.raw.push({ name: 'openssl aes-128-cbc + hmac sha256 (serial)', fig: isFig(enc) && isFig(mac) ? serial(enc, mac, `cbc ${enc.gbps.toFixed(2)}, hmac ${mac.gbps.toFixed(2)}`) : (enc ?? mac) });
        inn.raw.push({ name: 'openssl aes-128-cbc -decrypt + hmac sha256 (serial)', fig: isFig(dec) && isFig(mac) ? serial(dec, mac, `cbc-dec ${dec.gbps.toFixed(2)}, hmac ${mac.gbps.toFixed(2)}`) : (dec ?? mac) });
      }
    }
  }

  // ---------------------------------------------------------------- dpdk-test-crypto-perf
  if (PARTS.has('dpdk')) {
    if (!dpdkAvailable()) notes.push('dpdk-test-crypto-perf not found (Debian package dpdk-dev): no DPDK reference');
    else if (NCPU < 2) notes.push('dpdk-test-crypto-perf needs 2 CPUs: no DPDK reference');
    else {
      log('dpdk-test-crypto-perf (crypto_aesni_gcm, crypto_aesni_mb) ...');
      const run = (k: keyof typeof DPDK_CONFIGS, alg: Alg): Promise<Map<number, RawFigure | RawError>> =>
        dpdkPerf(DPDK_CONFIGS[k], SIZES.map((s) => rawSize(alg, s)), FP_CPU, NCPU, DPDK_S, undefined, DPDK_BURSTS);
      if (ALGS.includes('gcm')) {
        const ge = await run('gcmEncAesniGcm', 'gcm'), gd = await run('gcmDecAesniGcm', 'gcm');
        const me = await run('gcmEncAesniMb', 'gcm'), md = await run('gcmDecAesniMb', 'gcm');
        for (const size of SIZES) {
          row('gcm', 'out', size).raw.push({ name: 'dpdk aesni_gcm aes-gcm encrypt', fig: ge.get(size) }, { name: 'dpdk aesni_mb aes-gcm encrypt', fig: me.get(size) });
          row('gcm', 'in', size).raw.push({ name: 'dpdk aesni_gcm aes-gcm decrypt', fig: gd.get(size) }, { name: 'dpdk aesni_mb aes-gcm decrypt', fig: md.get(size) });
        }
      }
      if (ALGS.includes('cbc')) {
        const ce = await run('cbcHmacEncAesniMb', 'cbc'), cd = await run('cbcDecAesniMb', 'cbc'), hm = await run('hmacAesniMb', 'cbc');
        for (const size of SIZES) {
          const b = rawSize('cbc', size), d = cd.get(b), h = hm.get(b);
          row('cbc', 'out', size).raw.push({ name: 'dpdk aesni_mb aes-cbc + sha2-256-hmac (chained)', fig: ce.get(b) });
          row('cbc', 'in', size).raw.push({
            name: 'dpdk aesni_mb aes-cbc decrypt + sha2-256-hmac (serial)',
            fig: isFig(d) && isFig(h) ? { ...serial(d, h, `cbc-dec ${d.gbps.toFixed(2)}, hmac ${h.gbps.toFixed(2)}`), cpuShare: Math.min(d.cpuShare ?? 1, h.cpuShare ?? 1) } : (d ?? h),
          });
        }
      }
    }
  }

  // ---------------------------------------------------------------- report
  const mhz = fp?.cpuMhz || cpu.mhz;
  const out: string[] = [''];
  out.push('Raw single-core crypto (per CPU-second; DPDK: its own wall-clock figure and the CPU share its worker got in brackets)');
  out.push(`${'alg'.padEnd(4)} ${'dir'.padEnd(3)} ${'bytes'.padStart(5)}  reference${' '.repeat(46)}  Gbit/s    Mops  wall Gbit/s (share)`);
  for (const r of rows) {
    for (const x of r.raw) {
      const fig = x.fig;
      const tail = !isFig(fig) ? (fig === undefined ? '  (not run)' : `  ERROR ${fig.error.slice(0, 200)}`) :
        `${f(fig.gbps, 2, 8)} ${f(fig.mops, 3, 7)}` + (fig.wallGbps !== undefined ? `  ${f(fig.wallGbps, 2, 8)} (${(fig.cpuShare ?? 0).toFixed(2)})` : '') +
        (fig.note ? `  [${fig.note}]` : '');
      out.push(`${r.alg.padEnd(4)} ${r.dir.padEnd(3)} ${String(rawSize(r.alg, r.size)).padStart(5)}  ${x.name.padEnd(55)}${tail}`);
    }
  }
  out.push('');
  out.push('Fast path: whole ESP path through the Graph on in-memory ports, one core, per CPU-second (median of rounds)');
  out.push('  out = clear packet in, ESP packet out (SPD, SA, encap, encrypt, outer lookup/rewrite); in = ESP in, clear packet out');
  out.push('  (replay check, decrypt, decap, inner policy, lookup/rewrite). Gbit/s of inner packet bytes. gen = the in-memory');
  out.push('  "NIC" (copy of a prepared frame per packet); lfp_crypto = encryptBurst/decryptBurst alone at the same encLen.');
  out.push(`${'alg'.padEnd(4)} ${'dir'.padEnd(3)} ${'inner'.padStart(5)}  ${'Gbit/s'.padStart(7)} ${'Mpps'.padStart(6)} ${'cyc/pkt'.padStart(7)}  ` +
    `${'graph alone'.padStart(11)} ${'cyc'.padStart(5)}  ${'lfp_crypto cyc'.padStart(14)}  ${'gen cyc'.padStart(7)}  ${'rounds Gbit/s (CPU share)'.padEnd(32)}  best raw Gbit/s  ratio (with gen)  goal`);
  const summary: string[] = [];
  for (const r of rows) {
    const p = r.fp;
    const best = r.raw.filter((x) => isFig(x.fig) && x.refOnly !== true).sort((a, b) => (b.fig as RawFigure).gbps - (a.fig as RawFigure).gbps)[0];
    const bestG = best ? (best.fig as RawFigure).gbps : undefined;
    // the goal is judged on the graph alone (the in-memory NIC's copy, gen, subtracted), as bench-fwd does; the ratio
    // with gen is printed beside it
    const ratio = p && bestG && p.graphGbps > 0 ? p.graphGbps / bestG : undefined;
    const ratioGen = p && bestG ? p.gbps / bestG : undefined;
    const goal = r.size === GOAL_SIZE ? (ratio === undefined ? '(no ratio)' : ratio >= GOAL ? `>= ${GOAL}: met` : `>= ${GOAL}: NOT met`) : '';
    const cyc = (ns: number): string => f((ns * mhz) / 1000, 0, 5);
    if (p) {
      const rs = p.rounds.map((x) => `${((x.mppsCpu * p.size * 8) / 1000).toFixed(2)} (${x.cpuShare.toFixed(2)})`).join(', ');
      const bad = p.sent !== p.fed || p.drops !== 0 || p.exceptions !== 0 ? `  !! fed ${p.fed} sent ${p.sent} drops ${p.drops} exceptions ${p.exceptions}` : '';
      out.push(`${r.alg.padEnd(4)} ${r.dir.padEnd(3)} ${String(r.size).padStart(5)}  ${f(p.gbps)} ${f(p.mpps, 3, 6)} ${f(mhz / p.mpps, 0, 7)}  ` +
        `${f(p.graphGbps, 2, 11)} ${f(p.graphMpps > 0 ? mhz / p.graphMpps : undefined, 0, 5)}  ${cyc(p.crypto.ns).padStart(14)}  ${cyc(p.genNs).padStart(7)}  ${rs.padEnd(32)}  ` +
        `${f(bestG, 2, 15)}  ${f(ratio, 2, 5)} (${f(ratioGen, 2, 0)})  ${goal}${bad}`);
    } else {
      out.push(`${r.alg.padEnd(4)} ${r.dir.padEnd(3)} ${String(r.size).padStart(5)}  (fast path not run)  best raw ${f(bestG)}`);
    }
    if (best) summary.push(`  ${r.alg} ${r.dir} ${r.size}: best raw = ${best.name} (${f(bestG, 2, 0)} Gbit/s)`);
  }
  out.push('', 'Best raw figure of each row:', ...summary);
  if (rows.some((r) => r.raw.some((x) => x.refOnly))) {
    out.push('  * not compared: OpenSSL\'s stitched TLS cipher; outside TLS `openssl speed` runs CBC and SHA-256 updates of the data and',
      '    never finalises the HMAC (no inner/outer final blocks per packet), so it is not the work of an ESP packet.');
  }
  if (fp) {
    const shares = fp.points.flatMap((p) => p.rounds.map((x) => x.cpuShare));
    out.push('', `Fast path: ${fp.points.reduce((a, p) => a + p.checked, 0)} packets checked before timing (outbound opened with node:crypto, ` +
      `inbound compared with the peer's clear packets); every fed packet sent, no drop: ` +
      `${fp.points.every((p) => p.sent === p.fed && p.drops === 0 && p.exceptions === 0) ? 'yes' : 'NO'}; ${fp.scavenges} scavenges in ${fp.measuredS.toFixed(0)} s of timed rounds` +
      `${fp.scavenges > 0 ? ` (${fp.points.filter((p) => p.scavenges > 0).map((p) => `${p.alg} ${p.dir} ${p.size}: ${p.scavenges}`).join(', ')})` : ''}; ` +
      `CPU share of the fast-path process ${Math.min(...shares).toFixed(2)}-${Math.max(...shares).toFixed(2)} (below 1: other jobs on cpu${FP_CPU}).`);
  }
  const load1 = os.loadavg();
  out.push(`Goal: fast path >= ${GOAL}x the best raw figure at ${GOAL_SIZE} bytes. Load average at the end ${load1.map((x) => x.toFixed(2)).join(' ')}; ` +
    `${((Date.now() - t0) / 1000).toFixed(0)} s in all.`);
  for (const n of notes) out.push(`Note: ${n}`);
  console.log(out.join('\n'));
}

main().catch((e) => { console.error((e as Error).stack ?? String(e)); process.exit(1); });
