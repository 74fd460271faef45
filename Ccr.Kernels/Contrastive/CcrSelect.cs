using Ccr.Kernels.Ops;
using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Contrastive;

/// <summary>Hard: hardest positive and semi-hard negatives (the paper). Basic: a uniformly random
/// positive and random negatives (the CCR-Basic ablation).</summary>
public enum CcrSampling { Hard = 0, Basic = 1 }

/// <summary>
/// Positive / negative mining for CCR, one anchor row at a time, everything on the device.
///
/// Every selection is "the k smallest composite keys among the eligible pixels of a row", where the
/// composite key is (32-bit order-preserving image of a float, pixel index): ties go to the lower
/// pixel index, keys are distinct, and the k-th smallest key (the row's <i>bound</i>) describes the
/// whole selected set: eligible and key &lt;= bound. A bound of <see cref="None"/> means fewer than k
/// pixels were eligible, and all of them are taken. Three stages:
/// <list type="number">
/// <item><see cref="LabelTopKBounds"/> (continuous labels only): positives are the k nearest valid
/// pixels in label space (the anchor excluded), negatives the k farthest of the remaining ones, so
/// the two sets never overlap; with k or fewer valid pixels besides the anchor all are positives
/// and there is no negative (keep k below HW / 2 on small maps).</item>
/// <item><see cref="HardestPositive"/>: the positive with the largest feature distance (Hard) or a
/// random positive (Basic). Discrete labels: positives are valid pixels of the anchor's class.</item>
/// <item><see cref="SemiHardNegatives"/>: the C_neg negatives with the smallest feature distance that
/// still exceeds the positive's (Hard) or C_neg random negatives (Basic), in pixel order, padded
/// with -1. Discrete labels: negatives are valid pixels of other classes. A row without a positive
/// gets no negatives.</item></list>
/// <see cref="Mine"/> runs all three in one launch (what the loss uses: a row's data stays in cache
/// between stages); the per-stage launchers exist for tests.
/// Random choices are the smallest keys of a hash of (seed, row, pixel): a uniform choice without
/// replacement that both variants make identically; the seed may be derived on the device from the
/// regulariser's step counter (<see cref="CcrAnchors.MiningSeed"/>), so a replayed CUDA graph draws
/// anew. CUDA variant: one group per row, a radix select guided by the keys' range
/// (CcrSelect.Radix.cs).
/// CPU variant: Parallel.For over rows with a bounded max-heap. Index outputs have no backward.
/// </summary>
internal static partial class CcrSelect
{
    public const ulong None = ulong.MaxValue;
    /// <summary>Largest C_neg the CUDA variant's shared buffer holds.</summary>
    public const int MaxNegatives = 64;

    const int PosTopK = 0, NegTopK = 1, PosHard = 2, PosBasic = 3, NegSemiHard = 4, NegBasic = 5;
    const int StageBounds = 0, StagePositive = 1, StageNegatives = 2, StageAll = 3;

    /// <summary>Scalar arguments of the selection kernel (one struct keeps the signature short).
    /// TopK: k of the label top-k; NumNeg: C_neg; UseCounter: derive the Basic seed from counter[0];
    /// LabelMode: 1 when label distances are recomputed from the labels (<see cref="RowSource"/>),
    /// NumAnchors: anchors per image (mode 1 only).</summary>
    public struct Args
    {
        public int Stage, Metric, Mode, Hw, Rows, TopK, NumNeg, UseCounter, LabelMode, NumAnchors;
        public uint Seed;
    }

    // ---------------------------------------------------------------- keys (shared by kernel, host and tests)

    /// <summary>Order-preserving map of a float to a uint (-0 and +0 map alike).</summary>
    public static uint OrderedKey(float x)
    {
        uint b = Interop.FloatAsInt(x);
        if (b == 0x80000000u) b = 0;
        return (b & 0x80000000u) != 0 ? ~b : b | 0x80000000u;
    }

    public static ulong Compose(uint key, int i) => ((ulong)key << 32) | (uint)i;

    /// <summary>A well-mixed 32-bit hash of (seed, row, pixel) (murmur3's finaliser).</summary>
    public static uint Hash(uint seed, int row, int i)
    {
        uint h = seed ^ ((uint)row * 0x9E3779B1u) ^ ((uint)i * 0x85EBCA77u);
        h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
        h ^= (uint)i * 0x27D4EB2Fu;
        h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12;
        return h;
    }

    /// <summary>Pixel i is a positive of its row: valid, not the anchor, same class (discrete) or
    /// among the k nearest labels (continuous: key &lt;= posBound).</summary>
    public static bool IsPositive(int metric, int i, int anc, float ld, ulong posBound) =>
        !XMath.IsNaN(ld) && i != anc && (metric == 0 ? ld == 0f : Compose(OrderedKey(ld), i) <= posBound);

    /// <summary>Pixel i is a negative of its row: valid, other class (discrete) or not a positive and
    /// among the k farthest labels (continuous).</summary>
    public static bool IsNegative(int metric, int i, int anc, float ld, ulong posBound, ulong negBound) =>
        !XMath.IsNaN(ld) && i != anc &&
        (metric == 0 ? ld != 0f : Compose(OrderedKey(ld), i) > posBound && Compose(OrderedKey(-ld), i) <= negBound);

    static ulong KeyOf(int what, int metric, int row, int i, int anc, float ld, float fd,
                       ulong posB, ulong negB, float dpos, uint seed)
    {
        if (what == PosTopK)
            return XMath.IsNaN(ld) || i == anc ? None : Compose(OrderedKey(ld), i);
        if (what == NegTopK)
            return XMath.IsNaN(ld) || i == anc || Compose(OrderedKey(ld), i) <= posB ? None : Compose(OrderedKey(-ld), i);
        if (what == PosHard)
            return IsPositive(metric, i, anc, ld, posB) ? Compose(OrderedKey(-fd), i) : None;
        if (what == PosBasic)
            return IsPositive(metric, i, anc, ld, posB) ? Compose(Hash(seed, row, i), i) : None;
        if (what == NegSemiHard)
            return IsNegative(metric, i, anc, ld, posB, negB) && fd > dpos ? Compose(OrderedKey(fd), i) : None;
        return IsNegative(metric, i, anc, ld, posB, negB) ? Compose(Hash(seed, row, i), i) : None;
    }

    /// <summary>
    /// Where one anchor row's distances come from: the feature-distance matrix F (rows, HW), and
    /// either the label-distance matrix L (rows, HW) (LabelMode 0) or, for L1 and class labels
    /// (LabelMode 1), the labels L (N, 1, HW) and validity (N, HW) themselves, from which a label
    /// distance is recomputed exactly as <see cref="CcrDistances.LabelDistances"/> computes it (one
    /// subtraction and abs, or one comparison: bit-identical on any hardware). Mode 1 spares the
    /// (rows, HW) label matrix: written once and read by every pass of every select otherwise,
    /// while the labels of an image stay in cache.
    /// </summary>
    internal struct RowSource
    {
        public ArrayView<float> F, L;
        public ArrayView<int> Valid;
        public int Metric, Row, Anc, Rb, LabelMode, Ib, AncOk;
        public float La;

        public float Ld(int i)
        {
            if (LabelMode == 0) return L[Rb + i];
            if (AncOk == 0 || Valid[Ib + i] == 0) return float.NaN;
            float v = L[Ib + i];
            return Metric == 1 ? XMath.Abs(La - v) : La == v ? 0f : 1f;
        }
    }

    static RowSource Source(ArrayView<float> fdist, ArrayView<float> l, ArrayView<int> valid, int labelMode, int metric,
                            int row, int hw, int anc, int numAnchors)
    {
        var s = new RowSource { F = fdist, L = l, Valid = valid, Metric = metric, Row = row, Anc = anc, Rb = row * hw, LabelMode = labelMode };
        if (labelMode != 0)
        {
            s.Ib = row / numAnchors * hw;
            bool ok = anc >= 0 && anc < hw && valid[s.Ib + anc] != 0;
            s.AncOk = ok ? 1 : 0;
            s.La = ok ? l[s.Ib + anc] : 0f;
        }
        return s;
    }

    /// <summary>The mining keys of one anchor row, as a key source for <see cref="GroupSelect{TKeys}"/>.
    /// The feature distance is read only by the stages that use it (a pass reads one matrix, not two).</summary>
    internal struct MiningKeys : IRowKeys
    {
        public RowSource S;
        public int What;
        public ulong PosB, NegB;
        public float Dpos;
        public uint Seed;

        public ulong Key(int i)
        {
            float fd = What == PosHard || What == NegSemiHard ? S.F[S.Rb + i] : 0f;
            return KeyOf(What, S.Metric, S.Row, i, S.Anc, S.Ld(i), fd, PosB, NegB, Dpos, Seed);
        }
    }

    static MiningKeys Keys(RowSource src, int what, ulong posB, ulong negB, float dpos, uint seed) =>
        new() { S = src, What = what, PosB = posB, NegB = negB, Dpos = dpos, Seed = seed };

    // ---------------------------------------------------------------- CUDA variant: one group per row

    // The three stages of one row. Every thread of the group calls them with the same arguments and
    // gets the same results (the selects are uniform), so only thread 0 writes the outputs.

    static void RowBounds(SelectShared sh, RowSource src, int hw, int k, out ulong posB, out ulong negB)
    {
        posB = GroupSelect(sh, Keys(src, PosTopK, None, None, 0f, 0), hw, k);
        negB = GroupSelect(sh, Keys(src, NegTopK, posB, None, 0f, 0), hw, k);
    }

    static int RowPositive(SelectShared sh, RowSource src, int mode, int hw, ulong posB, ulong negB, uint seed)
    {
        ulong b = GroupSelect(sh, Keys(src, mode == 0 ? PosHard : PosBasic, posB, negB, 0f, seed), hw, 1);
        return b == None ? -1 : (int)(uint)b;
    }

    static void RowNegatives(SelectShared sh, ArrayView<int> sel, ArrayView<int> nsel, ArrayView<int> negIdx, RowSource src,
                             int mode, int hw, ulong posB, ulong negB, int pi, float dp, uint seed, int numNeg)
    {
        int t = Group.IdxX, g = Group.DimX, row = src.Row;
        if (pi < 0)
        {
            for (int j = t; j < numNeg; j += g) negIdx[row * numNeg + j] = -1;
            return;
        }
        var keys = Keys(src, mode == 0 ? NegSemiHard : NegBasic, posB, negB, dp, seed);
        ulong b = GroupSelect(sh, keys, hw, numNeg);
        if (t == 0) nsel[0] = 0;
        Group.Barrier();
        for (int i = t; i < hw; i += g)
        {
            ulong key = keys.Key(i);
            if (key != None && key <= b)
            {
                int s = Atomic.Add(ref nsel[0], 1);
                if (s < MaxNegatives) sel[s] = i;
            }
        }
        Group.Barrier();
        if (t == 0)
        {
            int m = XMath.Min(nsel[0], numNeg);
            for (int x = 1; x < m; x++) // insertion sort: the output is in pixel order
            {
                int v = sel[x], y = x - 1;
                while (y >= 0 && sel[y] > v) { sel[y + 1] = sel[y]; y--; }
                sel[y + 1] = v;
            }
            for (int j = 0; j < numNeg; j++) negIdx[row * numNeg + j] = j < m ? sel[j] : -1;
        }
    }

    // l: the label-distance matrix, or (LabelMode 1) the labels, with valid their mask (else unused).
    static void SelectKernel(ArrayView<ulong> bounds, ArrayView<int> posIdx, ArrayView<float> dposOut, ArrayView<int> negIdx,
                             ArrayView<float> fdist, ArrayView<float> l, ArrayView<int> valid, ArrayView<int> anchors,
                             ArrayView<int> counter, Args a)
    {
        var sh = SelectShared.Allocate();
        var sel = SharedMemory.Allocate<int>(MaxNegatives);
        var nsel = SharedMemory.Allocate<int>(1);
        int t = Group.IdxX, hw = a.Hw;
        uint seed = a.UseCounter != 0 ? CcrAnchors.MiningSeed(a.Seed, counter[0]) : a.Seed;
        for (int row = ILGPU.Grid.IdxX; row < a.Rows; row += ILGPU.Grid.DimX)
        {
            var src = Source(fdist, l, valid, a.LabelMode, a.Metric, row, hw, anchors[row], a.NumAnchors);
            ulong posB = None, negB = None;
            if (a.Metric != 0)
            {
                if (a.Stage == StageBounds || a.Stage == StageAll)
                {
                    RowBounds(sh, src, hw, a.TopK, out posB, out negB);
                    if (t == 0) { bounds[2 * row] = posB; bounds[2 * row + 1] = negB; }
                }
                else { posB = bounds[2 * row]; negB = bounds[2 * row + 1]; }
            }
            if (a.Stage == StageBounds) continue;
            int pi; float dp;
            if (a.Stage == StagePositive || a.Stage == StageAll)
            {
                pi = RowPositive(sh, src, a.Mode, hw, posB, negB, seed);
                dp = pi < 0 ? 0f : fdist[row * hw + pi];
                if (t == 0) { posIdx[row] = pi; dposOut[row] = dp; }
            }
            else { pi = posIdx[row]; dp = dposOut[row]; }
            if (a.Stage == StagePositive) continue;
            RowNegatives(sh, sel, nsel, negIdx, src, a.Mode, hw, posB, negB, pi, dp, seed, a.NumNeg);
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<ulong>, ArrayView<int>, ArrayView<float>, ArrayView<int>,
                               ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, Args> Select;

        public Kernels(Device d) =>
            Select = d.Load<ArrayView<ulong>, ArrayView<int>, ArrayView<float>, ArrayView<int>,
                ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, Args>(SelectKernel);
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long matrix, long anchors, int rows, int hw)
    {
        CcrDistances.CheckSizes(op, rows, hw, 1);
        Launch.SameLength(op, matrix, (long)rows * hw, "distance matrix and (rows, HW)");
        Launch.SameLength(op, anchors, rows, "anchors and rows");
    }

    // one group per row; GroupStats' per-warp slots need a group of whole warps, at most MaxWarps
    internal static KernelConfig RowGrid(Device d, int rows)
    {
        BlockReduce.CheckGroup(d, d.GroupSize, "CCR row select");
        return new(Math.Clamp(rows, 1, 65535), d.GroupSize);
    }

    // Discrete labels have no bounds: the kernel never touches them, any ulong view will do.
    static ArrayView<ulong> BoundsView(Buf<ulong> bounds, Buf<float> fdist, int metric) =>
        metric == 0 ? fdist.View.SubView(0, fdist.Length / 2 * 2).Cast<ulong>() : bounds.View;

    /// <summary>Continuous labels: bounds (rows, 2) of the k nearest (positives) and k farthest
    /// (negatives) label distances of each row of ldist (rows, HW).</summary>
    public static void LabelTopKBounds(Device d, Buf<ulong> bounds, Buf<float> ldist, Buf<int> anchors, int rows, int hw, int k)
    {
        Check("LabelTopKBounds", ldist.Length, anchors.Length, rows, hw);
        Launch.SameLength("LabelTopKBounds", bounds.Length, 2L * rows, "bounds and (rows, 2)");
        if (k <= 0) throw new ArgumentException($"LabelTopKBounds: k = {k}");
        if (rows == 0) return;
        var a = new Args { Stage = StageBounds, Metric = 1, Hw = hw, Rows = rows, TopK = k };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, default, default, default, ldist, ldist, anchors); return; }
        K(d).Select(RowGrid(d, rows), bounds.View, anchors.View, ldist.View, anchors.View, ldist.View, ldist.View, anchors.View,
                    anchors.View, anchors.View, a);
    }

    /// <summary>posIdx (rows) and its feature distance dpos (rows): the hardest (or a random)
    /// positive of each row; -1 and 0 where a row has none.</summary>
    public static void HardestPositive(Device d, Buf<int> posIdx, Buf<float> dpos, Buf<float> fdist, Buf<float> ldist,
                                       Buf<ulong> bounds, Buf<int> anchors, int rows, int hw, CcrLabelMetric metric,
                                       CcrSampling mode, uint seed)
    {
        Check("HardestPositive", fdist.Length, anchors.Length, rows, hw);
        Launch.SameLength("HardestPositive", ldist.Length, fdist.Length, "ldist and fdist");
        Launch.SameLength("HardestPositive", posIdx.Length, rows, "posIdx and rows");
        Launch.SameLength("HardestPositive", dpos.Length, rows, "dpos and rows");
        if (metric != CcrLabelMetric.Discrete) Launch.SameLength("HardestPositive", bounds.Length, 2L * rows, "bounds and (rows, 2)");
        if (rows == 0) return;
        var a = new Args { Stage = StagePositive, Metric = (int)metric, Mode = (int)mode, Hw = hw, Rows = rows, Seed = seed };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, posIdx, dpos, default, fdist, ldist, anchors); return; }
        K(d).Select(RowGrid(d, rows), BoundsView(bounds, fdist, a.Metric), posIdx.View, dpos.View, posIdx.View, fdist.View,
                    ldist.View, anchors.View, anchors.View, anchors.View, a);
    }

    /// <summary>negIdx (rows, numNeg): semi-hard (or random) negatives of each row in pixel order,
    /// -1 where fewer exist. Needs posIdx and dpos from <see cref="HardestPositive"/>.</summary>
    public static void SemiHardNegatives(Device d, Buf<int> negIdx, Buf<int> posIdx, Buf<float> dpos, Buf<float> fdist,
                                         Buf<float> ldist, Buf<ulong> bounds, Buf<int> anchors, int rows, int hw, int numNeg,
                                         CcrLabelMetric metric, CcrSampling mode, uint seed)
    {
        CheckNegatives("SemiHardNegatives", negIdx, posIdx, dpos, fdist, ldist, bounds, anchors, rows, hw, numNeg, metric);
        if (rows == 0) return;
        var a = new Args { Stage = StageNegatives, Metric = (int)metric, Mode = (int)mode, Hw = hw, Rows = rows, NumNeg = numNeg, Seed = seed };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, posIdx, dpos, negIdx, fdist, ldist, anchors); return; }
        K(d).Select(RowGrid(d, rows), BoundsView(bounds, fdist, a.Metric), posIdx.View, dpos.View, negIdx.View, fdist.View,
                    ldist.View, anchors.View, anchors.View, anchors.View, a);
    }

    /// <summary>
    /// All three stages in one launch: bounds (rows, 2; continuous labels only, else untouched),
    /// posIdx and dpos (rows), negIdx (rows, numNeg). The random stream of the Basic variant is
    /// <paramref name="seed"/>, or, with <paramref name="counter"/> (one int on the device),
    /// <see cref="CcrAnchors.MiningSeed"/>(seed, counter[0]) read by the kernel.
    /// </summary>
    public static void Mine(Device d, Buf<ulong> bounds, Buf<int> posIdx, Buf<float> dpos, Buf<int> negIdx,
                            Buf<float> fdist, Buf<float> ldist, Buf<int> anchors, int rows, int hw, int topK, int numNeg,
                            CcrLabelMetric metric, CcrSampling mode, uint seed, Buf<int>? counter = null)
    {
        CheckNegatives("CcrSelect.Mine", negIdx, posIdx, dpos, fdist, ldist, bounds, anchors, rows, hw, numNeg, metric);
        if (topK <= 0) throw new ArgumentException($"CcrSelect.Mine: k = {topK}");
        if (counter is { } cb) Launch.SameLength("CcrSelect.Mine", cb.Length, 1, "counter and a scalar");
        if (rows == 0) return;
        var a = new Args
        {
            Stage = StageAll, Metric = (int)metric, Mode = (int)mode, Hw = hw, Rows = rows, TopK = topK, NumNeg = numNeg,
            Seed = seed, UseCounter = counter.HasValue ? 1 : 0,
        };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, posIdx, dpos, negIdx, fdist, ldist, anchors, counter); return; }
        K(d).Select(RowGrid(d, rows), BoundsView(bounds, fdist, a.Metric), posIdx.View, dpos.View, negIdx.View, fdist.View,
                    ldist.View, anchors.View, anchors.View, (counter ?? anchors).View, a);
    }

    /// <summary>
    /// <see cref="Mine"/> for L1 and class labels without the label-distance matrix: labels
    /// (N, 1, HW) and valid (N, HW) as given to <see cref="CcrDistances.LabelDistances"/>, anchors
    /// (N, numAnchors). The CUDA variant recomputes each label distance where a pass needs it (see
    /// RowSource; the results equal Mine's on LabelDistances' matrix bit for bit). The CPU variant
    /// builds the matrix in a pooled buffer and mines from it (its passes run in cache anyway).
    /// </summary>
    public static void MineFromLabels(Device d, Buf<ulong> bounds, Buf<int> posIdx, Buf<float> dpos, Buf<int> negIdx,
                                      Buf<float> fdist, Buf<float> labels, Buf<int> valid, Buf<int> anchors, int n, int numAnchors,
                                      int hw, int topK, int numNeg, CcrLabelMetric metric, CcrSampling mode, uint seed,
                                      Buf<int>? counter = null)
    {
        const string op = "CcrSelect.MineFromLabels";
        if (metric == CcrLabelMetric.Angle) throw new ArgumentException($"{op}: angles are mined from the label-distance matrix (Mine)");
        CcrDistances.CheckSizes(op, n, hw, numAnchors);
        int rows = n * numAnchors;
        Launch.SameLength(op, labels.Length, (long)n * hw, "labels and (N, 1, HW)");
        Launch.SameLength(op, valid.Length, (long)n * hw, "valid and (N, HW)");
        if (CcrDistances.Host(d))
        {
            using var block = d.Pool.Rent(4L * rows * hw);
            var ldist = new Buf<float>(block, 0, (long)rows * hw);
            CcrDistances.LabelDistances(d, ldist, labels, valid, anchors, n, 1, hw, numAnchors, metric);
            Mine(d, bounds, posIdx, dpos, negIdx, fdist, ldist, anchors, rows, hw, topK, numNeg, metric, mode, seed, counter);
            return;
        }
        CheckNegatives(op, negIdx, posIdx, dpos, fdist, fdist, bounds, anchors, rows, hw, numNeg, metric);
        if (topK <= 0) throw new ArgumentException($"{op}: k = {topK}");
        if (counter is { } cb) Launch.SameLength(op, cb.Length, 1, "counter and a scalar");
        if (rows == 0) return;
        var a = new Args
        {
            Stage = StageAll, Metric = (int)metric, Mode = (int)mode, Hw = hw, Rows = rows, TopK = topK, NumNeg = numNeg,
            Seed = seed, UseCounter = counter.HasValue ? 1 : 0, LabelMode = 1, NumAnchors = numAnchors,
        };
        K(d).Select(RowGrid(d, rows), BoundsView(bounds, fdist, a.Metric), posIdx.View, dpos.View, negIdx.View, fdist.View,
                    labels.View, valid.View, anchors.View, (counter ?? anchors).View, a);
    }

    static void CheckNegatives(string op, Buf<int> negIdx, Buf<int> posIdx, Buf<float> dpos, Buf<float> fdist, Buf<float> ldist,
                               Buf<ulong> bounds, Buf<int> anchors, int rows, int hw, int numNeg, CcrLabelMetric metric)
    {
        Check(op, fdist.Length, anchors.Length, rows, hw);
        Launch.SameLength(op, ldist.Length, fdist.Length, "ldist and fdist");
        Launch.SameLength(op, negIdx.Length, (long)rows * numNeg, "negIdx and (rows, numNeg)");
        Launch.SameLength(op, posIdx.Length, rows, "posIdx and rows");
        Launch.SameLength(op, dpos.Length, rows, "dpos and rows");
        if (metric != CcrLabelMetric.Discrete) Launch.SameLength(op, bounds.Length, 2L * rows, "bounds and (rows, 2)");
        if (numNeg <= 0 || numNeg > MaxNegatives) throw new ArgumentException($"{op}: numNeg {numNeg} outside [1, {MaxNegatives}]");
    }
}
