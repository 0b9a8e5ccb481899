// Network namespaces for tests: created with unique names, always removed (after() hooks and a
// process exit hook as a last resort).
import { execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';

const live = new Set<string>();
process.on('exit', () => { for (const n of live) spawnSync('ip', ['netns', 'del', n]); });

export function sh(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

export class Netns {
  private constructor(readonly name: string) {}

  static create(prefix: string): Netns {
    const name = `lfp-t-${prefix}-${crypto.randomBytes(3).toString('hex')}`;
    sh('ip', ['netns', 'add', name]);
    live.add(name);
    const ns = new Netns(name);
    ns.ip('link set lo up');
    return ns;
  }

  get path(): string { return `/run/netns/${this.name}`; }

  /** `ip -n NS <args>` (args split on spaces); returns stdout. */
  ip(args: string): string { return sh('ip', ['-n', this.name, ...args.trim().split(/\s+/)]); }

  /** `ip -n NS -j <args>` parsed; retried when a concurrent change interrupted ip's dump. */
  ipJson<T = unknown>(args: string): T {
    for (let attempt = 0; ; attempt++) {
      const r = spawnSync('ip', ['-n', this.name, '-j', ...args.trim().split(/\s+/)], { encoding: 'utf8', maxBuffer: 1 << 30 });
      const out = (r.stdout ?? '').trim();
      try {
        if (r.status !== 0) throw new Error(r.stderr);
        return (out ? JSON.parse(out) : []) as T;
      } catch (e) {
        if (attempt >= 10) throw new Error(`ip -n ${this.name} -j ${args}: ${(e as Error).message}`);
      }
    }
  }

  /** `ip -n NS -batch -` with the given lines. With force, failing lines are skipped (not an error). */
  batch(lines: string[], force = false): string {
    if (!force) return sh('ip', ['-n', this.name, '-batch', '-'], lines.join('\n') + '\n');
    const r = spawnSync('ip', ['-n', this.name, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 30 });
    return r.stdout ?? '';
  }

  exec(cmd: string, args: string[]): string { return sh('ip', ['netns', 'exec', this.name, cmd, ...args]); }

  destroy(): void {
    if (!live.has(this.name)) return;
    spawnSync('ip', ['netns', 'del', this.name]);
    live.delete(this.name);
  }
}
