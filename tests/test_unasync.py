"""The sync face of the cache's control flow is the asyncio source, rewritten and up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import unasync  # noqa: E402  # scripts/ is not a package


def test_unasync_rewrites_awaits_types_and_asyncio_names() -> None:
    source = (
        "async def aget(self) -> Awaitable[int]:\n"
        "    return await self.guard.acall(l2.aget_value, key)\n"
    )
    assert unasync.unasync(source) == (
        "def get(self) -> int:\n    return self.guard.call(l2.get_value, key)\n"
    )


def test_the_generated_sync_files_match_their_asyncio_source() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts/unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert sorted(path.name for path in unasync.TARGET.glob("*.py")) == sorted(
        path.name for path in unasync.SOURCE.glob("*.py")
    )
