"""One-off audits of many repositories: a store, a runner, progress and reports.

``keyscan audit`` scans repositories (in worker processes or over a Dask cluster) and writes
what it found to an SQLite store (``store.py``); ``keyscan report`` renders that store as
HTML, Markdown or JSON (``html.py``, ``markdown.py``, ``json_doc.py``). The store holds
fingerprints and redacted values only, never a raw key.
"""
