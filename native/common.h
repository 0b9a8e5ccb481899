// Shared helpers of the lfp_native addon: errno-carrying JS errors, argument checking, per-environment state.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lfp {

// ---- errors ------------------------------------------------------------------------------------------------------

// Name of an errno value ("EPERM"), or "E<number>" when unknown.
std::string ErrnoName(int err);
// strerror() text of an errno value.
std::string StrError(int err);

// Throws a JS Error (as a C++ Napi::Error) with
//   message  "<where>: <syscall>: <ENAME> (<strerror>)"
//   code     "<ENAME>", errno = -err (Node convention), syscall, and path when given.
// Example: "nl.open: setsockopt(SO_RCVBUFFORCE): EPERM (Operation not permitted)".
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& where, const std::string& syscall,
                             const std::string* path = nullptr);

// Like ThrowErrno, but with an explanation instead of strerror (for errors detected by the addon itself):
//   "<where>: <ENAME> (<detail>)".
[[noreturn]] void ThrowErrnoDetail(Napi::Env env, int err, const std::string& where, const std::string& detail,
                                   const std::string* path = nullptr);

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);   // TypeError, code ERR_INVALID_ARG_TYPE
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg);  // RangeError, code ERR_OUT_OF_RANGE

// Quote a path for messages: "/run/netns/x".
std::string Quote(const std::string& s);

// ---- arguments ---------------------------------------------------------------------------------------------------

// An integer argument in [min, max] (a JS number without fraction).
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* where, const char* name, int64_t min, int64_t max);
// A non-empty string without NUL bytes.
std::string ArgPath(Napi::Env env, const Napi::Value& v, const char* where, const char* name);

struct Bytes {
  uint8_t* data;
  size_t len;
};
// Any TypedArray (Uint8Array, Buffer, ...): its bytes.
Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* where, const char* name);
// An Int32Array: its elements.
int32_t* ArgInt32Array(const Napi::CallbackInfo& info, size_t i, const char* where, const char* name, size_t* len);

// Option helpers (opts object may be undefined).
bool OptBool(Napi::Env env, const Napi::Object& o, const char* key, const char* where);
bool OptHas(const Napi::Object& o, const char* key);

// ---- per-environment state ---------------------------------------------------------------------------------------

enum FdKind : uint8_t { kNone = 0, kNetlink = 1, kNetns = 2 };

struct Teardown;  // env shutdown in progress: counts poll handles still closing

struct Watcher {
  uv_poll_t poll;
  napi_env env;
  int fd;
  napi_ref cb = nullptr;  // the JS callback (strong reference)
  bool closing = false;
  Teardown* teardown = nullptr;
};

struct State {
  uv_loop_t* loop = nullptr;
  std::vector<uint8_t> kinds;                     // FdKind by fd: descriptors opened (and owned) by this environment
  std::unordered_map<int, Watcher*> watchers;     // fd -> active watcher
  napi_async_cleanup_hook_handle cleanupHook = nullptr;

  FdKind Kind(int fd) const { return fd >= 0 && static_cast<size_t>(fd) < kinds.size() ? FdKind(kinds[fd]) : kNone; }
  void SetKind(int fd, FdKind k) {
    if (static_cast<size_t>(fd) >= kinds.size()) kinds.resize(static_cast<size_t>(fd) + 64, kNone);
    kinds[fd] = k;
  }
};

State* GetState(Napi::Env env);

// An fd argument that must have been opened by this addon with the given kind (else EBADF).
int ArgOwnedFd(const Napi::CallbackInfo& info, size_t i, const char* where, FdKind kind);

// Stop watching fd (no-op when not watched). Safe from inside the watch callback itself.
void StopWatcher(State* st, int fd);

// ---- module parts ------------------------------------------------------------------------------------------------
void InitNetlink(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitShm(Napi::Env env, Napi::Object exports);

// RAII: closes an fd unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd = -1) : fd_(fd) {}
  ~FdGuard();
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd);

 private:
  int fd_;
};

}  // namespace lfp
