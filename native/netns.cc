// lfp_native: network namespace files (descriptors for RTM_GETNSID/NETNSA_FD, inode numbers to tell them apart).

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

namespace lfp {

// netnsOpen(path) -> fd (O_RDONLY|O_CLOEXEC), checked to be a network namespace.
static Napi::Value NetnsOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "netns.open";
  std::string path = ArgPath(env, info[0], where, "path");
  FdGuard fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno(env, errno, where, "open(" + Quote(path) + ")", &path);
  int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) {
    int e = errno;
    if (e == ENOTTY || e == EINVAL) {
      ThrowErrnoDetail(env, EINVAL, where, Quote(path) + " is not a namespace file", &path);
    }
    ThrowErrno(env, e, where, "ioctl(" + Quote(path) + ", NS_GET_NSTYPE)", &path);
  }
  if (type != CLONE_NEWNET) {
    ThrowErrnoDetail(env, EINVAL, where, Quote(path) + " is a namespace file but not a network namespace", &path);
  }
  int result = fd.release();
  GetState(env)->SetKind(result, kNetns);
  return Napi::Number::New(env, result);
}

static Napi::Value NetnsClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgOwnedFd(info, 0, "netns.close", kNetns);
  GetState(env)->SetKind(fd, kNone);
  close(fd);
  return env.Undefined();
}

// netnsInode(path) -> st_ino (network namespace inodes are 32-bit values, exact as a JS number).
static Napi::Value NetnsInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "netns.inode";
  std::string path = ArgPath(env, info[0], where, "path");
  struct stat st;
  if (stat(path.c_str(), &st) < 0) ThrowErrno(env, errno, where, "stat(" + Quote(path) + ")", &path);
  return Napi::Number::New(env, static_cast<double>(st.st_ino));
}

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsOpen", Napi::Function::New(env, NetnsOpen, "netnsOpen"));
  exports.Set("netnsClose", Napi::Function::New(env, NetnsClose, "netnsClose"));
  exports.Set("netnsInode", Napi::Function::New(env, NetnsInode, "netnsInode"));
}

}  // namespace lfp
