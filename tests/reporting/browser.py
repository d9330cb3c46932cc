"""Headless Chromium (Debian's `chromium` package) for the dashboard tests, with no Python
dependency.

- `Browser`: one browser process driven through the DevTools protocol over a pipe
  (--remote-debugging-pipe: NUL-terminated JSON messages on file descriptors 3 and 4), so a test
  opens a page in a fresh browser context (its own storage and cookies), waits for a condition
  evaluated in the page (no fixed sleep), evaluates JavaScript, clicks, reads the DOM and takes
  screenshots.
- `dump_dom` / `screenshot`: the one-shot command line (--dump-dom prints the DOM after the
  page's scripts ran within a virtual time budget; --screenshot writes a PNG).

CI installs the browser with:  apt-get update && apt-get install -y chromium
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

INSTALL = "apt-get update && apt-get install -y chromium"
COMMON = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
          "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars"]
FLAGS = COMMON + ["--virtual-time-budget=10000"]

# Every Content-Security-Policy violation the page reports, recorded before any of its own scripts run.
_RECORD_CSP = """
window.__csp_violations = [];
document.addEventListener('securitypolicyviolation', e => window.__csp_violations.push(
  e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + (e.lineNumber || 0)));
"""


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


class BrowserError(AssertionError):
    pass


def _high(fd: int) -> int:
    """The same pipe end as a descriptor numbered 10 or more (not inherited unless passed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium driven over the DevTools protocol (a pipe, no port, no websocket).

        with Browser() as browser:
            tab = browser.open(url)                       # a fresh browser context each time
            tab.wait("document.title === 'x'")            # polls a JS expression until truthy
            tab.evaluate("document.querySelectorAll('img').length")
    """

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._next = 0
        self._buf = b""
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-cdp-")
        # The browser reads commands on its fd 3 and writes answers and events on its fd 4; bash
        # puts the pipes there (the pipes' own numbers moved to 10+ first, so that no redirection
        # overwrites another), with no Python code run between fork and exec.
        to_child_r, self._to_child = (_high(fd) for fd in os.pipe())
        self._from_child, from_child_w = (_high(fd) for fd in os.pipe())
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-',
             "chromium", executable(), *COMMON, "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            pass_fds=(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        try:
            self.send("Target.setDiscoverTargets", {"discover": False})
        except Exception:
            self.close()
            raise

    # ------------------------------------------------------------------ the protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium closed the pipe: {self.stderr()}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._next += 1
        ident = self._next
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_child, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read_message(deadline)
            if msg.get("id") == ident:  # events (no id) are not needed: conditions are polled
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    # ------------------------------------------------------------------ pages
    def open(self, url: str, bypass_csp: bool = False, width: int = 1400, height: int = 1000) -> "Tab":
        """A new page in its own browser context (empty storage and cookies), navigated to url.
        bypass_csp=True ignores the page's Content-Security-Policy: what the page's own code does
        without the browser's second line of defence."""
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, context, target, session)
        tab.send("Page.enable")
        tab.send("Runtime.enable")
        tab.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        if bypass_csp:
            tab.send("Page.setBypassCSP", {"enabled": True})
        tab.send("Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_CSP})
        tab.navigate(url)
        return tab

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Tab:
    def __init__(self, browser: Browser, context: str, target: str, session: str):
        self.browser, self.context, self.target, self.session = browser, context, target, session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, session=self.session)

    def navigate(self, url: str) -> None:
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {answer['errorText']}")
        self.wait("location.href !== 'about:blank' && document.readyState === 'complete'")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0, interval: float = 0.05):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value, error = self.evaluate(expression), None
            except BrowserError as exc:  # e.g. an element not there yet, or the old document still
                value, error = None, exc
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout}s waiting for {expression} "
                                   f"(last: {value!r} {error or ''})")
            time.sleep(interval)

    def history(self) -> list[str]:
        """The URLs of the tab's history entries, as the browser keeps them."""
        return [e["url"] for e in self.send("Page.getNavigationHistory")["entries"]]

    def html(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def page(self) -> "Page":
        return Page(self.html())

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        finally:
            self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})

    def __enter__(self) -> "Tab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
