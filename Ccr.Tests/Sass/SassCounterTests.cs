using Ccr.Kernels.Ops;
using Ccr.Bench.Sass;
using Ccr.Kernels;
using Xunit;

namespace Ccr.Tests.Sass;

/// <summary>
/// The counter behind <c>Ccr.Bench sass</c>, on small hand-written SASS listings (nvdisasm -c's format),
/// so every number it prints is pinned: which loop is the main one, the per-class counts, the share, the
/// ceiling; also ptxas -v parsing, occupancy, and the kernel catalogue. No CUDA tools needed.
/// </summary>
public class SassCounterTests
{
    // a prologue, a loop of 7 (LDS, 3 FFMA, IADD3, ISETP, BRA back), an epilogue, and the self-branch nvdisasm
    // puts after EXIT (a loop without math: never the main loop)
    const string Simple = """
        .text.Kernel_Probe:
                /*0000*/                   S2R R0, SR_TID.X ;
                /*0010*/                   MOV R2, RZ ;
        .L_x_0:
                /*0020*/                   LDS R4, [R0] ;
                /*0030*/                   FFMA R2, R4, R4, R2 ;
                /*0040*/                   FFMA R3, R4, R2, R3 ;
                /*0050*/                   FFMA R5, R4, R3, R5 ;
                /*0060*/                   IADD3 R0, R0, 0x4, RZ ;
                /*0070*/                   ISETP.NE.AND P0, PT, R0, 0x100, PT ;
                /*0080*/               @P0 BRA `(.L_x_0) ;
                /*0090*/                   STG.E [R6.64], R2 ;
                /*00a0*/                   EXIT ;
        .L_x_1:
                /*00b0*/                   BRA `(.L_x_1);
        """;

    [Fact]
    public void TheMainLoopIsCountedInstructionByInstruction()
    {
        var listing = SassListing.Parse(Simple);
        Assert.Equal(12, listing.Instrs.Count);
        Assert.Equal(2, MainLoop.Loops(listing).Count); // the math loop and the self-branch
        var loop = MainLoop.Find(listing)!;
        Assert.Equal((2, 8), (loop.Start, loop.End));
        var m = loop.PerIteration(innerTrips: 16); // no inner loop: trips do not matter
        Assert.Equal(7, m.Total);
        Assert.Equal(3, m[InstrClass.Ffma]);
        Assert.Equal(1, m[InstrClass.Lds]);
        Assert.Equal(2, m[InstrClass.Integer]);
        Assert.Equal(1, m[InstrClass.Control]);
        Assert.Equal(0, m[InstrClass.Hmma] + m[InstrClass.Ldg] + m[InstrClass.Sts] + m[InstrClass.Other] + m[InstrClass.FloatOther]);
        Assert.Equal(3 * 64.0, m.Flops);
        Assert.Equal(3.0 / 7, MainLoop.MmaShare(m), 12);
        // 132 SMs x 1.83 GHz x 192 flops per iteration / (7 instructions / 4 issued a clock)
        Assert.Equal(132 * 1.83e9 * 192 / (7 / 4.0) / 1e12, MainLoop.CeilingTflops(m), 9);
        Assert.Equal(26.50258, MainLoop.CeilingTflops(m), 4);
        Assert.Equal("7", loop.Describe(16));
    }

    [Fact]
    public void AnInnerLoopIsWeightedByItsTripsAndShown()
    {
        // outer: 4 own instructions + an inner loop of 3 (2 FFMA + the branch); BAR and the outer branch are control
        const string nested = """
                    /*0000*/                   MOV R2, RZ ;
            .L_x_5:
                    /*0010*/                   LDG.E R4, [R8.64] ;
                    /*0020*/                   STS [R0], R4 ;
                    /*0030*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
            .L_x_6:
                    /*0040*/                   FFMA R2, R4, R4, R2 ;
                    /*0050*/                   FFMA R3, R4, R2, R3 ;
                    /*0060*/              @!P1 BRA `(.L_x_6) ;
                    /*0070*/               @P0 BRA `(.L_x_5) ;
                    /*0080*/                   EXIT ;
            """;
        var loop = MainLoop.Find(SassListing.Parse(nested))!;
        Assert.Equal(1, loop.Start); // ties (2 FFMA as written in both) go to the outer loop
        Assert.Single(loop.Inner);
        var m = loop.PerIteration(innerTrips: 16);
        Assert.Equal(4 + 16 * 3, m.Total);
        Assert.Equal(32, m[InstrClass.Ffma]);
        Assert.Equal(1, m[InstrClass.Ldg]);
        Assert.Equal(1, m[InstrClass.Sts]);
        Assert.Equal(2 + 16, m[InstrClass.Control]);
        Assert.Equal(32.0 / 52, MainLoop.MmaShare(m), 12);
        Assert.Equal("4+16x(3)", loop.Describe(16));
    }

    [Fact]
    public void TensorCoreLoopsAreCappedAtTheTensorRate()
    {
        // 4 HMMA.1688 (2048 flops each) in 8 instructions: issue needs 2 clocks, the tensor cores 4
        const string mma = """
            .L_x_2:
                    /*0000*/                   LDSM.16.M88.4 R8, [R0] ;
                    /*0010*/                   HMMA.1688.F32.TF32 R12, R8, R4, R12 ;
                    /*0020*/                   HMMA.1688.F32.TF32 R16, R8, R5, R16 ;
                    /*0030*/                   HMMA.1688.F32.TF32 R20, R9, R4, R20 ;
                    /*0040*/                   HMMA.1688.F32.TF32 R24, R9, R5, R24 ;
                    /*0050*/                   UIADD3 UR4, UR4, 0x1, URZ ;
                    /*0060*/                   ISETP.NE.AND P0, PT, R0, UR4, PT ;
                    /*0070*/               @P0 BRA `(.L_x_2) ;
            """;
        var m = MainLoop.Find(SassListing.Parse(mma))!.PerIteration(1);
        Assert.Equal(4, m[InstrClass.Hmma]);
        Assert.Equal(1, m[InstrClass.Lds]);
        Assert.Equal(2, m[InstrClass.Integer]); // the uniform UIADD3 is integer work too
        Assert.Equal(4 * 2048.0, m.Flops);
        Assert.Equal(0.5, MainLoop.MmaShare(m));
        Assert.Equal(132 * 1.83e9 * 2048 / 1e12, MainLoop.CeilingTflops(m), 9); // 494.7: the dense TF32 peak
    }

    [Theory]
    [InlineData("FFMA.FTZ", InstrClass.Ffma)]
    [InlineData("HMMA", InstrClass.Hmma)]
    [InlineData("LDGSTS", InstrClass.Ldg)]
    [InlineData("IMAD", InstrClass.Integer)]
    [InlineData("ULOP3", InstrClass.Integer)]
    [InlineData("BSSY", InstrClass.Control)]
    [InlineData("FADD", InstrClass.FloatOther)]
    [InlineData("ULDC", InstrClass.Other)]
    [InlineData("STL", InstrClass.Other)]
    public void OpcodesFallInTheirClasses(string mnemonic, InstrClass expected) =>
        Assert.Equal(expected, SassListing.Classify(mnemonic.Split('.')[0]));

    [Fact]
    public void PtxasReportIsParsed()
    {
        const string v = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'Kernel_X' for 'sm_90'
            ptxas info    : Function properties for Kernel_X
                16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
            ptxas info    : Used 94 registers, 4096 bytes smem, 536 bytes cmem[0]
            """;
        var r = PtxasReport.Parse(v);
        Assert.Equal(new PtxasReport(94, 8, 12, 16, 4096), r);
        Assert.Equal(20, r.SpillBytes);
        Assert.Equal(new PtxasReport(125, 0, 0, 0, 0), PtxasReport.Parse("    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\nptxas info    : Used 125 registers"));
        Assert.Throws<FormatException>(() => PtxasReport.Parse("ptxas info    : 0 bytes gmem"));
    }

    [Theory]
    // registers: 128 x 32 = 4096 a warp, 4 warps a quadrant, 16 a SM = 2 blocks of 8 warps
    [InlineData(125, 34816, 256, 2)]
    // 80 x 32 = 2560 a warp: 6 a quadrant, 24 warps = 3 blocks
    [InlineData(76, 21760, 256, 3)]
    // threads: 2048 / 1024
    [InlineData(32, 512, 1024, 2)]
    // shared memory: 100 KB + 1 KB reserved fits twice in 228 KB
    [InlineData(32, 100 * 1024, 128, 2)]
    // blocks: 32 at most
    [InlineData(16, 0, 32, 32)]
    // over 227 KB of shared memory, or 255 registers x 1024 threads: cannot launch
    [InlineData(32, 228 * 1024, 128, 0)]
    [InlineData(255, 0, 1024, 0)]
    public void OccupancyFollowsTheH100Limits(int regs, int smem, int threads, int blocks) =>
        Assert.Equal(blocks, SmLimits.Sm90.Blocks(regs, smem, threads));

    [Fact]
    public void TheCatalogueHoldsEveryKernelAndEveryGemmUse()
    {
        var all = KernelCatalogue.All();
        Assert.Equal(all.Count, all.Select(v => v.Name).Distinct().Count());
        var names = all.Select(v => v.Name).ToHashSet();
        // every tile shape of its precision for every use, and no shape of the other precision
        foreach (var (p, tile, shape) in TileShapes.All())
            foreach (var use in GemmVariants.Uses())
                Assert.Contains($"ImplicitGemm.{(p == MathPrecision.Tf32 ? "Tf32Kernel" : "Fp32Kernel")}[{use.Name},{shape.Name}]", names);
        Assert.DoesNotContain(names, n => n.StartsWith("ImplicitGemm.Fp32Kernel", StringComparison.Ordinal) && n.Contains(",T", StringComparison.Ordinal));
        Assert.Contains("CcrDistances.FeatureKernel", names);
        Assert.Contains("BatchNorm.ForwardKernel", names);
        // every kernel method of Ccr.Kernels is in, closed where generic
        int methods = typeof(ImplicitGemm).Assembly.GetTypes().Sum(t => PtxCompiler.KernelsOf(t).Count(m => m.DeclaringType == t && !m.IsGenericMethodDefinition));
        Assert.Equal(methods, all.Count(v => !v.Method.IsGenericMethod));
        Assert.All(all, v => Assert.False(v.Method.ContainsGenericParameters, v.Name));
        var t64x128 = all.Single(v => v.Name == "ImplicitGemm.Tf32Kernel[gemm,T64x128]");
        Assert.Equal("tf32", t64x128.Precision);
        // the launcher's blocks: TF32 one warp per 32x32 of the tile (64x128: 8 warps); fp32 64x64 128 threads
        Assert.Equal(256, t64x128.Launches!.Single().Threads);
        Assert.Equal(128, all.Single(v => v.Name == "ImplicitGemm.Fp32Kernel[conv.fwd,F64x64]").Launches!.Single().Threads);
        // and the launch bounds the product gives it on a GPU: at most 128 registers a thread
        var bounds = GemmVariants.Specialization(t64x128.Method);
        Assert.Equal((256, 2), (bounds.MaxNumThreadsPerGroup, bounds.MinNumGroupsPerMultiprocessor));
    }

    interface INotInCcrKernels { }
    static void StrangeKernel<TTile>() where TTile : struct, INotInCcrKernels { }
    static void ThreeOperandKernel<TA, TB, TX, TC>() where TA : struct, IGemmOperand where TB : struct, IGemmOperand
        where TX : struct, IGemmOperand where TC : struct, IGemmOutput { }

    [Fact]
    public void AKernelThatCannotBeClosedIsNamed()
    {
        var flags = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static;
        var strange = typeof(SassCounterTests).GetMethod(nameof(StrangeKernel), flags)!;
        var e = Assert.Throws<InvalidOperationException>(() => KernelCatalogue.Close(strange, GemmVariants.Uses()));
        Assert.Contains("SassCounterTests.StrangeKernel", e.Message);
        Assert.Contains("TTile", e.Message);
        Assert.Contains("GemmVariants.cs", e.Message);
        var three = typeof(SassCounterTests).GetMethod(nameof(ThreeOperandKernel), flags)!;
        e = Assert.Throws<InvalidOperationException>(() => KernelCatalogue.Close(three, GemmVariants.Uses()));
        Assert.Contains("ThreeOperandKernel", e.Message);
    }

    [Fact]
    public void MissingToolsExitWithTwo() =>
        Assert.Equal(2, SassCommand.Run(["--tools", Path.Combine(Path.GetTempPath(), "no-cuda-tools-here")]));
}
