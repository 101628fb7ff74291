import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from './store.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Store.write', () => {
  // It reaches past classic-level's public API (its `_batch`): this fails if a new version moves it.
  it('writes puts and deletes in one batch through classic-level', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
    const store = new Store(dir, false);
    const db = await store.open();
    await store.write([{ type: 'put', key: Buffer.from('a'), value: Buffer.from('1') }, { type: 'put', key: Buffer.from('b'), value: Buffer.from('2') }], true);
    await store.write([{ type: 'del', key: Buffer.from('a') }, { type: 'put', key: Buffer.from('c'), value: Buffer.from([0, 255]) }], false);
    expect(await db.get(Buffer.from('a'))).toBeUndefined();
    expect(await db.get(Buffer.from('b'))).toEqual(Buffer.from('2'));
    expect(await db.get(Buffer.from('c'))).toEqual(Buffer.from([0, 255]));
    await store.close();
  });

  it('refuses a write to a closed database with a clear error', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
    const store = new Store(dir, false);
    await store.open();
    await store.close();
    await expect(store.write([{ type: 'put', key: Buffer.from('a'), value: Buffer.from('1') }], true)).rejects.toThrow(/not open/);
  });
});
