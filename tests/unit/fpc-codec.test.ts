// FPC codec: every object kind round-trips through protobuf, envelopes are checked, bad input is
// refused with a clear error code and text.
import { strict as assert } from 'assert';
import { BatchWriter, isPlainOk, decodeEnvelope, decodeObject, encodeEnvelope, encodeObject, forEachInBatch, FpcError, isBatchFrame, MsgType, ReportCode, schema, msgTypeFor, kindOf, validateObject } from '../../fpc/codec';
import type { Route } from '../../lib/model';
import type { AnyObject } from '../../lib/model';
import { SAMPLE_OBJECTS } from './fpc-samples';

describe('FPC codec', () => {
  it('round-trips every object kind (model -> protobuf -> model)', () => {
    for (const o of SAMPLE_OBJECTS) {
      const back = decodeObject(o.kind, encodeObject(o));
      assert.deepEqual(back, o, `${o.kind} round trip`);
    }
  });

  it('maps kinds to message types and back', () => {
    for (const o of SAMPLE_OBJECTS) {
      for (const del of [false, true]) {
        const t = msgTypeFor(o.kind, del);
        assert.deepEqual(kindOf(t), { kind: o.kind, del });
      }
    }
  });

  it('carries type, seq, report and length in every envelope', () => {
    const body = encodeObject(SAMPLE_OBJECTS[0]);
    const env = decodeEnvelope(encodeEnvelope(MsgType.VRF_ADD, 42, body));
    assert.equal(env.type, MsgType.VRF_ADD);
    assert.equal(env.seq, 42);
    assert.equal(env.report, null);
    assert.deepEqual(Buffer.from(env.body), Buffer.from(body));
    const rep = decodeEnvelope(encodeEnvelope(MsgType.ROUTE_ADD, 43, undefined, { code: ReportCode.E_NOSPACE, text: 'full' }));
    assert.deepEqual(rep.report, { code: ReportCode.E_NOSPACE, text: 'full' });
  });

  it('refuses malformed envelopes with E_MALFORMED and a text', () => {
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.from([0x0f, 0x01]), /undecodable envelope/],
      [schema.Envelope.encode(schema.Envelope.fromObject({ type: 1, seq: 1, length: 5, body: Buffer.from([1]) })).finish(), /length field 5 but body has 1 bytes/],
      [schema.Envelope.encode(schema.Envelope.fromObject({ type: 999, seq: 1 })).finish(), /unknown message type 999/],
      [new Uint8Array(0), /unknown message type 0/],
    ];
    for (const [buf, re] of cases) {
      assert.throws(() => decodeEnvelope(buf), (e: unknown) => e instanceof FpcError && e.code === ReportCode.E_MALFORMED && re.test(e.message));
    }
  });

  it('refuses semantically invalid objects with E_INVALID', () => {
    const route = SAMPLE_OBJECTS.find((o) => o.kind === 'route')!;
    const bad: AnyObject[] = [
      { kind: 'route', obj: { ...(route.obj as object), dst: '999.1.1.1' } } as AnyObject,
      { kind: 'route', obj: { ...(route.obj as object), plen: 33 } } as AnyObject,
      { kind: 'neighbour', obj: { vrf: 0, ifindex: 2, family: 4, addr: '10.0.0.1', lladdr: 'zz:zz', state: 2, flags: 0 } },
      { kind: 'link', obj: { vrf: 0, ifindex: 0, name: 'x', kind: '', mac: '', mtu: 1500, flags: 0, adminUp: true, operUp: true, master: 0, link: 0, port: -1 } },
    ];
    for (const o of bad) {
      assert.ok(validateObject(o), `${o.kind} must be refused`);
      assert.throws(() => decodeObject(o.kind, encodeObject(o)), (e: unknown) => e instanceof FpcError && e.code === ReportCode.E_INVALID);
    }
  });

  it('never throws anything but FpcError on random bodies', () => {
    let seed = 7;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    for (let i = 0; i < 5000; i++) {
      const buf = Uint8Array.from({ length: rnd() % 64 }, () => rnd() & 255);
      for (const k of ['route', 'sa', 'policy', 'link'] as const) {
        try { decodeObject(k, buf); } catch (e) { assert.ok(e instanceof FpcError, String(e)); }
      }
      try { decodeEnvelope(buf); } catch (e) { assert.ok(e instanceof FpcError, String(e)); }
    }
  });

  const ROUTES: Route[] = [
    { vrf: 0, table: 254, family: 4, dst: '11.0.1.0', plen: 24, tos: 0, priority: 0, type: 'unicast', protocol: 3, scope: 0, nexthops: [{ gw: '10.0.0.2', ifindex: 2, weight: 1, flags: 0 }] },
    { vrf: 255, table: 4294967295, family: 6, dst: '2001:db8::', plen: 64, tos: 255, priority: 4294967295, type: 'unicast', protocol: 186, scope: 253, prefsrc: '2001:db8::1', mtu: 0,
      nexthops: [{ gw: 'fe80::1', ifindex: 7, weight: 256, flags: 4 }, { ifindex: 9, weight: 3, flags: 0 }] },
    { vrf: 3, table: 100, family: 4, dst: '0.0.0.0', plen: 0, tos: 0, priority: 10, type: 'blackhole', protocol: 4, scope: 0, mtu: 1400, nexthops: [] },
    { vrf: 1, table: 1, family: 4, dst: '10.0.0.0', plen: 8, tos: 0, priority: 0, type: 'unicast', protocol: 0, scope: 0, nexthops: [{ gw: 'ü'.repeat(80), ifindex: 1, weight: 1, flags: 0 }] },
  ];

  it('encodes route bodies by hand exactly as protobufjs reads them, and decodes them back', () => {
    for (const r of ROUTES) {
      const body = encodeObject({ kind: 'route', obj: r });
      const pb = schema.route.toObject(schema.route.decode(body), { longs: Number, enums: Number, defaults: true, arrays: true });
      assert.deepEqual(pb, r, 'protobufjs view of the hand-encoded route');
      const pbBody = schema.route.encode(schema.route.fromObject(r)).finish();
      const o = { kind: 'route' as const, obj: r };
      if (!validateObject(o)) {
        assert.deepEqual(decodeObject('route', pbBody), o, 'hand decoder on protobufjs bytes');
        assert.deepEqual(decodeObject('route', body), o, 'hand round trip');
      }
    }
  });

  it('recognises plain OK replies without decoding them, and nothing else', () => {
    assert.ok(isPlainOk(encodeEnvelope(MsgType.ROUTE_ADD, 7, undefined, { code: ReportCode.OK })));
    assert.ok(isPlainOk(encodeEnvelope(MsgType.SYNC_END, 0xffffffff, undefined, { code: ReportCode.OK })));
    const bw = new BatchWriter();
    bw.add(MsgType.NEIGH_DEL, 300000, undefined, ReportCode.OK);
    let inBatch = false;
    forEachInBatch(bw.finish(), (e) => { inBatch = isPlainOk(e); });
    assert.ok(inBatch);
    for (const f of [
      encodeEnvelope(MsgType.HELLO, 1, undefined, { code: ReportCode.OK }),
      encodeEnvelope(MsgType.RESYNC_REQUEST, 0, undefined, { code: ReportCode.OK }),
      encodeEnvelope(MsgType.ROUTE_ADD, 7, undefined, { code: ReportCode.E_INVALID, text: 'x' }),
      encodeEnvelope(MsgType.ROUTE_ADD, 7, undefined, { code: ReportCode.OK, text: 'note' }),
      encodeEnvelope(MsgType.ROUTE_ADD, 7, Buffer.from([1]), { code: ReportCode.OK }),
      encodeEnvelope(MsgType.ROUTE_ADD, 7),
      Uint8Array.from([0x08, 0x10, 0x10, 0x01, 0x1a, 0x02, 0x08]),
      new Uint8Array(0),
    ]) assert.equal(isPlainOk(f), false, Buffer.from(f).toString('hex'));
    let seed = 3;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    for (let i = 0; i < 5000; i++) {
      const buf = Uint8Array.from({ length: rnd() % 16 }, () => rnd() & 255);
      if (isPlainOk(buf)) {
        const env = decodeEnvelope(buf);
        assert.deepEqual([env.report, env.body.length], [{ code: ReportCode.OK, text: '' }, 0]);
      }
    }
  });

  it('carries many envelopes in one Batch frame, in order', () => {
    const bw = new BatchWriter();
    bw.add(MsgType.SYNC_BEGIN, 1);
    for (let i = 0; i < ROUTES.length; i++) bw.addObject(MsgType.ROUTE_ADD, 2 + i, { kind: 'route', obj: ROUTES[i] });
    bw.add(MsgType.ROUTE_DEL, 100, undefined, ReportCode.E_INVALID, 'bad \u00e9');
    const f = bw.finish();
    assert.ok(isBatchFrame(f));
    assert.ok(!isBatchFrame(encodeEnvelope(MsgType.ROUTE_ADD, 1, encodeObject({ kind: 'route', obj: ROUTES[0] }))));
    const got: ReturnType<typeof decodeEnvelope>[] = [];
    assert.equal(forEachInBatch(f, (e) => got.push(decodeEnvelope(e))), null);
    assert.equal(got.length, ROUTES.length + 2);
    assert.equal(got[0].type, MsgType.SYNC_BEGIN);
    for (let i = 0; i < ROUTES.length; i++) {
      assert.equal(got[1 + i].seq, 2 + i);
      assert.deepEqual(Buffer.from(got[1 + i].body), Buffer.from(encodeObject({ kind: 'route', obj: ROUTES[i] })));
    }
    assert.deepEqual(got[got.length - 1].report, { code: ReportCode.E_INVALID, text: 'bad \u00e9' });
    // protobufjs reads the frame as a Batch message too
    const pb = root_batch().decode(f) as unknown as { envelopes: Uint8Array[] };
    assert.equal(pb.envelopes.length, ROUTES.length + 2);
    // a cut frame delivers what is whole and says where it broke
    const cut: unknown[] = [];
    assert.match(forEachInBatch(f.subarray(0, f.length - 3), (e) => cut.push(e)) ?? '', /runs past the end/);
    assert.equal(cut.length, ROUTES.length + 1);
    assert.match(forEachInBatch(Uint8Array.from([0x82, 0x01, 0xff]), () => undefined) ?? '', /bad length/);
  });
});

function root_batch() {
  return (schema.Envelope.root as unknown as { lookupType(n: string): typeof schema.Envelope }).lookupType('lfp.fpc.Batch');
}
