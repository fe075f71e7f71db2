"""Every code block of README.md and docs/*.md, executed (issue #16: docs that cannot drift).

Conventions (the visible contract between the docs and this runner):

* ```` ```bash ```` / ``sh`` / ``shell`` / ``console`` blocks run with ``bash -euo pipefail``;
  the blocks of one page run in order in one shell, as a reader would type them, so an
  ``export`` in one block holds in the next. ```` ```python ```` blocks of one page run in
  order as one script (``python page.py``: ``if __name__ == "__main__":`` works, Dask can start
  worker processes), after a prelude defining ``STORE`` (the store's path), ``RAW`` (the drops),
  ``STORAGE_OPTIONS = {}`` and ``BI_DB`` (a scratch DuckDB file).
* Where they run: a folder holding ``featurestore-data/raw`` (generated drops, ids ``C000000``..,
  ``P00000``..) and ``featurestore-data/store`` (ingested and materialized), a fresh copy per
  page; the README starts from an empty folder and makes them with its own commands.
  ``featurestore`` is on PATH (``. .venv/bin/activate``), settings come only from the page
  (no ``FEATURESTORE_*`` from the caller) except ``FEATURESTORE_SCHEDULER``, the test
  session's Dask cluster, so commands do not each start one. ``localhost:8000`` is a real
  ``featurestore serve`` of that store started for the page, with the token ``secret``.
* ``yaml`` and ``json`` blocks must parse. Any other block (untagged synopses, sample output,
  ``sql``, ``cron``) is not run, but every ``featurestore <command> --flag`` in it, and in every
  block, must name a real command and real flags of it (checked against the CLI's parser).
* A block that must not run says so on the line before it, visibly:
  ``<!-- docs-test: skip: <why> -->``. Keep these few (``MAX_SKIPS``) and say why: Docker,
  installing from PyPI, long benchmarks.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from featurestore.cli import build_parser
from tests._generated_store import ROOT, cli_env
from tests.serving_helpers import free_port, wait_ok

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL, PYTHON, DATA = {"bash", "sh", "shell", "console"}, {"python", "py"}, {"yaml", "yml", "json"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<why>.*?)\s*-->")
MAX_SKIPS = 8
TOKEN = "secret"


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, with the skip marker on the line before each, if any."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```([\w+-]*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, j = len(m.group(1)), i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        before = next((x for x in reversed(lines[:i]) if x.strip()), "")
        skip = SKIP.search(before)
        out.append(Block(page, i + 1, m.group(2).lower(),
                         "\n".join(x[indent:] for x in lines[i + 1:j]) + "\n",
                         skip.group("why") if skip else None))
        i = j + 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]


# -- static checks, every block -----------------------------------------------------------------
def _subparsers() -> tuple[dict[str, argparse.ArgumentParser], set[str]]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    root_flags = {s for a in parser._actions for s in a.option_strings}
    return dict(action.choices), root_flags


def _without_substitutions(text: str) -> str:
    """``$( ... )`` command substitutions (balanced) replaced by a word: their own flags are
    another program's."""
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith("$(", i):
            depth += 1
            i += 2
            continue
        if depth and text[i] == "(":
            depth += 1
        elif depth and text[i] == ")":
            depth -= 1
            if depth == 0:
                out.append("VALUE")
        elif not depth:
            out.append(text[i])
        i += 1
    return "".join(out)


def _commands(code: str) -> list[tuple[str, list[str]]]:
    """(subcommand, flags) of every ``featurestore SUB ...`` in a block (continuation lines
    joined; comments, pipes, command substitutions and later commands on the line cut off)."""
    text = _without_substitutions(code.replace("\\\n", " "))
    found = []
    for m in re.finditer(r"(?:^|[\s/(;&|`])featurestore ([a-z][a-z-]*)([^\n|;&#>)]*)", text):
        flags = re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", m.group(2))
        found.append((m.group(1), flags))
    return found


@pytest.mark.parametrize("block", [b for b in ALL if "featurestore " in b.code
                                   and b.lang not in PYTHON], ids=lambda b: b.where)
def test_every_command_and_flag_in_the_docs_exists(block):
    assert _drift(block.code) == [], block.where


def _drift(code: str) -> list[str]:
    """``featurestore SUB`` commands and ``SUB --flag`` flags of ``code`` the CLI lacks."""
    subs, root_flags = _subparsers()
    problems = []
    for sub, flags in _commands(code):
        if sub not in subs:
            problems.append(f"featurestore {sub}: no such command")
            continue
        known = {s for a in subs[sub]._actions for s in a.option_strings} | root_flags
        problems += [f"featurestore {sub} {f}: no such flag" for f in flags
                     if f not in known and f.split("=")[0] not in known]
    return problems


def test_the_drift_check_catches_what_it_should():
    code = ("featurestore tables --store S --jsn\n"
            "featurestore materialize --store S   # renamed long ago\n"
            "featurestore jobs \"$(python -c 'print(1)')\" --follow \\\n    --poll 1\n")
    assert _drift(code) == ["featurestore tables --jsn: no such flag",
                            "featurestore materialize: no such command"]


def test_skips_are_few_and_say_why():
    skipped = [b for b in ALL if b.skip is not None]
    assert all(len(b.skip) > 10 for b in skipped), [b.where for b in skipped]
    assert len(skipped) <= MAX_SKIPS, [f"{b.where}: {b.skip}" for b in skipped]


@pytest.mark.parametrize("block", [b for b in ALL if b.lang in DATA], ids=lambda b: b.where)
def test_data_blocks_parse(block):
    if block.lang == "json":
        # "..." stands for elided members in sample output
        json.loads(re.sub(r",\s*\.\.\.", "", block.code).replace("...", '"..."'))
    else:
        yaml.safe_load(block.code)


# -- executed blocks ----------------------------------------------------------------------------
RUN_PAGES = sorted({b.page for b in ALL if b.skip is None and b.lang in SHELL | PYTHON})


class _Server:
    """``featurestore serve`` of the page's store on a free port, for its ``localhost:8000``."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "featurestore", "serve", "--store",
             str(work / "featurestore-data" / "store"), "--port", str(self.port),
             "--log-level", "warning"], cwd=work, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**env, "FEATURESTORE_API_TOKEN": TOKEN})
        try:
            wait_ok(f"http://127.0.0.1:{self.port}/ready", 120, self.proc)
        except RuntimeError as exc:
            self.close()
            raise AssertionError(f"featurestore serve did not become ready: {exc}") from None

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _shell_script(page_blocks: list[Block], port: int | None) -> str:
    parts = ["set -euo pipefail"]
    for b in page_blocks:
        code = b.code
        if port is not None:
            code = re.sub(r"(localhost|127\.0\.0\.1):8000", f"127.0.0.1:{port}", code)
        parts.append(f"echo '::block {b.where}' >&2\n{code}")
    return "\n".join(parts)


def _python_script(page_blocks: list[Block], work: Path) -> str:
    prelude = (f"STORE = {str(work / 'featurestore-data' / 'store')!r}\n"
               f"RAW = {str(work / 'featurestore-data' / 'raw')!r}\n"
               f"STORAGE_OPTIONS = {{}}\nBI_DB = {str(work / 'bi.duckdb')!r}\nimport sys\n")
    body = [f"print('::block {b.where}', file=sys.stderr)\n{b.code}" for b in page_blocks]
    return prelude + "\n".join(body)


def _failed_block(stderr: str) -> str:
    marks = re.findall(r"::block (\S+)", stderr)
    return marks[-1] if marks else "(before the first block)"


@pytest.mark.timeout(900)  # a page is a session of commands; the README makes its own store
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs(page, client, tmp_path, request):
    work = tmp_path / "work"
    work.mkdir()
    if page.name != "README.md":  # the README makes its store with its own commands (and
        # does not wait for the generated one, which the other xdist worker may be building)
        shutil.copytree(request.getfixturevalue("generated_data"), work / "featurestore-data")
    env = cli_env(FEATURESTORE_SCHEDULER=client.scheduler.address)
    mine = [b for b in blocks(page) if b.skip is None]
    shell = [b for b in mine if b.lang in SHELL]
    python = [b for b in mine if b.lang in PYTHON]
    needs_server = any(re.search(r"(localhost|127\.0\.0\.1):8000", b.code) for b in shell)
    if shell:
        server = None
        if needs_server:
            (work / "featurestore-data").exists() or pytest.fail(
                f"{page.name} calls the API before it has a store")
            server = _Server(work, env)
        try:
            r = subprocess.run(["bash", "-c", _shell_script(shell, server and server.port)],
                               cwd=work, env=env, capture_output=True, text=True, timeout=600)
        finally:
            if server is not None:
                server.close()
        assert r.returncode == 0, (f"{_failed_block(r.stderr)} exited {r.returncode}\n"
                                   f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n"
                                   f"{r.stderr[-3000:]}")
    if python:
        script = work / f"{page.stem}_blocks.py"
        script.write_text(_python_script(python, work))
        r = subprocess.run([sys.executable, str(script)], cwd=work, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (f"{_failed_block(r.stderr)} failed\n--- stdout\n"
                                   f"{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")
