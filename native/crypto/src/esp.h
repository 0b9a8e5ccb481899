// ESP crypto of one SA (RFC 4303), independent of N-API: AES-GCM (RFC 4106), AES-CBC (RFC 3602), NULL encryption
// (RFC 2410), HMAC-SHA1-96 (RFC 2404), HMAC-SHA-256-128 / HMAC-SHA-512-256 (RFC 4868).
//
// Everything that costs (cipher contexts and key schedules, HMAC inner/outer states, the CBC IV generator) is set up
// once in Sa::Create; the burst functions only run the primitives over the caller's memory: no allocation, no
// syscall, no key derivation per packet. One Sa is used by one thread at a time (the contexts hold per-packet state).
//
// Libraries: AES-GCM, AES-CBC and HMAC-SHA1/256/512 run on intel-ipsec-mb 1.3 (GCM through its direct API per packet,
// CBC / HMAC through its multi-buffer job API: one chained job per packet, the whole burst in flight, one flush per
// burst), with one IMB_MGR per thread. OpenSSL gives the randomness, CRYPTO_memcmp / OPENSSL_cleanse, and the CBC /
// HMAC of the rare packets the job API refuses (more than kMbMaxLen bytes to hash or to CBC-encrypt).

#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

// The fallback HMAC uses OpenSSL's low-level SHA contexts (plain structs that can be copied), deprecated in OpenSSL 3:
// see HmacKey in esp.cc. binding.gyp defines OPENSSL_SUPPRESS_DEPRECATED for every file (it must precede any OpenSSL
// header); this is the fallback for a file that includes esp.h first.
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED 1
#endif
#include <openssl/evp.h>
#include <openssl/sha.h>
#define NO_COMPAT_IMB_API_053
#include <intel-ipsec-mb.h>

namespace lfpcrypto {

enum class Cipher { kNull, kAesCbc, kAesGcm };
enum class Auth { kNone, kSha1, kSha256, kSha512 };

// Packet status written by DecryptBurst.
enum : uint8_t { kOk = 0, kBadIcv = 1, kBadLength = 2, kCryptoError = 3 };

// What Sa::Create needs; keys are borrowed (the caller wipes its copies).
struct SaSpec {
  Cipher cipher = Cipher::kNull;
  const uint8_t* key = nullptr;  // AES key (GCM: without the salt)
  size_t keyLen = 0;
  uint8_t salt[4] = {0, 0, 0, 0};  // GCM
  bool gcmSequenceIv = false;       // GCM: explicit IV = the sequence number itself (tests); default: XOR a random per-SA mask
  unsigned icvLen = 0;             // GCM: 8, 12 or 16
  Auth auth = Auth::kNone;
  const uint8_t* authKey = nullptr;
  size_t authKeyLen = 0;
  unsigned truncLen = 0;  // HMAC ICV bytes
};

// HMAC over OpenSSL's SHA-1/SHA-256/SHA-512 block functions with the ipad/opad states precomputed at SA creation.
// Only for inputs intel-ipsec-mb's job API refuses (empty, or more than Sa::kMbMaxLen bytes); also gives DigestLen().
class HmacKey {
 public:
  bool Init(Auth auth, const uint8_t* key, size_t keyLen);
  // Full (untruncated) HMAC of data || tail into out (DigestLen() bytes).
  void Mac(const uint8_t* data, size_t len, const uint8_t* tail, size_t tailLen, uint8_t* out);
  unsigned DigestLen() const { return digestLen_; }
  void Wipe();
  ~HmacKey() { Wipe(); }

 private:
  union State {
    SHA_CTX s1;
    SHA256_CTX s256;
    SHA512_CTX s512;
  };
  Auth auth_ = Auth::kNone;
  unsigned digestLen_ = 0;
  State inner_{}, outer_{}, work_{};
};

class Sa {
 public:
  static constexpr size_t kMbMaxLen = 65534;  // longest hash / CBC-encrypt input intel-ipsec-mb's job API takes

  // nullptr and a message (never containing key material) when the spec cannot be used.
  static std::unique_ptr<Sa> Create(const SaSpec& spec, std::string* err);
  ~Sa();
  Sa(const Sa&) = delete;
  Sa& operator=(const Sa&) = delete;

  unsigned ivLen() const { return ivLen_; }
  unsigned icvLen() const { return icvLen_; }
  unsigned blockSize() const { return blockSize_; }
  Cipher cipher() const { return cipher_; }
  Auth auth() const { return auth_; }

  // Layout checks of encryptBurst: -1 when every packet fits, else the index of the first bad one (*why says what).
  long CheckEncrypt(size_t memLen, const uint32_t* espOff, const uint32_t* encLen, uint32_t count,
                    const char** why) const;
  // Returns -1, or the index of a packet on which OpenSSL failed (the burst must then be dropped).
  long EncryptBurst(uint8_t* mem, const uint32_t* espOff, const uint32_t* encLen, const uint32_t* seqLo,
                    const uint32_t* seqHi, uint32_t count, bool esn);
  void DecryptBurst(uint8_t* mem, size_t memLen, const uint32_t* espOff, const uint32_t* encLen,
                    const uint32_t* seqHi, uint32_t count, bool esn, uint8_t* status);

  // Primitives with explicit inputs, for known-answer tests (same code as the burst path).
  bool RawGcm(bool encrypt, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* data, size_t len,
              uint8_t* tag);
  bool RawCbc(bool encrypt, const uint8_t iv[16], uint8_t* data, size_t len);
  bool RawHmac(const uint8_t* data, size_t len, uint8_t* out /* DigestLen bytes */);
  unsigned HmacDigestLen() const { return hmac_.DigestLen(); }

 private:
  Sa() = default;
  bool GcmSeal(IMB_MGR* m, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* p, size_t len,
               uint8_t* tag);
  // 1 ok, 0 bad tag (p restored to the ciphertext), -1 OpenSSL error.
  int GcmOpen(IMB_MGR* m, const uint8_t iv8[8], const uint8_t* aad, size_t aadLen, uint8_t* p, size_t len,
              const uint8_t* tag);
  // OpenSSL EVP CBC: only for what the job API refuses (see kMbMaxLen).
  bool CbcEncrypt(const uint8_t iv[16], uint8_t* p, size_t len);
  bool CbcDecrypt(const uint8_t iv[16], uint8_t* p, size_t len);
  // Writes the next IV nonce (a per-SA 128-bit counter from a random start) into iv[0..16) (see EncryptBurst).
  void NextNonce(uint8_t* iv);
  // True when intel-ipsec-mb's job API takes a packet of this encLen (hashLen: bytes to authenticate, 0 if none;
  // encrypt: CBC runs over the IV block too).
  bool MbFits(size_t encLen, size_t hashLen, bool encrypt) const;
  // Gets a job from the manager and fills it: CBC over src[cipherOff, +cipherLen) into dst (cipherLen 0: NULL
  // cipher), HMAC over src[0, hashLen) into tag (tagLen bytes: the job API's "IPsec" or full length; hashLen 0: no
  // hash). user: the job's user_data (the packet's index). Then SubmitJob() (esp.cc).
  IMB_JOB* NewJob(IMB_MGR* m, bool encrypt, const uint8_t* src, uint8_t* dst, size_t cipherOff, size_t cipherLen,
                  const uint8_t* iv, size_t hashLen, uint8_t* tag, unsigned tagLen, uint32_t user);

  Cipher cipher_ = Cipher::kNull;
  Auth auth_ = Auth::kNone;
  unsigned ivLen_ = 0, icvLen_ = 0, blockSize_ = 4;
  uint8_t salt_[4] = {0, 0, 0, 0};
  uint32_t ivMaskHi_ = 0, ivMaskLo_ = 0;  // GCM: explicit IV = sequence number XOR this random per-SA mask (Linux seqiv)
  EVP_CIPHER_CTX* enc_ = nullptr;  // GCM / CBC, keyed once
  EVP_CIPHER_CTX* dec_ = nullptr;
  HmacKey hmac_;
  uint64_t ivNonce_[2] = {0, 0};  // CBC: the next IV nonce (random start), IV = E_K(nonce)
  // intel-ipsec-mb GCM key (expanded keys + GHASH table), 64-byte aligned
  struct gcm_key_data* gkey_ = nullptr;
  unsigned gKeyLen_ = 0;
  // intel-ipsec-mb job API (CBC / HMAC), computed once per SA: AES round keys (encryption and decryption schedules,
  // up to 15 x 16 bytes), the HMAC ipad/opad states (hash state after one block of key ^ 0x36 / 0x5c). The HMACs of
  // the jobs in flight go to a per-thread scratch ring (esp.cc), or straight into the packet (encrypt, see tagLen_).
  alignas(64) uint8_t encKeys_[16 * 15];
  alignas(64) uint8_t decKeys_[16 * 15];
  alignas(64) uint8_t ipad_[64];
  alignas(64) uint8_t opad_[64];
  unsigned cbcKeyLen_ = 0;
  IMB_HASH_ALG hashAlg_ = IMB_AUTH_NULL;
  unsigned tagLen_ = 0;      // HMAC length asked of the job API: icvLen_ when it is the "IPsec" or full length, else full
  bool tagDirect_ = false;   // encrypt: tagLen_ == icvLen_, the job writes the ICV into the packet itself
};

}  // namespace lfpcrypto
