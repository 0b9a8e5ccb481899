// lfp_pktio ports on veth pairs in a test network namespace: a DPDK net_af_packet port and a kernel (AF_PACKET
// TPACKET_V3) port. The test answers ARP and ICMP echo itself (in place, in the pool memory), so a `ping` run in the
// namespace proves both directions; raw bursts and the peer's counters check the rest. Needs root and the addon.

import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as pktio from '../../native/pktio';
import { Netns } from '../lib/netns';

// Same options in every pktio-*.test.ts: mocha runs them in one process and the EAL initialises once per process.
const POOL_OPTS: pktio.InitOptions = { eal: ['--vdev=net_ring0'], mbufs: 8191 };

const V = 256;

interface Link {
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  operstate: string;
  promiscuity?: number;
  stats64?: { rx: { packets: number; bytes: number }; tx: { packets: number } };
}

function link(ns: Netns, name: string): Link {
  return ns.ipJson<Link[]>(`-s -d link show ${name}`)[0];
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

/** Runs a command in the namespace without blocking the event loop (our rx loop must keep running). */
function run(ns: Netns, cmd: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', ns.name, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * A host at (mac, ip) behind `port`: answers ARP requests and ICMP echo requests for ip by rewriting the frame in
 * place and sending it back. Everything else is freed. Returns the number of replies sent.
 */
class Responder {
  replies = 0;
  seen = 0;
  private readonly mb = new Uint32Array(V);
  private readonly off = new Uint32Array(V);
  private readonly len = new Uint32Array(V);
  private readonly txMb = new Uint32Array(V);
  private readonly txOff = new Uint32Array(V);
  private readonly txLen = new Uint32Array(V);
  private readonly dropMb = new Uint32Array(V);

  constructor(private readonly mem: Uint8Array, private readonly port: number, private readonly mac: number[], private readonly ip: number[]) {}

  poll(): void {
    const n = pktio.rx(this.port, this.mb, this.off, this.len, V);
    let t = 0, d = 0;
    for (let i = 0; i < n; i++) {
      this.seen++;
      if (this.answer(this.off[i], this.len[i])) {
        this.txMb[t] = this.mb[i];
        this.txOff[t] = this.off[i];
        this.txLen[t++] = this.len[i];
      } else {
        this.dropMb[d++] = this.mb[i];
      }
    }
    if (t > 0) {
      const s = pktio.tx(this.port, this.txMb, this.txOff, this.txLen, t);
      this.replies += s;
      if (s < t) pktio.free(this.txMb.subarray(s), t - s);
    }
    if (d > 0) pktio.free(this.dropMb, d);
  }

  private isMine(o: number): boolean {
    const m = this.mem;
    return m[o] === this.ip[0] && m[o + 1] === this.ip[1] && m[o + 2] === this.ip[2] && m[o + 3] === this.ip[3];
  }

  private answer(o: number, l: number): boolean {
    const m = this.mem;
    const type = (m[o + 12] << 8) | m[o + 13];
    if (type === 0x0806 && l >= 42 && m[o + 21] === 1 && this.isMine(o + 38)) {
      m.copyWithin(o + 32, o + 22, o + 32); // tha/tpa = sha/spa of the request
      for (let i = 0; i < 6; i++) m[o + 22 + i] = this.mac[i];
      for (let i = 0; i < 4; i++) m[o + 28 + i] = this.ip[i];
      m[o + 21] = 2;
      m.copyWithin(o, o + 6, o + 12);
      for (let i = 0; i < 6; i++) m[o + 6 + i] = this.mac[i];
      return true;
    }
    if (type === 0x0800 && l >= 34 && m[o + 23] === 1 && this.isMine(o + 30)) {
      const ihl = (m[o + 14] & 15) * 4;
      const icmp = o + 14 + ihl;
      if (l < 14 + ihl + 8 || m[icmp] !== 8) return false;
      m.copyWithin(o, o + 6, o + 12);
      for (let i = 0; i < 6; i++) m[o + 6 + i] = this.mac[i];
      for (let i = 0; i < 4; i++) {
        m[o + 30 + i] = m[o + 26 + i];
        m[o + 26 + i] = this.ip[i];
      }
      m[icmp] = 0; // echo reply: checksum += 0x0800 (RFC 1624)
      let sum = ((m[icmp + 2] << 8) | m[icmp + 3]) + 0x0800;
      sum = (sum & 0xffff) + (sum >> 16);
      m[icmp + 2] = sum >> 8;
      m[icmp + 3] = sum & 0xff;
      return true;
    }
    return false;
  }
}

/** Polls the responder until `p` settles. */
async function serving<T>(r: Responder, p: Promise<T>): Promise<T> {
  let done = false;
  const res = p.finally(() => (done = true));
  while (!done) {
    r.poll();
    await tick();
  }
  return res;
}

/** Receives until `want` frames matching `pred` were seen (others are freed) or the timeout; returns the matches
 * (copied out) and frees every mbuf. */
async function collect(mem: Uint8Array, port: number, want: number, pred: (f: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer[]> {
  const mb = new Uint32Array(V), off = new Uint32Array(V), len = new Uint32Array(V);
  const out: Buffer[] = [];
  const end = Date.now() + timeoutMs;
  while (out.length < want && Date.now() < end) {
    const n = pktio.rx(port, mb, off, len, V);
    for (let i = 0; i < n; i++) {
      const f = Buffer.from(mem.subarray(off[i], off[i] + len[i]));
      if (pred(f)) out.push(f);
    }
    pktio.free(mb, n);
    if (n === 0) await tick();
  }
  return out;
}

const TEST_ETHERTYPE = 0x88b5; // IEEE local experimental

/** Allocates n frames: broadcast, ethertype 0x88b5, payload = (seq, pattern); returns the vector. */
function makeFrames(mem: Uint8Array, n: number, srcMac: number[], vlan?: number): { mb: Uint32Array; off: Uint32Array; len: Uint32Array; bytes: Buffer[] } {
  const mb = new Uint32Array(n), off = new Uint32Array(n), len = new Uint32Array(n);
  assert.equal(pktio.alloc(mb, off, n), n);
  const bytes: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const l = 60 + ((i * 37) % 1400);
    const f = Buffer.alloc(l);
    f.fill(0xff, 0, 6);
    Buffer.from(srcMac).copy(f, 6);
    let o = 12;
    if (vlan !== undefined) {
      f.writeUInt16BE(0x8100, 12);
      f.writeUInt16BE(vlan, 14);
      o = 16;
    }
    f.writeUInt16BE(TEST_ETHERTYPE, o);
    f.writeUInt32BE(i, o + 2);
    for (let j = o + 6; j < l; j++) f[j] = (i + j) & 0xff;
    mem.set(f, off[i]);
    len[i] = l;
    bytes.push(f);
  }
  return { mb, off, len, bytes };
}

function isTest(f: Buffer): boolean {
  const t = f.readUInt16BE(12);
  return t === TEST_ETHERTYPE || (t === 0x8100 && f.length >= 18 && f.readUInt16BE(16) === TEST_ETHERTYPE);
}

describe('pktio: ports on veth pairs', function () {
  this.timeout(60000);
  let pool: pktio.Pool;

  before(function () {
    if (!pktio.available()) throw new Error(`lfp_pktio is not built (${pktio.addonPath})`);
    pool = pktio.init(POOL_OPTS);
  });

  describe('DPDK net_af_packet on a veth in a test netns', function () {
    let ns: Netns;
    let port = -1;

    before(function () {
      ns = Netns.create('pkaf');
      ns.ip('link add vA type veth peer name vB');
      ns.ip('link set vA up');
      ns.ip('link set vB up');
      ns.ip('addr add 10.77.0.1/24 dev vB');
      port = pktio.dpdkPort('net_af_packet7,iface=vA', { netns: ns.path });
    });

    after(function () {
      try {
        if (port >= 0) pktio.close(port);
      } finally {
        if (ns) ns.destroy(); // undefined when before() failed early
      }
    });

    it('is a started, promiscuous port on the veth', function () {
      const info = pktio.portInfo(port);
      assert.equal(info.kind, 'dpdk');
      assert.equal(info.driver, 'net_af_packet');
      assert.equal(info.netns, ns.path);
      const vA = link(ns, 'vA');
      assert.equal(info.mac, vA.address);
      assert.ok(vA.flags.includes('PROMISC'));
    });

    it('answers ping from the namespace (kernel frames arrive on rx, tx frames reach the peer)', async function () {
      const r = new Responder(pool.mem, port, macBytes('02:00:00:77:00:02'), [10, 77, 0, 2]);
      const before = link(ns, 'vB').stats64!.rx.packets;
      const res = await serving(r, run(ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2']));
      assert.equal(res.code, 0, res.out);
      assert.match(res.out, /3 received/);
      assert.ok(r.replies >= 4, `${r.replies} replies`); // 1 ARP + 3 echo
      assert.ok(link(ns, 'vB').stats64!.rx.packets - before >= 4);
      const st = pktio.stats(port);
      assert.ok(st.ipackets >= 4 && st.opackets >= 4, JSON.stringify(st));
    });

    it('a burst of 256 tx frames arrives at the peer', async function () {
      const before = link(ns, 'vB').stats64!.rx.packets;
      const f = makeFrames(pool.mem, V, macBytes(pktio.portInfo(port).mac));
      let sent = 0;
      const end = Date.now() + 3000;
      while (sent < V && Date.now() < end) {
        sent += pktio.tx(port, f.mb.subarray(sent), f.off.subarray(sent), f.len.subarray(sent), V - sent);
        if (sent < V) await tick();
      }
      assert.equal(sent, V);
      assert.ok(link(ns, 'vB').stats64!.rx.packets - before >= V);
      assert.equal(pktio.poolStats().held, 0);
    });

    it('close() restores the interface (no PROMISC left behind)', function () {
      pktio.close(port);
      port = -1;
      assert.ok(!link(ns, 'vA').flags.includes('PROMISC'));
    });
  });

  describe('kernelPort (AF_PACKET TPACKET_V3) on veths in a test netns', function () {
    let ns: Netns;
    let kA = -1, kB = -1;

    before(function () {
      ns = Netns.create('pkkp');
      ns.ip('link add kA type veth peer name kB');
      ns.ip('link add pA type veth peer name pB');
      for (const l of ['kA', 'kB', 'pA', 'pB']) ns.ip(`link set ${l} up`);
      ns.ip('addr add 10.78.0.1/24 dev kB');
      kA = pktio.kernelPort('kA', { netns: ns.path });
    });

    after(function () {
      try {
        for (const p of [kA, kB]) if (p >= 0) pktio.close(p);
      } finally {
        if (ns) ns.destroy(); // undefined when before() failed early
      }
    });

    it('reports the interface', function () {
      const info = pktio.portInfo(kA);
      const l = link(ns, 'kA');
      assert.equal(info.kind, 'kernel');
      assert.equal(info.name, 'kA');
      assert.equal(info.mac, l.address);
      assert.equal(info.mtu, l.mtu);
      assert.equal(info.adminUp, true);
      assert.equal(info.linkUp, true);
      assert.ok(pktio.fd(kA) > 2);
      assert.ok(l.promiscuity! >= 1, 'PACKET_MR_PROMISC raises the promiscuity count');
    });

    it('answers ping from the namespace', async function () {
      const r = new Responder(pool.mem, kA, macBytes('02:00:00:78:00:02'), [10, 78, 0, 2]);
      const before = link(ns, 'kB').stats64!.rx.packets;
      const res = await serving(r, run(ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.78.0.2']));
      assert.equal(res.code, 0, res.out);
      assert.match(res.out, /3 received/);
      assert.ok(r.replies >= 4);
      assert.ok(link(ns, 'kB').stats64!.rx.packets - before >= 4);
      const st = pktio.stats(kA);
      assert.ok(st.ipackets >= 4 && st.opackets >= 4, JSON.stringify(st));
      assert.equal(st.oerrors, 0);
    });

    it('a burst of 256 frames from one kernel port arrives byte for byte on the other', async function () {
      kB = pktio.kernelPort('kB', { netns: ns.path });
      const f = makeFrames(pool.mem, V, macBytes('02:00:00:78:00:09'));
      const before = link(ns, 'kA').stats64!.rx.packets;
      assert.equal(pktio.tx(kB, f.mb, f.off, f.len, V), V);
      const got = await collect(pool.mem, kA, V, isTest);
      assert.equal(got.length, V);
      got.sort((a, b) => a.readUInt32BE(14) - b.readUInt32BE(14));
      for (let i = 0; i < V; i++) assert.ok(got[i].equals(f.bytes[i]), `frame ${i} differs`);
      assert.ok(link(ns, 'kA').stats64!.rx.packets - before >= V);
      assert.equal(pktio.poolStats().held, 0);
    });

    it('puts back an 802.1Q tag the kernel took out of the frame', async function () {
      const f = makeFrames(pool.mem, 8, macBytes('02:00:00:78:00:09'), 0x2064); // prio 1, VLAN 100
      assert.equal(pktio.tx(kB, f.mb, f.off, f.len, 8), 8);
      const got = await collect(pool.mem, kA, 8, isTest);
      assert.equal(got.length, 8);
      got.sort((a, b) => a.readUInt32BE(18) - b.readUInt32BE(18));
      for (let i = 0; i < 8; i++) assert.ok(got[i].equals(f.bytes[i]), `tagged frame ${i}: ${got[i].subarray(0, 20).toString('hex')}`);
    });

    it('does not receive its own transmitted frames', async function () {
      const f = makeFrames(pool.mem, 4, macBytes('02:00:00:78:00:0a'));
      assert.equal(pktio.tx(kA, f.mb, f.off, f.len, 4), 4);
      const own = await collect(pool.mem, kA, 1, isTest, 300);
      assert.equal(own.length, 0);
      const atPeer = await collect(pool.mem, kB, 4, isTest);
      assert.equal(atPeer.length, 4);
    });

    it('setMtu / setMac / setUp act on the interface; renames are followed', function () {
      const p = pktio.kernelPort('pA', { netns: ns.path });
      try {
        pktio.setMtu(p, 1400);
        pktio.setMac(p, '02:00:00:78:01:01');
        let l = link(ns, 'pA');
        assert.equal(l.mtu, 1400);
        assert.equal(l.address, '02:00:00:78:01:01');
        pktio.setUp(p, false);
        l = link(ns, 'pA');
        assert.ok(!l.flags.includes('UP'));
        assert.equal(pktio.portInfo(p).linkUp, false);
        ns.ip('link set pA name pA2');
        const info = pktio.portInfo(p);
        assert.equal(info.name, 'pA2');
        assert.equal(info.mtu, 1400);
        pktio.setUp(p, true);
        assert.ok(link(ns, 'pA2').flags.includes('UP'));
      } finally {
        pktio.close(p);
      }
      assert.equal(link(ns, 'pA2').promiscuity, 0, 'the promiscuous membership goes with the socket');
    });

    it('a port whose interface was deleted fails clearly', function () {
      const p = pktio.kernelPort('pB', { netns: ns.path });
      try {
        ns.ip('link del pA2');
        assert.throws(() => pktio.portInfo(p), /no longer exists/);
        const mb = new Uint32Array(4), off = new Uint32Array(4), len = new Uint32Array(4);
        assert.equal(pktio.rx(p, mb, off, len, 4), 0);
        assert.equal(pktio.alloc(mb, off, 4), 4);
        len.fill(60);
        const s = pktio.tx(p, mb, off, len, 4);
        if (s < 4) pktio.free(mb.subarray(s), 4 - s);
      } finally {
        pktio.close(p);
      }
      assert.equal(pktio.poolStats().held, 0);
    });
  });
});
