"""`symgrad cache info|clear`: what the cache folder holds, and emptying it.

`info` prints the folder, its entries, their bytes and the size cap (and why the folder is not
used, when it is not); `clear` removes symgrad's entries only -- never another file of the folder,
nor the folder's key. See `compiler.cache_folder` for what the folder is and why it is trusted.
"""

from __future__ import annotations

import argparse
import os

from compiler import cache_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("info", "clear"),
                        help="info: the folder, its entries, bytes and size cap; clear: remove "
                             "symgrad's entries (nothing else)")


def _size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count:,} bytes ({count / (1 << shift):.1f} {unit})"
    return f"{count:,} bytes"


def _status(usage: cache_folder.Usage) -> str:
    if not cache_folder.enabled():
        return "off (SYMGRAD_ARTIFACT_CACHE=0)"
    if not os.path.isdir(usage.folder) and not os.path.islink(usage.folder):
        return "not created yet (made, private to you, by the first compile)"
    reason = cache_folder.untrusted_reason(usage.folder)
    if reason is not None:
        return f"NOT USED: it {reason}; {cache_folder.fix_for(usage.folder, reason)}"
    return "in use"


def run(args: argparse.Namespace) -> int:
    if args.action == "clear":
        folder = cache_folder.location()
        removed = cache_folder.clear()
        print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {folder}")
        return 0
    usage = cache_folder.usage()
    print(f"folder   {usage.folder}")
    print(f"status   {_status(usage)}")
    print(f"entries  {usage.entries}")
    print(f"bytes    {_size(usage.bytes)}")
    print(f"cap      {_size(usage.max_bytes)} (set with SYMGRAD_CACHE_MAX_BYTES, e.g. 2G)")
    return 0
