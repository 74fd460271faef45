using Ccr.Kernels.Ops;
using System.Text;
using Ccr.Bench.Report;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Reporting;

/// <summary>
/// The GPU report's parts that can be checked without a GPU: the timing protocol (the same rule
/// as tools/torch_timing.py), the batch both sides train on, the case list both sides time, the
/// sorting of CUDA driver calls, and the table that joins both sides (ratios, targets, failures).
/// The whole script also runs end to end on a CPU: <c>bash tools/gpu_report.sh OUT --cpu</c>.
/// </summary>
public sealed class GpuReportTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "ccr-gpureport-" + Guid.NewGuid().ToString("N"));

    public GpuReportTests() => Directory.CreateDirectory(_dir);
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    [Fact]
    public void Timing_RepeatsShortOpsToTheTarget_AndTakesTheMedian()
    {
        var gpu = TimingPlan.Gpu;
        Assert.Equal(gpu.MaxInner, gpu.InnerFor(0.001));  // a 1 us op: capped
        Assert.Equal(4, gpu.InnerFor(0.5));               // 0.5 ms: four calls make the 2 ms sample
        Assert.Equal(1, gpu.InnerFor(5));                 // longer than the target: one call
        Assert.Equal(1, TimingPlan.Dry.InnerFor(0.001));
        Assert.Equal(2.0, Timing.Median([3, 1, 2]));
        Assert.Equal(2.5, Timing.Median([4, 1, 3, 2]));

        // the protocol: warm-up calls, one calibration call, then each sample's calls + one sync
        int calls = 0, syncs = 0;
        var plan = new TimingPlan(Warmup: 2, Samples: 5, TargetMs: 0, MaxInner: 1);
        double ms = Timing.MedianMs(() => calls++, () => syncs++, plan);
        Assert.Equal(2 + 1 + 5, calls);
        Assert.Equal(1 + 1 + 5, syncs);
        Assert.True(ms >= 0);
    }

    [Fact]
    public void SyntheticNyud_ReadsBackThroughTheNyudLoader()
    {
        string root = Path.Combine(_dir, "nyud");
        var ids = SyntheticNyud.Write(root, count: 2, height: 24, width: 40);
        Assert.Equal(["0001", "0002"], ids);
        var ds = new NyudDataset(root, "train", ["semseg", "depth", "normals"]);
        Assert.Equal(2, ds.Count);
        Assert.Equal(40, ds.Info.SemsegClasses);
        var s = ds.Get(1);
        Assert.Equal((24, 40), (s.Height, s.Width));
        int p = 24 * 40, invalid = 0;
        var classes = new HashSet<int>();
        for (int i = 0; i < p; i++)
        {
            int c = s.Semseg![i];
            float nx = s.Normals![i], ny = s.Normals[p + i], nz = s.Normals[2 * p + i];
            double len = Math.Sqrt(nx * nx + ny * ny + nz * nz);
            if (c == Sample.Ignore)
            {
                invalid++;
                Assert.Equal(0f, s.Depth![i]);   // one invalid region for every task
                Assert.Equal(0, len, 6);
                continue;
            }
            Assert.InRange(c, 0, 39);
            classes.Add(c);
            Assert.InRange(s.Depth![i], 0.5f, 10.5f);
            Assert.Equal(1, len, 5);
        }
        Assert.InRange(invalid, 1, p / 4);        // some invalid pixels, most valid
        Assert.True(classes.Count >= 5, $"only {classes.Count} classes");
    }

    [Fact]
    public void KernelCases_HaveUniqueIds_AndConvFlopsOfTheirGeometry()
    {
        foreach (bool dry in new[] { false, true })
        {
            var cases = KernelCases.For(dry, adamParameters: 1000);
            Assert.Equal(cases.Count, cases.Select(c => c.Id).Distinct().Count()); // the join with PyTorch's rows is by id
            foreach (var c in cases.Where(c => c.Op.StartsWith("conv")))
            {
                var s = c.Shape;
                var g = ConvGeom.From([s[0], s[1], s[2], s[3]], [s[4], s[1], s[5], s[5]], null, s[6], s[7], 1);
                Assert.Equal(2.0 * g.Macs, c.Flop);
            }
        }
        var paper = KernelCases.For(false, 1000).Single(c => c.Id == "conv.stem.conv1.fwd.fp32");
        Assert.Equal([4, 3, 480, 640, 64, 3, 2, 1, 0], paper.Shape);
        Assert.Contains(KernelCases.For(false, 1000), c => c.Id == "ccr.fwd.normals" && c.Shape.SequenceEqual([4, 128, 120, 160]));
    }

    [Fact]
    public void DriverCalls_AreSortedByName()
    {
        CudaApiCounter.Reset();
        foreach (var n in new[] { "cuLaunchKernel", "cuLaunchKernel_ptsz", "cuGraphLaunch", "cuMemcpyDtoHAsync_v2",
                                  "cuMemsetD8Async", "cuStreamSynchronize", "cuCtxSynchronize", "cuMemAlloc_v2",
                                  "cuMemFree_v2", "cuCtxGetCurrent" })
            CudaApiCounter.Classify(Encoding.ASCII.GetBytes(n));
        Assert.Equal(new CudaApiCounter.Counts(Launches: 2, GraphLaunches: 1, Copies: 1, Memsets: 1, Syncs: 2, Allocs: 1, Frees: 1, Other: 1),
                     CudaApiCounter.Snapshot());
        Assert.Null(CudaApiCounter.TryCreate(null, out var why));
        Assert.Contains("--cupti", why);
        Assert.Null(CudaApiCounter.TryCreate(Path.Combine(_dir, "no-libcupti.so"), out why));
        Assert.Contains("cannot load", why);
    }

    static ResultRow Row(string id, string part, double? ms, string status = "ok", string precision = "fp32", params (string, double)[] extra) =>
        new() { Id = id, Part = part, What = id, Precision = precision, Ms = ms, Status = status, Extra = extra.ToDictionary(e => e.Item1, e => e.Item2) };

    [Fact]
    public void Table_JoinsBothSides_WithRatiosTargetsAndFailures()
    {
        new ResultFile
        {
            Side = "ours",
            Results =
            [
                Row("model.parameters", "model", null, extra: ("parameters", 100)),
                Row("conv.a.fwd.fp32", "kernel", 1.0),
                Row("conv.b.fwd.fp32", "kernel", 1.0),
                Row("conv.a.fwd.tf32", "kernel", null, "FAIL: CudaException: out of resources", "tf32"),
                Row("copy.256@120x160", "kernel", 1.0, extra: ("gbs", 1000)),
                Row("bn.18@120x160", "kernel", 1.0, extra: ("gbs", 800)),
                Row("ccr.fwd.semseg", "ccr", 0.3),
                Row("step.base.fp32", "step", 100),
                Row("step.ccr.fp32", "step", 104, extra: [("peak_pool_mib", 900), ("launches", 1500), ("kernels_per_graph", 1490), ("graph_replays", 1)]),
                Row("step.ccr.fp32.nograph", "step", 130, extra: ("launches_issued", 1490)),
                Row("only.ours", "kernel", 2.0),
            ],
        }.Save(Path.Combine(_dir, "ours_kernels.json"));
        new ResultFile { Side = "ours", Results = [Row("step.later", "step", 1.0)] }.Save(Path.Combine(_dir, "ours_step.json"));
        new ResultFile
        {
            Side = "torch",
            Results =
            [
                Row("model.parameters", "model", null, extra: ("parameters", 101)),
                Row("conv.a.fwd.fp32", "kernel", 0.5),   // ours 2x slower: misses >= 60% of throughput
                Row("conv.b.fwd.fp32", "kernel", 0.7),   // 1.43x: meets it
                Row("bn.18@120x160", "kernel", 1.0),
                Row("ccr.fwd.semseg", "ccr", 1.2),       // 4x faster: meets >= 3x
                Row("step.base.fp32", "step", 90),
                Row("step.ccr.fp32", "step", 120, extra: [("peak_reserved_mib", 1000), ("kernels", 1200)]),
            ],
        }.Save(Path.Combine(_dir, "torch_step.json"));
        File.WriteAllText(Path.Combine(_dir, "torch_broken.json"), "{ not json");
        File.WriteAllText(Path.Combine(_dir, "parts.tsv"),
            "verify\t0\t40\tverify.log\t\nmemcheck\t124\t90\tmemcheck.log\ttimed out after 90 s\nracecheck\t9\t50\tracecheck.log\t\n");
        File.WriteAllText(Path.Combine(_dir, "racecheck.log"),
            "conv        conv2d.fwd ... ok\n37 passed, 0 failed\n========= RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings)\n");
        File.WriteAllText(Path.Combine(_dir, "verify.log"), "family kernel ...\n204 passed, 0 failed\n");
        File.WriteAllText(Path.Combine(_dir, "meta.txt"), "card=NVIDIA H200, 143771 MiB\ndate=2026-12-01 10:00 UTC\n");

        var (md, rows) = ReportTable.Build(_dir);
        TableRow R(string id) => rows.Single(r => r.Id == id);

        Assert.StartsWith("ok", R("verify").Status);
        Assert.Contains("204 passed, 0 failed", R("verify").Ours);
        Assert.StartsWith("FAIL: timed out", R("memcheck").Status);
        Assert.StartsWith("FAIL: exit code 9", R("racecheck").Status);   // --error-exitcode 9: hazards found
        Assert.Contains("RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings)", R("racecheck").Ours);
        Assert.StartsWith("FAIL: parameter counts differ", R("model.parameters").Status);
        Assert.Equal(2.0, R("conv.a.fwd.fp32").Ratio!.Value, 9);
        Assert.Equal("missed", R("conv.a.fwd.fp32").Status);
        Assert.Equal("met", R("conv.b.fwd.fp32").Status);
        Assert.Equal("ours: FAIL: CudaException: out of resources", R("conv.a.fwd.tf32").Status);
        Assert.Equal("met", R("bn.18@120x160").Status);            // 800 of our 1000 GB/s copy: 80% >= 70%
        Assert.Contains("80", R("bn.18@120x160").Target);
        Assert.Equal("met", R("ccr.fwd.semseg").Status);
        Assert.Equal("PyTorch: missing", R("only.ours").Status);
        Assert.EndsWith("PyTorch: missing", R("step.later").Status);  // the rows of every ours*.json are read
        // the models differ, so every step row says so before anything else
        Assert.StartsWith("FAIL: the models differ", R("step.ccr.fp32").Status);
        Assert.Equal("met", R("step.ccr_share.fp32").Status);        // 104 / 100: 4% <= 5%
        Assert.Equal("met", R("step.memory.ccr.fp32").Status);           // 900 <= 1000 MiB
        Assert.Equal(1.25, R("step.launches.ccr.fp32").Ratio!.Value, 9);
        Assert.Equal(0.8, R("step.graph.ccr.fp32").Ratio!.Value, 9);     // 104 ms replayed vs 130 ms with plain launches
        Assert.Equal("met", R("step.graph.ccr.fp32").Status);
        Assert.Contains("1490 per graph, 1490 launches without", R("step.graph.ccr.fp32").What);
        Assert.DoesNotContain(rows, r => r.Id == "step.graph.base.fp32"); // no plain-launch row to compare with
        Assert.Equal(130.0 / 120, R("step.ccr.fp32.nograph").Ratio!.Value, 9); // without graphs beside PyTorch's eager step
        Assert.Contains("torch_broken.json is not valid JSON", md);
        Assert.Contains("- card: NVIDIA H200", md);
        Assert.True(File.Exists(Path.Combine(_dir, "report.json")));
        Assert.Equal(1, ReportTable.Run([_dir]));                     // a FAIL row: exit code 1
        Assert.True(File.Exists(Path.Combine(_dir, "report.md")));
    }

    [Fact]
    public void Table_OfAnEmptyFolder_SaysWhatIsMissing()
    {
        var (md, rows) = ReportTable.Build(_dir);
        Assert.Contains("no ours*.json was written", md);
        Assert.All(rows, r => Assert.StartsWith("skipped", r.Status));
    }
}
