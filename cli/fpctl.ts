#!/usr/bin/env node
// fpctl: the lfp command line. `show` reads the shared memory directly (like fp-cli); start/stop/status
// manage the daemons for a config file. Every command takes --json. docs/fpctl.md documents them.
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { loadConfig, DEFAULT_CONFIG, LfpConfig, statsPath } from '../lib/config';
import { hugeMappedBytes, hugeOf, mountOf } from '../shared-mem/huge';
import { ShmReader } from '../shared-mem/reader';
import { StatsFile } from '../shared-mem/stats';
import type { AnyObject, ObjectKind } from '../lib/model';

const DEFAULT_CONFIG_FILE = '/etc/lfp/lfp.json';
const BUILD = path.resolve(__dirname, '..');

const USAGE = `usage:
  fpctl [-c CONFIG] show ports|interfaces|vrfs|addresses|routes|rules|neighbours|sp|sa|summary
                    [--vrf N] [--json] [--keys] [--shm PATH]
  fpctl start -c CONFIG [--fresh] [--json]
  fpctl stop [-c CONFIG] [--json]
  fpctl status [-c CONFIG] [--json]
  fpctl watch -c CONFIG          (started by start: restarts a daemon that dies)
CONFIG defaults to ${DEFAULT_CONFIG_FILE} when it exists (else the built-in defaults).`;

class UsageError extends Error {}

interface Opts { config?: string; json: boolean; keys: boolean; vrf?: number; shm?: string; fresh: boolean; rest: string[] }

function parseArgs(argv: string[]): Opts {
  const o: Opts = { json: false, keys: false, fresh: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { const v = argv[++i]; if (v === undefined) throw new UsageError(`${a} needs a value`); return v; };
    if (a === '-c' || a === '--config') o.config = val();
    else if (a === '--json' || a === '-j') o.json = true;
    else if (a === '--keys') o.keys = true;
    else if (a === '--fresh') o.fresh = true;
    else if (a === '--shm') o.shm = val();
    else if (a === '--vrf') {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 0) throw new UsageError('--vrf takes a VRF number');
      o.vrf = v;
    } else if (a === '-h' || a === '--help' || a === 'help') throw new UsageError('');
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else o.rest.push(a);
  }
  return o;
}

function configOf(o: Opts): { cfg: LfpConfig; file?: string } {
  const file = o.config ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const cfg = file ? loadConfig(file) : { ...DEFAULT_CONFIG };
  if (o.shm) cfg.shm = { ...cfg.shm, path: o.shm };
  return { cfg, file: file ? path.resolve(file) : undefined };
}

// ---- show ----

const SHOW: Record<string, { kind: ObjectKind; title: string; filter?: (o: AnyObject) => boolean }> = {
  ports: { kind: 'link', title: 'ports', filter: (o) => o.kind === 'link' && o.obj.port >= 0 },
  interfaces: { kind: 'link', title: 'interfaces' },
  links: { kind: 'link', title: 'interfaces' },
  vrfs: { kind: 'vrf', title: 'VRFs' },
  addresses: { kind: 'address', title: 'addresses' },
  routes: { kind: 'route', title: 'routes' },
  rules: { kind: 'rule', title: 'rules' },
  neighbours: { kind: 'neighbour', title: 'neighbours' },
  neighbors: { kind: 'neighbour', title: 'neighbours' },
  sp: { kind: 'policy', title: 'security policies' },
  sa: { kind: 'sa', title: 'security associations' },
};

function hideKeys(o: AnyObject): AnyObject {
  if (o.kind !== 'sa') return o;
  const sa = { ...o.obj };
  for (const k of ['aead', 'enc', 'auth'] as const) if (sa[k]) sa[k] = { ...sa[k]!, key: '(hidden: use --keys)' };
  return { kind: 'sa', obj: sa };
}

const NUD: [number, string][] = [[0x01, 'INCOMPLETE'], [0x02, 'REACHABLE'], [0x04, 'STALE'], [0x08, 'DELAY'],
  [0x10, 'PROBE'], [0x20, 'FAILED'], [0x40, 'NOARP'], [0x80, 'PERMANENT']];
function nudName(s: number): string { return NUD.filter(([b]) => s & b).map(([, n]) => n).join(',') || 'NONE'; }

function line(o: AnyObject, keys: boolean): string {
  switch (o.kind) {
    case 'vrf': return `vrf ${o.obj.vrf}  netns ${o.obj.name || (o.obj.vrf === 0 ? '(control plane)' : '(unnamed)')}  nsid ${o.obj.nsid}`;
    case 'link': {
      const l = o.obj;
      return `vrf ${l.vrf}  ${l.ifindex}: ${l.name}${l.port >= 0 ? ` (port ${l.port})` : ''}  ${l.kind || '-'}  mac ${l.mac || '-'}  mtu ${l.mtu}  ${l.adminUp ? 'UP' : 'DOWN'}${l.operUp ? ',RUNNING' : ''}`;
    }
    case 'address': return `vrf ${o.obj.vrf}  if ${o.obj.ifindex}  ${o.obj.addr}/${o.obj.plen}${o.obj.peer ? ` peer ${o.obj.peer}` : ''}  scope ${o.obj.scope}`;
    case 'route': {
      const r = o.obj;
      const nh = r.nexthops.map((n) => `${n.gw ? `via ${n.gw} ` : ''}${n.ifindex ? `if ${n.ifindex}` : ''}${r.nexthops.length > 1 ? ` weight ${n.weight}` : ''}`.trim()).join(' | ');
      return `vrf ${r.vrf}  table ${r.table}  ${r.type !== 'unicast' ? r.type + ' ' : ''}${r.dst}/${r.plen}${r.tos ? ` tos ${r.tos}` : ''}  metric ${r.priority}  proto ${r.protocol}${nh ? '  ' + nh : ''}${r.mtu ? `  mtu ${r.mtu}` : ''}`;
    }
    case 'rule': {
      const r = o.obj;
      const sel = [r.invert ? 'not' : '', r.src ? `from ${r.src}/${r.srcLen}` : 'from all', r.dst ? `to ${r.dst}/${r.dstLen}` : '',
        r.iif ? `iif ${r.iif}` : '', r.oif ? `oif ${r.oif}` : '', r.fwmark ? `fwmark 0x${r.fwmark.toString(16)}/0x${r.fwmask.toString(16)}` : '',
        r.ipproto ? `ipproto ${r.ipproto}` : ''].filter(Boolean).join(' ');
      return `vrf ${r.vrf}  ipv${r.family}  ${r.priority}: ${sel}  ${r.action === 'to_tbl' ? `lookup ${r.table}` : r.action}`;
    }
    case 'neighbour': return `vrf ${o.obj.vrf}  if ${o.obj.ifindex}  ${o.obj.addr}  ${o.obj.lladdr ?? '-'}  ${nudName(o.obj.state)}`;
    case 'policy': {
      const p = o.obj; const s = p.selector;
      return `vrf ${p.vrf}  ${p.dir} index ${p.index} prio ${p.priority} ${p.action}  src ${s.saddr}/${s.splen} dst ${s.daddr}/${s.dplen}${s.proto ? ` proto ${s.proto}` : ''}` +
        p.tmpls.map((t) => `  tmpl ${t.mode} ${t.proto === 50 ? 'esp' : t.proto} ${t.saddr}->${t.daddr} reqid ${t.reqid}`).join('');
    }
    case 'sa': {
      const a = o.obj;
      const algs = [a.aead, a.enc, a.auth].filter(Boolean).map((x) => `${x!.name}${keys ? ` 0x${x!.key}` : ''}`).join(' + ');
      return `vrf ${a.vrf}  ${a.saddr} -> ${a.daddr}  spi 0x${a.spi.toString(16).padStart(8, '0')}  ${a.mode}  reqid ${a.reqid}  ${algs}${a.encap ? `  udp ${a.encap.sport}->${a.encap.dport}` : ''}${a.esn ? '  esn' : ''}  replay ${a.replayWindow}`;
    }
  }
}

function show(o: Opts): number {
  const what = o.rest[1];
  if (!what) throw new UsageError('show what?');
  const { cfg } = configOf(o);
  const reader = ShmReader.open(cfg.shm.path);
  if (what === 'stats') return showStats(o, cfg);
  if (what === 'summary') {
    const h = reader.header();
    if (o.json) { console.log(JSON.stringify(h, null, 2)); return 0; }
    console.log(`shared memory ${cfg.shm.path}`);
    for (const [k, v] of Object.entries(h)) console.log(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
    return 0;
  }
  const s = SHOW[what];
  if (!s) throw new UsageError(`unknown "show ${what}"`);
  let objs = reader.list(s.kind, o.vrf !== undefined ? { vrf: o.vrf } : {});
  if (s.filter) objs = objs.filter(s.filter);
  if (!o.keys) objs = objs.map(hideKeys);
  if (o.json) {
    console.log(JSON.stringify(objs.map((x) => x.obj), null, 1));
  } else {
    if (objs.length === 0) console.log(`no ${s.title}`);
    for (const x of objs) console.log(line(x, o.keys));
  }
  return 0;
}

function showStats(o: Opts, cfg: LfpConfig): number {
  const snap = StatsFile.open(statsPath(cfg)).read();
  const names = cfg.ports;
  const ports = snap.total.map((p, i) => ({ port: i, name: names[i] ?? `port${i}`, ...p }));
  if (o.json) { console.log(JSON.stringify({ workers: snap.workers, ports }, null, 1)); return 0; }
  for (const p of ports) {
    const r = p as unknown as Record<string, unknown>;
    console.log(`port ${p.port} ${p.name}: rx ${r.rxPackets} pkts ${r.rxBytes} bytes, tx ${r.txPackets} pkts ${r.txBytes} bytes, fast-path forwarded ${r.forwarded}, to Linux (DPVI) ${r.dpviPackets}`);
    for (const [group, counts] of [['exceptions', r.exceptions], ['drops', r.drops]] as const) {
      const nz = Object.entries((counts ?? {}) as Record<string, number>).filter(([, n]) => n > 0);
      if (nz.length) console.log(`  ${group}: ${nz.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    }
  }
  return 0;
}

// ---- daemons ----

// Start order; stop goes the other way. fp (the fast path) runs only when a port has packet I/O.
const DAEMONS = [
  { name: 'fpmd', script: 'fp-manager/main.js', node: ['--max-old-space-size=8192'] },
  { name: 'fp', script: 'fastpath/main.js', node: [] as string[] },
  { name: 'cmgrd', script: 'cache-manager/main.js', node: ['--max-old-space-size=8192'] },
  // fpsd (stats daemon): per-SA counters and byte/packet expiries to the kernel, SNMP; runs with fp
  { name: 'fpsd', script: 'stats-daemon/main.js', node: [] as string[] },
] as const;

function hasFastPath(cfg: LfpConfig): boolean { return cfg.portSpecs.some((p) => p.dpdk || p.kernel); }

function pidFile(cfg: LfpConfig, name: string): string { return path.join(cfg.runDir, `${name}.pid`); }

function runningPid(cfg: LfpConfig, d: { name: string; script: string }): number | null {
  let pid: number;
  try { pid = Number(fs.readFileSync(pidFile(cfg, d.name), 'utf8').trim()); } catch { return null; }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(d.script) ? pid : null;
  } catch { return null; }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ms: number, cond: () => boolean, logFile: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return;
    await sleep(50);
  }
  let tail = '';
  try { tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n'); } catch { /* none */ }
  throw new Error(`${what} not reached within ${ms / 1000} s; last lines of ${logFile}:\n${tail}`);
}

function readStatus(cfg: LfpConfig): Record<string, any> | null {
  try { return JSON.parse(fs.readFileSync(path.join(cfg.runDir, 'cmgrd.status'), 'utf8')); } catch { return null; }
}

type DaemonDef = typeof DAEMONS[number];
/** The watcher (`fpctl watch`, started by `fpctl start` when `respawn`): restarts a daemon that died. */
const WATCH = { name: 'watch', script: 'cli/fpctl.js', node: [] as string[] } as const;

/** The daemons a config runs, in start order. */
function daemonsOf(cfg: LfpConfig): DaemonDef[] {
  return DAEMONS.filter((d) => hasFastPath(cfg) || (d.name !== 'fp' && d.name !== 'fpsd'));
}

/** Starts daemon d detached (log in logDir, pid file in runDir); returns its pid. */
function spawnDaemon(cfg: LfpConfig, file: string, d: DaemonDef | typeof WATCH, extra: string[]): number {
  const logFile = path.join(cfg.logDir, `${d.name}.log`);
  const out = fs.openSync(logFile, 'a');
  const args = [...d.node, path.join(BUILD, d.script), ...(d.name === 'watch' ? ['watch'] : []), '-c', file, ...extra];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  if (!child.pid) throw new Error(`cannot start ${d.name}`);
  child.unref();
  fs.writeFileSync(pidFile(cfg, d.name), `${child.pid}\n`);
  return child.pid;
}

/** Waits until daemon d (pid) is ready: fpmd's heartbeat, the fast path's, fpsd's status file, cmgrd's first full sync. */
async function waitReady(cfg: LfpConfig, d: DaemonDef, pid: number): Promise<void> {
  const logFile = path.join(cfg.logDir, `${d.name}.log`);
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  if (d.name === 'fpmd') {
    await waitFor('fpmd ready', 10000, () => {
      if (!alive()) throw new Error(`fpmd exited; see ${logFile}`);
      try { return ShmReader.open(cfg.shm.path).heartbeatAgeMs() < 2000; } catch { return false; }
    }, logFile);
  } else if (d.name === 'fp') {
    await waitFor('fast path ports and DPVIs', 30000, () => {
      if (!alive()) throw new Error(`fp exited; see ${logFile}`);
      try { return StatsFile.open(statsPath(cfg)).read().perWorker[0].fields.heartbeatMs > 0; } catch { return false; }
    }, logFile);
  } else if (d.name === 'fpsd') {
    await waitFor('fpsd running', 10000, () => {
      if (!alive()) throw new Error(`fpsd exited; see ${logFile}`);
      return fs.existsSync(path.join(cfg.runDir, 'fpsd.status'));
    }, logFile);
  } else {
    await waitFor('first full sync', 120000, () => {
      if (!alive()) throw new Error(`cmgrd exited; see ${logFile}`);
      const st = readStatus(cfg);
      if (!st || st.fpc?.state !== 'ready') return false;
      try { return ShmReader.open(cfg.shm.path).header().counters.syncEnds > 0; } catch { return false; }
    }, logFile);
  }
}

async function start(o: Opts): Promise<number> {
  const { cfg, file } = configOf(o);
  if (!file) throw new UsageError('start needs -c CONFIG');
  fs.mkdirSync(cfg.runDir, { recursive: true });
  fs.mkdirSync(cfg.logDir, { recursive: true });
  for (const d of [...DAEMONS, WATCH]) {
    const pid = runningPid(cfg, d);
    if (pid) throw new Error(`${d.name} is already running (pid ${pid}); run "fpctl stop -c ${file}" first`);
  }
  for (const f of ['cmgrd.status', 'fpsd.status', 'watch.status']) { try { fs.unlinkSync(path.join(cfg.runDir, f)); } catch { /* none */ } }
  const pids: Record<string, number> = {};
  for (const d of daemonsOf(cfg)) {
    pids[d.name] = spawnDaemon(cfg, file, d, d.name === 'fpmd' && o.fresh ? ['--fresh'] : []);
    await waitReady(cfg, d, pids[d.name]);
  }
  if (cfg.respawn) pids.watch = spawnDaemon(cfg, file, WATCH, []);
  if (o.json) console.log(JSON.stringify({ started: pids }));
  else console.log(`lfp started: ${Object.entries(pids).map(([n, p]) => `${n} pid ${p}`).join(', ')}; logs in ${cfg.logDir}`);
  return 0;
}

/** Stops process `pid` of d: SIGTERM, SIGKILL after 5 s; removes its pid file. */
async function stopPid(cfg: LfpConfig, d: DaemonDef | typeof WATCH, pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + 5000;
  while (Date.now() < end && runningPid(cfg, d)) await sleep(50);
  if (runningPid(cfg, d)) process.kill(pid, 'SIGKILL');
  try { fs.unlinkSync(pidFile(cfg, d.name)); } catch { /* none */ }
}

/**
 * `fpctl watch`: every 500 ms, a daemon of the config that is not running (crash, kill) is started again
 * (fpmd without --fresh: it re-attaches to the shared memory; the fast path re-attaches to its DPVIs), at
 * once the first time, then after 1, 2, 4 ... 30 s while it keeps dying (restarts within the last minute).
 * Stopped by `fpctl stop` before the daemons. Log: logDir/watch.log; counts: runDir/watch.status.
 */
async function watch(o: Opts): Promise<number> {
  const { cfg, file } = configOf(o);
  if (!file) throw new UsageError('watch needs -c CONFIG');
  const log = (m: string) => console.log(`${new Date().toISOString()} watch: ${m}`);
  let stopping = false;
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => { stopping = true; });
  const recent = new Map<string, number[]>(), due = new Map<string, number>();
  const st = { pid: process.pid, restarts: {} as Record<string, number>, last: {} as Record<string, string> };
  const save = () => { try { fs.writeFileSync(path.join(cfg.runDir, 'watch.status'), JSON.stringify(st)); } catch { /* run dir gone */ } };
  save();
  log(`watching ${daemonsOf(cfg).map((d) => d.name).join(', ')} (pid ${process.pid})`);
  while (!stopping) {
    await sleep(500);
    for (const d of daemonsOf(cfg)) {
      if (stopping || runningPid(cfg, d)) continue;
      const now = Date.now();
      const r = (recent.get(d.name) ?? []).filter((t) => now - t < 60000);
      let at = due.get(d.name);
      if (at === undefined) {
        const delay = r.length === 0 ? 0 : Math.min(30000, 1000 * 2 ** (r.length - 1));
        at = now + delay;
        due.set(d.name, at);
        log(`${d.name} is not running; starting it again${delay ? ` in ${delay / 1000} s (${r.length} restarts in the last minute)` : ''}`);
      }
      if (now < at) continue;
      due.delete(d.name);
      try {
        const pid = spawnDaemon(cfg, file, d, []);
        r.push(now);
        recent.set(d.name, r);
        st.restarts[d.name] = (st.restarts[d.name] ?? 0) + 1;
        st.last[d.name] = new Date(now).toISOString();
        save();
        log(`${d.name} started again (pid ${pid}, restart ${st.restarts[d.name]})`);
      } catch (e) {
        log(`${d.name}: ${(e as Error).message}`);
      }
    }
  }
  log('stopped');
  return 0;
}

async function stop(o: Opts): Promise<number> {
  const { cfg } = configOf(o);
  const stopped: string[] = [];
  const w = runningPid(cfg, WATCH);
  if (w) await stopPid(cfg, WATCH, w); // first: it would start the daemons again
  for (const d of [...DAEMONS].reverse()) {
    const pid = runningPid(cfg, d);
    if (!pid) { try { fs.unlinkSync(pidFile(cfg, d.name)); } catch { /* none */ } continue; }
    await stopPid(cfg, d, pid);
    stopped.push(`${d.name} (pid ${pid})`);
  }
  if (w) stopped.push(`watch (pid ${w})`);
  if (o.json) console.log(JSON.stringify({ stopped }));
  else console.log(stopped.length ? `stopped ${stopped.join(', ')}` : 'lfp was not running');
  return 0;
}

interface HugePagesStatus { huge: boolean; why: string; fpHugeBytes: number | null }

/** Whether the shm file's file system gives huge pages, and how much of it the running fast path maps with them. */
function hugePagesStatus(cfg: LfpConfig, fpPid: number | null): HugePagesStatus {
  let huge = false, why = '';
  try {
    const m = mountOf(path.dirname(cfg.shm.path));
    ({ huge, why } = m ? hugeOf(m) : { huge: false, why: 'no mount found' });
  } catch (e) { why = (e as Error).message; }
  let fpHugeBytes: number | null = null;
  if (fpPid) { try { fpHugeBytes = hugeMappedBytes(cfg.shm.path, fpPid); } catch { /* gone */ } }
  return { huge, why, fpHugeBytes };
}

function status(o: Opts): number {
  const { cfg } = configOf(o);
  const st: Record<string, unknown> = {};
  for (const d of DAEMONS) st[d.name] = { pid: runningPid(cfg, d) };
  st.cmgrd = { ...(st.cmgrd as object), status: readStatus(cfg) };
  let ws: { restarts?: Record<string, number>; last?: Record<string, string> } | null = null;
  try { ws = JSON.parse(fs.readFileSync(path.join(cfg.runDir, 'watch.status'), 'utf8')); } catch { /* none */ }
  st.watch = { pid: runningPid(cfg, WATCH), restarts: ws?.restarts ?? {}, last: ws?.last ?? {} };
  try {
    const r = ShmReader.open(cfg.shm.path);
    st.shm = { path: cfg.shm.path, heartbeatAgeMs: r.heartbeatAgeMs(), header: r.header() };
  } catch (e) {
    st.shm = { path: cfg.shm.path, error: (e as Error).message };
  }
  (st.shm as Record<string, unknown>).hugePages = hugePagesStatus(cfg, (st.fp as { pid: number | null }).pid);
  if (o.json) { console.log(JSON.stringify(st, null, 2)); return 0; }
  const c = st.cmgrd as { pid: number | null; status: Record<string, any> | null };
  const f = st.fpmd as { pid: number | null };
  const shm = st.shm as { heartbeatAgeMs?: number; error?: string };
  console.log(`fpmd:  ${f.pid ? `running (pid ${f.pid})` : 'not running'}`);
  if (hasFastPath(cfg)) console.log(`fp:    ${(st.fp as { pid: number | null }).pid ? `running (pid ${(st.fp as { pid: number }).pid})` : 'not running'}`);
  console.log(`cmgrd: ${c.pid ? `running (pid ${c.pid})` : 'not running'}${c.status ? `, FPC ${c.status.fpc?.state}, cache ${JSON.stringify(c.status.cache)}` : ''}`);
  if (hasFastPath(cfg)) console.log(`fpsd:  ${(st.fpsd as { pid: number | null }).pid ? `running (pid ${(st.fpsd as { pid: number }).pid})` : 'not running'}`);
  const wt = st.watch as { pid: number | null; restarts: Record<string, number> };
  const rs = Object.entries(wt.restarts).map(([n, k]) => `${n} ${k}`).join(', ');
  console.log(`watch: ${wt.pid ? `running (pid ${wt.pid})` : `not running${cfg.respawn ? '' : ' (respawn off)'}`}${rs ? `; daemons started again: ${rs}` : ''}`);
  console.log(`shm:   ${cfg.shm.path} ${shm.error ? `unavailable: ${shm.error}` : `writer heartbeat ${shm.heartbeatAgeMs} ms ago`}`);
  const hp = (st.shm as { hugePages: HugePagesStatus }).hugePages;
  console.log(`       huge pages: ${hp.huge ? 'yes' : 'no'} (${hp.why})${hp.fpHugeBytes !== null ? `; the fast path maps ${(hp.fpHugeBytes / 1048576).toFixed(0)} MiB of it with 2 MiB pages` : ''}`);
  return f.pid && c.pid && (!hasFastPath(cfg) || ((st.fp as { pid: number | null }).pid && (st.fpsd as { pid: number | null }).pid)) ? 0 : 3;
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  switch (o.rest[0]) {
    case 'show': return show(o);
    case 'start': return start(o);
    case 'stop': return stop(o);
    case 'status': return status(o);
    case 'watch': return watch(o);
    case undefined: throw new UsageError('');
    default: throw new UsageError(`unknown command "${o.rest[0]}"`);
  }
}

// exitCode, not exit(): a large output to a pipe must drain first.
main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => {
  if (e instanceof UsageError) {
    if (e.message) process.stderr.write(`fpctl: ${e.message}\n`);
    process.stderr.write(USAGE + '\n');
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`fpctl: ${e.message}\n`);
  process.exitCode = 1;
});
