"""Headless Chromium (Debian's `chromium` package) for the dashboard tests, with no Python
dependency: --dump-dom prints the DOM after the page's scripts ran (the fetches to the API
included) within a virtual time budget; --screenshot writes a PNG.

CI installs the browser with:  apt-get update && apt-get install -y chromium
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

INSTALL = "apt-get update && apt-get install -y chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=10000"]


def executable() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"no headless browser: install Debian's chromium ({INSTALL})")


def run(url: str, *extra: str, timeout: float = 90) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run([executable(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout.decode("utf-8")


def dump_dom(url: str) -> str:
    return run(url, "--dump-dom")


def screenshot(url: str, path: Path, width: int = 1400, height: int = 1000) -> Path:
    run(url, f"--screenshot={path}", f"--window-size={width},{height}")
    return path


class Page(HTMLParser):
    """The dumped DOM, enough to read the text of an element by id and the rows of a table."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.html = html
        self.texts: dict[str, list[str]] = {}
        self.rows: dict[str, list[dict]] = {}   # table id -> [{"attrs":..., "cells": [...]}]
        self._open: list[tuple[str, str | None]] = []   # (tag, id)
        self._table: list[str | None] = []
        self._row: dict | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "br" and self._cell is not None:
            self._cell.append(" ")
        if tag in self.VOID:
            return
        self._open.append((tag, attrs.get("id")))
        if attrs.get("id"):
            self.texts.setdefault(attrs["id"], [])
        if tag == "table":
            self._table.append(attrs.get("id"))
        elif tag == "tr" and self._table:
            self._row = {"attrs": attrs, "cells": []}
            self.rows.setdefault(self._table[-1], []).append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table" and self._table:
            self._table.pop()

    def handle_data(self, data):
        for _, ident in self._open:
            if ident:
                self.texts[ident].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def text(self, ident: str) -> str:
        return " ".join("".join(self.texts.get(ident, [])).split())

    def body_rows(self, table: str) -> list[dict]:
        """The rows after the table's header row."""
        return self.rows.get(table, [])[1:]
