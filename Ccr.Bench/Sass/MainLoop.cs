namespace Ccr.Bench.Sass;

/// <summary>Instruction counts by class, with the GEMM flops they do (FFMA and HMMA only).</summary>
public sealed class Mix
{
    public int[] ByClass { get; } = new int[Enum.GetValues<InstrClass>().Length];
    public double Flops { get; set; }
    public int Total => ByClass.Sum();
    public int this[InstrClass c] => ByClass[(int)c];

    public void Add(SassInstr i) { ByClass[(int)i.Class]++; Flops += SassListing.Flops(i); }

    public void Add(Mix other, int times)
    {
        for (int c = 0; c < ByClass.Length; c++) ByClass[c] += times * other.ByClass[c];
        Flops += times * other.Flops;
    }
}

/// <summary>
/// A loop of a SASS listing: instructions [Start, End], End being the last backward branch to Start. Own: the
/// instructions in it that no inner loop holds; Inner: the loops directly inside it.
/// </summary>
public sealed class Loop(int start, int end)
{
    public int Start { get; } = start;
    public int End { get; } = end;
    public Mix Own { get; } = new();
    public List<Loop> Inner { get; } = [];
    /// <summary>HMMA + FFMA anywhere in its body, inner loops counted once (the listing as written).</summary>
    public int StaticMath { get; set; }

    /// <summary>What one iteration issues when every inner loop runs <paramref name="innerTrips"/> times.</summary>
    public Mix PerIteration(int innerTrips)
    {
        var m = new Mix();
        m.Add(Own, 1);
        foreach (var l in Inner) m.Add(l.PerIteration(innerTrips), innerTrips);
        return m;
    }

    /// <summary>"2690+16x119": own instructions, then each inner loop's per-iteration count times its trips.</summary>
    public string Describe(int innerTrips) =>
        Inner.Count == 0 ? Own.Total.ToString() : $"{Own.Total}" + string.Concat(Inner.Select(l => $"+{innerTrips}x({l.Describe(innerTrips)})"));
}

/// <summary>
/// The main loop of a kernel and what it allows. How it is counted:
/// 1. Loops: every backward branch (a BRA whose target label lies at or before it) closes a loop from the target
///    to the branch; branches back to the same label make one loop (to the last of them). A loop inside
///    another's range is nested in it.
/// 2. The main loop is the loop whose range holds the most HMMA + FFMA as written (an inner loop's body
///    counted once); ties go to the outermost, which for a GEMM is the loop over k-tiles (one BK-deep shared
///    stage per iteration). No loop with HMMA or FFMA: no main loop.
/// 3. Per k-tile, one warp issues the loop's own instructions (each line of the listing once, predicated
///    or not) plus, for each inner loop, its per-iteration count times the inner trip count (given: it cannot be
///    read off the listing; the table shows it, e.g. 2690+16x(119)). Calls are one control instruction (a
///    callee's body is not followed).
/// 4. mma_share = (HMMA + FFMA) / issued. Ceiling: with enough warps, an SM issues 4 warp instructions a clock
///    and its tensor cores do <see cref="H100.TensorFlopsPerClock"/> dense TF32 flops a clock; when every warp
///    runs this loop, each warp-iteration costs the SM max(issued / 4, HMMA flops / that) clocks, so the
///    ceiling is SMs x clock x (64 FFMA + 2048 HMMA.1688) / that. Always the H100's, whatever --arch. Memory, latency and bank conflicts are not modelled: a ceiling,
///    not a prediction.
/// </summary>
public static class MainLoop
{
    public static List<Loop> Loops(SassListing l)
    {
        var ends = new SortedDictionary<int, int>();
        foreach (var i in l.Instrs)
            if (i.Opcode == "BRA" && i.Target != null && l.Labels.TryGetValue(i.Target, out int t) && t <= i.Index)
                ends[t] = Math.Max(ends.GetValueOrDefault(t, -1), i.Index);
        var loops = ends.Select(e => new Loop(e.Key, e.Value)).ToList();
        foreach (var x in loops)
        {
            // the tightest loop strictly around x is its parent
            Loop? parent = null;
            foreach (var y in loops)
                if (y != x && y.Start <= x.Start && x.End <= y.End && (y.Start, y.End) != (x.Start, x.End)
                    && (parent == null || y.End - y.Start < parent.End - parent.Start))
                    parent = y;
            parent?.Inner.Add(x);
        }
        foreach (var x in loops)
        {
            for (int i = x.Start; i <= x.End; i++)
            {
                var ins = l.Instrs[i];
                if (ins.Class is InstrClass.Hmma or InstrClass.Ffma) x.StaticMath++;
                if (!x.Inner.Any(c => c.Start <= i && i <= c.End)) x.Own.Add(ins);
            }
        }
        return loops;
    }

    /// <summary>The main loop (see the class comment), or null when no loop does HMMA or FFMA.</summary>
    public static Loop? Find(SassListing l) =>
        Loops(l).Where(x => x.StaticMath > 0)
            .OrderByDescending(x => x.StaticMath).ThenByDescending(x => x.End - x.Start).ThenBy(x => x.Start)
            .FirstOrDefault();

    /// <summary>(HMMA + FFMA) / issued of one iteration's mix.</summary>
    public static double MmaShare(Mix m) => m.Total == 0 ? 0 : (double)(m[InstrClass.Hmma] + m[InstrClass.Ffma]) / m.Total;

    /// <summary>The issue-bound ceiling in TFLOP/s of a kernel whose time is all in iterations of mix
    /// <paramref name="m"/> (see the class comment).</summary>
    public static double CeilingTflops(Mix m)
    {
        if (m.Total == 0) return 0;
        double tensorFlops = m.Flops - 64.0 * m[InstrClass.Ffma];
        double clocks = Math.Max(m.Total / (double)H100.IssuePerClock, tensorFlops / H100.TensorFlopsPerClock);
        return H100.Sms * H100.ClockGHz * 1e9 * m.Flops / clocks / 1e12;
    }
}
