// Huge pages for the shared memory (config shm.hugePages, shared-mem/huge.ts): fpmd mounts a tmpfs
// with huge=within_size on the directory of shm.path when it is free to, never over a non-empty
// directory or an existing mount; the fast path then maps the file with 2 MiB pages, which
// `fpctl status` reports.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as native from '../../native';
import { hugeMappedBytes, mountOf, prepareHugeDir } from '../../shared-mem/huge';
import { LfpEnv, waitUntil } from '../lib/lfp-env';
import { buildTopology, configureIp, Topology } from '../lib/topology';

/** Unmounts every mount at or below `dir` (lazily: a killed process may still be on its way out) and removes it. */
function removeDir(dir: string): void {
  for (let i = 0; i < 4; i++) {
    const m = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && (p === dir || p.startsWith(dir + '/')));
    if (m.length === 0) break;
    for (const p of m.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', p]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

describe('shared memory on huge pages (shm.hugePages)', function () {
  this.timeout(120000);
  let base: string;

  beforeEach(() => { base = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-t-huge-')); });
  afterEach(() => removeDir(base));

  it('mounts a huge-page tmpfs on a directory that does not exist yet, and its files get 2 MiB pages', () => {
    const dir = path.join(base, 'shm');
    const r = prepareHugeDir(dir);
    assert.equal(r.state, 'mounted', r.detail);
    const m = mountOf(dir)!;
    assert.equal(m.mountPoint, dir);
    assert.equal(m.fsType, 'tmpfs');
    assert.ok(m.options.includes('huge=within_size'), m.options.join(','));
    const f = path.join(dir, 'x');
    const sab = native.shm.map(f, { size: 8 << 20, create: true });
    const u = new Uint32Array(sab);
    for (let i = 0; i < u.length; i += 1024) u[i] = i;
    assert.ok(hugeMappedBytes(f) >= 4 << 20, `huge-page mapped bytes of ${f}: ${hugeMappedBytes(f)}`);
    // a second call finds the mount and leaves it
    const again = prepareHugeDir(dir);
    assert.equal(again.state, 'huge', again.detail);
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === dir).length, 1, 'mounted once');
  });

  it('mounts nothing over a non-empty directory or an existing mount, and says why there are no huge pages', () => {
    const full = path.join(base, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'keep'), 'user data');
    const r = prepareHugeDir(full);
    assert.equal(r.state, 'no-huge');
    assert.match(r.detail, /non-empty directory/);
    assert.notEqual(mountOf(full)!.mountPoint, full, 'not mounted over');
    assert.equal(fs.readFileSync(path.join(full, 'keep'), 'utf8'), 'user data');

    const plain = path.join(base, 'plain');
    fs.mkdirSync(plain);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'lfp-t-plain', plain]).status, 0);
    const p = prepareHugeDir(plain);
    assert.equal(p.state, 'no-huge');
    assert.match(p.detail, /without huge=within_size/);

    fs.writeFileSync(path.join(base, 'file'), '');
    assert.equal(prepareHugeDir(path.join(base, 'file')).state, 'failed');
  });
});

describe('lfp with its shared memory in a fresh directory (shm.hugePages, the default)', function () {
  this.timeout(120000);
  let base: string;
  let t: Topology | undefined;
  let env: LfpEnv | undefined;
  before(() => { base = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-t-huge-')); });
  after(() => { env?.stop(); t?.destroy(); removeDir(base); });

  it('fpmd mounts it, the fast path maps the FIB with 2 MiB pages and forwards, fpctl status reports it', async () => {
    const shmPath = path.join(base, 'run', 'shm', 'lfp');
    t = buildTopology('kernel');
    env = await LfpEnv.start({ cpNetns: t.cp.name, portSpecs: t.ports, shm: { path: shmPath, hugePages: true } });
    configureIp(t);
    assert.match(env.logs(), /mounted tmpfs \(huge=within_size\) on \S*run\/shm/);
    const ping = spawnSync('ip', ['netns', 'exec', t.a.name, 'ping', '-c', '3', '-i', '0.2', '-w', '10', '10.2.0.2'], { encoding: 'utf8' });
    assert.equal(ping.status, 0, ping.stdout + ping.stderr + env.logs());
    const fpPid = env.pid('fp');
    assert.ok(fpPid, 'fp runs');
    await waitUntil('fp maps the FIB with huge pages', 5000, () => hugeMappedBytes(shmPath, fpPid) >= 2 << 20, 50);
    // (LfpEnv starts the daemons itself, without fpctl's pid files: status cannot name the fp's mapping here;
    // `make demo` shows that line with `fpctl start`)
    const st = env.fpctlJson<{ shm: { hugePages: { huge: boolean; why: string; fpHugeBytes: number | null } } }>(['status']);
    assert.equal(st.shm.hugePages.huge, true, st.shm.hugePages.why);
    const text = spawnSync(process.execPath, [path.resolve(__dirname, '../../cli/fpctl.js'), '-c', env.cfgFile, 'status'], { encoding: 'utf8' }).stdout;
    assert.match(text, /huge pages: yes \(tmpfs \S+ huge=within_size\)/);
  });
});
