// Pure logic of the per-SA push (no I/O; unit-tested in tests/unit/fpsd.test.ts): how the fast
// path's counters are merged into a kernel SA's current lifetime and replay state, and when the
// SA's soft / hard byte and packet limits call for an XFRM_MSG_EXPIRE.
//
// The scheme (docs/stats-daemon.md): each period, for an SA whose fast-path counters changed,
//   kernel_now  = GETAE                       (includes what the kernel processed itself: exceptions)
//   delta       = fast_path_now - fast_path_at_last_successful_push   (the fast path's new traffic)
//   NEWAE         lifetime = kernel_now + delta, replay = max(kernel_now, fast path)
//                 (outbound: oseq = max(kernel, fast path's oseq + margin), so Linux numbers above the fast path)
// so both the kernel's own traffic and the fast path's are counted exactly once. A fast-path counter
// that went down (fast path restarted, slot reused) counts from 0: delta = fast_path_now.

import type { XfrmLifetime } from '../lib/model';
import type { XfrmAe, XfrmReplayState, XfrmReplayStateEsn } from '../netlink/xfrm';

/** What the stats daemon uses of one SA slot of the stats file. */
export interface FpSaCounters {
  packets: number;
  bytes: number;
  /** Outbound: last sequence number sent (64 bits with ESN), 0 = none. */
  oseq: number;
  /** Inbound: highest sequence number accepted (64 bits with ESN), 0 = none. */
  iseq: number;
}

export const ZERO_COUNTERS: Readonly<FpSaCounters> = Object.freeze({ packets: 0, bytes: 0, oseq: 0, iseq: 0 });

export function sameCounters(a: FpSaCounters, b: FpSaCounters): boolean {
  return a.packets === b.packets && a.bytes === b.bytes && a.oseq === b.oseq && a.iseq === b.iseq;
}

/** New traffic of a monotonic counter since `last`; a counter below `last` was reset: all of it is new. */
export function counterDelta(now: number, last: number): number {
  if (!(now >= 0) || !Number.isFinite(now)) return 0; // NaN / garbage: nothing
  return now >= last ? now - last : now;
}

export interface LifetimeCur { bytes: bigint; packets: bigint; addTime: bigint; useTime: bigint }

export interface PushPlan {
  lifetime: LifetimeCur;
  /** Exactly one of replay / replayEsn (the form the kernel reported), or neither when it reported none. */
  replay?: XfrmReplayState;
  replayEsn?: XfrmReplayStateEsn;
}

const TWO32 = 0x100000000;
const hi32 = (v: number): number => Math.floor(v / TWO32) >>> 0;
const lo32 = (v: number): number => (v % TWO32) >>> 0;

/**
 * What to push into the kernel SA: `kernel` = its GETAE answer, `now` / `last` = the fast path's
 * counters now and at the last successful push. `nowSec` (unix seconds) becomes the SA's use_time
 * when the kernel had none and the fast path used the SA (use-time lifetimes start then).
 */
export function planPush(kernel: XfrmAe, now: FpSaCounters, last: FpSaCounters, nowSec: number, oseqMargin = 0): PushPlan {
  const oTarget = now.oseq > 0 ? now.oseq + oseqMargin : 0; // a fast path that never sent on the SA pushes no oseq
  const k = kernel.lifetime;
  const kb = k ? BigInt(k.bytes) : 0n, kp = k ? BigInt(k.packets) : 0n;
  const dBytes = counterDelta(now.bytes, last.bytes), dPackets = counterDelta(now.packets, last.packets);
  const addTime = k ? BigInt(k.addTime) : 0n;
  let useTime = k ? BigInt(k.useTime) : 0n;
  if (useTime === 0n && (dPackets > 0 || now.packets > 0)) useTime = BigInt(Math.floor(nowSec));
  const plan: PushPlan = {
    lifetime: { bytes: kb + BigInt(Math.floor(dBytes)), packets: kp + BigInt(Math.floor(dPackets)), addTime, useTime },
  };
  if (kernel.replayEsn) {
    const r = kernel.replayEsn;
    const e: XfrmReplayStateEsn = { ...r, bmp: r.bmp.slice() };
    const kOseq = r.oseqHi * TWO32 + r.oseq, kSeq = r.seqHi * TWO32 + r.seq;
    if (oTarget > kOseq) { e.oseq = lo32(oTarget); e.oseqHi = hi32(oTarget); }
    if (now.iseq > kSeq) {
      e.seq = lo32(now.iseq); e.seqHi = hi32(now.iseq);
      // The fast path's window is not in the stats file: count every number of the new window as
      // seen (a packet the kernel gets later inside the window is dropped rather than replayed).
      e.bmp = e.bmp.map(() => 0xffffffff);
    }
    plan.replayEsn = e;
  } else if (kernel.replay) {
    const r = kernel.replay;
    const p: XfrmReplayState = { ...r };
    const o = Math.min(oTarget, 0xffffffff), s = Math.min(now.iseq, 0xffffffff);
    if (o > r.oseq) p.oseq = o;
    if (s > r.seq) { p.seq = s; p.bitmap = 0xffffffff; }
    plan.replay = p;
  }
  return plan;
}

/** Whether a plan changes anything in the kernel (a NEWAE with the kernel's own values is skipped). */
export function planChanges(kernel: XfrmAe, plan: PushPlan): boolean {
  const k = kernel.lifetime;
  if (!k || BigInt(k.bytes) !== plan.lifetime.bytes || BigInt(k.packets) !== plan.lifetime.packets ||
    BigInt(k.useTime) !== plan.lifetime.useTime) return true;
  if (plan.replay && kernel.replay) {
    const a = plan.replay, b = kernel.replay;
    if (a.oseq !== b.oseq || a.seq !== b.seq || a.bitmap !== b.bitmap) return true;
  }
  if (plan.replayEsn && kernel.replayEsn) {
    const a = plan.replayEsn, b = kernel.replayEsn;
    if (a.oseq !== b.oseq || a.oseqHi !== b.oseqHi || a.seq !== b.seq || a.seqHi !== b.seqHi) return true;
    if (a.bmp.some((w, i) => w !== b.bmp[i])) return true;
  }
  return false;
}

/**
 * Whether a plan changes the kernel's replay state. When it does not, the NEWAE carries the lifetime only: a
 * replay state copied from the GETAE answer would set the kernel's oseq back if Linux sent a packet between
 * the GETAE and the NEWAE (it would then number that packet again).
 */
export function replayChanges(kernel: XfrmAe, plan: PushPlan): boolean {
  if (plan.replay && kernel.replay) {
    const a = plan.replay, b = kernel.replay;
    return a.oseq !== b.oseq || a.seq !== b.seq || a.bitmap !== b.bitmap;
  }
  if (plan.replayEsn && kernel.replayEsn) {
    const a = plan.replayEsn, b = kernel.replayEsn;
    return a.oseq !== b.oseq || a.oseqHi !== b.oseqHi || a.seq !== b.seq || a.seqHi !== b.seqHi || a.bmp.some((w, i) => w !== b.bmp[i]);
  }
  return !!(plan.replay || plan.replayEsn);
}

export type ExpireAction = 'none' | 'soft' | 'hard';

/** Limits as bigints; XFRM_INF (2^64 - 1) = no limit. */
export interface Limits { softBytes: bigint; hardBytes: bigint; softPackets: bigint; hardPackets: bigint }

export function limitsOf(l: XfrmLifetime): Limits {
  const b = (v: string | number): bigint => { try { return BigInt(v); } catch { return 0xffffffffffffffffn; } };
  return { softBytes: b(l.softBytes), hardBytes: b(l.hardBytes), softPackets: b(l.softPackets), hardPackets: b(l.hardPackets) };
}

/**
 * The next EXPIRE to send for an SA with these current values (the kernel's rule, from
 * xfrm_state_check_expire: a limit is reached when the value is >= it). Soft comes before hard so
 * that the IKE daemon can rekey before the old SA goes; each is sent once per SA incarnation.
 */
export function expireAction(lim: Limits, bytes: bigint, packets: bigint, softSent: boolean, hardSent: boolean): ExpireAction {
  if (hardSent) return 'none';
  const hard = bytes >= lim.hardBytes || packets >= lim.hardPackets;
  const soft = bytes >= lim.softBytes || packets >= lim.softPackets;
  if ((soft || hard) && !softSent) return 'soft';
  if (hard) return 'hard';
  return 'none';
}

/** The kernel's outbound sequence number in a GETAE answer (64 bits with ESN), 0 when it reported no replay state. */
export function kernelOseq(ae: XfrmAe): number {
  if (ae.replayEsn) return ae.replayEsn.oseqHi * TWO32 + ae.replayEsn.oseq;
  if (ae.replay) return ae.replay.oseq;
  return 0;
}

/**
 * The oseq floor to write for the fast path, or 0 for none: the kernel's oseq when Linux itself sent on the SA
 * since fpsd last set it (kOseq differs from what fpsd pushed, `pushed`, -1 = nothing pushed) and it is above
 * the fast path's oseq.
 */
export function floorFor(kOseq: number, fpOseq: number, pushed: number): number {
  return kOseq > fpOseq && kOseq !== pushed ? kOseq : 0;
}
