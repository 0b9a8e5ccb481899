// Typed wrapper of the lfp_crypto addon (native/crypto/): ESP (RFC 4303) encryption/decryption of packets in place,
// in bursts, over any Uint8Array -- in the fast path, the mbuf pool's `mem` (docs/fastpath-design.md). Algorithms: the
// kernel's rfc4106(gcm(aes)) (AES-128/192/256, ICV 64/96/128), cbc(aes) (128/192/256), ecb(cipher_null), with
// hmac(sha1) / hmac(sha256) / hmac(sha512). See native/crypto/README.md.
//
// Keys are given once to createSa() and live only in native memory afterwards (wiped by destroySa); bursts carry
// offsets and lengths, never keys. One N-API call per burst, no allocation per packet. An SA handle belongs to the
// thread (main or Worker) that created it. The addon is loaded on first use: importing this module never fails.

import * as path from 'path';
import { AddonLoader } from './addon-loader';
import type { XfrmAlgo, XfrmSa } from '../lib/model';

/** Where the compiled addon lives, relative to this file once compiled (build/native/crypto.js). */
export const addonPath = path.resolve(__dirname, '../../native/crypto/build/Release/lfp_crypto.node');

const BUILD_HINT = 'build it with: cd native/crypto && ../../node_modules/.bin/node-gyp rebuild --nodedir=/usr';

export type AeadName = 'rfc4106(gcm(aes))';
export type EncName = 'cbc(aes)' | 'ecb(cipher_null)';
export type AuthName = 'hmac(sha1)' | 'hmac(sha256)' | 'hmac(sha512)';

/** An SA's algorithms: `aead` alone, or `enc` with an optional `auth`. Key hex strings as in lib/model (XfrmAlgo). */
export interface SaAlgorithms {
  /** keyHex: AES key (16/24/32 bytes) followed by the 4-byte salt, as the kernel stores rfc4106 keys. */
  aead?: {
    name: AeadName; keyHex: string; icvBits: 64 | 96 | 128;
    /**
     * Explicit IV of the packets this SA seals: 'masked' (default, as Linux's seqiv) = the 64-bit sequence
     * number XOR a random per-SA value, so a numbering restarted under the same key repeats no nonce;
     * 'sequence' = the sequence number itself (deterministic output, for known-answer tests).
     */
    iv?: 'masked' | 'sequence';
  };
  /** keyHex: 16/24/32 bytes for cbc(aes); '' for ecb(cipher_null). */
  enc?: { name: EncName; keyHex: string };
  /** truncBits: ICV length, a multiple of 8 from 64 to the digest size (RFC 2404: 96; RFC 4868: 128 / 256). */
  auth?: { name: AuthName; keyHex: string; truncBits: number };
}

/** What the caller needs to lay out an ESP packet for this SA. */
export interface SaInfo {
  /** Bytes of IV after the ESP header: GCM 8, CBC 16, NULL 0. */
  ivLen: number;
  /** Bytes of ICV after the ciphertext (0 for an SA without integrity). */
  icvLen: number;
  /** encLen (payload + padding + pad length + next header) must be a multiple of this: GCM/NULL 4, CBC 16. */
  blockSize: number;
}

/** decryptBurst status per packet. */
export const STATUS_OK = 0;
/** ICV mismatch (forged, damaged, wrong ESN high bits): the packet is left exactly as it was. */
export const STATUS_BAD_ICV = 1;
/** encLen unusable for the cipher (CBC: not whole blocks; any: < 2) or the window leaves `mem`: packet untouched. */
export const STATUS_BAD_LENGTH = 2;
/** The crypto library (intel-ipsec-mb or OpenSSL) failed (never seen): drop the packet, its bytes are undefined. */
export const STATUS_CRYPTO_ERROR = 3;

interface Addon {
  createSa(alg: SaAlgorithms): number;
  destroySa(h: number): void;
  saInfo(h: number): SaInfo;
  liveSas(): number;
  encryptBurst(h: number, mem: Uint8Array, espOff: Uint32Array, encLen: Uint32Array, seqLo: Uint32Array,
    seqHi: Uint32Array, count: number, esn: boolean): void;
  decryptBurst(h: number, mem: Uint8Array, espOff: Uint32Array, encLen: Uint32Array, seqHi: Uint32Array,
    count: number, esn: boolean, status: Uint8Array): void;
  rawGcm(h: number, encrypt: boolean, iv: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean;
  rawCbc(h: number, encrypt: boolean, iv: Uint8Array, data: Uint8Array): boolean;
  rawHmac(h: number, data: Uint8Array, out: Uint8Array): boolean;
}

const loader = new AddonLoader<Addon>('lfp_crypto', addonPath, BUILD_HINT);

/** Load the addon now (it is loaded on first use otherwise). Throws a clear Error when it is not built. */
export function load(): Addon { return loader.load(); }

/** True when the addon is built and loads. */
export function available(): boolean { return loader.available(); }

function A(): Addon {
  return loader.get();
}

/**
 * Creates the native context of an SA: keys decoded from hex and copied once, cipher contexts keyed, HMAC inner/outer
 * states precomputed, CBC IV counter seeded. Returns a handle (integer > 0).
 * Unsupported algorithm, key size, ICV/truncation length or combination: Error with code ERR_LFP_CRYPTO_UNSUPPORTED
 * (the message names the field and the key's length, never the key). Wrong types: TypeError ERR_INVALID_ARG_TYPE.
 */
export function createSa(alg: SaAlgorithms): number { return A().createSa(alg); }

/** Frees the SA; its keys, key schedules and HMAC states are wiped (OPENSSL_cleanse). The handle becomes invalid. */
export function destroySa(h: number): void { A().destroySa(h); }

/** IV, ICV and block sizes of the SA, for the caller's layout. */
export function saInfo(h: number): SaInfo { return A().saInfo(h); }

/** Number of live SAs in this thread (leak checks). */
export function liveSas(): number { return A().liveSas(); }

/**
 * Encrypts packets [0, count) in place. Packet i, laid out by the caller at `espOff[i]` in `mem`:
 *   [SPI (4) | SN (4)] [IV: ivLen] [payload + padding + pad length + next header: encLen[i]] [ICV: icvLen]
 * The SN field is written with seqLo[i]. GCM: the IV is the 64-bit sequence number seqHi[i]:seqLo[i] (big-endian),
 * AAD = SPI || SN, or SPI || seqHi || SN with `esn` (RFC 4106 §5). CBC: a fresh unpredictable IV, E_K(N) with N
 * a per-SA counter from a random start (NIST SP 800-38A appendix C). HMAC: over header + IV + ciphertext, plus
 * seqHi[i] when `esn` (RFC 4303 §2.2.1), truncated.
 * Throws RangeError (before touching anything) when a packet's encLen is not a positive multiple of blockSize or its
 * window leaves `mem`; Error ERR_LFP_CRYPTO_FAILED if the crypto library (intel-ipsec-mb or OpenSSL) fails (never seen; drop the burst).
 */
export function encryptBurst(h: number, mem: Uint8Array, espOff: Uint32Array, encLen: Uint32Array, seqLo: Uint32Array,
  seqHi: Uint32Array, count: number, esn: boolean): void {
  A().encryptBurst(h, mem, espOff, encLen, seqLo, seqHi, count, esn);
}

/**
 * Verifies and decrypts packets [0, count) in place (same layout as encryptBurst; the SN is read from the header,
 * the ESN high bits come from seqHi[i], the caller's estimate per RFC 4303 appendix A). status[i]: STATUS_OK, or
 * STATUS_BAD_ICV / STATUS_BAD_LENGTH, in which case the packet's bytes are unchanged (or STATUS_CRYPTO_ERROR).
 * HMAC SAs: one chained job per packet hashes, then decrypts; the ICV is compared (constant time) after it, and a refused
 * packet is re-encrypted in place (same key and IV), so it is left as received and no unverified plaintext is delivered.
 * GCM: intel-ipsec-mb computes the tag, compared in constant time; a refused packet is re-encrypted in place likewise.
 * The trailer (padding, pad length, next header) is left for the caller to check and strip.
 */
export function decryptBurst(h: number, mem: Uint8Array, espOff: Uint32Array, encLen: Uint32Array,
  seqHi: Uint32Array, count: number, esn: boolean, status: Uint8Array): void {
  A().decryptBurst(h, mem, espOff, encLen, seqHi, count, esn, status);
}

/** Kernel default truncation for XFRMA_ALG_AUTH (no explicit truncation), as in net/xfrm/xfrm_algo.c. */
const KERNEL_DEFAULT_TRUNC: Record<string, number> = { 'hmac(sha1)': 96, 'hmac(sha256)': 96, 'hmac(sha512)': 256 };

/**
 * createSa() argument from a mirrored kernel SA (lib/model XfrmSa). Names are passed through (createSa rejects the
 * ones it does not support); an auth algorithm without truncBits gets the kernel's default truncation.
 */
export function saAlgorithms(sa: Pick<XfrmSa, 'aead' | 'enc' | 'auth'>): SaAlgorithms {
  const out: SaAlgorithms = {};
  const a = (x: XfrmAlgo): { name: never; keyHex: string } => ({ name: x.name as never, keyHex: x.key });
  if (sa.aead) out.aead = { ...a(sa.aead), icvBits: sa.aead.icvBits as 64 | 96 | 128 };
  if (sa.enc) out.enc = a(sa.enc);
  if (sa.auth) out.auth = { ...a(sa.auth), truncBits: sa.auth.truncBits ?? KERNEL_DEFAULT_TRUNC[sa.auth.name] ?? 0 };
  return out;
}

/**
 * The primitives with explicit IV/AAD, for known-answer tests only (they run the same code as the bursts). Keys still
 * come from createSa(): these take a handle.
 */
export const kat = {
  /** GCM with nonce = salt || iv (8 bytes), arbitrary AAD; tag: icvLen bytes (output, or input to verify). */
  gcm(h: number, encrypt: boolean, iv: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
    return A().rawGcm(h, encrypt, iv, aad, data, tag);
  },
  /** CBC over whole blocks with the given 16-byte IV. */
  cbc(h: number, encrypt: boolean, iv: Uint8Array, data: Uint8Array): boolean {
    return A().rawCbc(h, encrypt, iv, data);
  },
  /** Full (untruncated) HMAC of data; out: the digest's length (20, 32 or 64). */
  hmac(h: number, data: Uint8Array, out: Uint8Array): boolean {
    return A().rawHmac(h, data, out);
  },
};
