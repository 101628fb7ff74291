/** Test helper: runs `sluice ARGS` (or one command's function) in-process and captures what it prints. */
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface Printed {
  code: number;
  out: string;
  err: string;
}

/** Runs `command` with stdout and stderr captured (and restored after): its exit code and what it printed. */
export async function captureOutput(command: () => Promise<number>): Promise<Printed> {
  let out = '';
  let err = '';
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
      out += String(c);
      return true;
    }),
    vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
      err += String(c);
      return true;
    }),
  ];
  try {
    return { code: await command(), out, err };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

export const sluice = (...args: string[]): Promise<Printed> => captureOutput(() => main(args));
