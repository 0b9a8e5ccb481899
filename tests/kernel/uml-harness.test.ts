// The user-mode Linux harness (tests/uml/): boots the Debian UML kernel, passes exit codes and
// output through, and gives a kernel where ESP SAs can be installed (the host kernel cannot).
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot, runInUml, umlUnavailableReason } from '../uml/uml';

interface Fixture {
    command: string;
    kernel: string;
    ipOutput: string;
    messages: { source: string; type: number; hex: string }[];
}

/** Split hex into nlmsgs; every message entry must hold exactly one whole nlmsg. */
function checkMessages(file: string, fx: Fixture): void {
    assert.ok(fx.messages.length > 0, `${file}: no messages`);
    for (const m of fx.messages) {
        assert.ok(['event', 'dump', 'reply'].includes(m.source), `${file}: source ${m.source}`);
        const b = Buffer.from(m.hex, 'hex');
        assert.ok(b.length >= 16, `${file}: short message`);
        assert.strictEqual(b.readUInt32LE(0), b.length, `${file}: nlmsg_len != hex length`);
        assert.strictEqual(b.readUInt16LE(4), m.type, `${file}: type`);
    }
    const dumps = fx.messages.filter((m) => m.source === 'dump');
    assert.strictEqual(dumps.filter((m) => m.type === 3).length, 2, `${file}: one NLMSG_DONE per dump`);
    assert.strictEqual(dumps[dumps.length - 1].type, 3);
}

describe('UML harness (tests/uml/run-in-uml.sh)', function () {
    this.timeout(180_000);

    before(function () {
        const reason = umlUnavailableReason();
        if (reason !== null) {
            // Only when the Debian package really is missing (the Makefile installs it).
            console.log(`      skipping UML tests: ${reason}`);
            this.skip();
        }
    });

    it('records an XFRM fixture with tests/fixtures/xfrm/record.sh', async () => {
        const out = fs.mkdtempSync(path.join(repoRoot(), 'build', 'uml-xfrm-record-'));
        try {
            const r = await runInUml(['tests/fixtures/xfrm/record.sh', '--inside', 'sa-gcm128-tunnel-ipv4'], {
                env: { XFRM_FIXTURES_OUT: out },
            });
            assert.strictEqual(r.code, 0, r.stdout + r.stderr);
            const fx = JSON.parse(fs.readFileSync(path.join(out, 'sa-gcm128-tunnel-ipv4.json'), 'utf8')) as Fixture;
            checkMessages('recorded', fx);
            assert.match(fx.kernel, /^6\.1\./);
            assert.deepStrictEqual(
                fx.messages.map((m) => `${m.source}:${m.type}`),
                ['event:16', 'dump:16', 'dump:3', 'dump:3'],
            );
            assert.match(fx.ipOutput, /aead rfc4106\(gcm\(aes\)\) 0x000102030405060708090a0b0c0d0e0fc0c1c2c3/);
        } finally {
            fs.rmSync(out, { recursive: true, force: true });
        }
    });

    it('boots the 6.1 UML kernel (uname -r)', async () => {
        const r = await runInUml(['uname', '-r']);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(r.stdout.trim(), /^6\.1\.\d+/);
        assert.notStrictEqual(r.stdout.trim(), os.release(), 'ran on the host kernel?');
    });

    it('passes the exit code and separates stdout/stderr', async () => {
        const r = await runInUml(['bash', '-c', 'echo to-out; echo to-err >&2; exit 3']);
        assert.strictEqual(r.code, 3);
        assert.strictEqual(r.stdout, 'to-out\n');
        assert.match(r.stderr, /^to-err\n/);
        assert.doesNotMatch(r.stdout, /Linux version|uml-init/, 'kernel console leaked into stdout');
    });

    it('reports a timeout as 124', async () => {
        const t0 = Date.now();
        const r = await runInUml(['sleep', '60'], { timeoutMs: 5_000 });
        assert.strictEqual(r.code, 124);
        assert.match(r.stderr, /timeout/);
        assert.ok(Date.now() - t0 < 20_000);
    });

    it('installs an ESP SA with rfc4106(gcm(aes)) and the repository is writable', async () => {
        const key = '0x' + '0123456789abcdef0123456789abcdef01234567'; // 16 B key + 4 B salt
        const script = [
            'set -e',
            `ip xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi 0x100 mode tunnel aead 'rfc4106(gcm(aes))' ${key} 128`,
            'ip xfrm state',
            // the repository is mounted writable: create and remove a file in it
            'f=build/.uml-write-test.$$; echo ok > "$f"; cat "$f"; rm -f "$f"',
        ].join('\n');
        const r = await runInUml(['bash', '-c', script]);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(r.stdout, /src 10\.0\.0\.1 dst 10\.0\.0\.2/);
        assert.match(r.stdout, /proto esp spi 0x00000100 reqid 0 mode tunnel/);
        assert.match(r.stdout, /aead rfc4106\(gcm\(aes\)\) 0x0123456789abcdef0123456789abcdef01234567 128/);
        assert.match(r.stdout, /^ok$/m);
    });
});

describe('XFRM fixtures (tests/fixtures/xfrm/*.json) are well-formed', () => {
    const dir = path.join(repoRoot(), 'tests', 'fixtures', 'xfrm');
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];

    it('are present', () => assert.ok(files.length >= 30, `${files.length} fixtures`));
    for (const f of files) {
        it(f, () => {
            const fx = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Fixture;
            assert.match(fx.kernel, /^6\.1\./);
            assert.strictEqual(typeof fx.command, 'string');
            assert.strictEqual(typeof fx.ipOutput, 'string');
            checkMessages(f, fx);
        });
    }
});
