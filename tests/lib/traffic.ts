// Commands and UDP flows run inside test namespaces (used by the kernel tests and the UML harness).
import { spawn } from 'child_process';
import * as path from 'path';
import type { Netns } from './netns';

const UDP_TOOL = path.resolve(__dirname, 'udp-tool.js');

/** Runs `cmd args` in `ns` (ip netns exec); never rejects; killed after timeoutMs. */
export function runIn(ns: Netns, cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, out, err }); });
  });
}

/**
 * Sends `count` numbered UDP datagrams (udp-tool.js) from `from` to dst:port at `pps`, `size` payload bytes
 * (default 64); resolves with how many distinct ones `to` received.
 */
export async function udpFlow(from: Netns, to: Netns, dst: string, count: number, pps: number, o: { port?: number; size?: number } = {}): Promise<number> {
  const port = o.port ?? 5001, size = o.size ?? 64;
  const timeout = Math.ceil((count / pps) * 1000) + 8000;
  const recv = spawn('ip', ['netns', 'exec', to.name, process.execPath, UDP_TOOL, 'recv', String(port), String(count), String(timeout), dst.includes(':') ? '6' : '4'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  recv.stdout.on('data', (d) => { out += d; });
  const exited = new Promise<void>((r) => recv.on('close', () => r()));
  await new Promise<void>((r) => { recv.stderr.once('data', () => r()); recv.on('close', () => r()); });
  const s = await runIn(from, process.execPath, [UDP_TOOL, 'send', dst, String(port), String(count), String(pps), String(size)], timeout + 30_000);
  if (s.code !== 0) { recv.kill('SIGKILL'); throw new Error(`udp-tool send: ${s.err}`); }
  await exited;
  try { return (JSON.parse(out) as { received: number }).received; } catch { throw new Error(`udp-tool recv printed ${JSON.stringify(out)}`); }
}
