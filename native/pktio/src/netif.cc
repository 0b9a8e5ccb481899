// Interface ioctls shared by kernel and TAP ports. They go through p.ctl, a datagram socket created in the port's
// network namespace (so no setns is needed afterwards), and address the interface by ifindex: a rename is followed.

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pktio.h"

namespace pktio {

namespace {

std::string Describe(const Port& p) {
  std::string s = "interface " + Quote(p.spec) + " (ifindex " + std::to_string(p.ifindex) + ")";
  if (!p.netnsPath.empty()) s += " in " + p.netnsPath;
  return s;
}

// ifr_name of the port's interface, looked up by ifindex.
void NameOf(Port& p, struct ifreq* ifr, const char* where) {
  memset(ifr, 0, sizeof *ifr);
  ifr->ifr_ifindex = p.ifindex;
  if (ioctl(p.ctl, SIOCGIFNAME, ifr) < 0) {
    int e = errno;
    if (e == ENODEV) FailMsg(std::string(where) + ": " + Describe(p) + " no longer exists", ENODEV);
    FailErrno(e, where, "ioctl(SIOCGIFNAME)");
  }
}

}  // namespace

IfInfo IfGet(Port& p, const char* where) {
  IfInfo r{};
  struct ifreq ifr;
  NameOf(p, &ifr, where);
  r.name = ifr.ifr_name;
  struct ifreq q = ifr;
  if (ioctl(p.ctl, SIOCGIFHWADDR, &q) < 0) FailErrno(errno, where, "ioctl(SIOCGIFHWADDR)");
  r.hasMac = q.ifr_hwaddr.sa_family == ARPHRD_ETHER;
  memcpy(r.mac, q.ifr_hwaddr.sa_data, 6);
  q = ifr;
  if (ioctl(p.ctl, SIOCGIFMTU, &q) < 0) FailErrno(errno, where, "ioctl(SIOCGIFMTU)");
  r.mtu = q.ifr_mtu;
  q = ifr;
  if (ioctl(p.ctl, SIOCGIFFLAGS, &q) < 0) FailErrno(errno, where, "ioctl(SIOCGIFFLAGS)");
  r.flags = static_cast<unsigned short>(q.ifr_flags);
  return r;
}

void IfSetMtu(Port& p, int mtu, const char* where) {
  struct ifreq ifr;
  NameOf(p, &ifr, where);
  ifr.ifr_mtu = mtu;
  if (ioctl(p.ctl, SIOCSIFMTU, &ifr) < 0) FailErrno(errno, where, "ioctl(SIOCSIFMTU, " + std::to_string(mtu) + ")");
}

void IfSetMac(Port& p, const uint8_t mac[6], const char* where) {
  struct ifreq ifr;
  NameOf(p, &ifr, where);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
  if (ioctl(p.ctl, SIOCSIFHWADDR, &ifr) < 0) FailErrno(errno, where, "ioctl(SIOCSIFHWADDR, " + MacToString(mac) + ")");
}

void IfSetUp(Port& p, bool up, const char* where) {
  struct ifreq ifr;
  NameOf(p, &ifr, where);
  if (ioctl(p.ctl, SIOCGIFFLAGS, &ifr) < 0) FailErrno(errno, where, "ioctl(SIOCGIFFLAGS)");
  short want = up ? static_cast<short>(ifr.ifr_flags | IFF_UP) : static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  if (want == ifr.ifr_flags) return;
  ifr.ifr_flags = want;
  if (ioctl(p.ctl, SIOCSIFFLAGS, &ifr) < 0) FailErrno(errno, where, up ? "ioctl(SIOCSIFFLAGS, +IFF_UP)" : "ioctl(SIOCSIFFLAGS, -IFF_UP)");
}

void CloseFdPort(Port& p) {
  if (p.ring != nullptr) munmap(p.ring, p.ringLen);
  p.ring = nullptr;
  p.nextPkt = nullptr;
  if (p.fd >= 0) close(p.fd);
  if (p.ctl >= 0) close(p.ctl);
  if (p.nsfd >= 0) close(p.nsfd);
  p.fd = p.ctl = p.nsfd = -1;
  if (p.spare != nullptr) rte_pktmbuf_free(p.spare);
  p.spare = nullptr;
}

}  // namespace pktio
