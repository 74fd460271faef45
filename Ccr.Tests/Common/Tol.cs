using Xunit.Sdk;

namespace Ccr.Tests.Common;

/// <summary>
/// The one tolerance rule of the project: |ref - got| &lt;= atol + rtol * |ref| for every element.
/// On a mismatch the message lists the first offending indices with both values.
/// </summary>
public static class Tol
{
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        var d = new double[actual.Length];
        for (int i = 0; i < d.Length; i++) d[i] = actual[i];
        Close(expected, d, atol, rtol, what);
    }

    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double atol, double rtol, string what)
    {
        if (expected.Length != actual.Length)
            throw new XunitException($"{what}: expected {expected.Length} values, got {actual.Length}");
        var bad = new List<string>();
        int count = 0;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            bool ok = double.IsNaN(e) ? double.IsNaN(a)
                    : double.IsInfinity(e) ? e == a
                    : Math.Abs(e - a) <= atol + rtol * Math.Abs(e);
            if (ok) continue;
            count++;
            worst = Math.Max(worst, Math.Abs(e - a));
            if (bad.Count < 8) bad.Add($"[{i}] expected {e:G9} got {a:G9}");
        }
        if (count > 0)
            throw new XunitException($"{what}: {count} of {expected.Length} values outside atol {atol} + rtol {rtol} (worst abs diff {worst:G4}): " + string.Join("; ", bad));
    }

    public static void Close(double expected, double actual, double atol, double rtol, string what) =>
        Close([expected], [actual], atol, rtol, what);
}
