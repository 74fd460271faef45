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
    // Tiled like a GEMM (the inner operation is (p - a)^2 instead of a product): a group computes a
    // tile of 32 anchors x (4 g / 8) pixels of one image, staging 8 channels at a time of the tile's
    // anchor and pixel features in shared memory; each thread accumulates 4 anchors x 4 pixels in
    // registers. So the projection map is read once per 32 anchors (6 times per image at the
    // paper's 192 anchors, where one anchor block of 8 per thread read it 24 times), and a thread
    // does 8 shared loads per 32 subtract-FMA pairs. Per element the sum still runs over c = 0..D-1
    // in order. Groups: N x ceil(A / 32) x ceil(HW / tile pixels) (3,600 at the paper's scale).
    const int TileAnchors = 32, TileChunk = 8, MaxTilePixels = 512;
    const int AnchorBlock = 8; // the CPU variant's anchor block (FeatureHost)

    static void FeatureKernel(ArrayView<float> fdist, ArrayView<float> proj, ArrayView<int> anchors,
                              int dim, int hw, int numAnchors)
    {
        var shA = SharedMemory.Allocate<float>(TileChunk * TileAnchors);   // (chunk, 32 anchors)
        var shP = SharedMemory.Allocate<float>(TileChunk * MaxTilePixels); // (chunk, tile pixels)
        var shIdx = SharedMemory.Allocate<int>(TileAnchors);
        int t = Group.IdxX, g = Group.DimX, lanes = g / 8, tp = 4 * lanes;
        int ta = t / lanes, tq = t - ta * lanes; // anchor lane (4 anchors: 4 ta .. 4 ta + 3), pixel lane (pixels tq + j lanes)
        int aBlocks = (numAnchors + TileAnchors - 1) / TileAnchors, pTiles = (hw + tp - 1) / tp;
        int n = fdist.IntLength / (numAnchors * hw);
        for (int tile = ILGPU.Grid.IdxX; tile < n * aBlocks * pTiles; tile += ILGPU.Grid.DimX)
        {
            int pt = tile % pTiles, nb = tile / pTiles, img = nb / aBlocks, a0 = nb % aBlocks * TileAnchors, i0 = pt * tp;
            int r0 = img * numAnchors + a0, cnt = XMath.Min(TileAnchors, numAnchors - a0), b = img * dim * hw;
            Group.Barrier(); // the previous tile has read shIdx
            if (t < TileAnchors) shIdx[t] = Anchor(anchors, r0, t, cnt, hw);
            float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            float s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
            for (int c0 = 0; c0 < dim; c0 += TileChunk)
            {
                int cc = XMath.Min(TileChunk, dim - c0);
                Group.Barrier(); // shIdx written; the previous chunk consumed
                for (int j = t; j < TileChunk * TileAnchors; j += g)
                {
                    int c = j / TileAnchors, ai = shIdx[j - c * TileAnchors];
                    shA[j] = c < cc ? proj[b + (c0 + c) * hw + XMath.Max(ai, 0)] : 0f; // a missing anchor reads pixel 0, discarded
                }
                for (int j = t; j < TileChunk * tp; j += g)
                {
                    int c = j / tp, i = i0 + j - c * tp;
                    shP[j] = c < cc && i < hw ? proj[b + (c0 + c) * hw + i] : 0f;
                }
                Group.Barrier();
                for (int c = 0; c < cc; c++)
                {
                    int ao = c * TileAnchors + 4 * ta, po = c * tp + tq;
                    float a0v = shA[ao], a1v = shA[ao + 1], a2v = shA[ao + 2], a3v = shA[ao + 3];
                    float p0 = shP[po], p1 = shP[po + lanes], p2 = shP[po + 2 * lanes], p3 = shP[po + 3 * lanes];
                    float d;
                    d = p0 - a0v; s00 += d * d; d = p1 - a0v; s01 += d * d; d = p2 - a0v; s02 += d * d; d = p3 - a0v; s03 += d * d;
                    d = p0 - a1v; s10 += d * d; d = p1 - a1v; s11 += d * d; d = p2 - a1v; s12 += d * d; d = p3 - a1v; s13 += d * d;
                    d = p0 - a2v; s20 += d * d; d = p1 - a2v; s21 += d * d; d = p2 - a2v; s22 += d * d; d = p3 - a2v; s23 += d * d;
                    d = p0 - a3v; s30 += d * d; d = p1 - a3v; s31 += d * d; d = p2 - a3v; s32 += d * d; d = p3 - a3v; s33 += d * d;
                }
            }
            int k = 4 * ta, i1 = i0 + tq;
            StoreTile(fdist, shIdx, r0, k, cnt, hw, i1, lanes, s00, s01, s02, s03);
            StoreTile(fdist, shIdx, r0, k + 1, cnt, hw, i1, lanes, s10, s11, s12, s13);
            StoreTile(fdist, shIdx, r0, k + 2, cnt, hw, i1, lanes, s20, s21, s22, s23);
            StoreTile(fdist, shIdx, r0, k + 3, cnt, hw, i1, lanes, s30, s31, s32, s33);
        }
    }

    // one anchor slot k of the tile, its 4 pixels i, i + lanes, i + 2 lanes, i + 3 lanes
    static void StoreTile(ArrayView<float> fdist, ArrayView<int> shIdx, int r0, int k, int cnt, int hw, int i, int lanes,
                          float s0, float s1, float s2, float s3)
    {
        if (k >= cnt) return;
        bool none = shIdx[k] < 0;
        int o = (r0 + k) * hw;
        if (i < hw) fdist[o + i] = none ? float.NaN : XMath.Sqrt(s0);
        if (i + lanes < hw) fdist[o + i + lanes] = none ? float.NaN : XMath.Sqrt(s1);
        if (i + 2 * lanes < hw) fdist[o + i + 2 * lanes] = none ? float.NaN : XMath.Sqrt(s2);
        if (i + 3 * lanes < hw) fdist[o + i + 3 * lanes] = none ? float.NaN : XMath.Sqrt(s3);
    }

    // the anchor of block slot j, or -1 (slot beyond the anchors, no anchor, or out of range)
    static int Anchor(ArrayView<int> anchors, int r0, int j, int cnt, int hw)
    {
        if (j >= cnt) return -1;
        int a = anchors[r0 + j];
        return a >= 0 && a < hw ? a : -1;
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
            Feature = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(FeatureKernel);
            Label = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int>(LabelKernel);
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
        int g = d.GroupSize, tp = 4 * (g / 8);
        if (g % 8 != 0 || tp > MaxTilePixels) throw new InvalidOperationException($"FeatureDistances: group size {g} is not a multiple of 8 up to {2 * MaxTilePixels}");
        long tiles = (long)n * ((numAnchors + TileAnchors - 1) / TileAnchors) * ((hw + tp - 1) / tp);
        K(d).Feature(new KernelConfig((int)Math.Clamp(tiles, 1, 1 << 20), g), fdist.View, proj.View, anchors.View, dim, hw, numAnchors);
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

    // Blocked: a job is (image, block of 8 anchors, tile of 1,024 pixels); its 8 accumulator rows
    // (32 KB) stay in cache while the channel loop streams the tile of each channel plane once, so
    // the projection map is read once per anchor block instead of once per anchor (memory-bound
    // before: 192 anchors x 9.8 MB per image). Per element the operations and their order are
    // unchanged: acc += (p_c - p_c[anchor])^2 for c = 0..D-1, then sqrt.
    const int HostTile = 1024;

    static unsafe void FeatureHost(Buf<float> fdist, Buf<float> proj, Buf<int> anchors, int dim, int hw, int numAnchors)
    {
        float* f = fdist.Ptr, p = proj.Ptr; int* an = anchors.Ptr;
        int n = (int)(anchors.Length / numAnchors);
        int blocks = (numAnchors + AnchorBlock - 1) / AnchorBlock, tiles = (hw + HostTile - 1) / HostTile;
        Parallel.For(0, n * blocks * tiles, job =>
        {
            int tile = job % tiles, nb = job / tiles, b = nb / blocks, a0 = nb % blocks * AnchorBlock;
            int i0 = tile * HostTile, len = Math.Min(HostTile, hw - i0), cnt = Math.Min(AnchorBlock, numAnchors - a0);
            float* pb = p + (long)b * dim * hw;
            Span<int> anc = stackalloc int[AnchorBlock];
            Span<float> tmp = stackalloc float[HostTile];
            tmp = tmp[..len];
            for (int j = 0; j < cnt; j++)
            {
                int row = b * numAnchors + a0 + j, a = an[row];
                var acc = new Span<float>(f + (long)row * hw + i0, len);
                if (a < 0 || a >= hw) { acc.Fill(float.NaN); anc[j] = -1; } else { acc.Clear(); anc[j] = a; }
            }
            for (int c = 0; c < dim; c++) // SIMD: acc += (p_c - p_c[anchor])^2
            {
                float* pc = pb + (long)c * hw;
                var src = new ReadOnlySpan<float>(pc + i0, len);
                for (int j = 0; j < cnt; j++)
                {
                    if (anc[j] < 0) continue;
                    var acc = new Span<float>(f + (long)(b * numAnchors + a0 + j) * hw + i0, len);
                    TensorPrimitives.Subtract(src, pc[anc[j]], tmp);
                    TensorPrimitives.MultiplyAdd(tmp, tmp, acc, acc);
                }
            }
            for (int j = 0; j < cnt; j++)
                if (anc[j] >= 0)
                {
                    var acc = new Span<float>(f + (long)(b * numAnchors + a0 + j) * hw + i0, len);
                    TensorPrimitives.Sqrt(acc, acc);
                }
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
            if (ok && metric == 2) { AngleRowHost(r, b, v, anc, hw); return; }
            for (int i = 0; i < hw; i++)
            {
                if (!ok || v[i] == 0) { r[i] = float.NaN; continue; }
                r[i] = metric == 1 ? MathF.Abs(b[anc] - b[i]) : b[anc] == b[i] ? 0f : 1f;
            }
        });
    }

    // One row of angles atan2(|u x v|, u . v) in SIMD tiles: the products, sums and square root
    // are the scalar Angle's operations in its order (bit for bit); the arctangent is AtanHost
    // (.NET's TensorPrimitives.Atan2 is scalar: 35 ns an element, most of the row's time).
    static unsafe void AngleRowHost(float* r, float* b, int* v, int anc, int hw)
    {
        float ux = b[anc], uy = b[hw + anc], uz = b[2 * hw + anc];
        Span<float> cx = stackalloc float[HostTile], cy = stackalloc float[HostTile], cz = stackalloc float[HostTile];
        Span<float> t = stackalloc float[HostTile];
        for (int i0 = 0; i0 < hw; i0 += HostTile)
        {
            int len = Math.Min(HostTile, hw - i0);
            var vx = new ReadOnlySpan<float>(b + i0, len);
            var vy = new ReadOnlySpan<float>(b + hw + i0, len);
            var vz = new ReadOnlySpan<float>(b + 2 * hw + i0, len);
            Span<float> x = cx[..len], y = cy[..len], z = cz[..len], tt = t[..len];
            var o = new Span<float>(r + i0, len);
            // cross = (uy vz - uz vy, uz vx - ux vz, ux vy - uy vx)
            TensorPrimitives.Multiply(vz, uy, x); TensorPrimitives.Multiply(vy, uz, tt); TensorPrimitives.Subtract(x, tt, x);
            TensorPrimitives.Multiply(vx, uz, y); TensorPrimitives.Multiply(vz, ux, tt); TensorPrimitives.Subtract(y, tt, y);
            TensorPrimitives.Multiply(vy, ux, z); TensorPrimitives.Multiply(vx, uy, tt); TensorPrimitives.Subtract(z, tt, z);
            TensorPrimitives.Multiply(x, x, x); TensorPrimitives.Multiply(y, y, y); TensorPrimitives.Multiply(z, z, z);
            TensorPrimitives.Add(x, y, x); TensorPrimitives.Add(x, z, x); TensorPrimitives.Sqrt(x, x);
            // dot = ux vx + uy vy + uz vz
            TensorPrimitives.Multiply(vx, ux, y); TensorPrimitives.Multiply(vy, uy, tt); TensorPrimitives.Add(y, tt, y);
            TensorPrimitives.Multiply(vz, uz, tt); TensorPrimitives.Add(y, tt, y);
            AtanHost(x, y, o);
            for (int i = 0; i < len; i++) if (v[i0 + i] == 0) o[i] = float.NaN;
        }
    }

    /// <summary>
    /// o = atan2(c, d) for c &gt;= 0 (a norm), in SIMD: the ratio min / max of (c, |d|) in [0, 1],
    /// reduced once more to |x| &lt;= tan(pi / 8) by atan(x) = pi / 4 + atan((x - 1) / (x + 1)), then
    /// Cephes' atanf polynomial (relative error about 2e-7), then the octant folded back:
    /// pi / 2 - t where c &gt; |d|, pi - t where d &lt; 0. atan2(0, 0) = 0. A remainder shorter than a
    /// vector goes through MathF.Atan2.
    /// </summary>
    public static void AtanHost(ReadOnlySpan<float> c, ReadOnlySpan<float> d, Span<float> o)
    {
        int n = o.Length, w = System.Numerics.Vector<float>.Count, i = 0;
        var zero = System.Numerics.Vector<float>.Zero;
        var one = System.Numerics.Vector<float>.One;
        var tanPi8 = new System.Numerics.Vector<float>(0.414213562373095f);
        var quarterPi = new System.Numerics.Vector<float>(MathF.PI / 4);
        var halfPi = new System.Numerics.Vector<float>(MathF.PI / 2);
        var pi = new System.Numerics.Vector<float>(MathF.PI);
        for (; i + w <= n; i += w)
        {
            var cv = new System.Numerics.Vector<float>(c[i..]);
            var dv = new System.Numerics.Vector<float>(d[i..]);
            var ad = System.Numerics.Vector.Abs(dv);
            var hi = System.Numerics.Vector.Max(cv, ad);
            var lo = System.Numerics.Vector.Min(cv, ad);
            var x = System.Numerics.Vector.ConditionalSelect(System.Numerics.Vector.Equals(hi, zero), zero, lo / hi);
            var big = System.Numerics.Vector.GreaterThan(x, tanPi8);
            var xr = System.Numerics.Vector.ConditionalSelect(big, (x - one) / (x + one), x);
            var z = xr * xr;
            var p = (((new System.Numerics.Vector<float>(8.05374449538e-2f) * z - new System.Numerics.Vector<float>(1.38776856032e-1f)) * z
                     + new System.Numerics.Vector<float>(1.99777106478e-1f)) * z - new System.Numerics.Vector<float>(3.33329491539e-1f)) * z * xr + xr;
            var t = System.Numerics.Vector.ConditionalSelect(big, quarterPi + p, p);
            t = System.Numerics.Vector.ConditionalSelect(System.Numerics.Vector.GreaterThan(cv, ad), halfPi - t, t);
            t = System.Numerics.Vector.ConditionalSelect(System.Numerics.Vector.LessThan(dv, zero), pi - t, t);
            t.CopyTo(o[i..]);
        }
        for (; i < n; i++) o[i] = MathF.Atan2(c[i], d[i]);
    }
}
