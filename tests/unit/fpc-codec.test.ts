// FPC codec: every object kind round-trips through protobuf, envelopes are checked, bad input is
// refused with a clear error code and text.
import { strict as assert } from 'assert';
import { decodeEnvelope, decodeObject, encodeEnvelope, encodeObject, FpcError, MsgType, ReportCode, schema, msgTypeFor, kindOf, validateObject } from '../../fpc/codec';
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
});
