"""glibc's mmap threshold is fixed at start (``monitor.allocator``), unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from monitor.allocator import fix_mmap_threshold

# a child process, so this one keeps its allocator as it was
CHILD = """
import sys
from monitor.allocator import fix_mmap_threshold
print(fix_mmap_threshold(int(sys.argv[1])))
"""


def child(nbytes: int, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(nbytes)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_the_threshold_is_fixed_on_glibc() -> None:
    assert child(131_072) == "True"


def test_zero_leaves_the_default_and_the_environment_wins() -> None:
    assert fix_mmap_threshold(0) is False
    assert child(131_072, MALLOC_MMAP_THRESHOLD_="262144") == "False"
