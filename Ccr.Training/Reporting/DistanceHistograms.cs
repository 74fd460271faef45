using System.Globalization;
using System.Text;

namespace Ccr.Training.Reporting;

/// <summary>
/// The paper's Figures 1 and 5: histograms of the positive and negative pair distances in the
/// projection space, one panel per series (baseline, CCR, ...), positives and negatives overlaid.
/// Projections are unit vectors, so distances lie in [0, 2]; 40 bins over that range by default.
/// Beside the PNG a CSV of the bin counts (same name, .csv): bin_lo, bin_hi, then
/// &lt;label&gt;_pos and &lt;label&gt;_neg per series.
/// </summary>
public static class DistanceHistograms
{
    public const int Bins = 40;
    public const double Max = 2.0;
    public const int PanelWidth = 600, Height = 450;

    /// <summary>
    /// Bin counts of <paramref name="x"/> over [0, <paramref name="max"/>] in <paramref name="bins"/>
    /// equal bins. Values outside the range go to the end bins (a distance of 2 + 1e-7 from float
    /// rounding is still the last bin), so the counts add up to the number of finite samples;
    /// NaN and infinities are not counted.
    /// </summary>
    public static long[] Counts(ReadOnlySpan<float> x, int bins = Bins, double max = Max)
    {
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "DistanceHistograms.Counts: bins must be >= 1");
        if (!(max > 0)) throw new ArgumentOutOfRangeException(nameof(max), max, "DistanceHistograms.Counts: max must be > 0");
        var c = new long[bins];
        double scale = bins / max;
        foreach (var v in x)
        {
            if (!float.IsFinite(v)) continue;
            c[Math.Clamp((int)Math.Floor(v * scale), 0, bins - 1)]++;
        }
        return c;
    }

    /// <summary>
    /// Writes the PNG (one panel per series, side by side) and the bin-count CSV beside it;
    /// returns the CSV path. Each panel shows frequencies (count / samples) so series with
    /// different sample counts compare.
    /// </summary>
    public static string Write(string pngPath, string title, (string Label, float[] Pos, float[] Neg)[] series,
        int bins = Bins, double max = Max)
    {
        if (series.Length == 0) throw new ArgumentException("DistanceHistograms.Write: no series", nameof(series));
        var counts = series.Select(s => (Pos: Counts(s.Pos, bins, max), Neg: Counts(s.Neg, bins, max))).ToArray();
        string csvPath = Path.ChangeExtension(pngPath, ".csv");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(pngPath))!);
        WriteCsv(csvPath, series.Select(s => s.Label).ToArray(), counts, bins, max);

        double width = max / bins;
        double[] centres = Enumerable.Range(0, bins).Select(i => (i + 0.5) * width).ToArray();
        var multi = new ScottPlot.Multiplot();
        // (Multiplot's helpers are extension methods in the ScottPlot namespace, whose type names
        // clash with ours; called by their class here.)
        while (ScottPlot.IMultiplotExtensions.Count(multi) < series.Length) ScottPlot.IMultiplotExtensions.AddPlot(multi);
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        double yMax = 0;
        for (int p = 0; p < series.Length; p++)
        {
            var plt = ScottPlot.IMultiplotExtensions.GetPlot(multi, p);
            AddBars(plt, centres, Frequencies(counts[p].Pos), width, ScottPlot.Colors.C0, "positive");
            AddBars(plt, centres, Frequencies(counts[p].Neg), width, ScottPlot.Colors.C1, "negative");
            yMax = Math.Max(yMax, Math.Max(Frequencies(counts[p].Pos).DefaultIfEmpty().Max(), Frequencies(counts[p].Neg).DefaultIfEmpty().Max()));
            plt.Title($"{title}: {series[p].Label}");
            plt.XLabel("pair distance");
            plt.YLabel("fraction of pairs");
            plt.ShowLegend(ScottPlot.Alignment.UpperLeft);
        }
        // One y range for all panels: the panels are compared by eye.
        for (int p = 0; p < series.Length; p++) ScottPlot.IMultiplotExtensions.GetPlot(multi, p).Axes.SetLimits(0, max, 0, yMax > 0 ? yMax * 1.08 : 1);
        ScottPlot.IMultiplotExtensions.SavePng(multi, pngPath, PanelWidth * series.Length, Height);
        return csvPath;
    }

    static double[] Frequencies(long[] c)
    {
        long n = c.Sum();
        return c.Select(v => n > 0 ? (double)v / n : 0).ToArray();
    }

    static void AddBars(ScottPlot.Plot plt, double[] centres, double[] values, double width, ScottPlot.Color color, string label)
    {
        var bars = plt.Add.Bars(centres, values);
        foreach (var b in bars.Bars)
        {
            b.Size = width;
            b.FillColor = color.WithAlpha(0.55);
            b.LineWidth = 0;
        }
        bars.LegendText = label;
        bars.Color = color.WithAlpha(0.55);
    }

    static void WriteCsv(string path, string[] labels, (long[] Pos, long[] Neg)[] counts, int bins, double max)
    {
        var sb = new StringBuilder("bin_lo,bin_hi");
        foreach (var l in labels) sb.Append(',').Append(Clean(l)).Append("_pos,").Append(Clean(l)).Append("_neg");
        sb.AppendLine();
        for (int i = 0; i < bins; i++)
        {
            sb.Append((i * max / bins).ToString("G6", CultureInfo.InvariantCulture)).Append(',')
              .Append(((i + 1) * max / bins).ToString("G6", CultureInfo.InvariantCulture));
            foreach (var (pos, neg) in counts) sb.Append(',').Append(pos[i]).Append(',').Append(neg[i]);
            sb.AppendLine();
        }
        File.WriteAllText(path, sb.ToString());
    }

    // A label becomes part of a CSV header: no commas, quotes or line breaks.
    static string Clean(string label) =>
        new(label.Select(ch => ch is ',' or '"' or '\n' or '\r' || char.IsWhiteSpace(ch) ? '_' : ch).ToArray());
}
