using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Ccr.Bench.Sass;

/// <summary>
/// <c>Ccr.Bench sass</c>: every kernel compiled to PTX by ILGPU, assembled for an H100 (or A100) by CUDA 11.8's
/// ptxas and disassembled by nvdisasm, without a GPU: resources, occupancy and the main loop's mix (see Help).
/// </summary>
public static class SassCommand
{
    public const string Help = """
        Ccr.Bench sass [--arch sm_90|sm_80] [--filter SUBSTR] [--json FILE] [--keep DIR] [--tools DIR] [--inner-trips N]

        Compiles every kernel of Ccr.Kernels (each type's private static ...Kernel methods; the implicit-GEMM
        kernels closed over the conv forward / input-gradient / weight-gradient and plain-GEMM operand types,
        see Ccr.Bench/Sass/GemmVariants.cs) to PTX with ILGPU (target sm_80, ISA 7.8), assembles it with
        `ptxas -arch=ARCH -v` and disassembles the cubin with `nvdisasm -c`. No GPU needed. One row per variant:
          regs, spill     registers per thread; spill stores + loads in bytes (ptxas -v)
          stack           stack frame bytes (local memory; 0 wanted)
          smem            static shared bytes (ptxas) + dynamic shared bytes the launcher requests (GEMMs:
                          the largest over their tiles)
          blk/SM          theoretical blocks per SM (fewest over the GEMM tiles; other kernels at 1024 threads,
                          the device's group size): 64 K registers in 4 quadrants, allocated per warp in units
                          of 256; shared = static + dynamic + 1 KB reserved, 128 B units, 228 KB per SM (227 KB
                          per block; sm_80: 164 / 163 KB); 2048 threads, 32 blocks per SM
          loop instr/k    instructions one warp issues per iteration of the main loop: the loop (closed by a
                          backward BRA) holding the most HMMA + FFMA as written, ties to the outermost (the loop
                          over BK-deep k-tiles); every listed instruction counts once, predicated or not. An inner
                          loop is shown, not hidden: 2690+16x(119) = own + trips x inner, trips per k-tile from
                          GemmVariants.InnerTrips (fp32 BK = 16, TF32 BK / 8 = 2; '?' = unknown, weighted 1) or
                          --inner-trips
          hmma/ffma/lds/ldg/sts/int/ctl  that count by class (ldg: LDG, LDGSTS; int: IMAD, IADD3, LEA, SHF,
                          LOP3, ISETP, SEL, MOV, ... and uniform U* forms; ctl: BRA, BAR, BSSY, BSYNC, ...;
                          FADD/FMUL/MUFU are float-other, LDC/S2R/STG/shuffles other: in the JSON)
                          (shown for the GEMM family and GemmVariants.OtherMathKernels, where the issue rate is
                          what bounds them; the JSON has every kernel's loop)
          mma%            (HMMA + FFMA) / issued in that loop
          ceil TF/s       issue-bound ceiling on an H100 SXM: 132 SMs x 1.83 GHz, 4 warp instructions issued per
                          SM per clock, FFMA = 64 flops, HMMA.1688 (TF32) = 2048 flops, tensor cores capped at
                          2048 dense TF32 flops per SM per clock (494.7 TFLOP/s; wgmma's rate: mma.sync gets
                          less). = 132 x 1.83e9 x flops / max(issued / 4, HMMA flops / 2048) per k-tile.
                          Memory and latency are not modelled: an upper bound, not a prediction. Always the
                          H100's ceiling; --arch sm_80 changes the code counted, not the machine.
        --json FILE   one record per variant (name, precision, registers, spill_bytes, mma_share, ceiling_tflops, ...)
        --keep DIR    leave each variant's .ptx, .cubin and .sass in DIR
        --tools DIR   ptxas / nvdisasm from DIR; else $CCR_CUDA_TOOLS, .cuda-tools/usr/bin, PATH
                      (tools/get-cuda-tools.sh puts them in .cuda-tools/)
        Exit: 0; 1 on a bad argument or when a kernel cannot be closed, compiled or assembled (the message names
        it); 2 when the tools are missing.
        Updating after a kernel signature change: edit GemmVariants.Uses (operand / output types) and, when
        tiles or precisions change, GemmVariants.Launches / InnerTrips; other kernels are found by reflection.
        """;

    public static int Run(string[] args)
    {
        try { return RunChecked(args); }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or IOException)
        {
            // a kernel that cannot be closed, compiled or assembled (named in the message), or a bad argument
            Console.Error.WriteLine($"sass: {e.Message}");
            return 1;
        }
    }

    static int RunChecked(string[] args)
    {
        string arch = "sm_90";
        string? filter = null, json = null, keep = null, toolsDir = null;
        int? trips = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--arch": arch = Next(); break;
                case "--filter": filter = Next(); break;
                case "--json": json = Next(); break;
                case "--keep": keep = Next(); break;
                case "--tools": toolsDir = Next(); break;
                case "--inner-trips": trips = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "-h" or "--help": Console.WriteLine(Help); return 0;
                default: Console.Error.WriteLine($"sass: unknown argument {args[i]}\n\n{Help}"); return 1;
            }
        }
        var limits = SmLimits.For(arch);
        var tools = CudaTools.Find(toolsDir);
        if (tools == null) { Console.Error.WriteLine(CudaTools.Missing); return 2; }

        var sw = Stopwatch.StartNew();
        var variants = KernelCatalogue.All()
            .Where(v => filter == null || v.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
        if (variants.Count == 0) { Console.Error.WriteLine($"sass: no kernel matches --filter {filter}"); return 1; }
        string dir = keep ?? Directory.CreateTempSubdirectory("ccr-sass-").FullName;
        Directory.CreateDirectory(dir);
        List<KernelSass> results;
        try { results = AnalyseAll(variants, tools, limits.Arch, dir, disassemble: true, trips); }
        finally { if (keep == null) Directory.Delete(dir, recursive: true); }

        Console.WriteLine($"SASS of {results.Count} kernel variants for {arch} (ptxas / nvdisasm from {tools.Bin}); static estimates, see `sass --help`");
        Console.WriteLine();
        Console.Write(Table(results));
        Console.WriteLine();
        Console.WriteLine($"{results.Count(r => r.UsesLocal)} variants with local memory (spills, stack, LDL/STL); {sw.Elapsed.TotalSeconds:F1} s " +
                          $"(ILGPU PTX {LastPtxSeconds:F1} s; ptxas + nvdisasm {results.Sum(r => r.ToolSeconds):F1} s over up to {Environment.ProcessorCount} processes)");
        if (json != null)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(results.Select(Record), new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {json}");
        }
        if (keep != null) Console.WriteLine($"PTX, cubin and SASS in {keep}");
        return 0;
    }

    /// <summary>Compiles <paramref name="variants"/> to PTX one after another (ILGPU's backend is not thread safe)
    /// while ptxas / nvdisasm run on up to one process per core. Results in catalogue order.</summary>
    public static List<KernelSass> AnalyseAll(List<KernelVariant> variants, CudaTools tools, string arch, string dir, bool disassemble, int? trips)
    {
        var tasks = new List<Task<KernelSass>>();
        var compile = new Stopwatch();
        using var gate = new SemaphoreSlim(Math.Max(1, Environment.ProcessorCount));
        using (var compiler = KernelSass.Compiler())
            foreach (var v in variants)
            {
                string ptx;
                compile.Start();
                try { ptx = compiler.Ptx(v.Method); }
                catch (Exception e) { throw new InvalidOperationException($"{v.Name}: ILGPU could not compile it to PTX: {e.Message}", e); }
                finally { compile.Stop(); }
                int? t = trips ?? (v.Launches != null ? GemmVariants.InnerTrips(v.Method) : null);
                gate.Wait();
                tasks.Add(Task.Run(() =>
                {
                    try { return KernelSass.Analyse(v, ptx, tools, arch, dir, disassemble, t); }
                    catch (Exception e) { throw new InvalidOperationException($"{v.Name}: {e.Message}", e); }
                    finally { gate.Release(); }
                }));
            }
        try { Task.WaitAll(tasks); }
        catch (AggregateException e) { throw e.InnerExceptions[0]; }
        LastPtxSeconds = compile.Elapsed.TotalSeconds;
        return tasks.Select(t => t.Result).ToList();
    }

    /// <summary>Seconds the last <see cref="AnalyseAll"/> spent in ILGPU's PTX compiler.</summary>
    public static double LastPtxSeconds { get; private set; }

    static string Pct(double? x) => x is { } v ? (100 * v).ToString("F1", CultureInfo.InvariantCulture) + "%" : "-";

    public static string Table(List<KernelSass> rs)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| kernel | prec | regs | spill B | stack | smem s+d | blk/SM | loop instr/k | hmma | ffma | lds | ldg | sts | int | ctl | mma% | ceil TF/s |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in rs)
        {
            int dyn = r.Occupancy.Max(o => o.Launch.DynamicSmem);
            string loop = "-", cls = "| - | - | - | - | - | - | - ";
            if (r.Variant.Math && r.Loop is { } l && r.PerKTile is { } m)
            {
                loop = r.Loop.Inner.Count > 0 ? $"{m.Total}={l.Describe(r.InnerTrips ?? 1)}{(r.InnerTrips == null ? "?" : "")}" : $"{m.Total}";
                cls = $"| {m[InstrClass.Hmma]} | {m[InstrClass.Ffma]} | {m[InstrClass.Lds]} | {m[InstrClass.Ldg]} | {m[InstrClass.Sts]} | {m[InstrClass.Integer]} | {m[InstrClass.Control]} ";
            }
            string ceil = r.Variant.Math && r.CeilingTflops is { } c ? c.ToString("F1", CultureInfo.InvariantCulture) : "-";
            sb.AppendLine($"| {r.Variant.Name} | {r.Variant.Precision} | {r.Ptxas.Registers} | {r.Ptxas.SpillBytes} | {r.Ptxas.Stack} | " +
                          $"{r.Ptxas.StaticSmem}+{dyn} | {r.MinBlocks} | {loop} {cls}| {Pct(r.Variant.Math ? r.MmaShare : null)} | {ceil} |");
        }
        return sb.ToString();
    }

    static Dictionary<string, object?> Record(KernelSass r)
    {
        var m = r.PerKTile;
        return new()
        {
            ["name"] = r.Variant.Name,
            ["method"] = r.Variant.Method.ToString(),
            ["arch"] = r.Arch,
            ["precision"] = r.Variant.Precision,
            ["registers"] = r.Ptxas.Registers,
            ["spill_bytes"] = r.Ptxas.SpillBytes,
            ["spill_stores"] = r.Ptxas.SpillStores,
            ["spill_loads"] = r.Ptxas.SpillLoads,
            ["stack_bytes"] = r.Ptxas.Stack,
            ["local_instructions"] = r.LocalAccesses,
            ["static_smem"] = r.Ptxas.StaticSmem,
            ["launches"] = r.Occupancy.Select(o => new Dictionary<string, object>
            {
                ["launch"] = o.Launch.Name, ["threads"] = o.Launch.Threads, ["dynamic_smem"] = o.Launch.DynamicSmem, ["blocks_per_sm"] = o.Blocks,
            }).ToList(),
            ["blocks_per_sm"] = r.MinBlocks,
            ["main_loop"] = m == null ? null : new Dictionary<string, object?>
            {
                ["instructions_per_ktile"] = m.Total,
                ["layout"] = r.Loop!.Describe(r.InnerTrips ?? 1),
                ["inner_trips"] = r.Loop.Inner.Count > 0 ? r.InnerTrips : null,
                ["inner_trips_known"] = r.Loop.Inner.Count == 0 || r.InnerTrips != null,
                ["counts"] = Enum.GetValues<InstrClass>().ToDictionary(c => c.ToString().ToLowerInvariant(), c => m[c]),
                ["flops_per_ktile"] = m.Flops,
            },
            ["math_kernel"] = r.Variant.Math,
            ["mma_share"] = r.Variant.Math ? r.MmaShare : null,
            ["ceiling_tflops"] = r.Variant.Math ? r.CeilingTflops : null,
        };
    }
}
