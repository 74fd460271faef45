using BenchmarkDotNet.Running;
using Ccr.Bench.Verify;

// Ccr.Bench verify [--filter FAMILY]   : every kernel against its float64 reference
// Ccr.Bench precision                  : relative error of conv / GEMM in fp32 and TF32 against float64
// Ccr.Bench [BenchmarkDotNet arguments] : the benchmarks (e.g. --filter '*Conv*')
if (args.Length > 0 && args[0] == "verify")
    return VerifyRunner.Run(args[1..]);
if (args.Length > 0 && args[0] == "precision")
    return PrecisionReport.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(VerifyRunner).Assembly).Run(args);
return 0;
