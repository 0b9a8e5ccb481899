// The shared-memory file holds the IPsec SAs' keys: only its owner (root) may read it, as only
// CAP_NET_ADMIN reads the kernel's XFRM state. Checked as a user would: another user cannot read it.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SHM_FILE_MODE, ShmWriter } from '../../shared-mem/writer';
import { SMALL_CONFIG } from '../../shared-mem/test-fixtures';

describe('shared-memory file permissions (key material)', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfp-perm-')); fs.chmodSync(dir, 0o755); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('a new file is 0600, another user cannot read it; a re-attached 0644 file is made 0600 again', () => {
    const f = path.join(dir, 'shm');
    ShmWriter.open(f, { config: SMALL_CONFIG, fresh: true });
    assert.equal(fs.statSync(f).mode & 0o777, SHM_FILE_MODE);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', f], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'nobody read the file');
    assert.match(r.stderr, /Permission denied/);
    fs.chmodSync(f, 0o644); // a file of an older lfp
    ShmWriter.open(f, { config: SMALL_CONFIG });
    assert.equal(fs.statSync(f).mode & 0o777, SHM_FILE_MODE);
  });
});
