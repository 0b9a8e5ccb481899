// DPDK ethdev ports: any EAL device string (vdev: net_ring0, net_af_packet0,iface=X, net_af_xdp0,iface=X,
// net_memif0, net_tap0, ...; or a PCI address), probed at run time with rte_dev_probe when it is not already there.

#include <errno.h>
#include <unistd.h>

#include <rte_dev.h>
#include <rte_errno.h>

#include "pktio.h"

namespace pktio {

namespace {

void DrainAndStop(Port& p) {
  if (p.promiscSet) rte_eth_promiscuous_disable(p.portId);
  p.promiscSet = false;
  if (!p.started) return;
  rte_mbuf* pkts[kTxChunk];
  for (uint16_t q = 0; q < p.nrxq; q++) {
    for (int i = 0; i < 1024; i++) {
      uint16_t n = rte_eth_rx_burst(p.portId, q, pkts, kTxChunk);
      if (n == 0) break;
      rte_pktmbuf_free_bulk(pkts, n);
    }
  }
  rte_eth_dev_stop(p.portId);
  p.started = false;
}

}  // namespace

std::unique_ptr<Port> DpdkOpen(const std::string& devargs, const DpdkOpts& o) {
  State& st = S();
  const std::string where = "pktio.dpdkPort(" + Quote(devargs) + ")";
  std::unique_ptr<Port> p(new Port());
  p->kind = Kind::kDpdk;
  p->spec = devargs;
  p->nrxq = o.rxq;
  p->ntxq = o.txq;
  const std::string name = devargs.substr(0, devargs.find(','));
  if (name.empty()) FailMsg(where + ": empty device name", EINVAL);
  for (auto& q : st.ports) {
    if (q && q->kind == Kind::kDpdk && (q->devName == name || q->spec == devargs)) {
      FailMsg(where + ": device " + Quote(name) + " is already open as port " + std::to_string(q->handle), EBUSY);
    }
  }
  if (!o.netns.empty()) {
    p->nsfd = OpenNetns(o.netns, where);
    p->netnsPath = o.netns;
  }

  bool probed = false;
  bool configured = false;
  try {
    NetnsScope ns;
    ns.Enter(p->nsfd, where);
    LogCapture cap;
    std::vector<int> fdsBefore = OpenFds();

    uint16_t pid = RTE_MAX_ETHPORTS;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &pid) != 0) {
      int r = rte_dev_probe(devargs.c_str());
      if (r < 0 && r != -EEXIST) FailRte(r, where, "rte_dev_probe", true);
      probed = r == 0;
      if (rte_eth_dev_get_port_by_name(name.c_str(), &pid) != 0) {
        pid = RTE_MAX_ETHPORTS;
        struct rte_dev_iterator it;
        uint16_t id;
        RTE_ETH_FOREACH_MATCHING_DEV(id, devargs.c_str(), &it) {
          pid = id;
          rte_eth_iterator_cleanup(&it);
          break;
        }
      }
      if (pid == RTE_MAX_ETHPORTS) {
        FailMsg(where + ": rte_dev_probe succeeded but no ethdev port was created for it (not a network device?)",
                ENODEV);
      }
    }
    for (auto& q : st.ports) {
      if (q && q->kind == Kind::kDpdk && q->portId == pid) {
        FailMsg(where + ": ethdev port " + std::to_string(pid) + " is already open as port " + std::to_string(q->handle), EBUSY);
      }
    }
    p->portId = pid;

    struct rte_eth_dev_info info;
    int r = rte_eth_dev_info_get(pid, &info);
    if (r != 0) FailRte(r, where, "rte_eth_dev_info_get(port " + std::to_string(pid) + ")");
    p->device = info.device;
    p->devName = name;
    char devname[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(pid, devname) == 0) p->devName = devname;
    if (o.rxq > info.max_rx_queues || o.txq > info.max_tx_queues) {
      FailMsg(where + ": " + std::to_string(o.rxq) + " rx / " + std::to_string(o.txq) +
                  " tx queues requested, the device has at most " + std::to_string(info.max_rx_queues) + " / " +
                  std::to_string(info.max_tx_queues),
              EINVAL);
    }

    struct rte_eth_conf conf {};
    if (o.rxq > 1) {
      uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
      if (hf != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = hf;
      }
    }
    const std::string pstr = "(port " + std::to_string(pid) + ")";
    r = rte_eth_dev_configure(pid, o.rxq, o.txq, &conf);
    if (r != 0) FailRte(r, where, "rte_eth_dev_configure" + pstr);
    configured = true;
    uint16_t nrx = o.rxDesc, ntx = o.txDesc;
    r = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
    if (r != 0) FailRte(r, where, "rte_eth_dev_adjust_nb_rx_tx_desc" + pstr);
    int socket = rte_eth_dev_socket_id(pid);
    if (socket < 0) socket = SOCKET_ID_ANY;
    for (uint16_t q = 0; q < o.rxq; q++) {
      r = rte_eth_rx_queue_setup(pid, q, nrx, static_cast<unsigned>(socket), nullptr, st.pool.mp);
      if (r != 0) FailRte(r, where, "rte_eth_rx_queue_setup(port " + std::to_string(pid) + ", queue " + std::to_string(q) + ")");
    }
    for (uint16_t q = 0; q < o.txq; q++) {
      r = rte_eth_tx_queue_setup(pid, q, ntx, static_cast<unsigned>(socket), nullptr);
      if (r != 0) FailRte(r, where, "rte_eth_tx_queue_setup(port " + std::to_string(pid) + ", queue " + std::to_string(q) + ")");
    }
    if (o.mtu > 0) {
      r = rte_eth_dev_set_mtu(pid, static_cast<uint16_t>(o.mtu));
      if (r != 0) FailRte(r, where, "rte_eth_dev_set_mtu(port " + std::to_string(pid) + ", " + std::to_string(o.mtu) + ")");
    }
    r = rte_eth_dev_start(pid);
    if (r != 0) FailRte(r, where, "rte_eth_dev_start" + pstr);
    p->started = true;
    if (rte_eth_promiscuous_get(pid) == 0) {
      r = rte_eth_promiscuous_enable(pid);
      if (r != 0 && r != -ENOTSUP) FailRte(r, where, "rte_eth_promiscuous_enable" + pstr);
      p->promiscSet = r == 0;
    }
    CloexecNewFds(fdsBefore);
  } catch (Fail&) {
    // Undo what was done (in the port's namespace), keep the original error.
    NetnsScope ns;
    try {
      ns.Enter(p->nsfd, where);
    } catch (Fail&) {
    }
    LogCapture quiet;
    quiet.Take();
    if (p->started) DrainAndStop(*p);
    if (configured) rte_eth_dev_close(p->portId);
    // A device we probed, or one we configured and closed (it is unusable now), is removed so that a retry can
    // probe it again.
    if (p->device != nullptr && (probed || configured)) rte_dev_remove(p->device);
    else if (probed) rte_eal_hotplug_remove("vdev", name.c_str());
    if (p->nsfd >= 0) close(p->nsfd);
    p->nsfd = -1;
    quiet.Take();
    throw;
  }
  return p;
}

uint16_t DpdkRx(Port& p, uint16_t q, rte_mbuf** pkts, uint16_t max) {
  if (!p.started || !p.adminUp) return 0;
  return rte_eth_rx_burst(p.portId, q, pkts, max);
}

uint16_t DpdkTx(Port& p, uint16_t q, rte_mbuf** pkts, uint16_t n) {
  if (!p.started || !p.adminUp) return 0;
  return rte_eth_tx_burst(p.portId, q, pkts, n);
}

void DpdkClose(Port& p) {
  NetnsScope ns;
  try {
    ns.Enter(p.nsfd, "pktio.close");
  } catch (Fail&) {
  }
  LogCapture cap;
  DrainAndStop(p);
  rte_eth_dev_close(p.portId);
  if (p.device != nullptr) rte_dev_remove(p.device);
  p.device = nullptr;
  if (p.nsfd >= 0) close(p.nsfd);
  p.nsfd = -1;
}

}  // namespace pktio
