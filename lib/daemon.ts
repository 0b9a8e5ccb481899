// Common start-up of the lfp daemons: `-c FILE` config, a logger, clean shutdown on SIGTERM/SIGINT,
// and a logged, non-zero exit for anything unexpected (never a silent death).
import { loadConfig, LfpConfig, DEFAULT_CONFIG, ConfigError } from './config';
import { createLogger, Logger } from './log';

export interface DaemonArgs { config: LfpConfig; flags: Set<string>; log: Logger }

export function usageExit(name: string, usage: string, msg?: string): never {
  if (msg) process.stderr.write(`${name}: ${msg}\n`);
  process.stderr.write(`usage: ${name} ${usage}\n`);
  process.exit(2);
}

export function parseDaemonArgs(name: string, argv: string[], knownFlags: string[] = []): DaemonArgs {
  let config: LfpConfig = { ...DEFAULT_CONFIG };
  const flags = new Set<string>();
  const usage = `[-c CONFIG] ${knownFlags.map((f) => `[${f}]`).join(' ')}`;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-c' || a === '--config') {
      const f = argv[++i];
      if (!f) usageExit(name, usage, '-c needs a file');
      try {
        config = loadConfig(f);
      } catch (e) {
        if (e instanceof ConfigError) usageExit(name, usage, e.message);
        throw e;
      }
    } else if (knownFlags.includes(a)) {
      flags.add(a);
    } else if (a === '-h' || a === '--help') {
      usageExit(name, usage);
    } else {
      usageExit(name, usage, `unknown argument "${a}"`);
    }
  }
  const log = createLogger(name, config.logLevel);
  return { config, flags, log };
}

export function runDaemon(name: string, log: Logger, start: () => Promise<{ close(): void }>): void {
  process.on('uncaughtException', (e) => {
    log.error(`internal error, exiting: ${e.stack ?? e.message}`);
    process.exit(70);
  });
  process.on('unhandledRejection', (e) => {
    log.error(`internal error (promise), exiting: ${(e as Error)?.stack ?? String(e)}`);
    process.exit(70);
  });
  start().then((d) => {
    const stop = (sig: string) => {
      log.info(`${sig}: stopping`);
      try { d.close(); } finally { process.exit(0); }
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    log.info(`${name} running (pid ${process.pid})`);
  }, (e: Error) => {
    log.error(`cannot start: ${e.message}`);
    process.exit(1);
  });
}
