// IPsec in the fast path: no allocation per packet on the ESP paths (fp-esp-alloc-child.ts, run in a child
// process with a 1 MB young generation).

import * as assert from 'assert';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as nativeCrypto from '../../native/crypto';

function child(packets: number, mode: string): { scavenges: number; tx: number; exc: number; drops: number; esp: number; inFlight: number; pps: number } {
  const r = spawnSync(process.execPath, ['--min-semi-space-size=1', '--max-semi-space-size=1', path.join(__dirname, 'fp-esp-alloc-child.js'), String(packets), mode],
    { encoding: 'utf8', timeout: 300000 });
  assert.strictEqual(r.status, 0, `child: status ${r.status} signal ${r.signal}\n${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, r.stdout);
  return JSON.parse(line);
}

describe('fast path IPsec: allocation', function () {
  this.timeout(600000);
  before(function () { if (!nativeCrypto.available()) this.skip(); });
  for (const mode of ['after-encrypt', 'before-encrypt']) {
    it(`no allocation per packet (${mode}): 300k packets of ESP traffic, 1 MB young generation -> no scavenge`, () => {
      const s = child(300_000, mode);
      console.log(`      ${JSON.stringify(s)}`);
      assert.ok(s.tx > 0 && s.exc > 0 && s.drops > 0 && s.esp > 0, JSON.stringify(s));
      assert.strictEqual(s.inFlight, 0);
      assert.ok(s.scavenges <= 2, `${s.scavenges} scavenges during 300k packets: something allocates per packet`);
    });
  }
});
