using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Ccr.Kernels;

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
/// anew. CUDA variant: one group per row, a radix select guided by the keys' range (below).
/// CPU variant: Parallel.For over rows with a bounded max-heap. Index outputs have no backward.
/// </summary>
public static partial class CcrSelect
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

    /// <summary>Where a key of a row comes from (mining distances, anchor hashes); a struct, so the
    /// kernel is specialised per source without a virtual call.</summary>
    internal interface IRowKeys { ulong Key(int i); }

    internal const int Bins = 256;

    /// <summary>Shared memory of one <see cref="GroupSelect{TKeys}"/>: three rotating histograms of
    /// (count, smallest key, largest key) per bin, and the first pass's (count, min, max).</summary>
    internal struct SelectShared
    {
        public ArrayView<int> Count;   // (3 * Bins)
        public ArrayView<ulong> Lo;    // (3 * Bins)
        public ArrayView<ulong> Hi;    // (3 * Bins)
        public ArrayView<ulong> Range; // (2): min, max of the eligible keys
        public ArrayView<int> Total;   // (1)

        public static SelectShared Allocate() => new()
        {
            Count = SharedMemory.Allocate<int>(3 * Bins), Lo = SharedMemory.Allocate<ulong>(3 * Bins),
            Hi = SharedMemory.Allocate<ulong>(3 * Bins), Range = SharedMemory.Allocate<ulong>(2),
            Total = SharedMemory.Allocate<int>(1),
        };
    }

    /// <summary>
    /// The k-th smallest eligible key of a row (None when fewer than k are eligible), by a radix
    /// select whose digits follow the keys' actual range, so that every pass discriminates.
    ///
    /// Why: a fixed MSB-first schedule over the 64-bit composite key wastes passes whenever the keys
    /// share their leading bits, and CCR's keys do: unit-norm feature distances lie in [0, 2], so
    /// their order-preserving keys share the sign bit and most of the exponent (everything in
    /// [0.5, 2) has the same top byte), and the pixel index of a 120x160 map uses 15 of its 32 bits.
    /// Here a first pass finds the count, smallest and largest eligible key. Every later pass takes
    /// the 8-bit digit that starts at the highest bit in which the smallest and largest remaining
    /// key differ: all remaining keys share the bits above it (they lie between two keys that do),
    /// and the smallest and largest fall into different bins, so no pass is spent on a digit that all
    /// keys share. Each bin records its count and its smallest and largest key (shared-memory
    /// integer atomics: the result does not depend on their order). After a pass, the bin holding
    /// the k-th key gives the next range; the select ends as soon as the key is known without
    /// another pass: k-th of a bin is its smallest (kRem == 1) or its largest (kRem == count). So
    /// k == 1 (the hardest positive) costs the one min/max pass, and a top-128 of 19,200 distances
    /// usually ends after two or three histogram passes instead of the fixed schedule's six.
    /// Histograms rotate through three buffers, so a pass needs one barrier (the buffer zeroed in
    /// pass p was last scanned before pass p's barrier).
    /// </summary>
    internal static ulong GroupSelect<TKeys>(SelectShared sh, TKeys keys, int n, int k) where TKeys : struct, IRowKeys
    {
        int t = Group.IdxX, g = Group.DimX;
        Group.Barrier(); // the previous selection has read its results
        for (int j = t; j < 3 * Bins; j += g) { sh.Count[j] = 0; sh.Lo[j] = None; sh.Hi[j] = 0; }
        if (t == 0) { sh.Total[0] = 0; sh.Range[0] = None; sh.Range[1] = 0; }
        Group.Barrier();

        // pass 0: count, min and max (per thread, then one shared atomic each)
        int c0 = 0; ulong mn = None, mx = 0;
        for (int i = t; i < n; i += g)
        {
            ulong key = keys.Key(i);
            if (key == None) continue;
            c0++;
            if (key < mn) mn = key;
            if (key > mx) mx = key;
        }
        if (c0 > 0) { Atomic.Add(ref sh.Total[0], c0); Atomic.Min(ref sh.Range[0], mn); Atomic.Max(ref sh.Range[1], mx); }
        Group.Barrier();
        int total = sh.Total[0];
        ulong lo = sh.Range[0], hi = sh.Range[1];
        if (total < k) return None;
        if (k == 1) return lo;
        if (k == total) return hi;

        int kRem = k;
        for (int step = 0; ; step++)
        {
            // lo < hi here: the digit starts at their highest differing bit
            int top = 63 - IntrinsicMath.LeadingZeroCount(lo ^ hi);
            int shift = XMath.Max(top - 7, 0), bins = 1 << (top - shift + 1);
            ulong above = top == 63 ? 0UL : ~0UL << (top + 1), prefix = lo & above;
            ulong digitMask = (ulong)(bins - 1);
            int h = (step % 3) * Bins;
            for (int i = t; i < n; i += g)
            {
                ulong key = keys.Key(i);
                if (key == None || (key & above) != prefix) continue;
                int b = h + (int)((key >> shift) & digitMask);
                Atomic.Add(ref sh.Count[b], 1);
                Atomic.Min(ref sh.Lo[b], key);
                Atomic.Max(ref sh.Hi[b], key);
            }
            Group.Barrier();
            int below = 0, digit = 0;
            for (int b = 0; b < bins; b++)
            {
                int c = sh.Count[h + b];
                if (below + c >= kRem) { digit = b; break; }
                below += c;
            }
            int z = ((step + 2) % 3) * Bins;
            for (int j = t; j < Bins; j += g) { sh.Count[z + j] = 0; sh.Lo[z + j] = None; sh.Hi[z + j] = 0; }
            kRem -= below;
            int cnt = sh.Count[h + digit];
            lo = sh.Lo[h + digit];
            hi = sh.Hi[h + digit];
            if (kRem == 1) return lo;
            if (kRem == cnt) return hi;
        }
    }

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
            Select = d.Accelerator.LoadStreamKernel<ArrayView<ulong>, ArrayView<int>, ArrayView<float>, ArrayView<int>,
                ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, Args>(SelectKernel);
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long matrix, long anchors, int rows, int hw)
    {
        CcrDistances.CheckSizes(op, rows, hw, 1);
        Launch.SameLength(op, matrix, (long)rows * hw, "distance matrix and (rows, HW)");
        Launch.SameLength(op, anchors, rows, "anchors and rows");
    }

    internal static KernelConfig RowGrid(Device d, int rows) => new(Math.Clamp(rows, 1, 65535), d.GroupSize);

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

    // ---------------------------------------------------------------- CPU variant (host code)

    static unsafe void SelectHost(Args a, Buf<ulong> bounds, Buf<int> posIdx, Buf<float> dpos, Buf<int> negIdx,
                                  Buf<float> fdist, Buf<float> ldist, Buf<int> anchors, Buf<int>? counter = null)
    {
        float* fd = fdist.Ptr, ld = ldist.Ptr; int* an = anchors.Ptr;
        bool all = a.Stage == StageAll;
        ulong* bo = a.Metric != 0 || a.Stage == StageBounds ? bounds.Ptr : null;
        int* pos = a.Stage != StageBounds ? posIdx.Ptr : null; float* dp = a.Stage != StageBounds ? dpos.Ptr : null;
        int* neg = a.Stage >= StageNegatives ? negIdx.Ptr : null;
        uint seed = counter is { } cb ? CcrAnchors.MiningSeed(a.Seed, cb.Ptr[0]) : a.Seed;
        Parallel.For(0, a.Rows, row =>
        {
            int anc = an[row], hw = a.Hw;
            float* f = fd + (long)row * hw, l = ld + (long)row * hw;
            ulong posB = None, negB = None;
            if (bo != null)
            {
                if (a.Stage == StageBounds || all)
                {
                    posB = bo[2 * row] = HostSelect(PosTopK, a, row, anc, f, l, None, None, 0f, a.TopK, seed);
                    negB = bo[2 * row + 1] = HostSelect(NegTopK, a, row, anc, f, l, posB, None, 0f, a.TopK, seed);
                }
                else { posB = bo[2 * row]; negB = bo[2 * row + 1]; }
            }
            if (a.Stage == StageBounds) return;
            if (a.Stage == StagePositive || all)
            {
                ulong b = HostSelect(a.Mode == 0 ? PosHard : PosBasic, a, row, anc, f, l, posB, negB, 0f, 1, seed);
                int pi = b == None ? -1 : (int)(uint)b;
                pos[row] = pi;
                dp[row] = pi < 0 ? 0f : f[pi];
            }
            if (a.Stage == StagePositive) return;
            int* o = neg + (long)row * a.NumNeg;
            int m = 0;
            if (pos[row] >= 0)
            {
                int what = a.Mode == 0 ? NegSemiHard : NegBasic;
                ulong b = HostSelect(what, a, row, anc, f, l, posB, negB, dp[row], a.NumNeg, seed);
                var filter = new HostFilter(what, a.Metric, f, l, posB, negB);
                if (b != None) filter.Tighten(b);
                for (int i = 0; i < hw && m < a.NumNeg; i++)
                {
                    if (i % Vector<float>.Count == 0 && i + Vector<float>.Count <= hw && filter.Candidates(i) == Vector<int>.Zero)
                    {
                        i += Vector<float>.Count - 1; // none of these 16 can be <= b
                        continue;
                    }
                    ulong key = KeyOf(what, a.Metric, row, i, anc, l[i], f[i], posB, negB, dp[row], seed);
                    if (key != None && key <= b) o[m++] = i;
                }
            }
            for (int j = m; j < a.NumNeg; j++) o[j] = -1;
        });
    }

    // The k-th smallest key of a row, through a bounded heap. Keys are only computed for pixels that
    // a SIMD pass cannot rule out 16 at a time: a pixel is out when its label distance puts it
    // outside the stage's label set (positives: ld at most the k-th nearest's, or 0 for classes;
    // negatives: ld at least the k-th farthest's, or not 0), or when, once the heap is full, its
    // sort value (sign * the distance the key orders by) exceeds the heap top's, so its key could
    // not enter. Lanes holding NaN always take the exact path. Same result as offering every key;
    // only ~k ln(HW / k) pixels compute keys once the heap has settled.
    static unsafe ulong HostSelect(int what, Args a, int row, int anc, float* f, float* l, ulong posB, ulong negB, float dpos,
                                   int k, uint seed)
    {
        var heap = new KSmallest(k);
        var filter = new HostFilter(what, a.Metric, f, l, posB, negB);
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i + w <= a.Hw; i += w)
            {
                var cand = filter.Candidates(i);
                if (cand == Vector<int>.Zero) continue;
                for (int j = 0; j < w; j++)
                {
                    if (cand[j] == 0) continue;
                    ulong key = KeyOf(what, a.Metric, row, i + j, anc, l[i + j], f[i + j], posB, negB, dpos, seed);
                    if (key == None) continue;
                    heap.Offer(key);
                    if (heap.Bound != None) filter.Tighten(heap.Bound);
                }
            }
        for (; i < a.Hw; i++)
        {
            ulong key = KeyOf(what, a.Metric, row, i, anc, l[i], f[i], posB, negB, dpos, seed);
            if (key != None) heap.Offer(key);
        }
        return heap.Bound;
    }

    /// <summary>The SIMD pre-filter of <see cref="HostSelect"/> (see there).</summary>
    unsafe struct HostFilter
    {
        readonly float* _sv, _l;
        readonly Vector<float> _sign;
        readonly int _labelRule; // 0 none, 1 ld == 0, 2 ld != 0, 3 ld <= _lb, 4 ld >= _lb
        readonly Vector<float> _lb;
        Vector<float> _thr;

        public HostFilter(int what, int metric, float* f, float* l, ulong posB, ulong negB)
        {
            _l = l;
            _sv = what is PosTopK or NegTopK ? l : what is PosHard or NegSemiHard ? f : null;
            _sign = new Vector<float>(what is NegTopK or PosHard ? -1f : 1f);
            _thr = new Vector<float>(float.PositiveInfinity);
            bool pos = what is PosHard or PosBasic, neg = what is NegSemiHard or NegBasic;
            ulong bound = pos ? posB : negB;
            _labelRule = !pos && !neg ? 0 : metric == 0 ? (pos ? 1 : 2) : bound == None ? 0 : pos ? 3 : 4;
            // negatives order by OrderedKey(-ld): -ld <= x  <=>  ld >= -x
            float lb = bound == None ? 0f : FromOrderedKey((uint)(bound >> 32));
            _lb = new Vector<float>(pos ? lb : -lb);
        }

        /// <summary>The heap is full with top key <paramref name="top"/>: larger sort values are out.</summary>
        public void Tighten(ulong top) => _thr = new Vector<float>(FromOrderedKey((uint)(top >> 32)));

        public Vector<int> Candidates(int i)
        {
            var l = Unsafe.ReadUnaligned<Vector<float>>(_l + i);
            var keep = _labelRule switch
            {
                1 => Vector.Equals(l, Vector<float>.Zero),
                2 => ~Vector.Equals(l, Vector<float>.Zero),
                3 => Vector.LessThanOrEqual(l, _lb),
                4 => Vector.GreaterThanOrEqual(l, _lb),
                _ => new Vector<int>(-1),
            };
            var nan = ~Vector.Equals(l, l);
            if (_sv != null)
            {
                var v = Unsafe.ReadUnaligned<Vector<float>>(_sv + i);
                keep &= Vector.LessThanOrEqual(v * _sign, _thr);
                nan |= ~Vector.Equals(v, v);
            }
            return keep | nan;
        }
    }

    /// <summary>The float whose <see cref="OrderedKey"/> is k (+0 for the key of -0 and +0).</summary>
    public static float FromOrderedKey(uint k) =>
        BitConverter.UInt32BitsToSingle((k & 0x80000000u) != 0 ? k & 0x7FFFFFFFu : ~k);

    /// <summary>The k smallest keys seen, as a bounded max-heap; <see cref="Bound"/> is the k-th
    /// smallest, or <see cref="None"/> while fewer than k were offered.</summary>
    internal sealed class KSmallest(int k)
    {
        readonly ulong[] _heap = new ulong[k];
        int _size;

        public ulong Bound => _size < _heap.Length ? None : _heap[0];

        public void Offer(ulong key)
        {
            var heap = _heap;
            int k = heap.Length;
            if (_size < k)
            {
                int c = _size++;
                heap[c] = key;
                while (c > 0 && heap[(c - 1) / 2] < heap[c]) { (heap[c], heap[(c - 1) / 2]) = (heap[(c - 1) / 2], heap[c]); c = (c - 1) / 2; }
            }
            else if (key < heap[0])
            {
                heap[0] = key;
                int c = 0;
                while (true)
                {
                    int lft = 2 * c + 1, r = lft + 1, m = c;
                    if (lft < k && heap[lft] > heap[m]) m = lft;
                    if (r < k && heap[r] > heap[m]) m = r;
                    if (m == c) break;
                    (heap[c], heap[m]) = (heap[m], heap[c]);
                    c = m;
                }
            }
        }
    }
}
