namespace Ccr.Train.Metrics;

/// <summary>
/// Maximum-cardinality bipartite matching between predicted edge pixels (left) and ground-truth
/// edge pixels (right), an edge joining pixels at Euclidean distance &lt;= radius. Greedy nearest-
/// first matching, then one augmenting-path search (BFS over alternating paths) per unmatched
/// prediction; by Berge's theorem the result is a maximum matching. The ground truth is fixed per
/// image, the prediction changes per threshold.
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

    /// <summary>Returns (matched pairs, predicted pixels).</summary>
    public (int Matched, int Predicted) Match(bool[] pred)
    {
        var predPixels = new List<int>();
        for (int i = 0; i < pred.Length; i++) if (pred[i]) predPixels.Add(i);
        int nl = predPixels.Count;
        if (nl == 0 || GtCount == 0) return (0, nl);
        var adj = new List<int>[nl];
        for (int u = 0; u < nl; u++)
        {
            int p = predPixels[u], y = p / _w, x = p % _w;
            var list = new List<int>();
            foreach (var (dy, dx) in _offsets)
            {
                int yy = y + dy, xx = x + dx;
                if (yy < 0 || yy >= _h || xx < 0 || xx >= _w) continue;
                int g = _gtIndex[yy * _w + xx];
                if (g >= 0) list.Add(g);
            }
            adj[u] = list;
        }
        var matchL = new int[nl];
        var matchR = new int[GtCount];
        Array.Fill(matchL, -1);
        Array.Fill(matchR, -1);
        int matched = 0;
        foreach (int u in Enumerable.Range(0, nl))
            foreach (int g in adj[u])
                if (matchR[g] < 0) { matchR[g] = u; matchL[u] = g; matched++; break; }

        // Augmenting paths from each unmatched left vertex: BFS over (left -> any right, right -> its match).
        var visitStamp = new int[GtCount];
        var parentRight = new int[GtCount]; // left vertex that reached this right vertex
        var queue = new Queue<int>();
        int stamp = 0;
        for (int u0 = 0; u0 < nl; u0++)
        {
            if (matchL[u0] >= 0 || adj[u0].Count == 0) continue;
            stamp++;
            queue.Clear();
            queue.Enqueue(u0);
            int endRight = -1;
            while (queue.Count > 0 && endRight < 0)
            {
                int u = queue.Dequeue();
                foreach (int g in adj[u])
                {
                    if (visitStamp[g] == stamp) continue;
                    visitStamp[g] = stamp;
                    parentRight[g] = u;
                    if (matchR[g] < 0) { endRight = g; break; }
                    queue.Enqueue(matchR[g]);
                }
            }
            if (endRight < 0) continue;
            // Flip the path back to u0.
            int gCur = endRight;
            while (gCur >= 0)
            {
                int u = parentRight[gCur];
                int prev = matchL[u];
                matchL[u] = gCur;
                matchR[gCur] = u;
                gCur = u == u0 ? -1 : prev;
            }
            matched++;
        }
        return (matched, nl);
    }
}
