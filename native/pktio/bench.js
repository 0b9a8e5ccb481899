#!/usr/bin/env node
// Micro-benchmarks of lfp_pktio (root; after `npx tsc -p .` and the addon build):
//   node native/pktio/bench.js
// - net_ring loopback: tx+rx cost per packet for several burst sizes, and the fixed cost of one call;
// - veth in a temporary namespace: kernel port -> kernel port and net_af_packet -> kernel port, one thread doing
//   both ends (so the figure is the sum of tx and rx work, kernel included).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const path = require('path');
const pktio = require(path.resolve(__dirname, '../../build/native/pktio.js'));

const pool = pktio.init({ eal: ['--vdev=net_ring0'], mbufs: 16383 });
const V = 256;
const mb = new Uint32Array(V), off = new Uint32Array(V), len = new Uint32Array(V);

function ring() {
  const port = pktio.dpdkPort('net_ring0');
  for (const burst of [1, 8, 32, 64, 256]) {
    pktio.alloc(mb, off, burst);
    len.fill(64);
    const iters = Math.max(20000, Math.floor(4e6 / burst));
    for (let i = 0; i < 2000; i++) { pktio.tx(port, mb, off, len, burst); pktio.rx(port, mb, off, len, burst); }
    const c0 = pktio.cyclesNow();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) { pktio.tx(port, mb, off, len, burst); pktio.rx(port, mb, off, len, burst); }
    const ns = Number(process.hrtime.bigint() - t0);
    const cyc = Number(pktio.cyclesNow() - c0);
    pktio.free(mb, burst);
    console.log(`net_ring tx+rx burst ${String(burst).padStart(3)}: ${(ns / (iters * burst)).toFixed(2).padStart(7)} ns/packet ` +
      `${(cyc / (iters * burst)).toFixed(1).padStart(6)} cycles/packet  (${(ns / iters).toFixed(0)} ns per tx+rx pair)`);
  }
  const calls = 200000;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) pktio.rx(port, mb, off, len, V);
  console.log(`empty rx poll (net_ring): ${(Number(process.hrtime.bigint() - t0) / calls).toFixed(0)} ns/call`);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) { pktio.alloc(mb, off, 32); pktio.free(mb, 32); }
  console.log(`alloc(32)+free(32): ${(Number(process.hrtime.bigint() - t0) / calls).toFixed(0)} ns per pair`);
  pktio.close(port);
}

async function veth() {
  const ns = `lfp-t-bench-${process.pid}`;
  const ip = (...a) => execFileSync('ip', ['-n', ns, ...a]);
  execFileSync('ip', ['netns', 'add', ns]);
  const ports = [];
  try {
    ip('link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0');
    ip('link', 'add', 'a1', 'type', 'veth', 'peer', 'name', 'b1');
    for (const l of ['a0', 'b0', 'a1', 'b1']) ip('link', 'set', l, 'up');
    const nsPath = `/run/netns/${ns}`;
    const cases = [
      ['kernel -> kernel', () => pktio.kernelPort('a0', { netns: nsPath }), () => pktio.kernelPort('b0', { netns: nsPath })],
      ['net_af_packet -> kernel', () => pktio.dpdkPort('net_af_packet5,iface=a1', { netns: nsPath }), () => pktio.kernelPort('b1', { netns: nsPath })],
    ];
    const rmb = new Uint32Array(V), roff = new Uint32Array(V), rlen = new Uint32Array(V);
    for (const [name, mkTx, mkRx] of cases) {
      const tx = mkTx(), rx = mkRx();
      ports.push(tx, rx);
      let sent = 0, got = 0;
      const end = Date.now() + 2000;
      const t0 = process.hrtime.bigint();
      while (Date.now() < end) {
        const n = pktio.alloc(mb, off, V);
        for (let i = 0; i < n; i++) { pool.mem.fill(0xff, off[i], off[i] + 12); pool.mem[off[i] + 12] = 0x88; pool.mem[off[i] + 13] = 0xb5; }
        len.fill(64);
        const s = pktio.tx(tx, mb, off, len, n);
        if (s < n) pktio.free(mb.subarray(s), n - s);
        sent += s;
        for (let k = 0; k < 4; k++) {
          const r = pktio.rx(rx, rmb, roff, rlen, V);
          got += r;
          pktio.free(rmb, r);
          if (r < V) break;
        }
      }
      const sec = Number(process.hrtime.bigint() - t0) / 1e9;
      const st = pktio.stats(rx);
      console.log(`veth ${name}, 64 B: sent ${(sent / sec / 1e6).toFixed(2)} Mpps, received ${(got / sec / 1e6).toFixed(2)} Mpps ` +
        `(rx imissed ${st.imissed}), one thread for both ends`);
    }
  } finally {
    for (const p of ports) try { pktio.close(p); } catch { /* closed */ }
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

ring();
veth().then(() => pktio.shutdown());
