// lfp_pktio: packet I/O of the lfp fast path (DPDK ethdev ports, AF_PACKET kernel ports, DPVI TAPs) over ONE
// rte_pktmbuf pool whose memory chunk is exposed to JS as an ArrayBuffer. See native/pktio/README.md.
//
// Shared declarations: errors, the process-wide state (pool, ports), helpers used by the port kinds.
#pragma once

#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>
#include <string>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

namespace pktio {

// ---- errors -----------------------------------------------------------------------------------------------------
// Internal code throws Fail; the N-API entry points turn it into a JS Error / TypeError / RangeError.

struct Fail {
  enum Type { kError, kType, kRange } type;
  std::string msg;
  std::string code;  // "EINVAL", "ERR_INVALID_ARG_TYPE", ... (may be empty)
  int err;           // positive errno, 0 when none
};

std::string ErrnoName(int err);   // "EINVAL"
std::string StrError(int err);    // strerror text
std::string Quote(const std::string& s);

[[noreturn]] void FailMsg(const std::string& msg, int err = 0);                           // Error (code = errno name)
[[noreturn]] void FailType(const std::string& msg);                                       // TypeError
[[noreturn]] void FailRange(const std::string& msg);                                      // RangeError
// "<where>: <call>: ENAME (strerror)" (errno style, for syscalls)
[[noreturn]] void FailErrno(int err, const std::string& where, const std::string& call);
// "<where>: <call>: -22 (Invalid argument)" (DPDK style: negative return value), plus the DPDK log lines captured
// during the call, if any. Some DPDK calls (rte_dev_probe) return a bare -1 for any failure: minusOneIsGeneric.
[[noreturn]] void FailRte(int ret, const std::string& where, const std::string& call, bool minusOneIsGeneric = false);

// ---- DPDK log capture -------------------------------------------------------------------------------------------
// DPDK logs go to a stream of ours. Outside a LogCapture they are written to stderr; inside, they are collected and
// (when the operation fails) appended to the JS error message; when it succeeds they are dropped, unless the EAL log
// level is above "error" (--log-level=... in init's eal arguments), then written to stderr.
void LogInstall();
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();  // flushes what was captured to stderr unless Take() was called
  std::string Take();  // the captured text (trimmed, lines joined with "; "), and stop flushing it
};
std::string LogTaken();  // captured text of the innermost active capture (for FailRte)

// ---- network namespaces -----------------------------------------------------------------------------------------
// Enters the namespace of nsfd (-1: stays) for the lifetime of the object; always returns to the original one.
class NetnsScope {
 public:
  NetnsScope() = default;
  ~NetnsScope();
  void Enter(int nsfd, const std::string& where);
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int orig_ = -1;
};
// open(path, O_RDONLY|O_CLOEXEC) of a netns file; checks it is a network namespace.
int OpenNetns(const std::string& path, const std::string& where);

// ---- pool -------------------------------------------------------------------------------------------------------

enum HeldState : uint8_t { kInPool = 0, kHeld = 1, kMarked = 2 };  // mbuf owned by DPDK/ports | JS | in a burst

struct Pool {
  rte_mempool* mp = nullptr;
  uint8_t* base = nullptr;   // the single memory chunk (exposed as `mem`)
  size_t len = 0;
  uint8_t* first = nullptr;  // object 0 (its struct rte_mbuf)
  uint32_t stride = 0;       // bytes between consecutive mbufs
  uint64_t divMagic = 0;     // (2^64-1)/stride + 1: exact division of 32-bit offsets by stride
  uint32_t n = 0;            // mbufs in the pool
  uint16_t headroom = 0;
  uint16_t bufLen = 0;       // data room (buf_len)
  std::vector<uint8_t> held; // HeldState by mbuf index
  uint64_t heldCount = 0;

  rte_mbuf* Mbuf(uint32_t idx) const { return reinterpret_cast<rte_mbuf*>(first + static_cast<size_t>(idx) * stride); }
  uint32_t Index(const rte_mbuf* m) const {
    uint64_t d = static_cast<uint64_t>(reinterpret_cast<const uint8_t*>(m) - first);
    return static_cast<uint32_t>((static_cast<__uint128_t>(divMagic) * d) >> 64);
  }
  // Absolute offset in mem of the first byte of the mbuf's buffer.
  uint32_t BufOff(const rte_mbuf* m) const {
    return static_cast<uint32_t>(static_cast<uint8_t*>(m->buf_addr) - base);
  }
  uint32_t DataOff(const rte_mbuf* m) const { return BufOff(m) + m->data_off; }
};

// ---- ports ------------------------------------------------------------------------------------------------------

enum class Kind { kDpdk, kKernel, kTap };

struct PortStats {
  uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0, imissed = 0, ierrors = 0, oerrors = 0, rxNoMbuf = 0;
};

struct Port {
  Kind kind;
  int handle = -1;
  std::string spec;       // devargs (dpdk) or the interface name given at creation (kernel, tap)
  int nsfd = -1;          // netns the port lives in (-1: the process's own)
  std::string netnsPath;  // for messages
  bool adminUp = true;    // dpdk: software admin state when the PMD has no link up/down
  PortStats sw;           // counters kept by this addon (all for kernel/tap; extra drops for dpdk)

  // dpdk
  uint16_t portId = 0;
  uint16_t nrxq = 1, ntxq = 1;
  bool started = false;
  bool promiscSet = false;  // we enabled promiscuous mode (disabled again on close: net_af_packet leaves IFF_PROMISC)
  rte_device* device = nullptr;
  std::string devName;

  // kernel / tap
  int fd = -1;      // AF_PACKET socket / TAP fd
  int ctl = -1;     // AF_INET datagram socket in the port's netns, for interface ioctls
  int ifindex = 0;

  // kernel: TPACKET_V3 rx ring
  uint8_t* ring = nullptr;
  size_t ringLen = 0;
  uint32_t blockSize = 0, blockNr = 0, curBlock = 0;
  uint8_t* nextPkt = nullptr;  // next packet in the current block, null when no block is open
  uint32_t pktsLeft = 0;       // packets left in the current block
  uint64_t lastDrops = 0;
  std::vector<mmsghdr> msgs;   // sendmmsg scratch (kTxChunk entries)
  std::vector<iovec> iovs;

  // tap
  rte_mbuf* spare = nullptr;   // an mbuf kept between rx calls (read() needs a buffer before it knows)
};

constexpr unsigned kTxChunk = 256;  // packets per sendmmsg / rte_eth_*_burst call

// ---- the process-wide state ---------------------------------------------------------------------------------------

struct State {
  bool initialised = false;
  bool shutDown = false;
  std::string initFailure;          // why rte_eal_init failed (it cannot be retried)
  std::string initKey;              // normalised init options (a second init must match)
  pthread_t owner{};                // the thread that called init(): the only one allowed to use the pool
  napi_env ownerEnv = nullptr;
  napi_ref memRef = nullptr;        // the external ArrayBuffer over the pool memory (owner env)
  bool hugepages = false;
  std::vector<std::string> ealArgs; // the EAL command line actually used
  Pool pool;
  std::vector<std::unique_ptr<Port>> ports;  // by handle; closed ports are null (handles are never reused)
};

State& S();

// Throws unless init() succeeded, shutdown() was not called, and we are on the owner thread.
void CheckReady(const char* where);
// The open port `handle` (throws RangeError/Error otherwise); kind-checked when want != nullptr.
Port& GetPort(int64_t handle, const char* where);

// ---- port kinds -------------------------------------------------------------------------------------------------

struct DpdkOpts {
  uint16_t rxq = 1, txq = 1, rxDesc = 1024, txDesc = 1024;
  int mtu = -1;
  std::string netns;
};
std::unique_ptr<Port> DpdkOpen(const std::string& devargs, const DpdkOpts& o);
uint16_t DpdkRx(Port& p, uint16_t q, rte_mbuf** pkts, uint16_t max);
uint16_t DpdkTx(Port& p, uint16_t q, rte_mbuf** pkts, uint16_t n);
void DpdkClose(Port& p);

struct KernelOpts {
  std::string netns;
  uint32_t blockSize = 1 << 18, blockNr = 16, blockTimeoutMs = 1;
  bool qdiscBypass = false;
};
std::unique_ptr<Port> KernelOpen(const std::string& ifname, const KernelOpts& o);
// Fills pkts[0..ret) with received frames (fresh mbufs, data at data_off, lengths set).
uint32_t KernelRx(Port& p, rte_mbuf** pkts, uint32_t max);
// Sends pkts[0..n); returns how many were consumed (sent or dropped with an error counted); frees them.
uint32_t KernelTx(Port& p, rte_mbuf** pkts, uint32_t n);
void KernelRefreshStats(Port& p);

struct TapOpts {
  std::string netns;
  uint8_t mac[6];
  int mtu;
  bool persist = false;  // TUNSETPERSIST: the TAP outlives its descriptor (a crash of the process)
  bool adopt = false;    // an existing TAP of that name (left persistent by an earlier process) is attached to
};
std::unique_ptr<Port> TapOpen(const std::string& name, const TapOpts& o);
void TapSetPersist(Port& p, bool on);
uint32_t TapRx(Port& p, rte_mbuf** pkts, uint32_t max);
uint32_t TapTx(Port& p, rte_mbuf** pkts, uint32_t n);
void TapSetCarrier(Port& p, bool up);

// Kernel and TAP ports share the interface ioctls (on p.ctl, by ifindex so that renames are followed).
struct IfInfo {
  std::string name;
  uint8_t mac[6];
  bool hasMac;
  int mtu;
  unsigned flags;  // IFF_*
};
IfInfo IfGet(Port& p, const char* where);
void IfSetMtu(Port& p, int mtu, const char* where);
void IfSetMac(Port& p, const uint8_t mac[6], const char* where);
void IfSetUp(Port& p, bool up, const char* where);
void CloseFdPort(Port& p);  // kernel/tap: close fds, unmap the ring, free the spare mbuf

// Frames larger than this (bytes from data start) do not fit an mbuf.
inline uint32_t MaxFrame() { return S().pool.bufLen - S().pool.headroom; }

// Sets FD_CLOEXEC on every descriptor opened since `before` was taken (DPDK drivers open theirs without it, and
// a spawned child must not keep a TAP or packet socket alive).
std::vector<int> OpenFds();
void CloexecNewFds(const std::vector<int>& before);

std::string MacToString(const uint8_t* mac);
bool ParseMac(const std::string& s, uint8_t* mac);

}  // namespace pktio
