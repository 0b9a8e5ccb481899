// fpsd (stats-daemon/): the pure parts — counter deltas, the NEWAE plan (lifetime and replay merge),
// the expiry decision, the options, and the XFRM request builders it adds (GETAE, user EXPIRE).
// The kernel-facing behaviour is proven inside user-mode Linux by tests/kernel/fpsd.test.ts.
import * as assert from 'assert';
import { ConfigError, parseConfig, type LfpConfig } from '../../lib/config';
import { parseMessages } from '../../netlink/codec';
import { NLM_F_ACK, NLM_F_REQUEST, XFRM_MSG_EXPIRE, XFRM_MSG_GETAE, XFRMA_MARK } from '../../netlink/constants';
import { decodeXfrm, expireRequest, getAe, type XfrmAe } from '../../netlink/xfrm';
import { fpsdOptions, saKey } from '../../stats-daemon/fpsd';
import { portRows } from '../../stats-daemon/snmp';
import { portStatsOf, PORT_STRIDE, DROP_BASE, dropReason, C_RX_PACKETS, C_TX_BYTES } from '../../shared-mem/stats';
import {
  counterDelta, expireAction, limitsOf, planChanges, planPush, sameCounters, ZERO_COUNTERS,
} from '../../stats-daemon/sa-push';

const INF = '18446744073709551615';

function ae(over: Partial<XfrmAe> = {}): XfrmAe {
  return {
    id: { daddr: '10.0.0.2', spi: 0x100, proto: 50, family: 4 }, saddr: '10.0.0.1', flags: 0, reqid: 1,
    lifetime: { bytes: '0', packets: '0', addTime: '1795229857', useTime: '0' },
    replay: { oseq: 0, seq: 0, bitmap: 0 },
    ...over,
  };
}

describe('fpsd: counter deltas', () => {
  it('is the growth of a monotonic counter', () => {
    assert.strictEqual(counterDelta(150, 100), 50);
    assert.strictEqual(counterDelta(100, 100), 0);
    assert.strictEqual(counterDelta(2 ** 52 + 10, 2 ** 52), 10);
  });
  it('takes a counter that went down (fast path restarted, slot reused) as new from 0', () => {
    assert.strictEqual(counterDelta(30, 100), 30);
    assert.strictEqual(counterDelta(0, 100), 0);
  });
  it('ignores garbage (NaN, negative, infinite)', () => {
    assert.strictEqual(counterDelta(NaN, 0), 0);
    assert.strictEqual(counterDelta(-5, 0), 0);
    assert.strictEqual(counterDelta(Infinity, 0), 0);
  });
  it('compares counter sets', () => {
    assert.ok(sameCounters(ZERO_COUNTERS, { packets: 0, bytes: 0, oseq: 0, iseq: 0 }));
    assert.ok(!sameCounters(ZERO_COUNTERS, { packets: 0, bytes: 0, oseq: 1, iseq: 0 }));
  });
});

describe('fpsd: NEWAE plan', () => {
  it('adds the fast-path delta to the kernel value (which holds the kernel\'s own traffic)', () => {
    const k = ae({ lifetime: { bytes: '1000', packets: '10', addTime: '1795229857', useTime: '1795229900' } });
    const p = planPush(k, { packets: 25, bytes: 2500, oseq: 0, iseq: 0 }, { packets: 5, bytes: 500, oseq: 0, iseq: 0 }, 1795230000);
    assert.deepStrictEqual(p.lifetime, { bytes: 3000n, packets: 30n, addTime: 1795229857n, useTime: 1795229900n });
    assert.ok(planChanges(k, p));
  });
  it('keeps the kernel\'s add_time and sets use_time at the first fast-path use', () => {
    const k = ae();
    const p = planPush(k, { packets: 1, bytes: 100, oseq: 1, iseq: 0 }, ZERO_COUNTERS, 1795230000.7);
    assert.strictEqual(p.lifetime.addTime, 1795229857n);
    assert.strictEqual(p.lifetime.useTime, 1795230000n);
    const idle = planPush(k, { packets: 0, bytes: 0, oseq: 0, iseq: 0 }, ZERO_COUNTERS, 1795230000);
    assert.strictEqual(idle.lifetime.useTime, 0n, 'no traffic, no use time');
  });
  it('legacy replay state: oseq / seq only move forward; a new inbound top marks the window as seen', () => {
    const k = ae({ replay: { oseq: 20, seq: 7, bitmap: 0x5 } });
    const out = planPush(k, { packets: 3, bytes: 3, oseq: 15, iseq: 0 }, ZERO_COUNTERS, 1);
    assert.deepStrictEqual(out.replay, { oseq: 20, seq: 7, bitmap: 0x5 }, 'kernel ahead: unchanged');
    const fwd = planPush(k, { packets: 3, bytes: 3, oseq: 30, iseq: 9 }, ZERO_COUNTERS, 1);
    assert.deepStrictEqual(fwd.replay, { oseq: 30, seq: 9, bitmap: 0xffffffff });
    assert.strictEqual(fwd.replayEsn, undefined);
  });
  it('ESN replay state: 64-bit sequence numbers split into hi / lo; bitmap length kept', () => {
    const k = ae({ replay: undefined, replayEsn: { oseq: 0, seq: 0, oseqHi: 0, seqHi: 0, replayWindow: 128, bmp: [0, 0, 0, 0] } });
    const p = planPush(k, { packets: 1, bytes: 1, oseq: 2 ** 32 + 5, iseq: 3 * 2 ** 32 + 9 }, ZERO_COUNTERS, 1);
    assert.deepStrictEqual(p.replayEsn, { oseq: 5, oseqHi: 1, seq: 9, seqHi: 3, replayWindow: 128, bmp: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff] });
    assert.strictEqual(p.replay, undefined);
    assert.deepStrictEqual(k.replayEsn!.bmp, [0, 0, 0, 0], 'the kernel answer is not modified');
  });
  it('plans no change when the kernel already has the values', () => {
    const k = ae({ lifetime: { bytes: '500', packets: '5', addTime: '1', useTime: '2' }, replay: { oseq: 5, seq: 0, bitmap: 0 } });
    const last = { packets: 5, bytes: 500, oseq: 5, iseq: 0 };
    assert.ok(!planChanges(k, planPush(k, last, last, 3)));
  });
});

describe('fpsd: expiry decision', () => {
  const lim = limitsOf({ softBytes: '5000', hardBytes: '10000', softPackets: INF, hardPackets: '100', softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 });
  it('nothing below the limits; soft at >= soft limit (the kernel\'s rule), once', () => {
    assert.strictEqual(expireAction(lim, 4999n, 1n, false, false), 'none');
    assert.strictEqual(expireAction(lim, 5000n, 1n, false, false), 'soft');
    assert.strictEqual(expireAction(lim, 6000n, 1n, true, false), 'none');
  });
  it('hard after soft (so the IKE daemon can rekey first), once', () => {
    assert.strictEqual(expireAction(lim, 20000n, 1n, false, false), 'soft');
    assert.strictEqual(expireAction(lim, 20000n, 1n, true, false), 'hard');
    assert.strictEqual(expireAction(lim, 20000n, 1n, true, true), 'none');
    assert.strictEqual(expireAction(lim, 1n, 100n, true, false), 'hard', 'packet limit');
  });
  it('infinite limits never expire', () => {
    const inf = limitsOf({ softBytes: INF, hardBytes: INF, softPackets: INF, hardPackets: INF, softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 });
    assert.strictEqual(expireAction(inf, 2n ** 62n, 2n ** 62n, false, false), 'none');
  });
});

describe('fpsd: options', () => {
  // through the config parser, which validates statsDaemon (fpsd takes the validated object)
  const cfg = (sd?: unknown): LfpConfig => parseConfig(JSON.stringify({ runDir: '/run/x', ...(sd === undefined ? {} : { statsDaemon: sd }) }));
  it('defaults (state file in runDir)', () => {
    const o = fpsdOptions(cfg());
    assert.deepStrictEqual({ ...o, snmp: undefined }, { periodMs: 1000, saCounters: true, expire: true, requestTimeoutMs: 2000, stateFile: '/run/x/fpsd.state', snmp: undefined });
  });
  it('reads the statsDaemon object and applies overrides', () => {
    const o = fpsdOptions(cfg({ periodMs: 250, expire: false, stateFile: '' }), { saCounters: false });
    assert.strictEqual(o.periodMs, 250); assert.strictEqual(o.expire, false); assert.strictEqual(o.stateFile, ''); assert.strictEqual(o.saCounters, false);
  });
  it('refuses wrong types and unknown keys, naming the key', () => {
    assert.throws(() => fpsdOptions(cfg({ periodMs: 0 })), (e: Error) => e instanceof ConfigError && /statsDaemon\.periodMs/.test(e.message));
    assert.throws(() => fpsdOptions(cfg({ expire: 'yes' })), /statsDaemon\.expire/);
    assert.throws(() => fpsdOptions(cfg({ stateFile: 'rel' })), /statsDaemon\.stateFile/);
    assert.throws(() => fpsdOptions(cfg({ bogus: 1 })), /unknown key "statsDaemon\.bogus"/);
    assert.throws(() => fpsdOptions(cfg([])), /must be an object/);
  });
  it('statsDaemon.snmp: defaults off; an object enables it; bad values refused', () => {
    assert.deepStrictEqual(fpsdOptions(cfg()).snmp, { enabled: false, master: '127.0.0.1', masterPort: 705, oid: '1.3.6.1.3.8765' });
    assert.deepStrictEqual(fpsdOptions(cfg({ snmp: { masterPort: 1705 } })).snmp, { enabled: true, master: '127.0.0.1', masterPort: 1705, oid: '1.3.6.1.3.8765' });
    assert.throws(() => fpsdOptions(cfg({ snmp: { oid: '1.3.x' } })), /statsDaemon\.snmp\.oid/);
    assert.throws(() => fpsdOptions(cfg({ snmp: { masterPort: 0 } })), /statsDaemon\.snmp\.masterPort/);
    assert.throws(() => fpsdOptions(cfg({ snmp: { foo: 1 } })), /unknown key "statsDaemon\.snmp\.foo"/);
  });
  it('SNMP rows: one per port, index = port + 1, name, counters (drops summed), garbage as 0', () => {
    const a = new Float64Array(2 * PORT_STRIDE);
    a[C_RX_PACKETS] = NaN; a[DROP_BASE + dropReason('runt')] = 2; a[DROP_BASE + dropReason('tx-full')] = 3;
    a[PORT_STRIDE + C_TX_BYTES] = 7.9;
    const rows = portRows([portStatsOf(a, 0), portStatsOf(a, PORT_STRIDE)], ['eth1']);
    assert.deepStrictEqual(rows[0], [1, 'eth1', 0, 0, 0, 0, 0, 0, 0, 5]);
    assert.deepStrictEqual(rows[1], [2, 'port1', 0, 0, 0, 7, 0, 0, 0, 0]);
  });
  it('SA keys are vrf/daddr/spi/proto', () => {
    assert.strictEqual(saKey({ vrf: 3, daddr: '2001:db8::1', spi: 0xffffffff, proto: 50 }), '3/2001:db8::1/4294967295/50');
  });
});

describe('fpsd: XFRM request builders (netlink/xfrm.ts)', () => {
  it('GETAE: xfrm_aevent_id of the SA, request without ack, mark attribute', () => {
    const b = getAe({ daddr: '10.0.0.2', spi: 0x1234, proto: 50, family: 4, saddr: '10.0.0.1', reqid: 7, mark: { value: 0x10, mask: 0xff } }, 42);
    const { msgs, errors } = parseMessages(b);
    assert.deepStrictEqual(errors, []);
    assert.strictEqual(msgs.length, 1);
    const m = msgs[0];
    assert.strictEqual(m.type, XFRM_MSG_GETAE);
    assert.strictEqual(m.flags, NLM_F_REQUEST);
    assert.strictEqual(m.seq, 42);
    const p = Buffer.from(m.payload);
    assert.strictEqual(p.readUInt32BE(0), 0x0a000002);
    assert.strictEqual(p.readUInt32BE(16), 0x1234);
    assert.strictEqual(p.readUInt16LE(20), 2); // AF_INET
    assert.strictEqual(p.readUInt8(22), 50);
    assert.strictEqual(p.readUInt32BE(24), 0x0a000001);
    assert.strictEqual(p.readUInt32LE(44), 7);
    assert.strictEqual(p.readUInt16LE(48 + 2), XFRMA_MARK);
    assert.strictEqual(p.readUInt32LE(48 + 4), 0x10);
    assert.strictEqual(p.readUInt32LE(48 + 8), 0xff);
  });
  it('user EXPIRE: decodes back as the same SA id with hard flag; IPv6', () => {
    for (const hard of [false, true]) {
      const b = expireRequest({ daddr: '2001:db8::2', spi: 0xc0ffee, proto: 50, family: 6, saddr: '2001:db8::1', reqid: 3 }, hard, 9);
      const m = parseMessages(b).msgs[0];
      assert.strictEqual(m.type, XFRM_MSG_EXPIRE);
      assert.strictEqual(m.flags, NLM_F_REQUEST | NLM_F_ACK);
      assert.strictEqual(m.len, 16 + 232);
      const r = decodeXfrm(m, 0);
      assert.strictEqual(r.kind, 'expire');
      if (r.kind !== 'expire') return;
      assert.strictEqual(r.hard, hard);
      assert.strictEqual(r.sa.daddr, '2001:db8::2');
      assert.strictEqual(r.sa.saddr, '2001:db8::1');
      assert.strictEqual(r.sa.spi, 0xc0ffee);
      assert.strictEqual(r.sa.family, 6);
      assert.strictEqual(r.sa.reqid, 3);
    }
  });
});
