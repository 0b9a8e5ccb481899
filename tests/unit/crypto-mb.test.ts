// native/crypto on intel-ipsec-mb's job API (AES-CBC / HMAC): what is specific to it, against node:crypto.
//  - bursts longer than the manager's job ring (IMB_MAX_JOBS = 256 jobs in flight; the per-thread scratch of the
//    HMACs is indexed by packet index % 256) with damaged packets (bad ICV, bad length) spread over it: per-packet
//    status in the right place, refused packets (decrypted by the chained job, then encrypted again) left byte for
//    byte as received;
//  - packets the job API refuses (more than 65534 bytes to hash or to CBC-encrypt) go through OpenSSL, mixed in a
//    burst with ordinary ones: same bytes, same checks;
//  - kat.hmac / kat.cbc on the job path and on the OpenSSL path (empty and > 65534-byte inputs).

import * as assert from 'assert';
import * as nodeCrypto from 'crypto';
import * as c from '../../native/crypto';

const be32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };

function trailer(payload: Buffer, block: number): Buffer {
  const pad = (block - ((payload.length + 2) % block)) % block;
  const t = Buffer.alloc(pad + 2);
  for (let i = 0; i < pad; i++) t[i] = i + 1;
  t[pad] = pad;
  t[pad + 1] = 4;
  return Buffer.concat([payload, t]);
}

interface Case { encKey: number; auth?: 'sha1' | 'sha256' | 'sha512'; authKey: number; trunc: number }
const CASES: Case[] = [
  { encKey: 16, auth: 'sha1', authKey: 20, trunc: 96 },
  { encKey: 16, auth: 'sha256', authKey: 32, trunc: 128 },
  { encKey: 24, auth: 'sha256', authKey: 100, trunc: 96 }, // key longer than the block: hashed first
  { encKey: 32, auth: 'sha512', authKey: 64, trunc: 256 },
  { encKey: 32, auth: 'sha512', authKey: 200, trunc: 160 },
  { encKey: 0, auth: 'sha1', authKey: 20, trunc: 160 }, // ecb(cipher_null)
  { encKey: 32, authKey: 0, trunc: 0 }, // no integrity
];

const caseName = (cs: Case): string =>
  `${cs.encKey ? `AES-${cs.encKey * 8}-CBC` : 'NULL'}${cs.auth ? ` + HMAC-${cs.auth}-${cs.trunc} (key ${cs.authKey} B)` : ''}`;

function makeSa(cs: Case) {
  const ek = nodeCrypto.randomBytes(cs.encKey), ak = nodeCrypto.randomBytes(cs.authKey);
  const alg: c.SaAlgorithms = {
    enc: cs.encKey ? { name: 'cbc(aes)', keyHex: ek.toString('hex') } : { name: 'ecb(cipher_null)', keyHex: '' },
  };
  if (cs.auth) alg.auth = { name: `hmac(${cs.auth})` as c.AuthName, keyHex: ak.toString('hex'), truncBits: cs.trunc };
  const h = c.createSa(alg);
  const info = c.saInfo(h);
  const cipher = `aes-${cs.encKey * 8}-cbc`;
  const mac = (hdr: Buffer, iv: Buffer, ct: Buffer, hi: number, esn: boolean): Buffer => {
    const m = nodeCrypto.createHmac(cs.auth!, ak).update(hdr).update(iv).update(ct);
    if (esn) m.update(be32(hi));
    return m.digest().subarray(0, info.icvLen);
  };
  /** A whole ESP packet (header, IV, ciphertext, ICV) built by node:crypto. */
  const build = (spi: number, lo: number, hi: number, plain: Buffer, esn: boolean): Buffer => {
    const hdr = Buffer.concat([be32(spi), be32(lo)]);
    const iv = nodeCrypto.randomBytes(info.ivLen);
    let ct = plain;
    if (cs.encKey) {
      const e = nodeCrypto.createCipheriv(cipher, ek, iv).setAutoPadding(false);
      ct = Buffer.concat([e.update(plain), e.final()]);
    }
    return Buffer.concat([hdr, iv, ct, cs.auth ? mac(hdr, iv, ct, hi, esn) : Buffer.alloc(0)]);
  };
  /** node:crypto opens a packet made by encryptBurst: checks its ICV, returns the plaintext. */
  const open = (pkt: Buffer, encLen: number, hi: number, esn: boolean): Buffer => {
    const hdr = pkt.subarray(0, 8), iv = pkt.subarray(8, 8 + info.ivLen);
    const ct = pkt.subarray(8 + info.ivLen, 8 + info.ivLen + encLen);
    if (cs.auth) assert.deepStrictEqual(pkt.subarray(8 + info.ivLen + encLen, 8 + info.ivLen + encLen + info.icvLen),
      mac(hdr, iv, ct, hi, esn), 'ICV');
    if (!cs.encKey) return Buffer.from(ct);
    const d = nodeCrypto.createDecipheriv(cipher, ek, iv).setAutoPadding(false);
    return Buffer.concat([d.update(ct), d.final()]);
  };
  return { h, info, build, open };
}

describe('crypto on intel-ipsec-mb job API: chunks, damaged packets, oversized packets (vs node:crypto)', () => {
  after(() => assert.strictEqual(c.liveSas(), 0));

  for (const cs of CASES) {
    for (const esn of [false, true]) {
      it(`${caseName(cs)}, ESN ${esn ? 'on' : 'off'}: 600-packet burst with damaged packets across the job ring`, () => {
        const sa = makeSa(cs);
        const { ivLen, icvLen, blockSize } = sa.info;
        const N = 600, STRIDE = 1700;
        try {
          // Encrypt: node opens every packet (the job ring wraps twice: packets 0-255, 256-511, 512-599).
          const mem = new Uint8Array(N * STRIDE);
          const espOff = new Uint32Array(N), encLen = new Uint32Array(N), lo = new Uint32Array(N), hi = new Uint32Array(N);
          const plains: Buffer[] = [];
          for (let i = 0; i < N; i++) {
            const p = trailer(nodeCrypto.randomBytes(nodeCrypto.randomInt(0, 1500)), blockSize);
            plains.push(p);
            espOff[i] = i * STRIDE + (i % 5);
            encLen[i] = p.length;
            lo[i] = nodeCrypto.randomInt(0, 2 ** 32);
            hi[i] = nodeCrypto.randomInt(0, 2 ** 32);
            mem.set(be32(0x2000 + i), espOff[i]);
            mem.set(p, espOff[i] + 8 + ivLen);
          }
          c.encryptBurst(sa.h, mem, espOff, encLen, lo, hi, N, esn);
          for (let i = 0; i < N; i++) {
            const pkt = Buffer.from(mem.buffer, espOff[i], 8 + ivLen + encLen[i] + icvLen);
            assert.deepStrictEqual(pkt.subarray(0, 8), Buffer.concat([be32(0x2000 + i), be32(lo[i])]), `packet ${i}: header`);
            assert.deepStrictEqual(sa.open(pkt, encLen[i], hi[i], esn), plains[i], `packet ${i}: plaintext`);
          }
          // Decrypt node's packets, some damaged: a flipped bit (ICV failure with integrity), a bad length.
          const mem2 = new Uint8Array(N * STRIDE);
          const flip = new Set([0, 63, 64, 65, 127, 128, 150, 191, 192, 199, 255, 256, 257, 400, 511, 512, 513, 599]);
          const badLen = new Set([1, 66, 129, 198, 254, 258, 510, 598]);
          for (let i = 0; i < N; i++) {
            const pkt = sa.build(0x3000 + i, lo[i], hi[i], plains[i], esn);
            if (flip.has(i)) pkt[nodeCrypto.randomInt(0, pkt.length)] ^= 1 << nodeCrypto.randomInt(0, 8);
            mem2.set(pkt, espOff[i]);
          }
          const len2 = Uint32Array.from(encLen);
          for (const i of badLen) len2[i] = cs.encKey ? encLen[i] + 1 : 1; // CBC: not whole blocks; NULL: < 2 bytes
          const before = Uint8Array.from(mem2);
          const st = new Uint8Array(N).fill(9);
          c.decryptBurst(sa.h, mem2, espOff, len2, hi, N, esn, st);
          for (let i = 0; i < N; i++) {
            const at = (m: Uint8Array) => Buffer.from(m.buffer, espOff[i], 8 + ivLen + encLen[i] + icvLen);
            if (badLen.has(i)) {
              assert.strictEqual(st[i], c.STATUS_BAD_LENGTH, `packet ${i}`);
              assert.deepStrictEqual(at(mem2), at(before), `packet ${i}: untouched`);
            } else if (flip.has(i) && cs.auth) {
              assert.strictEqual(st[i], c.STATUS_BAD_ICV, `packet ${i}`);
              assert.deepStrictEqual(at(mem2), at(before), `packet ${i}: left as received`);
            } else {
              assert.strictEqual(st[i], c.STATUS_OK, `packet ${i}`);
              if (!flip.has(i)) assert.deepStrictEqual(at(mem2).subarray(8 + ivLen, 8 + ivLen + encLen[i]), plains[i], `packet ${i}`);
            }
          }
        } finally {
          c.destroySa(sa.h);
        }
      });
    }
  }

  for (const cs of [CASES[1], CASES[3], CASES[5], CASES[6]]) {
    it(`${caseName(cs)}: packets of more than 65534 bytes (OpenSSL path) mixed with ordinary ones, ESN off and on`, () => {
      const sa = makeSa(cs);
      const { ivLen, icvLen, blockSize } = sa.info;
      // Around the job API's limit: hash length 8 + ivLen + encLen (+ 4 with ESN) <= 65534, CBC-encrypt length <= 65534.
      const sizes = [100, 65480, 65500, 65510, 65520, 65530, 65534, 65600, 70000, 1400, 80000, 64];
      const N = sizes.length, STRIDE = 81000;
      try {
        for (const esn of [false, true]) {
          const mem = new Uint8Array(N * STRIDE);
          const espOff = new Uint32Array(N), encLen = new Uint32Array(N), lo = new Uint32Array(N), hi = new Uint32Array(N);
          const plains: Buffer[] = [];
          sizes.forEach((s, i) => {
            const p = trailer(nodeCrypto.randomBytes(s), blockSize);
            plains.push(p);
            espOff[i] = i * STRIDE + 1;
            encLen[i] = p.length;
            lo[i] = 1000 + i;
            hi[i] = 7 + i;
            mem.set(be32(0x4000 + i), espOff[i]);
            mem.set(p, espOff[i] + 8 + ivLen);
          });
          c.encryptBurst(sa.h, mem, espOff, encLen, lo, hi, N, esn);
          for (let i = 0; i < N; i++) {
            const pkt = Buffer.from(mem.buffer, espOff[i], 8 + ivLen + encLen[i] + icvLen);
            assert.deepStrictEqual(sa.open(pkt, encLen[i], hi[i], esn), plains[i], `packet ${i} (${encLen[i]} B)`);
          }
          const mem2 = new Uint8Array(N * STRIDE);
          for (let i = 0; i < N; i++) mem2.set(sa.build(0x5000 + i, lo[i], hi[i], plains[i], esn), espOff[i]);
          const damaged = [7, 8]; // 65600 and 70000 bytes: the OpenSSL path must refuse them too
          for (const i of damaged) mem2[espOff[i] + 8 + ivLen + 1000] ^= 0x10;
          const before = Uint8Array.from(mem2);
          const st = new Uint8Array(N).fill(9);
          c.decryptBurst(sa.h, mem2, espOff, encLen, hi, N, esn, st);
          for (let i = 0; i < N; i++) {
            const at = (m: Uint8Array) => Buffer.from(m.buffer, espOff[i], 8 + ivLen + encLen[i] + icvLen);
            if (damaged.includes(i) && cs.auth) {
              assert.strictEqual(st[i], c.STATUS_BAD_ICV, `packet ${i}`);
              assert.deepStrictEqual(at(mem2), at(before), `packet ${i}: left as received`);
            } else {
              assert.strictEqual(st[i], c.STATUS_OK, `packet ${i} (${encLen[i]} B)`);
              if (!damaged.includes(i)) assert.deepStrictEqual(at(mem2).subarray(8 + ivLen, 8 + ivLen + encLen[i]), plains[i], `packet ${i}`);
            }
          }
        }
      } finally {
        c.destroySa(sa.h);
      }
    });
  }

  it('kat.hmac and kat.cbc: job path and OpenSSL path (empty input, more than 65534 bytes) agree with node:crypto', () => {
    for (const [auth, dlen] of [['sha1', 20], ['sha256', 32], ['sha512', 64]] as const) {
      for (const keyLen of [0, 16, 64, 129, 200]) {
        const ak = nodeCrypto.randomBytes(keyLen);
        const h = c.createSa({ enc: { name: 'ecb(cipher_null)', keyHex: '' },
          auth: { name: `hmac(${auth})`, keyHex: ak.toString('hex'), truncBits: 96 } });
        try {
          for (const n of [0, 1, 55, 56, 64, 111, 112, 128, 1000, 65534, 65535, 70000]) {
            const data = nodeCrypto.randomBytes(n);
            const out = new Uint8Array(dlen);
            assert.ok(c.kat.hmac(h, data, out));
            assert.deepStrictEqual(Buffer.from(out), nodeCrypto.createHmac(auth, ak).update(data).digest(), `${auth} key ${keyLen} data ${n}`);
          }
        } finally {
          c.destroySa(h);
        }
      }
    }
    for (const keyLen of [16, 24, 32]) {
      const k = nodeCrypto.randomBytes(keyLen);
      const h = c.createSa({ enc: { name: 'cbc(aes)', keyHex: k.toString('hex') } });
      try {
        for (const n of [16, 1408, 65520, 65536, 70000]) {
          const iv = nodeCrypto.randomBytes(16), plain = nodeCrypto.randomBytes(n);
          const e = nodeCrypto.createCipheriv(`aes-${keyLen * 8}-cbc`, k, iv).setAutoPadding(false);
          const want = Buffer.concat([e.update(plain), e.final()]);
          const data = Uint8Array.from(plain);
          assert.ok(c.kat.cbc(h, true, iv, data));
          assert.deepStrictEqual(Buffer.from(data), want, `encrypt ${keyLen} ${n}`);
          assert.ok(c.kat.cbc(h, false, iv, data));
          assert.deepStrictEqual(Buffer.from(data), plain, `decrypt ${keyLen} ${n}`);
        }
      } finally {
        c.destroySa(h);
      }
    }
  });

  it('CBC IVs are E_K(N), N a per-SA 128-bit counter from a random start (NIST SP 800-38A appendix C), also on the OpenSSL path', () => {
    for (const keyLen of [16, 32]) {
      const k = nodeCrypto.randomBytes(keyLen);
      const h = c.createSa({ enc: { name: 'cbc(aes)', keyHex: k.toString('hex') } });
      try {
        // 300 small packets (the job API), then 2 over the job API's limit (OpenSSL), then 3 small ones again
        const lens = [...Array(300).fill(32), 65520, 70000, 16, 16, 48];
        const STRIDE = 70100, n = lens.length;
        const mem = new Uint8Array(n * STRIDE);
        const espOff = Uint32Array.from(lens, (_, i) => i * STRIDE), encLen = Uint32Array.from(lens);
        const lo = Uint32Array.from(lens, (_, i) => i + 1), hi = new Uint32Array(n);
        const plains = lens.map((l, i) => { const p = nodeCrypto.randomBytes(l); mem.set(p, espOff[i] + 24); return p; });
        c.encryptBurst(h, mem, espOff, encLen, lo, hi, n, false);
        let prev = -1n;
        for (let i = 0; i < n; i++) {
          const iv = Buffer.from(mem.buffer, espOff[i] + 8, 16);
          const d = nodeCrypto.createDecipheriv(`aes-${keyLen * 8}-ecb`, k, null).setAutoPadding(false);
          const nb = Buffer.concat([d.update(iv), d.final()]);
          const nonce = (nb.readBigUInt64LE(8) << 64n) | nb.readBigUInt64LE(0); // host order: two 64-bit words, low first
          if (prev >= 0n) assert.strictEqual(nonce, (prev + 1n) % (1n << 128n), `packet ${i}: N = previous N + 1`);
          prev = nonce;
          const dc = nodeCrypto.createDecipheriv(`aes-${keyLen * 8}-cbc`, k, iv).setAutoPadding(false);
          const ct = Buffer.from(mem.buffer, espOff[i] + 24, lens[i]);
          assert.deepStrictEqual(Buffer.concat([dc.update(ct), dc.final()]), plains[i], `packet ${i}: CBC under that IV`);
        }
      } finally {
        c.destroySa(h);
      }
    }
  });
});
