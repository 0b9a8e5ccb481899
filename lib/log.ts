// Small leveled logger shared by the daemons: one line per event, ISO timestamp, daemon name.
// Repeated identical errors are rate-limited so a flood of bad input cannot fill the disk.
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function createLogger(name: string, level: Level = 'info', out: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[level];
  const recent = new Map<string, { t: number; n: number }>();
  const emit = (lv: Level, msg: string) => {
    if (ORDER[lv] < min) return;
    if (lv === 'error' || lv === 'warn') {
      const key = msg.slice(0, 80);
      const now = Date.now();
      const r = recent.get(key);
      if (r && now - r.t < 1000) { r.n++; return; }
      if (r && r.n > 0) out(`${new Date().toISOString()} ${name} ${lv}: (previous message repeated ${r.n} more times)\n`);
      recent.set(key, { t: now, n: 0 });
      if (recent.size > 1000) recent.clear();
    }
    out(`${new Date().toISOString()} ${name} ${lv}: ${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m), info: (m) => emit('info', m),
    warn: (m) => emit('warn', m), error: (m) => emit('error', m),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
