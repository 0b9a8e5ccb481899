// IPsec ESP: what the per-vector shortcuts of esp-encrypt / esp-decrypt must keep (docs/performance.md, IPsec):
// several SAs interleaved in one vector (the per-vector SAD entry, the one-SA burst without a copy, counters added
// per burst / per run of one SA), clear and ESP packets mixed in one vector (clear packets handed over at once
// only while no ESP packet is ahead of them: the order on the wire is kept), and the modules' exports staying
// plain data properties (an accessor export puts a module's exports object in dictionary mode: every use of
// one of its constants in a hot loop then costs a LoadIC call).

import * as assert from 'assert';
import * as ipsecModule from '../../fastpath/ipsec';
import * as encModule from '../../fastpath/nodes/esp-encrypt';
import * as decModule from '../../fastpath/nodes/esp-decrypt';
import { SA_CTR_BYTES, SA_CTR_ERRORS, SA_CTR_PACKETS, SA_CTR_STRIDE } from '../../fastpath/ipsec';
import * as nativeCrypto from '../../native/crypto';
import { GCM_IN, espFrame, innerUdp, makeEspWorld } from './fp-esp.test';
import { ip4, udp4Frame } from './fp-helpers';

const LOCAL = '10.0.1.254', PEER = '192.168.100.1';
const CBC_IN = { spi: 0x2002, alg: 'cbc' as const, esn: true };
const be32 = (b: Uint8Array | number[], o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

describe('fast path IPsec ESP: several SAs and clear packets in one vector', function () {
  before(function () { if (!nativeCrypto.available()) this.skip(); });

  it('inbound: GCM and CBC (ESN) packets interleaved, an unknown SPI among them: order, drops and per-SA counters', () => {
    const W = makeEspWorld();
    try {
      // [sa, sn, marker byte]; marker = the inner UDP payload's first byte, to check the order on the wire
      const plan: [typeof GCM_IN | typeof CBC_IN | null, number, number][] = [
        [GCM_IN, 1, 1], [CBC_IN, 1, 2], [GCM_IN, 2, 3], [GCM_IN, 3, 4], [null, 1, 0], [CBC_IN, 2, 5], [GCM_IN, 4, 6], [CBC_IN, 3, 7],
      ];
      const frames: Uint8Array[] = [];
      const bytes = new Map<number, number>();
      for (const [s, sn, mark] of plan) {
        const inner = innerUdp('10.99.1.2', '10.0.1.5', Array.from({ length: 5 + mark * 13 }, (_, j) => (j === 0 ? mark : j & 255)));
        if (s === null) { frames.push(espFrame({ spi: 0x7777, alg: 'gcm' }, sn, inner)); continue; }
        frames.push(espFrame(s, sn, inner));
        bytes.set(s.spi, (bytes.get(s.spi) ?? 0) + inner.length);
      }
      W.run(frames.map((frame) => ({ port: 1, frame })));
      const got = W.io.sent[0].map((f) => f[14 + 28]);
      assert.deepStrictEqual(got, [1, 2, 3, 4, 5, 6, 7], 'inner packets in the order received');
      assert.strictEqual(W.g.portStats(1).drops['esp-bad-spi'], 1);
      const c = W.g.ipsec!.saCounters, local = be32(ip4(LOCAL), 0);
      for (const [spi, n] of [[0x2001, 4], [0x2002, 3]]) {
        const b = W.r.saLookup(0, local, spi, 50) * SA_CTR_STRIDE;
        assert.strictEqual(c[b + SA_CTR_PACKETS], n, `packets of SA ${spi.toString(16)}`);
        assert.strictEqual(c[b + SA_CTR_BYTES], bytes.get(spi), `bytes of SA ${spi.toString(16)}`);
        assert.strictEqual(c[b + SA_CTR_ERRORS], 0);
      }
      // the same SA in two vectors in a row: the per-vector SAD entry does not outlive its vector
      W.io.clearCaptured();
      W.run([{ port: 1, frame: espFrame(GCM_IN, 5, innerUdp()) }]);
      W.run([{ port: 1, frame: espFrame(GCM_IN, 6, innerUdp()) }, { port: 1, frame: espFrame(CBC_IN, 4, innerUdp()) }]);
      assert.strictEqual(W.io.sent[0].length, 3);
      W.io.clearCaptured();
    } finally {
      W.g.close();
    }
  });

  it('outbound: clear, GCM, CBC and blocked packets mixed: order on the wire, sequence numbers, per-SA counters', () => {
    const W = makeEspWorld();
    try {
      // [destination, kind]; kind: c clear (no policy), g GCM SA 0x1001, b CBC SA 0x1002, x blocked
      const plan: [string, string][] = [
        ['192.168.7.1', 'c'], ['192.168.7.2', 'c'], ['10.99.0.1', 'g'], ['192.168.7.3', 'c'], ['10.98.0.1', 'b'], ['10.96.0.1', 'x'],
        ['10.99.0.2', 'g'], ['192.168.7.4', 'c'], ['10.98.0.2', 'b'], ['10.99.0.3', 'g'],
      ];
      const frames = plan.map(([dst], k) => udp4Frame(0, dst, { id: 500 + k }, 1000 + k, 2000, Array.from({ length: 3 + k * 11 }, (_, j) => j)));
      W.run(frames.map((frame) => ({ port: 0, frame })));
      const sent = W.io.sent[1];
      const want = plan.filter(([, kind]) => kind !== 'x');
      assert.strictEqual(sent.length, want.length);
      const sn = new Map<number, number>();
      sent.forEach((f, k) => {
        const kind = want[k][1];
        if (kind === 'c') {
          assert.strictEqual(f[23], 17, `packet ${k}: in clear`);
          assert.strictEqual(be32(f, 30), be32(ip4(want[k][0]), 0), `packet ${k}: the clear packet expected at this place`);
        } else {
          assert.strictEqual(f[23], 50, `packet ${k}: ESP`);
          const spi = be32(f, 34), s = be32(f, 38);
          assert.strictEqual(spi, kind === 'g' ? 0x1001 : 0x1002, `packet ${k}: SA`);
          assert.strictEqual(s, (sn.get(spi) ?? 0) + 1, `packet ${k}: sequence number`);
          sn.set(spi, s);
        }
      });
      assert.strictEqual(W.g.portStats(0).drops['ipsec-block'], 1);
      const c = W.g.ipsec!.saCounters, peer = be32(ip4(PEER), 0);
      for (const [spi, kind, n] of [[0x1001, 'g', 3], [0x1002, 'b', 2]] as [number, string, number][]) {
        const b = W.r.saLookup(0, peer, spi, 50) * SA_CTR_STRIDE;
        const bytes = plan.reduce((a, [, k], i) => a + (k === kind ? frames[i].length - 14 : 0), 0);
        assert.strictEqual(c[b + SA_CTR_PACKETS], n, `packets of SA ${spi.toString(16)}`);
        assert.strictEqual(c[b + SA_CTR_BYTES], bytes, `bytes of SA ${spi.toString(16)} (inner packets)`);
      }
      W.io.clearCaptured();
    } finally {
      W.g.close();
    }
  });

  it('the IPsec modules export plain data properties (no accessor: fast-mode exports objects)', () => {
    for (const [name, mod] of [['fastpath/ipsec', ipsecModule], ['esp-encrypt', encModule], ['esp-decrypt', decModule]] as [string, object][]) {
      for (const key of Object.getOwnPropertyNames(mod)) {
        const d = Object.getOwnPropertyDescriptor(mod, key) as PropertyDescriptor;
        assert.ok(d.get === undefined && d.set === undefined, `${name}: export ${key} is an accessor`);
      }
    }
    assert.strictEqual(ipsecModule.SA_STRIDE, ipsecModule.SA_CTR_STRIDE);
  });
});
