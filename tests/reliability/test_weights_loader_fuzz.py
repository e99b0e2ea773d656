"""A small fuzz of the exported weights loader: a few thousand mutated weights files through
`<name>_init`, under AddressSanitizer and UBSan when the C compiler has them. Every mutated file
must be refused (unless it equals the original) without a memory error, and the library must
keep working after each refusal."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import runtime
from compiler._export import export
from runtime import nn

CC = shutil.which("cc")
MUTATIONS = 3000

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzzed.h"

static unsigned char original[1 << 16], mutated[1 << 17];
static unsigned long long state = 20261208;

static unsigned long long next(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 17;
}

static int load(const char *path, const unsigned char *data, long size) {
    FILE *f = fopen(path, "wb");
    if (size) fwrite(data, 1, (size_t)size, f);
    fclose(f);
    return (int)fuzzed_init(path);
}

int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb");
    long size = (long)fread(original, 1, sizeof original, f);
    fclose(f);
    const char *scratch = argv[2];
    int count = atoi(argv[3]);
    float input[FUZZED_INPUT_SIZE(2)] = {0}, output[FUZZED_OUTPUT_SIZE(2)];
    long accepted_changed = 0, refused = 0;
    if (load(scratch, original, size) != FUZZED_OK) { puts("original refused"); return 1; }
    for (int n = 0; n < count; n++) {
        long length = size;
        memcpy(mutated, original, (size_t)size);
        switch (next() % 6) {
        case 0: /* a few random bytes anywhere */
            for (int k = 1 + (int)(next() % 8); k > 0; k--)
                mutated[next() % size] = (unsigned char)next();
            break;
        case 1: /* truncated */
            length = (long)(next() % (unsigned long long)size);
            break;
        case 2: /* extended with junk */
            length = size + 1 + (long)(next() % 4096);
            for (long i = size; i < length; i++) mutated[i] = (unsigned char)next();
            break;
        case 3: /* a header byte */
            mutated[next() % 64] = (unsigned char)next();
            break;
        case 4: { /* the payload size: huge, zero, off by a little */
            unsigned long long v[] = {0, ~0ULL, 1ULL << 62, (unsigned long long)size, 64};
            memcpy(mutated + 24, &v[next() % 5], 8);
            break;
        }
        default: /* a run of bytes copied from elsewhere in the file */
            { long from = (long)(next() % size), to = (long)(next() % size);
              long run = 1 + (long)(next() % 256);
              if (from + run > size) run = size - from;
              if (to + run > size) run = size - to;
              memmove(mutated + to, mutated + from, (size_t)run); }
        }
        int code = load(scratch, mutated, length);
        int same = length == size && memcmp(mutated, original, (size_t)size) == 0;
        if (code == FUZZED_OK && !same) accepted_changed++;
        if (code != FUZZED_OK) refused++;
        if (fuzzed_forward(input, 2, output) != FUZZED_OK) { puts("forward failed"); return 1; }
    }
    printf("refused %ld\naccepted_changed %ld\n", refused, accepted_changed);
    return 0;
}
"""


def _sanitizer_flags(folder: Path) -> list[str]:
    """-fsanitize=address,undefined when cc can build and run such a program here, else []."""
    probe = folder / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
    built = subprocess.run([CC, *flags, "-o", str(folder / "probe"), str(probe)],
                           capture_output=True)
    if built.returncode != 0 or subprocess.run([str(folder / "probe")]).returncode != 0:
        return []
    return flags


@pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")
def test_mutated_weights_files_are_refused_without_memory_errors(tmp_path):
    runtime.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    result = export(model, (runtime.zeros(1, 4),), tmp_path / "fuzzed", "fuzzed",
                    embed_weights=False)
    folder = result.out_dir
    (folder / "fuzz.c").write_text(DRIVER)
    flags = _sanitizer_flags(tmp_path)
    built = subprocess.run([CC, "-O1", *flags, "-o", "fuzz", "fuzz.c", "fuzzed.o", "-lm",
                            "-pthread"], cwd=folder, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # rewritten 3000 times
    with tempfile.TemporaryDirectory(dir=memory) as scratch:
        run = subprocess.run([str(folder / "fuzz"), str(result.weights),
                              str(Path(scratch) / "mutated.weights"), str(MUTATIONS)],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "UBSAN_OPTIONS": "halt_on_error=1"})
    assert run.returncode == 0, f"{'sanitized ' if flags else ''}loader failed:\n{run.stdout}" \
                                f"{run.stderr[-3000:]}"
    counts = {key: int(value) for key, value in (line.split() for line in run.stdout.splitlines())}
    assert counts["accepted_changed"] == 0, "a changed weights file was accepted"
    assert counts["refused"] > MUTATIONS * 0.95
