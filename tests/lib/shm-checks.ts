// Consistency checks shared by the torn-read tests (worker threads and separate processes): the
// writer rewrites neighbours and SAs with self-checking contents; a reader must always find them
// and never see a half-written entry.
import { ALGO, LIFE, NEIGH_E, SA_E } from '../../shared-mem/layout';
import { BUSY, NOT_FOUND, READ_BUSY, READ_OK, type ShmReader } from '../../shared-mem/reader';

export interface CheckReport { reads: number; lookups: number; busy: number }

/** `out` is an Int32Array of SA_E.WORDS words; `u8` a byte view of it. */
export function checkNeighbours(r: ShmReader, addrs: number[], out: Int32Array, u8: Uint8Array, rep: CheckReport, err: (s: string) => void): void {
  for (let i = 0; i < addrs.length; i++) {
    const idx = r.neighbourLookup(0, 2, 4, addrs[i]);
    rep.lookups++;
    if (idx === BUSY) { rep.busy++; continue; }
    if (idx === NOT_FOUND) { err(`neighbour 10.0.0.${i + 1} not found`); continue; }
    const rr = r.readNeighbour(idx, out);
    if (rr === READ_BUSY) { rep.busy++; continue; }
    rep.reads++;
    if (rr !== READ_OK) { err(`neighbour ${idx} free`); continue; }
    const st = out[NEIGH_E.STATE], fl = out[NEIGH_E.FLAGS], meta = out[NEIGH_E.META];
    let ok = fl === (st ^ 0x5a5a) && ((meta >>> 8) & 255) === 6 && out[NEIGH_E.ADDR] === addrs[i];
    for (let b = 0; b < 6; b++) ok = ok && u8[NEIGH_E.LLADDR * 4 + b] === (st & 255);
    if (!ok) err(`torn neighbour: state ${st} flags ${fl} lladdr ${Array.from(u8.subarray(NEIGH_E.LLADDR * 4, NEIGH_E.LLADDR * 4 + 6))}`);
  }
}

/** SA j has SPI 0x1000 + j at saAddrs[j]. */
export function checkSas(r: ShmReader, saAddrs: number[], out: Int32Array, u8: Uint8Array, rep: CheckReport, err: (s: string) => void): void {
  for (let j = 0; j < saAddrs.length; j++) {
    const idx = r.saLookup(0, saAddrs[j], 0x1000 + j, 50);
    rep.lookups++;
    if (idx === BUSY) { rep.busy++; continue; }
    if (idx < 0) { err(`SA ${j} not found`); continue; }
    const rr = r.readSa(idx, out);
    if (rr === READ_BUSY) { rep.busy++; continue; }
    rep.reads++;
    const reqid = out[SA_E.REQID] >>> 0;
    let ok = rr === READ_OK && (out[SA_E.REPLAY] >>> 0) === ((reqid ^ 0xffff) >>> 0) && (out[SA_E.LIFE + LIFE.SOFT_ADD] >>> 0) === reqid &&
      (out[SA_E.AEAD + ALGO.META] & 255) === 20 && out[SA_E.SPI] === 0x1000 + j;
    for (let b = 0; b < 20; b++) ok = ok && u8[(SA_E.AEAD + ALGO.KEY) * 4 + b] === (reqid & 255);
    if (!ok) err(`torn SA ${j}: reqid ${reqid} replay ${out[SA_E.REPLAY] >>> 0} life ${out[SA_E.LIFE + LIFE.SOFT_ADD]}`);
  }
}
