// fpsd's SNMP export: the fast path's port counters as an ifTable-like table served through AgentX
// (RFC 2741) by the `net-snmp` npm package as a subagent of a master agent (net-snmp's snmpd with
// `master agentx` and `agentXSocket tcp:HOST:PORT`). The table (lfpPortTable) lives under its own OID
// (default 1.3.6.1.3.8765, in the "experimental" arc): registering IF-MIB's ifXEntry instead would
// replace snmpd's whole ifXTable (the kernel's interfaces), which is worse than a table of our own.
//
//   <oid>.1        lfpPortTable
//   <oid>.1.1      lfpPortEntry, INDEX { lfpPortIndex }
//   <oid>.1.1.C.I  column C of port I (I = fast-path port id + 1):
//     1 lfpPortIndex Integer32           2 lfpPortName OCTET STRING (the port / DPVI name)
//     3 lfpPortInPkts Counter64  (rxPackets)   4 lfpPortInOctets Counter64  (rxBytes)
//     5 lfpPortOutPkts Counter64 (txPackets)   6 lfpPortOutOctets Counter64 (txBytes)
//     7 lfpPortForwarded Counter64             8 lfpPortExceptionPkts Counter64 (dpviPackets)
//     9 lfpPortExceptionOctets Counter64 (dpviBytes)   10 lfpPortDrops Counter64 (every drop reason)
//
// Values are refreshed every fpsd period from the stats file. The subagent reconnects (every 5 s)
// when the master agent is not there or goes away.

import type { Logger } from '../lib/log';
import { DROP_REASONS, type PortStats, type StatsFile } from '../shared-mem/stats';

export interface SnmpOptions {
  enabled: boolean;
  /** Master agent's AgentX TCP address. */
  master: string;
  masterPort: number;
  /** Base OID of the lfp port table subtree. */
  oid: string;
}

export const SNMP_DEFAULTS: SnmpOptions = { enabled: false, master: '127.0.0.1', masterPort: 705, oid: '1.3.6.1.3.8765' };

export const PORT_TABLE_COLUMNS: { number: number; name: string; counter?: (p: PortStats) => number }[] = [
  { number: 1, name: 'lfpPortIndex' },
  { number: 2, name: 'lfpPortName' },
  { number: 3, name: 'lfpPortInPkts', counter: (p) => p.rxPackets },
  { number: 4, name: 'lfpPortInOctets', counter: (p) => p.rxBytes },
  { number: 5, name: 'lfpPortOutPkts', counter: (p) => p.txPackets },
  { number: 6, name: 'lfpPortOutOctets', counter: (p) => p.txBytes },
  { number: 7, name: 'lfpPortForwarded', counter: (p) => p.forwarded },
  { number: 8, name: 'lfpPortExceptionPkts', counter: (p) => p.dpviPackets },
  { number: 9, name: 'lfpPortExceptionOctets', counter: (p) => p.dpviBytes },
  { number: 10, name: 'lfpPortDrops', counter: (p) => DROP_REASONS.reduce((s, r) => s + p.drops[r], 0) },
];

/** A Counter64 value net-snmp accepts: a non-negative integer (Float64 counters are exact to 2^53). */
function c64(v: number): number { return Number.isFinite(v) && v > 0 ? Math.floor(v) : 0; }

/** The rows of the table for a stats snapshot (pure; unit-tested). */
export function portRows(total: PortStats[], names: readonly string[]): (number | string)[][] {
  return total.map((p, i) => [i + 1, names[i] ?? `port${i}`, ...PORT_TABLE_COLUMNS.slice(2).map((c) => c64(c.counter!(p)))]);
}


// The subset of net-snmp used here (the package has no type declarations).
interface NetSnmp {
  createSubagent(o: { master: string; masterPort: number; timeout?: number; description?: string }): Subagent;
  MibProviderType: { Table: number };
  ObjectType: { Integer: number; OctetString: number; Counter64: number };
  MaxAccess: Record<string, number>;
}
interface Mib {
  addTableRow(name: string, row: (number | string)[]): void;
  setTableSingleCell(name: string, column: number, rowIndex: number[], value: number | string): void;
  getTableRowCells(name: string, rowIndex: number[]): unknown[] | null;
  deleteTableRow(name: string, rowIndex: number[]): void;
}
interface Subagent {
  open(cb: (err: Error | null) => void): void;
  close(cb: (err: Error | null) => void): void;
  registerProvider(p: unknown, cb: (err: Error | null) => void): void;
  getMib(): Mib;
  on(ev: 'error' | 'close', cb: (e?: Error) => void): void;
  socket?: { destroy(): void };
}

const TABLE = 'lfpPortTable';

export class SnmpExporter {
  private snmp: NetSnmp;
  private agent: Subagent | null = null;
  private ready = false;
  private lastAttempt = 0;
  private rows = 0;
  private closed = false;
  private saidDown = false;
  /** Counters for fpsd.status. */
  readonly counters = { connects: 0, updates: 0, errors: 0 };

  constructor(readonly opts: SnmpOptions, private readonly names: readonly string[], private readonly log: Logger) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      this.snmp = require('net-snmp') as NetSnmp;
    } catch (e) {
      throw new Error(`statsDaemon.snmp is enabled but the npm package net-snmp cannot be loaded (${(e as Error).message}): run "make deps"`);
    }
  }

  get connected(): boolean { return this.ready; }

  private connect(): void {
    this.lastAttempt = Date.now();
    const s = this.snmp;
    const agent = s.createSubagent({ master: this.opts.master, masterPort: this.opts.masterPort, description: 'lfp fpsd: fast-path port counters' });
    this.agent = agent;
    this.ready = false;
    this.rows = 0;
    const down = (why: string) => {
      if (this.agent !== agent) return;
      this.ready = false;
      this.agent = null;
      try { agent.socket?.destroy(); } catch { /* gone */ }
      if (!this.saidDown && !this.closed) this.log.warn(`AgentX master ${this.opts.master}:${this.opts.masterPort}: ${why}; retrying every 5 s`);
      this.saidDown = true;
    };
    agent.on('error', (e) => down((e as Error)?.message ?? 'error'));
    agent.on('close', () => down('connection closed'));
    agent.open((err) => {
      if (err) { this.counters.errors++; down(`open refused: ${err.message}`); return; }
      const provider = {
        name: TABLE, type: s.MibProviderType.Table, oid: `${this.opts.oid}.1.1`, maxAccess: s.MaxAccess['not-accessible'],
        tableColumns: PORT_TABLE_COLUMNS.map((c) => ({
          number: c.number, name: c.name,
          type: c.number === 1 ? s.ObjectType.Integer : c.number === 2 ? s.ObjectType.OctetString : s.ObjectType.Counter64,
          maxAccess: s.MaxAccess['read-only'],
        })),
        tableIndex: [{ columnName: 'lfpPortIndex' }],
      };
      agent.registerProvider(provider, (e) => {
        if (e) { this.counters.errors++; down(`registration of ${provider.oid} refused: ${e.message}`); return; }
        this.ready = true;
        this.counters.connects++;
        if (this.saidDown) this.log.info(`AgentX master ${this.opts.master}:${this.opts.masterPort}: connected`);
        this.saidDown = false;
        this.log.info(`SNMP: ${TABLE} registered at ${this.opts.oid}.1 (AgentX master ${this.opts.master}:${this.opts.masterPort})`);
      });
    });
  }

  /** Refreshes the table from the stats file (and (re)connects when needed). */
  update(stats: StatsFile | null): void {
    if (this.closed) return;
    if (!this.agent && Date.now() - this.lastAttempt >= 5000) this.connect();
    if (!this.ready || !this.agent || !stats) return;
    const mib = this.agent.getMib();
    const rows = portRows(stats.read().total, this.names);
    try {
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i];
        if (i >= this.rows) { mib.addTableRow(TABLE, row); continue; }
        for (let c = 2; c < row.length; c++) mib.setTableSingleCell(TABLE, c + 1, [i + 1], row[c]);
      }
      for (let i = rows.length; i < this.rows; i++) mib.deleteTableRow(TABLE, [i + 1]);
      this.rows = rows.length;
      this.counters.updates++;
    } catch (e) {
      this.counters.errors++;
      this.log.warn(`SNMP table update failed: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    const a = this.agent;
    this.agent = null;
    this.ready = false;
    if (!a) return;
    try {
      a.close(() => { try { a.socket?.destroy(); } catch { /* gone */ } });
      setTimeout(() => { try { a.socket?.destroy(); } catch { /* gone */ } }, 200).unref();
    } catch { try { a.socket?.destroy(); } catch { /* gone */ } }
  }
}
