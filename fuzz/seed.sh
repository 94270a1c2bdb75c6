#!/usr/bin/env bash
# Seeds fuzz/corpus/inspect/ from testdata/images/ (mode 0, chunk 511):
# the small images whole, the large ones cut to their first 64 KiB.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/inspect
for image in ../testdata/images/*; do
    case "$image" in *.md|*.py) continue ;; esac
    { printf '\x00\xff\x01'; head -c 65536 "$image"; } > "corpus/inspect/$(basename "$image")"
done
echo "seeded $(ls corpus/inspect | wc -l) inputs"

# A spread-mode seed (mode 1: thirds at 0, 192 KiB, 1 MiB; region table CRC
# recomputed by the target) made from the qemu VHDX, its metadata region
# moved to 1 MiB, so the fuzzer starts inside the VHDX metadata parser.
python3 - <<'PY'
import struct
data = open("../testdata/images/vhdx-dynamic.vhdx", "rb").read()
table = bytearray(data[192 * 1024:192 * 1024 + 4096])
count = struct.unpack_from("<I", table, 8)[0]
meta = None
for i in range(count):
    entry = 16 + 32 * i
    offset = struct.unpack_from("<Q", table, entry + 16)[0]
    if offset not in (0, 1 << 20) and meta is None and table[entry:entry + 4] == bytes.fromhex("06a27c8b"):
        meta = offset
        struct.pack_into("<Q", table, entry + 16, 1 << 20)
part3 = data[meta:meta + 4096]
with open("corpus/inspect/vhdx-spread", "wb") as f:
    f.write(b"\x01\x10\x00" + data[:4096] + bytes(table) + part3)
PY
echo "seeded vhdx-spread"
