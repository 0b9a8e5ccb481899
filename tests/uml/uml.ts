// Helpers for mocha tests that need a full Linux kernel (ESP, GCM, authenc, ...): they run a
// command inside user-mode Linux through tests/uml/run-in-uml.sh. See tests/uml/README.md.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface UmlResult {
    /** The command's exit status; 124 = timeout, 125 = UML/guest setup failure (see stderr). */
    code: number;
    stdout: string;
    stderr: string;
}

export interface UmlOptions {
    /** Whole run, boot included (default 120 s). */
    timeoutMs?: number;
    /** Guest memory, e.g. "512M", "1G" (default 1G). */
    mem?: string;
    /** Working directory inside the guest (default: the repository root). */
    cwd?: string;
    /** Extra environment variables for the command (added to this process's environment). */
    env?: Record<string, string>;
}

/** The repository root: the directory holding tests/uml/run-in-uml.sh, found upwards from here
 *  (this file runs from build/tests/uml/ after tsc, or tests/uml/ with tsx). */
export function repoRoot(): string {
    let dir = __dirname;
    for (;;) {
        if (fs.existsSync(path.join(dir, 'tests', 'uml', 'run-in-uml.sh'))) return dir;
        const up = path.dirname(dir);
        if (up === dir) throw new Error(`tests/uml/run-in-uml.sh not found above ${__dirname}`);
        dir = up;
    }
}

export function runnerPath(): string {
    return path.join(repoRoot(), 'tests', 'uml', 'run-in-uml.sh');
}

function isExecutable(p: string): boolean {
    try {
        fs.accessSync(p, fs.constants.X_OK);
        return fs.statSync(p).isFile();
    } catch {
        return false;
    }
}

/** Why UML cannot be used here, or null if it can. */
export function umlUnavailableReason(): string | null {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
        return `user-mode Linux needs linux/x64 (this is ${process.platform}/${process.arch})`;
    }
    const pathDirs = (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/bin']);
    const uml = process.env.LFP_UML_KERNEL || pathDirs.map((d) => path.join(d, 'linux.uml')).find(isExecutable);
    if (!uml || !isExecutable(uml)) {
        return 'linux.uml not found: apt-get install -y user-mode-linux kmod';
    }
    let versions: string[] = [];
    try {
        versions = fs
            .readdirSync('/usr/lib/uml/modules')
            .filter((v) => fs.existsSync(path.join('/usr/lib/uml/modules', v, 'modules.dep')));
    } catch {
        /* missing */
    }
    if (versions.length === 0) return 'no modules in /usr/lib/uml/modules: apt-get install -y user-mode-linux';
    const sbin = pathDirs.concat(['/usr/sbin', '/sbin']);
    if (!sbin.map((d) => path.join(d, 'modprobe')).some(isExecutable)) {
        return 'modprobe not found: apt-get install -y kmod';
    }
    try {
        runnerPath();
    } catch (e) {
        return String(e);
    }
    return null;
}

/** True if user-mode Linux (package user-mode-linux + kmod) can be used. */
export function umlAvailable(): boolean {
    return umlUnavailableReason() === null;
}

/**
 * Boot a fresh UML kernel, run `cmd` (argv; a host path, run as root inside) and power off.
 * Resolves with the exit status and the command's own stdout/stderr (the runner adds lines
 * starting with "run-in-uml:" to stderr on failures). Never rejects for a non-zero status.
 */
export function runInUml(cmd: string[], opts: UmlOptions = {}): Promise<UmlResult> {
    if (cmd.length === 0) return Promise.reject(new Error('runInUml: empty command'));
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const args = ['--timeout', String(Math.max(1, Math.ceil(timeoutMs / 1000)))];
    if (opts.mem) args.push('--mem', opts.mem);
    args.push('--', ...cmd);
    return new Promise((resolve, reject) => {
        const child = spawn(runnerPath(), args, {
            cwd: opts.cwd ?? repoRoot(),
            env: { ...process.env, ...(opts.env ?? {}) },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        // The runner enforces the timeout itself; this is a backstop if the runner hangs.
        const backstop = setTimeout(() => child.kill('SIGTERM'), timeoutMs + 30_000);
        child.on('error', (e) => {
            clearTimeout(backstop);
            reject(e);
        });
        child.on('close', (code, signal) => {
            clearTimeout(backstop);
            resolve({
                code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 125),
                stdout: Buffer.concat(out).toString(),
                stderr: Buffer.concat(err).toString(),
            });
        });
    });
}

// ---------------------------------------------------------------------------------------------
// A mocha test file that runs itself inside UML

interface GuestTest { title: string; fullTitle: string; err: { message?: string; stack?: string } }
interface GuestReport { tests: GuestTest[]; pending: GuestTest[]; failures: GuestTest[] }

/**
 * Host side of a test file whose tests run inside UML (the file checks an environment variable to know
 * where it runs): inside the current `describe`, one UML boot runs `testFile` (a compiled mocha file) with
 * `env`, writing a JSON report into the repository's build/; then each of `titles` shows here as its own
 * test with the guest's result (skipped when the guest skipped it). Skips everything with the reason when
 * UML is unavailable.
 */
export function mirrorUmlTests(testFile: string, titles: readonly string[], opts: { timeoutMs: number; env: Record<string, string> }): void {
  let report: GuestReport | null = null;
  let raw = '';
  before(async function () {
    const reason = umlUnavailableReason();
    if (reason !== null) { console.log(`      skipping: ${reason}`); this.skip(); }
    const out = path.join(repoRoot(), 'build', `${path.basename(testFile, '.js')}-uml-report-${process.pid}.json`);
    try {
      const r = await runInUml([path.join(repoRoot(), 'node_modules/.bin/mocha'), '--reporter', 'json', '--reporter-option', `output=${out}`, testFile], {
        timeoutMs: opts.timeoutMs, env: opts.env,
      });
      raw = `exit ${r.code}\n${(r.stdout + r.stderr).slice(-6000)}`;
      try { report = JSON.parse(fs.readFileSync(out, 'utf8')) as GuestReport; } catch { report = null; }
    } finally {
      fs.rmSync(out, { force: true });
    }
  });
  for (const title of titles) {
    it(title, function () {
      if (report === null) throw new Error(`no report from the UML run:\n${raw}`);
      const rep: GuestReport = report;
      if (rep.pending.some((p) => p.title === title)) this.skip();
      const t = rep.tests.find((x) => x.title === title);
      const hooks = rep.failures.filter((f) => /hook/.test(f.title)).map((f) => `${f.fullTitle}: ${f.err.stack ?? f.err.message}`);
      if (!t) throw new Error(`not run inside UML:\n${hooks.join('\n')}\n${raw}`);
      if (t.err && Object.keys(t.err).length) throw new Error(`inside UML: ${t.err.stack ?? t.err.message}`);
    });
  }
}
