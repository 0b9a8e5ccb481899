// Errors, DPDK log capture, network namespace switching, descriptor hygiene, MAC strings.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>

#include <rte_log.h>

#include "pktio.h"

namespace pktio {

// ---- errors -----------------------------------------------------------------------------------------------------

std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n != nullptr ? n : "E" + std::to_string(err);
}

std::string StrError(int err) {
  char buf[256];
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

void FailMsg(const std::string& msg, int err) { throw Fail{Fail::kError, msg, err ? ErrnoName(err) : "", err}; }
void FailType(const std::string& msg) { throw Fail{Fail::kType, msg, "ERR_INVALID_ARG_TYPE", 0}; }
void FailRange(const std::string& msg) { throw Fail{Fail::kRange, msg, "ERR_OUT_OF_RANGE", 0}; }

void FailErrno(int err, const std::string& where, const std::string& call) {
  FailMsg(where + ": " + call + ": " + ErrnoName(err) + " (" + StrError(err) + ")", err);
}

void FailRte(int ret, const std::string& where, const std::string& call, bool minusOneIsGeneric) {
  int err = ret < 0 ? -ret : ret;
  if (minusOneIsGeneric && ret == -1) err = 0;  // a plain "failed", not EPERM
  std::string msg = where + ": " + call + ": " + std::to_string(ret) + " (" + (err ? StrError(err) : "failed") + ")";
  std::string log = LogTaken();
  if (!log.empty()) msg += "; DPDK: " + log;
  FailMsg(msg, err);
}

// ---- DPDK log capture -------------------------------------------------------------------------------------------

namespace {
std::mutex g_logMu;
int g_captureDepth = 0;
std::string g_captured;
constexpr size_t kMaxCapture = 4096;

ssize_t LogWrite(void*, const char* buf, size_t size) {
  std::lock_guard<std::mutex> lk(g_logMu);
  if (g_captureDepth > 0) {
    if (g_captured.size() < kMaxCapture) g_captured.append(buf, std::min(size, kMaxCapture - g_captured.size()));
  } else {
    size_t off = 0;
    while (off < size) {
      ssize_t w = write(2, buf + off, size - off);
      if (w <= 0 && errno != EINTR) break;
      if (w > 0) off += static_cast<size_t>(w);
    }
  }
  return static_cast<ssize_t>(size);
}

std::string Tidy(const std::string& raw) {
  std::string out, line;
  auto flush = [&]() {
    size_t a = line.find_first_not_of(" \t\r");
    size_t b = line.find_last_not_of(" \t\r");
    if (a != std::string::npos) {
      if (!out.empty()) out += "; ";
      out += line.substr(a, b - a + 1);
    }
    line.clear();
  };
  for (char c : raw) {
    if (c == '\n') flush();
    else line += c;
  }
  flush();
  return out;
}
}  // namespace

void LogInstall() {
  static FILE* stream = nullptr;
  if (stream != nullptr) return;
  cookie_io_functions_t fns{};
  fns.write = LogWrite;
  stream = fopencookie(nullptr, "w", fns);
  if (stream != nullptr) {
    setvbuf(stream, nullptr, _IOLBF, 0);
    rte_openlog_stream(stream);
  }
}

LogCapture::LogCapture() {
  std::lock_guard<std::mutex> lk(g_logMu);
  if (g_captureDepth++ == 0) g_captured.clear();
}

LogCapture::~LogCapture() {
  std::string rest;
  {
    std::lock_guard<std::mutex> lk(g_logMu);
    if (--g_captureDepth == 0) rest.swap(g_captured);
  }
  // The operation succeeded: its DPDK messages (drivers log errors they recover from, e.g. net_ring's "Cannot
  // reserve memory" before it attaches to existing rings) are shown only when a log level above "error" was asked.
  if (!rest.empty() && rte_log_get_global_level() > RTE_LOG_ERR) {
    ssize_t w = write(2, rest.data(), rest.size());
    (void)w;
  }
}

std::string LogCapture::Take() {
  std::lock_guard<std::mutex> lk(g_logMu);
  std::string t = Tidy(g_captured);
  g_captured.clear();
  return t;
}

std::string LogTaken() {
  std::lock_guard<std::mutex> lk(g_logMu);
  if (g_captureDepth == 0) return "";
  std::string t = Tidy(g_captured);
  g_captured.clear();
  return t;
}

// ---- network namespaces -----------------------------------------------------------------------------------------

int OpenNetns(const std::string& path, const std::string& where) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailErrno(errno, where, "open(" + Quote(path) + ")");
  // A network namespace file is an nsfs inode; setns(CLONE_NEWNET) is the real check (done on use).
  struct stat st;
  if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
    close(fd);
    FailMsg(where + ": " + Quote(path) + " is not a network namespace file", EINVAL);
  }
  return fd;
}

void NetnsScope::Enter(int nsfd, const std::string& where) {
  if (nsfd < 0) return;
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) FailErrno(errno, where, "open(\"/proc/thread-self/ns/net\")");
  if (setns(nsfd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(orig_);
    orig_ = -1;
    FailErrno(e, where, e == EINVAL ? "setns (not a network namespace)" : "setns");
  }
}

NetnsScope::~NetnsScope() {
  if (orig_ < 0) return;
  if (setns(orig_, CLONE_NEWNET) < 0) {
    // Cannot happen with a valid fd of our own namespace; say it loudly rather than continue silently.
    char msg[160];
    int n = snprintf(msg, sizeof msg, "lfp_pktio: FATAL: cannot return to the original network namespace: %s\n",
                     strerror(errno));
    ssize_t w = write(2, msg, static_cast<size_t>(n));
    (void)w;
  }
  close(orig_);
}

// ---- descriptors ------------------------------------------------------------------------------------------------

std::vector<int> OpenFds() {
  std::vector<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  int self = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != self) fds.push_back(fd);
  }
  closedir(d);
  return fds;
}

void CloexecNewFds(const std::vector<int>& before) {
  for (int fd : OpenFds()) {
    bool old = false;
    for (int b : before) {
      if (b == fd) {
        old = true;
        break;
      }
    }
    if (old) continue;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
  }
}

// ---- MAC addresses ----------------------------------------------------------------------------------------------

std::string MacToString(const uint8_t* mac) {
  char b[18];
  snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return b;
}

bool ParseMac(const std::string& s, uint8_t* mac) {
  if (s.size() != 17) return false;
  for (int i = 0; i < 6; i++) {
    unsigned v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[i * 3 + j];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return false;
    }
    if (i < 5 && s[i * 3 + 2] != ':') return false;
    mac[i] = static_cast<uint8_t>(v);
  }
  return true;
}

}  // namespace pktio
