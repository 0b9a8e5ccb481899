// lfp_native: the native addon of lfp (netlink sockets, network namespaces, shared memory, clocks).
// This file: module init, errors, argument checking, per-environment state and its teardown.

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmath>

#include "common.h"

namespace lfp {

// ---- errors ------------------------------------------------------------------------------------------------------

std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);  // glibc >= 2.32
  if (n != nullptr) return n;
  return "E" + std::to_string(err);
}

std::string StrError(int err) {
  char buf[256];
  // GNU strerror_r returns a pointer to the message (maybe not buf).
  return strerror_r(err, buf, sizeof buf);
}

std::string Quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

static Napi::Error MakeErrno(Napi::Env env, int err, const std::string& msg, const std::string* syscall,
                             const std::string* path) {
  Napi::Error e = Napi::Error::New(env, msg);
  Napi::Object o = e.Value();
  o.Set("code", Napi::String::New(env, ErrnoName(err)));
  o.Set("errno", Napi::Number::New(env, -err));
  if (syscall != nullptr) o.Set("syscall", Napi::String::New(env, *syscall));
  if (path != nullptr) o.Set("path", Napi::String::New(env, *path));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const std::string& where, const std::string& syscall,
                const std::string* path) {
  std::string msg = where + ": " + syscall + ": " + ErrnoName(err) + " (" + StrError(err) + ")";
  // The bare syscall name ("setsockopt" of "setsockopt(SO_RCVBUF)") for err.syscall, as Node does.
  std::string bare = syscall.substr(0, syscall.find('('));
  throw MakeErrno(env, err, msg, &bare, path);
}

void ThrowErrnoDetail(Napi::Env env, int err, const std::string& where, const std::string& detail,
                      const std::string* path) {
  throw MakeErrno(env, err, where + ": " + ErrnoName(err) + " (" + detail + ")", nullptr, path);
}

void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError e = Napi::TypeError::New(env, msg);
  e.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}

void ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError e = Napi::RangeError::New(env, msg);
  e.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw e;
}

// ---- arguments ---------------------------------------------------------------------------------------------------

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* where, const char* name, int64_t min,
               int64_t max) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowType(env, std::string(where) + ": " + name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowRange(env, std::string(where) + ": " + name + " must be an integer in [" + std::to_string(min) + ", " +
                        std::to_string(max) + "], got " + v.ToString().Utf8Value());
  }
  return static_cast<int64_t>(d);
}

std::string ArgPath(Napi::Env env, const Napi::Value& v, const char* where, const char* name) {
  if (!v.IsString()) ThrowType(env, std::string(where) + ": " + name + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty()) ThrowType(env, std::string(where) + ": " + name + " must not be empty");
  if (s.find('\0') != std::string::npos) ThrowType(env, std::string(where) + ": " + name + " must not contain NUL");
  return s;
}

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* where, const char* name) {
  Napi::Env env = info.Env();
  napi_value v = info[i];
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) ThrowType(env, std::string(where) + ": " + name + " must be a Uint8Array");
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_status s = napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr);
  if (s != napi_ok) ThrowType(env, std::string(where) + ": " + name + ": cannot read the typed array");
  size_t elem = 1;
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: elem = 1; break;
    case napi_int16_array:
    case napi_uint16_array: elem = 2; break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: elem = 4; break;
    default: elem = 8; break;
  }
  return Bytes{static_cast<uint8_t*>(data), length * elem};
}

int32_t* ArgInt32Array(const Napi::CallbackInfo& info, size_t i, const char* where, const char* name, size_t* len) {
  Napi::Env env = info.Env();
  napi_value v = info[i];
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type = napi_uint8_array;
  void* data = nullptr;
  if (is) napi_get_typedarray_info(env, v, &type, len, &data, nullptr, nullptr);
  if (!is || type != napi_int32_array) ThrowType(env, std::string(where) + ": " + name + " must be an Int32Array");
  return static_cast<int32_t*>(data);
}

bool OptHas(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return false;
  return !o.Get(key).IsUndefined();
}

bool OptBool(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  if (!OptHas(o, key)) return false;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) ThrowType(env, std::string(where) + ": option " + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

FdGuard::~FdGuard() {
  if (fd_ >= 0) close(fd_);
}

void FdGuard::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

// ---- per-environment state ---------------------------------------------------------------------------------------

State* GetState(Napi::Env env) { return env.GetInstanceData<State>(); }

int ArgOwnedFd(const Napi::CallbackInfo& info, size_t i, const char* where, FdKind kind) {
  int fd = static_cast<int>(ArgInt(info, i, where, "fd", 0, INT32_MAX));
  State* st = GetState(info.Env());
  if (st->Kind(fd) != kind) {
    ThrowErrnoDetail(info.Env(), EBADF, std::string(where) + "(fd " + std::to_string(fd) + ")",
                     kind == kNetlink ? "not a netlink socket opened by lfp_native (or already closed)"
                                      : "not a netns descriptor opened by lfp_native (or already closed)");
  }
  return fd;
}

// Environment shutdown (process exit, Worker termination): every poll handle must be closed before the
// loop is closed, and uv_close completes asynchronously; an async cleanup hook lets Node wait for it.
struct Teardown {
  napi_async_cleanup_hook_handle hook;
  size_t pending;
};

static void OnWatcherClosed(uv_handle_t* h) {
  Watcher* w = static_cast<Watcher*>(h->data);
  Teardown* td = w->teardown;
  delete w;
  if (td != nullptr && --td->pending == 0) {
    napi_remove_async_cleanup_hook(td->hook);
    delete td;
  }
}

static void CloseWatcher(Watcher* w, Teardown* td) {
  w->closing = true;
  w->teardown = td;
  if (w->cb != nullptr) {
    napi_delete_reference(w->env, w->cb);
    w->cb = nullptr;
  }
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnWatcherClosed);
}

void StopWatcher(State* st, int fd) {
  auto it = st->watchers.find(fd);
  if (it == st->watchers.end()) return;
  Watcher* w = it->second;
  st->watchers.erase(it);
  CloseWatcher(w, nullptr);  // memory freed in OnWatcherClosed, after any running callback has returned
}

static void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  State* st = static_cast<State*>(arg);
  Teardown* td = new Teardown{hook, st->watchers.size()};
  for (auto& [fd, w] : st->watchers) CloseWatcher(w, td);
  st->watchers.clear();
  st->cleanupHook = nullptr;
  // Close every descriptor this environment still owns (a terminated Worker must not leak sockets).
  for (size_t fd = 0; fd < st->kinds.size(); fd++) {
    if (st->kinds[fd] != kNone) {
      close(static_cast<int>(fd));
      st->kinds[fd] = kNone;
    }
  }
  if (td->pending == 0) {
    napi_remove_async_cleanup_hook(hook);
    delete td;
  }
}

static void FinalizeState(Napi::Env, State* st) {
  // Watchers have been handed to the cleanup hook; anything left here would still be referenced by libuv.
  if (st->watchers.empty()) delete st;
}

// ---- clock -------------------------------------------------------------------------------------------------------

static Napi::Value MonotonicNs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  napi_value v;
  napi_create_bigint_uint64(info.Env(), ns, &v);
  return Napi::Value(info.Env(), v);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  State* st = new State();
  if (napi_get_uv_event_loop(env, &st->loop) != napi_ok) {
    delete st;
    throw Napi::Error::New(env, "lfp_native: cannot get the libuv event loop");
  }
  env.SetInstanceData<State, FinalizeState>(st);
  if (napi_add_async_cleanup_hook(env, OnEnvCleanup, st, &st->cleanupHook) != napi_ok) {
    throw Napi::Error::New(env, "lfp_native: cannot register the environment cleanup hook");
  }
  exports.Set("monotonicNs", Napi::Function::New(env, MonotonicNs, "monotonicNs"));
  InitNetlink(env, exports);
  InitNetns(env, exports);
  InitShm(env, exports);
  return exports;
}

}  // namespace lfp

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lfp::Init(env, exports); }

NODE_API_MODULE(lfp_native, InitModule)
