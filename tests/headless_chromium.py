"""A minimal DevTools-protocol client for Debian's headless Chromium over --remote-debugging-pipe (commands
as NUL-terminated JSON on fd 3, replies on fd 4): no websocket library and no network port needed."""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--remote-debugging-pipe"]


def available() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


class Browser:
    """One headless Chromium that has loaded `url` (its load event fired); `evaluate(js)` runs an expression
    in the page (promises awaited) and returns its value."""

    def __init__(self, url: str, profile: Path, timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        cmd_r, self._cmd_w = os.pipe()        # we write commands, Chromium reads fd 3
        self._resp_r, resp_w = os.pipe()      # Chromium writes replies to fd 4

        def fds():   # in the child: the pipe ends become fds 3 and 4 (dup first, so neither is clobbered)
            a, b = os.dup(cmd_r), os.dup(resp_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
        # close_fds=False keeps the inheritable 3 and 4 that fds() makes; every other descriptor of ours is
        # non-inheritable (PEP 446) and closes at exec
        self.proc = subprocess.Popen([available(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(resp_w)
        self._buf = b""
        self._next = 0
        target = self._page_target(url)
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.navigate", session=self.session, url=url)
        self.url = url
        # loaded: the document is the one asked for and its load event (images included) has fired
        self.evaluate("new Promise(done => { const f = () => (document.readyState === 'complete' && "
                      f"location.href === {json.dumps(url)}) ? done(true) : setTimeout(f, 50); f(); }})")

    def _page_target(self, url: str) -> str:
        end = time.monotonic() + self.timeout_s
        while time.monotonic() < end:
            pages = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            if pages:
                return pages[0]["targetId"]
            time.sleep(0.2)
        raise TimeoutError(f"chromium opened no page for {url}")

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + self.timeout_s
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._resp_r], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer {method} in {self.timeout_s} s")
            chunk = os.read(self._resp_r, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium exited (status {self.proc.poll()}) during {method}")
            self._buf += chunk

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", session=self.session, expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._resp_r)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
