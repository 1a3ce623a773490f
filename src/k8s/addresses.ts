// Pod addresses for endpoints that do not say theirs (PolicyTest endpoints without `ip`, workloads
// from manifests): deterministic, so the same input always gets the same addresses.

/**
 * Allocates addresses from 10.0.0.0/16 in order, skipping every address in `used` and the .0/.255
 * of each /24 (so allocated addresses look like pod IPs). Deterministic: same input, same IPs.
 */
export class IPAllocator {
  private next = 1;
  constructor(private readonly used: Set<string>) {}

  allocate(): string | undefined {
    while (this.next < 65536) {
      const n = this.next++;
      const lo = n & 0xff;
      if (lo === 0 || lo === 255) continue;
      const ip = `10.0.${n >> 8}.${lo}`;
      if (this.used.has(ip)) continue;
      this.used.add(ip);
      return ip;
    }
    return undefined;
  }
}
