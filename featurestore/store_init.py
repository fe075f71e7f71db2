"""``featurestore init``: create what a new store needs, explicitly.

No other command creates a bucket: a typo in ``--store s3://...`` must fail, not silently make a
new bucket and write a store nobody reads. A local store folder is still created by the first
writing command (as ``mkdir -p``), so ``init`` is required only for buckets.
"""

from __future__ import annotations

import dataclasses
import re

from ._exceptions import ConfigError, StoreError
from .storage import Store

__all__ = ["InitResult", "init_store"]

#: S3 bucket naming rules (3-63 lowercase letters, digits, dots, hyphens; starts and ends
#: with a letter or digit), checked here so a bad name is one line, not a botocore traceback.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclasses.dataclass
class InitResult:
    """What :func:`init_store` found and made."""

    store: str
    created_bucket: str | None
    created_folder: bool
    existed: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def init_store(store: Store) -> InitResult:
    """Create the store's bucket (S3) or folder (local) when absent, then check it is writable.

    Idempotent: an existing store is left as it is (``existed`` is True).

    Args:
        store: the store to create.

    Returns:
        What was created.

    Raises:
        ConfigError: an invalid bucket name.
        StoreError: the bucket or folder cannot be created or written.
    """
    created_bucket = None
    if store.is_local:
        existed = store.fs.exists(store.root)
        store.preflight(write=True)  # mkdir -p and a write probe
        return InitResult(store.url, None, not existed, existed)
    bucket = store.root.split("/", 1)[0]
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError(f"{bucket!r} is not a valid S3 bucket name: use 3-63 lowercase "
                          "letters, digits, dots or hyphens, starting and ending with a letter "
                          "or digit (e.g. s3://my-features/store)")
    try:
        found = store.fs.exists(bucket)
        if not found:
            store.fs.mkdir(bucket)
            created_bucket = bucket
        existed = found and store.fs.exists(store.root) and bucket != store.root
    except Exception as exc:  # noqa: BLE001 - endpoint down, access denied: one line
        raise StoreError(f"cannot create bucket {bucket} of store {store.url}: {exc}") from None
    store.fs.invalidate_cache()
    store.preflight(write=True)
    return InitResult(store.url, created_bucket, False, existed)
