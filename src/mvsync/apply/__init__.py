"""The apply step: make one environment equal to the manifest, exactly once, keys kept.

``settings`` (values) <- ``create_once`` (one create) <- ``run`` (the whole apply).
The only package that uses ``mvsync.store``. Nothing is re-exported here, so that
importing ``mvsync.apply.settings`` (values only) does not import the HTTP client.
"""
