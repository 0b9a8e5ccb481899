// lfp_pktio DPVI ports: TAPs created in a test network namespace with a name, MAC and MTU; frames written with tx
// reach the kernel (which answers ARP), carrier/MTU/MAC/admin state, and TAPs vanish with their process.
// Needs root and the built addon.

import { strict as assert } from 'assert';
import { spawn, spawnSync } from 'child_process';
import * as path from 'path';
import * as pktio from '../../native/pktio';
import { Netns } from '../lib/netns';

// Same options in every pktio-*.test.ts: mocha runs them in one process and the EAL initialises once per process.
const POOL_OPTS: pktio.InitOptions = { eal: ['--vdev=net_ring0'], mbufs: 8191 };

const PKTIO_JS = path.resolve(__dirname, '../../native/pktio.js');
const V = 256;
const tick = () => new Promise<void>((r) => setImmediate(r));

interface Link {
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  operstate: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string; pi?: boolean; persist?: boolean } };
}

function links(ns: Netns): Link[] {
  return ns.ipJson<Link[]>('-d link show');
}

function link(ns: Netns, name: string): Link | undefined {
  return links(ns).find((l) => l.ifname === name);
}

function arpRequest(mem: Uint8Array, off: number, srcMac: number[], srcIp: number[], targetIp: number[]): number {
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6);
  Buffer.from(srcMac).copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  Buffer.from(srcMac).copy(f, 22);
  Buffer.from(srcIp).copy(f, 28);
  Buffer.from(targetIp).copy(f, 38);
  mem.set(f, off);
  return f.length;
}

describe('pktio: DPVI tap ports', function () {
  this.timeout(60000);
  let pool: pktio.Pool;
  let ns: Netns;
  let tap = -1;
  const MAC = '02:00:00:66:00:01';

  before(function () {
    if (!pktio.available()) throw new Error(`lfp_pktio is not built (${pktio.addonPath})`);
    pool = pktio.init(POOL_OPTS);
    ns = Netns.create('pktap');
    tap = pktio.tapPort('lfpdpvi0', { netns: ns.path, mac: MAC, mtu: 1400 });
  });

  after(function () {
    try {
      if (tap >= 0) pktio.close(tap);
    } finally {
      if (ns) ns.destroy(); // undefined when before() failed early
    }
  });

  it('creates the TAP in the namespace with the name, MAC and MTU asked (not persistent, no PI, down)', function () {
    const l = link(ns, 'lfpdpvi0');
    assert.ok(l, 'the TAP exists in the namespace');
    assert.equal(l.address, MAC);
    assert.equal(l.mtu, 1400);
    assert.equal(l.linkinfo?.info_kind, 'tun');
    assert.equal(l.linkinfo?.info_data?.type, 'tap');
    assert.equal(l.linkinfo?.info_data?.pi, false);
    assert.equal(l.linkinfo?.info_data?.persist, false);
    assert.ok(!l.flags.includes('UP'));
    const info = pktio.portInfo(tap);
    assert.equal(info.kind, 'tap');
    assert.equal(info.name, 'lfpdpvi0');
    assert.equal(info.mac, MAC);
    assert.equal(info.mtu, 1400);
    assert.equal(info.adminUp, false);
    assert.ok(pktio.fd(tap) > 2);
    assert.equal(spawnSync('ip', ['link', 'show', 'lfpdpvi0']).status, 1, 'not in our own namespace');
  });

  it('a frame written with tx reaches the kernel: its ARP reply comes back on rx', async function () {
    ns.ip('addr add 10.66.0.1/24 dev lfpdpvi0');
    pktio.setUp(tap, true);
    assert.ok(link(ns, 'lfpdpvi0')!.flags.includes('UP'));
    const mb = new Uint32Array(V), off = new Uint32Array(V), len = new Uint32Array(V);
    const peerMac = [2, 0, 0, 0x66, 0, 2];
    assert.equal(pktio.alloc(mb, off, 1), 1);
    len[0] = arpRequest(pool.mem, off[0], peerMac, [10, 66, 0, 2], [10, 66, 0, 1]);
    assert.equal(pktio.tx(tap, mb, off, len, 1), 1);
    let reply: Buffer | undefined;
    const end = Date.now() + 3000;
    while (!reply && Date.now() < end) {
      const n = pktio.rx(tap, mb, off, len, V);
      for (let i = 0; i < n; i++) {
        const f = Buffer.from(pool.mem.subarray(off[i], off[i] + len[i]));
        if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2) reply = f;
      }
      pktio.free(mb, n);
      if (!reply) await tick();
    }
    assert.ok(reply, 'an ARP reply was read from the TAP');
    assert.deepEqual([...reply.subarray(0, 6)], peerMac);
    assert.equal(reply.subarray(22, 28).toString('hex'), MAC.replace(/:/g, ''));
    assert.deepEqual([...reply.subarray(28, 32)], [10, 66, 0, 1]);
    const st = pktio.stats(tap);
    assert.ok(st.opackets >= 1 && st.ipackets >= 1);
    assert.equal(pktio.poolStats().held, 0);
  });

  it('setCarrier changes the operstate / carrier shown by ip link', async function () {
    // The carrier bit changes at once; operstate and IFF_RUNNING follow through the kernel's linkwatch (async).
    const settle = async (cond: (l: Link) => boolean): Promise<Link> => {
      const end = Date.now() + 5000;
      for (;;) {
        const l = link(ns, 'lfpdpvi0')!;
        if (cond(l) || Date.now() > end) return l;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    pktio.setCarrier(tap, false);
    let l = await settle((x) => x.operstate === 'DOWN');
    assert.ok(l.flags.includes('NO-CARRIER'), l.flags.join(','));
    assert.ok(!l.flags.includes('LOWER_UP'));
    assert.equal(l.operstate, 'DOWN');
    assert.equal(pktio.portInfo(tap).linkUp, false);
    pktio.setCarrier(tap, true);
    l = await settle((x) => x.operstate === 'UP');
    assert.ok(!l.flags.includes('NO-CARRIER'));
    assert.ok(l.flags.includes('LOWER_UP'));
    assert.equal(l.operstate, 'UP');
    assert.equal(pktio.portInfo(tap).linkUp, true);
  });

  it('setMtu / setMac / setUp change the TAP; a rename is followed', function () {
    pktio.setMtu(tap, 1300);
    pktio.setMac(tap, '02:00:00:66:00:11');
    let l = link(ns, 'lfpdpvi0')!;
    assert.equal(l.mtu, 1300);
    assert.equal(l.address, '02:00:00:66:00:11');
    assert.throws(() => pktio.setMtu(tap, 4000), RangeError, 'an MTU whose frames do not fit an mbuf');
    pktio.setUp(tap, false);
    ns.ip('link set lfpdpvi0 name lfpdpvi0r');
    assert.equal(pktio.portInfo(tap).name, 'lfpdpvi0r');
    pktio.setUp(tap, true);
    l = link(ns, 'lfpdpvi0r')!;
    assert.ok(l.flags.includes('UP'));
  });

  it('refuses a name that already exists (never takes over an interface)', function () {
    assert.throws(() => pktio.tapPort('lo', { netns: ns.path, mac: MAC, mtu: 1500 }),
      (e: Error & { code?: string }) => e.code === 'EEXIST' && /already exists/.test(e.message));
    assert.throws(() => pktio.tapPort('lfpdpvi0r', { netns: ns.path, mac: MAC, mtu: 1500 }), /already exists/);
  });

  it('close() removes the TAP', function () {
    pktio.close(tap);
    tap = -1;
    assert.equal(link(ns, 'lfpdpvi0r'), undefined);
  });

  const childScript = (name: string) => `
    const pktio = require(${JSON.stringify(PKTIO_JS)});
    pktio.init({ mbufs: 1023 });
    pktio.tapPort(${JSON.stringify(name)}, { netns: process.argv[1], mac: '02:00:00:66:00:21', mtu: 1500 });
    console.log('ready');`;

  it('a process that exits without shutdown() leaves no TAP behind', function () {
    const r = spawnSync(process.execPath, ['-e', childScript('lfpexit0') + '\nprocess.exit(0);', ns.path], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ready/);
    assert.equal(link(ns, 'lfpexit0'), undefined);
    // Natural end of the event loop (the environment cleanup hook runs)
    const r2 = spawnSync(process.execPath, ['-e', childScript('lfpexit1'), ns.path], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(link(ns, 'lfpexit1'), undefined);
  });

  it('a process killed with SIGKILL leaves no TAP behind', async function () {
    const c = spawn(process.execPath, ['-e', childScript('lfpkill0') + '\nsetInterval(() => {}, 1000);', ns.path], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        c.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        c.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      assert.ok(link(ns, 'lfpkill0'), 'the child created its TAP');
      const exited = new Promise((r) => c.on('exit', r));
      c.kill('SIGKILL');
      await exited;
    } finally {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    assert.equal(link(ns, 'lfpkill0'), undefined);
  });
});
