using System.Diagnostics;
using System.Text.Json;
using Ccr.Bench.Sass;
using Xunit;
using Xunit.Abstractions;

namespace Ccr.Tests.Sass;

/// <summary>
/// Every kernel of the catalogue assembled for an H100 by CUDA 11.8's ptxas (tools/get-cuda-tools.sh; .ci/run
/// fetches them into .cuda-tools/ and sets CCR_CUDA_TOOLS). Skipped, not passed, without the tools.
/// </summary>
public class SassAssembleTests(ITestOutputHelper output)
{
    /// <summary>Kernels known to use local memory, and why; each entry must still do so (remove it when fixed).</summary>
    static readonly Dictionary<string, string> KnownLocal = new()
    {
        // ILGPU's XMath.Atan2 (the angle between normals) is a CORDIC loop whose helpers take their
        // arguments by reference: a 16-byte stack frame with LDL / STL in every call
        ["CcrDistances.LabelKernel"] = "XMath.Atan2's by-reference helpers",
    };

    [SkippableFact]
    public void EveryKernelAssemblesForSm90WithoutSpillsOrLocalMemory()
    {
        var tools = CudaTools.Find();
        Skip.If(tools == null, CudaTools.Missing);
        var sw = Stopwatch.StartNew();
        var variants = KernelCatalogue.All();
        string dir = Directory.CreateTempSubdirectory("ccr-sass-test-").FullName;
        try
        {
            // ptxas's report only (spills and the stack frame are where local memory shows): no disassembly
            var rs = SassCommand.AnalyseAll(variants, tools!, "sm_90", dir, disassemble: false, trips: null);
            output.WriteLine($"{rs.Count} variants assembled in {sw.Elapsed.TotalSeconds:F1} s (ILGPU PTX {SassCommand.LastPtxSeconds:F1} s)");
            Assert.Equal(variants.Count, rs.Count);
            var bad = rs.Where(r => r.UsesLocal && !KnownLocal.ContainsKey(r.Variant.Name))
                .Select(r => $"{r.Variant.Name}: {r.Ptxas.SpillStores} B spill stores, {r.Ptxas.SpillLoads} B spill loads, {r.Ptxas.Stack} B stack").ToList();
            Assert.True(bad.Count == 0, "local memory in:\n" + string.Join("\n", bad));
            foreach (var (name, why) in KnownLocal)
                Assert.True(rs.Single(r => r.Variant.Name == name).UsesLocal, $"{name} no longer uses local memory ({why}): drop it from KnownLocal");
            Assert.All(rs, r => Assert.InRange(r.Ptxas.Registers, 1, 255));
            Assert.All(rs.Where(r => r.Variant.Launches != null), r => Assert.True(r.MinBlocks >= 1, $"{r.Variant.Name}: a tile cannot launch on an H100"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [SkippableFact]
    public void TheCommandWritesItsTableJsonAndFiles()
    {
        var tools = CudaTools.Find();
        Skip.If(tools == null, CudaTools.Missing);
        string dir = Directory.CreateTempSubdirectory("ccr-sass-cli-").FullName;
        try
        {
            string json = Path.Combine(dir, "sass.json"), keep = Path.Combine(dir, "keep");
            Assert.Equal(0, SassCommand.Run(["--filter", "CcrDistances.Feature", "--json", json, "--keep", keep, "--tools", tools!.Bin]));
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var r = Assert.Single(doc.RootElement.EnumerateArray().ToList());
            Assert.Equal("CcrDistances.FeatureKernel", r.GetProperty("name").GetString());
            Assert.Equal("fp32", r.GetProperty("precision").GetString());
            Assert.InRange(r.GetProperty("registers").GetInt32(), 1, 255);
            Assert.Equal(0, r.GetProperty("spill_bytes").GetInt32());
            // its distance loop does FFMAs: a share in (0, 1) and a ceiling below fp32's issue peak
            Assert.InRange(r.GetProperty("mma_share").GetDouble(), 1e-3, 1);
            Assert.InRange(r.GetProperty("ceiling_tflops").GetDouble(), 1e-3, 132 * 1.83e9 * 256 / 1e12);
            Assert.True(r.GetProperty("main_loop").GetProperty("counts").GetProperty("ffma").GetInt32() > 0);
            foreach (var ext in new[] { ".ptx", ".cubin", ".sass" })
                Assert.True(File.Exists(Path.Combine(keep, "CcrDistances.FeatureKernel" + ext)), ext);
            Assert.Contains("FFMA", File.ReadAllText(Path.Combine(keep, "CcrDistances.FeatureKernel.sass")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
