"""Headless Debian Chromium driven over the DevTools protocol, for tests of pages people read.

The browser is installed where missing (``apt-get install -y chromium``, after ``apt-get
update`` if the first try fails); when it cannot be, the test fails saying so — never skips.
It runs with a fresh profile and no network features, and is driven through
``--remote-debugging-pipe``: DevTools messages are JSON, each ended by a NUL byte, on file
descriptors 3 (to the browser) and 4 (from it), so no websocket client is needed.

Example::

    with Browser.launch(chromium_path(), tmp_path / "profile") as browser:
        page = browser.open(html_path.as_uri())
        page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)
TIMEOUT = 60.0


def chromium_path() -> str:
    """The ``chromium`` executable, installed with apt-get if missing; fails the test if not."""
    found = shutil.which("chromium")
    if found:
        return found
    # The suite runs in several worker processes: one installs while the others wait, since
    # two apt-get runs at once fail on dpkg's lock.
    with open(Path(tempfile.gettempdir()) / "kyro-tests-chromium.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return shutil.which("chromium") or _install_chromium()


def _install_chromium() -> str:
    """Install Debian's ``chromium`` with apt-get; fail the test saying how if it cannot be."""
    install = ["apt-get", "install", "-y", "chromium"]
    log = []
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Install; if that fails (stale package lists), update and install again.
    for command in (install, ["apt-get", "update"], install):
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=900, env=env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.append(f"{' '.join(command)}: {exc}")
            continue
        log.append(f"{' '.join(command)}: exit {done.returncode} {done.stderr.strip()[-300:]}")
        found = shutil.which("chromium")
        if found:
            return found
    pytest.fail(
        "the report tests need Debian's `chromium` and it could not be installed "
        "(run `apt-get update && apt-get install -y chromium` as root, then re-run):\n"
        + "\n".join(log),
        pytrace=False,
    )


class Browser:
    """One Chromium process and its DevTools pipe."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int):
        self.process = process
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    @classmethod
    def launch(cls, executable: str, profile: Path) -> Browser:
        """Start Chromium with a fresh ``--user-data-dir`` and the pipe on fds 3 and 4."""
        profile.mkdir(parents=True, exist_ok=True)
        reads, we_write = os.pipe()
        we_read, writes = os.pipe()
        # Copies above 3 and 4, so that placing them on 3 and 4 cannot clobber each other.
        browser_reads = fcntl.fcntl(reads, fcntl.F_DUPFD, 10)
        browser_writes = fcntl.fcntl(writes, fcntl.F_DUPFD, 10)
        os.close(reads)
        os.close(writes)

        def wire_fds() -> None:
            # In the child: the browser reads commands on fd 3 and writes replies on fd 4.
            os.dup2(browser_reads, 3)
            os.dup2(browser_writes, 4)

        process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),
        )
        os.close(browser_reads)
        os.close(browser_writes)
        return cls(process, we_write, we_read)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        try:
            if self.process.poll() is None:
                self.send("Browser.close")
        except (OSError, AssertionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and wait for its result (events seen meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method} failed: {reply['error']}"
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "the browser did not answer in time"
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                assert chunk, "the browser closed the DevTools pipe"
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def open(self, url: str, *, width: int = 1400, height: int = 1000) -> Page:
        """A new tab showing ``url``, once it has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.send("Page.navigate", {"url": url})
        page.wait_for("document.readyState === 'complete'")
        return page


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command to this tab."""
        return self.browser.send(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str) -> None:
        """Poll until ``expression`` is true in the page."""
        deadline = time.monotonic() + TIMEOUT
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.05)

    def text(self, selector: str) -> str:
        """The text a person sees in the first element matching ``selector``."""
        value = self.evaluate(f"document.querySelector({json.dumps(selector)}).innerText")
        return str(value)

    def select(self, selector: str, label: str) -> None:
        """Choose the option labelled ``label`` in a ``<select>``, as a person would."""
        ok = self.evaluate(
            f"""(() => {{
              const el = document.querySelector({json.dumps(selector)});
              const option = [...el.options].find(o => o.text === {json.dumps(label)});
              if (!option) return false;
              el.focus(); el.value = option.value;
              el.dispatchEvent(new Event('input', {{bubbles: true}}));
              el.dispatchEvent(new Event('change', {{bubbles: true}}));
              return true;
            }})()"""
        )
        assert ok, f"no option {label!r} in {selector}"

    def visible_rows(self, selector: str) -> list[str]:
        """The first cell's text of each table row that is laid out (visible) on the page."""
        value = self.evaluate(
            f"[...document.querySelectorAll({json.dumps(selector)})]"
            ".filter(r => r.getClientRects().length > 0)"
            ".map(r => r.cells[0].innerText)"
        )
        return [str(item) for item in value]

    def screenshot(self, path: Path) -> bytes:
        """A PNG of the whole page, saved to ``path``."""
        data = base64.b64decode(
            self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})[
                "data"
            ]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data
