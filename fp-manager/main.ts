#!/usr/bin/env node
// fpmd entry point: `node build/fp-manager/main.js -c /etc/lfp/lfp.json [--fresh]`
// --fresh recreates the shared memory instead of re-attaching to it.
import { parseDaemonArgs, runDaemon } from '../lib/daemon';
import * as v8 from 'v8';

// LFP_TRACE_GC=1: log every garbage collection (to the daemon's log), to tell GC pauses from other delays.
if (process.env.LFP_TRACE_GC) v8.setFlagsFromString('--trace-gc');
import { FpManager } from './fpmd';

const { config, flags, log } = parseDaemonArgs('fpmd', process.argv.slice(2), ['--fresh']);
runDaemon('fpmd', log, async () => {
  const fm = new FpManager(config, log, { fresh: flags.has('--fresh') });
  await fm.start();
  return fm;
});
