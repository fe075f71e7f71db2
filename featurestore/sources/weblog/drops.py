"""Drops of the ``weblog`` source: the raw root's layout, its files and delivery problems.

A drop is a folder ``<raw root>/<YYYY-MM-DD>/`` of gzip TSV hit files with the day's
``column_headers.tsv`` and, optionally, a ``manifest.json`` (SPEC §1, docs/reliability.md
"Delivery rules"). Listing only: no file is read beyond the header and the manifest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from typing import Any

import fsspec

from ..._exceptions import NotFoundError, RejectedFileError

__all__ = ["WEBLOG_COLUMNS", "DROP_DIR", "RawFile", "Discovery", "discover_drops", "discover_files"]

#: The columns the store reads from the 1,000+ of a drop (SPEC §1). Others are ignored.
WEBLOG_COLUMNS = (
    "hit_time_gmt",
    "customer_id",
    "page_url",
    "post_page_event",
    "post_event_list",
    "post_product_list",
    "exclude_hit",
)

#: A drop folder's name: its date, YYYY-MM-DD (the date itself is checked where it is read).
DROP_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: A folder name meant as a drop date (``2026-13-45``, ``2026-1-1``): reported when invalid.
_DATE_LIKE = re.compile(r"^\d{4}[-_.]\d{1,2}[-_.]\d{1,2}$")

#: A hit file name whose id is its stem as is (the ids stores written before keep).
_PLAIN_NAME = re.compile(r"^([A-Za-z0-9_-]{1,100})\.tsv\.gz$")
#: Characters kept in the readable part of other names' ids; every other becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclasses.dataclass(frozen=True)
class RawFile:
    """One hit file of one drop, with what the drop's header and manifest say about it."""

    url: str
    drop_date: dt.date
    name: str
    size: int
    columns: tuple[str, ...]
    manifest: dict[str, Any] | None  # this file's manifest entry, when the drop has a manifest
    #: what the listing says of this version (ETag, else modification time): with the size,
    #: tells an untouched file from one whose md5 must be computed again
    stamp: str = ""

    @property
    def file_id(self) -> str:
        """Deterministic id, used to name everything this file produces (retries overwrite).

        Unique per (drop, name) whatever the name: ``hit_data-0000.tsv.gz`` gives
        ``<drop>-hit_data-0000`` (as before); any other name (dots, spaces, unicode, over 100
        characters) gives ``<drop>-<stem>.<first 12 hex of the name's sha256>``, the stem being
        the name less ``.tsv.gz``, other characters than ``[A-Za-z0-9_-]`` as ``_``, cut at 60.
        The ``.`` never occurs in the first form, so the two cannot collide; the result is at
        most 84 characters of ``[A-Za-z0-9_.-]``, safe on disks and S3.
        """
        plain = _PLAIN_NAME.match(self.name)
        if plain:
            return f"{self.drop_date.isoformat()}-{plain.group(1)}"
        stem = self.name[:-len(".tsv.gz")] if self.name.endswith(".tsv.gz") else self.name
        digest = hashlib.sha256(self.name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return f"{self.drop_date.isoformat()}-{_UNSAFE.sub('_', stem)[:60]}.{digest}"

    @property
    def ledger_key(self) -> str:
        return f"{self.drop_date.isoformat()}/{self.name}"


@dataclasses.dataclass
class Discovery:
    """What a listing of the raw root found: hit files to consider and every delivery problem."""

    files: list[RawFile] = dataclasses.field(default_factory=list)
    #: files rejected before any read (drop-level problems, bad folder names)
    rejected: list[RejectedFileError] = dataclasses.field(default_factory=list)
    #: files a drop's manifest names that are not there: ``{"drop", "file", "md5"}``
    missing: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: folders that look like drops but are not a valid date: ``{"folder", "reason", "files"}``
    bad_folders: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def discover_files(
    raw_root: str, storage_options: dict[str, Any] | None = None
) -> tuple[list[RawFile], list[RejectedFileError]]:
    """List every hit file under ``raw_root/<YYYY-MM-DD>/`` (see :func:`discover_drops`).

    Returns the files and the rejected ones.
    """
    found = discover_drops(raw_root, storage_options)
    return found.files, found.rejected


def _stamp(entry: dict[str, Any]) -> str:
    """A listing entry's version stamp: the ETag on object stores, else the mtime."""
    value = entry.get("ETag") or entry.get("etag") or entry.get("mtime") or entry.get(
        "LastModified") or ""
    return str(value).strip('"')


def discover_drops(raw_root: str, storage_options: dict[str, Any] | None = None) -> Discovery:
    """List every hit file under ``raw_root/<YYYY-MM-DD>/`` and every delivery problem.

    Args:
        raw_root: folder (or URL) holding the drop folders.
        storage_options: fsspec options for ``raw_root``.

    Returns:
        The files (zero-byte placeholders included: the caller decides), files rejected for
        drop-level problems (missing header, bad manifest, required columns absent, a folder
        name that is not a valid date), files a manifest names that are absent, and the bad
        folders. Folders that neither look like a date nor hold hit files are ignored.
    """
    fs, root = fsspec.core.url_to_fs(raw_root, **(storage_options or {}))
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol == "file" else f"{protocol}://"
    if not fs.isdir(root):
        raise NotFoundError(
            f"raw root {raw_root} does not exist or is not a directory; pass the folder holding "
            "the YYYY-MM-DD drop folders"
        )
    found = Discovery()
    for entry in sorted(fs.ls(root, detail=True), key=lambda e: e["name"]):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] != "directory" or name.startswith((".", "_")):
            continue
        problem = _folder_problem(name)
        if problem is None:
            drop_date = dt.date.fromisoformat(name)
        elif not _DATE_LIKE.match(name) and not DROP_DIR.match(name):
            # not meant as a drop unless it holds hit files (one listing, only for such names)
            if not any(n.endswith(".tsv.gz") for n in fs.ls(entry["name"], detail=False)):
                continue
        listing = {
            e["name"].rsplit("/", 1)[-1]: e for e in fs.ls(entry["name"], detail=True)
        }
        hit_files = sorted(n for n in listing if n.endswith(".tsv.gz"))
        if problem is not None:
            found.bad_folders.append({"folder": name, "reason": problem,
                                      "files": len(hit_files)})
            found.rejected += [RejectedFileError(f"{prefix}{entry['name']}/{n}", problem)
                               for n in hit_files]
            continue
        if not hit_files and "manifest.json" not in listing:
            continue
        problem = None
        columns: tuple[str, ...] = ()
        manifest_files: dict[str, Any] | None = None
        if "column_headers.tsv" not in listing:
            problem = "the drop has no column_headers.tsv, so its columns cannot be located"
        else:
            with fs.open(f"{entry['name']}/column_headers.tsv", "rb") as f:
                columns = tuple(f.read().decode("utf-8", "replace").rstrip("\r\n").split("\t"))
            missing = [c for c in WEBLOG_COLUMNS if c not in columns]
            if missing:
                problem = f"column_headers.tsv lacks required column(s) {', '.join(missing)}"
        if "manifest.json" in listing:
            try:
                with fs.open(f"{entry['name']}/manifest.json", "rb") as f:
                    manifest = json.load(f)
                manifest_files = {m["name"]: m for m in manifest["files"]}
                if problem is None and manifest.get("date") not in (None, name):
                    problem = f"manifest.json is dated {manifest['date']} but the folder is {name}"
            except (ValueError, KeyError, TypeError) as exc:
                problem = problem or f"manifest.json is not valid ({exc}); fix or remove it"
                manifest_files = None
        # A file the manifest names that never arrived: the day is incomplete until it does.
        for absent in sorted(set(manifest_files or ()) - set(hit_files)):
            found.missing.append({"drop": name, "file": f"{prefix}{entry['name']}/{absent}",
                                  "md5": manifest_files[absent].get("md5")})
        for hit_name in hit_files:
            url = f"{prefix}{entry['name']}/{hit_name}"
            if problem:
                found.rejected.append(RejectedFileError(url, problem))
                continue
            manifest_entry = None
            if manifest_files is not None:
                manifest_entry = manifest_files.get(hit_name)
                if manifest_entry is None:
                    found.rejected.append(
                        RejectedFileError(url, "the file is not listed in manifest.json"))
                    continue
            found.files.append(
                RawFile(url, drop_date, hit_name, int(listing[hit_name]["size"]), columns,
                        manifest_entry, _stamp(listing[hit_name]))
            )
    return found


def _folder_problem(name: str) -> str | None:
    """Why folder ``name`` is not a valid drop date, or None when it is one."""
    if not DROP_DIR.match(name):
        return (f"folder name {name!r} is not a valid date (YYYY-MM-DD, zero-padded); rename "
                "it to the drop's date, then re-run ingest")
    try:
        dt.date.fromisoformat(name)
    except ValueError as exc:
        return (f"folder name {name!r} is not a valid date ({exc}); rename it to the drop's "
                "date, then re-run ingest")
    return None
