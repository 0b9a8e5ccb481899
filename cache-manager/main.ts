#!/usr/bin/env node
// cmgrd entry point: `node build/cache-manager/main.js -c /etc/lfp/lfp.json`
import { parseDaemonArgs, runDaemon } from '../lib/daemon';
import { CacheManager } from './cmgrd';

const { config, log } = parseDaemonArgs('cmgrd', process.argv.slice(2));
runDaemon('cmgrd', log, async () => {
  const cm = new CacheManager(config, log);
  await cm.start();
  return cm;
});
