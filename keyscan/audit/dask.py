"""Fan an audit out over a Dask cluster (``keyscan audit --scheduler tcp://HOST:PORT``).

Each repository is one task: ``keyscan.audit.runner.scan_one(task)``, a plain function of
picklable values, so workers need only keyscan installed (``pip install 'keyscan[dask]'``)
and git on their PATH. Results come back to the coordinator as they complete; the coordinator
alone writes the SQLite store. This is the only module of keyscan that imports dask.

Raw keys cross the network only with ``--verify`` (the coordinator checks each unique key
once); otherwise workers blank them before results are sent. Use a TLS scheduler address
(``tls://``) on untrusted networks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from keyscan.audit.runner import AuditTask, RepoResult, scan_one
from keyscan.errors import KeyscanError
from keyscan.git.remote import public_target


class DaskUnavailable(KeyscanError):
    pass


def run_dask(
    tasks: Sequence[AuditTask],
    scheduler: str,
) -> Iterator[RepoResult]:
    """Results as they complete on the cluster at ``scheduler``. The connect timeout is Dask's
    (``distributed.comm.timeouts.connect``, e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise DaskUnavailable(
            "--scheduler needs Dask: pip install 'keyscan[dask]'"
        ) from None
    try:
        client = Client(scheduler, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailable(f"cannot reach Dask scheduler {scheduler}: {exc}") from None
    with client:
        # pure=False: the same repository scanned twice is two scans (it may have changed).
        futures = {client.submit(scan_one, t, pure=False): t for t in tasks}
        for fut in as_completed(list(futures), loop=client.loop):  # type: ignore[no-untyped-call]
            task = futures[fut]
            try:
                result: RepoResult = fut.result()
            except Exception as exc:  # the worker died or the task could not run
                result = RepoResult(
                    target=public_target(task.target),
                    status="error",
                    errors=[f"Dask task failed: {type(exc).__name__}: {exc}"],
                )
            yield result
            fut.release()
