"""A minimal W3C WebDriver client (Python standard library only) for headless Chromium through
chromedriver: start, navigate, run a script, screenshot. Used by test_status_page.py and the
status-page benchmark.

    with Browser.start() as b:          # raises unittest.SkipTest when Chromium is missing
        b.get("http://127.0.0.1:8080/")
        b.run("return document.title")
        b.screenshot("page.png")
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("RW_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RW_CHROMEDRIVER", "/usr/bin/chromedriver")


def missing():
    """Why a browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return "%s not installed (apt-get install chromium chromium-driver)" % path
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, proc, url, session, profile):
        self.proc, self.url, self.session, self.profile = proc, url, session, profile

    @classmethod
    def start(cls, width=1500, height=1100, timeout=30.0):
        why = missing()
        if why:
            raise unittest.SkipTest(why)
        port = _free_port()
        profile = tempfile.mkdtemp(prefix="rw-chromium-")
        proc = subprocess.Popen([CHROMEDRIVER, "--port=%d" % port, "--allowed-ips=127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/status", timeout=2) as r:
                    if json.load(r)["value"].get("ready"):
                        break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                shutil.rmtree(profile, ignore_errors=True)
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.05)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--user-data-dir=" + profile,
                "--window-size=%d,%d" % (width, height)]}}}}
        b = cls(proc, url, None, profile)
        try:
            b.session = b._call("POST", "/session", caps, timeout=timeout)["sessionId"]
        except Exception:
            b.close()
            raise
        return b

    def _call(self, method, path, body=None, timeout=30.0):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r).get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError("%s %s: %s" % (method, path, e.read().decode(errors="replace")[:500]))

    def _s(self, path):
        return "/session/%s%s" % (self.session, path)

    def get(self, url):
        self._call("POST", self._s("/url"), {"url": url})

    def run(self, script, *args):
        """Run script (a function body; arguments[i] are args) in the page; its return value."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def run_async(self, script, *args, timeout=30.0):
        """Run script; it calls arguments[arguments.length - 1](value) when done."""
        self._call("POST", self._s("/timeouts"), {"script": int(timeout * 1000)})
        return self._call("POST", self._s("/execute/async"), {"script": script, "args": list(args)},
                          timeout=timeout + 5)

    def screenshot(self, path):
        png = base64.b64decode(self._call("GET", self._s("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def close(self):
        try:
            if self.session:
                self._call("DELETE", self._s(""), timeout=10)
        except (OSError, WebDriverError):
            pass
        finally:
            self.session = None
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
