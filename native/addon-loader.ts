// Loading of the project's native addons (.node files built by node-gyp), with a clear error that
// says how to build the addon when it is missing or does not load.
import * as fs from 'fs';

export class AddonLoader<T> {
  private addon: T | undefined;

  constructor(private readonly name: string, readonly path: string, private readonly buildHint: string) {}

  /** Loads the addon now (it is loaded on first use otherwise); a clear Error when it is not built. */
  load(): T {
    if (this.addon !== undefined) return this.addon;
    if (!fs.existsSync(this.path)) {
      throw new Error(`${this.name} addon not built: ${this.path} is missing; ${this.buildHint}`);
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      this.addon = require(this.path) as T;
    } catch (e) {
      const err = new Error(`${this.name} addon at ${this.path} cannot be loaded (${(e as Error).message}); ${this.buildHint}`);
      (err as Error & { cause?: unknown }).cause = e;
      throw err;
    }
    return this.addon;
  }

  /** True when the addon is built and loads. */
  available(): boolean {
    try {
      this.load();
      return true;
    } catch {
      return false;
    }
  }

  /** The loaded addon (loading it on first use). */
  get(): T {
    return this.addon ?? this.load();
  }
}
