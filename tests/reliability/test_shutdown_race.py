"""Closing the store while other threads still read from it must not crash the process.

The app's shutdown stops its job queue without waiting, then closes the service:
a training job still running reads versions on its own thread's connection while
`Database.dispose` closes that connection. Before the fix that was a segfault
(exit status 139) of whichever process did it: a server being stopped, or the
test run itself (the API fuzz tests start such jobs).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

RACE = textwrap.dedent(
    """
    import sys, threading
    from sqlalchemy import select
    from salescast.store import Database
    from salescast.store.schema import Product

    statement = select(Product.data_version).where(Product.id == "p")
    for attempt in range(int(sys.argv[2])):
        db = Database(f"sqlite:///{sys.argv[1]}/store-{attempt}.db")
        stop = threading.Event()
        reading = [threading.Event(), threading.Event()]

        def reader(started):
            while not stop.is_set():
                try:
                    db.read_scalar(statement, {})
                except Exception:  # a read after the close may fail; it must not crash
                    pass
                started.set()

        threads = [threading.Thread(target=reader, args=(event,)) for event in reading]
        for thread in threads:
            thread.start()
        for event in reading:
            event.wait()
        db.dispose()
        stop.set()
        for thread in threads:
            thread.join()
    print("closed", sys.argv[2], "stores under readers")
    """
)


def test_closing_the_store_while_other_threads_read_does_not_crash_the_process(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", RACE, str(tmp_path), "30"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "closed 30 stores under readers"
