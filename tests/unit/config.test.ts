import { strict as assert } from 'assert';
import { parseConfig, DEFAULT_CONFIG, ConfigError, configToJson } from '../../lib/config';

describe('config file', () => {
  it('fills defaults and reads every key', () => {
    const c = parseConfig(JSON.stringify({ controlPlaneNetns: 'cp', ports: ['eth1', 'eth2'], fpc: 'tcp://10.0.0.1:5555', shm: { path: '/dev/shm/x', maxRoutes: 10 }, runDir: '/r', logDir: '/l', netlinkRcvbuf: 1 << 20, logLevel: 'debug' }));
    assert.equal(c.controlPlaneNetns, 'cp');
    assert.deepEqual(c.ports, ['eth1', 'eth2']);
    assert.equal(c.shm.maxRoutes, 10);
    assert.equal(c.shm.hugePages, true, 'huge pages by default');
    assert.equal(parseConfig('{"shm": {"hugePages": false}}').shm.hugePages, false);
    assert.deepEqual(parseConfig('{}'), { ...DEFAULT_CONFIG, ports: [], shm: { ...DEFAULT_CONFIG.shm } });
  });
  it('reads port specs and the fastpath section', () => {
    const c = parseConfig(JSON.stringify({ ports: ['eth0', { name: 'eth1', dpdk: 'net_af_xdp0,iface=phy1' }, { name: 'wwan', kernel: 'wwan0', netns: 'modem' }], fastpath: { eal: ['-l', '1'], mbufs: 8192, burst: 64 } }));
    assert.deepEqual(c.ports, ['eth0', 'eth1', 'wwan']);
    assert.deepEqual(c.portSpecs[1], { name: 'eth1', dpdk: 'net_af_xdp0,iface=phy1' });
    assert.deepEqual(c.portSpecs[2], { name: 'wwan', kernel: 'wwan0', netns: 'modem' });
    assert.equal(c.fastpath.mbufs, 8192);
    assert.deepEqual(parseConfig(configToJson(c)), c, 'configToJson is read back identically');
    assert.equal(c.fastpath.memMB, DEFAULT_CONFIG.fastpath.memMB);
    for (const [bad, re] of [
      [{ ports: [{ name: 'e', dpdk: 'x', kernel: 'y' }] }, /give "dpdk" or "kernel", not both/],
      [{ ports: [{ name: 'e', pci: 'x' }] }, /ports\[0\]: unknown key "pci"/],
      [{ ports: [{ name: 'e', netns: 'n' }] }, /"netns" goes with "kernel" or "dpdk"/],
      [{ fastpath: { burst: 1000 } }, /between 32 and 256/],
      [{ fastpath: { workers: 2 } }, /unknown key "fastpath.workers"/],
    ] as [unknown, RegExp][]) assert.throws(() => parseConfig(JSON.stringify(bad)), re);
  });
  it('refuses bad input with an error that names the key', () => {
    const bad: [string, RegExp][] = [
      ['{', /not valid JSON/],
      ['[]', /must be a JSON object/],
      ['{"port": []}', /unknown key "port"/],
      ['{"ports": ["a-very-long-interface-name"]}', /"ports" must be a list of interface names/],
      ['{"ports": ["eth1", "eth1"]}', /lists an interface twice/],
      ['{"fpc": "http://x"}', /"fpc" must be ipc:\/\/\/path or tcp:\/\/host:port/],
      ['{"shm": {"maxRoutes": -1}}', /"shm.maxRoutes" must be a positive integer/],
      ['{"shm": {"path": "relative"}}', /absolute path/],
      ['{"shm": {"routes": 1}}', /unknown key "shm.routes"/],
      ['{"shm": {"hugePages": "yes"}}', /"shm.hugePages" must be true or false/],
      ['{"logLevel": "loud"}', /"logLevel" must be/],
    ];
    for (const [text, re] of bad) assert.throws(() => parseConfig(text, 'lfp.json'), (e: unknown) => e instanceof ConfigError && re.test(e.message) && e.message.startsWith('lfp.json:'), text);
  });
});
