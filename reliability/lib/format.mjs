/**
 * The vecdex index file layout, as far as the reliability suite needs it: enough to find the
 * header, the section table and the checksums, so tests can damage a file precisely (flip a
 * header byte, cut at a section boundary) or re-seal it (recompute CRCs after a change, to reach
 * the structural checks behind the checksums).
 *
 * Layout (little-endian; see crates/vecdex-store/src/format.rs):
 *   0 magic "VECDEXIX" (8) · 8 version u32 · 12 header length H u32 · 16 kind u8 · 17 metric u8 ·
 *   18 reserved (2) · 20 dimensions u32 · 24 count u64 · 32 config length C u32 ·
 *   36 section count S u32 · 40 config (C) · padding · section table T (S × 32 bytes:
 *   id u32, reserved u32, offset u64, length u64, crc32c u32, reserved u32) · CRC-32C of
 *   bytes 0 .. T + 32S (u32), ending at H · section payloads.
 * The table is located from H (T = H − 4 − 32S), which holds whatever padding rule the writer
 * uses, and cross-checked against the rest of the header by {@link parseLayout}.
 */

export const KIND_BYTE = 16
const ENTRY = 32

const TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32C (Castagnoli) of `bytes`. */
function crc32c(bytes) {
  let c = 0xffffffff
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/**
 * The header fields and section table of a valid file image; throws if the image does not
 * match the layout above (the suite then tests the wrong thing, so it must stop).
 */
export function parseLayout(buf) {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.toString('latin1', 0, 8) !== 'VECDEXIX') throw new Error('layout: no magic')
  const headerLength = view.readUInt32LE(12)
  const configLength = view.readUInt32LE(32)
  const sectionCount = view.readUInt32LE(36)
  const tableOffset = headerLength - 4 - ENTRY * sectionCount
  if (tableOffset < 40 + configLength || tableOffset % 8 !== 0) throw new Error(`layout: table offset ${tableOffset} does not follow the header`)
  if (view.readUInt32LE(headerLength - 4) !== crc32c(view.subarray(0, headerLength - 4))) throw new Error('layout: header CRC mismatch')
  const sections = []
  for (let i = 0; i < sectionCount; i++) {
    const at = tableOffset + i * ENTRY
    const section = {
      id: view.readUInt32LE(at),
      entryOffset: at,
      offset: Number(view.readBigUInt64LE(at + 8)),
      length: Number(view.readBigUInt64LE(at + 16)),
      crc: view.readUInt32LE(at + 24),
    }
    if (section.offset + section.length > view.length) throw new Error(`layout: section ${i} runs past the end`)
    if (crc32c(view.subarray(section.offset, section.offset + section.length)) !== section.crc) throw new Error(`layout: section ${i} CRC mismatch`)
    sections.push(section)
  }
  return { kind: view[KIND_BYTE], version: view.readUInt32LE(8), headerLength, configLength, sectionCount, tableOffset, sections }
}

/** Recomputes the header CRC of `buf` in place (after a header or table change). */
export function resealHeader(buf, layout) {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  view.writeUInt32LE(crc32c(view.subarray(0, layout.headerLength - 4)), layout.headerLength - 4)
}

/**
 * Re-seals `buf` after bytes at `positions` changed: recomputes the CRC of every section whose
 * payload or table entry holds a changed byte (from the offset and length now in its entry,
 * when they still lie inside the buffer), then the header CRC. The table is where `layout` (of
 * the original image) found it.
 */
export function reseal(buf, layout, positions) {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  for (const s of layout.sections) {
    const offset = Number(view.readBigUInt64LE(s.entryOffset + 8))
    const length = Number(view.readBigUInt64LE(s.entryOffset + 16))
    if (offset + length > view.length) continue
    const touched = positions.some((p) => (p >= offset && p < offset + length) || (p >= s.entryOffset && p < s.entryOffset + 32))
    if (touched) view.writeUInt32LE(crc32c(view.subarray(offset, offset + length)), s.entryOffset + 24)
  }
  resealHeader(buf, layout)
}
