// mb_bench: what is intel-ipsec-mb and what is our glue. Cycles (TSC ticks) per packet, bursts of 256 packets laid
// out like ESP in an mbuf pool (hot in cache), for:
//   raw  - intel-ipsec-mb's job API driven the way DPDK's aesni_mb PMD does (one job per packet, every field set,
//          CBC + HMAC chained, tag written straight to the packet; inbound: one HASH_CIPHER job per packet, ICV compared
//          after completion), flushed at the end of each burst; GCM: the direct API per packet (aesni_gcm PMD);
//   sa   - our Sa::EncryptBurst / Sa::DecryptBurst on the same buffers;
//   arch - the raw CBC + HMAC-SHA-256 loops and HMAC-SHA-256 alone (1432 bytes) with every manager flavour
//          (init_mb_mgr_auto / avx512 / avx2 / avx / sse, with and without IMB_FLAG_SHANI_OFF).
// Not part of the addon, not run by the tests. Build: node-gyp (target mb_bench in binding.gyp);
// run pinned: taskset -c 1 native/crypto/build/Release/mb_bench [ms per figure, default 300] [sizes, default 64,512,1408]

#include <x86intrin.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "../src/esp.h"

using namespace lfpcrypto;

namespace {

constexpr uint32_t kN = 256, kStride = 2304, kHead = 128;
double g_ms = 300;

double NowMs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Runs f (one burst of kN) repeatedly for ~g_ms, `prep` (untimed) before each; returns the lowest of 7 rounds of
// cycles per packet (the 2 cores are shared: the lowest is the least disturbed).
template <typename F, typename P>
double Measure(F&& f, P&& prep) {
  std::vector<double> r;
  for (int round = 0; round < 7; round++) {
    uint64_t cyc = 0, bursts = 0;
    const double end = NowMs() + g_ms / 7;
    while (NowMs() < end) {
      for (int k = 0; k < 16; k++) {
        prep();
        const uint64_t t0 = __rdtsc();
        f();
        cyc += __rdtsc() - t0;
        bursts++;
      }
    }
    r.push_back(double(cyc) / double(bursts * kN));
  }
  std::sort(r.begin(), r.end());
  return r[0];
}
template <typename F>
double Measure(F&& f) {
  return Measure(f, [] {});
}

struct Bufs {
  std::vector<uint8_t> mem;
  std::vector<uint32_t> off, len, lo, hi;
  std::vector<uint8_t> status;
  explicit Bufs(uint32_t encLen) : mem(kN * kStride + 4096), off(kN), len(kN), lo(kN), hi(kN), status(kN) {
    for (uint32_t i = 0; i < kN; i++) {
      off[i] = i * kStride + kHead;
      len[i] = encLen;
      lo[i] = i + 1;
      hi[i] = 0;
    }
    for (size_t i = 0; i < mem.size(); i++) mem[i] = uint8_t(i * 131 + 7);
  }
};

struct Keys {
  alignas(64) uint8_t enc[16 * 15], dec[16 * 15], ipad[64], opad[64];
  alignas(64) uint8_t tags[kN][32];
  alignas(16) uint8_t ivs[kN][16];
  uint8_t key[16], akey[32];
  Keys(IMB_MGR* m) {
    for (int i = 0; i < 16; i++) key[i] = uint8_t(i * 7 + 1);
    for (int i = 0; i < 32; i++) akey[i] = uint8_t(i * 13 + 5);
    IMB_AES_KEYEXP_128(m, key, enc, dec);
    uint8_t buf[64];
    memset(buf, 0x36, 64);
    for (int i = 0; i < 32; i++) buf[i] ^= akey[i];
    IMB_SHA256_ONE_BLOCK(m, buf, ipad);
    memset(buf, 0x5c, 64);
    for (int i = 0; i < 32; i++) buf[i] ^= akey[i];
    IMB_SHA256_ONE_BLOCK(m, buf, opad);
    for (uint32_t i = 0; i < kN; i++)
      for (int b = 0; b < 16; b++) ivs[i][b] = uint8_t(i + b * 3);
  }
};

// DPDK aesni_mb-like: one chained job per packet, every field written, flush at the end of the burst.
void RawCbcEncrypt(IMB_MGR* m, Keys& k, Bufs& b, uint32_t burst = kN, bool nocheck = false) {
  for (uint32_t base = 0; base < kN; base += burst) {
    for (uint32_t i = base; i < base + burst; i++) {
      uint8_t* h = b.mem.data() + b.off[i];
      const uint32_t len = b.len[i];
      IMB_JOB* job = IMB_GET_NEXT_JOB(m);
      job->cipher_direction = IMB_DIR_ENCRYPT;
      job->chain_order = IMB_ORDER_CIPHER_HASH;
      job->cipher_mode = IMB_CIPHER_CBC;
      job->hash_alg = IMB_AUTH_HMAC_SHA_256;
      job->enc_keys = k.enc;
      job->dec_keys = k.dec;
      job->key_len_in_bytes = 16;
      memcpy(h + 8, k.ivs[i], 16);  // DPDK: IV in the op; ESP: in the packet
      job->iv = h + 8;
      job->iv_len_in_bytes = 16;
      job->src = h;
      job->dst = h + 24;
      job->cipher_start_src_offset_in_bytes = 24;
      job->msg_len_to_cipher_in_bytes = len;
      job->hash_start_src_offset_in_bytes = 0;
      job->msg_len_to_hash_in_bytes = 24 + len;
      job->u.HMAC._hashed_auth_key_xor_ipad = k.ipad;
      job->u.HMAC._hashed_auth_key_xor_opad = k.opad;
      job->auth_tag_output = h + 24 + len;
      job->auth_tag_output_len_in_bytes = 16;
      job->user_data = h;
      IMB_JOB* j = nocheck ? IMB_SUBMIT_JOB_NOCHECK(m) : IMB_SUBMIT_JOB(m);
      while (j != nullptr) {
        if (j->status != IMB_STATUS_COMPLETED) abort();
        j = IMB_GET_COMPLETED_JOB(m);
      }
    }
    IMB_JOB* j;
    while ((j = IMB_FLUSH_JOB(m)) != nullptr)
      if (j->status != IMB_STATUS_COMPLETED) abort();
  }
}

// Inbound like DPDK (verify + decrypt in one HASH_CIPHER job, digest compared after completion).
int RawCbcDecrypt(IMB_MGR* m, Keys& k, Bufs& b, uint32_t burst = kN, bool nocheck = false) {
  int bad = 0;
  auto check = [&](IMB_JOB* j) {
    if (j->status != IMB_STATUS_COMPLETED) abort();
    const uint32_t i = uint32_t(reinterpret_cast<uintptr_t>(j->user_data));
    bad += memcmp(k.tags[i], b.mem.data() + b.off[i] + 24 + b.len[i], 16) != 0;
  };
  for (uint32_t base = 0; base < kN; base += burst) {
    for (uint32_t i = base; i < base + burst; i++) {
      uint8_t* h = b.mem.data() + b.off[i];
      const uint32_t len = b.len[i];
      IMB_JOB* job = IMB_GET_NEXT_JOB(m);
      job->cipher_direction = IMB_DIR_DECRYPT;
      job->chain_order = IMB_ORDER_HASH_CIPHER;
      job->cipher_mode = IMB_CIPHER_CBC;
      job->hash_alg = IMB_AUTH_HMAC_SHA_256;
      job->enc_keys = k.enc;
      job->dec_keys = k.dec;
      job->key_len_in_bytes = 16;
      job->iv = h + 8;
      job->iv_len_in_bytes = 16;
      job->src = h;
      job->dst = h + 24;
      job->cipher_start_src_offset_in_bytes = 24;
      job->msg_len_to_cipher_in_bytes = len;
      job->hash_start_src_offset_in_bytes = 0;
      job->msg_len_to_hash_in_bytes = 24 + len;
      job->u.HMAC._hashed_auth_key_xor_ipad = k.ipad;
      job->u.HMAC._hashed_auth_key_xor_opad = k.opad;
      job->auth_tag_output = k.tags[i];
      job->auth_tag_output_len_in_bytes = 16;
      job->user_data = reinterpret_cast<void*>(uintptr_t(i));
      IMB_JOB* j = nocheck ? IMB_SUBMIT_JOB_NOCHECK(m) : IMB_SUBMIT_JOB(m);
      while (j != nullptr) {
        check(j);
        j = IMB_GET_COMPLETED_JOB(m);
      }
    }
    IMB_JOB* j;
    while ((j = IMB_FLUSH_JOB(m)) != nullptr) check(j);
  }
  return bad;
}

// HMAC-SHA-256 alone over hashLen bytes of each packet.
void RawHmac(IMB_MGR* m, Keys& k, Bufs& b, uint32_t hashLen) {
  for (uint32_t i = 0; i < kN; i++) {
    uint8_t* h = b.mem.data() + b.off[i];
    IMB_JOB* job = IMB_GET_NEXT_JOB(m);
    job->cipher_direction = IMB_DIR_ENCRYPT;
    job->chain_order = IMB_ORDER_HASH_CIPHER;
    job->cipher_mode = IMB_CIPHER_NULL;
    job->hash_alg = IMB_AUTH_HMAC_SHA_256;
    job->src = h;
    job->dst = h;
    job->cipher_start_src_offset_in_bytes = 0;
    job->msg_len_to_cipher_in_bytes = 0;
    job->hash_start_src_offset_in_bytes = 0;
    job->msg_len_to_hash_in_bytes = hashLen;
    job->u.HMAC._hashed_auth_key_xor_ipad = k.ipad;
    job->u.HMAC._hashed_auth_key_xor_opad = k.opad;
    job->auth_tag_output = k.tags[i];
    job->auth_tag_output_len_in_bytes = 16;
    IMB_JOB* j = IMB_SUBMIT_JOB(m);
    while (j != nullptr) j = IMB_GET_COMPLETED_JOB(m);
  }
  while (IMB_FLUSH_JOB(m) != nullptr) {
  }
}

// CBC alone (encrypt or decrypt).
void RawCbc(IMB_MGR* m, Keys& k, Bufs& b, bool enc) {
  for (uint32_t i = 0; i < kN; i++) {
    uint8_t* h = b.mem.data() + b.off[i];
    IMB_JOB* job = IMB_GET_NEXT_JOB(m);
    job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
    job->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
    job->cipher_mode = IMB_CIPHER_CBC;
    job->hash_alg = IMB_AUTH_NULL;
    job->enc_keys = k.enc;
    job->dec_keys = k.dec;
    job->key_len_in_bytes = 16;
    job->iv = k.ivs[i];
    job->iv_len_in_bytes = 16;
    job->src = h;
    job->dst = h + 24;
    job->cipher_start_src_offset_in_bytes = 24;
    job->msg_len_to_cipher_in_bytes = b.len[i];
    job->hash_start_src_offset_in_bytes = 0;
    job->msg_len_to_hash_in_bytes = 0;
    IMB_JOB* j = IMB_SUBMIT_JOB(m);
    while (j != nullptr) j = IMB_GET_COMPLETED_JOB(m);
  }
  while (IMB_FLUSH_JOB(m) != nullptr) {
  }
}

void RawGcm(IMB_MGR* m, const gcm_key_data* gk, Bufs& b, bool enc) {
  for (uint32_t i = 0; i < kN; i++) {
    uint8_t* h = b.mem.data() + b.off[i];
    uint8_t nonce[12] = {1, 2, 3, 4};
    memcpy(nonce + 4, h + 8, 8);
    gcm_context_data ctx;
    uint8_t tag[16];
    if (enc) IMB_AES128_GCM_ENC(m, gk, &ctx, h + 16, h + 16, b.len[i], nonce, h, 8, h + 16 + b.len[i], 16);
    else IMB_AES128_GCM_DEC(m, gk, &ctx, h + 16, h + 16, b.len[i], nonce, h, 8, tag, 16);
  }
}

std::unique_ptr<Sa> MakeSa(bool gcm) {
  uint8_t key[16], akey[32];
  for (int i = 0; i < 16; i++) key[i] = uint8_t(i * 7 + 1);
  for (int i = 0; i < 32; i++) akey[i] = uint8_t(i * 13 + 5);
  SaSpec s;
  s.cipher = gcm ? Cipher::kAesGcm : Cipher::kAesCbc;
  s.key = key;
  s.keyLen = 16;
  memcpy(s.salt, "\x01\x02\x03\x04", 4);
  s.icvLen = 16;
  if (!gcm) {
    s.auth = Auth::kSha256;
    s.authKey = akey;
    s.authKeyLen = 32;
    s.truncLen = 16;
  }
  std::string err;
  auto sa = Sa::Create(s, &err);
  if (!sa) { fprintf(stderr, "Sa::Create: %s\n", err.c_str()); exit(1); }
  return sa;
}

const char* ArchName(uint32_t a) {
  switch (a) {
    case IMB_ARCH_NOAESNI: return "noaesni";
    case IMB_ARCH_SSE: return "sse";
    case IMB_ARCH_AVX: return "avx";
    case IMB_ARCH_AVX2: return "avx2";
    case IMB_ARCH_AVX512: return "avx512";
    default: return "?";
  }
}

void BenchSize(uint32_t encLen) {
  IMB_MGR* m = alloc_mb_mgr(0);
  init_mb_mgr_auto(m, nullptr);
  Keys k(m);
  // CBC + SHA256
  {
    Bufs b(encLen);
    auto sa = MakeSa(false);
    const double rawEnc = Measure([&] { RawCbcEncrypt(m, k, b); });
    const double rawEnc32 = Measure([&] { RawCbcEncrypt(m, k, b, 32); });
    const double rawEncNc = Measure([&] { RawCbcEncrypt(m, k, b, kN, true); });
    const double saEnc = Measure([&] { sa->EncryptBurst(b.mem.data(), b.off.data(), b.len.data(), b.lo.data(), b.hi.data(), kN, false); });
    // decrypt: prepare valid packets (Sa), snapshot, restore before every burst (untimed)
    sa->EncryptBurst(b.mem.data(), b.off.data(), b.len.data(), b.lo.data(), b.hi.data(), kN, false);
    const std::vector<uint8_t> snap = b.mem;
    auto restore = [&] { memcpy(b.mem.data(), snap.data(), snap.size()); };
    int bad = 0;
    auto saKeys = [&] {};
    (void)saKeys;
    const double saDec = Measure([&] {
      sa->DecryptBurst(b.mem.data(), b.mem.size(), b.off.data(), b.len.data(), b.hi.data(), kN, false, b.status.data());
    }, restore);
    for (uint32_t i = 0; i < kN; i++) bad += b.status[i] != 0;
    // raw decrypt with the raw keys: packets made by the raw encrypt
    RawCbcEncrypt(m, k, b);
    const std::vector<uint8_t> snap2 = b.mem;
    auto restore2 = [&] { memcpy(b.mem.data(), snap2.data(), snap2.size()); };
    int rawBad = 0;
    const double rawDec = Measure([&] { rawBad += RawCbcDecrypt(m, k, b); }, restore2);
    const double rawDec32 = Measure([&] { rawBad += RawCbcDecrypt(m, k, b, 32); }, restore2);
    const double rawDecNc = Measure([&] { rawBad += RawCbcDecrypt(m, k, b, kN, true); }, restore2);
    printf("%5u cbc128+sha256-128 encrypt: raw %7.1f (burst 32: %7.1f, nocheck: %7.1f)  sa %7.1f  glue %+6.1f\n", encLen,
           rawEnc, rawEnc32, rawEncNc, saEnc, saEnc - rawEnc);
    printf("%5u cbc128+sha256-128 decrypt: raw %7.1f (burst 32: %7.1f, nocheck: %7.1f)  sa %7.1f  glue %+6.1f%s%s\n",
           encLen, rawDec, rawDec32, rawDecNc, saDec, saDec - rawDec, bad ? "  SA STATUS BAD" : "",
           rawBad ? "  RAW ICV BAD" : "");
    const double hm = Measure([&] { RawHmac(m, k, b, encLen + 24); });
    const double ce = Measure([&] { RawCbc(m, k, b, true); });
    const double cd = Measure([&] { RawCbc(m, k, b, false); });
    printf("%5u   parts: hmac-sha256 alone %7.1f  cbc enc alone %7.1f  cbc dec alone %7.1f\n", encLen, hm, ce, cd);
  }
  // GCM
  {
    Bufs b(encLen);
    auto sa = MakeSa(true);
    alignas(64) static gcm_key_data gk;
    IMB_AES128_GCM_PRE(m, k.key, &gk);
    const double rawEnc = Measure([&] { RawGcm(m, &gk, b, true); });
    const double rawDec = Measure([&] { RawGcm(m, &gk, b, false); });
    const double saEnc = Measure([&] { sa->EncryptBurst(b.mem.data(), b.off.data(), b.len.data(), b.lo.data(), b.hi.data(), kN, false); });
    sa->EncryptBurst(b.mem.data(), b.off.data(), b.len.data(), b.lo.data(), b.hi.data(), kN, false);
    const std::vector<uint8_t> snap = b.mem;
    const double saDec = Measure([&] {
      sa->DecryptBurst(b.mem.data(), b.mem.size(), b.off.data(), b.len.data(), b.hi.data(), kN, false, b.status.data());
    }, [&] { memcpy(b.mem.data(), snap.data(), snap.size()); });
    int bad = 0;
    for (uint32_t i = 0; i < kN; i++) bad += b.status[i] != 0;
    printf("%5u gcm128 encrypt: raw %7.1f  sa %7.1f  glue %+6.1f\n", encLen, rawEnc, saEnc, saEnc - rawEnc);
    printf("%5u gcm128 decrypt: raw %7.1f  sa %7.1f  glue %+6.1f%s\n", encLen, rawDec, saDec, saDec - rawDec,
           bad ? "  SA STATUS BAD" : "");
  }
  free_mb_mgr(m);
}

void BenchArch() {
  struct Flavour { const char* name; void (*init)(IMB_MGR*); uint64_t flags; };
  auto autoInit = [](IMB_MGR* m) { init_mb_mgr_auto(m, nullptr); };
  const Flavour fl[] = {
      {"auto", autoInit, 0},
      {"auto SHANI_OFF", autoInit, IMB_FLAG_SHANI_OFF},
      {"avx512", init_mb_mgr_avx512, 0},
      {"avx512 SHANI_OFF", init_mb_mgr_avx512, IMB_FLAG_SHANI_OFF},
      {"avx2", init_mb_mgr_avx2, 0},
      {"avx2 SHANI_OFF", init_mb_mgr_avx2, IMB_FLAG_SHANI_OFF},
      {"avx", init_mb_mgr_avx, 0},
      {"sse", init_mb_mgr_sse, 0},
      {"sse SHANI_OFF", init_mb_mgr_sse, IMB_FLAG_SHANI_OFF},
  };
  Bufs b(1408);
  for (const Flavour& f : fl) {
    IMB_MGR* m = alloc_mb_mgr(f.flags);
    f.init(m);
    Keys k(m);
    const double hm = Measure([&] { RawHmac(m, k, b, 1432); });
    const double ce = Measure([&] { RawCbc(m, k, b, true); });
    const double enc = Measure([&] { RawCbcEncrypt(m, k, b); });
    RawCbcEncrypt(m, k, b);
    const std::vector<uint8_t> snap = b.mem;
    int bad = 0;
    const double dec = Measure([&] { bad += RawCbcDecrypt(m, k, b); }, [&] { memcpy(b.mem.data(), snap.data(), snap.size()); });
    printf("%-18s used_arch %-7s features 0x%llx: hmac-sha256(1432) %6.1f  cbc-enc(1408) %6.1f  cbc+hmac enc %6.1f  dec %6.1f%s\n",
           f.name, ArchName(m->used_arch), (unsigned long long)m->features, hm, ce, enc, dec, bad ? " BAD" : "");
    free_mb_mgr(m);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_ms = atof(argv[1]);
  std::vector<uint32_t> sizes = {64, 512, 1408};
  if (argc > 2) {
    sizes.clear();
    for (char* p = argv[2]; *p;) {
      sizes.push_back(uint32_t(strtoul(p, &p, 10)));
      if (*p == ',') p++;
    }
  }
  const bool archOnly = getenv("ARCH_ONLY") != nullptr, noArch = getenv("NO_ARCH") != nullptr;
  printf("intel-ipsec-mb %s; cycles (TSC) per packet, bursts of %u, lowest of 7 rounds\n", imb_get_version_str(), kN);
  if (!archOnly)
    for (uint32_t s : sizes) BenchSize(s);
  if (!noArch) BenchArch();
  return 0;
}
