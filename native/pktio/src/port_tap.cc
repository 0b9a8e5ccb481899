// DPVI ports: a TAP (IFF_TAP | IFF_NO_PI) created by this process in a network namespace, with the fast-path
// port's name, MAC and MTU. By default it is not persistent: it disappears with its descriptor (close(), process
// exit, crash). With `persist` it outlives the descriptor (TUNSETPERSIST; `TapSetPersist(false)` before close removes
// it), and with `adopt` an existing TAP of that name is attached to instead of refused (its addresses, routes and
// neighbours stay: the caller checks it is one of its own first).
// I/O: one read()/write() per frame, straight into/out of mbufs (exception traffic: a few packets per burst).

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pktio.h"

namespace pktio {

std::unique_ptr<Port> TapOpen(const std::string& name, const TapOpts& o) {
  const std::string where = "pktio.tapPort(" + Quote(name) + ")";
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == ".." ||
      name.find_first_of("/: \t\n") != std::string::npos) {
    FailRange(where + ": not a valid interface name (1-" + std::to_string(IFNAMSIZ - 1) +
              " characters, no '/', ':' or white space)");
  }
  std::unique_ptr<Port> p(new Port());
  p->kind = Kind::kTap;
  p->spec = name;
  if (!o.netns.empty()) {
    p->nsfd = OpenNetns(o.netns, where);
    p->netnsPath = o.netns;
  }
  bool exists = false;
  try {
    NetnsScope ns;
    ns.Enter(p->nsfd, where);
    p->ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->ctl < 0) FailErrno(errno, where, "socket(AF_INET, SOCK_DGRAM)");
    struct ifreq ifr {};
    memcpy(ifr.ifr_name, name.data(), name.size());
    exists = ioctl(p->ctl, SIOCGIFINDEX, &ifr) == 0;
    if (exists && !o.adopt) {
      // Never attach to (or take over) an interface that is already there unless asked to.
      FailMsg(where + ": an interface named " + Quote(name) + " already exists" + (o.netns.empty() ? "" : " in " + o.netns), EEXIST);
    }
    // The TAP is created in the namespace of the thread that opens /dev/net/tun (we are inside the scope here).
    p->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (p->fd < 0) FailErrno(errno, where, "open(\"/dev/net/tun\")");
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(p->fd, TUNSETIFF, &ifr) < 0) {
      const int e = errno;
      if (exists && e == EBUSY) FailMsg(where + ": the TAP " + Quote(name) + " is in use by another process", EBUSY);
      if (exists && e == EINVAL) FailMsg(where + ": the interface " + Quote(name) + " is not a TAP (without packet information)", EINVAL);
      FailErrno(e, where, "ioctl(TUNSETIFF)");
    }
    if (o.persist && ioctl(p->fd, TUNSETPERSIST, 1) < 0) FailErrno(errno, where, "ioctl(TUNSETPERSIST)");
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name.data(), name.size());
    if (ioctl(p->ctl, SIOCGIFINDEX, &ifr) < 0) FailErrno(errno, where, "ioctl(SIOCGIFINDEX)");
    p->ifindex = ifr.ifr_ifindex;
    IfSetMac(*p, o.mac, where.c_str());
    IfSetMtu(*p, o.mtu, where.c_str());
  } catch (Fail&) {
    if (p->fd >= 0 && o.persist && !exists) ioctl(p->fd, TUNSETPERSIST, 0);  // ours, half made: remove it
    CloseFdPort(*p);  // a non-persistent TAP goes away with its fd
    throw;
  }
  return p;
}

void TapSetPersist(Port& p, bool on) {
  if (ioctl(p.fd, TUNSETPERSIST, on ? 1 : 0) < 0) FailErrno(errno, "pktio.setPersist", "ioctl(TUNSETPERSIST)");
}

uint32_t TapRx(Port& p, rte_mbuf** pkts, uint32_t max) {
  Pool& pool = S().pool;
  const uint32_t room = MaxFrame();
  uint32_t got = 0;
  while (got < max) {
    rte_mbuf* m = p.spare;
    p.spare = nullptr;
    if (m == nullptr) {
      m = rte_pktmbuf_alloc(pool.mp);
      if (m == nullptr) {
        p.sw.rxNoMbuf++;
        break;
      }
    }
    ssize_t n = read(p.fd, rte_pktmbuf_mtod(m, void*), room);
    if (n <= 0) {
      p.spare = m;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EBADFD) p.sw.ierrors++;  // EBADFD: the TAP was deleted
      break;
    }
    if (static_cast<size_t>(n) > room) {  // tun reports the frame's length even when it did not fit
      p.sw.ierrors++;
      p.spare = m;
      continue;
    }
    m->data_len = static_cast<uint16_t>(n);
    m->pkt_len = static_cast<uint32_t>(n);
    p.sw.ipackets++;
    p.sw.ibytes += static_cast<uint64_t>(n);
    pkts[got++] = m;
  }
  return got;
}

uint32_t TapTx(Port& p, rte_mbuf** pkts, uint32_t n) {
  uint32_t done = 0;
  while (done < n) {
    rte_mbuf* m = pkts[done];
    ssize_t w = write(p.fd, rte_pktmbuf_mtod(m, void*), m->data_len);
    if (w < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN) break;
      p.sw.oerrors++;  // EIO (interface down), EINVAL (bad frame): dropped
    } else {
      p.sw.opackets++;
      p.sw.obytes += m->data_len;
    }
    done++;
  }
  if (done > 0) rte_pktmbuf_free_bulk(pkts, done);
  return done;
}

void TapSetCarrier(Port& p, bool up) {
  int c = up ? 1 : 0;
  if (ioctl(p.fd, TUNSETCARRIER, &c) < 0) FailErrno(errno, "pktio.setCarrier", "ioctl(TUNSETCARRIER)");
}

}  // namespace pktio
