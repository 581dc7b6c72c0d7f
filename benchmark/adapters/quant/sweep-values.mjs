// Sweep values shared by the quant adapters.

/**
 * An efSearch sweep for an engine that keeps at least `floor` candidates whatever efSearch is
 * (k × oversample when it rescores): the efs below `floor` all search alike, so they become one
 * point at `floor`.
 */
export function efSweepFrom(efs, floor) {
  if (!(floor > efs[0])) return efs
  return [floor, ...efs.filter((ef) => ef > floor)]
}

/**
 * The sweep of an engine that rescores k × oversample candidates and walks its graph with
 * max(efSearch, k × oversample) of them: below k × oversample, the oversample follows efSearch
 * down (⌊ef / k⌋, at least 1), so the low end of the curve exists too — on easy data the
 * default oversample alone may already be above the recall levels of interest; from
 * k × oversample on, efSearch grows at the given oversample. Values: { efSearch, oversample,
 * label: "ef ×oversample" }.
 */
export function rescoringSweep(efs, k, oversample) {
  const floor = k * oversample
  const out = []
  for (const ef of efs) {
    if (ef >= floor) break
    const os = Math.max(1, Math.floor(ef / k))
    out.push({ efSearch: ef, oversample: os, label: `${ef} ×${os}` })
  }
  for (const ef of efSweepFrom(efs, floor)) out.push({ efSearch: ef, oversample, label: `${ef} ×${oversample}` })
  return out
}
