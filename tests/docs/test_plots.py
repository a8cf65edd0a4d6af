"""docs/benchmarks.md's plots: tests/bench/plot draws every figure from docs/bench-results/,
every plot the page shows is committed, and the committed plots match the recorded results."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLOT = os.path.join(SRC, "tests", "bench", "plot")
PLOTS = os.path.join(SRC, "docs", "plots")
DOC = os.path.join(SRC, "docs", "benchmarks.md")
HASH = re.compile(r"<!-- raywarden-plot inputs sha256:([0-9a-f]{64}) -->")
GNUPLOT = re.compile(r"<desc>(Produced by GNUPLOT[^<]*)</desc>")


def read(path):
    with open(path) as f:
        return f.read()


@unittest.skipUnless(shutil.which("gnuplot"), "gnuplot not installed (Debian: gnuplot-nox); plots not drawn")
class Plots(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rw-test-plots-")
        cls.runs = []
        for _ in range(2):  # the second run must find nothing to change
            r = subprocess.run([sys.executable, PLOT, "--out", cls.tmp], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=300)
            cls.runs.append(r)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def drawn(self):
        return sorted(f for f in os.listdir(self.tmp) if f.endswith(".svg"))

    def test_script_draws_every_figure(self):
        first, second = self.runs
        self.assertEqual(first.returncode, 0, first.stdout)
        self.assertEqual(second.returncode, 0, second.stdout)
        self.assertGreaterEqual(len(self.drawn()), 6, first.stdout)
        for line in second.stdout.splitlines():
            self.assertTrue(line.startswith("unchanged "), "second run changed a plot: %s" % line)
        for name in self.drawn():
            svg = read(os.path.join(self.tmp, name))
            self.assertTrue(svg.startswith("<?xml"), name)
            self.assertIn("</svg>", svg, name)
            self.assertRegex(svg, HASH, name)
            # A figure with its data drawn: axes, grid and at least one series make many paths.
            self.assertGreater(len(svg), 8000, name)
            self.assertGreater(svg.count("<path"), 20, name)

    def test_every_referenced_plot_is_committed_and_every_plot_referenced(self):
        doc = read(DOC)
        referenced = set(re.findall(r"\((?:\./)?plots/([A-Za-z0-9_.-]+\.svg)\)", doc))
        self.assertTrue(referenced, "docs/benchmarks.md shows no plot")
        committed = set(f for f in os.listdir(PLOTS) if f.endswith(".svg"))
        self.assertEqual(referenced - committed, set(), "referenced in docs/benchmarks.md but not in docs/plots/")
        self.assertEqual(committed - referenced, set(), "in docs/plots/ but not shown in docs/benchmarks.md")
        self.assertEqual(set(self.drawn()), committed, "tests/bench/plot draws other files than docs/plots/ holds")

    def test_committed_plots_match_the_recorded_results(self):
        for name in self.drawn():
            new = read(os.path.join(self.tmp, name))
            path = os.path.join(PLOTS, name)
            if not os.path.exists(path):
                continue  # reported by the test above
            old = read(path)
            self.assertEqual(HASH.search(old).group(1), HASH.search(new).group(1),
                             "docs/plots/%s is out of date with docs/bench-results/: run tests/bench/plot" % name)
            # The same gnuplot draws the same bytes; another version may lay text out differently.
            if GNUPLOT.search(old).group(1) == GNUPLOT.search(new).group(1):
                self.assertEqual(old, new, "docs/plots/%s differs from a fresh drawing" % name)


if __name__ == "__main__":
    unittest.main()
