{
  "targets": [
    {
      "target_name": "lfp_pktio",
      "sources": [
        "src/addon.cc",
        "src/eal.cc",
        "src/netif.cc",
        "src/port_dpdk.cc",
        "src/port_kernel.cc",
        "src/port_tap.cc",
        "src/util.cc"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["<!@(pkg-config --cflags libdpdk)", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-fexceptions", "-Wno-missing-field-initializers"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs libdpdk)"]
    }
  ]
}
