// N-API entry points of lfp_pktio. rx/tx/free/alloc are the hot path: one call per burst, typed arrays only, no
// allocation; everything else is control path.

#include <errno.h>
#include <net/if.h>
#include <string.h>

#include <cmath>

#include <rte_cycles.h>
#include <rte_lcore.h>

#include "eal.h"
#include "pktio.h"

namespace pktio {

namespace {

// ---- N-API helpers ----------------------------------------------------------------------------------------------

struct Args {
  napi_value v[8];
  size_t argc = 8;
  napi_value operator[](size_t i) const { return v[i]; }
};

void ThrowFail(napi_env env, const Fail& f) {
  napi_value msg, code = nullptr, err;
  napi_create_string_utf8(env, f.msg.c_str(), f.msg.size(), &msg);
  if (!f.code.empty()) napi_create_string_utf8(env, f.code.c_str(), f.code.size(), &code);
  switch (f.type) {
    case Fail::kType: napi_create_type_error(env, nullptr, msg, &err); break;
    case Fail::kRange: napi_create_range_error(env, nullptr, msg, &err); break;
    default: napi_create_error(env, nullptr, msg, &err); break;
  }
  if (code != nullptr) napi_set_named_property(env, err, "code", code);
  if (f.err != 0) {
    napi_value n;
    napi_create_int32(env, -f.err, &n);
    napi_set_named_property(env, err, "errno", n);
  }
  napi_throw(env, err);
}

using Impl = napi_value (*)(napi_env, const Args&);

template <Impl F>
napi_value Entry(napi_env env, napi_callback_info info) {
  Args a;
  napi_get_cb_info(env, info, &a.argc, a.v, nullptr, nullptr);
  try {
    return F(env, a);
  } catch (const Fail& f) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) ThrowFail(env, f);
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, "lfp_pktio: out of memory");
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("lfp_pktio: internal error: ") + e.what()).c_str());
  }
  return nullptr;
}

// Any napi failure while building results: turn the pending JS exception (if any) into a C++ unwind.
inline void Ok(napi_env env, napi_status s) {
  if (s != napi_ok) throw Fail{Fail::kError, "lfp_pktio: N-API call failed (status " + std::to_string(s) + ")", "", 0};
}

napi_valuetype TypeOf(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  if (v != nullptr) napi_typeof(env, v, &t);
  return t;
}

bool Absent(napi_env env, napi_value v) {
  napi_valuetype t = TypeOf(env, v);
  return t == napi_undefined || t == napi_null;
}

double Num(napi_env env, napi_value v, const std::string& where, const char* name) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) FailType(where + ": " + name + " must be a number");
  return d;
}

int64_t Int(napi_env env, napi_value v, const std::string& where, const char* name, int64_t min, int64_t max) {
  double d = Num(env, v, where, name);
  if (!std::isfinite(d) || std::trunc(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    char b[64];
    snprintf(b, sizeof b, "%.17g", d);
    FailRange(where + ": " + name + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
              "], got " + b);
  }
  return static_cast<int64_t>(d);
}

std::string Str(napi_env env, napi_value v, const std::string& where, const char* name) {
  size_t len = 0;
  if (TypeOf(env, v) != napi_string) FailType(where + ": " + name + " must be a string");
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
  if (s.find('\0') != std::string::npos) FailType(where + ": " + name + " must not contain NUL characters");
  return s;
}

bool Bool(napi_env env, napi_value v, const std::string& where, const char* name) {
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) FailType(where + ": " + name + " must be a boolean");
  return b;
}

// Options object: undefined/null = no options.
struct Opts {
  napi_env env;
  napi_value obj = nullptr;
  std::string where;
  Opts(napi_env e, napi_value o, const std::string& w, bool required = false) : env(e), where(w) {
    if (Absent(e, o)) {
      if (required) FailType(w + ": options object required");
      return;
    }
    if (TypeOf(e, o) != napi_object) FailType(w + ": options must be an object");
    obj = o;
  }
  napi_value Get(const char* key) const {
    if (obj == nullptr) return nullptr;
    napi_value v;
    if (napi_get_named_property(env, obj, key, &v) != napi_ok || Absent(env, v)) return nullptr;
    return v;
  }
  int64_t Int(const char* key, int64_t def, int64_t min, int64_t max) const {
    napi_value v = Get(key);
    return v == nullptr ? def : pktio::Int(env, v, where, (std::string("opts.") + key).c_str(), min, max);
  }
  bool Bool(const char* key, bool def) const {
    napi_value v = Get(key);
    return v == nullptr ? def : pktio::Bool(env, v, where, (std::string("opts.") + key).c_str());
  }
  std::string Str(const char* key, const std::string& def = "") const {
    napi_value v = Get(key);
    return v == nullptr ? def : pktio::Str(env, v, where, (std::string("opts.") + key).c_str());
  }
};

uint32_t* U32Array(napi_env env, napi_value v, const char* where, const char* name, size_t* len) {
  napi_typedarray_type type;
  void* data = nullptr;
  // napi_get_typedarray_info fails (napi_invalid_arg) on anything that is not a typed array.
  if (napi_get_typedarray_info(env, v, &type, len, &data, nullptr, nullptr) != napi_ok || type != napi_uint32_array) {
    FailType(std::string(where) + ": " + name + " must be a Uint32Array");
  }
  return static_cast<uint32_t*>(data);
}

void SetNum(napi_env env, napi_value o, const char* k, double d) {
  napi_value v;
  Ok(env, napi_create_double(env, d, &v));
  Ok(env, napi_set_named_property(env, o, k, v));
}
void SetStr(napi_env env, napi_value o, const char* k, const std::string& s) {
  napi_value v;
  Ok(env, napi_create_string_utf8(env, s.c_str(), s.size(), &v));
  Ok(env, napi_set_named_property(env, o, k, v));
}
void SetBool(napi_env env, napi_value o, const char* k, bool b) {
  napi_value v;
  Ok(env, napi_get_boolean(env, b, &v));
  Ok(env, napi_set_named_property(env, o, k, v));
}
napi_value NewObj(napi_env env) {
  napi_value o;
  Ok(env, napi_create_object(env, &o));
  return o;
}
napi_value U32(napi_env env, uint32_t n) {
  napi_value v;
  Ok(env, napi_create_uint32(env, n, &v));
  return v;
}
napi_value Undef(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

// ---- state checks -----------------------------------------------------------------------------------------------

uint8_t MacArg(napi_env env, napi_value v, const std::string& where, uint8_t* mac) {
  std::string s = Str(env, v, where, "mac");
  if (!ParseMac(s, mac)) FailRange(where + ": mac must look like aa:bb:cc:dd:ee:ff, got " + Quote(s));
  if (mac[0] & 1) FailRange(where + ": mac " + s + " is a multicast address");
  return 0;
}

}  // namespace

void CheckReady(const char* where) {
  State& st = S();
  if (!st.initialised) {
    if (!st.initFailure.empty()) FailMsg(std::string(where) + ": init() failed earlier: " + st.initFailure, EINVAL);
    FailMsg(std::string(where) + ": call init() first", EINVAL);
  }
  if (st.shutDown) {
    FailMsg(std::string(where) + ": shut down (the EAL cannot be initialised again in this process)" +
                (st.initFailure.empty() ? "" : ": " + st.initFailure),
            EINVAL);
  }
  if (!pthread_equal(pthread_self(), st.owner)) {
    FailMsg(std::string(where) + ": the pool belongs to the thread that called init(); call from that thread", EPERM);
  }
}

Port& GetPort(int64_t h, const char* where) {
  State& st = S();
  if (h < 0 || static_cast<uint64_t>(h) >= st.ports.size() || !st.ports[h]) {
    FailRange(std::string(where) + ": " + std::to_string(h) + " is not an open port handle");
  }
  return *st.ports[h];
}

namespace {

int64_t PortArg(napi_env env, napi_value v, const char* where) {
  return Int(env, v, where, "port", 0, INT32_MAX);
}

// ---- init / shutdown --------------------------------------------------------------------------------------------

void EnvCleanup(void* arg) {
  // The owner environment is going away (process exit, Worker terminated): close the ports (TAPs vanish, packet
  // sockets close) and release the EAL, as shutdown() would. The ArrayBuffer dies with the environment.
  State& st = S();
  if (st.ownerEnv != static_cast<napi_env>(arg)) return;
  st.memRef = nullptr;
  st.ownerEnv = nullptr;
  if (st.initialised && !st.shutDown) Teardown();
}

napi_value InitResult(napi_env env) {
  State& st = S();
  napi_value ab;
  Ok(env, napi_get_reference_value(env, st.memRef, &ab));
  napi_value mem;
  Ok(env, napi_create_typedarray(env, napi_uint8_array, st.pool.len, ab, 0, &mem));
  napi_value o = NewObj(env);
  Ok(env, napi_set_named_property(env, o, "mem", mem));
  SetNum(env, o, "mbufs", st.pool.n);
  SetNum(env, o, "headroom", st.pool.headroom);
  SetNum(env, o, "bufLen", st.pool.bufLen);
  SetNum(env, o, "bufSize", st.pool.bufLen - st.pool.headroom);
  SetBool(env, o, "hugepages", st.hugepages);
  napi_value arr;
  Ok(env, napi_create_array_with_length(env, st.ealArgs.size(), &arr));
  for (size_t i = 0; i < st.ealArgs.size(); i++) {
    napi_value s;
    Ok(env, napi_create_string_utf8(env, st.ealArgs[i].c_str(), st.ealArgs[i].size(), &s));
    Ok(env, napi_set_element(env, arr, static_cast<uint32_t>(i), s));
  }
  Ok(env, napi_set_named_property(env, o, "eal", arr));
  return o;
}

napi_value Init(napi_env env, const Args& a) {
  const std::string where = "pktio.init";
  State& st = S();
  Opts o(env, a[0], where, true);
  InitOpts io;
  napi_value eal = o.Get("eal");
  if (eal != nullptr) {
    bool isArr = false;
    napi_is_array(env, eal, &isArr);
    if (!isArr) FailType(where + ": opts.eal must be an array of strings");
    uint32_t n = 0;
    napi_get_array_length(env, eal, &n);
    for (uint32_t i = 0; i < n; i++) {
      napi_value e;
      napi_get_element(env, eal, i, &e);
      io.eal.push_back(Str(env, e, where, ("opts.eal[" + std::to_string(i) + "]").c_str()));
    }
  }
  io.memMB = static_cast<int>(o.Int("memMB", -1, 16, 1 << 20));
  io.mbufs = static_cast<uint32_t>(o.Int("mbufs", 16383, 64, 1 << 24));
  io.dataRoom = static_cast<uint32_t>(o.Int("mbufSize", RTE_MBUF_DEFAULT_BUF_SIZE, RTE_PKTMBUF_HEADROOM + 256, 65535));
  io.hugepages = o.Bool("hugepages", false);
  io.pci = o.Bool("pci", false);
  io.core = static_cast<int>(o.Int("core", -1, 0, RTE_MAX_LCORE - 1));
  io.pin = o.Bool("pin", false);
  std::string key = InitKey(io);

  if (st.initialised && !st.shutDown) {
    if (!pthread_equal(pthread_self(), st.owner) || st.ownerEnv != env) {
      FailMsg(where + ": already initialised by another thread of this process (the pool belongs to it)", EBUSY);
    }
    if (key != st.initKey) {
      FailMsg(where + ": already initialised in this process with different options; the EAL can be initialised "
                      "only once per process (call init with the same options to get the pool again)",
              EBUSY);
    }
    return InitResult(env);
  }
  if (st.shutDown) CheckReady(where.c_str());  // throws: shut down
  if (!st.initFailure.empty()) FailMsg(where + ": an earlier init() failed and the EAL cannot be retried: " + st.initFailure, EINVAL);

  EalAndPoolInit(io);  // throws Fail
  st.initKey = key;
  st.owner = pthread_self();
  st.ownerEnv = env;
  napi_value ab;
  Ok(env, napi_create_external_arraybuffer(env, st.pool.base, st.pool.len, nullptr, nullptr, &ab));
  Ok(env, napi_create_reference(env, ab, 1, &st.memRef));
  napi_add_env_cleanup_hook(env, EnvCleanup, env);
  return InitResult(env);
}

napi_value Shutdown(napi_env env, const Args&) {
  State& st = S();
  if (!st.initialised || st.shutDown) return Undef(env);  // idempotent
  CheckReady("pktio.shutdown");
  Teardown();
  if (st.memRef != nullptr) {
    napi_value ab;
    if (napi_get_reference_value(env, st.memRef, &ab) == napi_ok && ab != nullptr) {
      napi_detach_arraybuffer(env, ab);  // views now have length 0: no access to unmapped memory
    }
    napi_delete_reference(env, st.memRef);
    st.memRef = nullptr;
  }
  napi_remove_env_cleanup_hook(env, EnvCleanup, env);
  st.ownerEnv = nullptr;
  return Undef(env);
}

// ---- ports ------------------------------------------------------------------------------------------------------

napi_value AddPort(napi_env env, std::unique_ptr<Port> p) {
  State& st = S();
  p->handle = static_cast<int>(st.ports.size());
  st.ports.push_back(std::move(p));
  return U32(env, static_cast<uint32_t>(st.ports.size() - 1));
}

napi_value DpdkPort(napi_env env, const Args& a) {
  std::string where = "pktio.dpdkPort";
  CheckReady(where.c_str());
  std::string devargs = Str(env, a[0], where, "devargs");
  if (devargs.empty()) FailType(where + ": devargs must not be empty");
  where += "(" + Quote(devargs) + ")";
  Opts o(env, a[1], where);
  DpdkOpts d;
  d.rxq = static_cast<uint16_t>(o.Int("rxq", 1, 1, 64));
  d.txq = static_cast<uint16_t>(o.Int("txq", 1, 1, 64));
  d.rxDesc = static_cast<uint16_t>(o.Int("rxDesc", 1024, 1, 32768));
  d.txDesc = static_cast<uint16_t>(o.Int("txDesc", 1024, 1, 32768));
  d.mtu = static_cast<int>(o.Int("mtu", -1, 68, 65535));
  d.netns = o.Str("netns");
  return AddPort(env, DpdkOpen(devargs, d));
}

napi_value KernelPort(napi_env env, const Args& a) {
  std::string where = "pktio.kernelPort";
  CheckReady(where.c_str());
  std::string ifname = Str(env, a[0], where, "ifname");
  if (ifname.empty()) FailType(where + ": ifname must not be empty");
  where += "(" + Quote(ifname) + ")";
  Opts o(env, a[1], where);
  KernelOpts k;
  k.netns = o.Str("netns");
  std::string mode = o.Str("mode", "af_packet");
  if (mode != "af_packet") FailRange(where + ": opts.mode " + Quote(mode) + " is not supported (af_packet)");
  k.blockSize = static_cast<uint32_t>(o.Int("blockSize", 1 << 18, 4096, 1 << 26));
  if (k.blockSize & 4095) FailRange(where + ": opts.blockSize must be a multiple of 4096");
  k.blockNr = static_cast<uint32_t>(o.Int("blocks", 16, 2, 4096));
  k.blockTimeoutMs = static_cast<uint32_t>(o.Int("blockTimeoutMs", 1, 1, 1000));
  k.qdiscBypass = o.Bool("qdiscBypass", false);
  return AddPort(env, KernelOpen(ifname, k));
}

napi_value TapPort(napi_env env, const Args& a) {
  std::string where = "pktio.tapPort";
  CheckReady(where.c_str());
  std::string name = Str(env, a[0], where, "name");
  where += "(" + Quote(name) + ")";
  Opts o(env, a[1], where, true);
  TapOpts t;
  t.netns = o.Str("netns");
  napi_value mac = o.Get("mac");
  if (mac == nullptr) FailType(where + ": opts.mac is required");
  MacArg(env, mac, where, t.mac);
  if (o.Get("mtu") == nullptr) FailType(where + ": opts.mtu is required");
  t.mtu = static_cast<int>(o.Int("mtu", 1500, 68, MaxFrame() - 18));
  t.persist = o.Bool("persist", false);
  t.adopt = o.Bool("adopt", false);
  return AddPort(env, TapOpen(name, t));
}

napi_value Close(napi_env env, const Args& a) {
  const char* where = "pktio.close";
  CheckReady(where);
  int64_t h = PortArg(env, a[0], where);
  Port& p = GetPort(h, where);
  if (p.kind == Kind::kDpdk) DpdkClose(p);
  else CloseFdPort(p);
  S().ports[h].reset();
  return Undef(env);
}

napi_value Fd(napi_env env, const Args& a) {
  const char* where = "pktio.fd";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  napi_value v;
  Ok(env, napi_create_int32(env, p.kind == Kind::kDpdk ? -1 : p.fd, &v));
  return v;
}

const char* KindName(Kind k) { return k == Kind::kDpdk ? "dpdk" : k == Kind::kKernel ? "kernel" : "tap"; }

napi_value PortInfo(napi_env env, const Args& a) {
  const char* where = "pktio.portInfo";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  napi_value o = NewObj(env);
  SetStr(env, o, "kind", KindName(p.kind));
  if (!p.netnsPath.empty()) SetStr(env, o, "netns", p.netnsPath);
  if (p.kind == Kind::kDpdk) {
    NetnsScope ns;
    ns.Enter(p.nsfd, where);
    LogCapture cap;
    SetStr(env, o, "name", p.devName);
    SetStr(env, o, "devargs", p.spec);
    SetNum(env, o, "portId", p.portId);
    struct rte_ether_addr mac;
    int r = rte_eth_macaddr_get(p.portId, &mac);
    if (r != 0) FailRte(r, where, "rte_eth_macaddr_get(port " + std::to_string(p.portId) + ")");
    SetStr(env, o, "mac", MacToString(mac.addr_bytes));
    uint16_t mtu = 0;
    r = rte_eth_dev_get_mtu(p.portId, &mtu);
    if (r != 0) FailRte(r, where, "rte_eth_dev_get_mtu(port " + std::to_string(p.portId) + ")");
    SetNum(env, o, "mtu", mtu);
    struct rte_eth_link link {};
    r = rte_eth_link_get_nowait(p.portId, &link);
    bool up = r == 0 && link.link_status == RTE_ETH_LINK_UP;
    SetBool(env, o, "linkUp", up && p.adminUp && p.started);
    SetBool(env, o, "adminUp", p.adminUp);
    SetNum(env, o, "speedMbps", r == 0 ? link.link_speed : 0);
    struct rte_eth_dev_info info;
    if (rte_eth_dev_info_get(p.portId, &info) == 0) {
      if (info.if_index != 0) SetNum(env, o, "ifindex", info.if_index);
      if (info.driver_name != nullptr) SetStr(env, o, "driver", info.driver_name);
    }
    SetNum(env, o, "rxq", p.nrxq);
    SetNum(env, o, "txq", p.ntxq);
  } else {
    IfInfo i = IfGet(p, where);
    SetStr(env, o, "name", i.name);
    SetStr(env, o, "mac", i.hasMac ? MacToString(i.mac) : "");
    SetNum(env, o, "mtu", i.mtu);
    SetBool(env, o, "linkUp", (i.flags & IFF_UP) && (i.flags & IFF_RUNNING));
    SetBool(env, o, "adminUp", (i.flags & IFF_UP) != 0);
    SetNum(env, o, "ifindex", p.ifindex);
  }
  return o;
}

napi_value SetMtu(napi_env env, const Args& a) {
  const char* where = "pktio.setMtu";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  int mtu = static_cast<int>(Int(env, a[1], where, "mtu", 68, 65535));
  if (p.kind == Kind::kDpdk) {
    NetnsScope ns;
    ns.Enter(p.nsfd, where);
    LogCapture cap;
    int r = rte_eth_dev_set_mtu(p.portId, static_cast<uint16_t>(mtu));
    if (r != 0) FailRte(r, where, "rte_eth_dev_set_mtu(port " + std::to_string(p.portId) + ", " + std::to_string(mtu) + ")");
  } else {
    uint32_t maxMtu = MaxFrame() - 18;
    if (static_cast<uint32_t>(mtu) > maxMtu) {
      FailRange(std::string(where) + ": mtu " + std::to_string(mtu) + " does not fit the mbufs (at most " +
                std::to_string(maxMtu) + " with mbufSize " + std::to_string(S().pool.bufLen) + ")");
    }
    IfSetMtu(p, mtu, where);
  }
  return Undef(env);
}

napi_value SetMac(napi_env env, const Args& a) {
  const char* where = "pktio.setMac";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  uint8_t mac[6];
  MacArg(env, a[1], where, mac);
  if (p.kind == Kind::kDpdk) {
    NetnsScope ns;
    ns.Enter(p.nsfd, where);
    LogCapture cap;
    struct rte_ether_addr ea;
    memcpy(ea.addr_bytes, mac, 6);
    int r = rte_eth_dev_default_mac_addr_set(p.portId, &ea);
    if (r != 0) FailRte(r, where, "rte_eth_dev_default_mac_addr_set(port " + std::to_string(p.portId) + ", " + MacToString(mac) + ")");
  } else {
    IfSetMac(p, mac, where);
  }
  return Undef(env);
}

napi_value SetUp(napi_env env, const Args& a) {
  const char* where = "pktio.setUp";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  bool up = Bool(env, a[1], where, "up");
  if (p.kind == Kind::kDpdk) {
    NetnsScope ns;
    ns.Enter(p.nsfd, where);
    LogCapture cap;
    int r = up ? rte_eth_dev_set_link_up(p.portId) : rte_eth_dev_set_link_down(p.portId);
    if (r != 0 && r != -ENOTSUP && r != -EOPNOTSUPP) {
      FailRte(r, where, std::string(up ? "rte_eth_dev_set_link_up" : "rte_eth_dev_set_link_down") + "(port " + std::to_string(p.portId) + ")");
    }
    cap.Take();
    p.adminUp = up;  // rx/tx of an administratively down port do nothing (also when the PMD cannot drop its link)
  } else {
    IfSetUp(p, up, where);
  }
  return Undef(env);
}

// (port, flag) for a tap port: the port, after the checks.
Port& TapFlagArgs(napi_env env, const Args& a, const char* where, const char* flag, bool* on) {
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  *on = Bool(env, a[1], where, flag);
  if (p.kind != Kind::kTap) FailMsg(std::string(where) + ": port " + std::to_string(p.handle) + " is a " + KindName(p.kind) + " port, not a tap port", EINVAL);
  return p;
}

napi_value SetCarrier(napi_env env, const Args& a) {
  bool up;
  Port& p = TapFlagArgs(env, a, "pktio.setCarrier", "up", &up);
  TapSetCarrier(p, up);
  return Undef(env);
}

napi_value SetPersist(napi_env env, const Args& a) {
  bool on;
  Port& p = TapFlagArgs(env, a, "pktio.setPersist", "on", &on);
  TapSetPersist(p, on);
  return Undef(env);
}

napi_value Stats(napi_env env, const Args& a) {
  const char* where = "pktio.stats";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  PortStats s = p.sw;
  if (p.kind == Kind::kDpdk) {
    struct rte_eth_stats e {};
    int r = rte_eth_stats_get(p.portId, &e);
    if (r != 0) FailRte(r, where, "rte_eth_stats_get(port " + std::to_string(p.portId) + ")");
    s.ipackets = e.ipackets;
    s.opackets = e.opackets;
    s.ibytes = e.ibytes != 0 ? e.ibytes : p.sw.ibytes;  // some PMDs (net_ring) count no bytes: ours then
    s.obytes = e.obytes != 0 ? e.obytes : p.sw.obytes;
    s.imissed = e.imissed;
    s.ierrors = e.ierrors + p.sw.ierrors;
    s.oerrors = e.oerrors;
    s.rxNoMbuf = e.rx_nombuf;
  } else if (p.kind == Kind::kKernel) {
    KernelRefreshStats(p);
    s = p.sw;
  }
  napi_value o = NewObj(env);
  SetNum(env, o, "ipackets", static_cast<double>(s.ipackets));
  SetNum(env, o, "opackets", static_cast<double>(s.opackets));
  SetNum(env, o, "ibytes", static_cast<double>(s.ibytes));
  SetNum(env, o, "obytes", static_cast<double>(s.obytes));
  SetNum(env, o, "imissed", static_cast<double>(s.imissed));
  SetNum(env, o, "ierrors", static_cast<double>(s.ierrors));
  SetNum(env, o, "oerrors", static_cast<double>(s.oerrors));
  SetNum(env, o, "rxNoMbuf", static_cast<double>(s.rxNoMbuf));
  return o;
}

napi_value PoolStats(napi_env env, const Args&) {
  const char* where = "pktio.poolStats";
  CheckReady(where);
  Pool& pool = S().pool;
  napi_value o = NewObj(env);
  SetNum(env, o, "size", pool.n);
  SetNum(env, o, "avail", rte_mempool_avail_count(pool.mp));
  SetNum(env, o, "inUse", rte_mempool_in_use_count(pool.mp));
  SetNum(env, o, "held", static_cast<double>(pool.heldCount));
  return o;
}

// ---- hot path ---------------------------------------------------------------------------------------------------

// Validates mbuf[0..count) (indices held by JS, no duplicates) and, with off/len, their data windows; marks them
// kMarked. On error: unmarks and throws.
void CheckBurst(const char* where, const uint32_t* mbuf, const uint32_t* off, const uint32_t* len, uint32_t count,
                rte_mbuf** out) {
  Pool& pool = S().pool;
  uint32_t i = 0;
  try {
    for (; i < count; i++) {
      uint32_t idx = mbuf[i];
      if (idx >= pool.n) {
        FailRange(std::string(where) + ": mbuf[" + std::to_string(i) + "] = " + std::to_string(idx) +
                  " is not an mbuf index (the pool has " + std::to_string(pool.n) + ")");
      }
      uint8_t h = pool.held[idx];
      if (h != kHeld) {
        FailMsg(std::string(where) + ": mbuf[" + std::to_string(i) + "] = " + std::to_string(idx) +
                    (h == kMarked ? " appears twice in the burst" : " is not held by the caller (never received or allocated, or already freed or sent)"),
                EINVAL);
      }
      rte_mbuf* m = pool.Mbuf(idx);
      if (off != nullptr) {
        uint32_t bo = pool.BufOff(m);
        uint64_t end = static_cast<uint64_t>(off[i]) + len[i];
        if (off[i] < bo || end > static_cast<uint64_t>(bo) + m->buf_len || len[i] == 0) {
          FailRange(std::string(where) + ": packet " + std::to_string(i) + " (mbuf " + std::to_string(idx) + "): off " +
                    std::to_string(off[i]) + " len " + std::to_string(len[i]) + " is not a non-empty window of its buffer [" +
                    std::to_string(bo) + ", " + std::to_string(bo + m->buf_len) + ")");
        }
      }
      pool.held[idx] = kMarked;
      out[i] = m;
    }
  } catch (...) {
    for (uint32_t j = 0; j < i; j++) pool.held[mbuf[j]] = kHeld;
    throw;
  }
}

napi_value Rx(napi_env env, const Args& a) {
  const char* where = "pktio.rx";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  size_t n1, n2, n3;
  uint32_t* mbuf = U32Array(env, a[1], where, "mbuf", &n1);
  uint32_t* off = U32Array(env, a[2], where, "off", &n2);
  uint32_t* len = U32Array(env, a[3], where, "len", &n3);
  int64_t max = Int(env, a[4], where, "max", 0, static_cast<int64_t>(std::min(n1, std::min(n2, n3))));
  uint16_t q = 0;
  if (!Absent(env, a[5])) q = static_cast<uint16_t>(Int(env, a[5], where, "queue", 0, p.kind == Kind::kDpdk ? p.nrxq - 1 : 0));

  Pool& pool = S().pool;
  rte_mbuf* pkts[kTxChunk];
  uint32_t got = 0;
  while (got < max) {
    uint32_t want = std::min<uint32_t>(static_cast<uint32_t>(max) - got, kTxChunk);
    uint32_t n;
    switch (p.kind) {
      case Kind::kDpdk: n = DpdkRx(p, q, pkts, static_cast<uint16_t>(want)); break;
      case Kind::kKernel: n = KernelRx(p, pkts, want); break;
      default: n = TapRx(p, pkts, want); break;
    }
    for (uint32_t k = 0; k < n; k++) {
      rte_mbuf* m = pkts[k];
      if (__builtin_expect(m->nb_segs != 1, 0)) {  // scattered frames are not supported: drop
        p.sw.ierrors++;
        rte_pktmbuf_free(m);
        continue;
      }
      uint32_t idx = pool.Index(m);
      pool.held[idx] = kHeld;
      pool.heldCount++;
      mbuf[got] = idx;
      off[got] = pool.DataOff(m);
      len[got] = m->data_len;
      if (p.kind == Kind::kDpdk) p.sw.ibytes += m->data_len;
      got++;
    }
    if (n < want) break;
  }
  return U32(env, got);
}

napi_value Tx(napi_env env, const Args& a) {
  const char* where = "pktio.tx";
  CheckReady(where);
  Port& p = GetPort(PortArg(env, a[0], where), where);
  size_t n1, n2, n3;
  uint32_t* mbuf = U32Array(env, a[1], where, "mbuf", &n1);
  uint32_t* off = U32Array(env, a[2], where, "off", &n2);
  uint32_t* len = U32Array(env, a[3], where, "len", &n3);
  int64_t count = Int(env, a[4], where, "count", 0, static_cast<int64_t>(std::min(n1, std::min(n2, n3))));
  uint16_t q = 0;
  if (!Absent(env, a[5])) q = static_cast<uint16_t>(Int(env, a[5], where, "queue", 0, p.kind == Kind::kDpdk ? p.ntxq - 1 : 0));

  Pool& pool = S().pool;
  // Check the whole burst first: a bad entry anywhere sends nothing.
  rte_mbuf* pkts[kTxChunk];
  const uint32_t total = static_cast<uint32_t>(count);
  for (uint32_t base = 0; base < total; base += kTxChunk) {
    uint32_t chunk = std::min<uint32_t>(total - base, kTxChunk);
    try {
      CheckBurst(where, mbuf + base, off + base, len + base, chunk, pkts);
    } catch (...) {
      for (uint32_t j = 0; j < base; j++) pool.held[mbuf[j]] = kHeld;
      throw;
    }
  }
  uint32_t sent = 0;
  for (uint32_t base = 0; base < total; base += kTxChunk) {
    uint32_t chunk = std::min<uint32_t>(total - base, kTxChunk);
    for (uint32_t i = 0; i < chunk; i++) {
      rte_mbuf* m = pool.Mbuf(mbuf[base + i]);
      m->data_off = static_cast<uint16_t>(off[base + i] - pool.BufOff(m));
      m->data_len = static_cast<uint16_t>(len[base + i]);
      m->pkt_len = len[base + i];
      m->ol_flags = 0;
      m->packet_type = 0;
      pkts[i] = m;
    }
    uint32_t s;
    switch (p.kind) {
      case Kind::kDpdk: s = DpdkTx(p, q, pkts, static_cast<uint16_t>(chunk)); break;
      case Kind::kKernel: s = KernelTx(p, pkts, chunk); break;
      default: s = TapTx(p, pkts, chunk); break;
    }
    for (uint32_t i = 0; i < s; i++) pool.held[mbuf[base + i]] = kInPool;
    if (p.kind == Kind::kDpdk) {
      for (uint32_t i = 0; i < s; i++) p.sw.obytes += len[base + i];
    }
    sent += s;
    if (s < chunk) break;
  }
  for (uint32_t i = sent; i < total; i++) pool.held[mbuf[i]] = kHeld;  // not taken: still the caller's
  pool.heldCount -= sent;
  return U32(env, sent);
}

napi_value Free(napi_env env, const Args& a) {
  const char* where = "pktio.free";
  CheckReady(where);
  size_t n1;
  uint32_t* mbuf = U32Array(env, a[0], where, "mbuf", &n1);
  int64_t count = Int(env, a[1], where, "count", 0, static_cast<int64_t>(n1));
  Pool& pool = S().pool;
  // Check everything first: a bad index anywhere frees nothing.
  rte_mbuf* pkts[kTxChunk];
  for (uint32_t base = 0; base < count; base += kTxChunk) {
    uint32_t chunk = std::min<uint32_t>(static_cast<uint32_t>(count) - base, kTxChunk);
    try {
      CheckBurst(where, mbuf + base, nullptr, nullptr, chunk, pkts);
    } catch (...) {
      for (uint32_t j = 0; j < base; j++) pool.held[mbuf[j]] = kHeld;
      throw;
    }
  }
  for (uint32_t base = 0; base < count; base += kTxChunk) {
    uint32_t chunk = std::min<uint32_t>(static_cast<uint32_t>(count) - base, kTxChunk);
    for (uint32_t i = 0; i < chunk; i++) {
      pkts[i] = pool.Mbuf(mbuf[base + i]);
      pool.held[mbuf[base + i]] = kInPool;
    }
    rte_pktmbuf_free_bulk(pkts, chunk);
  }
  pool.heldCount -= static_cast<uint64_t>(count);
  return Undef(env);
}

napi_value Alloc(napi_env env, const Args& a) {
  const char* where = "pktio.alloc";
  CheckReady(where);
  size_t n1, n2;
  uint32_t* mbuf = U32Array(env, a[0], where, "mbuf", &n1);
  uint32_t* off = U32Array(env, a[1], where, "off", &n2);
  int64_t count = Int(env, a[2], where, "count", 0, static_cast<int64_t>(std::min(n1, n2)));
  Pool& pool = S().pool;
  rte_mbuf* pkts[kTxChunk];
  uint32_t got = 0;
  while (got < count) {
    uint32_t want = std::min<uint32_t>(static_cast<uint32_t>(count) - got, kTxChunk);
    uint32_t n = want;
    if (rte_pktmbuf_alloc_bulk(pool.mp, pkts, want) != 0) {
      n = 0;
      while (n < want && (pkts[n] = rte_pktmbuf_alloc(pool.mp)) != nullptr) n++;
    }
    for (uint32_t k = 0; k < n; k++) {
      uint32_t idx = pool.Index(pkts[k]);
      pool.held[idx] = kHeld;
      mbuf[got + k] = idx;
      off[got + k] = pool.DataOff(pkts[k]);
    }
    got += n;
    pool.heldCount += n;
    if (n < want) break;
  }
  return U32(env, got);
}

napi_value CyclesNow(napi_env env, const Args&) {
  napi_value v;
  Ok(env, napi_create_bigint_uint64(env, rte_rdtsc(), &v));
  return v;
}

napi_value CyclesHz(napi_env env, const Args&) {
  CheckReady("pktio.cyclesHz");
  napi_value v;
  Ok(env, napi_create_bigint_uint64(env, rte_get_tsc_hz(), &v));
  return v;
}

napi_value Initialised(napi_env env, const Args&) {
  napi_value v;
  Ok(env, napi_get_boolean(env, S().initialised && !S().shutDown, &v));
  return v;
}

}  // namespace

}  // namespace pktio

using namespace pktio;

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const napi_property_descriptor props[] = {
      {"init", nullptr, Entry<Init>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"shutdown", nullptr, Entry<Shutdown>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"initialised", nullptr, Entry<Initialised>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"dpdkPort", nullptr, Entry<DpdkPort>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"kernelPort", nullptr, Entry<KernelPort>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"tapPort", nullptr, Entry<TapPort>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"close", nullptr, Entry<Close>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fd", nullptr, Entry<Fd>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"portInfo", nullptr, Entry<PortInfo>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setMtu", nullptr, Entry<SetMtu>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setMac", nullptr, Entry<SetMac>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setUp", nullptr, Entry<SetUp>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setCarrier", nullptr, Entry<SetCarrier>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setPersist", nullptr, Entry<SetPersist>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"stats", nullptr, Entry<Stats>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"poolStats", nullptr, Entry<PoolStats>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rx", nullptr, Entry<Rx>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"tx", nullptr, Entry<Tx>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"free", nullptr, Entry<Free>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"alloc", nullptr, Entry<Alloc>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"cyclesNow", nullptr, Entry<CyclesNow>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"cyclesHz", nullptr, Entry<CyclesHz>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
