"""keyscan's one git layer.

* ``plumbing``: the only module that starts git (safe configuration and environment,
  watchdog, object streams);
* ``remote``: URLs (telling them from paths, masking credentials), transports, clones;
* ``options``: ``GitScanOptions``, what a scan covers;
* ``scope``: the revisions to scan, the tips an audit remembers, the CI and hook plans;
* ``history``: enumerate and scan objects (``scan_history``, ``scan_repository``);
* ``provenance``: introductions, refs, HEAD and branch tips, removals (``Finding.git``);
* ``staged``: the index (``scan_staged``).
"""
