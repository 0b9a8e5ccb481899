// lfp_native: netlink sockets (open in any network namespace, send, non-blocking recv with nsid, watch on the loop).

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_LISTEN_ALL_NSID
#define NETLINK_LISTEN_ALL_NSID 8
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace lfp {

static void SetIntOpt(Napi::Env env, int fd, int level, int opt, int val, const char* where, const char* name) {
  if (setsockopt(fd, level, opt, &val, sizeof val) < 0) {
    ThrowErrno(env, errno, where, std::string("setsockopt(") + name + ")");
  }
}

// Create the socket inside the network namespace at `path`: this thread setns()es there, creates the socket
// and setns()es back (also when creating the socket failed). A netlink socket stays bound to the namespace
// it was created in, so everything else (options, bind, groups) is done afterwards from the original one.
static int SocketInNetns(Napi::Env env, int protocol, const std::string& path, const char* where) {
  FdGuard orig(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (orig.get() < 0) {
    std::string p = "/proc/thread-self/ns/net";
    ThrowErrno(env, errno, where, "open(" + Quote(p) + ")", &p);
  }
  FdGuard target(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (target.get() < 0) ThrowErrno(env, errno, where, "open(" + Quote(path) + ")", &path);
  if (setns(target.get(), CLONE_NEWNET) < 0) {
    int e = errno;
    if (e == EINVAL) {
      ThrowErrnoDetail(env, e, where, "setns(" + Quote(path) + ", CLONE_NEWNET): not a network namespace", &path);
    }
    ThrowErrno(env, e, where, "setns(" + Quote(path) + ", CLONE_NEWNET)", &path);
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  int socketErr = errno;
  if (setns(orig.get(), CLONE_NEWNET) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    // Should never happen (we held a descriptor of the original namespace and have CAP_SYS_ADMIN in it).
    ThrowErrnoDetail(env, e, where,
                     "setns() back to the original network namespace failed after entering " + Quote(path) +
                         "; the main thread is left in the wrong namespace: " + StrError(e),
                     &path);
  }
  if (fd < 0) ThrowErrno(env, socketErr, where, "socket(AF_NETLINK, " + std::to_string(protocol) + ") in " + Quote(path));
  return fd;
}

// nlOpen(protocol, opts?) -> fd
static Napi::Value NlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "nl.open";
  int protocol = static_cast<int>(ArgInt(info, 0, where, "protocol", 0, 255));

  Napi::Object opts = Napi::Object::New(env);
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    if (!info[1].IsObject()) ThrowType(env, "nl.open: opts must be an object");
    opts = info[1].As<Napi::Object>();
  }

  std::vector<uint32_t> groups;
  if (OptHas(opts, "groups")) {
    Napi::Value g = opts.Get("groups");
    if (!g.IsArray()) ThrowType(env, "nl.open: option groups must be an array of group numbers");
    Napi::Array a = g.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 1 && d <= 4294967295.0) || static_cast<double>(static_cast<uint32_t>(d)) != d) {
        ThrowRange(env, "nl.open: groups[" + std::to_string(i) +
                            "] must be a group number >= 1 (not a bitmask), got " + v.ToString().Utf8Value());
      }
      groups.push_back(static_cast<uint32_t>(d));
    }
  }
  int64_t rcvbuf = -1;
  if (OptHas(opts, "rcvbuf")) {
    Napi::Value v = opts.Get("rcvbuf");
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= INT32_MAX) || static_cast<double>(static_cast<int64_t>(d)) != d) {
      ThrowRange(env, "nl.open: option rcvbuf must be an integer in [1, 2147483647], got " + v.ToString().Utf8Value());
    }
    rcvbuf = static_cast<int64_t>(d);
  }
  bool listenAllNsid = OptBool(env, opts, "listenAllNsid", where);
  bool extAck = OptBool(env, opts, "extAck", where);
  bool strictChk = OptBool(env, opts, "strictChk", where);
  bool hasNetns = OptHas(opts, "netns");
  std::string netnsPath = hasNetns ? ArgPath(env, opts.Get("netns"), where, "option netns") : "";

  FdGuard fd;
  if (hasNetns) {
    fd.reset(SocketInNetns(env, protocol, netnsPath, where));
  } else {
    fd.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol));
    if (fd.get() < 0) ThrowErrno(env, errno, where, "socket(AF_NETLINK, " + std::to_string(protocol) + ")");
  }

  if (rcvbuf > 0) {
    int v = static_cast<int>(rcvbuf);
    if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0) {
      if (errno != EPERM) ThrowErrno(env, errno, where, "setsockopt(SO_RCVBUFFORCE)");
      // Without CAP_NET_ADMIN: the regular option, capped by net.core.rmem_max (check with rcvbufSize()).
      SetIntOpt(env, fd.get(), SOL_SOCKET, SO_RCVBUF, v, where, "SO_RCVBUF");
    }
  }
  if (extAck) SetIntOpt(env, fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, 1, where, "NETLINK_EXT_ACK");
  if (strictChk) SetIntOpt(env, fd.get(), SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1, where, "NETLINK_GET_STRICT_CHK");
  if (listenAllNsid) {
    SetIntOpt(env, fd.get(), SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1, where, "NETLINK_LISTEN_ALL_NSID");
  }

  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0) ThrowErrno(env, errno, where, "bind");

  for (uint32_t g : groups) {
    if (setsockopt(fd.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0) {
      ThrowErrno(env, errno, where, "setsockopt(NETLINK_ADD_MEMBERSHIP, " + std::to_string(g) + ")");
    }
  }

  int result = fd.release();
  GetState(env)->SetKind(result, kNetlink);
  return Napi::Number::New(env, result);
}

// nlSend(fd, data): one datagram to the kernel (nl_pid 0).
static Napi::Value NlSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "nl.send";
  int fd = ArgOwnedFd(info, 0, where, kNetlink);
  Bytes b = ArgBytes(info, 1, where, "data");
  if (b.len == 0) ThrowErrnoDetail(env, EINVAL, where, "data is empty");
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, b.data, b.len, 0, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, where, "sendto");
  if (static_cast<size_t>(n) != b.len) {
    ThrowErrnoDetail(env, EMSGSIZE, where,
                     "sendto sent " + std::to_string(n) + " of " + std::to_string(b.len) + " bytes");
  }
  return env.Undefined();
}

// nlRecv(fd, buf, meta) -> bytes | -EAGAIN | -ENOBUFS | -EMSGSIZE
static Napi::Value NlRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "nl.recv";
  int fd = ArgOwnedFd(info, 0, where, kNetlink);
  Bytes b = ArgBytes(info, 1, where, "buf");
  size_t metaLen = 0;
  int32_t* meta = ArgInt32Array(info, 2, where, "meta", &metaLen);
  if (b.len == 0) ThrowErrnoDetail(env, EINVAL, where, "buf is empty (a netlink datagram needs a buffer, 64 KiB is safe)");
  if (metaLen < 2) ThrowErrnoDetail(env, EINVAL, where, "meta must have at least 2 elements (nsid, sender pid)");

  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  struct iovec iov = {b.data, b.len};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int)) * 4];
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &sa;
  msg.msg_namelen = sizeof sa;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;

  ssize_t n;
  do {
    // MSG_TRUNC: return the real datagram length, so a too small buffer is detected.
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) return Napi::Number::New(env, -EAGAIN);
    if (e == ENOBUFS) return Napi::Number::New(env, -ENOBUFS);  // kernel dropped messages; socket still usable
    ThrowErrno(env, e, where, "recvmsg");
  }

  int32_t nsid = -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(&nsid, CMSG_DATA(c), sizeof nsid);
    }
  }
  meta[0] = nsid;
  meta[1] = static_cast<int32_t>(sa.nl_pid);
  if (metaLen > 2) meta[2] = static_cast<int32_t>(n > INT32_MAX ? INT32_MAX : n);
  if (static_cast<size_t>(n) > b.len || (msg.msg_flags & MSG_TRUNC)) return Napi::Number::New(env, -EMSGSIZE);
  return Napi::Number::New(env, static_cast<double>(n));
}

// nlRecvMany(fd, buf, meta, slot) -> records | -EAGAIN
// Non-blocking receive of as many datagrams as are queued, in ONE call (one N-API crossing for a burst of
// events) and few system calls: recvmmsg() of up to 64 datagrams at a time, each into a slot of `slot` bytes;
// the datagrams are then moved down to lie back to back (8-byte aligned) so that the next recvmmsg() has room.
// Record i is meta[3i..3i+2] = {offset in buf, length, nsid}; a length < 0 is an event instead of a datagram:
// -ENOBUFS (the kernel dropped messages; reading goes on) or -EMSGSIZE (a datagram larger than `slot` was
// consumed truncated). Stops at EAGAIN, when meta is full, or when less than one slot is left. Returns -EAGAIN
// when nothing at all was queued.
static Napi::Value NlRecvMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "nl.recvMany";
  int fd = ArgOwnedFd(info, 0, where, kNetlink);
  Bytes b = ArgBytes(info, 1, where, "buf");
  size_t metaLen = 0;
  int32_t* meta = ArgInt32Array(info, 2, where, "meta", &metaLen);
  size_t slot = static_cast<size_t>(ArgInt(info, 3, where, "slot", 1, INT32_MAX));
  if (b.len < slot) ThrowErrnoDetail(env, EINVAL, where, "buf is smaller than one slot");
  if (b.len > INT32_MAX) ThrowErrnoDetail(env, EINVAL, where, "buf larger than 2 GiB");
  size_t maxRecords = metaLen / 3;
  if (maxRecords == 0) ThrowErrnoDetail(env, EINVAL, where, "meta must have room for at least one record (3 elements)");

  constexpr unsigned kVlen = 64;
  struct mmsghdr mm[kVlen];
  struct iovec iov[kVlen];
  struct sockaddr_nl sas[kVlen];
  alignas(struct cmsghdr) char cbufs[kVlen][CMSG_SPACE(sizeof(int)) * 4];
  size_t used = 0, records = 0;
  for (;;) {
    size_t vlen = (b.len - used) / slot;
    if (vlen > kVlen) vlen = kVlen;
    if (vlen > maxRecords - records) vlen = maxRecords - records;
    if (vlen == 0) break;
    const size_t base = used;
    memset(mm, 0, sizeof(struct mmsghdr) * vlen);
    for (size_t i = 0; i < vlen; i++) {
      iov[i].iov_base = b.data + base + i * slot;
      iov[i].iov_len = slot;
      mm[i].msg_hdr.msg_name = &sas[i];
      mm[i].msg_hdr.msg_namelen = sizeof sas[i];
      mm[i].msg_hdr.msg_iov = &iov[i];
      mm[i].msg_hdr.msg_iovlen = 1;
      mm[i].msg_hdr.msg_control = cbufs[i];
      mm[i].msg_hdr.msg_controllen = sizeof cbufs[i];
    }
    int n;
    do {
      // MSG_TRUNC: msg_len is the real datagram length, so a too small slot is detected.
      n = recvmmsg(fd, mm, static_cast<unsigned>(vlen), MSG_DONTWAIT | MSG_TRUNC, nullptr);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (e == ENOBUFS) {  // kernel dropped messages; socket still usable
        int32_t* r = meta + 3 * records;
        r[0] = static_cast<int32_t>(used); r[1] = -ENOBUFS; r[2] = -1;
        records++;
        if (records == maxRecords) break;
        continue;
      }
      if (records > 0) break;  // report what was received; the next call meets the error again
      ThrowErrno(env, e, where, "recvmmsg");
    }
    for (int i = 0; i < n; i++) {
      int32_t nsid = -1;
      struct msghdr* mh = &mm[i].msg_hdr;
      for (struct cmsghdr* c = CMSG_FIRSTHDR(mh); c != nullptr; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID &&
            c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          memcpy(&nsid, CMSG_DATA(c), sizeof nsid);
        }
      }
      int32_t* r = meta + 3 * records;
      size_t len = mm[i].msg_len;
      r[2] = nsid;
      r[0] = static_cast<int32_t>(used);
      if (len > slot || (mh->msg_flags & MSG_TRUNC)) {
        r[1] = -EMSGSIZE;
      } else {
        uint8_t* src = b.data + base + static_cast<size_t>(i) * slot;
        if (src != b.data + used) memmove(b.data + used, src, len);  // down: used <= base + i * slot
        r[1] = static_cast<int32_t>(len);
        used += (len + 7) & ~static_cast<size_t>(7);
      }
      records++;
    }
    if (static_cast<size_t>(n) < vlen) break;  // the queue is empty
  }
  if (records == 0) return Napi::Number::New(env, -EAGAIN);
  return Napi::Number::New(env, static_cast<double>(records));
}

// ---- watch -------------------------------------------------------------------------------------------------------

static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->closing || w->cb == nullptr) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value fn, global, result;
    if (napi_get_reference_value(env, w->cb, &fn) == napi_ok && fn != nullptr &&
        napi_get_global(env, &global) == napi_ok) {
      // napi_make_callback runs process.nextTick queue and microtasks afterwards, like any Node callback.
      napi_status s = napi_make_callback(env, nullptr, global, fn, 0, nullptr, &result);
      if (s == napi_pending_exception) {
        // The callback threw: report it like an exception thrown from any event callback ('uncaughtException').
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      }
    }
    napi_close_handle_scope(env, scope);
  }
  // libuv stops a poll handle on POLLERR (status UV_EBADF) - and a netlink socket signals POLLERR when the
  // kernel dropped messages (sk_err = ENOBUFS). The callback has been told (its recv() returns -ENOBUFS);
  // re-arm unless the callback unwatched/closed the fd or the descriptor is really gone.
  if (status < 0 && !w->closing && fcntl(w->fd, F_GETFD) != -1) {
    uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  }
}

// nlWatch(fd, cb): call cb whenever fd is readable (replaces a previous callback for the same fd).
static Napi::Value NlWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* where = "nl.watch";
  int fd = ArgOwnedFd(info, 0, where, kNetlink);
  if (!info[1].IsFunction()) ThrowType(env, "nl.watch: cb must be a function");
  State* st = GetState(env);
  napi_ref ref;
  if (napi_create_reference(env, info[1], 1, &ref) != napi_ok) {
    throw Napi::Error::New(env, "nl.watch: cannot reference the callback");
  }
  auto it = st->watchers.find(fd);
  if (it != st->watchers.end()) {
    Watcher* w = it->second;
    napi_delete_reference(env, w->cb);
    w->cb = ref;
    return env.Undefined();
  }
  Watcher* w = new Watcher();
  w->env = env;
  w->fd = fd;
  w->cb = ref;
  int r = uv_poll_init(st->loop, &w->poll, fd);
  if (r < 0) {
    napi_delete_reference(env, ref);
    delete w;
    ThrowErrno(env, -r, where, "uv_poll_init");
  }
  w->poll.data = w;
  r = uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  if (r < 0) {
    napi_delete_reference(env, ref);
    w->cb = nullptr;
    w->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) { delete static_cast<Watcher*>(h->data); });
    ThrowErrno(env, -r, where, "uv_poll_start");
  }
  st->watchers[fd] = w;
  return env.Undefined();
}

static Napi::Value NlUnwatch(const Napi::CallbackInfo& info) {
  int fd = ArgOwnedFd(info, 0, "nl.unwatch", kNetlink);
  StopWatcher(GetState(info.Env()), fd);
  return info.Env().Undefined();
}

static Napi::Value NlClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgOwnedFd(info, 0, "nl.close", kNetlink);
  State* st = GetState(env);
  StopWatcher(st, fd);  // before close(): the poll handle must leave epoll while the fd is still valid
  st->SetKind(fd, kNone);
  close(fd);  // Linux releases the descriptor even when close() reports an error
  return env.Undefined();
}

static Napi::Value Membership(const Napi::CallbackInfo& info, bool add) {
  Napi::Env env = info.Env();
  const char* where = add ? "nl.addMembership" : "nl.dropMembership";
  int fd = ArgOwnedFd(info, 0, where, kNetlink);
  uint32_t g = static_cast<uint32_t>(ArgInt(info, 1, where, "group", 1, UINT32_MAX));
  int opt = add ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP;
  if (setsockopt(fd, SOL_NETLINK, opt, &g, sizeof g) < 0) {
    ThrowErrno(env, errno, where,
               std::string("setsockopt(") + (add ? "NETLINK_ADD_MEMBERSHIP, " : "NETLINK_DROP_MEMBERSHIP, ") +
                   std::to_string(g) + ")");
  }
  return env.Undefined();
}

static Napi::Value NlAddMembership(const Napi::CallbackInfo& info) { return Membership(info, true); }
static Napi::Value NlDropMembership(const Napi::CallbackInfo& info) { return Membership(info, false); }

static Napi::Value NlRcvbufSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgOwnedFd(info, 0, "nl.rcvbufSize", kNetlink);
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) < 0) ThrowErrno(env, errno, "nl.rcvbufSize", "getsockopt(SO_RCVBUF)");
  return Napi::Number::New(env, v);
}

// nlLocalPid(fd): the port id the kernel assigned (nlmsg_pid of our requests' replies), as an unsigned number.
static Napi::Value NlLocalPid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgOwnedFd(info, 0, "nl.localPid", kNetlink);
  struct sockaddr_nl sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&sa), &len) < 0) ThrowErrno(env, errno, "nl.localPid", "getsockname");
  return Napi::Number::New(env, static_cast<double>(sa.nl_pid));
}

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("nlOpen", Napi::Function::New(env, NlOpen, "nlOpen"));
  exports.Set("nlSend", Napi::Function::New(env, NlSend, "nlSend"));
  exports.Set("nlRecv", Napi::Function::New(env, NlRecv, "nlRecv"));
  exports.Set("nlRecvMany", Napi::Function::New(env, NlRecvMany, "nlRecvMany"));
  exports.Set("nlWatch", Napi::Function::New(env, NlWatch, "nlWatch"));
  exports.Set("nlUnwatch", Napi::Function::New(env, NlUnwatch, "nlUnwatch"));
  exports.Set("nlClose", Napi::Function::New(env, NlClose, "nlClose"));
  exports.Set("nlAddMembership", Napi::Function::New(env, NlAddMembership, "nlAddMembership"));
  exports.Set("nlDropMembership", Napi::Function::New(env, NlDropMembership, "nlDropMembership"));
  exports.Set("nlRcvbufSize", Napi::Function::New(env, NlRcvbufSize, "nlRcvbufSize"));
  exports.Set("nlLocalPid", Napi::Function::New(env, NlLocalPid, "nlLocalPid"));
}

}  // namespace lfp
