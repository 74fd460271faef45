using Ccr.Kernels.Ops;
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Contrastive;

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
internal static partial class CcrDistances
{
    // ---------------------------------------------------------------- kernels (grid-stride)

    // fdist[n, a, i] = || proj[n, :, anchor] - proj[n, :, i] ||; NaN for a row without anchor.
    // Tiled like an SGEMM whose inner operation is (p - a)^2 instead of a product. A group of
    // 256 threads computes a tile of 64 anchors x 128 pixels of one image; thread t = 16 ta + tq
    // accumulates anchors 4 ta .. 4 ta + 3 x pixels 4 tq .. 4 tq + 3 and 64 + 4 tq .. 64 + 4 tq + 3
    // (32 sums in registers). Channels stream through shared memory 16 at a time, double-buffered:
    // the next chunk's global loads are issued before the current chunk's math and stored into the
    // other buffer after it, one barrier per chunk. Per channel a thread does 3 128-bit shared loads
    // (its 4 anchors, its two runs of 4 pixels) for 32 FADD + 32 FFMA. Channels past D and pixels
    // past HW are staged as 0, so the channel loop needs no bounds: (0 - 0)^2 adds an exact +0 to a
    // sum >= 0. Per element the sum runs over c = 0..D-1 in order (the bits of the 32 x 128 tile
    // kernel this replaced). No division per element: a tile's coordinates are divided out once
    // per tile, a thread's staging addresses step by 16 HW per chunk. sm_90 (ptxas 11.8): 83
    // registers, no spills, 26 KB shared (2 groups an SM); the loop of two channels is 139
    // instructions, 64 of them FFMA and 64 FADD. Groups: N x ceil(A / 64) x ceil(HW / 128) (900 at
    // the paper's 4 x 192 x 19,200), grid-stride beyond 2^20.
    internal const int FeatureThreads = 256;
    const int TileAnchors = 64, TilePixels = 128, TileChunk = 16;
    const int AnchorBlock = 8; // the CPU variant's anchor block (FeatureHost)

    /// <summary>A thread's 8 running sums of one anchor: pixels 4 tq + 0..3, then 64 + 4 tq + 0..3.</summary>
    struct Sums8 { public float S0, S1, S2, S3, S4, S5, S6, S7; }

    /// <summary>A thread's 32 running sums: its 4 anchors x 8 pixels.</summary>
    struct Sums32 { public Sums8 A0, A1, A2, A3; }

    // channel c of the views a4, p4 (this thread's first float4 of anchors and of pixels in the
    // buffer): one float4 of anchors, two of pixels, 32 (p - a)^2
    static Sums32 Channel(Sums32 s, ArrayView<Float4> a4, ArrayView<Float4> p4, int c)
    {
        Float4 a = a4[c * (TileAnchors / 4)];
        Float4 p = p4[c * (TilePixels / 4)], q = p4[c * (TilePixels / 4) + 16];
        s.A0 = Accumulate(s.A0, a.X, p, q);
        s.A1 = Accumulate(s.A1, a.Y, p, q);
        s.A2 = Accumulate(s.A2, a.Z, p, q);
        s.A3 = Accumulate(s.A3, a.W, p, q);
        return s;
    }

    static Sums8 Accumulate(Sums8 s, float a, Float4 p, Float4 q)
    {
        float d;
        d = p.X - a; s.S0 += d * d; d = p.Y - a; s.S1 += d * d; d = p.Z - a; s.S2 += d * d; d = p.W - a; s.S3 += d * d;
        d = q.X - a; s.S4 += d * d; d = q.Y - a; s.S5 += d * d; d = q.Z - a; s.S6 += d * d; d = q.W - a; s.S7 += d * d;
        return s;
    }

    static void FeatureKernel(ArrayView<float> fdist, ArrayView<float> proj, ArrayView<int> anchors,
                              int dim, int hw, int numAnchors)
    {
        // (buffer, chunk channel, 64 anchors) and (buffer, chunk channel, 128 pixels), as float4s;
        // + two channels of slack that the channel loop's last view step points into (never read)
        var shA4 = SharedMemory.Allocate<Float4>((2 * TileChunk + 2) * TileAnchors / 4);
        var shP4 = SharedMemory.Allocate<Float4>((2 * TileChunk + 2) * TilePixels / 4);
        int t = Group.IdxX, ta = t >> 4, tq = t & 15;
        int aBlocks = (numAnchors + TileAnchors - 1) / TileAnchors, pTiles = (hw + TilePixels - 1) / TilePixels;
        int n = fdist.IntLength / (numAnchors * hw);
        for (int tile = ILGPU.Grid.IdxX; tile < n * aBlocks * pTiles; tile += ILGPU.Grid.DimX)
        {
            int nb = tile / pTiles, i0 = (tile - nb * pTiles) * TilePixels, img = nb / aBlocks;
            int a0 = (nb - img * aBlocks) * TileAnchors, r0 = img * numAnchors + a0, cnt = XMath.Min(TileAnchors, numAnchors - a0);
            var g = Staging.Of(anchors, t, img * dim * hw, hw, dim, i0, r0, cnt);
            Group.Barrier(); // the previous tile's last chunk has been read
            g.Load(proj, 0).Store(shA4, shP4, 0);
            Group.Barrier();
            var s = new Sums32();
            int buf = 0;
            for (int c0 = 0; c0 < dim; c0 += TileChunk)
            {
                bool more = c0 + TileChunk < dim;
                var next = more ? g.Load(proj, c0 + TileChunk) : default; // in flight during this chunk's math
                // views of this thread's first float4 in the buffer, stepped two channels per
                // iteration: the loads' offsets are constants that ptxas folds into LDS.128 [R + imm]
                var ba = shA4.SubView(buf * (TileChunk * TileAnchors / 4) + ta);
                var bp = shP4.SubView(buf * (TileChunk * TilePixels / 4) + tq);
                for (int c = 0; c < TileChunk; c += 2)
                {
                    s = Channel(s, ba, bp, 0);
                    s = Channel(s, ba, bp, 1);
                    ba = ba.SubView(2 * (TileAnchors / 4));
                    bp = bp.SubView(2 * (TilePixels / 4));
                }
                buf ^= 1;
                if (more) next.Store(shA4, shP4, buf);
                Group.Barrier(); // the next chunk is staged; this one's buffer may be overwritten
            }
            int k = 4 * ta, i1 = i0 + 4 * tq;
            StoreRow(fdist, anchors, r0, k, cnt, hw, i1, s.A0);
            StoreRow(fdist, anchors, r0, k + 1, cnt, hw, i1, s.A1);
            StoreRow(fdist, anchors, r0, k + 2, cnt, hw, i1, s.A2);
            StoreRow(fdist, anchors, r0, k + 3, cnt, hw, i1, s.A3);
        }
    }

    /// <summary>What one thread stages of a 16-channel chunk: anchor slot t % 64 at channels
    /// t / 64 + 4 r (r &lt; 4) and pixel t % 128 at channels t / 128 + 2 r (r &lt; 8), each 0 where
    /// the channel, pixel or anchor does not exist. Loads coalesce along pixels; the anchors are a
    /// gather (64 pixels per channel, once per tile).</summary>
    struct Staging
    {
        public int OffA, OffP, Ca, Cp, Sa, Sp, Hw, Dim;
        public bool AncOk, PixOk;
        public float A0, A1, A2, A3, P0, P1, P2, P3, P4, P5, P6, P7;

        public static Staging Of(ArrayView<int> anchors, int t, int b, int hw, int dim, int i0, int r0, int cnt)
        {
            var g = new Staging { Sa = t & (TileAnchors - 1), Ca = t >> 6, Sp = t & (TilePixels - 1), Cp = t >> 7, Hw = hw, Dim = dim };
            int anc = Anchor(anchors, r0, g.Sa, cnt, hw);
            g.AncOk = anc >= 0;
            g.PixOk = i0 + g.Sp < hw;
            g.OffA = b + g.Ca * hw + XMath.Max(anc, 0);
            g.OffP = b + g.Cp * hw + i0 + g.Sp;
            return g;
        }

        /// <summary>The values of the chunk that starts at channel c0.</summary>
        public Staging Load(ArrayView<float> proj, int c0)
        {
            var g = this;
            int ca = c0 + Ca, cp = c0 + Cp, oa = OffA + c0 * Hw, op = OffP + c0 * Hw;
            g.A0 = AncOk && ca < Dim ? proj[oa] : 0f;
            g.A1 = AncOk && ca + 4 < Dim ? proj[oa + 4 * Hw] : 0f;
            g.A2 = AncOk && ca + 8 < Dim ? proj[oa + 8 * Hw] : 0f;
            g.A3 = AncOk && ca + 12 < Dim ? proj[oa + 12 * Hw] : 0f;
            g.P0 = PixOk && cp < Dim ? proj[op] : 0f;
            g.P1 = PixOk && cp + 2 < Dim ? proj[op + 2 * Hw] : 0f;
            g.P2 = PixOk && cp + 4 < Dim ? proj[op + 4 * Hw] : 0f;
            g.P3 = PixOk && cp + 6 < Dim ? proj[op + 6 * Hw] : 0f;
            g.P4 = PixOk && cp + 8 < Dim ? proj[op + 8 * Hw] : 0f;
            g.P5 = PixOk && cp + 10 < Dim ? proj[op + 10 * Hw] : 0f;
            g.P6 = PixOk && cp + 12 < Dim ? proj[op + 12 * Hw] : 0f;
            g.P7 = PixOk && cp + 14 < Dim ? proj[op + 14 * Hw] : 0f;
            return g;
        }

        /// <summary>Into shared buffer <paramref name="buf"/>.</summary>
        public readonly void Store(ArrayView<Float4> shA4, ArrayView<Float4> shP4, int buf)
        {
            var a = shA4.Cast<float>().SubView(buf * TileChunk * TileAnchors + Ca * TileAnchors + Sa, 12 * TileAnchors + 1);
            var p = shP4.Cast<float>().SubView(buf * TileChunk * TilePixels + Cp * TilePixels + Sp, 14 * TilePixels + 1);
            a[0] = A0; a[4 * TileAnchors] = A1; a[8 * TileAnchors] = A2; a[12 * TileAnchors] = A3;
            p[0] = P0; p[2 * TilePixels] = P1; p[4 * TilePixels] = P2; p[6 * TilePixels] = P3;
            p[8 * TilePixels] = P4; p[10 * TilePixels] = P5; p[12 * TilePixels] = P6; p[14 * TilePixels] = P7;
        }
    }

    // anchor slot k of the tile: its 8 sums at pixels i .. i + 3 and i + 64 .. i + 67
    static void StoreRow(ArrayView<float> fdist, ArrayView<int> anchors, int r0, int k, int cnt, int hw, int i, Sums8 s)
    {
        if (k >= cnt) return;
        bool none = Anchor(anchors, r0, k, cnt, hw) < 0;
        int o = (r0 + k) * hw + i, m = hw - i; // pixel i + j exists when j < m
        Put(fdist, o, 0, m, none, s.S0); Put(fdist, o, 1, m, none, s.S1); Put(fdist, o, 2, m, none, s.S2); Put(fdist, o, 3, m, none, s.S3);
        Put(fdist, o, 64, m, none, s.S4); Put(fdist, o, 65, m, none, s.S5); Put(fdist, o, 66, m, none, s.S6); Put(fdist, o, 67, m, none, s.S7);
    }

    static void Put(ArrayView<float> fdist, int o, int j, int m, bool none, float s)
    {
        if (j < m) fdist[o + j] = none ? float.NaN : XMath.Sqrt(s);
    }

    // the anchor of block slot j, or -1 (slot beyond the anchors, no anchor, or out of range)
    static int Anchor(ArrayView<int> anchors, int r0, int j, int cnt, int hw)
    {
        if (j >= cnt) return -1;
        int a = anchors[r0 + j];
        return a >= 0 && a < hw ? a : -1;
    }

    // One group per anchor row (grid-stride over rows), its threads stride over the row's pixels:
    // the row's image, anchor and anchor label are read once per row, and a pixel costs no index
    // division (a flat element index would need e / HW, e % HW and row / A for each one).
    static void LabelKernel(ArrayView<float> ldist, ArrayView<float> labels, ArrayView<int> valid,
                            ArrayView<int> anchors, int channels, int hw, int numAnchors, int metric)
    {
        int rows = ldist.IntLength / hw;
        for (int row = ILGPU.Grid.IdxX; row < rows; row += ILGPU.Grid.DimX)
        {
            int n = row / numAnchors, anc = anchors[row], v = n * hw, b = n * channels * hw, o = row * hw;
            bool ok = anc >= 0 && anc < hw && valid[v + anc] != 0;
            int a = ok ? anc : 0; // an ignored anchor's labels are read (pixel 0) but never used
            float ux = labels[b + a], uy = metric == 2 ? labels[b + hw + a] : 0f, uz = metric == 2 ? labels[b + 2 * hw + a] : 0f;
            for (int i = Group.IdxX; i < hw; i += Group.DimX)
            {
                if (!ok || valid[v + i] == 0) { ldist[o + i] = float.NaN; continue; }
                ldist[o + i] = metric == 2 ? Angle(ux, uy, uz, labels[b + i], labels[b + hw + i], labels[b + 2 * hw + i])
                    : metric == 1 ? XMath.Abs(ux - labels[b + i])
                    : ux == labels[b + i] ? 0f : 1f;
            }
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
        if (proj.Length > int.MaxValue) throw new ArgumentException($"FeatureDistances: proj has {proj.Length} elements, more than int indexing allows");
        if (d.Accelerator.MaxNumThreadsPerGroup < FeatureThreads)
            throw new InvalidOperationException($"FeatureDistances: needs groups of {FeatureThreads} threads, the device allows {d.Accelerator.MaxNumThreadsPerGroup}");
        long tiles = (long)n * ((numAnchors + TileAnchors - 1) / TileAnchors) * ((hw + TilePixels - 1) / TilePixels);
        K(d).Feature(new KernelConfig((int)Math.Clamp(tiles, 1, 1 << 20), FeatureThreads), fdist.View, proj.View, anchors.View, dim, hw, numAnchors);
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
        K(d).Label(new KernelConfig(Math.Clamp(n * numAnchors, 1, 1 << 20), d.GroupSize), ldist.View, labels.View, valid.View, anchors.View, channels, hw, numAnchors, (int)metric);
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
