using Ccr.Kernels.Ops;
using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Contrastive;

/// <summary>
/// The CCR triplet loss [D(a,p) - D(a,n) + m]_+ over the mined triplets, D the Euclidean distance
/// of projected features, and its backward. Rows are anchors (N*A); a row has one positive posIdx
/// (-1: none) and numNeg negatives negIdx (-1: none); a triplet exists where both are >= 0. The loss
/// is the mean over existing triplets (0 when there are none), so a missing negative or positive
/// masks its triplets out instead of biasing the mean.
/// <see cref="Forward"/> writes per-triplet losses and distances; <see cref="Reduce"/> writes the
/// scalar loss and the statistics <see cref="Stat"/> (all on the device, no host round trip);
/// <see cref="Backward"/> writes (=) dproj, the gradients of the anchor, positive and negative
/// pixels, deterministically on every variant: CUDA, a gather in which each pixel sums its
/// contributions in a fixed order (no atomics; see LinkKernel); CPU, one image per task, serial
/// within it. The gradient of a distance that is exactly 0 is 0 (as ATen's cdist), and a hinge at exactly 0 passes no gradient.
/// </summary>
internal static partial class CcrTriplet
{
    /// <summary>Indices into the stats buffer written by <see cref="Reduce"/>.</summary>
    public enum Stat
    {
        MeanLoss = 0, Triplets = 1, LossSum = 2, PosDistSum = 3, AnchorsWithTriplet = 4, NegDistSum = 5,
        AnchorsSampled = 6, ActiveTriplets = 7,
    }
    public const int StatCount = 8;

    // ---------------------------------------------------------------- kernels

    static float Dist(ArrayView<float> proj, int b, int hw, int dim, int x, int y)
    {
        float s = 0f;
        for (int c = 0; c < dim; c++) { float v = proj[b + c * hw + x] - proj[b + c * hw + y]; s += v * v; }
        return XMath.Sqrt(s);
    }

    static void ForwardKernel(ArrayView<float> loss, ArrayView<float> dap, ArrayView<float> dan, ArrayView<float> proj,
                              ArrayView<int> anchors, ArrayView<int> posIdx, ArrayView<int> negIdx,
                              int dim, int hw, int numAnchors, int numNeg, float margin)
    {
        for (int e = ILGPU.Grid.GlobalIndex.X; e < loss.IntLength; e += Launch.Stride)
        {
            int r = e / numNeg, j = e % numNeg, b = r / numAnchors * dim * hw;
            int a = anchors[r], p = posIdx[r], q = negIdx[e];
            if (a < 0 || p < 0) { loss[e] = 0f; dan[e] = 0f; if (j == 0) dap[r] = 0f; continue; }
            float dp = Dist(proj, b, hw, dim, a, p);
            if (j == 0) dap[r] = dp;
            if (q < 0) { loss[e] = 0f; dan[e] = 0f; continue; }
            float dn = Dist(proj, b, hw, dim, a, q);
            dan[e] = dn;
            loss[e] = XMath.Max(dp - dn + margin, 0f);
        }
    }

    // One group: per-thread partial sums, then two BlockReduce.Sum4 calls (fixed order: deterministic).
    static void ReduceKernel(ArrayView<float> lossOut, ArrayView<float> stats, ArrayView<float> loss, ArrayView<float> dap,
                             ArrayView<float> dan, ArrayView<int> anchors, ArrayView<int> posIdx, ArrayView<int> negIdx,
                             int rows, int numNeg)
    {
        int t = Group.IdxX, g = Group.DimX;
        float s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (int r = t; r < rows; r += g)
        {
            if (anchors[r] >= 0) s6 += 1f;
            if (posIdx[r] < 0) continue;
            int cnt = 0;
            for (int j = 0; j < numNeg; j++)
            {
                int e = r * numNeg + j;
                if (negIdx[e] < 0) continue;
                cnt++; s2 += loss[e]; s5 += dan[e];
                if (loss[e] > 0f) s7 += 1f;
            }
            s1 += cnt;
            if (cnt > 0) { s3 += dap[r]; s4 += 1f; }
        }
        var a = BlockReduce.Sum4(new Float4(s1, s2, s3, s4));
        var b = BlockReduce.Sum4(new Float4(s5, s6, s7, 0f));
        if (t == 0)
        {
            stats[1] = a.X; stats[2] = a.Y; stats[3] = a.Z; stats[4] = a.W;
            stats[5] = b.X; stats[6] = b.Y; stats[7] = b.Z;
            float m = a.X > 0f ? a.Y / a.X : 0f;
            stats[0] = m;
            lossOut[0] = m;
        }
    }

    // ---------------------------------------------------------------- backward, CUDA variant (gather, no atomics)
    //
    // The gradient of one image is a sum of per-entry contributions, one entry per (row, slot):
    // slot 0 is the anchor (its terms of all active triplets of the row), slot 1 the positive, slot
    // 2 + j negative j. An entry is live when the row has an active triplet (slots 0, 1) or its
    // triplet is active (slot 2 + j); its target is that pixel. Entries are numbered row-major
    // within an image, e = (row - image * A) * (C + 2) + slot, E = A * (C + 2) per image.
    // Float atomics would add an image's contributions to a pixel in whatever order the hardware
    // runs them, so a resumed run would not repeat itself bit for bit. Instead, LinkKernel chains the
    // live entries of each pixel in increasing entry order (next[e]: the next entry with the same
    // target, head[e]: e is the first), and GatherKernel lets each chain's head walk its chain and
    // write the pixel's gradient (=), so every pixel's sum runs in entry order on any hardware.

    static int Target(ArrayView<int> anchors, ArrayView<int> posIdx, ArrayView<int> negIdx, ArrayView<float> loss,
                      int image, int e, int numAnchors, int numNeg)
    {
        int per = numNeg + 2, r = image * numAnchors + e / per, slot = e % per;
        if (anchors[r] < 0 || posIdx[r] < 0) return -1;
        if (slot >= 2) return loss[r * numNeg + slot - 2] > 0f ? negIdx[r * numNeg + slot - 2] : -1;
        for (int j = 0; j < numNeg; j++)
            if (loss[r * numNeg + j] > 0f) return slot == 0 ? anchors[r] : posIdx[r];
        return -1;
    }

    const int MaxLinkGroup = 1024;

    // links (3, N, E): target, next, head. Groups over (image, chunk of entries); each thread links
    // one entry by comparing its target with every entry of its image, staged tile by tile in
    // shared memory: E comparisons per thread, E^2 per image (3,456 entries at the paper's gamma
    // 0.01: 12 M; the ablation's gamma 0.02: 48 M). Quadratic in the anchors: at gamma 0.1 and
    // above a counting sort of the entries by pixel would be the better link.
    static void LinkKernel(ArrayView<int> links, ArrayView<int> anchors, ArrayView<int> posIdx, ArrayView<int> negIdx,
                           ArrayView<float> loss, Sizes z)
    {
        var tile = SharedMemory.Allocate<int>(MaxLinkGroup);
        int t = Group.IdxX, g = Group.DimX, numNeg = z.NumNeg, e1 = z.NumAnchors * (numNeg + 2), n = z.Total;
        int chunks = (e1 + g - 1) / g;
        for (int task = ILGPU.Grid.IdxX; task < n * chunks; task += ILGPU.Grid.DimX)
        {
            int image = task / chunks, e = task % chunks * g + t;
            int x = e < e1 ? Target(anchors, posIdx, negIdx, loss, image, e, z.NumAnchors, numNeg) : -1;
            int next = -1;
            bool head = x >= 0;
            for (int b0 = 0; b0 < e1; b0 += g)
            {
                Group.Barrier();
                int j = b0 + t;
                tile[t] = j < e1 ? Target(anchors, posIdx, negIdx, loss, image, j, z.NumAnchors, numNeg) : -1;
                Group.Barrier();
                if (x < 0) continue;
                int m = XMath.Min(g, e1 - b0);
                for (int q = 0; q < m; q++)
                {
                    if (tile[q] != x) continue;
                    int e2 = b0 + q;
                    if (e2 < e) head = false;
                    else if (e2 > e && next < 0) next = e2;
                }
            }
            if (e < e1)
            {
                int o = image * e1 + e, plane = n * e1;
                links[o] = x;
                links[plane + o] = next;
                links[2 * plane + o] = head ? 1 : 0;
            }
        }
    }

    // The contribution of entry e (image, slot) to channel c of its target pixel; s = dloss / triplets.
    static float Contribution(ArrayView<float> proj, ArrayView<int> anchors, ArrayView<int> posIdx, ArrayView<int> negIdx,
                              ArrayView<float> loss, ArrayView<float> dap, ArrayView<float> dan, int image, int e, int c, float s, Sizes z)
    {
        int numNeg = z.NumNeg, per = numNeg + 2, r = image * z.NumAnchors + e / per, slot = e % per;
        int b = image * z.Dim * z.Hw + c * z.Hw;
        float va = proj[b + anchors[r]];
        if (slot >= 2)
        {
            int tj = r * numNeg + slot - 2;
            return dan[tj] > 0f ? s * (va - proj[b + negIdx[tj]]) / dan[tj] : 0f;
        }
        float gp = dap[r] > 0f ? s * (va - proj[b + posIdx[r]]) / dap[r] : 0f;
        float acc = 0f;
        for (int j = 0; j < numNeg; j++)
        {
            int tj = r * numNeg + j;
            if (!(loss[tj] > 0f)) continue;
            if (slot == 1) { acc -= gp; continue; }
            float gn = dan[tj] > 0f ? s * (va - proj[b + negIdx[tj]]) / dan[tj] : 0f;
            acc += gp - gn;
        }
        return acc;
    }

    // dproj must be zeroed; each chain head writes its pixel (=). Threads over (N, E, D), D fastest,
    // so a warp walks one chain.
    static void GatherKernel(ArrayView<float> dproj, ArrayView<float> dloss, ArrayView<float> stats, ArrayView<float> proj,
                             ArrayView<int> anchors, ArrayView<int> posIdx, ArrayView<int> negIdx, ArrayView<float> loss,
                             ArrayView<float> dap, ArrayView<float> dan, ArrayView<int> links, Sizes z)
    {
        int dim = z.Dim, e1 = z.NumAnchors * (z.NumNeg + 2), plane = z.Total * e1, total = plane * dim;
        float s = dloss[0] / XMath.Max(stats[1], 1f);
        for (int idx = ILGPU.Grid.GlobalIndex.X; idx < total; idx += Launch.Stride)
        {
            int c = idx % dim, o = idx / dim;
            if (links[2 * plane + o] == 0) continue;
            int image = o / e1, x = links[o];
            float sum = 0f;
            for (int e = o - image * e1; e >= 0; e = links[plane + image * e1 + e])
                sum += Contribution(proj, anchors, posIdx, negIdx, loss, dap, dan, image, e, c, s, z);
            dproj[image * dim * z.Hw + c * z.Hw + x] = sum;
        }
    }

    /// <summary>Sizes of the backward launches (one struct keeps the kernel signatures short); Total
    /// is the number of images N.</summary>
    public struct Sizes { public int Dim, Hw, NumAnchors, NumNeg, Total; }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int, int, float> Forward;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int> Reduce;
        public readonly Action<KernelConfig, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, Sizes> Link;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, Sizes> Gather;

        public Kernels(Device d)
        {
            Forward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int, int, float>(ForwardKernel);
            Reduce = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int>(ReduceKernel);
            Link = d.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, Sizes>(LinkKernel);
            Gather = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, Sizes>(GatherKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long proj, long anchors, long posIdx, long negIdx, int n, int dim, int hw, int numAnchors, int numNeg)
    {
        CcrDistances.CheckSizes(op, n, hw, numAnchors);
        if (dim <= 0 || numNeg <= 0) throw new ArgumentException($"{op}: D={dim}, numNeg={numNeg}");
        Launch.SameLength(op, proj, (long)n * dim * hw, "proj and (N, D, HW)");
        Launch.SameLength(op, anchors, (long)n * numAnchors, "anchors and (N, A)");
        Launch.SameLength(op, posIdx, (long)n * numAnchors, "posIdx and (N, A)");
        Launch.SameLength(op, negIdx, (long)n * numAnchors * numNeg, "negIdx and (N, A, numNeg)");
    }

    /// <summary>loss, dan (N*A, numNeg) and dap (N*A) of every triplet; indices must lie in [0, HW)
    /// or be -1 (the mining kernels guarantee it; host callers are checked by the Nn layer).</summary>
    public static void Forward(Device d, Buf<float> loss, Buf<float> dap, Buf<float> dan, Buf<float> proj, Buf<int> anchors,
                               Buf<int> posIdx, Buf<int> negIdx, int n, int dim, int hw, int numAnchors, int numNeg, float margin)
    {
        Check("CcrTriplet.Forward", proj.Length, anchors.Length, posIdx.Length, negIdx.Length, n, dim, hw, numAnchors, numNeg);
        Launch.SameLength("CcrTriplet.Forward", loss.Length, negIdx.Length, "loss and negIdx");
        Launch.SameLength("CcrTriplet.Forward", dan.Length, negIdx.Length, "dan and negIdx");
        Launch.SameLength("CcrTriplet.Forward", dap.Length, posIdx.Length, "dap and posIdx");
        if (loss.Length == 0) return;
        if (CcrDistances.Host(d)) { ForwardHost(loss, dap, dan, proj, anchors, posIdx, negIdx, dim, hw, numAnchors, numNeg, margin); return; }
        K(d).Forward(d.Grid(loss.Length), loss.View, dap.View, dan.View, proj.View, anchors.View, posIdx.View, negIdx.View,
                     dim, hw, numAnchors, numNeg, margin);
    }

    /// <summary>lossOut (1) = mean loss over existing triplets; stats (<see cref="StatCount"/>).</summary>
    public static void Reduce(Device d, Buf<float> lossOut, Buf<float> stats, Buf<float> loss, Buf<float> dap, Buf<float> dan,
                              Buf<int> anchors, Buf<int> posIdx, Buf<int> negIdx, int rows, int numNeg)
    {
        Launch.SameLength("CcrTriplet.Reduce", lossOut.Length, 1, "loss output and a scalar");
        Launch.SameLength("CcrTriplet.Reduce", stats.Length, StatCount, "stats and StatCount");
        Launch.SameLength("CcrTriplet.Reduce", loss.Length, (long)rows * numNeg, "loss and (rows, numNeg)");
        Launch.SameLength("CcrTriplet.Reduce", anchors.Length, rows, "anchors and rows");
        if (CcrDistances.Host(d)) { ReduceHost(lossOut, stats, loss, dap, dan, anchors, posIdx, negIdx, rows, numNeg); return; }
        BlockReduce.CheckGroup(d, d.GroupSize, "CcrTriplet.Reduce");
        K(d).Reduce(new KernelConfig(1, d.GroupSize), lossOut.View, stats.View, loss.View, dap.View, dan.View, anchors.View,
                    posIdx.View, negIdx.View, rows, numNeg);
    }

    /// <summary>dproj (N, D, HW) = d(mean loss)/d(proj) * dloss[0], written (=).</summary>
    public static void Backward(Device d, Buf<float> dproj, Buf<float> dloss, Buf<float> stats, Buf<float> proj, Buf<int> anchors,
                                Buf<int> posIdx, Buf<int> negIdx, Buf<float> loss, Buf<float> dap, Buf<float> dan,
                                int n, int dim, int hw, int numAnchors, int numNeg)
    {
        Check("CcrTriplet.Backward", proj.Length, anchors.Length, posIdx.Length, negIdx.Length, n, dim, hw, numAnchors, numNeg);
        Launch.SameLength("CcrTriplet.Backward", dproj.Length, proj.Length, "dproj and proj");
        Launch.SameLength("CcrTriplet.Backward", dloss.Length, 1, "dloss and a scalar");
        Launch.SameLength("CcrTriplet.Backward", stats.Length, StatCount, "stats and StatCount");
        Elementwise.Fill(d, dproj, 0f);
        if (loss.Length == 0) return;
        if (CcrDistances.Host(d)) { BackwardHost(dproj, dloss, stats, proj, anchors, posIdx, negIdx, loss, dap, dan, n, dim, hw, numAnchors, numNeg); return; }
        if (d.GroupSize > MaxLinkGroup) throw new InvalidOperationException($"CcrTriplet.Backward: group size {d.GroupSize} > {MaxLinkGroup}");
        long entries = (long)n * numAnchors * (numNeg + 2);
        if (entries * Math.Max(dim, 3) > int.MaxValue) throw new ArgumentException($"CcrTriplet.Backward: {entries} entries x D={dim} too many");
        var z = new Sizes { Dim = dim, Hw = hw, NumAnchors = numAnchors, NumNeg = numNeg, Total = n };
        using var block = d.Pool.Rent(3 * entries * sizeof(int)); // stream-ordered: reused only by later launches
        var links = new Buf<int>(block, 0, 3 * entries);
        int chunks = (int)((numAnchors * (long)(numNeg + 2) + d.GroupSize - 1) / d.GroupSize);
        K(d).Link(new KernelConfig(Math.Clamp(n * chunks, 1, 65535), d.GroupSize), links.View, anchors.View, posIdx.View,
                  negIdx.View, loss.View, z);
        K(d).Gather(d.Grid(entries * dim), dproj.View, dloss.View, stats.View, proj.View, anchors.View, posIdx.View, negIdx.View,
                    loss.View, dap.View, dan.View, links.View, z);
    }

    // ---------------------------------------------------------------- CPU variant (host code)

    static unsafe float HostDist(float* b, int hw, int dim, int x, int y)
    {
        float s = 0f;
        for (int c = 0; c < dim; c++) { float v = b[(long)c * hw + x] - b[(long)c * hw + y]; s += v * v; }
        return MathF.Sqrt(s);
    }

    static unsafe void ForwardHost(Buf<float> loss, Buf<float> dap, Buf<float> dan, Buf<float> proj, Buf<int> anchors,
                                   Buf<int> posIdx, Buf<int> negIdx, int dim, int hw, int numAnchors, int numNeg, float margin)
    {
        float* l = loss.Ptr, dp = dap.Ptr, dn = dan.Ptr, pr = proj.Ptr;
        int* an = anchors.Ptr, po = posIdx.Ptr, ne = negIdx.Ptr;
        Parallel.For(0, (int)anchors.Length, r =>
        {
            float* b = pr + (long)(r / numAnchors) * dim * hw;
            int a = an[r], p = po[r];
            bool ok = a >= 0 && p >= 0;
            float d0 = ok ? HostDist(b, hw, dim, a, p) : 0f;
            dp[r] = d0;
            for (int j = 0; j < numNeg; j++)
            {
                int e = r * numNeg + j, q = ne[e];
                if (!ok || q < 0) { l[e] = 0f; dn[e] = 0f; continue; }
                float d1 = HostDist(b, hw, dim, a, q);
                dn[e] = d1;
                l[e] = MathF.Max(d0 - d1 + margin, 0f);
            }
        });
    }

    static unsafe void ReduceHost(Buf<float> lossOut, Buf<float> stats, Buf<float> loss, Buf<float> dap, Buf<float> dan,
                                  Buf<int> anchors, Buf<int> posIdx, Buf<int> negIdx, int rows, int numNeg)
    {
        float* l = loss.Ptr, dp = dap.Ptr, dn = dan.Ptr, st = stats.Ptr;
        int* an = anchors.Ptr, po = posIdx.Ptr, ne = negIdx.Ptr;
        var s = new double[StatCount];
        for (int r = 0; r < rows; r++)
        {
            if (an[r] >= 0) s[(int)Stat.AnchorsSampled]++;
            if (po[r] < 0) continue;
            int cnt = 0;
            for (int j = 0; j < numNeg; j++)
            {
                int e = r * numNeg + j;
                if (ne[e] < 0) continue;
                cnt++; s[(int)Stat.LossSum] += l[e]; s[(int)Stat.NegDistSum] += dn[e];
                if (l[e] > 0f) s[(int)Stat.ActiveTriplets]++;
            }
            s[(int)Stat.Triplets] += cnt;
            if (cnt > 0) { s[(int)Stat.PosDistSum] += dp[r]; s[(int)Stat.AnchorsWithTriplet]++; }
        }
        s[(int)Stat.MeanLoss] = s[(int)Stat.Triplets] > 0 ? s[(int)Stat.LossSum] / s[(int)Stat.Triplets] : 0;
        for (int k = 0; k < StatCount; k++) st[k] = (float)s[k];
        lossOut.Ptr[0] = (float)s[0];
    }

    static unsafe void BackwardHost(Buf<float> dproj, Buf<float> dloss, Buf<float> stats, Buf<float> proj, Buf<int> anchors,
                                    Buf<int> posIdx, Buf<int> negIdx, Buf<float> loss, Buf<float> dap, Buf<float> dan,
                                    int n, int dim, int hw, int numAnchors, int numNeg)
    {
        float* g = dproj.Ptr, pr = proj.Ptr, l = loss.Ptr, dp = dap.Ptr, dn = dan.Ptr;
        int* an = anchors.Ptr, po = posIdx.Ptr, ne = negIdx.Ptr;
        float s = dloss.Ptr[0] / MathF.Max(stats.Ptr[1], 1f);
        // rows of one image scatter only into that image: one image per task needs no atomics
        Parallel.For(0, n, img =>
        {
            long off = (long)img * dim * hw;
            float* b = pr + off, gb = g + off;
            for (int r = img * numAnchors; r < (img + 1) * numAnchors; r++)
                for (int j = 0; j < numNeg; j++)
                {
                    int e = r * numNeg + j;
                    if (!(l[e] > 0f)) continue;
                    int a = an[r], p = po[r], q = ne[e];
                    float ip = dp[r] > 0f ? s / dp[r] : 0f, iq = dn[e] > 0f ? s / dn[e] : 0f;
                    for (int c = 0; c < dim; c++)
                    {
                        long cb = (long)c * hw;
                        float va = b[cb + a], gp = ip * (va - b[cb + p]), gn = iq * (va - b[cb + q]);
                        gb[cb + a] += gp - gn;
                        gb[cb + p] -= gp;
                        gb[cb + q] += gn;
                    }
                }
        });
    }
}
