"""README's "Install on a real cluster" shows only commands the tests run: every command in the
section's sh blocks must have all of its words in one test file (a test calls kubectl, helm and
skopeo with the same arguments, split into a list, the namespace from a constant; a path may be
built from its last component, and a skopeo transport such as `oci-archive:PATH` from the
transport and a path the test makes). Words that name the user's own registry or a scratch directory (/tmp/...), shell
expansions and the shell's own mkdir/printf are left out.
Fails when the README gains a command no test runs, or a test stops running one."""

import os
import re
import shlex
import unittest

SRC = os.environ.get("RW_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEST_DIRS = ("tests/e2e", "tests/images", "tests/sim", "tests/docs")
SECTION = "Install on a real cluster"


def section(md, heading):
    m = re.search(r"(?ms)^## %s\n(.*?)(?=^## )" % re.escape(heading), md + "\n## end\n")
    return m.group(1) if m else ""


def commands(text):
    """The commands of the ```sh blocks, continuation lines joined."""
    out = []
    for block in re.findall(r"(?ms)^```sh\n(.*?)^```", text):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def words(cmd):
    keep = []
    for w in shlex.split(cmd):
        if "registry.example.com" in w or "$(" in w or w.startswith("/tmp/") or w in (">", "|", "mkdir", "-p", "printf"):
            continue
        if w.startswith("--from-literal="):
            w = "--from-literal"
        keep.append(w.rstrip("/") or w)
    return keep


def test_sources():
    out = {}
    for d in TEST_DIRS:
        for dirpath, _, files in os.walk(os.path.join(SRC, d)):
            for n in files:
                if n.startswith("test_") and n.endswith(".py") and n != os.path.basename(__file__):
                    with open(os.path.join(dirpath, n), encoding="utf-8") as f:
                        out[os.path.relpath(os.path.join(dirpath, n), SRC)] = f.read()
    return out


def found(ws, text):
    """Every word, or a path word's last component, or a skopeo transport, in the test's text."""
    def one(w):
        if w in text or ("/" in w and w.rsplit("/", 1)[-1] in text):
            return True
        m = re.match(r"(oci-archive|docker-archive|docker|oci|dir):", w)
        return bool(m) and '"%s:' % m.group(1) in text
    return all(one(w) for w in ws)


class ReadmeInstall(unittest.TestCase):
    def test_every_command_is_run_by_a_test(self):
        with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
            cmds = commands(section(f.read(), SECTION))
        self.assertGreater(len(cmds), 8, "the README section or its sh blocks were not found")
        sources = test_sources()
        unrun = []
        for cmd in cmds:
            ws = words(cmd)
            if not any(found(ws, text) for text in sources.values()):
                unrun.append(cmd)
        self.assertEqual(unrun, [], "README install commands no test runs")


if __name__ == "__main__":
    unittest.main()
