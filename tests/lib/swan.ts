// strongSwan (charon + swanctl + pki, unmodified) for tests that run inside user-mode Linux: a test
// PKI made with `pki`, one charon per network namespace with its own /run, vici socket and log
// (tests/uml/swan/charon-start.sh), swanctl.conf from tests/uml/swan/swanctl.conf.tmpl, `ip xfrm
// state` parsing and a UDP flow with sequence numbers (tests/lib/udp-tool.ts) to count losses.
// Synchronous on purpose (the scenarios are sequential scripts); nothing here mocks the kernel.
// See tests/uml/swan/README.md.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** The repository root (holds tests/uml/swan), found upwards from this file (build/tests/lib/). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'tests', 'uml', 'swan', 'swanctl.conf.tmpl'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`tests/uml/swan not found above ${__dirname}`);
    dir = up;
  }
}
export const SWAN_DIR = (): string => path.join(repoRoot(), 'tests', 'uml', 'swan');
export const CHARON = process.env.LFP_CHARON || '/usr/lib/ipsec/charon';

/** Why strongSwan cannot be used here (missing binaries), or null. */
export function swanUnavailableReason(): string | null {
  const missing: string[] = [];
  const onPath = (n: string) => (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/usr/bin'])
    .some((d) => { try { fs.accessSync(path.join(d, n), fs.constants.X_OK); return true; } catch { return false; } });
  try { fs.accessSync(CHARON, fs.constants.X_OK); } catch { missing.push(`${CHARON} (strongswan-charon)`); }
  if (!onPath('swanctl')) missing.push('swanctl (strongswan-swanctl)');
  if (!onPath('pki')) missing.push('pki (strongswan-pki)');
  const plugins = '/usr/lib/ipsec/plugins';
  for (const p of ['openssl', 'vici', 'kernel-netlink', 'x509', 'pem', 'pubkey', 'nonce', 'socket-default']) {
    if (!fs.existsSync(path.join(plugins, `libstrongswan-${p}.so`))) missing.push(`plugin ${p}`);
  }
  return missing.length ? `strongSwan not usable: missing ${missing.join(', ')} (apt-get install -y strongswan-charon strongswan-swanctl strongswan-pki libstrongswan-standard-plugins)` : null;
}

export function run(cmd: string, args: string[], env?: Record<string, string>): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...(env ?? {}) }, maxBuffer: 1 << 28 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Replace every @NAME@ in a template; throws on a placeholder left without a value. */
export function fill(template: string, vars: Record<string, string | number>): string {
  const out = template.replace(/@([A-Z_]+)@/g, (m, k: string) => {
    if (!(k in vars)) throw new Error(`template placeholder ${m} has no value`);
    return String(vars[k]);
  });
  return out;
}

/** pki.sh into dir: dir/x509ca/ca.crt and dir/NAME/{ecdsa,x509,x509ca}/ per name. Returns ms. */
export function makePki(dir: string, names: string[]): number {
  const t0 = Date.now();
  fs.mkdirSync(dir, { recursive: true });
  // pki reads its plugin list from the same template (short list: fast start in UML).
  const conf = path.join(dir, 'pki-strongswan.conf');
  fs.writeFileSync(conf, fill(fs.readFileSync(path.join(SWAN_DIR(), 'strongswan.conf.tmpl'), 'utf8'), { DIR: dir }));
  run(path.join(SWAN_DIR(), 'pki.sh'), [dir, ...names], { STRONGSWAN_CONF: conf });
  return Date.now() - t0;
}

export interface SideConfig {
  /** Certificate CN / identity of this side, also the PKI directory name. */
  name: string;
  peerName: string;
  netns: string;
  localAddr: string;
  remoteAddr: string;
  /** Traffic selectors of the PSK (AES-GCM) and certificate (AES-CBC+SHA256) CHILD_SAs. */
  pskLocalTs: string; pskRemoteTs: string;
  certLocalTs: string; certRemoteTs: string;
  /** Byte lifetime of this side's cert-cbc CHILD_SA (0: none). */
  rekeyBytes: number; lifeBytes: number;
  psk: string;
}

/** One charon: its private directory (config, vici socket, log) and its netns. */
export class Charon {
  pid = 0;
  readonly uri: string;
  private constructor(readonly dir: string, readonly cfg: SideConfig) {
    this.uri = `unix://${dir}/charon.vici`;
  }

  /** Write dir/strongswan.conf, dir/swanctl/swanctl.conf and this side's credentials from pkiDir. */
  static prepare(dir: string, cfg: SideConfig, pkiDir: string): Charon {
    const swan = SWAN_DIR();
    fs.mkdirSync(path.join(dir, 'swanctl'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'strongswan.conf'), fill(fs.readFileSync(path.join(swan, 'strongswan.conf.tmpl'), 'utf8'), { DIR: dir }));
    fs.writeFileSync(path.join(dir, 'swanctl', 'swanctl.conf'), fill(fs.readFileSync(path.join(swan, 'swanctl.conf.tmpl'), 'utf8'), {
      LOCAL_ADDR: cfg.localAddr, REMOTE_ADDR: cfg.remoteAddr, LOCAL_NAME: cfg.name, REMOTE_NAME: cfg.peerName,
      PSK_LOCAL_TS: cfg.pskLocalTs, PSK_REMOTE_TS: cfg.pskRemoteTs, CERT_LOCAL_TS: cfg.certLocalTs, CERT_REMOTE_TS: cfg.certRemoteTs,
      REKEY_BYTES: cfg.rekeyBytes, LIFE_BYTES: cfg.lifeBytes, PSK: cfg.psk,
    }));
    fs.cpSync(path.join(pkiDir, cfg.name), path.join(dir, 'swanctl'), { recursive: true });
    return new Charon(dir, cfg);
  }

  /** charon-start.sh: start in the netns and load the config; returns the time taken (ms). */
  start(): number {
    const t0 = Date.now();
    const out = run(path.join(SWAN_DIR(), 'charon-start.sh'), [this.dir, this.cfg.netns]);
    this.pid = Number(out.trim().split('\n').pop());
    return Date.now() - t0;
  }

  stop(): void {
    spawnSync(path.join(SWAN_DIR(), 'charon-stop.sh'), [this.dir]);
    this.pid = 0;
  }

  alive(): boolean {
    if (!this.pid) return false;
    try { process.kill(this.pid, 0); return true; } catch { return false; }
  }

  /** swanctl against this charon's vici socket. */
  swanctl(args: string[]): string {
    return run('swanctl', [...args, '--uri', this.uri], {
      STRONGSWAN_CONF: path.join(this.dir, 'strongswan.conf'), SWANCTL_DIR: path.join(this.dir, 'swanctl'),
    });
  }

  /** Start swanctl in the background (e.g. --rekey during a flow). */
  swanctlAsync(args: string[]): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      const c = spawn('swanctl', [...args, '--uri', this.uri], {
        env: { ...process.env, STRONGSWAN_CONF: path.join(this.dir, 'strongswan.conf'), SWANCTL_DIR: path.join(this.dir, 'swanctl') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      c.stdout.on('data', (b) => { out += b; });
      c.stderr.on('data', (b) => { out += b; });
      c.on('close', (code) => resolve({ code: code ?? -1, out }));
    });
  }

  log(): string {
    try { return fs.readFileSync(path.join(this.dir, 'charon.log'), 'utf8'); } catch { return ''; }
  }
}

export interface XfrmState {
  src: string; dst: string; spi: number; reqid: number; mode: string;
  alg: string; bytes: number; packets: number;
  softBytes: number | null; hardBytes: number | null;
}

/** `ip -s xfrm state` of a netns, parsed (ESP only; keys not kept). */
export function xfrmStates(netns: string): XfrmState[] {
  const text = run('ip', ['-n', netns, '-s', 'xfrm', 'state']);
  const out: XfrmState[] = [];
  for (const block of text.split(/^(?=src )/m)) {
    const h = /^src (\S+) dst (\S+)\s+proto esp spi 0x([0-9a-f]+)\S* reqid (\d+)\S* mode (\S+)/m.exec(block);
    if (!h) continue;
    const alg = /^\s+(aead|enc) (\S+)/m.exec(block);
    const cur = /lifetime current:\s+(\d+)\(bytes\), (\d+)\(packets\)/.exec(block);
    const lim = /limit: soft (\S+)\(bytes\), hard (\S+)\(bytes\)/.exec(block);
    const num = (s: string | undefined) => (s === undefined || s === '(INF)' ? null : Number(s));
    out.push({
      src: h[1], dst: h[2], spi: parseInt(h[3], 16), reqid: Number(h[4]), mode: h[5],
      alg: alg ? alg[2] : '', bytes: cur ? Number(cur[1]) : 0, packets: cur ? Number(cur[2]) : 0,
      softBytes: num(lim?.[1]), hardBytes: num(lim?.[2]),
    });
  }
  return out;
}

export const hexSpi = (spi: number): string => spi.toString(16).padStart(8, '0');

/** A UDP flow hostA → hostB with build/tests/lib/udp-tool.js (sequence-numbered datagrams). */
export interface FlowResult { sent: number; received: number; bytes: number; ms: number }

export class UdpFlow {
  private recv: ChildProcess | null = null;
  private recvOut = '';
  private recvDone: Promise<void> | null = null;
  private readonly tool = path.join(repoRoot(), 'build', 'tests', 'lib', 'udp-tool.js');
  constructor(readonly srcNs: string, readonly dstNs: string, readonly dst: string, readonly port: number,
    readonly count: number, readonly pps: number, readonly size: number) {}

  /** Start the receiver in dstNs and wait until it is bound. */
  async listen(timeoutMs: number): Promise<void> {
    const c = spawn('ip', ['netns', 'exec', this.dstNs, process.execPath, this.tool, 'recv', String(this.port), String(this.count), String(timeoutMs)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.recv = c;
    c.stdout!.on('data', (b) => { this.recvOut += b; });
    this.recvDone = new Promise((resolve) => c.on('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const t = setTimeout(() => reject(new Error(`udp-tool recv not ready: ${err}`)), 20_000);
      c.stderr!.on('data', (b) => { err += b; if (err.includes('ready')) { clearTimeout(t); resolve(); } });
      c.on('close', (code) => { clearTimeout(t); reject(new Error(`udp-tool recv exited ${code}: ${err}`)); });
    });
  }

  /** Send the whole flow (resolves when sent) and then wait for the receiver's count. */
  async send(): Promise<FlowResult> {
    const t0 = Date.now();
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('ip', ['netns', 'exec', this.srcNs, process.execPath, this.tool, 'send', this.dst, String(this.port), String(this.count), String(this.pps), String(this.size)],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let o = '', e = '';
      c.stdout.on('data', (b) => { o += b; });
      c.stderr.on('data', (b) => { e += b; });
      c.on('close', (code) => (code === 0 ? resolve(o) : reject(new Error(`udp-tool send exited ${code}: ${e}`))));
    });
    const ms = Date.now() - t0;
    const sent = (JSON.parse(out.trim().split('\n').pop()!) as { sent: number }).sent;
    await this.recvDone;
    const r = JSON.parse(this.recvOut.trim().split('\n').pop() || '{"received":0,"bytes":0}') as { received: number; bytes: number };
    return { sent, received: r.received, bytes: r.bytes, ms };
  }

  kill(): void {
    if (this.recv && this.recv.exitCode === null) this.recv.kill('SIGKILL');
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until f() is truthy (polling); returns its value or throws with what after timeoutMs. */
export async function waitFor<T>(f: () => T | null | undefined | false, timeoutMs: number, what: string, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout (${timeoutMs} ms) waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Remove a directory tree, ignoring errors (cleanup paths). */
export function rmrf(dir: string): void {
  try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
}

export function tryRun(cmd: string, args: string[]): void {
  try { execFileSync(cmd, args, { stdio: 'ignore' }); } catch { /* best effort */ }
}
