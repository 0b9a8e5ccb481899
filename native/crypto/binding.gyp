{
  # lfp_crypto: ESP crypto (AES-GCM, AES-CBC, HMAC-SHA1/256/512, NULL) over OpenSSL 3.
  # OpenSSL: this Node (node_shared_openssl=false) carries its own OpenSSL 3 and exports its symbols; the addon is
  # compiled against the headers shipped with Node (<nodedir>/include/node/openssl) and resolves EVP_*/SHA* from the
  # node binary, i.e. the same library instance as require('crypto'). With a Node linked to the system's libssl
  # (node_shared_openssl=true, e.g. Debian's nodejs package) it links -lcrypto (libssl-dev).
  "targets": [
    {
      "target_name": "lfp_crypto",
      "sources": ["src/addon.cc", "src/esp.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-fexceptions", "-std=gnu++17"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14"],
      "conditions": [
        ["node_shared_openssl=='true'", { "libraries": ["-lcrypto"] }]
      ],
      "libraries": ["-lIPSec_MB"]
    },
    {
      # Test tool (not loaded by Node): runs bursts of every algorithm with malloc/free interposed and fails if the
      # steady state allocates. Links the system libcrypto (libssl-dev) since there is no node binary to take it from.
      "target_name": "alloc_check",
      "type": "executable",
      "sources": ["tools/alloc_check.cc", "src/esp.cc"],
      "defines": ["OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-fexceptions", "-std=gnu++17"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14"],
      "libraries": ["-lcrypto", "-lIPSec_MB"]
    },
    {
      # Micro-benchmark (not loaded by Node, not run by the tests): intel-ipsec-mb driven like DPDK's aesni_mb PMD vs
      # our Sa burst loops, and the manager flavours. Run pinned: taskset -c 1 build/Release/mb_bench
      "target_name": "mb_bench",
      "type": "executable",
      "sources": ["tools/mb_bench.cc", "src/esp.cc"],
      "defines": ["OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-fexceptions", "-std=gnu++17"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14"],
      "libraries": ["-lcrypto", "-lIPSec_MB"]
    }
  ]
}
