// ESP crypto of one SA: see esp.h.

#include "esp.h"

#include <climits>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace lfpcrypto {

// One intel-ipsec-mb manager per thread (an SA is used by the thread that created it).
static IMB_MGR* Mgr() {
  static thread_local IMB_MGR* m = nullptr;
  if (m == nullptr) { m = alloc_mb_mgr(0); init_mb_mgr_auto(m, nullptr); }
  return m;
}

namespace {

inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// Input of the IV generator: AES-CTR over zeros gives the keystream, i.e. E_k(ctr), E_k(ctr+1), ...
const uint8_t kZeros[Sa::kIvChunk * 16] = {0};

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
template <typename F>
inline void SubmitJob(IMB_MGR* m, F&& done) {
  IMB_JOB* j = IMB_SUBMIT_JOB(m);
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
inline unsigned JobSlot(const IMB_JOB* j) { return unsigned(reinterpret_cast<uintptr_t>(j->user_data)); }

// Per-slot state of a chunk (Sa::slot_).
enum : uint8_t {
  kSlotIdle = 0,     // nothing in flight (status already written, or nothing to do)
  kSlotPending = 1,  // job submitted, not handed back yet
  kSlotDone = 2,     // job completed
  kSlotFailed = 3,   // job handed back with an error status (never seen: a bug or a library limit)
  kSlotVerified = 4, // decrypt: ICV good, to be decrypted
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
      // IV generator: AES-128-CTR keystream under a random key and random initial counter (NIST SP 800-38A
      // appendix C: IV = E_k(unique nonce)). Unpredictable without the key, no syscall per packet.
      uint8_t seed[32];
      if (RAND_bytes(seed, sizeof seed) != 1) { *err = "OpenSSL RAND_bytes failed"; return nullptr; }
      sa->ivGen_ = KeyedCtx("AES-128-CTR", true, seed, seed + 16, false);
      OPENSSL_cleanse(seed, sizeof seed);
      if (sa->ivGen_ == nullptr) { *err = "OpenSSL cannot set up AES-128-CTR"; return nullptr; }
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
  }
  return sa;
}

Sa::~Sa() {
  // EVP_CIPHER_CTX_free wipes the key schedules (the providers free their contexts with OPENSSL_clear_free).
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
  EVP_CIPHER_CTX_free(ivGen_);
  if (gkey_ != nullptr) { OPENSSL_cleanse(gkey_, sizeof *gkey_); free(gkey_); }
  hmac_.Wipe();
  OPENSSL_cleanse(salt_, sizeof salt_);
  OPENSSL_cleanse(ivBuf_, sizeof ivBuf_);
  OPENSSL_cleanse(encKeys_, sizeof encKeys_);
  OPENSSL_cleanse(decKeys_, sizeof decKeys_);
  OPENSSL_cleanse(ipad_, sizeof ipad_);
  OPENSSL_cleanse(opad_, sizeof opad_);
  OPENSSL_cleanse(tags_, sizeof tags_);
  OPENSSL_cleanse(savedIcv_, sizeof savedIcv_);
}

bool Sa::MbFits(size_t encLen, size_t hashLen) const {
  return hashLen <= kMbMaxLen && (cipher_ != Cipher::kAesCbc || encLen <= kMbMaxLen);
}

IMB_JOB* Sa::NewJob(IMB_MGR* m, bool encrypt, const uint8_t* src, uint8_t* dst, size_t cipherOff, size_t cipherLen,
                    const uint8_t* iv, size_t hashLen, unsigned slot) {
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
    job->auth_tag_output = tags_[slot];  // the full HMAC: the job API only writes 12/20, 16/32 or 32/64 bytes
    job->auth_tag_output_len_in_bytes = hmac_.DigestLen();
  } else {
    job->hash_alg = IMB_AUTH_NULL;
    job->msg_len_to_hash_in_bytes = 0;
    job->auth_tag_output = nullptr;
    job->auth_tag_output_len_in_bytes = 0;
  }
  job->user_data = reinterpret_cast<void*>(uintptr_t(slot));
  slot_[slot] = kSlotPending;
  return job;
}

bool Sa::NextIvs(uint8_t* out, size_t n) {
  int outl = 0;
  return EVP_EncryptUpdate(ivGen_, out, &outl, kZeros, int(n * 16)) == 1 && size_t(outl) == n * 16;
}

static void GcmEnc(IMB_MGR* m, unsigned kl, const struct gcm_key_data* k, uint8_t* p, size_t len, const uint8_t* nonce,
                   const uint8_t* aad, size_t aadLen, uint8_t* tag, unsigned tagLen) {
  struct gcm_context_data ctx;
  if (kl == 16) IMB_AES128_GCM_ENC(m, k, &ctx, p, p, len, nonce, aad, aadLen, tag, tagLen);
  else if (kl == 24) IMB_AES192_GCM_ENC(m, k, &ctx, p, p, len, nonce, aad, aadLen, tag, tagLen);
  else IMB_AES256_GCM_ENC(m, k, &ctx, p, p, len, nonce, aad, aadLen, tag, tagLen);
}

bool Sa::GcmSeal(const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* p, size_t len, uint8_t* tag) {
  uint8_t nonce[12];  // RFC 4106 §4: salt || explicit IV
  memcpy(nonce, salt_, 4);
  memcpy(nonce + 4, iv8, 8);
  GcmEnc(Mgr(), gKeyLen_, gkey_, p, len, nonce, aad, aadLen, tag, icvLen_);
  return true;
}

int Sa::GcmOpen(const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* p, size_t len,
                const uint8_t* tag) {
  uint8_t nonce[12];
  memcpy(nonce, salt_, 4);
  memcpy(nonce + 4, iv8, 8);
  uint8_t t[16];
  struct gcm_context_data ctx;
  IMB_MGR* m = Mgr();
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
static size_t GcmAad(const uint8_t* h, uint32_t seqHi, bool esn, uint8_t aad[12]) {
  memcpy(aad, h, 4);
  if (esn) {
    Put32(aad + 4, seqHi);
    memcpy(aad + 8, h + 4, 4);
    return 12;
  }
  memcpy(aad + 4, h + 4, 4);
  return 8;
}

long Sa::EncryptBurst(uint8_t* mem, const uint32_t* espOff, const uint32_t* encLen, const uint32_t* seqLo,
                      const uint32_t* seqHi, uint32_t count, bool esn) {
  if (cipher_ == Cipher::kAesGcm) {
    for (uint32_t i = 0; i < count; i++) {
      uint8_t* h = mem + espOff[i];  // SPI, SN
      uint8_t* iv = h + 8;
      uint8_t* p = iv + ivLen_;
      const size_t len = encLen[i];
      Put32(h + 4, seqLo[i]);  // the SN field is the low 32 bits of the sequence number
      // Explicit IV = the 64-bit sequence number (unique per SA and key) XOR the SA's random mask.
      Put32(iv, seqHi[i] ^ ivMaskHi_);
      Put32(iv + 4, seqLo[i] ^ ivMaskLo_);
      uint8_t aad[12];
      const size_t aadLen = GcmAad(h, seqHi[i], esn, aad);
      if (!GcmSeal(iv, aad, aadLen, p, len, p + len)) return long(i);
    }
    return -1;
  }
  // CBC and/or HMAC, NULL: intel-ipsec-mb's job API, one chunk of up to kIvChunk packets in flight (CBC encryption
  // runs on several packets at once, one per lane, and so does the HMAC, chained after it in each job).
  IMB_MGR* m = Mgr();
  const bool jobs = cipher_ == Cipher::kAesCbc || auth_ != Auth::kNone;
  long failed = -1;
  auto fail = [&failed](long i) {
    if (failed < 0 || i < failed) failed = i;
  };
  for (uint32_t base = 0; base < count && failed < 0; base += kIvChunk) {
    const uint32_t n = count - base < kIvChunk ? count - base : kIvChunk;
    if (cipher_ == Cipher::kAesCbc && !NextIvs(ivBuf_, n)) return long(base);  // nothing in flight
    auto done = [&](IMB_JOB* job) {
      const unsigned j = JobSlot(job);
      if (job->status != IMB_STATUS_COMPLETED) {
        slot_[j] = kSlotFailed;
        return;
      }
      slot_[j] = kSlotIdle;
      if (auth_ != Auth::kNone) {
        const uint32_t i = base + j;
        memcpy(mem + espOff[i] + 8 + ivLen_ + encLen[i], tags_[j], icvLen_);  // truncated ICV
      }
    };
    for (uint32_t j = 0; j < n; j++) {
      const uint32_t i = base + j;
      uint8_t* h = mem + espOff[i];  // SPI, SN
      uint8_t* iv = h + 8;
      uint8_t* p = iv + ivLen_;
      const size_t len = encLen[i];
      uint8_t* icv = p + len;
      slot_[j] = kSlotIdle;
      Put32(h + 4, seqLo[i]);  // the SN field is the low 32 bits of the sequence number
      if (cipher_ == Cipher::kAesCbc) memcpy(iv, ivBuf_ + 16 * j, 16);
      if (!jobs) continue;
      // RFC 4303 §2.2.1 / §3.3.2.1: ICV over ESP header + IV + ciphertext, plus the high 32 bits of the ESN
      // (appended for the computation only, never sent).
      const size_t hashLen = auth_ == Auth::kNone ? 0 : 8 + ivLen_ + len + (esn ? 4 : 0);
      if (!MbFits(len, hashLen)) {  // OpenSSL, serially
        if (cipher_ == Cipher::kAesCbc && !CbcEncrypt(iv, p, len)) fail(long(i));
        if (auth_ != Auth::kNone) {
          uint8_t hi[4], mac[64];
          Put32(hi, seqHi[i]);
          hmac_.Mac(h, 8 + ivLen_ + len, hi, esn ? 4 : 0, mac);
          memcpy(icv, mac, icvLen_);
        }
        continue;
      }
      // The job API hashes one contiguous buffer: seqHi goes in the ICV field (>= 4 bytes, written by the ICV
      // afterwards), right after the ciphertext.
      if (esn && auth_ != Auth::kNone) Put32(icv, seqHi[i]);
      NewJob(m, true, h, p, 8 + ivLen_, cipher_ == Cipher::kAesCbc ? len : 0, iv, hashLen, j);
      SubmitJob(m, done);
    }
    FlushJobs(m, done);
    for (uint32_t j = 0; j < n; j++)
      if (slot_[j] != kSlotIdle) {  // failed, or (never seen) not handed back
        fail(long(base + j));
        slot_[j] = kSlotIdle;
      }
  }
  return failed;
}

void Sa::DecryptBurst(uint8_t* mem, size_t memLen, const uint32_t* espOff, const uint32_t* encLen,
                      const uint32_t* seqHi, uint32_t count, bool esn, uint8_t* status) {
  IMB_MGR* m = cipher_ == Cipher::kAesGcm ? nullptr : Mgr();
  for (uint32_t base = 0; base < count; base += kIvChunk) {
    const uint32_t n = count - base < kIvChunk ? count - base : kIvChunk;
    // Pass 1: lengths, then (HMAC SAs) the ICVs of the whole chunk through the job API.
    auto hashed = [this](IMB_JOB* job) {
      slot_[JobSlot(job)] = job->status == IMB_STATUS_COMPLETED ? kSlotDone : kSlotFailed;
    };
    for (uint32_t j = 0; j < n; j++) {
      const uint32_t i = base + j;
      slot_[j] = kSlotIdle;
      const uint32_t len = encLen[i];
      const uint64_t end = uint64_t(espOff[i]) + 8 + ivLen_ + uint64_t(len) + icvLen_;
      // The trailer (pad length, next header) needs 2 bytes; CBC needs whole blocks. GCM/NULL input is not required
      // to be 4-byte aligned (that is the sender's duty, RFC 4303 §2.4).
      const bool lenOk = len <= kMaxEncLen && (cipher_ == Cipher::kAesCbc ? len >= 16 && len % 16 == 0 : len >= 2);
      if (!lenOk || end > memLen) {
        status[i] = kBadLength;
        continue;
      }
      uint8_t* h = mem + espOff[i];
      uint8_t* iv = h + 8;
      uint8_t* p = iv + ivLen_;
      uint8_t* icv = p + len;
      if (cipher_ == Cipher::kAesGcm) {
        uint8_t aad[12];
        const size_t aadLen = GcmAad(h, seqHi[i], esn, aad);
        const int r = GcmOpen(iv, aad, aadLen, p, len, icv);
        status[i] = r == 1 ? kOk : r == 0 ? kBadIcv : kCryptoError;
        continue;
      }
      const size_t hashLen = auth_ == Auth::kNone ? 0 : 8 + ivLen_ + len + (esn ? 4 : 0);
      if (!MbFits(len, hashLen)) {  // OpenSSL, serially: verify, then decrypt
        if (auth_ != Auth::kNone) {
          uint8_t hi[4], mac[64];
          Put32(hi, seqHi[i]);
          hmac_.Mac(h, 8 + ivLen_ + len, hi, esn ? 4 : 0, mac);
          if (CRYPTO_memcmp(mac, icv, icvLen_) != 0) {
            status[i] = kBadIcv;
            continue;
          }
        }
        status[i] = cipher_ == Cipher::kAesCbc && !CbcDecrypt(iv, p, len) ? kCryptoError : kOk;
        continue;
      }
      if (auth_ == Auth::kNone) {
        slot_[j] = kSlotVerified;
        continue;
      }
      if (esn) {  // seqHi in the ICV field while hashing (restored below)
        memcpy(savedIcv_[j], icv, 4);
        Put32(icv, seqHi[i]);
      }
      NewJob(m, false, h, p, 0, 0, nullptr, hashLen, j);  // hash only: nothing is decrypted before the check
      SubmitJob(m, hashed);
    }
    if (m == nullptr) continue;  // GCM: done
    FlushJobs(m, hashed);
    // Encrypt-then-MAC: compare (constant time) before decrypting; a refused packet is left as received.
    for (uint32_t j = 0; j < n; j++) {
      const uint8_t st = slot_[j];
      if (st == kSlotIdle || st == kSlotVerified) continue;
      const uint32_t i = base + j;
      uint8_t* icv = mem + espOff[i] + 8 + ivLen_ + encLen[i];
      if (esn) memcpy(icv, savedIcv_[j], 4);
      if (st != kSlotDone) {
        status[i] = kCryptoError;
        slot_[j] = kSlotIdle;
      } else if (CRYPTO_memcmp(tags_[j], icv, icvLen_) != 0) {
        status[i] = kBadIcv;
        slot_[j] = kSlotIdle;
      } else {
        slot_[j] = kSlotVerified;
      }
    }
    // Pass 2: decrypt the verified packets (CBC decryption is parallel within a packet: the job completes at once).
    auto decrypted = [&](IMB_JOB* job) {
      const unsigned j = JobSlot(job);
      status[base + j] = job->status == IMB_STATUS_COMPLETED ? kOk : kCryptoError;
      slot_[j] = kSlotIdle;
    };
    for (uint32_t j = 0; j < n; j++) {
      if (slot_[j] != kSlotVerified) continue;
      const uint32_t i = base + j;
      if (cipher_ != Cipher::kAesCbc) {
        status[i] = kOk;
        slot_[j] = kSlotIdle;
        continue;
      }
      uint8_t* h = mem + espOff[i];
      NewJob(m, false, h, h + 8 + ivLen_, 8 + ivLen_, encLen[i], h + 8, 0, j);
      SubmitJob(m, decrypted);
    }
    FlushJobs(m, decrypted);
    for (uint32_t j = 0; j < n; j++)
      if (slot_[j] != kSlotIdle) {  // never seen
        status[base + j] = kCryptoError;
        slot_[j] = kSlotIdle;
      }
  }
}

bool Sa::RawGcm(bool encrypt, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* data, size_t len,
                uint8_t* tag) {
  if (cipher_ != Cipher::kAesGcm || len > kMaxEncLen || aadLen > kMaxEncLen) return false;
  return encrypt ? GcmSeal(iv8, aad, aadLen, data, len, tag) : GcmOpen(iv8, aad, aadLen, data, len, tag) == 1;
}

bool Sa::RawCbc(bool encrypt, const uint8_t iv[16], uint8_t* data, size_t len) {
  if (cipher_ != Cipher::kAesCbc || len % 16 != 0 || len > kMaxEncLen) return false;
  if (len == 0) return true;
  if (!MbFits(len, 0)) return encrypt ? CbcEncrypt(iv, data, len) : CbcDecrypt(iv, data, len);
  // Same job as the burst path.
  IMB_MGR* m = Mgr();
  bool ok = false;
  auto done = [&](IMB_JOB* job) {
    ok = job->status == IMB_STATUS_COMPLETED;
    slot_[0] = kSlotIdle;
  };
  NewJob(m, encrypt, data, data, 0, len, iv, 0, 0);
  SubmitJob(m, done);
  FlushJobs(m, done);
  return ok && slot_[0] == kSlotIdle;
}

bool Sa::RawHmac(const uint8_t* data, size_t len, uint8_t* out) {
  if (auth_ == Auth::kNone) return false;
  if (len == 0 || len > kMbMaxLen) {  // the job API needs 1..kMbMaxLen bytes
    hmac_.Mac(data, len, nullptr, 0, out);
    return true;
  }
  IMB_MGR* m = Mgr();
  bool ok = false;
  auto done = [&](IMB_JOB* job) {
    ok = job->status == IMB_STATUS_COMPLETED;
    slot_[0] = kSlotIdle;
  };
  NewJob(m, true, data, const_cast<uint8_t*>(data), 0, 0, nullptr, len, 0);
  SubmitJob(m, done);
  FlushJobs(m, done);
  if (!ok || slot_[0] != kSlotIdle) return false;
  memcpy(out, tags_[0], hmac_.DigestLen());
  return true;
}

}  // namespace lfpcrypto
