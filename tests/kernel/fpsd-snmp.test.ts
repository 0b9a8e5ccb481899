// fpsd's SNMP export (stats-daemon/snmp.ts): a real snmpd (Debian package snmpd, `master agentx`) and
// the fpsd process as its AgentX subagent, both in a network namespace the test creates; the fast
// path's port counters written into a real stats file through the StatsFile API; read back with
// snmpwalk / snmpget.
import * as assert from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { C_DPVI_BYTES, C_DPVI_PACKETS, C_FORWARDED, C_RX_BYTES, C_RX_PACKETS, C_TX_BYTES, C_TX_PACKETS, DROP_BASE, PORT_STRIDE, StatsFile, dropReason } from '../../shared-mem/stats';
import { waitUntil } from '../lib/lfp-env';
import { Netns } from '../lib/netns';

const BUILD = path.resolve(__dirname, '../..');
const OID = '1.3.6.1.3.8765';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

describe('fpsd: port counters to net-snmp through AgentX', function () {
  this.timeout(60_000);
  let ns: Netns | null = null;
  let dir = '';
  let snmpd: ChildProcess | null = null;
  let fpsd: ChildProcess | null = null;
  let stats: StatsFile;
  let shmPath = '';

  before(function () {
    let snmpOk = true;
    try { require.resolve('net-snmp'); } catch { snmpOk = false; }
    if (!have('snmpd') || !have('snmpwalk') || !snmpOk) {
      console.log('      skipping: needs the Debian packages snmpd and snmp and the npm package net-snmp (make deps)');
      this.skip();
    }
    ns = Netns.create('snmp');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-t-snmp-'));
    shmPath = `/dev/shm/${path.basename(dir)}`;
    fs.writeFileSync(path.join(dir, 'snmpd.conf'), [
      'master agentx', 'agentXSocket tcp:127.0.0.1:705', 'agentaddress udp:127.0.0.1:161', 'rocommunity public 127.0.0.1', '',
    ].join('\n'));
    fs.writeFileSync(path.join(dir, 'lfp.json'), JSON.stringify({ ports: ['eth1', 'eth2'], shm: { path: shmPath }, runDir: dir, logDir: dir }));
    stats = StatsFile.createFile(`${shmPath}-stats`, { workers: 2, ports: 2 });
  });

  after(() => {
    for (const p of [fpsd, snmpd]) { try { p?.kill('SIGKILL'); } catch { /* gone */ } }
    ns?.destroy();
    if (shmPath) fs.rmSync(`${shmPath}-stats`, { force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const log = (f: string) => { try { return fs.readFileSync(path.join(dir, f), 'utf8'); } catch { return ''; } };
  const walk = (): Map<string, string> => {
    const r = spawnSync('ip', ['netns', 'exec', ns!.name, 'snmpwalk', '-v2c', '-c', 'public', '-On', '-Oe', '127.0.0.1', OID], { encoding: 'utf8' });
    const m = new Map<string, string>();
    for (const line of (r.stdout ?? '').split('\n')) {
      const x = /^\.?([\d.]+) = (?:[\w-]+: )?(.*)$/.exec(line.trim());
      if (x) m.set(x[1], x[2].replace(/^"|"$/g, ''));
    }
    return m;
  };
  const cell = (col: number, port: number) => `${OID}.1.1.${col}.${port + 1}`;

  it('serves the ports table (names, rx/tx/forwarded/exception/drop counters summed over workers) and follows updates', async () => {
    const w0 = stats.worker(0).counters, w1 = stats.worker(1).counters;
    w0[C_RX_PACKETS] = 100; w1[C_RX_PACKETS] = 23; w0[C_RX_BYTES] = 12_300;
    w0[C_TX_PACKETS] = 90; w0[C_TX_BYTES] = 9_000; w0[C_FORWARDED] = 90;
    w0[C_DPVI_PACKETS] = 3; w0[C_DPVI_BYTES] = 300;
    w0[DROP_BASE + dropReason('runt')] = 2; w1[DROP_BASE + dropReason('not-for-us')] = 5;
    const p1 = PORT_STRIDE;
    w1[p1 + C_RX_PACKETS] = 2 ** 40; w1[p1 + C_RX_BYTES] = 2 ** 50; // beyond 32 bits: Counter64
    snmpd = spawn('ip', ['netns', 'exec', ns!.name, 'snmpd', '-f', '-C', '-c', path.join(dir, 'snmpd.conf'), '-Lf', path.join(dir, 'snmpd.log'), '-p', path.join(dir, 'snmpd.pid')],
      { stdio: 'ignore', env: { ...process.env, SNMP_PERSISTENT_DIR: path.join(dir, 'persist'), MIBS: '' } });
    await waitUntil('snmpd answering', 20_000, () => spawnSync('ip', ['netns', 'exec', ns!.name, 'snmpget', '-v2c', '-c', 'public', '127.0.0.1', '1.3.6.1.2.1.1.3.0']).status === 0, 200)
      .catch((e) => { throw new Error(`${e.message}\n${log('snmpd.log')}`); });
    const fpsdLog = fs.openSync(path.join(dir, 'fpsd.log'), 'a');
    fpsd = spawn('ip', ['netns', 'exec', ns!.name, process.execPath, path.join(BUILD, 'stats-daemon/main.js'), '-c', path.join(dir, 'lfp.json'), '--period-ms', '200', '--no-sa-counters', '--snmp-agentx', '127.0.0.1:705'],
      { stdio: ['ignore', fpsdLog, fpsdLog] });
    fs.closeSync(fpsdLog);
    await waitUntil('the lfp port table in snmpd', 30_000, () => walk().get(cell(3, 0)) === '123', 200)
      .catch((e) => { throw new Error(`${e.message}\nfpsd:\n${log('fpsd.log')}\nsnmpd:\n${log('snmpd.log')}\nwalk: ${JSON.stringify([...walk()])}`); });
    const m = walk();
    assert.strictEqual(m.get(cell(1, 0)), '1');
    assert.strictEqual(m.get(cell(2, 0)), 'eth1');
    assert.strictEqual(m.get(cell(2, 1)), 'eth2');
    assert.strictEqual(m.get(cell(4, 0)), '12300');
    assert.strictEqual(m.get(cell(5, 0)), '90');
    assert.strictEqual(m.get(cell(6, 0)), '9000');
    assert.strictEqual(m.get(cell(7, 0)), '90');
    assert.strictEqual(m.get(cell(8, 0)), '3');
    assert.strictEqual(m.get(cell(9, 0)), '300');
    assert.strictEqual(m.get(cell(10, 0)), '7');
    assert.strictEqual(m.get(cell(3, 1)), String(2 ** 40));
    assert.strictEqual(m.get(cell(4, 1)), String(2 ** 50));
    // snmpd's own tables are still there (the lfp table does not hide the kernel's interfaces)
    const sys = spawnSync('ip', ['netns', 'exec', ns!.name, 'snmpget', '-v2c', '-c', 'public', '-On', '127.0.0.1', '1.3.6.1.2.1.2.1.0'], { encoding: 'utf8' });
    assert.match(sys.stdout, /INTEGER: \d+/, 'ifNumber from snmpd itself');
    // counters move: the next period shows them
    w0[C_RX_PACKETS] = 1000;
    await waitUntil('updated counter', 10_000, () => walk().get(cell(3, 0)) === '1023', 100);
  });

  it('reconnects when the master agent restarts', async () => {
    snmpd!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    snmpd = spawn('ip', ['netns', 'exec', ns!.name, 'snmpd', '-f', '-C', '-c', path.join(dir, 'snmpd.conf'), '-Lf', path.join(dir, 'snmpd.log'), '-p', path.join(dir, 'snmpd.pid')],
      { stdio: 'ignore', env: { ...process.env, SNMP_PERSISTENT_DIR: path.join(dir, 'persist'), MIBS: '' } });
    await waitUntil('the table served again', 30_000, () => walk().get(cell(3, 0)) === '1023', 250)
      .catch((e) => { throw new Error(`${e.message}\nfpsd:\n${log('fpsd.log')}\nsnmpd:\n${log('snmpd.log')}`); });
    assert.doesNotMatch(log('fpsd.log'), / error: /);
  });
});
