"""Timing rule and results file shared by the PyTorch side of the GPU report (tools/torch_*baseline.py).

The rule is the one Ccr.Bench/Report/Timing.cs applies to our side, so both halves of a ratio are
measured alike: `warmup` untimed calls, one timed call to choose how many calls make a sample of about
`target_ms`, then `samples` samples of that many calls each followed by one synchronisation; the figure
is the median milliseconds per call.
"""
import json
import statistics
import time

# (warmup, samples, target_ms, max_inner), as TimingPlan.Gpu / TimingPlan.Dry in Timing.cs
PLANS = {"gpu": (3, 15, 2.0, 200), "dry": (1, 3, 0.0, 1)}


def inner_for(one_call_ms, target_ms, max_inner):
    if target_ms <= 0 or one_call_ms <= 0:
        return 1
    return int(min(max(round(target_ms / one_call_ms), 1), max_inner))


def median_ms(op, sync, plan="gpu"):
    warmup, samples, target_ms, max_inner = PLANS[plan]
    for _ in range(warmup):
        op()
    sync()
    t = time.perf_counter()
    op()
    sync()
    inner = inner_for((time.perf_counter() - t) * 1e3, target_ms, max_inner)
    ms = []
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(inner):
            op()
        sync()
        ms.append((time.perf_counter() - t) * 1e3 / inner)
    return statistics.median(ms)


def row(id, part, what, shape="", precision="fp32", ms=None, status="ok", extra=None):
    """One result row, the schema of Ccr.Bench/Report/ReportJson.cs (ResultRow)."""
    r = {"id": id, "part": part, "what": what, "shape": shape, "precision": precision, "status": status,
         "extra": {k: float(v) for k, v in (extra or {}).items() if v is not None}}
    if ms is not None:
        r["ms"] = float(ms)
    return r


def fail(e):
    return "FAIL: " + (type(e).__name__ + ": " + str(e)).replace("\n", " ").replace("|", "/")[:300]


def save(path, side, meta, results):
    """Writes the results file (strict JSON: no NaN) atomically enough for a reader after exit."""
    with open(path, "w") as f:
        json.dump({"side": side, "meta": {k: str(v) for k, v in meta.items()}, "results": results}, f,
                  indent=1, allow_nan=False)


def set_tf32(torch, on):
    """fp32 is strict fp32 (PyTorch's default allows TF32 in cuDNN convolutions: turned off here)."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def simple_median_ms(fn, device, reps=20, warmup=3):
    """The older, simpler rule of the stand-alone baselines (torch_baseline.py without --cases,
    torch_conv_baseline.py): `warmup` calls, then the median of `reps` single synchronised calls."""
    import torch
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3

