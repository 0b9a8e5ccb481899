// Kernel ports: an existing Linux interface through an AF_PACKET socket.
//  - RX: TPACKET_V3 ring (mmap'd blocks of variable-size frames), frames copied into fresh mbufs; an 802.1Q tag the
//    kernel took out of the frame (TP_STATUS_VLAN_VALID) is put back, so JS sees the frame as it was on the wire.
//  - TX: sendmmsg() with one iovec per packet pointing into the mbuf (the kernel copies), up to kTxChunk per call;
//    mbufs are freed once sent.
//  - promiscuous through PACKET_MR_PROMISC (a membership: dropped by the kernel when the socket closes, so a crash
//    leaves no promiscuous interface behind); PACKET_IGNORE_OUTGOING so that our own (and the kernel's) outgoing
//    frames are not received back.

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pktio.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace pktio {

namespace {

inline struct tpacket_block_desc* Block(Port& p, uint32_t i) {
  return reinterpret_cast<struct tpacket_block_desc*>(p.ring + static_cast<size_t>(i) * p.blockSize);
}

inline void ReleaseBlock(Port& p) {
  __atomic_store_n(&Block(p, p.curBlock)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  p.curBlock = p.curBlock + 1 == p.blockNr ? 0 : p.curBlock + 1;
  p.nextPkt = nullptr;
  p.pktsLeft = 0;
}

}  // namespace

std::unique_ptr<Port> KernelOpen(const std::string& ifname, const KernelOpts& o) {
  const std::string where = "pktio.kernelPort(" + Quote(ifname) + ")";
  if (ifname.size() >= IFNAMSIZ) FailRange(where + ": interface names have at most " + std::to_string(IFNAMSIZ - 1) + " characters");
  std::unique_ptr<Port> p(new Port());
  p->kind = Kind::kKernel;
  p->spec = ifname;
  if (!o.netns.empty()) {
    p->nsfd = OpenNetns(o.netns, where);
    p->netnsPath = o.netns;
  }
  try {
    NetnsScope ns;
    ns.Enter(p->nsfd, where);
    p->ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->ctl < 0) FailErrno(errno, where, "socket(AF_INET, SOCK_DGRAM)");
    struct ifreq ifr {};
    memcpy(ifr.ifr_name, ifname.data(), ifname.size());
    if (ioctl(p->ctl, SIOCGIFINDEX, &ifr) < 0) {
      int e = errno;
      if (e == ENODEV) {
        FailMsg(where + ": no interface " + Quote(ifname) + (o.netns.empty() ? "" : " in " + o.netns), ENODEV);
      }
      FailErrno(e, where, "ioctl(SIOCGIFINDEX)");
    }
    p->ifindex = ifr.ifr_ifindex;

    // Protocol 0 until bind: nothing is queued from other interfaces meanwhile.
    p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->fd < 0) FailErrno(errno, where, "socket(AF_PACKET, SOCK_RAW)");
    int v = TPACKET_V3;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) FailErrno(errno, where, "setsockopt(PACKET_VERSION, TPACKET_V3)");
    struct tpacket_req3 req {};
    req.tp_block_size = o.blockSize;
    req.tp_block_nr = o.blockNr;
    req.tp_frame_size = 2048;  // V3 frames are variable; this only has to divide the block size
    req.tp_frame_nr = static_cast<unsigned>((static_cast<uint64_t>(o.blockSize) * o.blockNr) / req.tp_frame_size);
    req.tp_retire_blk_tov = o.blockTimeoutMs;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) {
      FailErrno(errno, where,
                "setsockopt(PACKET_RX_RING, " + std::to_string(o.blockNr) + " blocks of " + std::to_string(o.blockSize) + " bytes)");
    }
    p->blockSize = o.blockSize;
    p->blockNr = o.blockNr;
    p->ringLen = static_cast<size_t>(o.blockSize) * o.blockNr;
    void* ring = mmap(nullptr, p->ringLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd, 0);
    if (ring == MAP_FAILED) FailErrno(errno, where, "mmap(rx ring)");
    p->ring = static_cast<uint8_t*>(ring);
    int one = 1;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0 && errno != ENOPROTOOPT) {
      FailErrno(errno, where, "setsockopt(PACKET_IGNORE_OUTGOING)");
    }
    if (o.qdiscBypass && setsockopt(p->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) {
      FailErrno(errno, where, "setsockopt(PACKET_QDISC_BYPASS)");
    }
    int sndbuf = 4 << 20;
    if (setsockopt(p->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0) {
      setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    struct sockaddr_ll sll {};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = p->ifindex;
    if (bind(p->fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) FailErrno(errno, where, "bind(AF_PACKET)");
    struct packet_mreq mr {};
    mr.mr_ifindex = p->ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
      FailErrno(errno, where, "setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)");
    }
    p->msgs.assign(kTxChunk, mmsghdr{});
    p->iovs.assign(kTxChunk, iovec{});
    for (unsigned i = 0; i < kTxChunk; i++) {
      p->msgs[i].msg_hdr.msg_iov = &p->iovs[i];
      p->msgs[i].msg_hdr.msg_iovlen = 1;
    }
  } catch (Fail&) {
    CloseFdPort(*p);
    throw;
  }
  return p;
}

uint32_t KernelRx(Port& p, rte_mbuf** pkts, uint32_t max) {
  Pool& pool = S().pool;
  const uint32_t room = MaxFrame();
  uint32_t got = 0;
  while (got < max) {
    if (p.nextPkt == nullptr) {
      struct tpacket_block_desc* b = Block(p, p.curBlock);
      if ((__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) break;
      p.pktsLeft = b->hdr.bh1.num_pkts;
      p.nextPkt = reinterpret_cast<uint8_t*>(b) + b->hdr.bh1.offset_to_first_pkt;
      if (p.pktsLeft == 0) {
        ReleaseBlock(p);
        continue;
      }
    }
    uint32_t want = std::min(max - got, p.pktsLeft);
    if (rte_pktmbuf_alloc_bulk(pool.mp, pkts + got, want) != 0) {
      // Pool nearly empty: take what there is, one by one.
      uint32_t k = 0;
      while (k < want && (pkts[got + k] = rte_pktmbuf_alloc(pool.mp)) != nullptr) k++;
      if (k == 0) {
        p.sw.rxNoMbuf++;
        break;  // the frames stay in the ring
      }
      want = k;
    }
    uint32_t used = 0;
    for (uint32_t k = 0; k < want; k++) {
      const struct tpacket3_hdr* h = reinterpret_cast<const struct tpacket3_hdr*>(p.nextPkt);
      const uint8_t* data = p.nextPkt + h->tp_mac;
      const uint32_t snap = h->tp_snaplen;
      const bool vlan = (h->tp_status & TP_STATUS_VLAN_VALID) != 0;
      const uint32_t flen = snap + (vlan ? 4 : 0);
      if (snap < h->tp_len || flen > room || (vlan && snap < 12)) {
        p.sw.ierrors++;  // truncated by the ring or too large for an mbuf
      } else {
        rte_mbuf* m = pkts[got + used++];
        uint8_t* dst = rte_pktmbuf_mtod(m, uint8_t*);
        if (vlan) {
          uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
          memcpy(dst, data, 12);
          dst[12] = static_cast<uint8_t>(tpid >> 8);
          dst[13] = static_cast<uint8_t>(tpid);
          dst[14] = static_cast<uint8_t>(h->hv1.tp_vlan_tci >> 8);
          dst[15] = static_cast<uint8_t>(h->hv1.tp_vlan_tci);
          memcpy(dst + 16, data + 12, snap - 12);
        } else {
          memcpy(dst, data, snap);
        }
        m->data_len = static_cast<uint16_t>(flen);
        m->pkt_len = flen;
        p.sw.ibytes += flen;
      }
      p.nextPkt += h->tp_next_offset;
      if (--p.pktsLeft == 0) ReleaseBlock(p);
    }
    if (used < want) rte_pktmbuf_free_bulk(pkts + got + used, want - used);
    got += used;
    p.sw.ipackets += used;
  }
  return got;
}

uint32_t KernelTx(Port& p, rte_mbuf** pkts, uint32_t n) {
  uint32_t done = 0;
  while (done < n) {
    const uint32_t chunk = std::min(n - done, kTxChunk);
    for (uint32_t i = 0; i < chunk; i++) {
      rte_mbuf* m = pkts[done + i];
      p.iovs[i].iov_base = rte_pktmbuf_mtod(m, void*);
      p.iovs[i].iov_len = m->data_len;
    }
    int r = sendmmsg(p.fd, p.msgs.data(), chunk, MSG_DONTWAIT);
    if (r > 0) {
      for (int i = 0; i < r; i++) p.sw.obytes += p.iovs[i].iov_len;
      p.sw.opackets += static_cast<uint64_t>(r);
      rte_pktmbuf_free_bulk(pkts + done, static_cast<unsigned>(r));
      done += static_cast<uint32_t>(r);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == ENOBUFS) break;  // socket/queue full: the rest stays the caller's
    if (e == ENETDOWN || e == ENXIO || e == ENODEV) {
      // The interface is down or gone: drop the whole burst (as a NIC without link would).
      p.sw.oerrors += n - done;
      rte_pktmbuf_free_bulk(pkts + done, n - done);
      done = n;
      break;
    }
    // This one packet is refused (EMSGSIZE: larger than the MTU, EINVAL: too short ...): drop it, go on.
    p.sw.oerrors++;
    rte_pktmbuf_free(pkts[done]);
    done++;
  }
  return done;
}

void KernelRefreshStats(Port& p) {
  struct tpacket_stats_v3 s {};
  socklen_t l = sizeof s;
  if (getsockopt(p.fd, SOL_PACKET, PACKET_STATISTICS, &s, &l) == 0) p.sw.imissed += s.tp_drops;  // read resets them
}

}  // namespace pktio
