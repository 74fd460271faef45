using System.Text.RegularExpressions;
using ILGPU.Runtime.Cuda;

namespace Ccr.Bench.Sass;

/// <summary>What <c>ptxas -v</c> says of one kernel: registers, spill stores / loads and stack frame in bytes,
/// static shared memory in bytes.</summary>
public sealed record PtxasReport(int Registers, int SpillStores, int SpillLoads, int Stack, int StaticSmem)
{
    public int SpillBytes => SpillStores + SpillLoads;

    /// <summary>Parses ptxas's -v lines (one entry function):
    /// <c>N bytes stack frame, N bytes spill stores, N bytes spill loads</c> and <c>Used N registers, N bytes smem, ...</c>.</summary>
    public static PtxasReport Parse(string text)
    {
        var used = Regex.Match(text, @"Used (\d+) registers");
        if (!used.Success) throw new FormatException($"ptxas -v printed no register count:\n{text}");
        var frame = Regex.Match(text, @"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads");
        var smem = Regex.Match(text, @"Used \d+ registers[^\n]*?(\d+) bytes smem");
        int G(Match m, int g) => m.Success ? int.Parse(m.Groups[g].Value) : 0;
        return new PtxasReport(G(used, 1), G(frame, 2), G(frame, 3), G(frame, 1), G(smem, 1));
    }
}

/// <summary>One kernel variant through ILGPU -> PTX -> ptxas -> nvdisasm, and what was read off it.</summary>
public sealed record KernelSass(KernelVariant Variant, string Arch, PtxasReport Ptxas, int LocalAccesses,
                                Loop? Loop, Mix? PerKTile, int? InnerTrips, List<(LaunchShape Launch, int Blocks)> Occupancy,
                                double ToolSeconds)
{
    public double? MmaShare => PerKTile is { } m ? MainLoop.MmaShare(m) : null;
    public double? CeilingTflops => PerKTile is { } m ? MainLoop.CeilingTflops(m) : null;
    public int MinBlocks => Occupancy.Min(o => o.Blocks);
    /// <summary>Any local memory in the machine code: spills, a stack frame, LDL / STL. (ILGPU's PTX declares
    /// small <c>.local</c> depots that ptxas usually removes, so the PTX alone does not tell.)</summary>
    public bool UsesLocal => Ptxas.SpillBytes > 0 || Ptxas.Stack > 0 || LocalAccesses > 0;

    /// <summary>The PTX of <paramref name="v"/> (compiled by <paramref name="ptx"/>; not thread safe, so the
    /// caller compiles in one thread), assembled and read in a scratch (or the --keep) folder.
    /// <paramref name="innerTrips"/>: see <see cref="GemmVariants.InnerTrips"/> (null: 1, and marked unknown).
    /// <paramref name="disassemble"/> false: ptxas's report only (no main loop, no LDL / STL count).</summary>
    public static KernelSass Analyse(KernelVariant v, string ptx, CudaTools tools, string arch, string dir, bool disassemble, int? innerTrips)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        string stem = Path.Combine(dir, FileStem(v.Name));
        File.WriteAllText(stem + ".ptx", ptx);
        var report = PtxasReport.Parse(tools.Assemble(stem + ".ptx", stem + ".cubin", arch));
        Loop? loop = null;
        Mix? mix = null;
        int local = 0;
        if (disassemble)
        {
            string sass = tools.Disassemble(stem + ".cubin");
            File.WriteAllText(stem + ".sass", sass);
            var listing = SassListing.Parse(sass);
            local = listing.LocalAccesses;
            loop = MainLoop.Find(listing);
            mix = loop?.PerIteration(innerTrips ?? 1);
        }
        var limits = SmLimits.For(arch);
        var launches = v.Launches ?? [new LaunchShape($"{KernelCatalogue.DefaultThreads} threads", KernelCatalogue.DefaultThreads, 0)];
        var occ = launches.Select(l => (l, limits.Blocks(report.Registers, report.StaticSmem + l.DynamicSmem, l.Threads))).ToList();
        return new KernelSass(v, arch, report, local, loop, mix, innerTrips, occ, sw.Elapsed.TotalSeconds);
    }

    /// <summary>A file name for a variant: <c>ImplicitGemm.Tf32Kernel[conv.fwd]</c> -> <c>ImplicitGemm.Tf32Kernel_conv.fwd</c>.</summary>
    public static string FileStem(string name) => Regex.Replace(name, @"[^\w.-]+", "_").Trim('_');

    /// <summary>A PTX compiler whose ISA CUDA 11.8's ptxas reads (7.8).</summary>
    public static PtxCompiler Compiler() => new(CudaInstructionSet.ISA_78);
}
