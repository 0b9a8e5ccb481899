// A UDP flow for tests, run inside a netns with `ip netns exec`:
//   node udp-tool.js send <dst> <port> <count> <pps> [size]  -> prints {"sent": n}
//   node udp-tool.js recv <port> <count> <timeoutMs> [family] -> prints {"received": n, "bytes": b}
// Each datagram carries its sequence number so the receiver counts distinct packets.
import * as dgram from 'dgram';
import * as net from 'net';

const [mode, ...args] = process.argv.slice(2);

async function send(dst: string, port: number, count: number, pps: number, size: number): Promise<void> {
  const s = dgram.createSocket(net.isIPv6(dst) ? 'udp6' : 'udp4');
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
  const t0 = process.hrtime.bigint();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(count, Math.floor(Number(process.hrtime.bigint() - t0) / 1e9 * pps) + 1);
      let inFlight = 0;
      while (sent < due) {
        const buf = Buffer.alloc(Math.max(8, size)); // one per datagram: send() is asynchronous
        buf.writeUInt32BE(sent, 0);
        inFlight++;
        s.send(buf, port, dst, () => { if (--inFlight === 0 && sent >= count) resolve(); });
        sent++;
      }
      if (sent < count) setTimeout(tick, 1); else if (inFlight === 0) resolve();
    };
    tick();
  });
  s.close();
  console.log(JSON.stringify({ sent }));
}

function recv(port: number, count: number, timeoutMs: number, family: string): void {
  const s = dgram.createSocket(family === '6' ? 'udp6' : 'udp4');
  const seen = new Uint8Array(count);
  let received = 0, bytes = 0;
  const done = () => { console.log(JSON.stringify({ received, bytes })); process.exit(0); };
  s.on('message', (m) => {
    if (m.length < 4) return;
    const i = m.readUInt32BE(0);
    if (i < count && !seen[i]) { seen[i] = 1; received++; bytes += m.length; }
    if (received === count) done();
  });
  s.bind(port, () => {
    try { s.setRecvBufferSize(16 * 1024 * 1024); } catch { /* keep the default */ }
    console.error('ready');
  });
  setTimeout(done, timeoutMs);
}

if (mode === 'send') void send(args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4] ?? 18));
else if (mode === 'recv') recv(Number(args[0]), Number(args[1]), Number(args[2]), args[3] ?? '4');
else { console.error('usage: udp-tool send <dst> <port> <count> <pps> [size] | recv <port> <count> <timeoutMs> [4|6]'); process.exit(2); }
