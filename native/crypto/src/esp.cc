// ESP crypto of one SA: see esp.h.

#include "esp.h"

#include <immintrin.h>

#include <climits>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace lfpcrypto {

namespace {

// Jobs a manager holds at most (its job ring): job i + kRing reuses job i's object, handed back before that.
constexpr uint32_t kRing = IMB_MAX_JOBS;
static_assert((kRing & (kRing - 1)) == 0, "kRing must be a power of two");

// Per thread (an SA is used by the thread that created it): one intel-ipsec-mb manager (init_mb_mgr_auto: the
// AVX-512 + VAES code on this machine, like DPDK's aesni_mb PMD), and the scratch of the jobs in flight, indexed by
// packet index % kRing: the HMACs the job API computes (decrypt; encrypt when the ICV is not a length the job API
// writes), and (ESN, decrypt) the 4 received ICV bytes that seqHi replaces while hashing. Every burst is flushed
// before it returns: nothing is in flight between calls.
struct ThreadMb {
  IMB_MGR* m = nullptr;
  alignas(64) uint8_t tags[kRing][64];
  uint8_t saved[kRing][4];
};

ThreadMb& Tls() {
  static thread_local ThreadMb t;
  if (t.m == nullptr) {
    t.m = alloc_mb_mgr(0);
    init_mb_mgr_auto(t.m, nullptr);
  }
  return t;
}

}  // namespace

static IMB_MGR* Mgr() { return Tls().m; }

namespace {

inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// CBC encryption runs from the IV field with this IV (see EncryptBurst): the IV field's nonce N becomes E_K(N).
alignas(16) const uint8_t kZeroIv[16] = {0};

// Largest encLen handled (OpenSSL's EVP update lengths are ints).
constexpr uint32_t kMaxEncLen = 0x3fffffff;

const char* GcmName(size_t keyLen) {
  switch (keyLen) {
    case 16: return "AES-128-GCM";
    case 24: return "AES-192-GCM";
    case 32: return "AES-256-GCM";
    default: return nullptr;
  }
}

const char* CbcName(size_t keyLen) {
  switch (keyLen) {
    case 16: return "AES-128-CBC";
    case 24: return "AES-192-CBC";
    case 32: return "AES-256-CBC";
    default: return nullptr;
  }
}

// Fetches `name` and keys a new context with it (IV set later, per packet). nullptr on failure.
EVP_CIPHER_CTX* KeyedCtx(const char* name, bool encrypt, const uint8_t* key, const uint8_t* iv, bool noPadding) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (c == nullptr) return nullptr;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool ok = ctx != nullptr && EVP_CipherInit_ex(ctx, c, nullptr, key, iv, encrypt ? 1 : 0) == 1 &&
            (!noPadding || EVP_CIPHER_CTX_set_padding(ctx, 0) == 1);
  EVP_CIPHER_free(c);  // the context keeps its own reference
  if (!ok) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

// Job API: runs `done` on every job the manager hands back (in submission order).
// The burst loops submit with IMB_SUBMIT_JOB_NOCHECK, as DPDK's aesni_mb PMD does (its IMB_SUBMIT_JOB under
// RTE_LIBRTE_PMD_AESNI_MB_DEBUG only): the library's own argument checks (SAFE_PARAM) cost ~20 cycles per job, and
// every argument of these jobs is checked here first (lengths: whole blocks, 1..kMbMaxLen bytes, key, IV and tag
// lengths fixed per SA; see CheckEncrypt, DecryptBurst's lenOk, MbFits, Create). Build with
// -DLFP_CRYPTO_CHECKED_JOBS to have the library check them again (the unit tests pass both ways).
template <typename F>
inline void SubmitJob(IMB_MGR* m, F&& done, bool checked = false) {
#ifndef LFP_CRYPTO_CHECKED_JOBS
  IMB_JOB* j = checked ? IMB_SUBMIT_JOB(m) : IMB_SUBMIT_JOB_NOCHECK(m);
#else
  (void)checked;
  IMB_JOB* j = IMB_SUBMIT_JOB(m);
#endif
  while (j != nullptr) {
    done(j);
    j = IMB_GET_COMPLETED_JOB(m);
  }
}
template <typename F>
inline void FlushJobs(IMB_MGR* m, F&& done) {
  IMB_JOB* j;
  while ((j = IMB_FLUSH_JOB(m)) != nullptr) done(j);
}
inline uint32_t JobUser(const IMB_JOB* j) { return uint32_t(reinterpret_cast<uintptr_t>(j->user_data)); }

// Internal values of DecryptBurst's status[i] while its job is in flight (never returned to the caller).
enum : uint8_t {
  kPending = 0xff,  // job submitted, not handed back yet
  kRefused = 0xfe,  // CBC: ICV bad, the payload (decrypted in place by the chained job) still to be re-encrypted
};

// HMAC ipad/opad states for intel-ipsec-mb (as DPDK's aesni_mb PMD computes them): the hash state after one block of
// (key, hashed first if longer than the block, zero-padded) ^ 0x36 / 0x5c.
void MbHmacPads(IMB_MGR* m, Auth auth, const uint8_t* key, size_t keyLen, uint8_t* ipad, uint8_t* opad) {
  const size_t block = auth == Auth::kSha512 ? 128 : 64;
  alignas(16) uint8_t k0[128];
  alignas(16) uint8_t buf[128];
  memset(k0, 0, sizeof k0);
  if (keyLen > block) {  // RFC 2104
    switch (auth) {
      case Auth::kSha1: IMB_SHA1(m, key, keyLen, k0); break;
      case Auth::kSha256: IMB_SHA256(m, key, keyLen, k0); break;
      case Auth::kSha512: IMB_SHA512(m, key, keyLen, k0); break;
      case Auth::kNone: break;
    }
  } else if (keyLen > 0) {
    memcpy(k0, key, keyLen);
  }
  for (int round = 0; round < 2; round++) {
    const uint8_t x = round == 0 ? 0x36 : 0x5c;
    uint8_t* out = round == 0 ? ipad : opad;
    for (size_t i = 0; i < block; i++) buf[i] = k0[i] ^ x;
    switch (auth) {
      case Auth::kSha1: IMB_SHA1_ONE_BLOCK(m, buf, out); break;
      case Auth::kSha256: IMB_SHA256_ONE_BLOCK(m, buf, out); break;
      case Auth::kSha512: IMB_SHA512_ONE_BLOCK(m, buf, out); break;
      case Auth::kNone: break;
    }
  }
  OPENSSL_cleanse(k0, sizeof k0);
  OPENSSL_cleanse(buf, sizeof buf);
}

}  // namespace

// ---- HMAC (OpenSSL) -------------------------------------------------------------------------------------------------
// Only for what intel-ipsec-mb's job API refuses (more than Sa::kMbMaxLen bytes to hash, and rawHmac of empty data).
// EVP_MAC (and HMAC_CTX, which wraps it in OpenSSL 3) restores the precomputed key state with EVP_MD_CTX_copy_ex,
// which frees and re-allocates the provider's digest context: 2 heap allocations per packet (measured with
// CRYPTO_set_mem_functions on OpenSSL 3.0). The low-level SHA contexts are plain structs: the ipad/opad states are
// computed once here and copied per packet; the compression functions are the same assembly (SHA-NI/AVX2) EVP uses.

bool HmacKey::Init(Auth auth, const uint8_t* key, size_t keyLen) {
  Wipe();
  auth_ = auth;
  size_t block = 0;
  switch (auth) {
    case Auth::kNone: digestLen_ = 0; return true;
    case Auth::kSha1: block = 64; digestLen_ = 20; break;
    case Auth::kSha256: block = 64; digestLen_ = 32; break;
    case Auth::kSha512: block = 128; digestLen_ = 64; break;
  }
  uint8_t k0[128];
  uint8_t pad[128];
  memset(k0, 0, sizeof k0);
  bool ok = true;
  if (keyLen > block) {  // RFC 2104: keys longer than the block are hashed first
    switch (auth) {
      case Auth::kSha1: ok = SHA1_Init(&work_.s1) && SHA1_Update(&work_.s1, key, keyLen) && SHA1_Final(k0, &work_.s1); break;
      case Auth::kSha256:
        ok = SHA256_Init(&work_.s256) && SHA256_Update(&work_.s256, key, keyLen) && SHA256_Final(k0, &work_.s256);
        break;
      case Auth::kSha512:
        ok = SHA512_Init(&work_.s512) && SHA512_Update(&work_.s512, key, keyLen) && SHA512_Final(k0, &work_.s512);
        break;
      default: break;
    }
  } else if (keyLen > 0) {
    memcpy(k0, key, keyLen);
  }
  for (int round = 0; round < 2 && ok; round++) {
    const uint8_t x = round == 0 ? 0x36 : 0x5c;
    for (size_t i = 0; i < block; i++) pad[i] = k0[i] ^ x;
    State& st = round == 0 ? inner_ : outer_;
    switch (auth) {
      case Auth::kSha1: ok = SHA1_Init(&st.s1) && SHA1_Update(&st.s1, pad, block); break;
      case Auth::kSha256: ok = SHA256_Init(&st.s256) && SHA256_Update(&st.s256, pad, block); break;
      case Auth::kSha512: ok = SHA512_Init(&st.s512) && SHA512_Update(&st.s512, pad, block); break;
      default: break;
    }
  }
  OPENSSL_cleanse(k0, sizeof k0);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(&work_, sizeof work_);
  if (!ok) Wipe();
  return ok;
}

void HmacKey::Mac(const uint8_t* data, size_t len, const uint8_t* tail, size_t tailLen, uint8_t* out) {
  uint8_t ih[64];
  switch (auth_) {
    case Auth::kSha1:
      work_.s1 = inner_.s1;
      SHA1_Update(&work_.s1, data, len);
      if (tailLen) SHA1_Update(&work_.s1, tail, tailLen);
      SHA1_Final(ih, &work_.s1);
      work_.s1 = outer_.s1;
      SHA1_Update(&work_.s1, ih, 20);
      SHA1_Final(out, &work_.s1);
      break;
    case Auth::kSha256:
      work_.s256 = inner_.s256;
      SHA256_Update(&work_.s256, data, len);
      if (tailLen) SHA256_Update(&work_.s256, tail, tailLen);
      SHA256_Final(ih, &work_.s256);
      work_.s256 = outer_.s256;
      SHA256_Update(&work_.s256, ih, 32);
      SHA256_Final(out, &work_.s256);
      break;
    case Auth::kSha512:
      work_.s512 = inner_.s512;
      SHA512_Update(&work_.s512, data, len);
      if (tailLen) SHA512_Update(&work_.s512, tail, tailLen);
      SHA512_Final(ih, &work_.s512);
      work_.s512 = outer_.s512;
      SHA512_Update(&work_.s512, ih, 64);
      SHA512_Final(out, &work_.s512);
      break;
    case Auth::kNone: break;
  }
}

void HmacKey::Wipe() {
  OPENSSL_cleanse(&inner_, sizeof inner_);
  OPENSSL_cleanse(&outer_, sizeof outer_);
  OPENSSL_cleanse(&work_, sizeof work_);
  auth_ = Auth::kNone;
  digestLen_ = 0;
}

// ---- SA -------------------------------------------------------------------------------------------------------------

std::unique_ptr<Sa> Sa::Create(const SaSpec& s, std::string* err) {
  std::unique_ptr<Sa> sa(new Sa());
  sa->cipher_ = s.cipher;
  sa->auth_ = s.auth;
  switch (s.cipher) {
    case Cipher::kAesGcm: {
      const char* name = GcmName(s.keyLen);
      if (name == nullptr) { *err = "AES-GCM key must be 16, 24 or 32 bytes"; return nullptr; }
      if (s.icvLen != 8 && s.icvLen != 12 && s.icvLen != 16) { *err = "GCM ICV must be 64, 96 or 128 bits"; return nullptr; }
      if (s.auth != Auth::kNone) { *err = "an AEAD SA takes no separate authentication algorithm"; return nullptr; }
      sa->enc_ = KeyedCtx(name, true, s.key, nullptr, false);
      sa->dec_ = KeyedCtx(name, false, s.key, nullptr, false);
      if (sa->enc_ == nullptr || sa->dec_ == nullptr) { *err = std::string("OpenSSL cannot set up ") + name; return nullptr; }
      memcpy(sa->salt_, s.salt, 4);
      // GCM itself runs on intel-ipsec-mb (several times faster than OpenSSL 3.0's EVP per packet): its expanded key and
      // GHASH table are computed once here.
      sa->gkey_ = static_cast<struct gcm_key_data*>(aligned_alloc(64, (sizeof(struct gcm_key_data) + 63) & ~size_t(63)));
      if (sa->gkey_ == nullptr) { *err = "out of memory for the GCM key schedule"; return nullptr; }
      sa->gKeyLen_ = unsigned(s.keyLen);
      if (s.keyLen == 16) IMB_AES128_GCM_PRE(Mgr(), s.key, sa->gkey_);
      else if (s.keyLen == 24) IMB_AES192_GCM_PRE(Mgr(), s.key, sa->gkey_);
      else IMB_AES256_GCM_PRE(Mgr(), s.key, sa->gkey_);
      if (!s.gcmSequenceIv) {
        // Like Linux's seqiv: explicit IV = sequence number XOR a random per-SA value, so that a sequence
        // numbering restarted with the same key (a fast path restarted without its saved state) does
        // not repeat a GCM nonce (with overwhelming probability).
        uint8_t m[8];
        if (RAND_bytes(m, sizeof m) != 1) { *err = "OpenSSL RAND_bytes failed"; return nullptr; }
        sa->ivMaskHi_ = (uint32_t(m[0]) << 24) | (uint32_t(m[1]) << 16) | (uint32_t(m[2]) << 8) | m[3];
        sa->ivMaskLo_ = (uint32_t(m[4]) << 24) | (uint32_t(m[5]) << 16) | (uint32_t(m[6]) << 8) | m[7];
      }
      sa->ivLen_ = 8;
      sa->icvLen_ = s.icvLen;
      sa->blockSize_ = 4;
      return sa;
    }
    case Cipher::kAesCbc: {
      const char* name = CbcName(s.keyLen);
      if (name == nullptr) { *err = "AES-CBC key must be 16, 24 or 32 bytes"; return nullptr; }
      sa->enc_ = KeyedCtx(name, true, s.key, nullptr, true);
      sa->dec_ = KeyedCtx(name, false, s.key, nullptr, true);
      if (sa->enc_ == nullptr || sa->dec_ == nullptr) { *err = std::string("OpenSSL cannot set up ") + name; return nullptr; }
      // intel-ipsec-mb round keys (the burst path); the EVP contexts above only serve oversized packets.
      sa->cbcKeyLen_ = unsigned(s.keyLen);
      if (s.keyLen == 16) IMB_AES_KEYEXP_128(Mgr(), s.key, sa->encKeys_, sa->decKeys_);
      else if (s.keyLen == 24) IMB_AES_KEYEXP_192(Mgr(), s.key, sa->encKeys_, sa->decKeys_);
      else IMB_AES_KEYEXP_256(Mgr(), s.key, sa->encKeys_, sa->decKeys_);
      // IVs: IV = E_K(nonce), the nonce a per-SA 128-bit counter from a random start (NIST SP 800-38A appendix C,
      // first method: the forward cipher under the same key, applied to a unique nonce); see EncryptBurst.
      if (RAND_bytes(reinterpret_cast<uint8_t*>(sa->ivNonce_), sizeof sa->ivNonce_) != 1) {
        *err = "OpenSSL RAND_bytes failed";
        return nullptr;
      }
      sa->ivLen_ = 16;
      sa->blockSize_ = 16;
      break;
    }
    case Cipher::kNull:
      if (s.keyLen != 0) { *err = "ecb(cipher_null) takes an empty key"; return nullptr; }
      sa->ivLen_ = 0;
      sa->blockSize_ = 4;
      break;
  }
  if (s.auth != Auth::kNone) {
    if (!sa->hmac_.Init(s.auth, s.authKey, s.authKeyLen)) { *err = "OpenSSL SHA initialisation failed"; return nullptr; }
    // >= 4: with ESN, seqHi is placed in the ICV field while hashing (see EncryptBurst).
    if (s.truncLen < 4 || s.truncLen > sa->hmac_.DigestLen()) { *err = "bad HMAC truncation length"; return nullptr; }
    sa->icvLen_ = s.truncLen;
    MbHmacPads(Mgr(), s.auth, s.authKey, s.authKeyLen, sa->ipad_, sa->opad_);
    sa->hashAlg_ = s.auth == Auth::kSha1 ? IMB_AUTH_HMAC_SHA_1 : s.auth == Auth::kSha256 ? IMB_AUTH_HMAC_SHA_256
                                                                                      : IMB_AUTH_HMAC_SHA_512;
    // The job API writes the "IPsec" length (SHA1 12, SHA256 16, SHA512 32) or the full digest only.
    const unsigned ipsecLen = s.auth == Auth::kSha1 ? 12 : s.auth == Auth::kSha256 ? 16 : 32;
    sa->tagDirect_ = s.truncLen == ipsecLen || s.truncLen == sa->hmac_.DigestLen();
    sa->tagLen_ = sa->tagDirect_ ? s.truncLen : sa->hmac_.DigestLen();
  }
  return sa;
}

Sa::~Sa() {
  // EVP_CIPHER_CTX_free wipes the key schedules (the providers free their contexts with OPENSSL_clear_free).
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
  if (gkey_ != nullptr) { OPENSSL_cleanse(gkey_, sizeof *gkey_); free(gkey_); }
  hmac_.Wipe();
  OPENSSL_cleanse(salt_, sizeof salt_);
  OPENSSL_cleanse(ivNonce_, sizeof ivNonce_);
  OPENSSL_cleanse(encKeys_, sizeof encKeys_);
  OPENSSL_cleanse(decKeys_, sizeof decKeys_);
  OPENSSL_cleanse(ipad_, sizeof ipad_);
  OPENSSL_cleanse(opad_, sizeof opad_);
}

bool Sa::MbFits(size_t encLen, size_t hashLen, bool encrypt) const {
  return hashLen <= kMbMaxLen && (cipher_ != Cipher::kAesCbc || encLen + (encrypt ? 16 : 0) <= kMbMaxLen);
}

__attribute__((always_inline)) inline IMB_JOB* Sa::NewJob(IMB_MGR* m, bool encrypt, const uint8_t* src, uint8_t* dst, size_t cipherOff, size_t cipherLen,
                    const uint8_t* iv, size_t hashLen, uint8_t* tag, unsigned tagLen, uint32_t user) {
  IMB_JOB* job = IMB_GET_NEXT_JOB(m);
  // Every field the library reads for these modes is set: the slot is reused from earlier jobs of any kind.
  job->cipher_direction = encrypt ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  job->chain_order = encrypt ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;  // encrypt-then-MAC
  job->src = src;
  job->dst = dst;
  if (cipherLen != 0) {
    job->cipher_mode = IMB_CIPHER_CBC;
    job->enc_keys = encKeys_;
    job->dec_keys = decKeys_;
    job->key_len_in_bytes = cbcKeyLen_;
    job->iv = iv;
    job->iv_len_in_bytes = 16;
  } else {
    job->cipher_mode = IMB_CIPHER_NULL;
    job->enc_keys = nullptr;
    job->dec_keys = nullptr;
    job->key_len_in_bytes = 0;
    job->iv = nullptr;
    job->iv_len_in_bytes = 0;
  }
  job->cipher_start_src_offset_in_bytes = cipherOff;
  job->msg_len_to_cipher_in_bytes = cipherLen;
  job->hash_start_src_offset_in_bytes = 0;
  if (hashLen != 0) {
    job->hash_alg = hashAlg_;
    job->msg_len_to_hash_in_bytes = hashLen;
    job->u.HMAC._hashed_auth_key_xor_ipad = ipad_;
    job->u.HMAC._hashed_auth_key_xor_opad = opad_;
    job->auth_tag_output = tag;
    job->auth_tag_output_len_in_bytes = tagLen;
  } else {
    job->hash_alg = IMB_AUTH_NULL;
    job->msg_len_to_hash_in_bytes = 0;
    job->auth_tag_output = nullptr;
    job->auth_tag_output_len_in_bytes = 0;
  }
  job->user_data = reinterpret_cast<void*>(uintptr_t(user));
  return job;
}

void Sa::NextNonce(uint8_t* iv) {
  memcpy(iv, ivNonce_, 16);
  if (++ivNonce_[0] == 0) ++ivNonce_[1];
}

static void GcmEnc(IMB_MGR* m, unsigned kl, const struct gcm_key_data* k, uint8_t* p, size_t len, const uint8_t* nonce,
                   const uint8_t* aad, size_t aadLen, uint8_t* tag, unsigned tagLen) {
  struct gcm_context_data ctx;
  if (kl == 16) IMB_AES128_GCM_ENC(m, k, &ctx, p, p, len, nonce, aad, aadLen, tag, tagLen);
  else if (kl == 24) IMB_AES192_GCM_ENC(m, k, &ctx, p, p, len, nonce, aad, aadLen, tag, tagLen);
  else IMB_AES256_GCM_ENC(m, k, &ctx, p, p, len, nonce, aad, aadLen, tag, tagLen);
}

// RFC 4106 §4: nonce = salt || explicit IV (12 bytes; 4 zero bytes after), written with ONE 16-byte store: the
// library's loads of the nonce are then forwarded from that store. Built with narrower stores (4 + 8 bytes), the
// wider load that follows cannot be forwarded and stalls (store-to-load forwarding failure: measured ~10-30 cycles
// per packet). Same reason for the single 8-byte stores of the ESP header and the IV in EncryptBurst.
static inline void GcmNonce(const uint8_t salt[4], const uint8_t iv8[8], uint8_t out[16]) {
  uint32_t s;
  uint64_t iv;
  memcpy(&s, salt, 4);
  memcpy(&iv, iv8, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                   _mm_set_epi64x(int64_t(iv >> 32), int64_t(uint64_t(s) | (iv << 32))));  // little-endian lanes
}

bool Sa::GcmSeal(IMB_MGR* m, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* p, size_t len,
                 uint8_t* tag) {
  alignas(16) uint8_t nonce[16];
  GcmNonce(salt_, iv8, nonce);
  GcmEnc(m, gKeyLen_, gkey_, p, len, nonce, aad, aadLen, tag, icvLen_);
  return true;
}

int Sa::GcmOpen(IMB_MGR* m, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* p, size_t len,
                const uint8_t* tag) {
  alignas(16) uint8_t nonce[16];
  GcmNonce(salt_, iv8, nonce);
  uint8_t t[16];
  struct gcm_context_data ctx;
  if (gKeyLen_ == 16) IMB_AES128_GCM_DEC(m, gkey_, &ctx, p, p, len, nonce, aad, aadLen, t, icvLen_);
  else if (gKeyLen_ == 24) IMB_AES192_GCM_DEC(m, gkey_, &ctx, p, p, len, nonce, aad, aadLen, t, icvLen_);
  else IMB_AES256_GCM_DEC(m, gkey_, &ctx, p, p, len, nonce, aad, aadLen, t, icvLen_);
  if (CRYPTO_memcmp(t, tag, icvLen_) == 0) return 1;
  // Forged or damaged: encrypting the plaintext again with the same nonce gives the ciphertext back.
  GcmEnc(m, gKeyLen_, gkey_, p, len, nonce, aad, aadLen, t, icvLen_);
  return 0;
}

bool Sa::CbcEncrypt(const uint8_t iv[16], uint8_t* p, size_t len) {
  int outl = 0;
  return EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_EncryptUpdate(enc_, p, &outl, p, int(len)) == 1 && size_t(outl) == len;
}

bool Sa::CbcDecrypt(const uint8_t iv[16], uint8_t* p, size_t len) {
  int outl = 0;
  return EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_DecryptUpdate(dec_, p, &outl, p, int(len)) == 1 && size_t(outl) == len;
}

long Sa::CheckEncrypt(size_t memLen, const uint32_t* espOff, const uint32_t* encLen, uint32_t count,
                      const char** why) const {
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t len = encLen[i];
    if (len == 0 || len % blockSize_ != 0 || len > kMaxEncLen) {
      *why = blockSize_ == 16 ? "is not a positive multiple of 16 (the AES block)"
                              : "is not a positive multiple of 4 (RFC 4303 alignment)";
      return long(i);
    }
    const uint64_t end = uint64_t(espOff[i]) + 8 + ivLen_ + len + icvLen_;
    if (end > memLen) {
      *why = "puts the packet (ESP header + IV + encLen + ICV) beyond the end of mem";
      return long(i);
    }
  }
  return -1;
}

// RFC 4106 §5: AAD = SPI || SN (32 bits), or SPI || SN high || SN low with ESN.
// Without ESN that is the packet's own first 8 bytes; with ESN it is built in buf.
static const uint8_t* GcmAad(const uint8_t* h, uint32_t seqHi, bool esn, uint8_t buf[12], size_t* len) {
  if (!esn) {
    *len = 8;
    return h;
  }
  memcpy(buf, h, 4);
  Put32(buf + 4, seqHi);
  memcpy(buf + 8, h + 4, 4);
  *len = 12;
  return buf;
}

long Sa::EncryptBurst(uint8_t* mem, const uint32_t* espOff, const uint32_t* encLen, const uint32_t* seqLo,
                      const uint32_t* seqHi, uint32_t count, bool esn) {
  if (cipher_ == Cipher::kAesGcm) {
    IMB_MGR* m = Mgr();
    for (uint32_t i = 0; i < count; i++) {
      uint8_t* h = mem + espOff[i];  // SPI, SN
      uint8_t* iv = h + 8;
      uint8_t* p = iv + ivLen_;
      const size_t len = encLen[i];
      // The SN field is the low 32 bits of the sequence number; explicit IV = the 64-bit sequence number (unique per
      // SA and key) XOR the SA's random mask. Each written with one 8-byte store (see GcmNonce), big-endian.
      uint32_t spi;
      memcpy(&spi, h, 4);
      const uint64_t hdr = uint64_t(spi) | (uint64_t(__builtin_bswap32(seqLo[i])) << 32);
      const uint64_t ivv = uint64_t(__builtin_bswap32(seqHi[i] ^ ivMaskHi_)) |
                           (uint64_t(__builtin_bswap32(seqLo[i] ^ ivMaskLo_)) << 32);
      memcpy(h, &hdr, 8);
      memcpy(iv, &ivv, 8);
      uint8_t buf[12];
      size_t aadLen;
      const uint8_t* aad = GcmAad(h, seqHi[i], esn, buf, &aadLen);
      if (!GcmSeal(m, iv, aad, aadLen, p, len, p + len)) return long(i);
    }
    return -1;
  }
  // CBC and/or HMAC, NULL: intel-ipsec-mb's job API, one chained job per packet (CBC, then the HMAC), the whole burst
  // in flight (CBC encryption runs on several packets at once, one per lane, and so does the HMAC), one flush.
  const bool cbc = cipher_ == Cipher::kAesCbc, hmac = auth_ != Auth::kNone;
  if (!cbc && !hmac) {  // NULL encryption without authentication: only the SN
    for (uint32_t i = 0; i < count; i++) Put32(mem + espOff[i] + 4, seqLo[i]);
    return -1;
  }
  ThreadMb& t = Tls();
  IMB_MGR* m = t.m;
  long failed = -1;
  auto fail = [&failed](long i) {
    if (failed < 0 || i < failed) failed = i;
  };
  uint32_t submitted = 0, returned = 0;
  auto done = [&](IMB_JOB* job) {
    returned++;
    const uint32_t i = JobUser(job);
    if (job->status != IMB_STATUS_COMPLETED) {
      fail(long(i));
      return;
    }
    if (hmac && !tagDirect_)  // truncated ICV
      memcpy(mem + espOff[i] + 8 + ivLen_ + encLen[i], t.tags[i & (kRing - 1)], icvLen_);
  };
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* h = mem + espOff[i];  // SPI, SN
    uint8_t* iv = h + 8;
    uint8_t* p = iv + ivLen_;
    const size_t len = encLen[i];
    uint8_t* icv = p + len;
    Put32(h + 4, seqLo[i]);  // the SN field is the low 32 bits of the sequence number
    // CBC IV (RFC 3602 §2: unpredictable): IV = E_K(N), N a unique per-SA nonce (NIST SP 800-38A appendix C). N is
    // written into the IV field and CBC runs over IV field + payload from an all-zero IV: the first output block is
    // E_K(0 ^ N) = the IV, and the following ones are exactly the CBC encryption of the payload under that IV.
    if (cbc) NextNonce(iv);
    // RFC 4303 §2.2.1 / §3.3.2.1: ICV over ESP header + IV + ciphertext, plus the high 32 bits of the ESN
    // (appended for the computation only, never sent).
    const size_t hashLen = hmac ? 8 + ivLen_ + len + (esn ? 4 : 0) : 0;
    if (!MbFits(len, hashLen, true)) {  // OpenSSL, serially
      if (cbc && !CbcEncrypt(kZeroIv, iv, len + 16)) fail(long(i));
      if (hmac) {
        uint8_t hi[4], mac[64];
        Put32(hi, seqHi[i]);
        hmac_.Mac(h, 8 + ivLen_ + len, hi, esn ? 4 : 0, mac);
        memcpy(icv, mac, icvLen_);
      }
      continue;
    }
    // The job API hashes one contiguous buffer: seqHi goes in the ICV field (>= 4 bytes, written by the ICV
    // afterwards), right after the ciphertext.
    if (esn && hmac) Put32(icv, seqHi[i]);
    NewJob(m, true, h, iv, 8, cbc ? len + 16 : 0, kZeroIv, hashLen, tagDirect_ ? icv : t.tags[i & (kRing - 1)],
           tagLen_, i);
    submitted++;
    SubmitJob(m, done);
  }
  FlushJobs(m, done);
  if (returned != submitted && failed < 0) failed = 0;  // a job not handed back: never seen
  return failed;
}

void Sa::DecryptBurst(uint8_t* mem, size_t memLen, const uint32_t* espOff, const uint32_t* encLen,
                      const uint32_t* seqHi, uint32_t count, bool esn, uint8_t* status) {
  // Lengths: the trailer (pad length, next header) needs 2 bytes; CBC needs whole blocks. GCM/NULL input is not
  // required to be 4-byte aligned (that is the sender's duty, RFC 4303 §2.4).
  auto lenOk = [&](uint32_t i) {
    const uint32_t len = encLen[i];
    const uint64_t end = uint64_t(espOff[i]) + 8 + ivLen_ + uint64_t(len) + icvLen_;
    return len <= kMaxEncLen && (cipher_ == Cipher::kAesCbc ? len >= 16 && len % 16 == 0 : len >= 2) && end <= memLen;
  };
  if (cipher_ == Cipher::kAesGcm) {
    IMB_MGR* m = Mgr();
    for (uint32_t i = 0; i < count; i++) {
      if (!lenOk(i)) {
        status[i] = kBadLength;
        continue;
      }
      uint8_t* h = mem + espOff[i];
      uint8_t* iv = h + 8;
      uint8_t* p = iv + ivLen_;
      const uint32_t len = encLen[i];
      uint8_t buf[12];
      size_t aadLen;
      const uint8_t* aad = GcmAad(h, seqHi[i], esn, buf, &aadLen);
      const int r = GcmOpen(m, iv, aad, aadLen, p, len, p + len);
      status[i] = r == 1 ? kOk : r == 0 ? kBadIcv : kCryptoError;
    }
    return;
  }
  const bool cbc = cipher_ == Cipher::kAesCbc, hmac = auth_ != Auth::kNone;
  // One chained job per packet (like DPDK's aesni_mb PMD): the HMAC over the received ESP header + IV + ciphertext,
  // then the CBC decryption in place; the ICV is compared (constant time) when the job is handed back. RFC 4303
  // §3.4.4.1 allows decrypting in parallel with the ICV check as long as nothing unverified is delivered: a packet
  // whose ICV is refused gets status 1 and its payload is encrypted again (same key and IV: CBC gives the received
  // ciphertext back, in one more batch of jobs after the flush), so it is left exactly as received.
  ThreadMb& t = Tls();
  IMB_MGR* m = t.m;
  uint32_t submitted = 0, returned = 0, refused = 0;
  auto done = [&](IMB_JOB* job) {
    returned++;
    const uint32_t i = JobUser(job);
    const uint32_t s = i & (kRing - 1);
    uint8_t* icv = mem + espOff[i] + 8 + ivLen_ + encLen[i];
    if (esn && hmac) memcpy(icv, t.saved[s], 4);  // the received ICV bytes back
    if (job->status != IMB_STATUS_COMPLETED) {
      status[i] = kCryptoError;
    } else if (!hmac || CRYPTO_memcmp(t.tags[s], icv, icvLen_) == 0) {
      status[i] = kOk;
    } else if (cbc) {
      status[i] = kRefused;
      refused++;
    } else {
      status[i] = kBadIcv;
    }
  };
  for (uint32_t i = 0; i < count; i++) {
    if (!lenOk(i)) {
      status[i] = kBadLength;
      continue;
    }
    uint8_t* h = mem + espOff[i];
    uint8_t* iv = h + 8;
    uint8_t* p = iv + ivLen_;
    const uint32_t len = encLen[i];
    uint8_t* icv = p + len;
    const size_t hashLen = hmac ? 8 + ivLen_ + len + (esn ? 4 : 0) : 0;
    if (!MbFits(len, hashLen, false)) {  // OpenSSL, serially: verify, then decrypt
      if (hmac) {
        uint8_t hi[4], mac[64];
        Put32(hi, seqHi[i]);
        hmac_.Mac(h, 8 + ivLen_ + len, hi, esn ? 4 : 0, mac);
        if (CRYPTO_memcmp(mac, icv, icvLen_) != 0) {
          status[i] = kBadIcv;
          continue;
        }
      }
      status[i] = cbc && !CbcDecrypt(iv, p, len) ? kCryptoError : kOk;
      continue;
    }
    if (!cbc && !hmac) {  // NULL encryption without authentication: nothing to do
      status[i] = kOk;
      continue;
    }
    const uint32_t s = i & (kRing - 1);
    if (esn && hmac) {  // seqHi in the ICV field while hashing (restored when the job is handed back)
      memcpy(t.saved[s], icv, 4);
      Put32(icv, seqHi[i]);
    }
    status[i] = kPending;
    NewJob(m, false, h, p, 8 + ivLen_, cbc ? len : 0, iv, hashLen, t.tags[s], tagLen_, i);
    submitted++;
    SubmitJob(m, done);
  }
  FlushJobs(m, done);
  if (refused != 0) {  // re-encrypt the refused packets: they are left as received
    uint32_t resubmitted = 0, reReturned = 0;
    auto reencrypted = [&](IMB_JOB* job) {
      reReturned++;
      status[JobUser(job)] = job->status == IMB_STATUS_COMPLETED ? kBadIcv : kCryptoError;
    };
    for (uint32_t i = 0; i < count; i++) {
      if (status[i] != kRefused) continue;
      uint8_t* iv = mem + espOff[i] + 8;
      NewJob(m, true, iv + 16, iv + 16, 0, encLen[i], iv, 0, nullptr, 0, i);
      resubmitted++;
      SubmitJob(m, reencrypted);
    }
    FlushJobs(m, reencrypted);
    if (reReturned != resubmitted) returned = ~submitted;  // never seen: swept below
  }
  if (returned != submitted)  // a job not handed back: never seen
    for (uint32_t i = 0; i < count; i++)
      if (status[i] == kPending || status[i] == kRefused) status[i] = kCryptoError;
}

bool Sa::RawGcm(bool encrypt, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* data, size_t len,
                uint8_t* tag) {
  if (cipher_ != Cipher::kAesGcm || len > kMaxEncLen || aadLen > kMaxEncLen) return false;
  IMB_MGR* m = Mgr();
  return encrypt ? GcmSeal(m, iv8, aad, aadLen, data, len, tag) : GcmOpen(m, iv8, aad, aadLen, data, len, tag) == 1;
}

bool Sa::RawCbc(bool encrypt, const uint8_t iv[16], uint8_t* data, size_t len) {
  if (cipher_ != Cipher::kAesCbc || len % 16 != 0 || len > kMaxEncLen) return false;
  if (len == 0) return true;
  if (!MbFits(len, 0, false)) return encrypt ? CbcEncrypt(iv, data, len) : CbcDecrypt(iv, data, len);
  // Same job as the burst path.
  IMB_MGR* m = Mgr();
  bool ok = false;
  unsigned returned = 0;
  auto done = [&](IMB_JOB* job) {
    ok = job->status == IMB_STATUS_COMPLETED;
    returned++;
  };
  NewJob(m, encrypt, data, data, 0, len, iv, 0, nullptr, 0, 0);
  SubmitJob(m, done, true);
  FlushJobs(m, done);
  return ok && returned == 1;
}

bool Sa::RawHmac(const uint8_t* data, size_t len, uint8_t* out) {
  if (auth_ == Auth::kNone) return false;
  if (len == 0 || len > kMbMaxLen) {  // the job API needs 1..kMbMaxLen bytes
    hmac_.Mac(data, len, nullptr, 0, out);
    return true;
  }
  ThreadMb& t = Tls();
  bool ok = false;
  unsigned returned = 0;
  auto done = [&](IMB_JOB* job) {
    ok = job->status == IMB_STATUS_COMPLETED;
    returned++;
  };
  NewJob(t.m, true, data, const_cast<uint8_t*>(data), 0, 0, nullptr, len, t.tags[0], hmac_.DigestLen(), 0);
  SubmitJob(t.m, done, true);
  FlushJobs(t.m, done);
  if (!ok || returned != 1) return false;
  memcpy(out, t.tags[0], hmac_.DigestLen());
  return true;
}

}  // namespace lfpcrypto
