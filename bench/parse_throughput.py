"""How fast the hub turns characteristic values into readings, next to unpacking the same bytes alone.

Decodes a realistic mix of values (what a home of devices sends in a day: mostly heart-rate and
continuous-oximetry notifications, CGM records, some stored glucose records, a few blood pressures,
weights, temperatures, body compositions and battery levels) through ``registry.decode``, on one core,
for a few seconds, and prints values per second. The floor is ``struct.unpack`` of bytes of the same
lengths (no flags, no checks, no Decimal, no readings): the ratio says what parsing properly costs.

    .venv/bin/python bench/parse_throughput.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable

from edge_agent.gatt import decode

# (short UUID, value as hex, weight in the mix): one value of each kind a home sends, field by field in
# the service modules' tests. The weights are rough daily shares of notifications.
MIX: list[tuple[str, str, int]] = [
    ("2a37", "16 48 2003", 30),  # heart rate 72, contact detected, one RR interval
    ("2a37", "1e 4c d204 2003 1f03", 10),  # heart rate 76, energy, two RR intervals
    ("2a5f", "1c 6100 4000 8000 000000 19f0", 20),  # continuous SpO2/PR, statuses, PAI
    ("2a5f", "03 6100 4000 6000 4200 cff3 3f00", 5),  # with fast and slow
    ("2aa7", "0d e3 7800 0500 02 14 01 02f0 e5f3", 10),  # CGM record, annunciation, trend, quality
    ("2aa7", "06 00 7800 0600 06 00 7d00 0b00", 5),  # two CGM records
    ("2a18", "1b 0700 e807030f081e05 fbff 61b0 11 0100", 5),  # stored glucose record
    ("2a35", "1e 7900 5100 29f4 e807030f081e05 4800 01 0d00", 3),  # blood pressure
    ("2a5e", "0f 6100 4000 e807030f081e05 8040 202000 19f0", 3),  # spot-check SpO2
    ("2a9d", "0e 8638 e807030f081e05 03 ec00 d906", 2),  # weight with BMI and height
    ("2a9c", "fe0f e100 e807030f081e05 02 6419 9101 d117 4c2c c427 101f 0314 8638 d906", 1),
    ("2a1c", "06 4c0e00fe e807030f081e05 06", 2),  # temperature, mouth
    ("2a19", "4b", 2),  # battery level
    ("2a52", "06 00 01 01", 1),  # RACP: success
]


def _workload() -> list[tuple[str, bytes]]:
    values = [(uuid, bytes.fromhex(hex_value)) for uuid, hex_value, weight in MIX for _ in range(weight)]
    # The hub receives UUIDs in bleak's 128-bit form; decode normalises whatever it is given.
    return [(f"0000{uuid}-0000-1000-8000-00805f9b34fb", data) for uuid, data in values]


def _rate(run: Callable[[], int], seconds: float) -> float:
    """Values per second of ``run`` (which processes the whole workload and returns its size)."""
    run()  # warm up: imports, caches
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += run()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3)")
    args = parser.parse_args()
    workload = _workload()
    # The floor: one struct.unpack of each value as that many unsigned bytes, the same lengths.
    formats = [(struct.Struct(f"<{len(data)}B"), data) for _, data in workload]

    def parse_all() -> int:
        readings = 0
        for uuid, data in workload:
            readings += len(decode(uuid, data))
        assert readings > 0
        return len(workload)

    def unpack_all() -> int:
        for fmt, data in formats:
            fmt.unpack(data)
        return len(formats)

    mean_length = sum(len(d) for _, d in workload) / len(workload)
    print(f"{len(workload)} values in the mix, {len(MIX)} kinds, {mean_length:.1f} bytes on average")
    decoded = _rate(parse_all, args.seconds)
    unpacked = _rate(unpack_all, args.seconds)
    print(f"registry.decode (parse + readings): {decoded:>12,.0f} values/s per core")
    print(f"struct.unpack of the same lengths:  {unpacked:>12,.0f} values/s per core")
    print(f"ratio: decode costs {unpacked / decoded:.1f}x a bare unpack ({1e6 / decoded:.1f} us per value)")


if __name__ == "__main__":
    main()
