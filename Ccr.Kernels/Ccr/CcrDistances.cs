using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>How a source task's labels are compared: class equality, L1 (depth) or the angle
/// between vectors (surface normals, radians).</summary>
public enum CcrLabelMetric { Discrete = 0, L1 = 1, Angle = 2 }

/// <summary>
/// The two distance matrices of cross-task contrastive regularisation (CCR), one row per anchor:
/// feature distances ||p[anchor] - p[i]||_2 in the projected space and label distances in the
/// source task's label space. Layout: the projection map (N, D, HW), anchors (N, A) as pixel
/// indices (-1: no anchor), both matrices (N, A, HW). A label distance is NaN where pixel i or the
/// anchor is ignored: NaN is how every later kernel recognises a pixel that may never be an
/// anchor, a positive or a negative. Discrete labels give 0 (same class) or 1.
/// Both functions write their output (=). float64 references in CcrDistances.Reference.cs.
/// </summary>
public static partial class CcrDistances
{
    // ---------------------------------------------------------------- kernels (grid-stride)

    // fdist[n, a, i] = || proj[n, :, anchor] - proj[n, :, i] ||; NaN for a row without anchor.
    // A thread computes pixel i against a block of 8 anchors of its image: each feature value of
    // pixel i is loaded once per block instead of once per anchor (8x less L2 traffic), while the
    // anchors' values are the same address across a warp (a broadcast).
    const int AnchorBlock = 8;

    static void FeatureKernel(ArrayView<float> fdist, ArrayView<float> proj, ArrayView<int> anchors,
                              int dim, int hw, int numAnchors)
    {
        int blocks = (numAnchors + AnchorBlock - 1) / AnchorBlock;
        int total = fdist.IntLength / numAnchors * blocks; // N * blocks * HW
        for (int e = ILGPU.Grid.GlobalIndex.X; e < total; e += Launch.Stride)
        {
            int i = e % hw, nb = e / hw, n = nb / blocks, a0 = nb % blocks * AnchorBlock;
            int r0 = n * numAnchors + a0;
            int cnt = XMath.Min(AnchorBlock, numAnchors - a0);
            // anchors of the block; a missing or out-of-range one reads pixel 0 and is discarded
            int x0 = Anchor(anchors, r0, 0, cnt, hw), x1 = Anchor(anchors, r0, 1, cnt, hw), x2 = Anchor(anchors, r0, 2, cnt, hw),
                x3 = Anchor(anchors, r0, 3, cnt, hw), x4 = Anchor(anchors, r0, 4, cnt, hw), x5 = Anchor(anchors, r0, 5, cnt, hw),
                x6 = Anchor(anchors, r0, 6, cnt, hw), x7 = Anchor(anchors, r0, 7, cnt, hw);
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
            int b = n * dim * hw;
            for (int c = 0; c < dim; c++)
            {
                int o = b + c * hw;
                float v = proj[o + i];
                float d0 = proj[o + XMath.Max(x0, 0)] - v, d1 = proj[o + XMath.Max(x1, 0)] - v;
                float d2 = proj[o + XMath.Max(x2, 0)] - v, d3 = proj[o + XMath.Max(x3, 0)] - v;
                float d4 = proj[o + XMath.Max(x4, 0)] - v, d5 = proj[o + XMath.Max(x5, 0)] - v;
                float d6 = proj[o + XMath.Max(x6, 0)] - v, d7 = proj[o + XMath.Max(x7, 0)] - v;
                s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
                s4 += d4 * d4; s5 += d5 * d5; s6 += d6 * d6; s7 += d7 * d7;
            }
            Store(fdist, r0, 0, cnt, hw, i, x0, s0); Store(fdist, r0, 1, cnt, hw, i, x1, s1);
            Store(fdist, r0, 2, cnt, hw, i, x2, s2); Store(fdist, r0, 3, cnt, hw, i, x3, s3);
            Store(fdist, r0, 4, cnt, hw, i, x4, s4); Store(fdist, r0, 5, cnt, hw, i, x5, s5);
            Store(fdist, r0, 6, cnt, hw, i, x6, s6); Store(fdist, r0, 7, cnt, hw, i, x7, s7);
        }
    }

    // the anchor of block slot j, or -1 (slot beyond the anchors, no anchor, or out of range)
    static int Anchor(ArrayView<int> anchors, int r0, int j, int cnt, int hw)
    {
        if (j >= cnt) return -1;
        int a = anchors[r0 + j];
        return a >= 0 && a < hw ? a : -1;
    }

    static void Store(ArrayView<float> fdist, int r0, int j, int cnt, int hw, int i, int anc, float s)
    {
        if (j < cnt) fdist[(r0 + j) * hw + i] = anc < 0 ? float.NaN : XMath.Sqrt(s);
    }

    static void LabelKernel(ArrayView<float> ldist, ArrayView<float> labels, ArrayView<int> valid,
                            ArrayView<int> anchors, int channels, int hw, int numAnchors, int metric)
    {
        for (int e = ILGPU.Grid.GlobalIndex.X; e < ldist.IntLength; e += Launch.Stride)
        {
            int i = e % hw, row = e / hw, n = row / numAnchors;
            int anc = anchors[row];
            if (anc < 0 || anc >= hw || valid[n * hw + anc] == 0 || valid[n * hw + i] == 0) { ldist[e] = float.NaN; continue; }
            int b = n * channels * hw;
            ldist[e] = metric == 2
                ? Angle(labels[b + anc], labels[b + hw + anc], labels[b + 2 * hw + anc],
                        labels[b + i], labels[b + hw + i], labels[b + 2 * hw + i])
                : metric == 1 ? XMath.Abs(labels[b + anc] - labels[b + i])
                : labels[b + anc] == labels[b + i] ? 0f : 1f;
        }
    }

    /// <summary>Angle between two 3-vectors as atan2(|u x v|, u . v): accurate near 0 and pi,
    /// where acos of the cosine loses half its digits.</summary>
    public static float Angle(float ux, float uy, float uz, float vx, float vy, float vz)
    {
        float cx = uy * vz - uz * vy, cy = uz * vx - ux * vz, cz = ux * vy - uy * vx;
        float cross = XMath.Sqrt(cx * cx + cy * cy + cz * cz);
        return XMath.Atan2(cross, ux * vx + uy * vy + uz * vz);
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int> Feature;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int> Label;

        public Kernels(Device d)
        {
            Feature = d.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(FeatureKernel);
            Label = d.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int>(LabelKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    internal static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    /// <summary>fdist (N, A, HW) = feature distances from each anchor of proj (N, D, HW) to every pixel.</summary>
    public static void FeatureDistances(Device d, Buf<float> fdist, Buf<float> proj, Buf<int> anchors,
                                        int n, int dim, int hw, int numAnchors)
    {
        CheckSizes("FeatureDistances", n, hw, numAnchors);
        if (dim <= 0) throw new ArgumentException($"FeatureDistances: feature dimension {dim}");
        Launch.SameLength("FeatureDistances", proj.Length, (long)n * dim * hw, "proj and (N, D, HW)");
        Launch.SameLength("FeatureDistances", anchors.Length, (long)n * numAnchors, "anchors and (N, A)");
        Launch.SameLength("FeatureDistances", fdist.Length, (long)n * numAnchors * hw, "fdist and (N, A, HW)");
        if (fdist.Length == 0) return;
        if (Host(d)) { FeatureHost(fdist, proj, anchors, dim, hw, numAnchors); return; }
        long work = (long)n * ((numAnchors + AnchorBlock - 1) / AnchorBlock) * hw;
        K(d).Feature(d.Grid(work), fdist.View, proj.View, anchors.View, dim, hw, numAnchors);
    }

    /// <summary>ldist (N, A, HW) = label distances from each anchor of labels (N, L, HW) to every
    /// pixel; valid (N, HW) is 0 at ignored pixels. L is 3 for <see cref="CcrLabelMetric.Angle"/>, else 1.</summary>
    public static void LabelDistances(Device d, Buf<float> ldist, Buf<float> labels, Buf<int> valid, Buf<int> anchors,
                                      int n, int channels, int hw, int numAnchors, CcrLabelMetric metric)
    {
        CheckSizes("LabelDistances", n, hw, numAnchors);
        int want = metric == CcrLabelMetric.Angle ? 3 : 1;
        if (channels != want) throw new ArgumentException($"LabelDistances: metric {metric} needs {want} label channels, got {channels}");
        Launch.SameLength("LabelDistances", labels.Length, (long)n * channels * hw, "labels and (N, L, HW)");
        Launch.SameLength("LabelDistances", valid.Length, (long)n * hw, "valid and (N, HW)");
        Launch.SameLength("LabelDistances", anchors.Length, (long)n * numAnchors, "anchors and (N, A)");
        Launch.SameLength("LabelDistances", ldist.Length, (long)n * numAnchors * hw, "ldist and (N, A, HW)");
        if (ldist.Length == 0) return;
        if (Host(d)) { LabelHost(ldist, labels, valid, anchors, channels, hw, numAnchors, (int)metric); return; }
        K(d).Label(d.Grid(ldist.Length), ldist.View, labels.View, valid.View, anchors.View, channels, hw, numAnchors, (int)metric);
    }

    internal static void CheckSizes(string op, int n, int hw, int numAnchors)
    {
        if (n < 0 || hw <= 0 || numAnchors < 0 || (long)n * numAnchors * hw > int.MaxValue)
            throw new ArgumentException($"{op}: bad sizes N={n}, HW={hw}, A={numAnchors}");
    }

    // ---------------------------------------------------------------- CPU variant (host code)

    static unsafe void FeatureHost(Buf<float> fdist, Buf<float> proj, Buf<int> anchors, int dim, int hw, int numAnchors)
    {
        float* f = fdist.Ptr, p = proj.Ptr; int* an = anchors.Ptr;
        int rows = (int)anchors.Length;
        Parallel.For(0, rows, row =>
        {
            int n = row / numAnchors, anc = an[row];
            float* fr = f + (long)row * hw;
            if (anc < 0 || anc >= hw) { new Span<float>(fr, hw).Fill(float.NaN); return; }
            var acc = new Span<float>(fr, hw);
            acc.Clear();
            var tmp = new float[hw];
            float* pb = p + (long)n * dim * hw;
            for (int c = 0; c < dim; c++) // SIMD: acc += (p_c - p_c[anchor])^2
            {
                var pc = new ReadOnlySpan<float>(pb + (long)c * hw, hw);
                TensorPrimitives.Subtract(pc, pc[anc], tmp);
                TensorPrimitives.MultiplyAdd(tmp, tmp, acc, acc);
            }
            TensorPrimitives.Sqrt(acc, acc);
        });
    }

    static unsafe void LabelHost(Buf<float> ldist, Buf<float> labels, Buf<int> valid, Buf<int> anchors,
                                 int channels, int hw, int numAnchors, int metric)
    {
        float* ld = ldist.Ptr, lb = labels.Ptr; int* va = valid.Ptr, an = anchors.Ptr;
        int rows = (int)anchors.Length;
        Parallel.For(0, rows, row =>
        {
            int n = row / numAnchors, anc = an[row];
            float* r = ld + (long)row * hw;
            int* v = va + (long)n * hw;
            float* b = lb + (long)n * channels * hw;
            bool ok = anc >= 0 && anc < hw && v[anc] != 0;
            for (int i = 0; i < hw; i++)
            {
                if (!ok || v[i] == 0) { r[i] = float.NaN; continue; }
                r[i] = metric == 2 ? Angle(b[anc], b[hw + anc], b[2 * hw + anc], b[i], b[hw + i], b[2 * hw + i])
                     : metric == 1 ? MathF.Abs(b[anc] - b[i])
                     : b[anc] == b[i] ? 0f : 1f;
            }
        });
    }
}
