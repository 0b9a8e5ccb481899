// EAL initialisation (once per process), the single-chunk mbuf pool, and the final teardown.

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_version.h>

#include "eal.h"

namespace pktio {

State& S() {
  static State* s = new State();  // never destroyed: DPDK threads may outlive static destructors
  return *s;
}

namespace {

const char* kWhere = "pktio.init";

bool HasArg(const std::vector<std::string>& a, std::initializer_list<const char*> names) {
  for (const std::string& s : a) {
    for (const char* n : names) {
      size_t l = strlen(n);
      if (s == n || (s.compare(0, l, n) == 0 && (s[l] == '=' || (n[1] != '-' && s.size() > l)))) return true;
    }
  }
  return false;
}

// HugePages_Free from /proc/meminfo and whether a hugetlbfs is mounted.
bool FreeHugepages() {
  std::ifstream mi("/proc/meminfo");
  std::string line;
  long freePages = 0;
  while (std::getline(mi, line)) {
    if (line.compare(0, 15, "HugePages_Free:") == 0) freePages = atol(line.c_str() + 15);
  }
  if (freePages <= 0) return false;
  std::ifstream mounts("/proc/mounts");
  while (std::getline(mounts, line)) {
    std::istringstream ls(line);
    std::string dev, dir, type;
    ls >> dev >> dir >> type;
    if (type == "hugetlbfs") return true;
  }
  return false;
}

// Runs rte_eal_init with stdout/stderr redirected to a memfd: EAL prints getopt errors and its usage text there.
// Returns rte_eal_init's result; *printed receives what was printed (usage text removed).
int EalInitQuiet(std::vector<std::string>& args, std::string* printed) {
  static std::vector<char*> argv;  // EAL may keep pointers into argv: keep it for the life of the process
  for (std::string& a : args) argv.push_back(strdup(a.c_str()));
  argv.push_back(nullptr);

  fflush(stdout);
  fflush(stderr);
  int mfd = memfd_create("lfp-pktio-eal", MFD_CLOEXEC);
  int save1 = mfd >= 0 ? dup(1) : -1, save2 = mfd >= 0 ? dup(2) : -1;
  bool redirected = mfd >= 0 && save1 >= 0 && save2 >= 0 && dup2(mfd, 1) >= 0 && dup2(mfd, 2) >= 0;
  int ret = rte_eal_init(static_cast<int>(args.size()), argv.data());
  int savedErrno = rte_errno;
  if (redirected) {
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    off_t n = lseek(mfd, 0, SEEK_END);
    if (n > 0) {
      std::string text(static_cast<size_t>(n), '\0');
      ssize_t r = pread(mfd, &text[0], text.size(), 0);
      text.resize(r > 0 ? static_cast<size_t>(r) : 0);
      size_t u = text.find("Usage:");
      if (u != std::string::npos) text.resize(u);
      *printed = text;
    }
  }
  if (save1 >= 0) close(save1);
  if (save2 >= 0) close(save2);
  if (mfd >= 0) close(mfd);
  rte_errno = savedErrno;
  return ret;
}

struct IterCtx {
  uint8_t* first = nullptr;
  uint32_t stride = 0;
  bool regular = true;
};

void CheckStride(struct rte_mempool*, void* arg, void* obj, unsigned idx) {
  IterCtx* c = static_cast<IterCtx*>(arg);
  if (idx == 0) {
    c->first = static_cast<uint8_t*>(obj);
    return;
  }
  if (static_cast<uint8_t*>(obj) != c->first + static_cast<size_t>(idx) * c->stride) c->regular = false;
}

void CreatePool(const InitOpts& o) {
  State& st = S();
  Pool& pool = st.pool;
  const unsigned dataRoom = o.dataRoom;
  unsigned cache = std::min<unsigned>(256, static_cast<unsigned>(o.mbufs / 1.5));
  if (cache > RTE_MEMPOOL_CACHE_MAX_SIZE) cache = RTE_MEMPOOL_CACHE_MAX_SIZE;

  // rte_pktmbuf_pool_create(), but with RTE_MEMPOOL_F_NO_IOVA_CONTIG so that objects are packed back to back in one
  // virtually contiguous chunk (IOVA = VA; see README): constant stride, one ArrayBuffer.
  struct rte_mempool* mp = rte_mempool_create_empty("lfp_pktio", o.mbufs, sizeof(struct rte_mbuf) + dataRoom, cache,
                                                    sizeof(struct rte_pktmbuf_pool_private), SOCKET_ID_ANY,
                                                    RTE_MEMPOOL_F_NO_IOVA_CONTIG);
  if (mp == nullptr) FailRte(-rte_errno, kWhere, "rte_mempool_create_empty(" + std::to_string(o.mbufs) + " mbufs)");
  struct rte_pktmbuf_pool_private priv {};
  priv.mbuf_data_room_size = static_cast<uint16_t>(dataRoom);
  priv.mbuf_priv_size = 0;
  const char* ops = rte_mbuf_best_mempool_ops();
  int ret = rte_mempool_set_ops_byname(mp, ops, nullptr);
  if (ret != 0) {
    rte_mempool_free(mp);
    FailRte(ret, kWhere, std::string("rte_mempool_set_ops_byname(") + ops + ")");
  }
  rte_pktmbuf_pool_init(mp, &priv);
  ret = rte_mempool_populate_default(mp);
  if (ret < 0 || static_cast<unsigned>(ret) != o.mbufs) {
    rte_mempool_free(mp);
    if (ret >= 0) ret = -ENOMEM;
    FailRte(ret, kWhere,
            "rte_mempool_populate_default(" + std::to_string(o.mbufs) + " mbufs of " + std::to_string(dataRoom) +
                " bytes; give more memory with memMB)");
  }
  if (mp->nb_mem_chunks != 1) {
    unsigned chunks = mp->nb_mem_chunks;
    rte_mempool_free(mp);
    FailMsg(std::string(kWhere) + ": the mbuf pool has " + std::to_string(chunks) +
                " memory chunks, exactly one is required (the pool memory is exposed as one ArrayBuffer); give more "
                "contiguous memory (memMB) or fewer mbufs",
            ENOMEM);
  }
  rte_mempool_obj_iter(mp, rte_pktmbuf_init, nullptr);

  struct rte_mempool_memhdr* mh = STAILQ_FIRST(&mp->mem_list);
  IterCtx ctx;
  ctx.stride = mp->header_size + mp->elt_size + mp->trailer_size;
  rte_mempool_obj_iter(mp, CheckStride, &ctx);
  if (!ctx.regular || ctx.first == nullptr) {
    rte_mempool_free(mp);
    FailMsg(std::string(kWhere) + ": the mbuf pool objects are not evenly spaced (cannot map indices to mbufs)",
            EINVAL);
  }
  if (mh->len >= (static_cast<size_t>(1) << 32)) {
    rte_mempool_free(mp);
    FailMsg(std::string(kWhere) + ": the pool memory is " + std::to_string(mh->len) +
                " bytes; offsets are 32-bit, so it must be < 4 GiB (fewer or smaller mbufs)",
            EINVAL);
  }

  pool.mp = mp;
  pool.base = static_cast<uint8_t*>(mh->addr);
  pool.len = mh->len;
  pool.first = ctx.first;
  pool.stride = ctx.stride;
  pool.divMagic = UINT64_MAX / ctx.stride + 1;
  pool.n = o.mbufs;
  pool.headroom = RTE_PKTMBUF_HEADROOM;
  pool.bufLen = static_cast<uint16_t>(dataRoom);
  pool.held.assign(o.mbufs, kInPool);
  pool.heldCount = 0;

  // Self-check of the index arithmetic on the first and last objects.
  if (pool.Index(pool.Mbuf(0)) != 0 || pool.Index(pool.Mbuf(o.mbufs - 1)) != o.mbufs - 1 ||
      pool.Mbuf(o.mbufs - 1)->pool != mp) {
    pool.mp = nullptr;
    rte_mempool_free(mp);
    FailMsg(std::string(kWhere) + ": internal error: mbuf index arithmetic does not match the pool layout", EINVAL);
  }
}

}  // namespace

std::string InitKey(const InitOpts& o) {
  std::string k;
  for (const std::string& a : o.eal) k += a + "\x1f";
  k += "|mem=" + std::to_string(o.memMB) + "|n=" + std::to_string(o.mbufs) + "|room=" + std::to_string(o.dataRoom) +
       "|huge=" + std::to_string(o.hugepages) + "|core=" + std::to_string(o.core) + "|pin=" + std::to_string(o.pin);
  return k;
}

void EalAndPoolInit(const InitOpts& o) {
  State& st = S();
  LogInstall();
  LogCapture cap;

  // The core this (the calling) thread runs on as the EAL main lcore.
  cpu_set_t orig;
  CPU_ZERO(&orig);
  if (pthread_getaffinity_np(pthread_self(), sizeof orig, &orig) != 0) CPU_SET(0, &orig);
  int core = o.core;
  if (core < 0) {
    for (int c = 0; c < CPU_SETSIZE; c++) {
      if (CPU_ISSET(c, &orig)) {
        core = c;
        break;
      }
    }
    if (core < 0) core = 0;
  }

  std::vector<std::string> args = {"lfp-pktio"};
  if (!HasArg(o.eal, {"-l", "-c", "--lcores"})) args.insert(args.end(), {"-l", std::to_string(core)});
  if (!HasArg(o.eal, {"--log-level"})) args.push_back("--log-level=error");
  args.push_back("--no-telemetry");  // supported since DPDK 20.05
  if (!HasArg(o.eal, {"--iova-mode"})) args.push_back("--iova-mode=va");
  if (!HasArg(o.eal, {"-a", "--allow", "-b", "--block", "--no-pci"}) && !o.pci) args.push_back("--no-pci");

  // Memory: the pool (with some slack for the mempool headers) plus room for the EAL, rings and PMD queues.
  const uint64_t perMbuf = 64 + sizeof(struct rte_mbuf) + o.dataRoom + 192;
  const uint64_t poolMB = (static_cast<uint64_t>(o.mbufs) * perMbuf + (1 << 20) - 1) >> 20;
  uint64_t memMB = o.memMB > 0 ? static_cast<uint64_t>(o.memMB) : poolMB + poolMB / 8 + 64;
  const bool userNoHuge = HasArg(o.eal, {"--no-huge"});
  st.hugepages = o.hugepages && !userNoHuge && FreeHugepages();
  if (!st.hugepages && !userNoHuge) args.push_back("--no-huge");
  if (!HasArg(o.eal, {"-m", "--socket-mem"})) args.insert(args.end(), {"-m", std::to_string(memMB)});
  // No files shared with other DPDK processes: --in-memory with hugepages (also unlinks them); without hugepages
  // (legacy memory, which --in-memory refuses) --no-shconf.
  if (!HasArg(o.eal, {"--file-prefix", "--proc-type", "--in-memory", "--no-shconf"})) {
    args.push_back(st.hugepages ? "--in-memory" : "--no-shconf");
  }
  args.insert(args.end(), o.eal.begin(), o.eal.end());

  std::vector<int> fdsBefore = OpenFds();
  std::string printed;
  int ret = EalInitQuiet(args, &printed);
  if (ret < 0) {
    int e = rte_errno;
    std::string cmd;
    for (const std::string& a : args) cmd += (cmd.empty() ? "" : " ") + a;
    std::string why = cap.Take();
    std::string p;
    for (char c : printed) p += c == '\n' ? ' ' : c;
    while (!p.empty() && p.back() == ' ') p.pop_back();
    if (!p.empty()) why = why.empty() ? p : p + "; " + why;
    st.initFailure = std::string(kWhere) + ": rte_eal_init(" + cmd + "): " + std::to_string(-e) + " (" +
                     rte_strerror(e) + ")" + (why.empty() ? "" : "; DPDK: " + why);
    FailMsg(st.initFailure + " [the EAL cannot be initialised again in this process]", e);
  }
  if (!printed.empty()) {
    ssize_t w = write(2, printed.data(), printed.size());
    (void)w;
  }
  st.ealArgs = args;
  st.initialised = true;  // EAL is up from here on (even if the pool fails, it cannot be initialised again)
  if (!o.pin) pthread_setaffinity_np(pthread_self(), sizeof orig, &orig);

  if (rte_eal_iova_mode() == RTE_IOVA_PA) {
    st.initFailure = std::string(kWhere) +
                     ": the EAL chose IOVA as physical addresses; lfp_pktio needs --iova-mode=va (its pool is one "
                     "virtually contiguous chunk)";
    st.shutDown = true;
    rte_eal_cleanup();
    FailMsg(st.initFailure, ENOTSUP);
  }
  try {
    CreatePool(o);
  } catch (Fail& f) {
    st.initFailure = f.msg;
    st.shutDown = true;
    rte_eal_cleanup();
    throw;
  }
  CloexecNewFds(fdsBefore);
}

void Teardown() {
  State& st = S();
  if (!st.initialised || st.shutDown) return;
  LogCapture cap;
  for (auto& p : st.ports) {
    if (!p) continue;
    try {
      if (p->kind == Kind::kDpdk) DpdkClose(*p);
      else CloseFdPort(*p);
    } catch (Fail&) {
    }
    p.reset();
  }
  Pool& pool = st.pool;
  if (pool.mp != nullptr) {
    for (uint32_t i = 0; i < pool.n; i++) {
      if (pool.held[i] != kInPool) {
        pool.held[i] = kInPool;
        rte_pktmbuf_free(pool.Mbuf(i));
      }
    }
    pool.heldCount = 0;
    rte_mempool_free(pool.mp);
    pool.mp = nullptr;
  }
  st.shutDown = true;
  rte_eal_cleanup();
}

}  // namespace pktio
