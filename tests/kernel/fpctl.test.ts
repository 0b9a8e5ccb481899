// fpctl start / status / stop / show as a user runs them, with a config file.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Netns } from '../lib/netns';
import type { Link } from '../../lib/model';

const FPCTL = path.resolve(__dirname, '../../cli/fpctl.js');

function fpctl(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [FPCTL, ...args], { encoding: 'utf8', timeout: 60000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('fpctl start/status/stop', function () {
  this.timeout(60000);
  let cp: Netns;
  let dir: string;
  let cfg: string;

  before(() => {
    cp = Netns.create('fpctl');
    cp.ip('link add eth1 type veth peer name eth2');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-t-'));
    cfg = path.join(dir, 'lfp.json');
    fs.writeFileSync(cfg, JSON.stringify({
      controlPlaneNetns: cp.name, ports: ['eth1'], fpc: `ipc://${dir}/fpc.sock`,
      shm: { path: `/dev/shm/${path.basename(dir)}`, maxRoutes: 10000, fib4Tables: 2, fib6Tables: 2, tbl8Groups: 256 },
      runDir: dir, logDir: dir,
    }));
  });
  after(() => {
    fpctl(['stop', '-c', cfg]);
    fs.rmSync(`/dev/shm/${path.basename(dir)}`, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    cp.destroy();
  });

  it('starts the daemons, reports them, refuses a second start, stops them', () => {
    let r = fpctl(['start', '-c', cfg, '--fresh']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /lfp started: fpmd pid \d+, cmgrd pid \d+/);
    r = fpctl(['status', '-c', cfg]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /fpmd: +running/);
    assert.match(r.out, /cmgrd: running .*FPC ready/);
    const st = JSON.parse(fpctl(['status', '-c', cfg, '--json']).out);
    assert.ok(st.fpmd.pid > 0 && st.cmgrd.pid > 0);
    r = fpctl(['start', '-c', cfg]);
    assert.equal(r.code, 1);
    assert.match(r.err, /already running/);
    const ports = JSON.parse(fpctl(['-c', cfg, 'show', 'ports', '--json']).out) as Link[];
    assert.deepEqual(ports.map((p) => [p.name, p.port]), [['eth1', 0]]);
    r = fpctl(['stop', '-c', cfg]);
    assert.equal(r.code, 0);
    assert.match(r.out, /stopped cmgrd \(pid \d+\), fpmd \(pid \d+\)/);
    r = fpctl(['status', '-c', cfg]);
    assert.equal(r.code, 3);
    // the shared memory stays readable without daemons (like fp-cli on a stopped fpm)
    assert.equal(JSON.parse(fpctl(['-c', cfg, 'show', 'ports', '--json']).out).length, 1);
  });

  it('starts a daemon that died again (the watcher, respawn), and stop stops the watcher first', async () => {
    let r = fpctl(['start', '-c', cfg, '--fresh']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /watch pid \d+/);
    const st = () => JSON.parse(fpctl(['status', '-c', cfg, '--json']).out) as Record<string, { pid: number | null; restarts?: Record<string, number>; status?: { fpc?: { state?: string } } }>;
    const s0 = st();
    assert.ok(s0.watch.pid! > 0 && s0.cmgrd.pid! > 0 && s0.fpmd.pid! > 0);
    const waitFor = async (what: string, cond: () => boolean) => {
      const end = Date.now() + 20000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`${what}: ${JSON.stringify(st())}\n${fs.readFileSync(path.join(dir, 'watch.log'), 'utf8')}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    // a crash of cmgrd, then of fpmd: each comes back (fpmd re-attaches to the shared memory, cmgrd syncs again)
    process.kill(s0.cmgrd.pid!, 'SIGKILL');
    await waitFor('cmgrd started again', () => { const s = st(); return !!s.cmgrd.pid && s.cmgrd.pid !== s0.cmgrd.pid && s.watch.restarts?.cmgrd === 1; });
    process.kill(s0.fpmd.pid!, 'SIGKILL');
    await waitFor('fpmd started again, FPC ready', () => { const s = st(); return !!s.fpmd.pid && s.fpmd.pid !== s0.fpmd.pid && s.cmgrd.status?.fpc?.state === 'ready'; });
    r = fpctl(['status', '-c', cfg]);
    assert.match(r.out, /watch: running \(pid \d+\); daemons started again: (cmgrd 1, fpmd 1|fpmd 1, cmgrd 1)/);
    assert.match(fs.readFileSync(path.join(dir, 'watch.log'), 'utf8'), /fpmd is not running; starting it again/);
    const ports = JSON.parse(fpctl(['-c', cfg, 'show', 'ports', '--json']).out) as Link[];
    assert.deepEqual(ports.map((p) => p.name), ['eth1'], 'the state is still there');
    const w = st().watch.pid!;
    r = fpctl(['stop', '-c', cfg]);
    assert.equal(r.code, 0);
    assert.match(r.out, /stopped cmgrd \(pid \d+\), fpmd \(pid \d+\), watch \(pid \d+\)/);
    const gone = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') === ''; } catch { return true; } }; // (or a zombie)
    assert.ok(gone(w), 'the watcher is gone');
    await new Promise((res) => setTimeout(res, 1200)); // nothing comes back
    assert.equal(fpctl(['status', '-c', cfg]).code, 3);
  });

  it('gives clear errors for bad configs and bad commands', () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"ports": "eth1"}');
    let r = fpctl(['start', '-c', bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /"ports" must be a list of interface names/);
    r = fpctl(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command "frobnicate"/);
    r = fpctl(['show', 'routes', '--shm', '/dev/shm/does-not-exist']);
    assert.equal(r.code, 1);
    assert.match(r.err, /does-not-exist/);
  });
});
