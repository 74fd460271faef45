#!/usr/bin/python3
"""PyTorch goldens for the distributed sampler: torch.utils.data.DistributedSampler(shuffle=False,
drop_last=False) over range(count), for every rank, at awkward (count, world) pairs (padding
shorter than, equal to and longer than the data set).

Run with Debian's torch:  /usr/bin/python3 tools/golden_sampler.py
Writes Ccr.Tests/Fixtures/distributed/sampler.json: a list of {"count", "world", "ranks": [[...], ...]}.
With shuffle=False the sampler's indices are positions in the epoch order, so the C# test applies
them to a shuffled order as well.
"""
import json
import os

from torch.utils.data import DistributedSampler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Ccr.Tests", "Fixtures", "distributed")

cases = []
for count, world in [(10, 3), (12, 2), (5, 4), (2, 3), (1, 4), (7, 1), (9, 9), (13, 5)]:
    ranks = [list(DistributedSampler(range(count), num_replicas=world, rank=r, shuffle=False)) for r in range(world)]
    cases.append({"count": count, "world": world, "ranks": ranks})

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "sampler.json"), "w") as f:
    json.dump(cases, f)
print("wrote sampler.json")
