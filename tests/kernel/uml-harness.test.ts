// The user-mode Linux harness (tests/uml/): boots the Debian UML kernel, passes exit codes and
// output through, and gives a kernel where ESP SAs can be installed (the host kernel cannot).
import * as assert from 'assert';
import { runInUml, umlUnavailableReason } from '../uml/uml';

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

    it('boots the 6.1 UML kernel (uname -r)', async () => {
        const r = await runInUml(['uname', '-r']);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(r.stdout.trim(), /^6\.1\.\d+/);
        assert.notStrictEqual(r.stdout.trim(), require('os').release(), 'ran on the host kernel?');
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
