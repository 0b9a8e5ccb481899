// Robustness: mutated real kernel messages (truncation, bit flips, corrupted lengths, inserted and
// deleted bytes, garbage attributes and nested garbage) must never make the decoders throw, and
// every result must be one of the documented kinds. Seeded, reproducible (LFP_FUZZ_SEED,
// LFP_FUZZ_ITERATIONS to change).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { decodeControl, encodeAttr, parseAttrs, parseMessages, tryParseAttrs } from '../../netlink/codec';
import * as C from '../../netlink/constants';
import { decodeRtnl } from '../../netlink/rtnl';
import { decodeXfrm, encodeExpire, encodePolicy, encodePolicyDelNotification, encodeSa, encodeSaDelNotification, newAe } from '../../netlink/xfrm';
import type { XfrmSa } from '../../lib/model';

const ROOT = path.resolve(__dirname, '../../..');
const SEED = Number(process.env.LFP_FUZZ_SEED ?? 0x5eed1f9);
const ITER = Number(process.env.LFP_FUZZ_ITERATIONS ?? 25000);

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

interface Sample { what: string; buf: Buffer }

function corpus(): Sample[] {
  const out: Sample[] = [];
  const nlDir = path.join(ROOT, 'tests/fixtures/netlink');
  for (const f of fs.readdirSync(nlDir).filter(x => x.endsWith('.json'))) {
    const fx = JSON.parse(fs.readFileSync(path.join(nlDir, f), 'utf8')) as { steps: { command: string; messages: { hex: string }[] }[] };
    for (const s of fx.steps) for (const m of s.messages) out.push({ what: `${f}: ${s.command}`, buf: Buffer.from(m.hex, 'hex') });
  }
  const xDir = path.join(ROOT, 'tests/fixtures/xfrm');
  if (fs.existsSync(xDir)) {
    for (const f of fs.readdirSync(xDir).filter(x => x.endsWith('.json'))) {
      const fx = JSON.parse(fs.readFileSync(path.join(xDir, f), 'utf8')) as { messages?: { hex: string }[]; requests?: { hex: string }[] };
      for (const m of [...(fx.messages ?? []), ...(fx.requests ?? [])]) out.push({ what: `xfrm/${f}`, buf: Buffer.from(m.hex, 'hex') });
    }
  }
  const sa: XfrmSa = {
    vrf: 0, daddr: '2001:db8::2', spi: 0x1234, proto: 50, family: 6, saddr: '2001:db8::1', mode: 'tunnel', reqid: 3,
    flags: C.XFRM_STATE_ESN, replayWindow: 256, esn: true,
    selector: { family: 6, saddr: '::', daddr: '::', splen: 0, dplen: 0, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 },
    enc: { name: 'cbc(aes)', key: '00'.repeat(16) }, auth: { name: 'hmac(sha256)', key: '11'.repeat(32), truncBits: 128 },
    encap: { type: 2, sport: 4500, dport: 4500, oa: '2001:db8::9' }, mark: { value: 1, mask: 2 }, ifId: 4,
    lifetime: { softBytes: '1', hardBytes: '2', softPackets: '3', hardPackets: '4', softAddSeconds: 5, hardAddSeconds: 6, softUseSeconds: 7, hardUseSeconds: 8 },
  };
  const pol = {
    vrf: 0, index: 8, dir: 'out' as const, priority: 1, action: 'allow' as const, flags: 0, selector: { ...sa.selector, family: 4 as const, saddr: '10.0.0.0', daddr: '10.1.0.0' },
    ifId: 2, mark: { value: 3, mask: 4 },
    tmpls: [{ family: 4 as const, daddr: '10.0.0.2', saddr: '10.0.0.1', spi: 0, proto: 50, mode: 'tunnel' as const, reqid: 1, optional: false, share: 0, aalgos: 0, ealgos: 0, calgos: 0 }],
  };
  out.push({ what: 'encodeSa', buf: encodeSa(sa) });
  out.push({ what: 'encodeSaDelNotification', buf: encodeSaDelNotification(sa) });
  out.push({ what: 'encodeExpire', buf: encodeExpire(sa, false) });
  out.push({ what: 'encodePolicy', buf: encodePolicy(pol) });
  out.push({ what: 'encodePolicyDelNotification', buf: encodePolicyDelNotification(pol) });
  out.push({
    what: 'newAe', buf: newAe({
      daddr: '10.0.0.1', spi: 1, proto: 50, family: 4, lifetime: { bytes: 1, packets: 2, addTime: 3, useTime: 4 },
      replayEsn: { oseq: 1, seq: 2, oseqHi: 3, seqHi: 4, replayWindow: 64, bmp: [1, 2] },
    }, 1),
  });
  return out;
}

const RTNL_KINDS = new Set(['link', 'address', 'route', 'rule', 'neighbour', 'nsid', 'done', 'ack', 'error', 'ignored', 'malformed']);
const XFRM_KINDS = new Set(['sa', 'policy', 'expire', 'polexpire', 'acquire', 'flush', 'ae', 'done', 'ack', 'error', 'ignored', 'malformed']);

/** Decode everything in `buf` with both decoders; throws (failing the test) on any escape. */
function exercise(buf: Buffer, len: number, stats: Record<string, number>, what: string): void {
  let parsed;
  try {
    parsed = parseMessages(buf, len);
  } catch (e) {
    throw new Error(`parseMessages threw on ${what}: ${(e as Error).stack}\nhex=${buf.toString('hex')}`);
  }
  for (const msg of parsed.msgs) {
    for (const [name, fn, kinds] of [['rtnl', decodeRtnl, RTNL_KINDS], ['xfrm', decodeXfrm, XFRM_KINDS]] as const) {
      let r;
      try {
        r = fn(msg, 1);
        JSON.stringify(r);
      } catch (e) {
        throw new Error(`decode${name} threw on ${what}: ${(e as Error).stack}\nhex=${buf.toString('hex')}`);
      }
      assert.ok(kinds.has(r.kind), `${name}: unexpected kind ${r.kind}`);
      stats[`${name}:${r.kind}`] = (stats[`${name}:${r.kind}`] ?? 0) + 1;
      if (r.kind === 'malformed') {
        assert.ok(r.text.length > 0);
        assert.match(r.text, /at offset \d+/, r.text);
        assert.doesNotMatch(r.text, /internal decoder error/, `${what}: ${r.text}\nhex=${buf.toString('hex')}`);
      }
    }
    decodeControl(msg);
  }
}

/** Message boundaries inside a datagram (offset, nlmsg_len) without validation. */
function frames(buf: Buffer): [number, number][] {
  const out: [number, number][] = [];
  let off = 0;
  while (buf.length - off >= 16) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || len > buf.length - off) break;
    out.push([off, len]);
    off += (len + 3) & ~3;
  }
  return out;
}

/** Replace message `i` of the datagram by `body` (header kept, nlmsg_len rewritten). */
function replaceMsg(buf: Buffer, [off, len]: [number, number], body: Buffer): Buffer {
  const hdr = Buffer.from(buf.subarray(off, off + 16));
  hdr.writeUInt32LE(16 + body.length, 0);
  return Buffer.concat([buf.subarray(0, off), hdr, body, Buffer.alloc((4 - (body.length % 4)) % 4), buf.subarray(off + ((len + 3) & ~3))]);
}

describe('netlink fuzz: mutated fixtures never crash the decoders', function () {
  this.timeout(120000);
  const samples = corpus();
  const rnd = rng(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(a: T[]): T => a[int(a.length)];

  it(`corpus is big enough (${samples.length} datagrams; seed ${SEED})`, () => {
    assert.ok(samples.length > 300);
    const stats: Record<string, number> = {};
    for (const s of samples) exercise(s.buf, s.buf.length, stats, s.what);
    assert.ok((stats['rtnl:route'] ?? 0) > 50 && (stats['xfrm:sa'] ?? 0) + (stats['xfrm:policy'] ?? 0) > 10, JSON.stringify(stats));
  });

  const mutations: [string, (b: Buffer) => { buf: Buffer; len: number }][] = [
    ['truncate the datagram (recv length)', b => ({ buf: b, len: int(b.length + 1) })],
    ['truncate one message consistently (nlmsg_len rewritten)', b => {
      const f = frames(b);
      if (!f.length) return { buf: b, len: b.length };
      const fr = pick(f);
      const body = b.subarray(fr[0] + 16, fr[0] + fr[1]);
      const nb = replaceMsg(b, fr, Buffer.from(body.subarray(0, int(body.length + 1))));
      return { buf: nb, len: nb.length };
    }],
    ['flip 1-8 random bits', b => {
      const nb = Buffer.from(b);
      for (let i = int(8) + 1; i > 0 && nb.length; i--) nb[int(nb.length)] ^= 1 << int(8);
      return { buf: nb, len: nb.length };
    }],
    ['flip bits in the payload only (headers stay valid)', b => {
      const nb = Buffer.from(b);
      const f = frames(nb);
      if (!f.length) return { buf: nb, len: nb.length };
      const [off, len] = pick(f);
      if (len > 16) for (let i = int(4) + 1; i > 0; i--) nb[off + 16 + int(len - 16)] ^= 1 << int(8);
      return { buf: nb, len: nb.length };
    }],
    ['overwrite a random aligned u16 (nla_len / nla_type / rtnh_len)', b => {
      const nb = Buffer.from(b);
      if (nb.length >= 2) {
        const at = int(nb.length >> 1) << 1;
        const v = pick([0, 1, 3, 4, 5, 8, 0xffff, 0x8000, int(0x10000), (nb.readUInt16LE(at) + pick([-1, 1, 4, -4])) & 0xffff]);
        nb.writeUInt16LE(v, Math.min(at, nb.length - 2));
      }
      return { buf: nb, len: nb.length };
    }],
    ['insert or delete bytes inside a message', b => {
      const f = frames(b);
      if (!f.length) return { buf: b, len: b.length };
      const fr = pick(f);
      const body = Buffer.from(b.subarray(fr[0] + 16, fr[0] + fr[1]));
      const at = int(body.length + 1);
      const nbody = rnd() < 0.5
        ? Buffer.concat([body.subarray(0, at), Buffer.from(Array.from({ length: int(9) + 1 }, () => int(256))), body.subarray(at)])
        : Buffer.concat([body.subarray(0, at), body.subarray(Math.min(body.length, at + int(9) + 1))]);
      const nb = replaceMsg(b, fr, nbody);
      return { buf: nb, len: nb.length };
    }],
    ['append garbage attributes, nested garbage for nested types', b => {
      const f = frames(b);
      if (!f.length) return { buf: b, len: b.length };
      const fr = pick(f);
      const body = b.subarray(fr[0] + 16, fr[0] + fr[1]);
      const garbage = Buffer.from(Array.from({ length: int(40) }, () => int(256)));
      const type = pick([C.IFLA_LINKINFO, C.RTA_METRICS, C.RTA_MULTIPATH, C.XFRMA_TMPL, C.XFRMA_SA, C.XFRMA_POLICY,
        C.XFRMA_ALG_AEAD, C.XFRMA_REPLAY_ESN_VAL, C.FRA_SPORT_RANGE, C.NDA_DST, C.RTA_VIA, int(0x10000)]);
      const attr = encodeAttr(type | (rnd() < 0.5 ? C.NLA_F_NESTED : 0), garbage);
      const nb = replaceMsg(b, fr, Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4), attr]));
      return { buf: nb, len: nb.length };
    }],
    ['change the message type (decode with the wrong layout)', b => {
      const nb = Buffer.from(b);
      const f = frames(nb);
      if (f.length) nb.writeUInt16LE(pick([1, 2, 3, 4, 16, 17, 20, 21, 24, 25, 28, 29, 32, 33, 88, 89, 0x10, 0x11, 0x13, 0x14, 0x17, 0x18, 0x1b, 0x1c, 0x1e, int(0x10000)]), pick(f)[0] + 4);
      return { buf: nb, len: nb.length };
    }],
    ['pure random bytes with a plausible header', () => {
      const body = Buffer.from(Array.from({ length: int(300) }, () => int(256)));
      const hdr = Buffer.alloc(16);
      hdr.writeUInt32LE(16 + body.length, 0);
      hdr.writeUInt16LE(pick([2, 3, 16, 20, 24, 28, 32, 88, 0x10, 0x11, 0x13, 0x14, 0x17, 0x18, 0x1b, 0x1c, 0x1e]), 4);
      const nb = Buffer.concat([hdr, body]);
      return { buf: nb, len: nb.length };
    }],
  ];

  for (const [name, mutate] of mutations) {
    it(`${name}: ${Math.ceil(ITER / mutations.length)} iterations`, () => {
      const stats: Record<string, number> = {};
      for (let i = 0; i < Math.ceil(ITER / mutations.length); i++) {
        const s = pick(samples);
        const { buf, len } = mutate(s.buf);
        exercise(buf, len, stats, `${s.what} [${name}, iteration ${i}]`);
      }
      // the mutations must actually reach the decoders' error paths
      if (!name.startsWith('truncate the datagram')) {
        const malformed = (stats['rtnl:malformed'] ?? 0) + (stats['xfrm:malformed'] ?? 0);
        assert.ok(malformed > 0, `no malformed results at all: ${JSON.stringify(stats)}`);
      }
    });
  }

  it('attribute parsing of random buffers never throws anything but DecodeError', () => {
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(Array.from({ length: int(64) }, () => (rnd() < 0.3 ? 0 : int(256))));
      const r = tryParseAttrs(b, 16);
      if (r.error) assert.throws(() => parseAttrs(b, 16), { name: 'DecodeError' });
    }
  });
});
