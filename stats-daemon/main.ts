#!/usr/bin/env node
// fpsd entry point: `node build/stats-daemon/main.js -c /etc/lfp/lfp.json [--period-ms N] [--no-expire]
// [--no-sa-counters] [--snmp-agentx HOST:PORT]`
// (fpctl start runs it after cmgrd). Writes RUNDIR/fpsd.status (JSON counters) every period.
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, DEFAULT_CONFIG, loadConfig, type LfpConfig } from '../lib/config';
import { createLogger } from '../lib/log';
import { runDaemon, usageExit } from '../lib/daemon';
import { fpsdOptions, StatsDaemon, type FpsdOptions } from './fpsd';

const USAGE = '[-c CONFIG] [--period-ms MS] [--no-expire] [--no-sa-counters] [--snmp-agentx HOST:PORT]';
const argv = process.argv.slice(2);
let config: LfpConfig = { ...DEFAULT_CONFIG };
const over: Partial<FpsdOptions> = {};
let snmpAgentx: { master: string; masterPort: number } | null = null;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '-c' || a === '--config') {
    const f = argv[++i];
    if (!f) usageExit('fpsd', USAGE, '-c needs a file');
    try { config = loadConfig(f); } catch (e) {
      if (e instanceof ConfigError) usageExit('fpsd', USAGE, e.message);
      throw e;
    }
  } else if (a === '--period-ms') {
    const v = Number(argv[++i]);
    if (!Number.isInteger(v) || v < 10 || v > 3_600_000) usageExit('fpsd', USAGE, '--period-ms needs an integer in [10, 3600000]');
    over.periodMs = v;
  } else if (a === '--snmp-agentx') {
    const m = /^(.+):(\d+)$/.exec(argv[++i] ?? '');
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) usageExit('fpsd', USAGE, '--snmp-agentx needs HOST:PORT (the master agent\'s AgentX TCP socket)');
    snmpAgentx = { master: m[1], masterPort: Number(m[2]) };
  } else if (a === '--no-expire') over.expire = false;
  else if (a === '--no-sa-counters') over.saCounters = false;
  else if (a === '-h' || a === '--help') usageExit('fpsd', USAGE);
  else usageExit('fpsd', USAGE, `unknown argument "${a}"`);
}
const log = createLogger('fpsd', config.logLevel);

runDaemon('fpsd', log, async () => {
  if (snmpAgentx) over.snmp = { ...fpsdOptions(config).snmp, ...snmpAgentx, enabled: true };
  const d = new StatsDaemon(config, log, over);
  const statusFile = path.join(config.runDir, 'fpsd.status');
  const writeStatus = () => {
    try {
      fs.writeFileSync(`${statusFile}.tmp`, JSON.stringify(d.status()));
      fs.renameSync(`${statusFile}.tmp`, statusFile);
    } catch { /* runDir missing: status is optional */ }
  };
  d.start();
  const t = setInterval(writeStatus, d.opts.periodMs);
  writeStatus();
  return { close: () => { clearInterval(t); d.close(); writeStatus(); } };
});
