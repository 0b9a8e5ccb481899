// One object of every kind, with optional fields set, for codec tests.
import type { AnyObject } from '../../lib/model';

export const SAMPLE_OBJECTS: AnyObject[] = [
  { kind: 'vrf', obj: { vrf: 5, nsid: 5, name: 'blue' } },
  { kind: 'link', obj: { vrf: 0, ifindex: 3, name: 'eth1', kind: 'veth', mac: '02:00:00:00:00:01', mtu: 1500, flags: 0x1043, adminUp: true, operUp: true, master: 0, link: 4, port: 0 } },
  { kind: 'address', obj: { vrf: 0, ifindex: 3, family: 6, addr: '2001:db8::1', plen: 64, scope: 0, flags: 0x80 } },
  { kind: 'address', obj: { vrf: 0, ifindex: 3, family: 4, addr: '10.0.0.1', plen: 32, peer: '10.0.0.2', scope: 0, flags: 0 } },
  { kind: 'route', obj: { vrf: 0, table: 100, family: 4, dst: '198.51.100.0', plen: 24, tos: 0, priority: 20, type: 'unicast', protocol: 4, scope: 0, prefsrc: '10.0.0.1', mtu: 1400,
    nexthops: [{ gw: '10.0.0.2', ifindex: 3, weight: 3, flags: 0 }, { ifindex: 4, weight: 1, flags: 4 }] } },
  { kind: 'route', obj: { vrf: 7, table: 254, family: 6, dst: '::', plen: 0, tos: 0, priority: 1024, type: 'unreachable', protocol: 3, scope: 0, nexthops: [] } },
  { kind: 'rule', obj: { vrf: 0, family: 4, priority: 100, table: 100, action: 'to_tbl', src: '10.0.0.0', srcLen: 8, dstLen: 0, iif: 'eth1', fwmark: 16, fwmask: 255, tos: 0, invert: false, ipproto: 17, sport: [1000, 2000], dport: [53, 53], suppressPrefixlen: -1, gotoTarget: 0 } },
  { kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 4, addr: '10.0.0.2', lladdr: '02:00:00:00:00:02', state: 2, flags: 0 } },
  { kind: 'neighbour', obj: { vrf: 0, ifindex: 3, family: 6, addr: 'fe80::1', state: 0x20, flags: 0x80 } },
  { kind: 'policy', obj: { vrf: 0, index: 1234, dir: 'out', priority: 10, action: 'allow', flags: 0,
    selector: { family: 4, saddr: '10.1.0.0', daddr: '10.2.0.0', splen: 16, dplen: 16, sport: 0, sportMask: 0, dport: 4789, dportMask: 0xffff, proto: 17, ifindex: 0 },
    mark: { value: 16, mask: 255 }, ifId: 5,
    tmpls: [{ family: 4, daddr: '192.0.2.2', saddr: '192.0.2.1', spi: 0, proto: 50, mode: 'tunnel', reqid: 7, optional: false, share: 0, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff }] } },
  { kind: 'sa', obj: { vrf: 0, daddr: '192.0.2.2', spi: 0xc0ffee01, proto: 50, family: 4, saddr: '192.0.2.1', mode: 'tunnel', reqid: 7, flags: 0, replayWindow: 4096, esn: true,
    selector: { family: 4, saddr: '0.0.0.0', daddr: '0.0.0.0', splen: 0, dplen: 0, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 },
    aead: { name: 'rfc4106(gcm(aes))', key: '00112233445566778899aabbccddeeff01020304', icvBits: 128 },
    encap: { type: 2, sport: 4500, dport: 4500, oa: '0.0.0.0' }, mark: { value: 1, mask: 0xffffffff }, ifId: 0,
    lifetime: { softBytes: '18446744073709551615', hardBytes: '18446744073709551615', softPackets: '1000', hardPackets: '2000', softAddSeconds: 60, hardAddSeconds: 120, softUseSeconds: 0, hardUseSeconds: 0 } } },
  { kind: 'sa', obj: { vrf: 0, daddr: '2001:db8::2', spi: 0x200, proto: 50, family: 6, saddr: '2001:db8::1', mode: 'transport', reqid: 1, flags: 0, replayWindow: 32, esn: false,
    selector: { family: 6, saddr: '::', daddr: '::', splen: 0, dplen: 0, sport: 0, sportMask: 0, dport: 0, dportMask: 0, proto: 0, ifindex: 0 },
    enc: { name: 'cbc(aes)', key: '000102030405060708090a0b0c0d0e0f' }, auth: { name: 'hmac(sha256)', key: '00'.repeat(32), truncBits: 128 },
    ifId: 0, lifetime: { softBytes: '0', hardBytes: '0', softPackets: '0', hardPackets: '0', softAddSeconds: 0, hardAddSeconds: 0, softUseSeconds: 0, hardUseSeconds: 0 } } },
];
