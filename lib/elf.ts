/**
 * A shared library cut short (an interrupted download or extract, a full
 * disk) must fail to load with an error, not kill the process: dlopen maps
 * its segments, and touching the part of a mapping past the end of the file
 * raises SIGBUS. So, before loading, the loader checks that a 64-bit
 * little-endian ELF file (Linux on x86-64 and arm64) holds every byte its
 * headers point to: the segments it loads and the section header table.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const PT_LOAD = 1;

/** Why the ELF file at `path` is incomplete, or undefined (also for a file that is not a 64-bit LE ELF). */
export function truncatedElf(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const read = (offset: number, bytes: number): Buffer | undefined => {
      if (offset + bytes > size) return undefined;
      const b = Buffer.alloc(bytes);
      return readSync(fd, b, 0, bytes, offset) === bytes ? b : undefined;
    };
    const head = read(0, 64);
    // \x7fELF, class 2 (64-bit), data 1 (little-endian): other files are the loader's to judge.
    if (!head || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return undefined;
    const cut = (what: string, end: number) => `the ELF file is truncated: ${size} bytes, its ${what} reaches byte ${end}`;
    // (e_shnum 0 and e_phnum 0xffff put the real counts in section 0, as no
    // shared library of ours needs: the tables are then checked no further.)
    const shEnd = Number(head.readBigUInt64LE(0x28)) + head.readUInt16LE(0x3a) * head.readUInt16LE(0x3c);
    if (shEnd > size) return cut('section header table', shEnd);
    const phOff = Number(head.readBigUInt64LE(0x20)), phSize = head.readUInt16LE(0x36), phNum = head.readUInt16LE(0x38);
    if (phNum === 0xffff) return undefined;
    const table = read(phOff, phSize * phNum);
    if (!table) return cut('program header table', phOff + phSize * phNum);
    for (let k = 0; k < phNum; k++) {
      const at = k * phSize;
      if (table.readUInt32LE(at) !== PT_LOAD) continue;
      const end = Number(table.readBigUInt64LE(at + 8)) + Number(table.readBigUInt64LE(at + 0x20));  // p_offset + p_filesz
      if (end > size) return cut(`segment ${k}`, end);
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
