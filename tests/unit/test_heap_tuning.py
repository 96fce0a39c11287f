"""The allocator tuning ``crmsync evaluate`` applies before it forks its workers."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import resource, sys
from crmsync.heap_tuning import keep_large_blocks_on_the_heap
if sys.argv[1] == "tuned" and not keep_large_blocks_on_the_heap():
    print("untuned")
    raise SystemExit
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def round():  # a window of chunk texts in flight (sizes vary), then all freed
    blocks = [bytearray(size << 20) for size in (4, 9, 5, 8)]
    for block in blocks:  # touch every page, as filling a text does
        block[::4096] = b"x" * (len(block) // 4096)
    del blocks
round()  # the first round may fault: the heap grows once
before = faults()
for _ in range(50):
    round()
print(faults() - before)
"""


def _faults(mode: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_large_blocks_are_reused_instead_of_faulted_in_again() -> None:
    """Fifty rounds of a window of chunk-sized texts (4, 9, 5 and 8 MiB) filled and freed:
    glibc's default gives the freed heap top back to the kernel (it exceeds the trim
    threshold) and faults every page in again next round, about 330,000 faults in all;
    tuned, the memory is kept and reused and no fault is left."""
    tuned = _faults("tuned")
    if tuned == "untuned":
        pytest.skip("this C library has no mallopt (not glibc): the tuning is a no-op here")
    default = int(_faults("default"))
    assert default > 100_000
    assert int(tuned) < 1_000


def test_preparing_to_fork_freezes_what_is_alive() -> None:
    """After ``prepare_to_fork_workers`` the objects alive then are frozen: collections
    no longer walk them (in a child process, so this test's process is left as it was)."""
    probe = (
        "import gc\n"
        "from crmsync.heap_tuning import prepare_to_fork_workers\n"
        "prepare_to_fork_workers()\n"
        "print(gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert int(done.stdout) > 1000
