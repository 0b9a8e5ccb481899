// netlink/codec.ts: framing, attributes, builder, NLMSG_ERROR/DONE, address and MAC text.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import {
  Attrs, canonicalAddr, decodeControl, DecodeError, encodeAttr, errnoName, formatIPv4, formatIPv6, formatMac,
  maskAddr, MessageBuilder, parseAddr, parseAttrs, parseHex, parseMac, parseMessages, Sequencer, tryParseAttrs,
} from '../../netlink/codec';
import * as C from '../../netlink/constants';

const FIX = path.resolve(__dirname, '../../../tests/fixtures/netlink');

interface Step { command: string; messages: { source: string; proto: string; hex: string }[] }
function steps(name: string): Step[] {
  return (JSON.parse(fs.readFileSync(path.join(FIX, `${name}.json`), 'utf8')) as { steps: Step[] }).steps;
}
function step(name: string, command: string): Step {
  const s = steps(name).find(x => x.command === command);
  if (!s) throw new Error(`fixture ${name}: no step ${command}`);
  return s;
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('netlink codec: message framing', () => {
  it('splits a real dump datagram into its messages (16-byte header, aligned lengths)', () => {
    const dump = step('links', 'dump RTM_GETLINK AF_UNSPEC');
    let total = 0;
    for (const d of dump.messages) {
      const buf = Buffer.from(d.hex, 'hex');
      const { msgs, errors } = parseMessages(buf, buf.length);
      assert.deepEqual(errors, []);
      for (const m of msgs) {
        assert.equal(m.payload.length, m.len - 16);
        assert.equal(m.payload.buffer, buf.buffer, 'payload is a view, not a copy');
        assert.ok(m.type === C.RTM_NEWLINK || m.type === C.NLMSG_DONE);
        assert.ok(m.flags & C.NLM_F_MULTI);
      }
      total += msgs.length;
    }
    assert.ok(total >= 7, `expected at least 6 links + DONE, got ${total}`);
  });

  it('accepts a Uint8Array and honours the length argument', () => {
    const hex = step('nsid', 'dump RTM_GETNSID AF_UNSPEC').messages.map(m => m.hex).join('');
    const all = new Uint8Array(Buffer.from(hex, 'hex'));
    const big = new Uint8Array(all.length + 100);
    big.set(all);
    const r = parseMessages(big, all.length);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.msgs.map(m => m.type), [C.RTM_NEWNSID, C.RTM_NEWNSID, C.NLMSG_DONE]);
    assert.deepEqual(parseMessages(big, 0), { msgs: [], errors: [] });
  });

  it('reports a truncated header, a bad nlmsg_len and a truncated datagram without throwing', () => {
    const m = new MessageBuilder(C.RTM_NEWLINK, 0, 7).fixed(Buffer.alloc(16)).str(C.IFLA_IFNAME, 'eth0').build();
    const two = Buffer.concat([m, m]);
    let r = parseMessages(two, two.length - 5);
    assert.equal(r.msgs.length, 1);
    assert.match(r.errors[0], /message type 16 at offset 44: nlmsg_len 44 exceeds the 39 bytes left/);
    r = parseMessages(two, m.length + 10);
    assert.equal(r.msgs.length, 1);
    assert.match(r.errors[0], /truncated netlink header at offset 44: 10 bytes left/);
    const bad = Buffer.from(m);
    bad.writeUInt32LE(8, 0);
    r = parseMessages(bad);
    assert.equal(r.msgs.length, 0);
    assert.match(r.errors[0], /invalid nlmsg_len 8/);
  });
});

describe('netlink codec: attributes', () => {
  it('builds and parses aligned TLVs, nested attributes and the NLA_F_NESTED flag', () => {
    const body = new MessageBuilder(0, 0, 0)
      .u8(1, 0xab).u16(2, 0x1234).u32(3, 0xdeadbeef).u64(4, 0x1122334455667788n).str(5, 'hello')
      .nested(6, n => n.u32(1, 42).str(2, 'x'))
      .addr(7, 6, '2001:db8::1')
      .body();
    assert.equal(body.length % 4, 0);
    const a = Attrs.parse(body);
    assert.equal(a.u8(1), 0xab);
    assert.equal(a.u16(2), 0x1234);
    assert.equal(a.u32(3), 0xdeadbeef);
    assert.equal(a.u64(4), 0x1122334455667788n);
    assert.equal(a.str(5), 'hello');
    assert.equal(a.get(6)!.nested, true);
    assert.equal(a.get(6)!.type, 6, 'NLA_F_NESTED is masked off the type');
    const n = a.nested(6)!;
    assert.equal(n.u32(1), 42);
    assert.equal(n.str(2), 'x');
    assert.equal(a.addr(7, 6), '2001:db8::1');
    assert.equal(a.u32(99), undefined);
  });

  it('tolerates up to 3 bytes of trailing padding, rejects short or overlong attributes', () => {
    const one = encodeAttr(1, Buffer.from([1, 2, 3, 4]));
    assert.equal(parseAttrs(Buffer.concat([one, Buffer.alloc(3)])).length, 1);
    const short = Buffer.from(one);
    short.writeUInt16LE(3, 0);
    assert.throws(() => parseAttrs(short, 20), (e: Error) => e instanceof DecodeError && /offset 20: invalid nla_len 3/.test(e.message));
    const overlong = Buffer.from(one);
    overlong.writeUInt16LE(200, 0);
    assert.throws(() => parseAttrs(overlong), /nla_len 200 exceeds the 8 bytes left/);
    assert.match(tryParseAttrs(overlong).error!, /exceeds/);
    // an attribute whose padding is missing at the very end is fine (nla_ok semantics)
    const unpadded = Buffer.from([5, 0, 9, 0, 0x7f]);
    assert.deepEqual(parseAttrs(unpadded).map(x => [x.type, x.data.length]), [[9, 1]]);
  });

  it('typed getters reject payloads shorter than the type', () => {
    const a = Attrs.parse(encodeAttr(4, Buffer.from([1, 2])), 28, { 4: 'RTA_OIF' });
    assert.throws(() => a.u32(4), /RTA_OIF \(4\) at offset 28: payload 2 bytes, expected 4/);
    assert.throws(() => a.addr(4, 4), /2-byte address for IPv4/);
    assert.equal(a.u16(4), 0x0201);
  });
});

describe('netlink codec: builder and sequence numbers', () => {
  it('writes the header (length, type, flags, seq, pid) and pads the fixed part', () => {
    const m = new MessageBuilder(C.RTM_GETNSID, C.NLM_F_REQUEST, 0x01020304, 99).fixed(Buffer.from([0])).u32(3, 5).build();
    assert.equal(m.toString('hex'), '1c0000005a00010004030201630000000000000008000300' + '05000000');
  });

  it('Sequencer counts up, wraps and skips 0', () => {
    const s = new Sequencer(0xfffffffe);
    assert.deepEqual([s.next(), s.next(), s.next()], [0xfffffffe, 0xffffffff, 1]);
  });
});

describe('netlink codec: NLMSG_ERROR / NLMSG_DONE (real kernel replies)', () => {
  const replies = (command: string) => step('errors', command).messages.flatMap(d => parseHex(d.hex).msgs);

  it('error 0 is an ACK carrying the request type and sequence number', () => {
    const [m] = replies('request RTM_NEWROUTE blackhole 203.0.113.0/24 (ack)');
    assert.deepEqual(decodeControl(m), { kind: 'ack', seq: m.seq, requestType: C.RTM_NEWROUTE });
  });

  it('a plain error carries errno and its name', () => {
    const [m] = replies('request RTM_NEWROUTE blackhole 203.0.113.0/24 again (EEXIST)');
    const r = decodeControl(m)!;
    assert.equal(r.kind, 'error');
    if (r.kind !== 'error') return;
    assert.equal(r.errno, 17);
    assert.equal(r.name, 'EEXIST');
    assert.equal(r.requestType, C.RTM_NEWROUTE);
    assert.match(r.text, /^EEXIST/);
  });

  it('an extended ack gives the kernel text (NLMSGERR_ATTR_MSG) and the bad attribute offset', () => {
    const [m] = replies('request RTM_GETNSID NETNSA_FD(12345, not open) (error)');
    assert.ok(m.flags & C.NLM_F_ACK_TLVS);
    const r = decodeControl(m)!;
    assert.deepEqual(r, {
      kind: 'error', errno: 9, name: 'EBADF', text: 'EBADF: Peer netns reference is invalid', seq: m.seq,
      requestType: C.RTM_GETNSID, extAck: 'Peer netns reference is invalid', badAttrOffset: 20,
    });
    const [x] = replies('request XFRM_MSG_NEWSA esp 10.1.0.1->10.2.0.1 spi 0x1234 (no ESP in this kernel)');
    const rx = decodeControl(x)!;
    assert.equal(rx.kind, 'error');
    if (rx.kind === 'error') {
      assert.equal(rx.name, 'EPROTONOSUPPORT');
      assert.equal(rx.requestType, C.XFRM_MSG_NEWSA);
      assert.ok(rx.extAck && rx.extAck.length > 0);
    }
  });

  it('decodes NLMSG_DONE (status, NLM_F_DUMP_INTR) and rejects a short NLMSG_ERROR', () => {
    const done = parseHex(step('nsid', 'dump RTM_GETNSID AF_UNSPEC').messages.map(m => m.hex).join('')).msgs.pop()!;
    assert.deepEqual(decodeControl(done), { kind: 'done', errno: 0, interrupted: false });
    const intr = new MessageBuilder(C.NLMSG_DONE, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR, 1).fixed(Buffer.from([0xfc, 0xff, 0xff, 0xff])).build();
    assert.deepEqual(decodeControl(parseMessages(intr).msgs[0]), { kind: 'done', errno: 4, interrupted: true });
    const short = new MessageBuilder(C.NLMSG_ERROR, 0, 1).fixed(Buffer.alloc(0)).build();
    const r = decodeControl(parseMessages(short).msgs[0])!;
    assert.equal(r.kind, 'malformed');
    assert.equal(decodeControl({ ...parseMessages(short).msgs[0], type: C.RTM_NEWLINK }), undefined);
    assert.equal(errnoName(2), 'ENOENT');
  });
});

describe('netlink codec: address and MAC text', () => {
  const v6 = (s: string) => formatIPv6(parseAddr(6, s));

  it('prints IPv6 canonically (lower case, longest zero run, first on ties, no single-group ::)', () => {
    assert.equal(v6('::'), '::');
    assert.equal(v6('::1'), '::1');
    assert.equal(v6('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(v6('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
    assert.equal(v6('2001:0:0:1:0:0:1:1'), '2001::1:0:0:1:1');
    assert.equal(v6('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(v6('fe80::'), 'fe80::');
    assert.equal(v6('1:0:0:0:0:0:0:0'), '1::');
    assert.equal(v6('::ffff:10.1.2.3'), '::ffff:10.1.2.3');
    assert.equal(v6('ff02::1:ff00:1'), 'ff02::1:ff00:1');
  });

  it('matches Node/libuv inet_ntop on 20000 random addresses biased towards zero groups', () => {
    const r = rng(1234);
    for (let i = 0; i < 20000; i++) {
      const b = Buffer.alloc(16);
      for (let g = 0; g < 8; g++) {
        const x = r();
        const w = x < 0.5 ? 0 : x < 0.6 ? 0xffff : x < 0.7 ? 1 : Math.floor(r() * 65536);
        b.writeUInt16BE(w, 2 * g);
      }
      const mine = formatIPv6(b);
      const groups = Array.from({ length: 8 }, (_, g) => b.readUInt16BE(2 * g).toString(16)).join(':');
      const node = new net.SocketAddress({ address: groups, family: 'ipv6' }).address;
      assert.equal(mine, node, `for ${groups}`);
      assert.equal(formatIPv6(parseAddr(6, mine)), mine, 'parse(format(x)) round trip');
    }
  });

  it('parses and canonicalises IPv4/IPv6 text, rejects garbage', () => {
    assert.equal(formatIPv4(parseAddr(4, '10.0.0.255')), '10.0.0.255');
    assert.equal(canonicalAddr(6, '2001:0db8:0000::0001'), '2001:db8::1');
    assert.deepEqual(parseAddr(4, ''), Buffer.alloc(4));
    for (const bad of ['1.2.3', '256.1.1.1', '1.2.3.4.5', 'a.b.c.d']) assert.throws(() => parseAddr(4, bad));
    for (const bad of ['1:2:3', ':::', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9']) assert.throws(() => parseAddr(6, bad));
  });

  it('masks host bits and formats MACs', () => {
    assert.equal(formatIPv4(maskAddr(parseAddr(4, '10.1.2.3'), 12)), '10.0.0.0');
    assert.equal(formatIPv4(maskAddr(parseAddr(4, '10.1.2.3'), 0)), '0.0.0.0');
    assert.equal(formatIPv4(maskAddr(parseAddr(4, '10.1.2.3'), 32)), '10.1.2.3');
    assert.equal(formatIPv6(maskAddr(parseAddr(6, '2001:db8:ffff::1'), 36)), '2001:db8:f000::');
    assert.equal(formatMac(Buffer.from([0x02, 0xab, 0, 0x0c, 0xff, 1])), '02:ab:00:0c:ff:01');
    assert.equal(formatMac(Buffer.alloc(0)), '');
    assert.deepEqual(parseMac('02:AB:00:0c:ff:01'), Buffer.from([0x02, 0xab, 0, 0x0c, 0xff, 1]));
  });
});
