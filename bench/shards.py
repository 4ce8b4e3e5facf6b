"""A demo export several times the generator's size: copies of one export, ids renamed apart.

The demo generator holds its whole book in memory (about 4 GB at 123,000 contracts, ~1M
invoice lines; ~20 GB would be needed for 5M lines). A larger book for the benchmark is made
from `shards` copies of one generated export: copy k (k >= 1) has every id of the export
renamed so that no id of one copy is an id of another (Salesforce ids `...DEMO...` become
`...D00k...`, Stripe ids `..._demo...` become `..._d00k...` and the demo's other Stripe ids,
`in_line...`, `cus_orphan...`, `ch_plant_alarms...`, become `in_s{k}line...` and so on),
and the files are the copies' files one after another (a CSV's header once). Each copy
is the same book of business under other names, so a reconcile of the whole finds each
copy's findings once per copy: `shards` times as many findings, matches and money.

    python bench/shards.py var/bench/book-123000 var/bench/book-615000 5
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

_BLOCK_BYTES = 16 << 20
# The demo's Stripe ids that carry no `demo` (demo_lines, demo_credits, demo_health,
# demo_invoices' orphans): `in_line0102...`, `cus_orphan00001`, `ch_plant_alarms_1`; keys
# and values such as "salesforce_line_id" or "invoice_line_item" are left alone.
_OTHER_IDS = re.compile(
    rb'(^|[,"])([a-z]+)_(line(?=\d)|orphan(?=\d)|plant(?=_alarm))', re.MULTILINE
)


def renamed(data: bytes, shard: int) -> bytes:
    """`data` (whole lines of an export file) with its ids renamed for copy `shard`; copy 0
    is the export as it is."""
    if shard == 0:
        return data
    tag = f"{shard:03d}".encode()
    data = data.replace(b"DEMO", b"D" + tag).replace(b"demo", b"d" + tag)
    return _OTHER_IDS.sub(rb"\1\2_s" + str(shard).encode() + rb"\3", data)


def _blocks(path: Path, skip_header: bool) -> Iterator[bytes]:
    with path.open("rb") as handle:
        if skip_header:
            handle.readline()
        while block := handle.read(_BLOCK_BYTES) + handle.readline():
            yield block


def write_shards(source: Path, target: Path, shards: int) -> None:
    """`target`: the export `source` as `shards` copies with ids renamed apart. Written to a
    temporary folder renamed when whole, so a cut-short run leaves no half book."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        with (partial / path.name).open("wb") as out:
            for shard in range(shards):
                csv = path.suffix == ".csv"
                if csv and shard == 0:
                    out.write(path.open("rb").readline())
                for block in _blocks(path, skip_header=csv):
                    text = renamed(block, shard)
                    out.write(text if text.endswith(b"\n") or not text else text + b"\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


if __name__ == "__main__":
    write_shards(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
