// Sample objects of every kind and a small configuration, for tests of shared-mem/ and its users.

import type { AnyObject, Route, XfrmSa, XfrmSelector } from '../lib/model';
import type { ShmConfig } from './layout';

/** A configuration small enough for unit tests (~270 MiB, mostly untouched IPv4 tables). */
export const SMALL_CONFIG: Partial<ShmConfig> = {
  maxVrfs: 16, maxLinks: 64, maxAddrs: 64, maxRoutes: 20000, fib4Tables: 4, tbl8Groups: 2048, fib6Tables: 4,
  fib6Entries: 8192, maxNexthops: 1024, maxGroups: 64, maxNeigh: 256, maxRules: 64, maxPolicies: 64, maxSas: 64,
};

export function route4(dst: string, plen: number, gw: string | undefined, extra: Partial<Route> = {}): Route {
  return {
    vrf: 0, table: 254, family: 4, dst, plen, tos: 0, priority: 0, type: 'unicast', protocol: 4, scope: 0,
    nexthops: [{ ...(gw !== undefined ? { gw } : {}), ifindex: 2, weight: 1, flags: 0 }], ...extra,
  };
}

export function route6(dst: string, plen: number, gw: string | undefined, extra: Partial<Route> = {}): Route {
  return { ...route4(dst, plen, gw, extra), family: 6, dst, plen, ...extra };
}

const sel4: XfrmSelector = {
  family: 4, saddr: '10.1.0.0', daddr: '10.2.0.0', splen: 16, dplen: 16, sport: 0, sportMask: 0, dport: 443,
  dportMask: 0xffff, proto: 6, ifindex: 0,
};

const lifetimeInf = {
  softBytes: '18446744073709551615', hardBytes: '18446744073709551615', softPackets: '18446744073709551615',
  hardPackets: '18446744073709551615', softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0,
};

export function sa(vrf: number, daddr: string, spi: number, extra: Partial<XfrmSa> = {}): XfrmSa {
  return {
    vrf, daddr, spi, proto: 50, family: daddr.includes(':') ? 6 : 4, saddr: daddr.includes(':') ? '2001:db8::1' : '192.0.2.1',
    mode: 'tunnel', reqid: 7, flags: 0, replayWindow: 32, esn: false, selector: sel4,
    aead: { name: 'rfc4106(gcm(aes))', key: '00112233445566778899aabbccddeeff01020304', icvBits: 128 },
    ifId: 0, lifetime: lifetimeInf, ...extra,
  };
}

/** Objects of every kind for VRF `vrf`, with optional fields both set and unset. */
export function sampleObjects(vrf = 0): AnyObject[] {
  const o: AnyObject[] = [
    { kind: 'vrf', obj: { vrf, nsid: vrf === 0 ? -1 : vrf, name: vrf === 0 ? '' : `ns${vrf}` } },
    { kind: 'link', obj: { vrf, ifindex: 1, name: 'lo', kind: '', mac: '00:00:00:00:00:00', mtu: 65536, flags: 0x49, adminUp: true, operUp: true, master: 0, link: 0, port: -1 } },
    { kind: 'link', obj: { vrf, ifindex: 2, name: 'veth-a.100', kind: 'veth', mac: 'aa:bb:cc:dd:ee:0f', mtu: 1500, flags: 0x11043, adminUp: true, operUp: false, master: 5, link: 9, port: -1 } },
    { kind: 'link', obj: { vrf, ifindex: 3, name: 'tun0', kind: 'tun', mac: '', mtu: 1400, flags: 0x1091, adminUp: false, operUp: false, master: 0, link: 0, port: -1 } },
    { kind: 'address', obj: { vrf, ifindex: 2, family: 4, addr: '10.0.0.1', plen: 24, scope: 0, flags: 0x80 } },
    { kind: 'address', obj: { vrf, ifindex: 3, family: 4, addr: '10.9.0.1', plen: 32, peer: '10.9.0.2', scope: 0, flags: 0 } },
    { kind: 'address', obj: { vrf, ifindex: 2, family: 6, addr: '2001:db8::1', plen: 64, scope: 0, flags: 0x200 } },
    { kind: 'route', obj: route4('10.1.0.0', 16, '10.0.0.254', { vrf, mtu: 1400, prefsrc: '10.0.0.1', protocol: 186 }) },
    { kind: 'route', obj: route4('0.0.0.0', 0, '10.0.0.253', { vrf, priority: 100 }) },
    { kind: 'route', obj: route4('0.0.0.0', 0, '10.0.0.252', { vrf, priority: 50, tos: 0x10 }) },
    { kind: 'route', obj: { ...route4('10.2.0.0', 16, undefined, { vrf }), nexthops: [
      { gw: '10.0.0.2', ifindex: 2, weight: 1, flags: 0 }, { gw: '10.0.0.3', ifindex: 2, weight: 3, flags: 4 },
      { gw: 'fe80::1', ifindex: 3, weight: 2, flags: 0 }] } },
    { kind: 'route', obj: { ...route4('192.0.2.0', 24, undefined, { vrf, type: 'blackhole' }), nexthops: [] } },
    { kind: 'route', obj: route4('10.0.0.1', 32, undefined, { vrf, table: 255, type: 'local', scope: 254, protocol: 2, prefsrc: '10.0.0.1' }) },
    { kind: 'route', obj: route6('2001:db8::', 64, undefined, { vrf, priority: 256 }) },
    { kind: 'route', obj: route6('fe80::', 64, undefined, { vrf, priority: 256, nexthops: [{ ifindex: 3, weight: 1, flags: 0 }] }) },
    { kind: 'route', obj: route6('::', 0, 'fe80::1', { vrf, priority: 1024, protocol: 3 }) },
    { kind: 'route', obj: { ...route6('2001:db8:dead::', 48, undefined, { vrf, type: 'unreachable' }), nexthops: [] } },
    { kind: 'rule', obj: { vrf, family: 4, priority: 0, table: 255, action: 'to_tbl', srcLen: 0, dstLen: 0, fwmark: 0, fwmask: 0, tos: 0, invert: false, ipproto: 0, suppressPrefixlen: -1, gotoTarget: 0 } },
    { kind: 'rule', obj: { vrf, family: 4, priority: 100, table: 10, action: 'to_tbl', src: '10.1.0.0', srcLen: 16, dst: '10.2.0.0', dstLen: 16, iif: 'veth-a.100', oif: 'tun0', fwmark: 0x10, fwmask: 0xff, tos: 0x10, invert: true, ipproto: 6, sport: [1000, 2000], dport: [443, 443], suppressPrefixlen: 0, gotoTarget: 0 } },
    { kind: 'rule', obj: { vrf, family: 6, priority: 200, table: 0, action: 'goto', srcLen: 0, dstLen: 0, fwmark: 0, fwmask: 0, tos: 0, invert: false, ipproto: 0, suppressPrefixlen: -1, gotoTarget: 32766 } },
    { kind: 'rule', obj: { vrf, family: 4, priority: 32766, table: 254, action: 'to_tbl', srcLen: 0, dstLen: 0, fwmark: 0, fwmask: 0, tos: 0, invert: false, ipproto: 0, suppressPrefixlen: -1, gotoTarget: 0 } },
    { kind: 'neighbour', obj: { vrf, ifindex: 2, family: 4, addr: '10.0.0.254', lladdr: '52:54:00:12:34:56', state: 0x02, flags: 0 } },
    { kind: 'neighbour', obj: { vrf, ifindex: 2, family: 4, addr: '10.0.0.9', state: 0x01, flags: 0 } },
    { kind: 'neighbour', obj: { vrf, ifindex: 3, family: 6, addr: 'fe80::1', lladdr: '52:54:00:aa:bb:cc', state: 0x80, flags: 0x80 } },
    { kind: 'policy', obj: { vrf, index: 8, dir: 'out', priority: 2000, action: 'allow', flags: 0, selector: sel4, ifId: 0, tmpls: [
      { family: 4, daddr: '192.0.2.2', saddr: '192.0.2.1', spi: 0, proto: 50, mode: 'tunnel', reqid: 7, optional: false, share: 0, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff },
      { family: 4, daddr: '', saddr: '', spi: 0, proto: 108, mode: 'transport', reqid: 0, optional: true, share: 0, aalgos: 0, ealgos: 0, calgos: 0xffffffff },
    ] } },
    { kind: 'policy', obj: { vrf, index: 17, dir: 'fwd', priority: 0, action: 'block', flags: 1,
      selector: { ...sel4, family: 6, saddr: '::', daddr: '2001:db8::', splen: 0, dplen: 32, ifindex: -1 }, mark: { value: 1, mask: 0xff }, ifId: 3, tmpls: [] } },
    { kind: 'sa', obj: sa(vrf, '192.0.2.2', 0xc0ffee01) },
    { kind: 'sa', obj: sa(vrf, '2001:db8::2', 0x100, {
      aead: undefined, enc: { name: 'cbc(aes)', key: '000102030405060708090a0b0c0d0e0f' },
      auth: { name: 'hmac(sha256)', key: '00'.repeat(32), truncBits: 128 }, esn: true, replayWindow: 1024, mode: 'transport',
      encap: { type: 2, sport: 4500, dport: 4500, oa: '10.0.0.5' }, mark: { value: 0x20, mask: 0xffffffff }, ifId: 12, flags: 0x80,
      lifetime: { softBytes: '1000000', hardBytes: '2000000', softPackets: '0', hardPackets: '4294967296', softAddSeconds: 3000, hardAddSeconds: 3600, softUseSeconds: 0, hardUseSeconds: 2 ** 40 },
    }) },
    { kind: 'sa', obj: sa(vrf, '192.0.2.3', 0x200, { aead: undefined, enc: { name: 'cbc(my-cipher)', key: '' }, encap: { type: 2, sport: 4500, dport: 4501 } }) },
  ];
  for (const x of o) if (x.kind === 'sa' && x.obj.aead === undefined) delete x.obj.aead;
  return o;
}
