namespace Ccr.Training.Metrics;

/// <summary>
/// Maximum-cardinality bipartite matching between predicted edge pixels (left) and ground-truth
/// edge pixels (right), an edge joining pixels at Euclidean distance &lt;= radius, for every
/// threshold of one image in a single incremental pass.
/// Thresholds are visited from high to low, so the predicted set only grows. A maximum matching of
/// the smaller set stays maximum for the old vertices in the larger graph (an augmenting path from
/// an old unmatched vertex would alternate through matched, hence old, vertices only, and so would
/// have existed before); so it is enough to search one augmenting path (BFS over alternating paths)
/// from each newly added vertex, nearest ground truth first (Kuhn's algorithm; by Berge's theorem
/// the result is maximum at every threshold). Cost: one matching per image, not one per threshold.
/// </summary>
internal sealed class EdgeMatcher
{
    private readonly int _h, _w;
    private readonly int[] _gtIndex;               // pixel -> gt vertex, -1 if none
    private readonly (int Dy, int Dx)[] _offsets;  // within the radius, nearest first

    public int GtCount { get; }

    public EdgeMatcher(bool[] gt, int h, int w, double radius)
    {
        _h = h;
        _w = w;
        _gtIndex = new int[h * w];
        int g = 0;
        for (int i = 0; i < gt.Length; i++) _gtIndex[i] = gt[i] ? g++ : -1;
        GtCount = g;
        int r = (int)Math.Floor(radius);
        var offs = new List<(int, int, int)>();
        for (int dy = -r; dy <= r; dy++)
            for (int dx = -r; dx <= r; dx++)
                if (dy * dy + dx * dx <= radius * radius) offs.Add((dy * dy + dx * dx, dy, dx));
        _offsets = offs.OrderBy(o => o.Item1).ThenBy(o => o.Item2).ThenBy(o => o.Item3).Select(o => (o.Item2, o.Item3)).ToArray();
    }

    /// <summary>
    /// e: the (H, W) edge strengths (after NMS); usable: pixels that may be predictions (not
    /// ignored). For each threshold t (any order) returns (matched pairs, predicted pixels) with
    /// predictions = usable pixels with e &gt;= t.
    /// </summary>
    public (int Matched, int Predicted)[] MatchAll(float[] e, bool[] usable, float[] thresholds)
    {
        var candidates = new List<int>();
        for (int i = 0; i < e.Length; i++) if (usable[i] && e[i] > 0 && !float.IsNaN(e[i])) candidates.Add(i);
        // Strongest first: the prefix of this order above a threshold is that threshold's prediction.
        candidates.Sort((a, b) => e[b].CompareTo(e[a]) != 0 ? e[b].CompareTo(e[a]) : a.CompareTo(b));
        int nl = candidates.Count;
        var adj = new int[nl][];
        var matchL = new int[nl];
        var matchR = new int[GtCount];
        Array.Fill(matchL, -1);
        Array.Fill(matchR, -1);
        var visitStamp = new int[GtCount];
        // Ground truth that a failed search reached can never lie on an augmenting path later:
        // its alternating closure is all matched and only left vertices are ever added, and no
        // augmentation passes through it, so its matches never change. Skipping it keeps the
        // whole pass near-linear (the Hopcroft-Karp "dead vertex" argument).
        var dead = new bool[GtCount];
        var visited = new List<int>();
        var parentRight = new int[GtCount];
        var queue = new Queue<int>();
        int stamp = 0, matched = 0, added = 0;

        var order = Enumerable.Range(0, thresholds.Length).OrderByDescending(t => thresholds[t]).ToArray();
        var result = new (int, int)[thresholds.Length];
        foreach (int t in order)
        {
            float thr = thresholds[t];
            while (added < nl && e[candidates[added]] >= thr)
            {
                int u0 = added++;
                adj[u0] = Neighbours(candidates[u0]);
                if (matched == GtCount || adj[u0].Length == 0) continue;
                if (Augment(u0)) matched++;
            }
            result[t] = (matched, added);
        }
        return result;

        bool Augment(int u0)
        {
            stamp++;
            visited.Clear();
            queue.Clear();
            queue.Enqueue(u0);
            int endRight = -1;
            while (queue.Count > 0 && endRight < 0)
            {
                int u = queue.Dequeue();
                foreach (int g in adj[u])
                {
                    if (visitStamp[g] == stamp || dead[g]) continue;
                    visitStamp[g] = stamp;
                    visited.Add(g);
                    parentRight[g] = u;
                    if (matchR[g] < 0) { endRight = g; break; }
                    queue.Enqueue(matchR[g]);
                }
            }
            if (endRight < 0)
            {
                foreach (int g in visited) dead[g] = true;
                return false;
            }
            // Flip the alternating path back to u0.
            int gCur = endRight;
            while (gCur >= 0)
            {
                int u = parentRight[gCur];
                int prev = matchL[u];
                matchL[u] = gCur;
                matchR[gCur] = u;
                gCur = u == u0 ? -1 : prev;
            }
            return true;
        }
    }

    /// <summary>Ground-truth vertices within the radius of a pixel, nearest first.</summary>
    private int[] Neighbours(int p)
    {
        int y = p / _w, x = p % _w;
        var list = new List<int>();
        foreach (var (dy, dx) in _offsets)
        {
            int yy = y + dy, xx = x + dx;
            if (yy < 0 || yy >= _h || xx < 0 || xx >= _w) continue;
            int g = _gtIndex[yy * _w + xx];
            if (g >= 0) list.Add(g);
        }
        return list.ToArray();
    }
}
