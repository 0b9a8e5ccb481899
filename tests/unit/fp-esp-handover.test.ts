// IPsec ESP inbound shortcuts of the lookup path (docs: fastpath/README.md, IPsec):
//   - esp-decrypt hands the FIB answer for a decrypted packet's inner IPv4 destination (which it resolves to tell
//     whether the packet is for this host) to ipv4-lookup (aux AUX_FIB | ticket, FibResolver.keep4 / reuse4): a
//     ticket is good once, for the packet it was kept for, and only while the shared memory did not change;
//   - ipv4-lookup resolves the outer destination of the ESP packets of a vector once per (VRF, destination);
//   - esp-encrypt numbers the later packets of an SA in a vector with IpsecState.nextSeqAgain (the kernel's floor
//     checked once per SA per vector) and writes the stats block's oseq once (syncSeq).

import * as assert from 'assert';
import type { AnyObject } from '../../lib/model';
import { FOUND, FibResolver, HANDOVER_SLOTS } from '../../fastpath/fib';
import { AUX_TICKET } from '../../fastpath/nodes/esp-encrypt';
import { route4 } from '../../shared-mem/test-fixtures';
import { SA_C_OSEQ, SA_STRIDE } from '../../shared-mem/stats';
import { udp4Frame } from './fp-helpers';
import * as nativeCrypto from '../../native/crypto';
import { GCM_IN, espFrame, innerUdp, makeEspWorld } from './fp-esp.test';

const LOCAL = '10.0.1.254';
const A = (s: string): number => s.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);

describe('fast path IPsec ESP: FIB answers handed from esp-decrypt to ipv4-lookup', function () {
  before(function () { if (!nativeCrypto.available()) this.skip(); });

  it('FibResolver.keep4 / reuse4: once, for the same packet, in the same shm generation; a ring of HANDOVER_SLOTS', () => {
    const W = makeEspWorld();
    try {
      assert.strictEqual(AUX_TICKET, HANDOVER_SLOTS - 1);
      const fib = new FibResolver(W.r);
      fib.beginVector();
      assert.strictEqual(fib.resolve4(0, A('10.99.1.2')), FOUND);
      const value = fib.value, type = fib.type;
      const t = fib.keep4(5000);
      assert.strictEqual(fib.resolve4(0, A(LOCAL)), FOUND); // another answer meanwhile
      assert.notStrictEqual(fib.value, value);
      fib.beginVector(); // a later vector, nothing written
      assert.ok(!fib.reuse4(t, 6000), 'another packet');
      assert.ok(fib.reuse4(t, 5000));
      assert.strictEqual(fib.value, value);
      assert.strictEqual(fib.type, type);
      assert.ok(!fib.reuse4(t, 5000), 'used once');
      // a write to the shared memory (any: here a route elsewhere) between keep and reuse: resolved again
      fib.resolve4(0, A('10.99.1.2'));
      const t2 = fib.keep4(5000);
      W.w.upsert({ kind: 'route', obj: route4('10.77.0.0', 16, '10.0.2.1', { nexthops: [{ gw: '10.0.2.1', ifindex: 3, weight: 1, flags: 0 }] }) } as AnyObject);
      fib.beginVector();
      assert.ok(!fib.reuse4(t2, 5000), 'shm changed');
      // the ring: a ticket overwritten by HANDOVER_SLOTS later keeps is refused (another packet's offset)
      fib.resolve4(0, A('10.99.1.2'));
      const t3 = fib.keep4(7000);
      for (let k = 0; k < HANDOVER_SLOTS; k++) fib.keep4(8000 + k);
      assert.ok(!fib.reuse4(t3, 7000), 'overwritten');
    } finally {
      W.g.close();
    }
  });

  it('one vector: ESP to the local address and transit ESP mixed; inner packets routed, for this host, or without route', () => {
    const W = makeEspWorld();
    try {
      const frames = [
        espFrame(GCM_IN, 1, innerUdp('10.99.1.2', '10.0.1.5', [1])),
        espFrame(GCM_IN, 2, innerUdp('10.99.1.2', LOCAL, [2])), // for this host: to Linux as received
        espFrame(GCM_IN, 7, innerUdp('10.99.1.2', '10.0.1.5', [3]), { dst: '10.0.1.5' }), // transit ESP: forwarded as it is
        espFrame(GCM_IN, 3, innerUdp('10.99.1.2', '10.0.1.5', [4])),
        espFrame(GCM_IN, 4, innerUdp('10.99.1.2', '10.0.1.5', [5])),
      ];
      const fast0 = W.g.fib.fast;
      W.run(frames.map((frame) => ({ port: 1, frame })));
      // resolved: the outer destination once per (VRF, destination) (2), each inner destination once, by
      // esp-decrypt (4); ipv4-lookup took esp-decrypt's answers for the 3 routed inner packets
      assert.strictEqual(W.g.fib.fast - fast0, 6, 'FIB resolutions');
      const out = W.io.sent[0];
      const udp = out.filter((f) => f[14 + 9] === 17).map((f) => f[14 + 28]);
      const esp = out.filter((f) => f[14 + 9] === 50);
      assert.deepStrictEqual(udp, [1, 4, 5], 'inner packets routed to 10.0.1.5, in order');
      assert.strictEqual(esp.length, 1, 'the transit ESP packet');
      assert.strictEqual(W.g.portStats(1).exceptions['ipsec-local'], 1);
      W.io.clearCaptured();
      // the next vector after a route change: the inner destination's new route counts (no answer outlives it)
      W.w.upsert({ kind: 'route', obj: route4('10.0.1.5', 32, undefined, { type: 'blackhole', nexthops: [] }) } as AnyObject);
      W.run([5, 6].map((sn) => ({ port: 1, frame: espFrame(GCM_IN, sn, innerUdp('10.99.1.2', '10.0.1.5', [sn])) })));
      assert.strictEqual(W.io.sent[0].length, 0);
      assert.strictEqual(W.g.portStats(1).drops.blackhole, 2);
    } finally {
      W.g.close();
    }
  });

  it('outbound: two SAs interleaved in a vector (and a second vector): consecutive SNs per SA, oseq of each SA', () => {
    const W = makeEspWorld();
    try {
      const be32 = (f: Uint8Array, o: number): number => ((f[o] << 24) | (f[o + 1] << 16) | (f[o + 2] << 8) | f[o + 3]) >>> 0;
      const plan = [99, 99, 98, 99, 98, 98, 99, 98]; // 10.99/16: SA 0x1001 (GCM), 10.98/16: SA 0x1002 (CBC)
      const send = (): void => W.run(plan.map((n, k) => ({ port: 0, frame: udp4Frame(0, `10.${n}.0.${k + 1}`, {}, 1000 + k) })));
      send();
      send();
      const got = W.io.sent[1].map((f) => [be32(f, 14 + 20), be32(f, 14 + 24)]);
      const want: number[][] = [];
      const next = new Map<number, number>([[0x1001, 1], [0x1002, 1]]);
      for (let r = 0; r < 2; r++) for (const n of plan) { const spi = n === 99 ? 0x1001 : 0x1002; want.push([spi, next.get(spi)!]); next.set(spi, next.get(spi)! + 1); }
      assert.deepStrictEqual(got, want);
      const ips = W.g.ipsec!;
      for (const spi of [0x1001, 0x1002]) {
        let i = -1;
        for (let k = 0; k < ips.saSpi.length; k++) if (ips.saState[k] === 1 && ips.saSpi[k] === spi) i = k;
        assert.ok(i >= 0);
        assert.strictEqual(ips.saCounters[i * SA_STRIDE + SA_C_OSEQ], 8, `oseq of SA ${spi.toString(16)}`);
      }
      W.io.clearCaptured();
    } finally {
      W.g.close();
    }
  });
});
