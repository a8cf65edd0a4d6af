"""The configuration reference stays true: every flag the two daemons accept (as their
--help lists them) is documented in docs/controller.md or docs/agent.md, every flag those
pages' tables document is still accepted, and every environment variable the C sources
read is named somewhere in docs/. Fails when a setting is added, renamed or removed without
its documentation."""

import os
import re
import subprocess
import unittest

SRC = os.environ.get("RW_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RW_BUILD_DIR") or os.path.join(SRC, "build")

# Process-level variables every program may read; documented by their owners, not by us.
GENERIC_ENV = {"HOME", "TMPDIR"}


def read(path):
    with open(os.path.join(SRC, path), encoding="utf-8") as f:
        return f.read()


def docs_text():
    d = os.path.join(SRC, "docs")
    return "\n".join(read(os.path.join("docs", n)) for n in sorted(os.listdir(d)) if n.endswith(".md"))


def help_flags(binary):
    path = os.path.join(BUILD, "bin", binary)
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest("%s not built in %s" % (binary, BUILD))
    out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
    text = out.stdout + out.stderr
    flags = set(re.findall(r"(?m)^\s+(--[a-z0-9][a-z0-9-]*)", text))
    # Aliases are listed as "alias --x" in the description column.
    flags |= set(re.findall(r"alias\s+(--[a-z0-9][a-z0-9-]*)", text))
    flags -= {"--help", "--version"}
    return flags


def table_flags(md, heading):
    """The flags in the first column of the tables under a '## heading' section."""
    m = re.search(r"(?ms)^## %s\n(.*?)(?=^## )" % re.escape(heading), md + "\n## end\n")
    if not m:
        return set()
    flags = set()
    for line in m.group(1).splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            flags |= set(re.findall(r"`(--[a-z0-9][a-z0-9-]*)", first))
    return flags


def env_reads():
    names = set()
    pat = re.compile(r'\b(?:getenv|getenv_fn|env_fn|mgr_getenv|env)\s*\(\s*"([A-Z][A-Z0-9_]*)"')
    for top in ("controller", "agent", "proto"):
        for dirpath, _, files in os.walk(os.path.join(SRC, top)):
            for n in files:
                if n.endswith((".c", ".h")):
                    with open(os.path.join(dirpath, n), encoding="utf-8") as f:
                        names |= set(pat.findall(f.read()))
    return names - GENERIC_ENV


class ConfigReference(unittest.TestCase):
    def test_controller_flags_documented(self):
        md = read("docs/controller.md")
        missing = sorted(f for f in help_flags("raywarden-controller") if "`%s" % f not in md)
        self.assertEqual(missing, [], "controller flags missing from docs/controller.md")

    def test_controller_documented_flags_exist(self):
        documented = table_flags(read("docs/controller.md"), "Configuration")
        self.assertGreater(len(documented), 10, "the Configuration table was not found")
        stale = sorted(documented - help_flags("raywarden-controller"))
        self.assertEqual(stale, [], "docs/controller.md documents flags the controller does not accept")

    def test_agent_settings_documented(self):
        md = read("docs/agent.md")
        flags = help_flags("raywarden-agent")
        self.assertGreater(len(flags), 10)
        missing = sorted(f for f in flags if "`%s`" % f not in md)
        self.assertEqual(missing, [], "agent settings missing from docs/agent.md")
        envs = {"RAYWARDEN_" + f[2:].upper().replace("-", "_") for f in flags}
        missing = sorted(e for e in envs if "`%s`" % e not in md)
        self.assertEqual(missing, [], "agent variables missing from docs/agent.md")

    def test_agent_documented_settings_exist(self):
        documented = table_flags(read("docs/agent.md"), "Configuration")
        self.assertGreater(len(documented), 10, "the Configuration table was not found")
        stale = sorted(documented - help_flags("raywarden-agent"))
        self.assertEqual(stale, [], "docs/agent.md documents settings the agent does not accept")

    def test_environment_documented(self):
        names = env_reads()
        self.assertIn("ENABLE_ZERO_DOWNTIME", names, "the source scan found nothing: pattern broken?")
        text = docs_text()
        missing = sorted(n for n in names if n not in text)
        self.assertEqual(missing, [], "environment variables read by the daemons but not in docs/")


if __name__ == "__main__":
    unittest.main()
