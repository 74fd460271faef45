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

    // fdist[n, a, i] = || proj[n, :, anchor] - proj[n, :, i] ||; NaN for a row without anchor
    static void FeatureKernel(ArrayView<float> fdist, ArrayView<float> proj, ArrayView<int> anchors,
                              int dim, int hw, int numAnchors)
    {
        for (int e = ILGPU.Grid.GlobalIndex.X; e < fdist.IntLength; e += Launch.Stride)
        {
            int i = e % hw, row = e / hw, n = row / numAnchors;
            int anc = anchors[row];
            if (anc < 0 || anc >= hw) { fdist[e] = float.NaN; continue; }
            int baseIdx = n * dim * hw;
            float s = 0f;
            for (int c = 0; c < dim; c++)
            {
                float diff = proj[baseIdx + c * hw + anc] - proj[baseIdx + c * hw + i];
                s += diff * diff;
            }
            fdist[e] = XMath.Sqrt(s);
        }
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
        K(d).Feature(d.Grid(fdist.Length), fdist.View, proj.View, anchors.View, dim, hw, numAnchors);
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
            new Span<float>(fr, hw).Clear();
            float* pb = p + (long)n * dim * hw;
            for (int c = 0; c < dim; c++)
            {
                float* pc = pb + (long)c * hw;
                float av = pc[anc];
                for (int i = 0; i < hw; i++) { float diff = av - pc[i]; fr[i] += diff * diff; }
            }
            for (int i = 0; i < hw; i++) fr[i] = MathF.Sqrt(fr[i]);
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
