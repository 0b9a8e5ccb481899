// alloc_check: proves the burst path allocates nothing. malloc & co. are interposed (this executable's definitions
// win over libc's for every library, OpenSSL included) and counted while bursts of every supported algorithm run:
// encrypt, decrypt, and decrypt of damaged packets (status 1), with and without ESN. Exit status 1 if anything was
// allocated in the steady state. Also counts what OpenSSL's EVP_MAC (HMAC) would allocate per packet, for reference.
//
// Build: node-gyp (target alloc_check in binding.gyp); run: native/crypto/build/Release/alloc_check

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "../src/esp.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

static volatile bool g_counting = false;
static volatile long g_allocs = 0;

extern "C" {
void* malloc(size_t n) {
  if (g_counting) g_allocs = g_allocs + 1;
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  if (g_counting) g_allocs = g_allocs + 1;
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  if (g_counting) g_allocs = g_allocs + 1;
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  if (g_counting) g_allocs = g_allocs + 1;
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
  void* p = memalign(a, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

using namespace lfpcrypto;

namespace {

struct Config {
  const char* name;
  Cipher cipher;
  size_t keyLen;
  unsigned icvLen;
  Auth auth;
  unsigned truncLen;
};

bool RunConfig(const Config& c) {
  uint8_t key[32], akey[64];
  for (int i = 0; i < 32; i++) key[i] = uint8_t(i * 7 + 1);
  for (int i = 0; i < 64; i++) akey[i] = uint8_t(i * 13 + 5);
  SaSpec s;
  s.cipher = c.cipher;
  s.key = key;
  s.keyLen = c.keyLen;
  memcpy(s.salt, "\x01\x02\x03\x04", 4);
  s.icvLen = c.icvLen;
  s.auth = c.auth;
  s.authKey = akey;
  s.authKeyLen = c.auth == Auth::kSha512 ? 64 : 32;
  s.truncLen = c.truncLen;
  std::string err;
  std::unique_ptr<Sa> sa = Sa::Create(s, &err);
  if (!sa) {
    printf("%-28s create failed: %s\n", c.name, err.c_str());
    return false;
  }
  const uint32_t kN = 256, kStride = 2048;
  std::vector<uint8_t> mem(kN * kStride);
  std::vector<uint32_t> off(kN), len(kN), lo(kN), hi(kN);
  std::vector<uint8_t> status(kN);
  for (uint32_t i = 0; i < kN; i++) {
    off[i] = i * kStride + 64;
    const uint32_t payload = 16 + (i * 37) % 1400;
    len[i] = (payload + sa->blockSize() - 1) / sa->blockSize() * sa->blockSize();
    lo[i] = i + 1;
    hi[i] = 7;
  }
  long allocs = 0, bad = 0;
  for (int round = 0; round < 200; round++) {
    const bool measure = round >= 3;  // first rounds: warm-up (lazy init inside OpenSSL, if any)
    const bool esn = round % 2 == 0;
    if (measure) g_counting = true;
    if (sa->EncryptBurst(mem.data(), off.data(), len.data(), lo.data(), hi.data(), kN, esn) >= 0) bad++;
    if (round % 3 == 0) mem[off[5] + 8 + sa->ivLen()] ^= 1;  // damage one packet: ICV failure path
    sa->DecryptBurst(mem.data(), mem.size(), off.data(), len.data(), hi.data(), kN, esn, status.data());
    g_counting = false;
    if (measure) allocs = g_allocs;
    for (uint32_t i = 0; i < kN; i++)
      if (status[i] != (round % 3 == 0 && i == 5 && (c.auth != Auth::kNone || c.cipher == Cipher::kAesGcm) ? 1 : 0))
        bad++;
    if (round % 3 == 0) mem[off[5] + 8 + sa->ivLen()] ^= 1;
  }
  printf("%-34s %ld allocations in 197 x (encrypt + decrypt) bursts of %u%s\n", c.name, allocs, kN,
         bad ? "  STATUS MISMATCH" : "");
  g_allocs = 0;
  return allocs == 0 && bad == 0;
}

// What EVP_MAC HMAC would cost (reference for the choice of the low-level SHA contexts).
void EvpMacReference() {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
  uint8_t key[32] = {1}, buf[1500] = {0}, out[64];
  size_t outl;
  EVP_MAC_init(ctx, key, sizeof key, params);
  g_allocs = 0;
  g_counting = true;
  for (int i = 0; i < 1000; i++) {
    EVP_MAC_init(ctx, nullptr, 0, nullptr);  // back to the precomputed key state
    EVP_MAC_update(ctx, buf, sizeof buf);
    EVP_MAC_final(ctx, out, &outl, sizeof out);
  }
  g_counting = false;
  printf("(reference) EVP_MAC HMAC-SHA256 reset per packet: %.2f allocations/packet\n", g_allocs / 1000.0);
  g_allocs = 0;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
}

}  // namespace

int main() {
  const Config configs[] = {
      {"rfc4106(gcm(aes)) 128, icv 128", Cipher::kAesGcm, 16, 16, Auth::kNone, 0},
      {"rfc4106(gcm(aes)) 256, icv 64", Cipher::kAesGcm, 32, 8, Auth::kNone, 0},
      {"cbc(aes) 128 + hmac(sha1) 96", Cipher::kAesCbc, 16, 0, Auth::kSha1, 12},
      {"cbc(aes) 128 + hmac(sha256) 128", Cipher::kAesCbc, 16, 0, Auth::kSha256, 16},
      {"cbc(aes) 256 + hmac(sha512) 256", Cipher::kAesCbc, 32, 0, Auth::kSha512, 32},
      {"cbc(aes) 256 (no auth)", Cipher::kAesCbc, 32, 0, Auth::kNone, 0},
      {"ecb(cipher_null) + hmac(sha256) 128", Cipher::kNull, 0, 0, Auth::kSha256, 16},
  };
  bool ok = true;
  for (const Config& c : configs) ok = RunConfig(c) && ok;
  EvpMacReference();
  printf(ok ? "alloc_check: OK, no allocation on the burst path\n" : "alloc_check: FAILED\n");
  return ok ? 0 : 1;
}
