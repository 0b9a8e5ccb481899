// EAL + pool initialisation and teardown (eal.cc).
#pragma once

#include <string>
#include <vector>

#include "pktio.h"

namespace pktio {

struct InitOpts {
  std::vector<std::string> eal;  // extra EAL arguments
  int memMB = -1;                // -m; default: computed from mbufs
  uint32_t mbufs = 16383;
  uint32_t dataRoom = RTE_MBUF_DEFAULT_BUF_SIZE;  // 2048 + 128
  bool hugepages = false;        // use free hugepages when there are some (else --no-huge)
  bool pci = false;              // do not pass --no-pci
  int core = -1;                 // EAL main lcore (-l); default: first CPU this thread may run on
  bool pin = false;              // keep the EAL's pinning of this thread to `core` (default: restored)
};

std::string InitKey(const InitOpts& o);
void EalAndPoolInit(const InitOpts& o);  // throws Fail
void Teardown();                         // close all ports, free the pool, rte_eal_cleanup

}  // namespace pktio
