// native/crypto (lfp_crypto addon), ESP behaviour: round trips of every payload size, tampering, ESN, bad lengths,
// argument checking, SA lifecycle, CBC IVs, no allocation on the burst path (tools/alloc_check), per-thread SAs.

import * as assert from 'assert';
import * as childProcess from 'child_process';
import * as fs from 'fs';
import * as nodeCrypto from 'crypto';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as c from '../../native/crypto';

interface Cfg { name: string; alg: c.SaAlgorithms; integrity: boolean; deterministic: boolean }

const key = (n: number, seed = 1): string => nodeCrypto.createHash('sha512').update(`k${seed}`).digest().subarray(0, n)
  .toString('hex');

const CONFIGS: Cfg[] = [
  { name: 'AES-128-GCM, ICV 128', alg: { aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 128, iv: 'sequence' } },
    integrity: true, deterministic: true },
  { name: 'AES-256-GCM, ICV 128', alg: { aead: { name: 'rfc4106(gcm(aes))', keyHex: key(36), icvBits: 128, iv: 'sequence' } },
    integrity: true, deterministic: true },
  { name: 'AES-192-GCM, ICV 96', alg: { aead: { name: 'rfc4106(gcm(aes))', keyHex: key(28), icvBits: 96, iv: 'sequence' } },
    integrity: true, deterministic: true },
  { name: 'AES-128-GCM, ICV 64', alg: { aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 64, iv: 'sequence' } },
    integrity: true, deterministic: true },
  { name: 'AES-128-CBC + HMAC-SHA1-96',
    alg: { enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha1)', keyHex: key(20, 2), truncBits: 96 } },
    integrity: true, deterministic: false },
  { name: 'AES-128-CBC + HMAC-SHA-256-128',
    alg: { enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha256)', keyHex: key(32, 2), truncBits: 128 } },
    integrity: true, deterministic: false },
  { name: 'AES-256-CBC + HMAC-SHA-512-256',
    alg: { enc: { name: 'cbc(aes)', keyHex: key(32) }, auth: { name: 'hmac(sha512)', keyHex: key(64, 2), truncBits: 256 } },
    integrity: true, deterministic: false },
  { name: 'AES-192-CBC, no integrity', alg: { enc: { name: 'cbc(aes)', keyHex: key(24) } },
    integrity: false, deterministic: false },
  { name: 'NULL + HMAC-SHA-256-128',
    alg: { enc: { name: 'ecb(cipher_null)', keyHex: '' }, auth: { name: 'hmac(sha256)', keyHex: key(32, 3), truncBits: 128 } },
    integrity: true, deterministic: true },
  { name: 'NULL + HMAC-SHA1-96',
    alg: { enc: { name: 'ecb(cipher_null)', keyHex: '' }, auth: { name: 'hmac(sha1)', keyHex: key(20, 3), truncBits: 96 } },
    integrity: true, deterministic: true },
];

/** payload || 1, 2, ... || pad length || next header, aligned to `block` (RFC 4303 §2.4). */
function withTrailer(payload: Uint8Array, block: number, nextHeader = 4): Uint8Array {
  const pad = (block - ((payload.length + 2) % block)) % block;
  const out = new Uint8Array(payload.length + pad + 2);
  out.set(payload);
  for (let i = 0; i < pad; i++) out[payload.length + i] = i + 1;
  out[payload.length + pad] = pad;
  out[payload.length + pad + 1] = nextHeader;
  return out;
}

const SPI = 0xc0ffee01;

function writeHeader(mem: Uint8Array, off: number, spi: number, sn: number): void {
  const dv = new DataView(mem.buffer, mem.byteOffset);
  dv.setUint32(off, spi);
  dv.setUint32(off + 4, sn);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

describe('crypto ESP: round trips, tampering, ESN', function () {
  this.timeout(60000);
  after(() => assert.strictEqual(c.liveSas(), 0, 'SAs leaked'));

  for (const cfg of CONFIGS) {
    describe(cfg.name, () => {
      let h = 0;
      let info: c.SaInfo;
      before(() => {
        h = c.createSa(cfg.alg);
        info = c.saInfo(h);
      });
      after(() => c.destroySa(h));

      it('every payload size 0..1500 survives encrypt + decrypt (bursts up to 256, ESN on and off)', () => {
        const N = 1501, STRIDE = 2048;
        const mem = new Uint8Array(N * STRIDE);
        const espOff = new Uint32Array(N), encLen = new Uint32Array(N), seqLo = new Uint32Array(N);
        const seqHi = new Uint32Array(N);
        const plains: Uint8Array[] = [];
        for (let i = 0; i < N; i++) {
          espOff[i] = i * STRIDE + 64 + (i % 7); // odd offsets too: the pool's offsets are arbitrary
          const plain = withTrailer(nodeCrypto.randomBytes(i), info.blockSize);
          plains.push(plain);
          encLen[i] = plain.length;
          seqLo[i] = (0xfffffff0 + i) >>> 0; // wraps inside the run
          seqHi[i] = i < 16 ? 6 : 7;
          writeHeader(mem, espOff[i], SPI, 0);
          mem.set(plain, espOff[i] + 8 + info.ivLen);
        }
        const status = new Uint8Array(N).fill(9);
        // bursts of varied size (beyond the 64-IV chunk of the CBC generator), ESN alternating per burst
        const sizes = [1, 256, 65, 200, 0, 64, 129, 256, 256, 256];
        let at = 0, b = 0;
        const bursts: Array<[number, number, boolean]> = [];
        while (at < N) {
          const n = Math.min(sizes[b % sizes.length], N - at);
          bursts.push([at, n, b % 2 === 0]);
          at += n;
          b++;
        }
        const sub = <T extends Uint32Array | Uint8Array>(a: T, s: number, n: number): T => a.subarray(s, s + n) as T;
        for (const [s, n, esn] of bursts) {
          c.encryptBurst(h, mem, sub(espOff, s, n), sub(encLen, s, n), sub(seqLo, s, n), sub(seqHi, s, n), n, esn);
        }
        for (let i = 0; i < N; i++) {
          const dv = new DataView(mem.buffer, espOff[i]);
          assert.strictEqual(dv.getUint32(0), SPI);
          assert.strictEqual(dv.getUint32(4), seqLo[i], 'SN field = seqLo');
          if (info.ivLen === 8) { // GCM: explicit IV = 64-bit sequence number
            assert.strictEqual(dv.getUint32(8), seqHi[i]);
            assert.strictEqual(dv.getUint32(12), seqLo[i]);
          }
          const ct = mem.subarray(espOff[i] + 8 + info.ivLen, espOff[i] + 8 + info.ivLen + encLen[i]);
          if (!cfg.alg.enc || cfg.alg.enc.name !== 'ecb(cipher_null)') {
            if (encLen[i] >= 16) assert.ok(!sameBytes(ct, plains[i]), `packet ${i} not encrypted`);
          } else {
            assert.ok(sameBytes(ct, plains[i]), 'NULL encryption leaves the payload as is');
          }
        }
        for (const [s, n, esn] of bursts) {
          c.decryptBurst(h, mem, sub(espOff, s, n), sub(encLen, s, n), sub(seqHi, s, n), n, esn, sub(status, s, n));
        }
        for (let i = 0; i < N; i++) {
          assert.strictEqual(status[i], c.STATUS_OK, `packet ${i}`);
          const p = mem.subarray(espOff[i] + 8 + info.ivLen, espOff[i] + 8 + info.ivLen + encLen[i]);
          assert.ok(sameBytes(p, plains[i]), `packet ${i} (payload ${i} bytes) not restored`);
        }
      });

      it('a flipped bit anywhere in header, IV, ciphertext or ICV gives status 1 and leaves the packet as it was', () => {
        const plain = withTrailer(nodeCrypto.randomBytes(37), info.blockSize);
        const total = 8 + info.ivLen + plain.length + info.icvLen;
        const STRIDE = 128;
        // reference packet
        const ref = new Uint8Array(STRIDE);
        writeHeader(ref, 0, SPI, 0);
        ref.set(plain, 8 + info.ivLen);
        c.encryptBurst(h, ref, new Uint32Array([0]), new Uint32Array([plain.length]), new Uint32Array([1234]),
          new Uint32Array([5]), 1, true);
        const bits = total * 8;
        const mem = new Uint8Array(bits * STRIDE);
        const espOff = new Uint32Array(bits).map((_, i) => i * STRIDE);
        for (let i = 0; i < bits; i++) {
          mem.set(ref, espOff[i]);
          mem[espOff[i] + (i >> 3)] ^= 1 << (i & 7);
        }
        const before = mem.slice();
        const status = new Uint8Array(bits).fill(9);
        c.decryptBurst(h, mem, espOff, new Uint32Array(bits).fill(plain.length), new Uint32Array(bits).fill(5), bits, true,
          status);
        if (cfg.integrity) {
          const bad = [...status].map((s, i) => [s, i]).filter(([s]) => s !== c.STATUS_BAD_ICV);
          assert.deepStrictEqual(bad, [], 'every damaged packet must be refused');
          assert.ok(sameBytes(mem, before), 'refused packets must be left untouched');
        } else {
          assert.ok([...status].every((s) => s === c.STATUS_OK), 'no ICV: nothing to verify');
        }
        // and the intact packet passes
        const st = new Uint8Array(1);
        c.decryptBurst(h, ref, new Uint32Array([0]), new Uint32Array([plain.length]), new Uint32Array([5]), 1, true, st);
        assert.strictEqual(st[0], c.STATUS_OK);
        assert.ok(sameBytes(ref.subarray(8 + info.ivLen, 8 + info.ivLen + plain.length), plain));
      });

      it('ESN: both sides must agree on the flag and on the high bits', function () {
        if (!cfg.integrity) this.skip();
        const plain = withTrailer(nodeCrypto.randomBytes(100), info.blockSize);
        const mk = (esn: boolean, hi: number): Uint8Array => {
          const m = new Uint8Array(256);
          writeHeader(m, 0, SPI, 0);
          m.set(plain, 8 + info.ivLen);
          c.encryptBurst(h, m, new Uint32Array([0]), new Uint32Array([plain.length]), new Uint32Array([77]),
            new Uint32Array([hi]), 1, esn);
          return m;
        };
        const dec = (m: Uint8Array, esn: boolean, hi: number): number => {
          const st = new Uint8Array(1);
          c.decryptBurst(h, m.slice(), new Uint32Array([0]), new Uint32Array([plain.length]), new Uint32Array([hi]), 1, esn,
            st);
          return st[0];
        };
        const on = mk(true, 3), off = mk(false, 3), on0 = mk(true, 0);
        assert.strictEqual(dec(on, true, 3), c.STATUS_OK);
        assert.strictEqual(dec(off, false, 3), c.STATUS_OK);
        assert.strictEqual(dec(off, false, 99), c.STATUS_OK, 'without ESN the high bits are not authenticated');
        assert.strictEqual(dec(on, false, 3), c.STATUS_BAD_ICV);
        assert.strictEqual(dec(off, true, 3), c.STATUS_BAD_ICV);
        assert.strictEqual(dec(on, true, 4), c.STATUS_BAD_ICV, 'wrong ESN high bits');
        assert.strictEqual(dec(on0, true, 0), c.STATUS_OK);
        assert.strictEqual(dec(on0, false, 0), c.STATUS_BAD_ICV, 'ESN with high bits 0 still differs from no ESN');
        if (cfg.deterministic) {
          const icv = (m: Uint8Array): string => Buffer.from(m.subarray(8 + info.ivLen + plain.length,
            8 + info.ivLen + plain.length + info.icvLen)).toString('hex');
          assert.notStrictEqual(icv(on), icv(off), 'ESN on/off must change the ICV');
          assert.notStrictEqual(icv(on), icv(mk(true, 4)), 'the high bits must change the ICV');
          assert.ok(sameBytes(on.subarray(0, 8 + info.ivLen + plain.length), off.subarray(0, 8 + info.ivLen + plain.length)),
            'only the ICV differs');
        }
      });

      it('unusable lengths give status 2 and leave the packet untouched', () => {
        const mem = new Uint8Array(4096).map((_, i) => i * 31);
        const before = mem.slice();
        const cases: Array<[number, number]> = [
          [100, 1], // shorter than the trailer
          [4000, 200], // runs past the end of mem
          [5000, 16], // starts past the end
          [0xfffffff0, 16], // offset overflow
          [100, 0xffffffff], // length overflow
        ];
        if (info.blockSize === 16) cases.push([100, 17], [100, 0], [100, 15]);
        const n = cases.length;
        const status = new Uint8Array(n).fill(9);
        c.decryptBurst(h, mem, new Uint32Array(cases.map((x) => x[0])), new Uint32Array(cases.map((x) => x[1])),
          new Uint32Array(n), n, false, status);
        assert.deepStrictEqual([...status], new Array(n).fill(c.STATUS_BAD_LENGTH));
        assert.ok(sameBytes(mem, before));
      });

      it('encryptBurst refuses a bad layout before touching anything', () => {
        const mem = new Uint8Array(1024);
        const good = 8 * info.blockSize;
        const bad = info.blockSize === 16 ? 20 : 6;
        const off = new Uint32Array([0, 256, 512]);
        const lo = new Uint32Array(3), hi = new Uint32Array(3);
        assert.throws(() => c.encryptBurst(h, mem, off, new Uint32Array([good, good, bad]), lo, hi, 3, false),
          (e: Error & { code?: string }) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE' &&
            /packet 2: espOff 512, encLen \d+ is not a positive multiple/.test(e.message));
        assert.throws(() => c.encryptBurst(h, mem, off, new Uint32Array([good, good, 0]), lo, hi, 3, false), RangeError);
        assert.throws(() => c.encryptBurst(h, mem, new Uint32Array([0, 256, 1000]), new Uint32Array([good, good, good]),
          lo, hi, 3, false), /beyond the end of mem/);
        assert.ok(mem.every((x) => x === 0), 'nothing written');
      });
    });
  }
});

describe('crypto ESP: SAs and arguments', () => {
  after(() => assert.strictEqual(c.liveSas(), 0, 'SAs leaked'));

  const gcm = (): number => c.createSa({ aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 128 } });
  const SECRET = 'deadbeefcafebabe0badf00d'; // must never appear in a message

  it('saInfo gives the layout of each algorithm', () => {
    const cases: Array<[c.SaAlgorithms, c.SaInfo]> = [
      [{ aead: { name: 'rfc4106(gcm(aes))', keyHex: key(36), icvBits: 96 } }, { ivLen: 8, icvLen: 12, blockSize: 4 }],
      [{ enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha1)', keyHex: key(20), truncBits: 96 } },
        { ivLen: 16, icvLen: 12, blockSize: 16 }],
      [{ enc: { name: 'ecb(cipher_null)', keyHex: '' }, auth: { name: 'hmac(sha512)', keyHex: key(64), truncBits: 256 } },
        { ivLen: 0, icvLen: 32, blockSize: 4 }],
      [{ enc: { name: 'ecb(cipher_null)', keyHex: '' } }, { ivLen: 0, icvLen: 0, blockSize: 4 }],
    ];
    for (const [alg, want] of cases) {
      const h = c.createSa(alg);
      assert.deepStrictEqual(c.saInfo(h), want);
      c.destroySa(h);
    }
  });

  it('unsupported algorithms, key sizes and lengths are refused with a clear message and no key material', () => {
    const bad: Array<[c.SaAlgorithms, RegExp]> = [
      [{ aead: { name: 'rfc4309(ccm(aes))' as never, keyHex: SECRET, icvBits: 128 } }, /unsupported AEAD algorithm "rfc4309\(ccm\(aes\)\)"/],
      [{ aead: { name: 'rfc4106(gcm(aes))', keyHex: SECRET + SECRET.slice(0, 8), icvBits: 128 } }, /must be 20, 28 or 36 bytes .* got 16/],
      [{ aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 32 as never } }, /icvBits must be 64, 96 or 128, got 32/],
      [{ aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 128 }, auth: { name: 'hmac(sha1)', keyHex: key(20), truncBits: 96 } },
        /cannot also have/],
      [{ enc: { name: 'cbc(des3_ede)' as never, keyHex: SECRET } }, /unsupported encryption algorithm "cbc\(des3_ede\)"/],
      [{ enc: { name: 'cbc(aes)', keyHex: SECRET } }, /cbc\(aes\) key must be 16, 24 or 32 bytes, got 12/],
      [{ enc: { name: 'ecb(cipher_null)', keyHex: SECRET } }, /takes an empty key, got 12 bytes/],
      [{ enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(md5)' as never, keyHex: SECRET, truncBits: 96 } },
        /unsupported authentication algorithm "hmac\(md5\)"/],
      [{ enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha256)', keyHex: SECRET, truncBits: 100 } },
        /truncBits must be a multiple of 8 from 64 to 256, got 100/],
      [{ enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha1)', keyHex: SECRET, truncBits: 192 } },
        /from 64 to 160, got 192/],
      [{ auth: { name: 'hmac(sha1)', keyHex: SECRET, truncBits: 96 } }, /needs alg.aead or alg.enc/],
      [{}, /needs alg.aead or alg.enc/],
      [{ enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha1)', keyHex: 'ab'.repeat(1025), truncBits: 96 } },
        /longer than 1024 bytes/],
    ];
    for (const [alg, re] of bad) {
      assert.throws(() => c.createSa(alg), (e: Error & { code?: string }) => {
        assert.match(e.message, re);
        assert.strictEqual(e.code, 'ERR_LFP_CRYPTO_UNSUPPORTED', e.message);
        assert.ok(!e.message.includes(SECRET) && !e.message.includes(SECRET.slice(0, 8)), `key in message: ${e.message}`);
        return true;
      });
    }
    const typeErrors: Array<[unknown, RegExp]> = [
      [undefined, /alg must be an object/],
      [{ enc: { name: 'cbc(aes)', keyHex: SECRET + 'x' } }, /odd number of hex digits \(25\)/],
      [{ enc: { name: 'cbc(aes)', keyHex: SECRET.slice(0, 30) + 'zz' } }, /not a hex digit/],
      [{ enc: { name: 'cbc(aes)', keyHex: 1234 } }, /keyHex must be a string/],
      [{ enc: { name: 7, keyHex: '' } }, /alg.enc.name must be a string/],
      [{ aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20) } }, /icvBits must be a number/],
    ];
    for (const [alg, re] of typeErrors) {
      assert.throws(() => c.createSa(alg as c.SaAlgorithms), (e: Error & { code?: string }) => {
        assert.ok(e instanceof TypeError, e.message);
        assert.match(e.message, re);
        assert.ok(!e.message.includes(SECRET.slice(0, 8)), `key in message: ${e.message}`);
        return true;
      });
    }
    assert.strictEqual(c.liveSas(), 0);
  });

  it('handles: unique, invalid after destroySa, counted by liveSas', () => {
    const a = gcm(), b = gcm();
    assert.notStrictEqual(a, b);
    assert.ok(a > 0 && b > 0);
    assert.strictEqual(c.liveSas(), 2);
    c.destroySa(a);
    assert.strictEqual(c.liveSas(), 1);
    for (const h of [a, 0, -1, 1.5, 2 ** 40]) {
      assert.throws(() => c.saInfo(h), (e: Error & { code?: string }) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE');
    }
    assert.throws(() => c.destroySa(a), RangeError);
    assert.throws(() => c.saInfo('1' as never), TypeError);
    c.destroySa(b);
    assert.strictEqual(c.liveSas(), 0);
  });

  it('burst arguments are checked (types, count against every array)', () => {
    const h = gcm();
    try {
      const mem = new Uint8Array(1024);
      const u32 = (n: number): Uint32Array => new Uint32Array(n);
      const enc = (...a: unknown[]): void => (c.encryptBurst as (...x: unknown[]) => void)(...a);
      const dec = (...a: unknown[]): void => (c.decryptBurst as (...x: unknown[]) => void)(...a);
      assert.throws(() => enc(h, [1, 2], u32(1), u32(1), u32(1), u32(1), 1, false), /mem must be a Uint8Array/);
      assert.throws(() => enc(h, mem, new Int32Array(1), u32(1), u32(1), u32(1), 1, false), /espOff must be a Uint32Array/);
      assert.throws(() => enc(h, mem, u32(2), u32(2), u32(1), u32(2), 2, false), /count must be an integer from 0 to 1/);
      assert.throws(() => enc(h, mem, u32(2), u32(2), u32(2), u32(2), -1, false), RangeError);
      assert.throws(() => enc(h, mem, u32(2), u32(2), u32(2), u32(2), 1, 1), /esn must be a boolean/);
      assert.throws(() => dec(h, mem, u32(2), u32(2), u32(2), 2, false, new Uint8Array(1)), /count must be an integer from 0 to 1/);
      assert.throws(() => dec(h, mem, u32(2), u32(2), u32(2), 2, false, u32(2)), /status must be a Uint8Array/);
      // count 0 is a no-op
      c.encryptBurst(h, mem, u32(0), u32(0), u32(0), u32(0), 0, false);
      c.decryptBurst(h, mem, u32(0), u32(0), u32(0), 0, false, new Uint8Array(0));
      // a Buffer (a Uint8Array) works as mem, at its own offset
      const buf = Buffer.alloc(512);
      c.encryptBurst(h, buf.subarray(100), new Uint32Array([0]), new Uint32Array([16]), new Uint32Array([9]),
        new Uint32Array([0]), 1, false);
      assert.strictEqual(buf.readUInt32BE(104), 9);
      assert.ok(buf.subarray(0, 100).every((x) => x === 0));
    } finally {
      c.destroySa(h);
    }
  });

  it('CBC IVs are fresh and unpredictable-looking (distinct across packets, bursts and SAs)', () => {
    const alg: c.SaAlgorithms = { enc: { name: 'cbc(aes)', keyHex: key(16) } };
    const h1 = c.createSa(alg), h2 = c.createSa(alg);
    try {
      const N = 256, ROUNDS = 20;
      const mem = new Uint8Array(N * 64);
      const off = new Uint32Array(N).map((_, i) => i * 64);
      const len = new Uint32Array(N).fill(16);
      const seen = new Set<string>();
      let ones = 0;
      for (let r = 0; r < ROUNDS; r++) {
        for (const h of [h1, h2]) {
          c.encryptBurst(h, mem, off, len, new Uint32Array(N), new Uint32Array(N), N, false);
          for (let i = 0; i < N; i++) {
            const iv = mem.subarray(off[i] + 8, off[i] + 24);
            seen.add(Buffer.from(iv).toString('hex'));
            for (const x of iv) for (let b = x; b; b &= b - 1) ones++;
          }
        }
      }
      assert.strictEqual(seen.size, N * ROUNDS * 2, 'an IV repeated');
      const bits = N * ROUNDS * 2 * 128;
      assert.ok(Math.abs(ones / bits - 0.5) < 0.01, `bit balance ${ones / bits}`);
    } finally {
      c.destroySa(h1);
      c.destroySa(h2);
    }
  });

  it('GCM explicit IVs (default "masked"): sequence number XOR a random per-SA value; two SAs with one key never share a nonce', () => {
    const alg: c.SaAlgorithms = { aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 128 } };
    const h1 = c.createSa(alg), h2 = c.createSa(alg);
    try {
      const N = 64;
      const ivs = (h: number): Buffer[] => {
        const mem = new Uint8Array(N * 64);
        const off = new Uint32Array(N).map((_, i) => i * 64);
        const seqLo = new Uint32Array(N).map((_, i) => i + 1);
        c.encryptBurst(h, mem, off, new Uint32Array(N).fill(16), seqLo, new Uint32Array(N), N, false);
        return Array.from({ length: N }, (_, i) => Buffer.from(mem.subarray(off[i] + 8, off[i] + 16)));
      };
      const a = ivs(h1), b = ivs(h2);
      const mask = (iv: Buffer, seq: number): string => {
        const m = Buffer.from(iv);
        m.writeUInt32BE((m.readUInt32BE(4) ^ seq) >>> 0, 4);
        return m.toString('hex');
      };
      // one mask per SA (IV XOR sequence number constant), different between the SAs, not zero
      assert.strictEqual(new Set(a.map((iv, i) => mask(iv, i + 1))).size, 1);
      assert.strictEqual(new Set(b.map((iv, i) => mask(iv, i + 1))).size, 1);
      assert.notStrictEqual(mask(a[0], 1), mask(b[0], 1));
      assert.notStrictEqual(mask(a[0], 1), '0000000000000000');
      const all = new Set([...a, ...b].map((x) => x.toString('hex')));
      assert.strictEqual(all.size, 2 * N, 'a nonce repeated');
      assert.throws(() => c.createSa({ aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 128, iv: 'x' as 'masked' } }), /masked.*sequence/);
    } finally {
      c.destroySa(h1);
      c.destroySa(h2);
    }
  });

  it('saAlgorithms() maps a mirrored kernel SA (default truncation as the kernel)', () => {
    const a = c.saAlgorithms({
      enc: { name: 'cbc(aes)', key: key(16) },
      auth: { name: 'hmac(sha256)', key: key(32) },
    });
    assert.deepStrictEqual(a, { enc: { name: 'cbc(aes)', keyHex: key(16) }, auth: { name: 'hmac(sha256)', keyHex: key(32), truncBits: 96 } });
    const g = c.saAlgorithms({ aead: { name: 'rfc4106(gcm(aes))', key: key(20), icvBits: 128 } });
    assert.deepStrictEqual(g, { aead: { name: 'rfc4106(gcm(aes))', keyHex: key(20), icvBits: 128 } });
    const h = c.createSa(g);
    c.destroySa(h);
    const h2 = c.createSa(a);
    assert.strictEqual(c.saInfo(h2).icvLen, 12);
    c.destroySa(h2);
  });

  it('SAs belong to their thread: a Worker has its own (empty) table', async () => {
    const h = gcm();
    try {
      const wrapper = path.resolve(__dirname, '../../native/crypto.js');
      const code = `
        const { parentPort, workerData } = require('worker_threads');
        const c = require(workerData.wrapper);
        const out = { live: c.liveSas() };
        try { c.saInfo(workerData.h); out.used = true; } catch (e) { out.err = e.code; }
        const mine = c.createSa({ enc: { name: 'cbc(aes)', keyHex: '00'.repeat(16) } });
        out.mine = c.liveSas();
        c.destroySa(mine);
        parentPort.postMessage(out);`;
      const res = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { wrapper, h } });
        w.once('message', resolve);
        w.once('error', reject);
      });
      assert.deepStrictEqual(res, { live: 0, err: 'ERR_OUT_OF_RANGE', mine: 1 });
      assert.strictEqual(c.liveSas(), 1);
    } finally {
      c.destroySa(h);
    }
  });

  it('no allocation on the burst path (native/crypto/build/Release/alloc_check)', function () {
    const tool = path.resolve(__dirname, '../../../native/crypto/build/Release/alloc_check');
    if (!fs.existsSync(tool)) this.skip();
    const r = childProcess.spawnSync(tool, { encoding: 'utf8', timeout: 60000 });
    assert.strictEqual(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /alloc_check: OK/);
  });
});
