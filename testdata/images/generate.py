#!/usr/bin/env python3
"""Regenerate the disk images in testdata/images/ (see README.md there).

Real images come from `qemu-img create/convert`; the malicious and broken
shapes are qemu images patched byte by byte here, or built from their
specifications (ISO volume descriptors, MBRs, FAT boot sectors). Needs
python3 (stdlib only) and qemu-img; run it from anywhere:

    python3 testdata/images/generate.py

The portcullis product never runs qemu-img; only this generator and the
tests that compare portcullis with `qemu-img info` do.
"""

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid

OUT = os.path.dirname(os.path.abspath(__file__))
KEEP = {"README.md", "generate.py", "compare-oslo.py"}
MIB = 1 << 20


def qemu_img(*args, cwd=None):
    subprocess.run(["qemu-img", *args], check=True, cwd=cwd,
                   stdout=subprocess.DEVNULL)


def out(name):
    return os.path.join(OUT, name)


def read(name):
    with open(out(name), "rb") as f:
        return bytearray(f.read())


def write(name, data):
    with open(out(name), "wb") as f:
        f.write(bytes(data))


def create(name, fmt, size, *options):
    path = out(name)
    if os.path.exists(path):
        os.remove(path)
    qemu_img("create", "-q", "-f", fmt, *options, path, size)


# --- qcow2 ---------------------------------------------------------------

def qcow2_images(tmp):
    create("qcow2-v3.qcow2", "qcow2", "1M")
    create("qcow2-v2.qcow2", "qcow2", "1M", "-o", "compat=0.10")
    create("qcow2-zstd.qcow2", "qcow2", "1M", "-o", "compression_type=zstd")
    create("qcow2-extended-l2.qcow2", "qcow2", "1M", "-o", "extended_l2=on")
    create("qcow2-backing-abs.qcow2", "qcow2", "1M",
           "-u", "-b", "/etc/hosts", "-F", "raw")
    create("qcow2-v2-backing-abs.qcow2", "qcow2", "1M", "-o", "compat=0.10",
           "-u", "-b", "/etc/hosts", "-F", "raw")
    create("qcow-v1.qcow", "qcow", "1M")
    create("qcow-v1-backing-abs.qcow", "qcow", "1M",
           "-u", "-b", "/etc/hosts", "-F", "raw")

    # External data file naming /etc/hosts: qemu-img would write to the
    # data file, so create it with a 10-character relative name in a scratch
    # directory, then patch the name to the 10 characters of /etc/hosts.
    scratch = os.path.join(tmp, "data-file")
    os.mkdir(scratch)
    qemu_img("create", "-q", "-f", "qcow2", "-o", "data_file=HOSTSxxxxx",
             "image.qcow2", "1M", cwd=scratch)
    data = bytearray(open(os.path.join(scratch, "image.qcow2"), "rb").read())
    at = data.index(b"HOSTSxxxxx")
    data[at:at + 10] = b"/etc/hosts"
    write("qcow2-data-file-abs.qcow2", data)

    # The same header extension without the incompatible-feature bit.
    no_bit = bytearray(data)
    no_bit[79] &= ~0x04
    write("qcow2-data-file-ext-no-bit.qcow2", no_bit)

    # oslo calls these "raw" (< 512 bytes); qemu follows the backing file.
    write("qcow2-backing-trunc-511.qcow2", read("qcow2-backing-abs.qcow2")[:511])
    write("qcow-v1-backing-trunc-100.qcow", read("qcow-v1-backing-abs.qcow")[:100])
    write("qcow2-trunc-20.qcow2", read("qcow2-v3.qcow2")[:20])

    huge = read("qcow2-v3.qcow2")
    huge[24:32] = struct.pack(">Q", 1 << 63)
    write("qcow2-size-above-i64.qcow2", huge)

    # A valid qcow2 v2 that also carries an MBR with one partition.
    mbr = read("qcow2-v2.qcow2")
    mbr[446:462] = partition(0x80, 0x83, 2048, 2048)
    mbr[510:512] = b"\x55\xaa"
    write("polyglot-qcow2-mbr.qcow2", mbr)


# --- qed, vdi, luks ------------------------------------------------------

def other_qemu_images():
    create("qed.qed", "qed", "1M")
    create("vdi-dynamic.vdi", "vdi", "1M")
    create("vdi-static.vdi", "vdi", "1M", "-o", "static=on")
    create("luks1.luks", "luks", "1M", "--object", "secret,id=s0,data=portcullis",
           "-o", "key-secret=s0,iter-time=10")
    create("empty.raw", "raw", "0")
    create("raw-1m.raw", "raw", "1M")

    luks2 = bytearray(16384)
    luks2[0:6] = b"LUKS\xba\xbe"
    luks2[6:8] = struct.pack(">H", 2)
    write("luks2-header.luks", luks2)


# --- vhd -----------------------------------------------------------------

def vhd_checksum(footer):
    footer = bytearray(footer)
    footer[64:68] = b"\0\0\0\0"
    return struct.pack(">I", ~sum(footer) & 0xFFFFFFFF)


def patch_vhd_footers(data, patch):
    """Apply `patch(footer)` to the footer copy at 0 (if any) and the end."""
    for start in ([0] if data[:8] == b"conectix" else []) + [len(data) - 512]:
        footer = bytearray(data[start:start + 512])
        patch(footer)
        footer[64:68] = vhd_checksum(footer)
        data[start:start + 512] = footer
    return data


def vhd_images():
    create("vhd-dynamic.vhd", "vpc", "1M")
    create("vhd-fixed.vhd", "vpc", "1M", "-o", "subformat=fixed")
    create("vhd-resized.vhd", "vpc", "1M", "-o", "force_size=on")

    # Resized by a tool that updated only the current size: original size
    # (what oslo reads) is left at half the disk.
    def shrink_original(footer):
        footer[40:48] = struct.pack(">Q", 512 * 1024)
    write("vhd-resized.vhd", patch_vhd_footers(read("vhd-resized.vhd"), shrink_original))

    def differencing(footer):
        footer[60:64] = struct.pack(">I", 4)
    write("vhd-differencing.vhd",
          patch_vhd_footers(read("vhd-dynamic.vhd"), differencing))

    write("vhd-cookie-only.vhd", b"conectix")


# --- vhdx ----------------------------------------------------------------

METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le


def vhdx_file_parameters_at(data):
    table = 192 * 1024
    count = struct.unpack_from("<I", data, table + 8)[0]
    for i in range(count):
        entry = table + 16 + 32 * i
        if data[entry:entry + 16] == METADATA_REGION:
            meta = struct.unpack_from("<Q", data, entry + 16)[0]
            items = struct.unpack_from("<H", data, meta + 10)[0]
            for j in range(items):
                item = meta + 32 + 32 * j
                if data[item:item + 16] == FILE_PARAMETERS:
                    return meta + struct.unpack_from("<I", data, item + 16)[0]
    raise SystemExit("no file parameters item in vhdx-dynamic.vhdx")


def vhdx_images():
    create("vhdx-dynamic.vhdx", "vhdx", "1M")
    create("vhdx-fixed.vhdx", "vhdx", "1M", "-o", "subformat=fixed")

    parent = read("vhdx-dynamic.vhdx")
    at = vhdx_file_parameters_at(parent)
    flags = struct.unpack_from("<I", parent, at + 4)[0] | 0x2  # HasParent
    struct.pack_into("<I", parent, at + 4, flags)
    write("vhdx-differencing.vhdx", parent)

    # The region table's signature destroyed (oslo: "vhdx", size 0, safe).
    broken = read("vhdx-dynamic.vhdx")[:512 * 1024]
    broken[192 * 1024:192 * 1024 + 4] = b"\0\0\0\0"
    write("vhdx-region-table-destroyed.vhdx", broken)

    write("vhdx-truncated-200k.vhdx", read("vhdx-dynamic.vhdx")[:200 * 1024])


# --- vmdk ----------------------------------------------------------------

def vmdk_descriptor(data):
    sectors = struct.unpack_from("<Q", data, 36)[0]
    region = data[512:512 + sectors * 512]
    return region[:region.index(b"\0")].decode("ascii"), sectors * 512


def set_vmdk_descriptor(data, text):
    _, room = vmdk_descriptor(data)
    raw = text.encode("ascii")
    if len(raw) >= room:
        raise SystemExit("descriptor does not fit")
    data[512:512 + room] = raw + b"\0" * (room - len(raw))
    return data


def vmdk_footer(data):
    """A stream-optimized copy of `data` whose header defers to a footer."""
    header = bytearray(data[:512])
    gd_at_end = bytearray(header)
    gd_at_end[56:64] = struct.pack("<Q", 0xFFFFFFFFFFFFFFFF)
    marker = bytearray(512)
    struct.pack_into("<QII", marker, 0, 1, 0, 3)  # one sector, size 0, footer
    eos = bytearray(512)
    return gd_at_end + data[512:] + marker + header + eos


def vmdk_images(tmp):
    create("vmdk-sparse.vmdk", "vmdk", "1M")
    raw = os.path.join(tmp, "some-data.raw")
    qemu_img("create", "-q", "-f", "raw", raw, "1M")
    with open(raw, "r+b") as f:
        f.seek(64 * 1024)
        f.write(b"portcullis" * 100)
    qemu_img("convert", "-O", "vmdk", "-o", "subformat=streamOptimized",
             raw, out("vmdk-stream.vmdk"))
    write("vmdk-stream-footer.vmdk", vmdk_footer(read("vmdk-stream.vmdk")))
    bad = vmdk_footer(read("vmdk-stream.vmdk"))
    struct.pack_into("<I", bad, len(bad) - 1536 + 12, 2)  # marker type 2
    write("vmdk-stream-bad-footer.vmdk", bad)

    # qemu's own flat descriptor, with its relative extent beside it.
    scratch = os.path.join(tmp, "flat")
    os.mkdir(scratch)
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat",
             "vmdk-flat.vmdk", "1M", cwd=scratch)
    for name in ("vmdk-flat.vmdk", "vmdk-flat-flat.vmdk"):
        shutil.copy(os.path.join(scratch, name), out(name))

    # CVE-2022-47951: a flat descriptor whose extent is a host file.
    flat = open(out("vmdk-flat.vmdk")).read()
    write("vmdk-flat-abs-extent.vmdk",
          re.sub(r'"vmdk-flat-flat.vmdk"', '"/etc/hosts"', flat).encode())
    # A text descriptor claiming a sparse type (qemu refuses it; oslo
    # called it safe and then failed to size it).
    write("vmdk-text-claims-sparse.vmdk",
          flat.replace("monolithicFlat", "monolithicSparse")
              .replace("FLAT", "SPARSE").replace(" 0\n", "\n").encode())
    # createType after 8 KiB of comments: oslo saw it only with big reads.
    write("vmdk-text-createtype-late.vmdk",
          ("# padding line\n" * 600 + flat).encode())

    sparse = read("vmdk-sparse.vmdk")
    text, _ = vmdk_descriptor(sparse)
    write("vmdk-sparse-extent-path.vmdk", set_vmdk_descriptor(
        bytearray(sparse), text.replace('"vmdk-sparse.vmdk"', '"/etc/hosts"')))
    write("vmdk-sparse-parent-hint.vmdk", set_vmdk_descriptor(
        bytearray(sparse), text.replace(
            "parentCID=ffffffff",
            'parentCID=ffffffff\nparentFileNameHint="/var/lib/glance/images/other"')))
    wrong = bytearray(sparse)
    struct.pack_into("<Q", wrong, 28, 2)  # descriptor at sector 2
    write("vmdk-bad-descriptor-offset.vmdk", wrong)
    write("vmdk-magic-only.vmdk", b"KDMV")


# --- iso, mbr, fat ------------------------------------------------------

def iso(sectors=64):
    image = bytearray(sectors * 2048)
    pvd = bytearray(2048)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    pvd[6] = 1
    pvd[8:40] = b"PORTCULLIS".ljust(32)
    pvd[40:72] = b"TESTDATA".ljust(32)
    struct.pack_into("<I", pvd, 80, sectors)
    struct.pack_into(">I", pvd, 84, sectors)
    struct.pack_into("<H", pvd, 128, 2048)
    struct.pack_into(">H", pvd, 130, 2048)
    image[16 * 2048:17 * 2048] = pvd
    terminator = bytearray(2048)
    terminator[0] = 255
    terminator[1:6] = b"CD001"
    terminator[6] = 1
    image[17 * 2048:18 * 2048] = terminator
    return image


def partition(boot, kind, start, size, chs=b"\x00\x02\x00"):
    return bytes([boot]) + chs + bytes([kind]) + b"\xfe\xff\xff" + \
        struct.pack("<II", start, size)


def mbr(entries, size=MIB):
    image = bytearray(size)
    for index, entry in entries:
        image[446 + 16 * index:462 + 16 * index] = entry
    image[510:512] = b"\x55\xaa"
    return image


def fat(fats, media):
    image = bytearray(MIB)
    image[0:3] = b"\xeb\x3c\x90"
    image[3:11] = b"MSDOS5.0"
    struct.pack_into("<HBHBHHBH", image, 11, 512, 4, 1, fats, 512, 2048, media, 2)
    image[38] = 0x29
    image[54:62] = b"FAT12   "
    image[510:512] = b"\x55\xaa"
    return image


def disc_and_partition_images():
    write("iso-pvd.iso", iso())
    hybrid = iso()
    hybrid[446:462] = partition(0x80, 0x17, 0, 256, chs=b"\x00\x01\x00")
    hybrid[510:512] = b"\x55\xaa"
    write("iso-hybrid-mbr.iso", hybrid)
    # qemu probes this one as qcow2 and follows its backing file.
    with_qcow2 = iso()
    header = read("qcow2-backing-abs.qcow2")[:4096]
    with_qcow2[:4096] = header
    write("polyglot-iso-qcow2.iso", with_qcow2)
    with_vmdk = iso()
    with_vmdk[:16 * 2048] = read("vmdk-sparse.vmdk")[:16 * 2048]
    write("polyglot-iso-vmdk.iso", with_vmdk)

    gpt = mbr([(0, partition(0x00, 0xEE, 1, 2047))])
    gpt[512:520] = b"EFI PART"
    write("gpt-protective.img", gpt)
    write("mbr-linux.img", mbr([(0, partition(0x80, 0x83, 63, 1985, b"\x01\x01\x00"))]))
    hybrid_mbr = mbr([(0, partition(0x00, 0xEE, 1, 1023)),
                      (1, partition(0x80, 0x83, 1024, 1024, b"\x20\x21\x00"))])
    hybrid_mbr[512:520] = b"EFI PART"
    write("mbr-hybrid.img", hybrid_mbr)
    write("mbr-no-partitions.img", mbr([]))
    write("fat-two-fats.img", fat(2, 0xF8))
    write("fat-one-fat.img", fat(1, 0xF0))

    text = ("# a text file that turns binary after 512 bytes\n" * 12).encode()
    write("text-then-binary.img", text + bytes(range(256)) * 4)


# --- truncated headers (issue 8) -----------------------------------------

def truncated_images():
    """Files cut inside a header or the metadata a header points to: each
    matches its format and is incomplete, so never safe. Made from the
    images above, so run after them (or alone, from the committed images:
    `python3 -c 'import generate; generate.truncated_images()'`)."""
    write("vhd-dynamic-trunc-511.vhd", read("vhd-dynamic.vhd")[:511])
    write("vhd-dynamic-trunc-1536.vhd", read("vhd-dynamic.vhd")[:1536])
    write("vdi-dynamic-trunc-400.vdi", read("vdi-dynamic.vdi")[:400])
    write("luks1-trunc-8.luks", read("luks1.luks")[:8])
    write("luks1-trunc-4096.luks", read("luks1.luks")[:4096])
    write("vmdk-sparse-trunc-32k.vmdk", read("vmdk-sparse.vmdk")[:32768])
    write("qcow2-v3-trunc-104.qcow2", read("qcow2-v3.qcow2")[:104])
    write("qed-trunc-3.qed", b"QED")


def main():
    if shutil.which("qemu-img") is None:
        sys.exit("qemu-img is needed (Debian: apt-get install qemu-utils)")
    for name in os.listdir(OUT):
        if name not in KEEP:
            os.remove(out(name))
    with tempfile.TemporaryDirectory() as tmp:
        qcow2_images(tmp)
        other_qemu_images()
        vhd_images()
        vhdx_images()
        vmdk_images(tmp)
        disc_and_partition_images()
    truncated_images()
    images = [name for name in os.listdir(OUT) if name not in KEEP]
    print(f"wrote {len(images)} images to {OUT}")


if __name__ == "__main__":
    main()
