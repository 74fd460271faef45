using BenchmarkDotNet.Running;
using Ccr.Bench.Report;
using Ccr.Bench.Verify;

// Ccr.Bench verify [--filter FAMILY] [--small] : every kernel against its float64 reference
// Ccr.Bench precision                         : relative error of conv / GEMM in fp32 and TF32 against float64
// Ccr.Bench report --out DIR [--dry] ...      : our side of the GPU report (tools/gpu_report.sh)
// Ccr.Bench report-table DIR                  : joins both sides' results into DIR/report.md
// Ccr.Bench sass [--arch sm_90|sm_80] ...     : every kernel's SASS without a GPU: registers, spills, occupancy,
//                                               main-loop instruction mix and issue-bound ceiling (sass --help)
// Ccr.Bench cpu-peak [--shapes]               : this machine's measured FMA peak and the CPU GEMM's share of it
//                                               (--shapes: the paper network's GEMMs, packed vs the previous path)
// Ccr.Bench step-profile [--ccr] [--set k=v]  : the paper model's CPU training step op by op (forward / backward ms)
// Ccr.Bench conv-passes [REPS]                : conv forward / input grad / weight grad ms apart, at the step's shapes
// Ccr.Bench ccr-time [REPS]                   : the CCR pair's median wall and process CPU time per label kind
//                                               (CPU time stays meaningful on a shared, loaded machine)
// Ccr.Bench device [--require cuda]           : the accelerator auto picks; exit 3 unless CUDA when required
// Ccr.Bench launches [--batch N] [--height H] [--width W] [--sms N] : kernel launches per step of the paper
//                                               model, counted on the CPU without running a kernel
// Ccr.Bench [BenchmarkDotNet arguments]       : the benchmarks (e.g. --filter '*Conv*')
if (args.Length > 0 && args[0] == "verify")
    return VerifyRunner.Run(args[1..]);
if (args.Length > 0 && args[0] == "precision")
    return PrecisionReport.Run(args[1..]);
if (args.Length > 0 && args[0] == "report")
    return ReportCommand.Run(args[1..]);
if (args.Length > 0 && args[0] == "report-table")
    return ReportTable.Run(args[1..]);
if (args.Length > 0 && args[0] == "sass")
    return Ccr.Bench.Sass.SassCommand.Run(args[1..]);
if (args.Length > 0 && args[0] == "device")
    return DeviceProbe.Run(args[1..]);
if (args.Length > 0 && args[0] == "launches")
    return LaunchCount.Run(args[1..]);
if (args.Length > 0 && args[0] == "cpu-peak")
    return Ccr.Bench.Report.CpuPeak.Run(args[1..]);
if (args.Length > 0 && args[0] == "step-profile")
    return StepProfile.Run(args[1..]);
if (args.Length > 0 && args[0] == "conv-passes")
    return ConvPasses.Run(args[1..]);
if (args.Length > 0 && args[0] == "ccr-time")
    return Ccr.Bench.Benchmarks.CcrBenchmarks.TimeAll(args.Length > 1 ? int.Parse(args[1]) : 5);
BenchmarkSwitcher.FromAssembly(typeof(VerifyRunner).Assembly).Run(args);
return 0;
