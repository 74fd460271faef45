using System.Diagnostics;
using Ccr.Kernels;

namespace Ccr.Bench.Verify;

/// <summary>
/// <c>Ccr.Bench verify</c>: every kernel family on the current accelerator against its float64
/// reference. On a GPU the CUDA variant runs at realistic and awkward shapes; on a machine without
/// one both the CPU variant and the CUDA variant (on the CPU accelerator, tiny shapes) run.
/// Prints one row per case and a closing line "N passed, M failed"; returns 1 on any failure.
/// <c>--small</c> runs only the tiny shapes on the current accelerator (every kernel once, quickly:
/// what compute-sanitizer's memcheck and racecheck can afford on a GPU).
/// </summary>
public static class VerifyRunner
{
    public static int Run(string[] args)
    {
        string? filter = args.SkipWhile(a => a != "--filter").Skip(1).FirstOrDefault();
        bool smallOnly = args.Contains("--small");
        var suites = typeof(VerifyRunner).Assembly.GetTypes()
            .Where(t => typeof(IVerifySuite).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => (IVerifySuite)Activator.CreateInstance(t)!)
            .OrderBy(s => s.Family, StringComparer.Ordinal).ToList();

        var devices = new List<(Device Dev, bool Small)>();
        var main = Device.Create(verbose: true);
        devices.Add((main, smallOnly));
        if (!main.IsCuda) devices.Add((Device.CreateCpu(KernelVariant.Cuda), true));

        int passed = 0, failed = 0;
        Console.WriteLine($"{"family",-12} {"kernel",-28} {"variant",-5} {"shape",-34} {"max abs err",12} {"ms",9}  result");
        foreach (var (dev, small) in devices)
            foreach (var suite in suites)
            {
                if (filter != null && !suite.Family.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
                foreach (var c in suite.Cases(dev, small))
                {
                    string result; double worst = double.NaN, ms = double.NaN;
                    try
                    {
                        var sw = Stopwatch.StartNew();
                        var (exp, got) = c.Run(dev);
                        dev.Synchronize();
                        ms = sw.Elapsed.TotalMilliseconds;
                        (bool ok, worst, string detail) = Compare(exp, got, c.Atol, c.Rtol);
                        result = ok ? "ok" : "FAIL " + detail;
                        if (ok) passed++; else failed++;
                    }
                    catch (Exception e)
                    {
                        result = $"FAIL {e.GetType().Name}: {e.Message}";
                        failed++;
                    }
                    Console.WriteLine($"{suite.Family,-12} {c.Kernel,-28} {dev.Variant,-5} {c.Shape,-34} {worst,12:G3} {ms,9:F2}  {result}");
                }
            }
        Console.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    static (bool Ok, double Worst, string Detail) Compare(double[] exp, float[] got, double atol, double rtol)
    {
        if (exp.Length != got.Length) return (false, double.NaN, $"{exp.Length} expected values, {got.Length} computed");
        double worst = 0; int bad = 0, first = -1;
        for (int i = 0; i < exp.Length; i++)
        {
            double e = Math.Abs(exp[i] - got[i]);
            if (double.IsNaN(e)) e = double.PositiveInfinity;
            worst = Math.Max(worst, e);
            if (!(e <= atol + rtol * Math.Abs(exp[i]))) { bad++; if (first < 0) first = i; }
        }
        return bad == 0 ? (true, worst, "") :
            (false, worst, $"{bad} values out of tolerance, first [{first}] expected {exp[first]:G6} got {got[first]:G6}");
    }
}
