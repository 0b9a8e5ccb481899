// Runs INSIDE user-mode Linux (started by tests/kernel/ipsec-uml.test.ts through tests/uml/run-in-uml.sh):
//   node build/tests/uml/ipsec/ipsec-guest.js OUT_DIR
// with the runs in the environment variable LFP_IPSEC_RUNS (JSON, IpsecRun[]: lfp options and cases).
// For each run it starts lfp (tests/lib/uml-lfp.ts), then for each case configures ESP with plain
// `ip xfrm` in lfp's control plane and the mirror image at the other end (xfrmConfig), sends traffic
// (pings, numbered UDP flows in both directions at once), captures the first ESP packets lfp sends
// and what host A sent (pcaps for tshark on the host), reads the fast path's, the other end's and
// lfp's kernel counters, and removes the SAs and policies again. Writes OUT_DIR/results.json
// (IpsecResult[], after every case); the assertions are the host driver's. tests/uml/README.md.
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { ADDR, fpSaCounters, kernelSaCounters, startUmlLfp, UmlLfp } from '../../lib/uml-lfp';
import { sleep, waitUntil } from '../../lib/lfp-env';
import type { Netns } from '../../lib/netns';
import type { PortStats } from '../../../shared-mem/stats';

export interface IpsecCase {
  name: string;
  mode: 'tunnel' | 'transport';
  alg: 'gcm' | 'cbc';
  family: 4 | 6;
  /** UDP datagrams per direction, sent at `pps` (both directions at once). */
  count: number;
  pps: number;
  /** Size of the UDP payload of the flows (default 64). */
  size?: number;
  /** Capture lfp's ESP output of a marked flow (50 datagrams, port 5999) on the peer, and what A sent. */
  capture?: boolean;
  /** MTU of the lfp ⇄ peer link during the case (eth2 in lfp's control plane, p0 in the peer; default unchanged). */
  wanMtu?: number;
  /** Extra pings A → B with this payload size and DF clear (fragmentation cases), count 10. */
  bigPing?: number;
  /**
   * Stall the fast path (SIGSTOP) for this many ms every 700 ms during the flows, so that it then takes
   * full vectors: catches order bugs inside a vector (fragments of one datagram sent a vector apart are
   * discarded by Linux's ipfrag_max_dist, 64; ESP sequence numbers out of order hit replay windows).
   */
  stallMs?: number;
}

export interface SaKeys { src: string; dst: string; spi: number; alg: 'gcm' | 'cbc'; encKey: string; authKey?: string }

export interface IpsecResult {
  name: string;
  error?: string;
  pingAB?: { ok: boolean; out: string };
  pingBA?: { ok: boolean; out: string };
  bigPing?: { ok: boolean; out: string };
  recvAB?: number;
  recvBA?: number;
  /** Per-port counter deltas over the case (index 0 = eth1 towards A, 1 = eth2 towards the peer). */
  ports?: { rx: number; tx: number; forwarded: number; dpvi: number; exceptions: Record<string, number>; drops: Record<string, number> }[];
  /** Fast-path per-SA counters at the end (null when not available). */
  fpOut?: Record<string, number> | null;
  fpIn?: Record<string, number> | null;
  /** Peer kernel: packets of the SA it decrypts (lfp → peer) and of the one it encrypts. */
  peerIn?: { packets: number; bytes: number } | null;
  peerOut?: { packets: number; bytes: number } | null;
  /** lfp's kernel (the control plane) counters of the same SAs (what Linux itself did, or what lfp pushed back). */
  cpOut?: { packets: number; bytes: number } | null;
  cpIn?: { packets: number; bytes: number } | null;
  /** The lfp → peer SA (for tshark) and the capture files (relative to OUT_DIR). */
  outSa?: SaKeys;
  espPcap?: string;
  clearPcap?: string;
  /** Hosts' UDP counters and the peer's links / xfrm_stat when a flow was incomplete. */
  hostCounters?: string;
  /** tcpdump's messages. */
  captureLog?: string;
  seconds?: number;
  log?: string;
}

const hex = (n: number, seed: number) => {
  let s = '', x = seed >>> 0;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; s += ((x >>> 16) & 255).toString(16).padStart(2, '0'); }
  return s;
};

/**
 * The `ip xfrm` lines (without `ip`) of each namespace, and which SA the fast path encrypts with (`out`)
 * and which one it receives (`inn`). SPIs: 0x1000 + i (out), 0x2000 + i (in); reqid 100 + i.
 *
 * tunnel: lfp (eth2 address) ⇄ peer (p0 address), policies for host A's net ⇄ host B's net; the
 *   peer router is the kernel ESP end. Traffic: A ⇄ B (lfp encrypts A → B, decrypts B → A).
 * transport: what the fast path can do in transport mode. Out: the fast path is the encrypting
 *   gateway of host A (a bump in the wire, RFC 4301 §3.3): a transport SA A → B and an out policy
 *   A → B in lfp's control plane, as Linux would apply them to forwarded packets (SA addresses = the
 *   packet's); host B's kernel decrypts (its in policy requires ESP from A). In: ESP for lfp itself
 *   (B → lfp's eth2 address, transport SA B → lfp, encrypted by B's kernel): by design the fast path
 *   hands it to Linux undecrypted ('ipsec-local', fastpath/nodes/esp-decrypt.ts), since a decrypted
 *   packet can only reach Linux in clear and Linux's in policy would drop it.
 */
export function xfrmConfig(c: IpsecCase, i: number): { cp: string[]; peer: string[]; b: string[]; out: SaKeys; inn: SaKeys } {
  const v6 = c.family === 6;
  const lfpAddr = v6 ? ADDR.lfp2v6 : ADDR.lfp2v4, peerAddr = v6 ? ADDR.peer6 : ADDR.peer4;
  const aAddr = v6 ? ADDR.a6 : ADDR.a4, bAddr = v6 ? ADDR.b6 : ADDR.b4;
  const netA = v6 ? ADDR.netA6 : ADDR.netA4, netB = v6 ? ADDR.netB6 : ADDR.netB4;
  const host = v6 ? 128 : 32;
  const key = (seed: number): { enc: string; auth?: string } => c.alg === 'gcm'
    ? { enc: hex(20, seed) } // 16-byte key + 4-byte salt
    : { enc: hex(16, seed), auth: hex(32, seed + 7) };
  const kOut = key(1000 + i), kIn = key(2000 + i);
  const algo = (k: { enc: string; auth?: string }) => c.alg === 'gcm'
    ? `aead rfc4106(gcm(aes)) 0x${k.enc} 128`
    : `enc cbc(aes) 0x${k.enc} auth-trunc hmac(sha256) 0x${k.auth} 128`;
  const spiOut = 0x1000 + i, spiIn = 0x2000 + i, reqid = 100 + i;
  const sa = (src: string, dst: string, spi: number, k: { enc: string; auth?: string }): SaKeys => ({ src, dst, spi, alg: c.alg, encKey: k.enc, authKey: k.auth });
  // anti-replay: GCM cases with ip xfrm's default window 0 (strictly increasing sequence numbers),
  // CBC cases with 32 (strongSwan's default; the bitmap)
  const window = c.alg === 'gcm' ? 0 : 32;
  const state = (x: SaKeys, k: { enc: string; auth?: string }) =>
    `xfrm state add src ${x.src} dst ${x.dst} proto esp spi ${x.spi} reqid ${reqid} mode ${c.mode} replay-window ${window} ${algo(k)}`;
  if (c.mode === 'tunnel') {
    const out = sa(lfpAddr, peerAddr, spiOut, kOut), inn = sa(peerAddr, lfpAddr, spiIn, kIn);
    const side = (me: string, him: string, myNet: string, hisNet: string) => [
      state(out, kOut), state(inn, kIn),
      `xfrm policy add src ${myNet} dst ${hisNet} dir out tmpl src ${me} dst ${him} proto esp reqid ${reqid} mode tunnel`,
      `xfrm policy add src ${hisNet} dst ${myNet} dir fwd tmpl src ${him} dst ${me} proto esp reqid ${reqid} mode tunnel`,
      `xfrm policy add src ${hisNet} dst ${myNet} dir in tmpl src ${him} dst ${me} proto esp reqid ${reqid} mode tunnel`,
    ];
    return { cp: side(lfpAddr, peerAddr, netA, netB), peer: side(peerAddr, lfpAddr, netB, netA), b: [], out, inn };
  }
  const out = sa(aAddr, bAddr, spiOut, kOut), inn = sa(bAddr, lfpAddr, spiIn, kIn);
  const pol = (src: string, dst: string, dir: string) => `xfrm policy add src ${src}/${host} dst ${dst}/${host} dir ${dir} tmpl proto esp reqid ${reqid} mode transport`;
  return {
    cp: [state(out, kOut), state(inn, kIn), pol(aAddr, bAddr, 'out'), pol(bAddr, lfpAddr, 'in')],
    peer: [],
    b: [state(out, kOut), state(inn, kIn), pol(aAddr, bAddr, 'in'), pol(bAddr, lfpAddr, 'out')],
    out, inn,
  };
}

function portDelta(a: PortStats, b: PortStats) {
  const nz = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries(Object.keys(y).map((k) => [k, y[k] - (x[k] ?? 0)]).filter(([, v]) => (v as number) !== 0));
  return { rx: b.rxPackets - a.rxPackets, tx: b.txPackets - a.txPackets, forwarded: b.forwarded - a.forwarded, dpvi: b.dpviPackets - a.dpviPackets,
    exceptions: nz(a.exceptions, b.exceptions), drops: nz(a.drops, b.drops) };
}

interface Capture { proc: ChildProcess; ready: Promise<void>; stderr: string[] }

/** tcpdump -c count in ns (root, unbuffered): `ready` once it listens (or exited). */
function tcpdump(ns: Netns, dev: string, file: string, count: number, filter: string): Capture {
  const proc = spawn('ip', ['netns', 'exec', ns.name, 'tcpdump', '-Z', 'root', '-U', '-n', '-c', String(count), '-i', dev, '-w', file, filter],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  const ready = new Promise<void>((r) => {
    proc.stderr!.on('data', (d: Buffer) => { stderr.push(String(d)); if (/listening on/.test(String(d))) r(); });
    proc.on('close', () => r());
  });
  return { proc, ready, stderr };
}

/** Waits for a capture to end by itself (its count reached), at most ms, then SIGINT / SIGKILL. */
function endCapture(c: Capture, ms: number): Promise<void> {
  const p = c.proc;
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    p.once('close', () => r());
    setTimeout(() => p.kill('SIGINT'), ms);
    setTimeout(() => p.kill('SIGKILL'), ms + 3000);
  });
}

/** Sets the MTU of the lfp ⇄ peer link (lfp's DPVI eth2, which the fast path applies to its port, and the peer's p0). */
async function setWanMtu(g: UmlLfp, mtu: number): Promise<void> {
  g.cp.ip(`link set eth2 mtu ${mtu}`);
  g.peer.ip(`link set p0 mtu ${mtu}`);
  await waitUntil(`eth2 MTU ${mtu} in lfp`, 10_000, () => g.env.list('link', 0).find((l) => l.name === 'eth2')?.mtu === mtu, 20);
  await waitUntil(`port pB MTU ${mtu}`, 10_000, () => g.phy.ip('link show pB').includes(`mtu ${mtu} `), 50);
}

async function runCase(g: UmlLfp, c: IpsecCase, i: number, outDir: string): Promise<IpsecResult> {
  const t0 = Date.now();
  const r: IpsecResult = { name: c.name };
  const v6 = c.family === 6;
  const x = xfrmConfig(c, i);
  r.outSa = x.out;
  // A → B always; the reverse: B → A (tunnel), B → lfp itself (transport, see xfrmConfig)
  const dstB = v6 ? ADDR.b6 : ADDR.b4;
  const [revTo, revDst] = c.mode === 'tunnel' ? [g.a, v6 ? ADDR.a6 : ADDR.a4] : [g.cp, v6 ? ADDR.lfp2v6 : ADDR.lfp2v4];
  const espPeer = c.mode === 'tunnel' ? g.peer : g.b; // the kernel at the other end of the SAs
  const policies = x.cp.filter((l) => l.startsWith('xfrm policy')).length;
  try {
    if (x.cp.length) g.cp.batch(x.cp);
    if (x.peer.length) g.peer.batch(x.peer);
    if (x.b.length) g.b.batch(x.b);
    await waitUntil('SAs and policies in lfp', 10_000, () =>
      g.env.list('sa').filter((s) => s.spi === x.out.spi || s.spi === x.inn.spi).length === 2 && g.env.list('policy').length === policies, 20);
    if (c.wanMtu) await setWanMtu(g, c.wanMtu);
    if ((c.size ?? 64) > 1300) {
      // 1500-byte datagrams leave the hosts without DF (the fast path fragments them; with DF they go to Linux for ICMP)
      for (const ns of [g.a, g.b]) ns.exec('sysctl', ['-qw', 'net.ipv4.ip_no_pmtu_disc=1']);
    }
    const s0 = g.env.stats();
    r.pingAB = await g.ping(g.a, dstB, 3);
    r.pingBA = await g.ping(g.b, revDst, 3);
    if (c.bigPing) {
      const args = [...(v6 ? ['-6'] : ['-M', 'dont']), '-c', '10', '-i', '0.2', '-w', '20', '-s', String(c.bigPing), dstB];
      const p = await g.run(g.a, 'ping', args);
      r.bigPing = { ok: p.code === 0, out: p.out + p.err };
    }
    // The capture: the first 50 ESP packets lfp sends to the peer and the first 50 datagrams host A
    // sends, both from the A → B flow below (nothing else is sent A → B meanwhile).
    let esp: Capture | null = null, clear: Capture | null = null;
    if (c.capture) {
      r.espPcap = `${c.name}-esp.pcap`;
      r.clearPcap = `${c.name}-clear.pcap`;
      esp = tcpdump(g.peer, 'p0', path.join(outDir, r.espPcap), 50, `${v6 ? 'ip6' : 'ip'} proto 50 and src host ${x.out.src}`);
      clear = tcpdump(g.a, 'a0', path.join(outDir, r.clearPcap), 50, `udp dst port 5001 and src host ${v6 ? ADDR.a6 : ADDR.a4}`);
      await Promise.all([esp.ready, clear.ready]);
    }
    const fpPid = g.env.pid('fp');
    let stall: NodeJS.Timeout | null = null;
    if (c.stallMs && fpPid !== null) {
      stall = setInterval(() => {
        try { process.kill(fpPid, 'SIGSTOP'); } catch { return; }
        setTimeout(() => { try { process.kill(fpPid, 'SIGCONT'); } catch { /* gone */ } }, c.stallMs);
      }, 700);
    }
    let ab: number, ba: number;
    try {
      [ab, ba] = await Promise.all([
        g.udpFlow(g.a, g.b, dstB, c.count, c.pps, { port: 5001, size: c.size }),
        g.udpFlow(g.b, revTo, revDst, c.count, c.pps, { port: 5002, size: c.size }),
      ]);
    } finally {
      if (stall) clearInterval(stall);
      if (fpPid !== null) { try { process.kill(fpPid, 'SIGCONT'); } catch { /* gone */ } }
    }
    if (esp && clear) {
      await Promise.all([endCapture(esp, 1000), endCapture(clear, 1000)]);
      r.captureLog = `esp: ${esp.stderr.join('')}\nclear: ${clear.stderr.join('')}`;
    }
    r.recvAB = ab;
    r.recvBA = ba;
    if (ab !== c.count || ba !== c.count) {
      const nstat = (ns: Netns) => ns.exec('nstat', ['-az', 'UdpRcvbufErrors', 'Udp6RcvbufErrors', 'UdpInDatagrams', 'Udp6InDatagrams', 'UdpInErrors', 'Udp6InErrors', 'IpReasmFails', 'IpReasmOKs', 'IpReasmTimeout', 'IpInDiscards', 'IpFragFails', 'IpFragCreates']);
      r.hostCounters = `A:\n${nstat(g.a)}\nB:\n${nstat(g.b)}\nlfp:\n${nstat(g.cp)}\npeer:\n${nstat(g.peer)}\n${g.peer.ip('-s link show')}\n${espPeer.exec('cat', ['/proc/net/xfrm_stat'])}`;
    }
    await sleep(200);
    const s1 = g.env.stats();
    r.ports = s0.map((p, k) => portDelta(p, s1[k]));
    r.fpOut = fpSaCounters(g.env, x.out.dst, x.out.spi);
    r.fpIn = fpSaCounters(g.env, x.inn.dst, x.inn.spi);
    const hx = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
    const peer = kernelSaCounters(espPeer), cp = kernelSaCounters(g.cp);
    r.peerIn = peer[hx(x.out.spi)] ?? null;
    r.peerOut = peer[hx(x.inn.spi)] ?? null;
    r.cpOut = cp[hx(x.out.spi)] ?? null;
    r.cpIn = cp[hx(x.inn.spi)] ?? null;
  } catch (e) {
    r.error = (e as Error).stack ?? String(e);
    r.log = g.env.logs();
  } finally {
    try {
      if (c.wanMtu) await setWanMtu(g, 1500);
      for (const ns of [g.a, g.b]) ns.exec('sysctl', ['-qw', 'net.ipv4.ip_no_pmtu_disc=0']);
      for (const ns of [g.cp, g.peer, g.b]) ns.batch(['xfrm policy flush', 'xfrm state flush']);
      await waitUntil('SAs gone from lfp', 10_000, () => g.env.list('sa').length === 0 && g.env.list('policy').length === 0, 20);
    } catch (e) {
      r.error = (r.error ? r.error + '\n' : '') + `cleanup: ${(e as Error).message}`;
    }
  }
  r.seconds = (Date.now() - t0) / 1000;
  return r;
}

/** One lfp instance (its options: startUmlLfp's) and the cases run on it, in order. */
export interface IpsecRun { options?: { fastpath?: Record<string, unknown>; wanMtu?: number }; cases: IpsecCase[] }

async function main(): Promise<number> {
  const outDir = process.argv[2];
  const runs = JSON.parse(process.env.LFP_IPSEC_RUNS ?? '[]') as IpsecRun[];
  if (!outDir || runs.length === 0) { console.error('usage: LFP_IPSEC_RUNS=[{options, cases}…] ipsec-guest.js OUT_DIR'); return 2; }
  fs.mkdirSync(outDir, { recursive: true });
  const results: IpsecResult[] = [];
  const save = () => fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 1));
  let i = 0;
  for (const run of runs) {
    const t0 = Date.now();
    let g: UmlLfp;
    try {
      g = await startUmlLfp(run.options ?? {});
    } catch (e) {
      // every case of this run fails with the reason
      console.log(`lfp ${JSON.stringify(run.options ?? {})} did not start: ${(e as Error).message}`);
      for (const c of run.cases) results.push({ name: c.name, error: (e as Error).message });
      save();
      continue;
    }
    try {
      console.log(`lfp ${JSON.stringify(run.options ?? {})} started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const c of run.cases) {
        const r = await runCase(g, c, i++, outDir);
        results.push(r);
        console.log(`${c.name}: ${r.error ? `ERROR ${r.error.split('\n')[0]}` : `A→B ${r.recvAB}/${c.count}, reverse ${r.recvBA}/${c.count}`} in ${r.seconds} s`);
        save();
      }
    } finally {
      g.stop();
    }
  }
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
}
