"""The API step: one MiniVoice client over a given ``httpx.Client``.

``redact`` (masking) <- ``exchange`` (one bounded request) <- ``responses`` (what an
answer means) <- ``client`` (the calls and their retries) <- ``listing`` (every
environment listed at once, for plan).
"""
