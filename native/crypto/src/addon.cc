// N-API entry points of lfp_crypto (node-addon-api, C++ exceptions). encryptBurst/decryptBurst are the hot path:
// one call per burst, typed arrays only, no allocation; createSa/destroySa are control path.
//
// SAs live in the addon instance of the calling environment (main thread or Worker): a handle is only valid in the
// thread that created it, and an SA is never used by two threads at once.

#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include <openssl/crypto.h>

#include "esp.h"

namespace lfpcrypto {
namespace {

constexpr size_t kMaxKey = 1024;  // bytes, any key (HMAC keys longer than the hash block are hashed anyway)

[[noreturn]] void ThrowCoded(const Napi::Error& e, const char* code) {
  Napi::Error err = e;
  err.Set("code", Napi::String::New(err.Env(), code));
  throw err;
}
[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg) {
  ThrowCoded(Napi::TypeError::New(env, msg), "ERR_INVALID_ARG_TYPE");
}
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg) {
  ThrowCoded(Napi::RangeError::New(env, msg), "ERR_OUT_OF_RANGE");
}
// Algorithm, key size or ICV size that cannot be used.
[[noreturn]] void ThrowUnsupported(Napi::Env env, const std::string& msg) {
  ThrowCoded(Napi::Error::New(env, msg), "ERR_LFP_CRYPTO_UNSUPPORTED");
}
[[noreturn]] void ThrowCrypto(Napi::Env env, const std::string& msg) {
  ThrowCoded(Napi::Error::New(env, msg), "ERR_LFP_CRYPTO_FAILED");
}

// A key decoded on the stack; wiped whatever happens.
struct KeyBuf {
  uint8_t b[kMaxKey];
  size_t n = 0;
  ~KeyBuf() { OPENSSL_cleanse(b, sizeof b); }
};
struct HexBuf {
  char c[2 * kMaxKey + 2];
  ~HexBuf() { OPENSSL_cleanse(c, sizeof c); }
};

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Messages name the field and at most the key's length: never its content.
void ReadHexKey(Napi::Env env, Napi::Value v, const std::string& what, KeyBuf* out) {
  if (!v.IsString()) ThrowType(env, "createSa: " + what + ".keyHex must be a string of hex digits");
  size_t len = 0;
  napi_status st = napi_get_value_string_latin1(env, v, nullptr, 0, &len);
  if (st != napi_ok) ThrowType(env, "createSa: " + what + ".keyHex cannot be read");
  if (len > 2 * kMaxKey) ThrowUnsupported(env, "createSa: " + what + " key longer than " + std::to_string(kMaxKey) + " bytes");
  HexBuf hex;
  napi_get_value_string_latin1(env, v, hex.c, sizeof hex.c, &len);
  if (len % 2 != 0) ThrowType(env, "createSa: " + what + ".keyHex has an odd number of hex digits (" + std::to_string(len) + ")");
  for (size_t i = 0; i < len; i += 2) {
    const int hi = HexVal(hex.c[i]), lo = HexVal(hex.c[i + 1]);
    if (hi < 0 || lo < 0) ThrowType(env, "createSa: " + what + ".keyHex contains a character that is not a hex digit");
    out->b[i / 2] = uint8_t(hi << 4 | lo);
  }
  out->n = len / 2;
}

Napi::Object ObjProp(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsObject()) ThrowType(env, "createSa: " + what + " must be an object");
  return v.As<Napi::Object>();
}

std::string NameProp(Napi::Env env, Napi::Object o, const std::string& what) {
  Napi::Value v = o.Get("name");
  if (!v.IsString()) ThrowType(env, "createSa: " + what + ".name must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// An integer property; `dflt` when absent (-1: required).
long IntProp(Napi::Env env, Napi::Object o, const char* key, const std::string& what, long dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && dflt >= 0) return dflt;
  if (!v.IsNumber()) ThrowType(env, "createSa: " + what + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 1e6) || std::floor(d) != d) ThrowRange(env, "createSa: " + what + "." + key + " must be an integer");
  return long(d);
}

bool Present(Napi::Value v) { return !v.IsUndefined() && !v.IsNull(); }

template <typename T>
T* Typed(Napi::Env env, Napi::Value v, napi_typedarray_type want, const char* fn, const char* name, size_t* len) {
  napi_typedarray_type type;
  void* data = nullptr;
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, &data, nullptr, nullptr) != napi_ok || type != want) {
    const char* tn = want == napi_uint8_array ? "Uint8Array" : "Uint32Array";
    ThrowType(env, std::string(fn) + ": " + name + " must be a " + tn);
  }
  return static_cast<T*>(data);
}

uint32_t CountArg(Napi::Env env, Napi::Value v, const char* fn, size_t max) {
  if (!v.IsNumber()) ThrowType(env, std::string(fn) + ": count must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || std::floor(d) != d || d > double(max))
    ThrowRange(env, std::string(fn) + ": count must be an integer from 0 to " + std::to_string(max) +
                        " (the shortest array)");
  return uint32_t(d);
}

bool BoolArg(Napi::Env env, Napi::Value v, const char* fn, const char* name) {
  if (!v.IsBoolean()) ThrowType(env, std::string(fn) + ": " + name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

size_t Min(size_t a, size_t b) { return a < b ? a : b; }

class CryptoAddon : public Napi::Addon<CryptoAddon> {
 public:
  CryptoAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("createSa", &CryptoAddon::CreateSa),
                             InstanceMethod("destroySa", &CryptoAddon::DestroySa),
                             InstanceMethod("saInfo", &CryptoAddon::SaInfo),
                             InstanceMethod("liveSas", &CryptoAddon::LiveSas),
                             InstanceMethod("encryptBurst", &CryptoAddon::EncryptBurst),
                             InstanceMethod("decryptBurst", &CryptoAddon::DecryptBurst),
                             InstanceMethod("rawGcm", &CryptoAddon::RawGcm),
                             InstanceMethod("rawCbc", &CryptoAddon::RawCbc),
                             InstanceMethod("rawHmac", &CryptoAddon::RawHmac),
                         });
  }
  // Environment teardown (process exit, Worker end): the map's destructors wipe every SA.

 private:
  using Table = std::unordered_map<uint32_t, std::unique_ptr<Sa>>;

  Table::iterator Find(Napi::Env env, Napi::Value v, const char* fn) {
    if (!v.IsNumber()) ThrowType(env, std::string(fn) + ": h must be an SA handle (number)");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 1 && d <= 4294967295.0 && std::floor(d) == d) {
      auto it = sas_.find(uint32_t(d));
      if (it != sas_.end()) return it;
    }
    ThrowRange(env, std::string(fn) + ": h is not a live SA handle (destroyed, or from another thread)");
  }
  Sa* Get(Napi::Env env, Napi::Value v, const char* fn) { return Find(env, v, fn)->second.get(); }

  Napi::Value CreateSa(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object alg = ObjProp(env, info[0], "alg");
    Napi::Value aead = alg.Get("aead"), enc = alg.Get("enc"), auth = alg.Get("auth");
    const bool hasAead = Present(aead), hasEnc = Present(enc), hasAuth = Present(auth);
    if (hasAead && (hasEnc || hasAuth))
      ThrowUnsupported(env, "createSa: an AEAD SA (alg.aead) cannot also have alg.enc or alg.auth");
    if (!hasAead && !hasEnc)
      ThrowUnsupported(env, "createSa: an ESP SA needs alg.aead or alg.enc (ecb(cipher_null) for authentication only)");

    SaSpec spec;
    KeyBuf k1, k2;
    if (hasAead) {
      Napi::Object a = ObjProp(env, aead, "alg.aead");
      const std::string name = NameProp(env, a, "alg.aead");
      if (name != "rfc4106(gcm(aes))")
        ThrowUnsupported(env, "createSa: unsupported AEAD algorithm \"" + name + "\" (supported: rfc4106(gcm(aes)))");
      ReadHexKey(env, a.Get("keyHex"), "alg.aead", &k1);
      if (k1.n != 20 && k1.n != 28 && k1.n != 36)
        ThrowUnsupported(env, "createSa: rfc4106(gcm(aes)) key must be 20, 28 or 36 bytes (AES-128/192/256 key + "
                              "4-byte salt), got " + std::to_string(k1.n));
      const long icvBits = IntProp(env, a, "icvBits", "alg.aead", -1);
      if (icvBits != 64 && icvBits != 96 && icvBits != 128)
        ThrowUnsupported(env, "createSa: rfc4106(gcm(aes)) icvBits must be 64, 96 or 128, got " + std::to_string(icvBits));
      spec.cipher = Cipher::kAesGcm;
      spec.key = k1.b;
      spec.keyLen = k1.n - 4;
      memcpy(spec.salt, k1.b + k1.n - 4, 4);
      spec.icvLen = unsigned(icvBits / 8);
      Napi::Value ivMode = a.Get("iv");
      if (Present(ivMode)) {
        const std::string m = ivMode.IsString() ? ivMode.As<Napi::String>().Utf8Value() : std::string("?");
        if (m == "sequence") spec.gcmSequenceIv = true;
        else if (m != "masked") ThrowUnsupported(env, "createSa: alg.aead.iv must be \"masked\" (default) or \"sequence\"");
      }
    }
    if (hasEnc) {
      Napi::Object e = ObjProp(env, enc, "alg.enc");
      const std::string name = NameProp(env, e, "alg.enc");
      if (name == "cbc(aes)") {
        ReadHexKey(env, e.Get("keyHex"), "alg.enc", &k1);
        if (k1.n != 16 && k1.n != 24 && k1.n != 32)
          ThrowUnsupported(env, "createSa: cbc(aes) key must be 16, 24 or 32 bytes, got " + std::to_string(k1.n));
        spec.cipher = Cipher::kAesCbc;
        spec.key = k1.b;
        spec.keyLen = k1.n;
      } else if (name == "ecb(cipher_null)") {
        Napi::Value kv = e.Get("keyHex");
        if (Present(kv)) ReadHexKey(env, kv, "alg.enc", &k1);
        if (k1.n != 0) ThrowUnsupported(env, "createSa: ecb(cipher_null) takes an empty key, got " + std::to_string(k1.n) + " bytes");
        spec.cipher = Cipher::kNull;
      } else {
        ThrowUnsupported(env, "createSa: unsupported encryption algorithm \"" + name +
                                  "\" (supported: cbc(aes), ecb(cipher_null))");
      }
    }
    if (hasAuth) {
      Napi::Object a = ObjProp(env, auth, "alg.auth");
      const std::string name = NameProp(env, a, "alg.auth");
      unsigned digestBits;
      if (name == "hmac(sha1)") { spec.auth = Auth::kSha1; digestBits = 160; }
      else if (name == "hmac(sha256)") { spec.auth = Auth::kSha256; digestBits = 256; }
      else if (name == "hmac(sha512)") { spec.auth = Auth::kSha512; digestBits = 512; }
      else ThrowUnsupported(env, "createSa: unsupported authentication algorithm \"" + name +
                                     "\" (supported: hmac(sha1), hmac(sha256), hmac(sha512))");
      ReadHexKey(env, a.Get("keyHex"), "alg.auth", &k2);
      const long trunc = IntProp(env, a, "truncBits", "alg.auth", -1);
      if (trunc < 64 || trunc > long(digestBits) || trunc % 8 != 0)
        ThrowUnsupported(env, "createSa: " + name + " truncBits must be a multiple of 8 from 64 to " +
                                  std::to_string(digestBits) + ", got " + std::to_string(trunc));
      spec.authKey = k2.b;
      spec.authKeyLen = k2.n;
      spec.truncLen = unsigned(trunc / 8);
    }
    std::string err;
    std::unique_ptr<Sa> sa = Sa::Create(spec, &err);
    if (!sa) ThrowCrypto(env, "createSa: " + err);
    while (next_ == 0 || sas_.count(next_) != 0) next_++;
    const uint32_t h = next_++;
    sas_.emplace(h, std::move(sa));
    return Napi::Number::New(env, h);
  }

  Napi::Value DestroySa(const Napi::CallbackInfo& info) {
    sas_.erase(Find(info.Env(), info[0], "destroySa"));  // ~Sa wipes the keys
    return info.Env().Undefined();
  }

  Napi::Value SaInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Sa* sa = Get(env, info[0], "saInfo");
    Napi::Object o = Napi::Object::New(env);
    o.Set("ivLen", sa->ivLen());
    o.Set("icvLen", sa->icvLen());
    o.Set("blockSize", sa->blockSize());
    return o;
  }

  Napi::Value LiveSas(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(sas_.size())); }

  // encryptBurst(h, mem, espOff, encLen, seqLo, seqHi, count, esn)
  Napi::Value EncryptBurst(const Napi::CallbackInfo& info) {
    static const char* fn = "encryptBurst";
    Napi::Env env = info.Env();
    Sa* sa = Get(env, info[0], fn);
    size_t memLen, n1, n2, n3, n4;
    uint8_t* mem = Typed<uint8_t>(env, info[1], napi_uint8_array, fn, "mem", &memLen);
    const uint32_t* espOff = Typed<uint32_t>(env, info[2], napi_uint32_array, fn, "espOff", &n1);
    const uint32_t* encLen = Typed<uint32_t>(env, info[3], napi_uint32_array, fn, "encLen", &n2);
    const uint32_t* seqLo = Typed<uint32_t>(env, info[4], napi_uint32_array, fn, "seqLo", &n3);
    const uint32_t* seqHi = Typed<uint32_t>(env, info[5], napi_uint32_array, fn, "seqHi", &n4);
    const uint32_t count = CountArg(env, info[6], fn, Min(Min(n1, n2), Min(n3, n4)));
    const bool esn = BoolArg(env, info[7], fn, "esn");
    const char* why = "";
    const long bad = sa->CheckEncrypt(memLen, espOff, encLen, count, &why);
    if (bad >= 0)  // nothing has been touched
      ThrowRange(env, std::string(fn) + ": packet " + std::to_string(bad) + ": espOff " + std::to_string(espOff[bad]) +
                          ", encLen " + std::to_string(encLen[bad]) + " " + why + " (mem has " +
                          std::to_string(memLen) + " bytes)");
    const long failed = sa->EncryptBurst(mem, espOff, encLen, seqLo, seqHi, count, esn);
    if (failed >= 0)
      ThrowCrypto(env, std::string(fn) + ": the crypto library (intel-ipsec-mb / OpenSSL) failed on packet " + std::to_string(failed) +
                           "; drop the whole burst");
    return env.Undefined();
  }

  // decryptBurst(h, mem, espOff, encLen, seqHi, count, esn, status)
  Napi::Value DecryptBurst(const Napi::CallbackInfo& info) {
    static const char* fn = "decryptBurst";
    Napi::Env env = info.Env();
    Sa* sa = Get(env, info[0], fn);
    size_t memLen, n1, n2, n3, n4;
    uint8_t* mem = Typed<uint8_t>(env, info[1], napi_uint8_array, fn, "mem", &memLen);
    const uint32_t* espOff = Typed<uint32_t>(env, info[2], napi_uint32_array, fn, "espOff", &n1);
    const uint32_t* encLen = Typed<uint32_t>(env, info[3], napi_uint32_array, fn, "encLen", &n2);
    const uint32_t* seqHi = Typed<uint32_t>(env, info[4], napi_uint32_array, fn, "seqHi", &n3);
    uint8_t* status = Typed<uint8_t>(env, info[7], napi_uint8_array, fn, "status", &n4);
    const uint32_t count = CountArg(env, info[5], fn, Min(Min(n1, n2), Min(n3, n4)));
    const bool esn = BoolArg(env, info[6], fn, "esn");
    sa->DecryptBurst(mem, memLen, espOff, encLen, seqHi, count, esn, status);
    return env.Undefined();
  }

  // rawGcm(h, encrypt, iv8, aad, data, tag) -> boolean (decrypt: tag verified)
  Napi::Value RawGcm(const Napi::CallbackInfo& info) {
    static const char* fn = "rawGcm";
    Napi::Env env = info.Env();
    Sa* sa = Get(env, info[0], fn);
    const bool encrypt = BoolArg(env, info[1], fn, "encrypt");
    size_t ivLen, aadLen, len, tagLen;
    const uint8_t* iv = Typed<uint8_t>(env, info[2], napi_uint8_array, fn, "iv", &ivLen);
    const uint8_t* aad = Typed<uint8_t>(env, info[3], napi_uint8_array, fn, "aad", &aadLen);
    uint8_t* data = Typed<uint8_t>(env, info[4], napi_uint8_array, fn, "data", &len);
    uint8_t* tag = Typed<uint8_t>(env, info[5], napi_uint8_array, fn, "tag", &tagLen);
    if (ivLen != 8 || tagLen != sa->icvLen() || sa->cipher() != Cipher::kAesGcm)
      ThrowRange(env, "rawGcm: needs a GCM SA, an 8-byte explicit IV and an icvLen-byte tag");
    return Napi::Boolean::New(env, sa->RawGcm(encrypt, iv, aad, aadLen, data, len, tag));
  }

  // rawCbc(h, encrypt, iv16, data) -> boolean
  Napi::Value RawCbc(const Napi::CallbackInfo& info) {
    static const char* fn = "rawCbc";
    Napi::Env env = info.Env();
    Sa* sa = Get(env, info[0], fn);
    const bool encrypt = BoolArg(env, info[1], fn, "encrypt");
    size_t ivLen, len;
    const uint8_t* iv = Typed<uint8_t>(env, info[2], napi_uint8_array, fn, "iv", &ivLen);
    uint8_t* data = Typed<uint8_t>(env, info[3], napi_uint8_array, fn, "data", &len);
    if (ivLen != 16 || len % 16 != 0 || sa->cipher() != Cipher::kAesCbc)
      ThrowRange(env, "rawCbc: needs a CBC SA, a 16-byte IV and whole blocks");
    return Napi::Boolean::New(env, sa->RawCbc(encrypt, iv, data, len));
  }

  // rawHmac(h, data, out) -> boolean; out receives the full (untruncated) HMAC
  Napi::Value RawHmac(const Napi::CallbackInfo& info) {
    static const char* fn = "rawHmac";
    Napi::Env env = info.Env();
    Sa* sa = Get(env, info[0], fn);
    size_t len, outLen;
    const uint8_t* data = Typed<uint8_t>(env, info[1], napi_uint8_array, fn, "data", &len);
    uint8_t* out = Typed<uint8_t>(env, info[2], napi_uint8_array, fn, "out", &outLen);
    if (sa->auth() == Auth::kNone || outLen != sa->HmacDigestLen())
      ThrowRange(env, "rawHmac: needs an SA with auth and an output of the digest's length");
    return Napi::Boolean::New(env, sa->RawHmac(data, len, out));
  }

  Table sas_;
  uint32_t next_ = 1;
};

}  // namespace
}  // namespace lfpcrypto

using LfpCryptoAddon = lfpcrypto::CryptoAddon;
NODE_API_ADDON(LfpCryptoAddon)
