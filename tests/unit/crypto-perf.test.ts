// native/crypto throughput, printed (no assertion on speed): one core (this thread), bursts of 32 packets, payloads
// (encLen: the encrypted bytes) of 64, 512 and 1400 bytes (CBC: 1408, whole blocks), for AES-128-GCM and
// AES-128-CBC + HMAC-SHA-256-128; beside `openssl speed -evp aes-128-gcm` (and its -aead variant: init + AAD +
// update + final per buffer, like one ESP packet) for the same sizes, when the openssl command is there.
// Gbit/s counts encLen bytes only (not the ESP header, IV, ICV). LFP_CRYPTO_BENCH_MS sets the time per point.

import * as assert from 'assert';
import * as childProcess from 'child_process';
import * as c from '../../native/crypto';

const MS = Number(process.env.LFP_CRYPTO_BENCH_MS ?? 300);
const BURST = 32, STRIDE = 2048;

interface Point { alg: string; bytes: number; encGbps: number; decGbps: number; encNsPkt: number; decNsPkt: number }

function measure(alg: string, h: number, bytes: number): Point {
  const { ivLen } = c.saInfo(h);
  const mem = new Uint8Array(BURST * STRIDE);
  const espOff = new Uint32Array(BURST).map((_, i) => i * STRIDE + 128);
  const encLen = new Uint32Array(BURST).fill(bytes);
  const seqLo = new Uint32Array(BURST), seqHi = new Uint32Array(BURST);
  const status = new Uint8Array(BURST);
  for (let i = 0; i < BURST; i++) for (let j = 0; j < bytes; j++) mem[espOff[i] + 8 + ivLen + j] = (i + j) & 0xff;
  let seq = 1;
  const encOnce = (): void => {
    for (let i = 0; i < BURST; i++) seqLo[i] = seq++;
    c.encryptBurst(h, mem, espOff, encLen, seqLo, seqHi, BURST, false);
  };
  const run = (f: () => void): number => { // ns per burst
    for (let i = 0; i < 200; i++) f(); // warm-up
    let n = 0;
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(MS) * 1_000_000n;
    let t = t0;
    while (t < end) {
      for (let i = 0; i < 64; i++) f();
      n += 64;
      t = process.hrtime.bigint();
    }
    return Number(t - t0) / n;
  };
  const enc = run(encOnce);
  // decrypt needs ciphertext each time: restore it with one copy per burst, whose cost is measured and subtracted
  encOnce();
  const saved = mem.slice();
  const copy = run(() => mem.set(saved));
  const dec = run(() => {
    mem.set(saved);
    c.decryptBurst(h, mem, espOff, encLen, seqHi, BURST, false, status);
  }) - copy;
  assert.ok(status.every((s) => s === c.STATUS_OK), 'decrypt failed during the measurement');
  const gbps = (nsPerBurst: number): number => (BURST * bytes * 8) / nsPerBurst;
  return { alg, bytes, encGbps: gbps(enc), decGbps: gbps(dec), encNsPkt: enc / BURST, decNsPkt: dec / BURST };
}

function opensslSpeed(bytes: number, aead: boolean): number | undefined {
  const args = ['speed', ...(aead ? ['-aead'] : []), '-evp', 'aes-128-gcm', '-bytes', String(bytes), '-seconds', '1', '-mr'];
  const r = childProcess.spawnSync('openssl', args, { encoding: 'utf8', timeout: 30000 });
  const m = /^\+F:\d+:AES-128-GCM:([\d.]+)/m.exec(r.stdout ?? '');
  return m ? (Number(m[1]) * 8) / 1e9 : undefined; // bytes/s -> Gbit/s
}

describe('crypto throughput (printed, not asserted)', function () {
  this.timeout(120000);

  it('AES-128-GCM and AES-128-CBC + HMAC-SHA-256-128, bursts of 32, one core', () => {
    const gcm = c.createSa({ aead: { name: 'rfc4106(gcm(aes))', keyHex: '11'.repeat(20), icvBits: 128 } });
    const cbc = c.createSa({
      enc: { name: 'cbc(aes)', keyHex: '22'.repeat(16) },
      auth: { name: 'hmac(sha256)', keyHex: '33'.repeat(32), truncBits: 128 },
    });
    const rows: Point[] = [];
    try {
      for (const bytes of [64, 512, 1400]) {
        rows.push(measure('AES-128-GCM', gcm, bytes));
        rows.push(measure('AES-128-CBC+HMAC-SHA256', cbc, Math.ceil(bytes / 16) * 16));
      }
    } finally {
      c.destroySa(gcm);
      c.destroySa(cbc);
    }
    const f = (x: number, d = 2): string => x.toFixed(d).padStart(7);
    const lines = ['', `    lfp_crypto, burst ${BURST}, ${MS} ms per point (Gbit/s of encLen; ns per packet)`,
      '    algorithm                  encLen   encrypt Gbit/s  ns/pkt   decrypt Gbit/s  ns/pkt'];
    for (const r of rows) {
      lines.push(`    ${r.alg.padEnd(26)} ${String(r.bytes).padStart(6)}   ${f(r.encGbps)}        ${f(r.encNsPkt, 0)}   ` +
        `${f(r.decGbps)}        ${f(r.decNsPkt, 0)}`);
    }
    lines.push('', '    openssl speed -evp aes-128-gcm -bytes N -seconds 1 (same machine, one core)');
    for (const bytes of [64, 512, 1400]) {
      const plain = opensslSpeed(bytes, false), aead = opensslSpeed(bytes, true);
      if (plain === undefined) {
        lines.push('    (openssl command not available)');
        break;
      }
      lines.push(`    ${String(bytes).padStart(6)} bytes: ${f(plain)} Gbit/s (update only)   ` +
        `${aead === undefined ? '-' : f(aead)} Gbit/s (-aead: init+AAD+update+final per buffer)`);
    }
    console.log(lines.join('\n'));
  });
});
