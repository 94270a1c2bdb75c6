#!/usr/bin/env python3
"""Compare portcullis's verdicts with oslo.utils' on every image here.

A developer tool, not a test (CI does not install oslo.utils):

    python3 -m venv /tmp/oslo && /tmp/oslo/bin/pip install oslo.utils==10.2.0 cryptography
    cargo build && /tmp/oslo/bin/python testdata/images/compare-oslo.py target/debug/portcullis

oslo reads through InspectWrapper in 64 KiB chunks (Glance's filesystem
store chunk size), as Glance's upload does. Each line says `same` or `DIFF`;
every DIFF is one of the deliberate differences listed in
/work/team/notes-inspect.md (hardening) or a difference of presentation
(oslo raises for several formats or incomplete files; portcullis reports
`polyglot` or `structure`; both refuse).
"""

import json
import logging
import os
import subprocess
import sys

from oslo_utils.imageutils import format_inspector as fi

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_IMAGES = {"README.md", "generate.py", "compare-oslo.py"}


def oslo(path):
    wrapper = fi.InspectWrapper(open(path, "rb"))
    while wrapper.read(65536):
        pass
    wrapper.close()
    try:
        found = wrapper.format
    except Exception as e:  # oslo raises for several formats, and crashes
        return "error", None, f"{type(e).__name__}: {str(e)[:60]}"
    try:
        found.safety_check()
        safety = "safe"
    except fi.SafetyCheckFailed as e:
        safety = "fail:" + ",".join(sorted(e.failures))
    except fi.ImageFormatError as e:
        safety = f"error: {e}"
    try:
        size = found.virtual_size
    except Exception as e:  # a LUKS header shorter than 168 bytes raises
        size = f"error ({type(e).__name__})"
    return str(found), size, safety


def ours(binary, path):
    out = subprocess.run([binary, "inspect", "--format", "json", path],
                         capture_output=True, check=False).stdout
    report = json.loads(out)
    safety = "safe" if report["safe"] else "fail:" + ",".join(sorted(report["failures"]))
    return report["format"] or "error", report["virtual_size"], safety


def main():
    logging.disable(logging.CRITICAL)
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/portcullis"
    for name in sorted(os.listdir(HERE)):
        if name in NOT_IMAGES:
            continue
        path = os.path.join(HERE, name)
        theirs, mine = oslo(path), ours(binary, path)
        size_same = theirs[1] == mine[1] or (theirs[1] == 0 and mine[1] is None)
        same = theirs[0] == mine[0] and size_same and theirs[2] == mine[2]
        print(f"{'same' if same else 'DIFF'} {name:36} oslo: {theirs[0]} {theirs[1]} {theirs[2]}"
              f" | portcullis: {mine[0]} {mine[1]} {mine[2]}")


if __name__ == "__main__":
    main()
