"""Goldens for Ccr.Training.Metrics.SeedStats: Student-t confidence intervals over seeds.

Writes Ccr.Tests/Fixtures/metrics/seed_stats.json. Every interval is computed by scipy
(scipy.stats.t.interval on the sample mean and its standard error, and, for the paired
differences, scipy.stats.ttest_rel(...).confidence_interval(), an independent route).
Run: /usr/bin/python3 tools/golden_seed_stats.py   (Debian python3-scipy, python3-numpy)
"""
import json
import os

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261201)
cases = []
# fixed small cases, then random ones at awkward sizes and levels
samples = [
    ([0.320, 0.330, 0.343], 0.95),
    ([1.0, 2.0], 0.95),
    ([-2.9, -0.1, -6.5, -11.7, -3.7], 0.95),
    ([5.0, 5.0, 5.0], 0.95),           # zero spread: a zero-width interval
]
for n in (2, 3, 4, 7, 30):
    samples.append((list(rng.normal(rng.uniform(-5, 5), rng.uniform(0.01, 3), size=n)), float(rng.choice([0.9, 0.95, 0.99]))))
for values, level in samples:
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean())
    sd = float(x.std(ddof=1))
    sem = sd / np.sqrt(n)
    if sem > 0:
        lo, hi = stats.t.interval(level, n - 1, loc=mean, scale=sem)
    else:
        lo, hi = mean, mean
    cases.append(dict(kind="mean", values=[float(v) for v in x], level=level, mean=mean, sd=sd,
                      t=float(stats.t.ppf(0.5 + level / 2, n - 1)), low=float(lo), high=float(hi)))

paired = []
for n in (2, 3, 5, 8):
    a = rng.normal(0.3, 0.05, size=n)
    b = a + rng.normal(0.01, 0.02, size=n)
    level = 0.95
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(confidence_level=level)
    d = a - b
    paired.append(dict(kind="paired", a=[float(v) for v in a], b=[float(v) for v in b], level=level,
                       mean=float(d.mean()), low=float(ci.low), high=float(ci.high), pvalue=float(res.pvalue)))

out = os.path.join(os.path.dirname(__file__), "..", "Ccr.Tests", "Fixtures", "metrics", "seed_stats.json")
with open(out, "w") as f:
    json.dump(dict(generator="tools/golden_seed_stats.py, scipy " + __import__("scipy").__version__,
                   means=cases, paired=paired), f, indent=1)
print("wrote", os.path.normpath(out), len(cases), "mean cases,", len(paired), "paired cases")
