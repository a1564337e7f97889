"""Where keys live: the only code that touches files (or rows) holding keys.

``durable`` (atomic 0600 writes, fsynced appends) <- ``journal`` (intent/created records)
<- ``keys`` (the secrets file) <- ``lock`` <- ``base`` (the ``KeyStore`` interface) <-
``files`` (``FileStore``). Only ``mvsync.apply`` imports this package.
"""
