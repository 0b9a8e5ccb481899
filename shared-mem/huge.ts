// Huge pages for the shared-memory files (config `shm.hugePages`, default on; docs/config.md).
//
// The fast path's FIB lookups are random reads into a 64 MB tbl24 per table: on 4 KiB pages nearly
// every one is a TLB miss (two-dimensional page walks in a VM). A file on a tmpfs mounted with
// transparent huge pages (`huge=within_size`) is mapped with 2 MiB pages by every process that maps it
// (fpmd, the fast path, fpctl): about 10 % less time per packet at 1,000,000 routes
// (docs/performance.md). /dev/shm gives none unless the system's `shmem_enabled` says so, and hugetlbfs
// needs pages reserved at boot; a dedicated tmpfs needs neither, hence `prepareHugeDir`, which fpmd (the
// creator of the files) runs on the directory of `shm.path` before it creates the file:
//   - the directory is a mount point (any file system): used as it is; the result says whether it gives
//     huge pages (tmpfs with huge=always / within_size, and `shmem_enabled` not deny);
//   - it does not exist, or is an empty directory that is not a mount point: a tmpfs with
//     huge=within_size is mounted on it (left mounted: the files outlive fpmd restarts; size limit the
//     tmpfs default, half of the RAM, the files themselves are sized by the configuration);
//   - it is a non-empty directory that is not a mount point: nothing is mounted over its contents.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export type HugeDirState = 'mounted' | 'huge' | 'no-huge' | 'failed';

export interface HugeDirResult {
  dir: string;
  /** mounted: a huge-page tmpfs was mounted on dir now; huge: it already was one; no-huge / failed: 4 KiB pages. */
  state: HugeDirState;
  /** One line for the log: what was found or done and, without huge pages, why. */
  detail: string;
}

export interface MountInfo { mountPoint: string; fsType: string; source: string; options: string[] }

const SHMEM_ENABLED = '/sys/kernel/mm/transparent_hugepage/shmem_enabled';

/** `\040`-style escapes of /proc/self/mountinfo. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount that holds `p` (an existing path; the longest mount point prefix of its real path), from /proc/self/mountinfo. */
export function mountOf(p: string): MountInfo | undefined {
  const real = fs.realpathSync(p);
  let best: MountInfo | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // id parent major:minor root mount-point mount-options [optional fields] - fstype source super-options
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const a = line.slice(0, sep).split(' '), b = line.slice(sep + 3).split(' ');
    if (a.length < 6 || b.length < 3) continue;
    const mp = unescapeMount(a[4]);
    if (!(real === mp || mp === '/' || real.startsWith(mp + '/'))) continue;
    // later lines are later mounts: a mount over the same point hides the earlier one
    if (best === undefined || mp.length >= best.mountPoint.length) {
      best = { mountPoint: mp, fsType: b[0], source: unescapeMount(b[1]), options: [...a[5].split(','), ...b[2].split(',')] };
    }
  }
  return best;
}

/** The system-wide shmem huge-page policy ('never', 'always', 'within_size', 'advise', 'deny', 'force'), or '' when unknown. */
function shmemEnabled(): string {
  try { return /\[(\w+)\]/.exec(fs.readFileSync(SHMEM_ENABLED, 'utf8'))?.[1] ?? ''; } catch { return ''; }
}

/** Whether files on this mount get transparent huge pages, and if not why (for the log). */
export function hugeOf(m: MountInfo): { huge: boolean; why: string } {
  if (m.fsType !== 'tmpfs') return { huge: false, why: `${m.mountPoint} is ${m.fsType}, not a tmpfs` };
  const policy = shmemEnabled();
  if (policy === 'force') return { huge: true, why: `${SHMEM_ENABLED} is force` };
  if (policy === 'deny') return { huge: false, why: `${SHMEM_ENABLED} is deny` };
  const opt = m.options.find((o) => o.startsWith('huge='));
  const mode = opt ? opt.slice(5) : 'never';
  if (mode === 'always' || mode === 'within_size') return { huge: true, why: `tmpfs ${m.mountPoint} huge=${mode}` };
  return { huge: false, why: `tmpfs ${m.mountPoint} without huge=within_size (huge=${mode})` };
}

/** Makes `dir` a directory whose files get huge pages when that can be done without touching anything else (see above). */
export function prepareHugeDir(dir: string): HugeDirResult {
  const d = path.resolve(dir);
  let exists = true;
  try {
    if (!fs.statSync(d).isDirectory()) return { dir: d, state: 'failed', detail: `${d} is not a directory` };
  } catch { exists = false; }
  if (!exists) {
    try { fs.mkdirSync(d, { recursive: true, mode: 0o755 }); } catch (e) { return { dir: d, state: 'failed', detail: `mkdir ${d}: ${(e as Error).message}` }; }
  }
  const m = mountOf(d);
  if (m !== undefined && m.mountPoint === fs.realpathSync(d)) {
    const h = hugeOf(m);
    return { dir: d, state: h.huge ? 'huge' : 'no-huge', detail: h.huge ? `huge pages: ${h.why}` : `no huge pages: ${h.why}` };
  }
  if (fs.readdirSync(d).length > 0) {
    return { dir: d, state: 'no-huge', detail: `no huge pages: ${d} is a non-empty directory on ${m ? `${m.fsType} ${m.mountPoint}` : 'an unknown mount'}; nothing mounted over it` };
  }
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'huge=within_size,mode=0755', 'lfp-shm', d], { encoding: 'utf8', timeout: 10000 });
  if (r.error || r.status !== 0) {
    const why = (r.error?.message ?? r.stderr ?? '').trim() || `exit ${r.status}`;
    return { dir: d, state: 'failed', detail: `no huge pages: mount -t tmpfs -o huge=within_size on ${d} failed: ${why}` };
  }
  const now = mountOf(d);
  const h = now ? hugeOf(now) : { huge: false, why: 'the new mount is not in /proc/self/mountinfo' };
  return { dir: d, state: h.huge ? 'mounted' : 'no-huge', detail: `mounted tmpfs (huge=within_size) on ${d}${h.huge ? '' : `, but no huge pages: ${h.why}`}` };
}

/** Bytes of `file`'s mappings in this process that are mapped with huge pages (PMD), from /proc/self/smaps. */
export function hugeMappedBytes(file: string, pid: number | 'self' = 'self'): number {
  const smaps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  let inFile = false, total = 0;
  for (const l of smaps) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) { inFile = l.endsWith(` ${file}`) || l.endsWith(` ${file} (deleted)`); continue; }
    if (!inFile) continue;
    const mm = /^(?:ShmemPmdMapped|FilePmdMapped):\s+(\d+) kB/.exec(l);
    if (mm) total += Number(mm[1]) * 1024;
  }
  return total;
}
