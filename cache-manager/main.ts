#!/usr/bin/env node
// cmgrd entry point: `node build/cache-manager/main.js -c /etc/lfp/lfp.json`
import { parseDaemonArgs, runDaemon } from '../lib/daemon';
import * as v8 from 'v8';

// LFP_TRACE_GC=1: log every garbage collection (to the daemon's log), to tell GC pauses from other delays.
if (process.env.LFP_TRACE_GC) v8.setFlagsFromString('--trace-gc');
import { CacheManager } from './cmgrd';

const { config, log } = parseDaemonArgs('cmgrd', process.argv.slice(2));
runDaemon('cmgrd', log, async () => {
  const cm = new CacheManager(config, log);
  await cm.start();
  return cm;
});
