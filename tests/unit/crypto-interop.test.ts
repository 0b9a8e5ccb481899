// native/crypto against Node's own crypto (an independent construction of the same ESP packets): packets encrypted by
// encryptBurst are opened with node:crypto, and packets built with node:crypto are opened by decryptBurst.
// GCM (deterministic: IV = sequence number) must also match byte for byte.

import * as assert from 'assert';
import * as nodeCrypto from 'crypto';
import * as c from '../../native/crypto';

const be32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };

function trailer(payload: Buffer, block: number): Buffer {
  const pad = (block - ((payload.length + 2) % block)) % block;
  const t = Buffer.alloc(pad + 2);
  for (let i = 0; i < pad; i++) t[i] = i + 1;
  t[pad] = pad;
  t[pad + 1] = 41; // IPv6
  return Buffer.concat([payload, t]);
}

interface Pkt { plain: Buffer; spi: number; lo: number; hi: number }

function randomPackets(n: number, block: number): Pkt[] {
  const out: Pkt[] = [];
  for (let i = 0; i < n; i++) {
    const size = i === 0 ? 0 : i === 1 ? 1500 : nodeCrypto.randomInt(0, 1501);
    out.push({ plain: trailer(nodeCrypto.randomBytes(size), block), spi: 0x1000 + i, lo: nodeCrypto.randomInt(0, 2 ** 32),
      hi: nodeCrypto.randomInt(0, 2 ** 32) });
  }
  return out;
}

/** Lays the packets out in one mem (ESP header, IV space, plaintext, ICV space); returns the burst arrays. */
function layout(pkts: Pkt[], ivLen: number, icvLen: number) {
  const STRIDE = 2048;
  const mem = new Uint8Array(pkts.length * STRIDE);
  const espOff = new Uint32Array(pkts.length), encLen = new Uint32Array(pkts.length);
  const seqLo = new Uint32Array(pkts.length), seqHi = new Uint32Array(pkts.length);
  pkts.forEach((p, i) => {
    espOff[i] = i * STRIDE + 3;
    encLen[i] = p.plain.length;
    seqLo[i] = p.lo;
    seqHi[i] = p.hi;
    mem.set(be32(p.spi), espOff[i]);
    mem.set(p.plain, espOff[i] + 8 + ivLen);
  });
  const at = (i: number, from: number, len: number): Buffer => Buffer.from(mem.buffer, espOff[i] + from, len);
  const pieces = (i: number) => ({
    hdr: at(i, 0, 8), iv: at(i, 8, ivLen), ct: at(i, 8 + ivLen, encLen[i]), icv: at(i, 8 + ivLen + encLen[i], icvLen),
  });
  return { mem, espOff, encLen, seqLo, seqHi, pieces };
}

const GCM_CASES: Array<{ keyLen: number; icvBits: 64 | 96 | 128 }> = [
  { keyLen: 16, icvBits: 128 }, { keyLen: 32, icvBits: 128 }, { keyLen: 16, icvBits: 64 }, { keyLen: 24, icvBits: 96 },
];

describe('crypto interop with node:crypto: AES-GCM', () => {
  after(() => assert.strictEqual(c.liveSas(), 0));

  for (const { keyLen, icvBits } of GCM_CASES) {
    for (const esn of [false, true]) {
      it(`AES-${keyLen * 8}-GCM, ICV ${icvBits}, ESN ${esn ? 'on' : 'off'}: same bytes both ways`, () => {
        const key = nodeCrypto.randomBytes(keyLen), salt = nodeCrypto.randomBytes(4);
        const h = c.createSa({ aead: { name: 'rfc4106(gcm(aes))', keyHex: Buffer.concat([key, salt]).toString('hex'), icvBits, iv: 'sequence' } });
        const icvLen = icvBits / 8;
        const alg = `aes-${keyLen * 8}-gcm` as nodeCrypto.CipherGCMTypes;
        const aadOf = (spi: number, hi: number, lo: number): Buffer =>
          Buffer.concat(esn ? [be32(spi), be32(hi), be32(lo)] : [be32(spi), be32(lo)]);
        try {
          // 1. encryptBurst == node encrypt with IV = seqHi:seqLo
          const pkts = randomPackets(64, 4);
          const L = layout(pkts, 8, icvLen);
          c.encryptBurst(h, L.mem, L.espOff, L.encLen, L.seqLo, L.seqHi, pkts.length, esn);
          pkts.forEach((p, i) => {
            const { hdr, iv, ct, icv } = L.pieces(i);
            assert.deepStrictEqual(hdr, Buffer.concat([be32(p.spi), be32(p.lo)]));
            assert.deepStrictEqual(iv, Buffer.concat([be32(p.hi), be32(p.lo)]));
            const ci = nodeCrypto.createCipheriv(alg, key, Buffer.concat([salt, iv]), { authTagLength: 16 });
            ci.setAAD(aadOf(p.spi, p.hi, p.lo));
            const want = Buffer.concat([ci.update(p.plain), ci.final()]);
            assert.deepStrictEqual(ct, want, `packet ${i}: ciphertext`);
            assert.deepStrictEqual(icv, ci.getAuthTag().subarray(0, icvLen), `packet ${i}: ICV`);
            const de = nodeCrypto.createDecipheriv(alg, key, Buffer.concat([salt, iv]), { authTagLength: icvLen });
            de.setAAD(aadOf(p.spi, p.hi, p.lo));
            de.setAuthTag(icv);
            assert.deepStrictEqual(Buffer.concat([de.update(ct), de.final()]), p.plain);
          });
          // 2. packets sealed by node (random explicit IVs) open with decryptBurst
          const pk2 = randomPackets(64, 4);
          const L2 = layout(pk2, 8, icvLen);
          pk2.forEach((p, i) => {
            const iv = nodeCrypto.randomBytes(8);
            const ci = nodeCrypto.createCipheriv(alg, key, Buffer.concat([salt, iv]), { authTagLength: 16 });
            ci.setAAD(aadOf(p.spi, p.hi, p.lo));
            const ct = Buffer.concat([ci.update(p.plain), ci.final()]);
            L2.mem.set(Buffer.concat([be32(p.spi), be32(p.lo), iv, ct, ci.getAuthTag().subarray(0, icvLen)]), L2.espOff[i]);
          });
          const st = new Uint8Array(pk2.length).fill(9);
          c.decryptBurst(h, L2.mem, L2.espOff, L2.encLen, L2.seqHi, pk2.length, esn, st);
          assert.ok(st.every((s) => s === c.STATUS_OK), `status ${[...st]}`);
          pk2.forEach((p, i) => assert.deepStrictEqual(L2.pieces(i).ct, p.plain));
        } finally {
          c.destroySa(h);
        }
      });
    }
  }
});

const CBC_CASES: Array<{ encKey: number; auth?: 'sha1' | 'sha256' | 'sha512'; authKey: number; trunc: number }> = [
  { encKey: 16, auth: 'sha256', authKey: 32, trunc: 128 },
  { encKey: 32, auth: 'sha1', authKey: 20, trunc: 96 },
  { encKey: 32, auth: 'sha512', authKey: 64, trunc: 256 },
  { encKey: 16, auth: 'sha256', authKey: 32, trunc: 96 }, // the kernel's default for 'auth sha256' without trunc
  { encKey: 0, auth: 'sha256', authKey: 32, trunc: 128 }, // ecb(cipher_null)
  { encKey: 24, authKey: 0, trunc: 0 }, // no integrity
];

describe('crypto interop with node:crypto: AES-CBC / NULL + HMAC', () => {
  after(() => assert.strictEqual(c.liveSas(), 0));

  for (const cs of CBC_CASES) {
    for (const esn of [false, true]) {
      const name = `${cs.encKey ? `AES-${cs.encKey * 8}-CBC` : 'NULL'}${cs.auth ? ` + HMAC-${cs.auth}-${cs.trunc}` : ''}`;
      it(`${name}, ESN ${esn ? 'on' : 'off'}: node opens ours, we open node's`, () => {
        const ek = nodeCrypto.randomBytes(cs.encKey), ak = nodeCrypto.randomBytes(cs.authKey);
        const alg: c.SaAlgorithms = {
          enc: cs.encKey ? { name: 'cbc(aes)', keyHex: ek.toString('hex') } : { name: 'ecb(cipher_null)', keyHex: '' },
        };
        if (cs.auth) alg.auth = { name: `hmac(${cs.auth})` as c.AuthName, keyHex: ak.toString('hex'), truncBits: cs.trunc };
        const h = c.createSa(alg);
        const { ivLen, icvLen, blockSize } = c.saInfo(h);
        const cipher = `aes-${cs.encKey * 8}-cbc`;
        const mac = (hdr: Buffer, iv: Buffer, ct: Buffer, hi: number): Buffer => {
          const m = nodeCrypto.createHmac(cs.auth!, ak).update(hdr).update(iv).update(ct);
          if (esn) m.update(be32(hi));
          return m.digest().subarray(0, icvLen);
        };
        try {
          const pkts = randomPackets(64, blockSize);
          const L = layout(pkts, ivLen, icvLen);
          c.encryptBurst(h, L.mem, L.espOff, L.encLen, L.seqLo, L.seqHi, pkts.length, esn);
          pkts.forEach((p, i) => {
            const { hdr, iv, ct, icv } = L.pieces(i);
            if (cs.auth) assert.deepStrictEqual(icv, mac(hdr, iv, ct, p.hi), `packet ${i}: ICV`);
            let plain = Buffer.from(ct);
            if (cs.encKey) {
              const d = nodeCrypto.createDecipheriv(cipher, ek, iv).setAutoPadding(false);
              plain = Buffer.concat([d.update(ct), d.final()]);
            }
            assert.deepStrictEqual(plain, p.plain, `packet ${i}: plaintext`);
          });
          const pk2 = randomPackets(64, blockSize);
          const L2 = layout(pk2, ivLen, icvLen);
          pk2.forEach((p, i) => {
            const hdr = Buffer.concat([be32(p.spi), be32(p.lo)]);
            const iv = nodeCrypto.randomBytes(ivLen);
            let ct = p.plain;
            if (cs.encKey) {
              const e = nodeCrypto.createCipheriv(cipher, ek, iv).setAutoPadding(false);
              ct = Buffer.concat([e.update(p.plain), e.final()]);
            }
            const icv = cs.auth ? mac(hdr, iv, ct, p.hi) : Buffer.alloc(0);
            L2.mem.set(Buffer.concat([hdr, iv, ct, icv]), L2.espOff[i]);
          });
          const st = new Uint8Array(pk2.length).fill(9);
          c.decryptBurst(h, L2.mem, L2.espOff, L2.encLen, L2.seqHi, pk2.length, esn, st);
          assert.ok(st.every((s) => s === c.STATUS_OK), `status ${[...st]}`);
          pk2.forEach((p, i) => assert.deepStrictEqual(L2.pieces(i).ct, p.plain));
        } finally {
          c.destroySa(h);
        }
      });
    }
  }
});
