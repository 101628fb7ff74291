/**
 * Atomic file replacement: after a power cut at any instant the path holds either the old content
 * or the new one, complete, never a zero-length or half-written file. Order: write a temp file in
 * the same directory, fsync it, rename it over the target, fsync the directory (so the rename
 * itself is durable). One writer per path at a time (the callers serialise their writes).
 */
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  // Temp files left by a write that a crash interrupted: never read, removed here so they cannot pile up.
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (f.startsWith(prefix) && f.endsWith('.tmp')) await unlink(join(dir, f)).catch(() => {});
  }
  const tmp = join(dir, `${prefix}${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename is then as durable as they allow.
  } finally {
    await dh.close();
  }
}
