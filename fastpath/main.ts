#!/usr/bin/env node
// fp entry point: `node build/fastpath/main.js -c /etc/lfp/lfp.json` (normally through `fpctl start`).
import { parseDaemonArgs, runDaemon } from '../lib/daemon';
import { FastPath } from './fp';

const { config, log } = parseDaemonArgs('fp', process.argv.slice(2));
runDaemon('fp', log, async () => {
  const fp = new FastPath(config, log);
  await fp.start();
  return fp;
});
