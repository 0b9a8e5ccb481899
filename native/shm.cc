// lfp_native: shared memory - a file mapped MAP_SHARED and handed to JS as a SharedArrayBuffer whose backing
// store IS the mapping (no copy; Atomics work on it; other processes mapping the same file see the same memory).
// Node-API (v20) cannot create an external SharedArrayBuffer, so this part uses the V8 API directly.

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <v8.h>

#include "common.h"

namespace lfp {

// In Node, a napi_value is a v8::Local<v8::Value> (same size, same bits): Node's own js_native_api_v8.h
// converts between them this way. Only used for the value returned to JS, inside the current HandleScope.
static_assert(sizeof(napi_value) == sizeof(v8::Local<v8::Value>), "napi_value must be a v8::Local");
static napi_value ToNapi(v8::Local<v8::Value> v) {
  napi_value r;
  memcpy(static_cast<void*>(&r), static_cast<const void*>(&v), sizeof r);
  return r;
}

static void Unmap(void* data, size_t len, void* /*deleter_data*/) {
  if (data != nullptr && len > 0) munmap(data, len);
}

static constexpr double kMaxSafeInteger = 9007199254740991.0;

// shmMap(path, { size?, create?, readonly?, mode? }) -> SharedArrayBuffer
static Napi::Value ShmMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "shm.map";
  std::string path = ArgPath(env, info[0], where, "path");
  Napi::Object opts = Napi::Object::New(env);
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    if (!info[1].IsObject()) ThrowType(env, "shm.map: opts must be an object");
    opts = info[1].As<Napi::Object>();
  }
  double sizeD = 0;
  if (OptHas(opts, "size")) {
    Napi::Value v = opts.Get("size");
    sizeD = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(sizeD >= 0 && sizeD <= kMaxSafeInteger) || static_cast<double>(static_cast<uint64_t>(sizeD)) != sizeD) {
      ThrowRange(env, "shm.map: option size must be an integer >= 0, got " + v.ToString().Utf8Value());
    }
  }
  size_t size = static_cast<size_t>(sizeD);
  bool create = OptBool(env, opts, "create", where);
  bool readonly = OptBool(env, opts, "readonly", where);
  mode_t mode = 0644;
  if (OptHas(opts, "mode")) {
    Napi::Value v = opts.Get("mode");
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 07777) || static_cast<double>(static_cast<int>(d)) != d) {
      ThrowRange(env, "shm.map: option mode must be a file mode in [0, 0o7777]");
    }
    mode = static_cast<mode_t>(d);
  }
  if (create && readonly) ThrowErrnoDetail(env, EINVAL, where, "create and readonly cannot be combined", &path);

  int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (create ? O_CREAT : 0);
  FdGuard fd(open(path.c_str(), flags, mode));
  if (fd.get() < 0) ThrowErrno(env, errno, where, "open(" + Quote(path) + ")", &path);
  struct stat st;
  if (fstat(fd.get(), &st) < 0) ThrowErrno(env, errno, where, "fstat(" + Quote(path) + ")", &path);
  if (S_ISDIR(st.st_mode)) ThrowErrnoDetail(env, EISDIR, where, Quote(path) + " is a directory", &path);
  size_t fileSize = static_cast<size_t>(st.st_size);
  bool regular = S_ISREG(st.st_mode);

  size_t len;
  if (create) {
    if (regular && fileSize < size) {
      // New or shorter file: grow it (never shrink: another process may have mapped the whole file).
      int r;
      do {
        r = ftruncate(fd.get(), static_cast<off_t>(size));
      } while (r < 0 && errno == EINTR);
      if (r < 0) ThrowErrno(env, errno, where, "ftruncate(" + Quote(path) + ", " + std::to_string(size) + ")", &path);
      fileSize = size;
    }
    len = regular ? fileSize : size;
  } else if (size == 0) {
    len = fileSize;
  } else {
    if (regular && fileSize < size) {
      ThrowErrnoDetail(env, EINVAL, where,
                       Quote(path) + " is " + std::to_string(fileSize) + " bytes, smaller than the requested size " +
                           std::to_string(size),
                       &path);
    }
    len = size;
  }
  if (len == 0) {
    ThrowErrnoDetail(env, EINVAL, where, Quote(path) + " is empty (give a size with create: true)", &path);
  }

  int prot = readonly ? PROT_READ : (PROT_READ | PROT_WRITE);
  void* addr = mmap(nullptr, len, prot, MAP_SHARED, fd.get(), 0);
  if (addr == MAP_FAILED) {
    ThrowErrno(env, errno, where, "mmap(" + Quote(path) + ", " + std::to_string(len) + ")", &path);
  }
  // The descriptor is not needed once mapped (FdGuard closes it).

  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> bs = v8::SharedArrayBuffer::NewBackingStore(addr, len, Unmap, nullptr);
  if (!bs) {
    munmap(addr, len);
    ThrowErrnoDetail(env, ENOMEM, where, "cannot create the SharedArrayBuffer backing store", &path);
  }
  v8::Local<v8::SharedArrayBuffer> sab = v8::SharedArrayBuffer::New(isolate, std::move(bs));
  return Napi::Value(env, ToNapi(sab));
}

static Napi::Value ShmFileSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "shm.fileSize";
  std::string path = ArgPath(env, info[0], where, "path");
  struct stat st;
  if (stat(path.c_str(), &st) < 0) ThrowErrno(env, errno, where, "stat(" + Quote(path) + ")", &path);
  return Napi::Number::New(env, static_cast<double>(st.st_size));
}

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmMap", Napi::Function::New(env, ShmMap, "shmMap"));
  exports.Set("shmFileSize", Napi::Function::New(env, ShmFileSize, "shmFileSize"));
}

}  // namespace lfp
