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
/// pixels were eligible, and all of them are taken. Three stages, one launcher each:
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
/// Random choices are the smallest keys of a hash of (seed, row, pixel): a uniform choice without
/// replacement that both variants make identically. CUDA variant: one group per row, an MSB-first
/// radix select with 8-bit digits and shared-memory histograms (5-8 barriers per selection). CPU variant:
/// Parallel.For over rows with a bounded max-heap. Index outputs have no backward.
/// </summary>
public static partial class CcrSelect
{
    public const ulong None = ulong.MaxValue;
    /// <summary>Largest C_neg the CUDA variant's shared buffer holds.</summary>
    public const int MaxNegatives = 64;

    const int PosTopK = 0, NegTopK = 1, PosHard = 2, PosBasic = 3, NegSemiHard = 4, NegBasic = 5;

    /// <summary>Scalar arguments of the selection kernel (one struct keeps the signature short).</summary>
    public struct Args
    {
        public int Stage, Metric, Mode, Hw, Rows, K, IdxBits;
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

    public static int IndexBits(int hw) => hw <= 1 ? 1 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(hw - 1));

    // ---------------------------------------------------------------- CUDA variant: one group per row

    // The k-th smallest eligible key of the row (None when fewer than k are eligible), by an MSB-first
    // radix select with 8-bit digits over the bits keys can use (4 digits of the float key, then
    // ceil(idxBits / 8) of the pixel index): each pass histograms the keys that match the digits
    // chosen so far, and every thread scans the histogram to pick the digit holding the k-th key.
    // hist: 3 shared histograms used round-robin, so a pass needs one barrier (the one zeroed in
    // pass p was last scanned before pass p's barrier). Barriers are what the CPU accelerator
    // punishes, so fewer passes matter more than the 256-bin scans.
    static ulong GroupSelect(ArrayView<int> hist, ArrayView<float> fdist, ArrayView<float> ldist, int what, int metric,
                             int row, int hw, int anc, ulong posB, ulong negB, float dpos, uint seed, int k, int idxBits)
    {
        int t = Group.IdxX, g = Group.DimX;
        int rb = row * hw;
        Group.Barrier();
        for (int j = t; j < 3 * Bins; j += g) hist[j] = 0;
        Group.Barrier();
        ulong prefix = 0, mask = 0;
        int kRem = k;
        for (int step = 0; ; step++)
        {
            int shift, width;
            if (step < 4) { shift = 56 - 8 * step; width = 8; }
            else
            {
                int rem = idxBits - 8 * (step - 4);
                if (rem <= 0) break;
                width = XMath.Min(8, rem); shift = rem - width;
            }
            ulong digitMask = (1UL << width) - 1;
            int h = (step % 3) * Bins;
            for (int i = t; i < hw; i += g)
            {
                ulong key = KeyOf(what, metric, row, i, anc, ldist[rb + i], fdist[rb + i], posB, negB, dpos, seed);
                if (key != None && (key & mask) == prefix) Atomic.Add(ref hist[h + (int)((key >> shift) & digitMask)], 1);
            }
            Group.Barrier();
            int z = ((step + 2) % 3) * Bins;
            int total = 0, digit = -1, below = 0;
            for (int b = 0; b < Bins; b++)
            {
                int c = hist[h + b];
                if (digit < 0 && total + c >= kRem) { digit = b; below = total; }
                total += c;
            }
            for (int j = t; j < Bins; j += g) hist[z + j] = 0;
            if (digit < 0) return None; // only possible in the first pass: fewer than k eligible
            kRem -= below;
            prefix |= (ulong)digit << shift;
            mask |= digitMask << shift;
        }
        return prefix;
    }

    const int Bins = 256;

    static void SelectKernel(ArrayView<ulong> bounds, ArrayView<int> posIdx, ArrayView<float> dposOut, ArrayView<int> negIdx,
                             ArrayView<float> fdist, ArrayView<float> ldist, ArrayView<int> anchors, Args a)
    {
        var cnt = SharedMemory.Allocate<int>(3 * Bins);
        var sel = SharedMemory.Allocate<int>(MaxNegatives);
        var nsel = SharedMemory.Allocate<int>(1);
        int t = Group.IdxX, g = Group.DimX;
        for (int row = ILGPU.Grid.IdxX; row < a.Rows; row += ILGPU.Grid.DimX)
        {
            int anc = anchors[row];
            ulong posB = a.Metric == 0 || a.Stage == 0 ? None : bounds[2 * row];
            ulong negB = a.Metric == 0 || a.Stage == 0 ? None : bounds[2 * row + 1];
            if (a.Stage == 0)
            {
                ulong pb = GroupSelect(cnt, fdist, ldist, PosTopK, a.Metric, row, a.Hw, anc, None, None, 0f, a.Seed, a.K, a.IdxBits);
                ulong nb = GroupSelect(cnt, fdist, ldist, NegTopK, a.Metric, row, a.Hw, anc, pb, None, 0f, a.Seed, a.K, a.IdxBits);
                if (t == 0) { bounds[2 * row] = pb; bounds[2 * row + 1] = nb; }
            }
            else if (a.Stage == 1)
            {
                ulong b = GroupSelect(cnt, fdist, ldist, a.Mode == 0 ? PosHard : PosBasic, a.Metric, row, a.Hw, anc,
                                      posB, negB, 0f, a.Seed, 1, a.IdxBits);
                if (t == 0)
                {
                    int pi = b == None ? -1 : (int)(uint)b;
                    posIdx[row] = pi;
                    dposOut[row] = pi < 0 ? 0f : fdist[row * a.Hw + pi];
                }
            }
            else
            {
                int pi = posIdx[row];
                if (pi < 0)
                {
                    for (int j = t; j < a.K; j += g) negIdx[row * a.K + j] = -1;
                    continue;
                }
                float dp = dposOut[row];
                int what = a.Mode == 0 ? NegSemiHard : NegBasic;
                ulong b = GroupSelect(cnt, fdist, ldist, what, a.Metric, row, a.Hw, anc, posB, negB, dp, a.Seed, a.K, a.IdxBits);
                if (t == 0) nsel[0] = 0;
                Group.Barrier();
                int rb = row * a.Hw;
                for (int i = t; i < a.Hw; i += g)
                {
                    ulong key = KeyOf(what, a.Metric, row, i, anc, ldist[rb + i], fdist[rb + i], posB, negB, dp, a.Seed);
                    if (key != None && key <= b)
                    {
                        int s = Atomic.Add(ref nsel[0], 1);
                        if (s < MaxNegatives) sel[s] = i;
                    }
                }
                Group.Barrier();
                if (t == 0)
                {
                    int m = XMath.Min(nsel[0], a.K);
                    for (int x = 1; x < m; x++) // insertion sort: the output is in pixel order
                    {
                        int v = sel[x], y = x - 1;
                        while (y >= 0 && sel[y] > v) { sel[y + 1] = sel[y]; y--; }
                        sel[y + 1] = v;
                    }
                    for (int j = 0; j < a.K; j++) negIdx[row * a.K + j] = j < m ? sel[j] : -1;
                }
            }
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<ulong>, ArrayView<int>, ArrayView<float>, ArrayView<int>,
                               ArrayView<float>, ArrayView<float>, ArrayView<int>, Args> Select;

        public Kernels(Device d) =>
            Select = d.Accelerator.LoadStreamKernel<ArrayView<ulong>, ArrayView<int>, ArrayView<float>, ArrayView<int>,
                ArrayView<float>, ArrayView<float>, ArrayView<int>, Args>(SelectKernel);
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long matrix, long anchors, int rows, int hw)
    {
        CcrDistances.CheckSizes(op, rows, hw, 1);
        Launch.SameLength(op, matrix, (long)rows * hw, "distance matrix and (rows, HW)");
        Launch.SameLength(op, anchors, rows, "anchors and rows");
    }

    static KernelConfig RowGrid(Device d, int rows) => new(Math.Clamp(rows, 1, 65535), d.GroupSize);

    /// <summary>Continuous labels: bounds (rows, 2) of the k nearest (positives) and k farthest
    /// (negatives) label distances of each row of ldist (rows, HW).</summary>
    public static void LabelTopKBounds(Device d, Buf<ulong> bounds, Buf<float> ldist, Buf<int> anchors, int rows, int hw, int k)
    {
        Check("LabelTopKBounds", ldist.Length, anchors.Length, rows, hw);
        Launch.SameLength("LabelTopKBounds", bounds.Length, 2L * rows, "bounds and (rows, 2)");
        if (k <= 0) throw new ArgumentException($"LabelTopKBounds: k = {k}");
        if (rows == 0) return;
        var a = new Args { Stage = 0, Metric = 1, Hw = hw, Rows = rows, K = k, IdxBits = IndexBits(hw) };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, default, default, default, ldist, ldist, anchors); return; }
        K(d).Select(RowGrid(d, rows), bounds.View, anchors.View, ldist.View, anchors.View, ldist.View, ldist.View, anchors.View, a);
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
        var a = new Args { Stage = 1, Metric = (int)metric, Mode = (int)mode, Hw = hw, Rows = rows, K = 1, IdxBits = IndexBits(hw), Seed = seed };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, posIdx, dpos, default, fdist, ldist, anchors); return; }
        var bv = metric == CcrLabelMetric.Discrete ? fdist.View.SubView(0, fdist.Length / 2 * 2).Cast<ulong>() : bounds.View; // discrete: never read
        K(d).Select(RowGrid(d, rows), bv, posIdx.View, dpos.View, posIdx.View, fdist.View, ldist.View, anchors.View, a);
    }

    /// <summary>negIdx (rows, numNeg): semi-hard (or random) negatives of each row in pixel order,
    /// -1 where fewer exist. Needs posIdx and dpos from <see cref="HardestPositive"/>.</summary>
    public static void SemiHardNegatives(Device d, Buf<int> negIdx, Buf<int> posIdx, Buf<float> dpos, Buf<float> fdist,
                                         Buf<float> ldist, Buf<ulong> bounds, Buf<int> anchors, int rows, int hw, int numNeg,
                                         CcrLabelMetric metric, CcrSampling mode, uint seed)
    {
        Check("SemiHardNegatives", fdist.Length, anchors.Length, rows, hw);
        Launch.SameLength("SemiHardNegatives", ldist.Length, fdist.Length, "ldist and fdist");
        Launch.SameLength("SemiHardNegatives", negIdx.Length, (long)rows * numNeg, "negIdx and (rows, numNeg)");
        Launch.SameLength("SemiHardNegatives", posIdx.Length, rows, "posIdx and rows");
        Launch.SameLength("SemiHardNegatives", dpos.Length, rows, "dpos and rows");
        if (metric != CcrLabelMetric.Discrete) Launch.SameLength("SemiHardNegatives", bounds.Length, 2L * rows, "bounds and (rows, 2)");
        if (numNeg <= 0 || numNeg > MaxNegatives) throw new ArgumentException($"SemiHardNegatives: numNeg {numNeg} outside [1, {MaxNegatives}]");
        if (rows == 0) return;
        var a = new Args { Stage = 2, Metric = (int)metric, Mode = (int)mode, Hw = hw, Rows = rows, K = numNeg, IdxBits = IndexBits(hw), Seed = seed };
        if (CcrDistances.Host(d)) { SelectHost(a, bounds, posIdx, dpos, negIdx, fdist, ldist, anchors); return; }
        var bv = metric == CcrLabelMetric.Discrete ? fdist.View.SubView(0, fdist.Length / 2 * 2).Cast<ulong>() : bounds.View; // discrete: never read
        K(d).Select(RowGrid(d, rows), bv, posIdx.View, dpos.View, negIdx.View, fdist.View, ldist.View, anchors.View, a);
    }

    // ---------------------------------------------------------------- CPU variant (host code)

    static unsafe void SelectHost(Args a, Buf<ulong> bounds, Buf<int> posIdx, Buf<float> dpos, Buf<int> negIdx,
                                  Buf<float> fdist, Buf<float> ldist, Buf<int> anchors)
    {
        float* fd = fdist.Ptr, ld = ldist.Ptr; int* an = anchors.Ptr;
        ulong* bo = a.Metric != 0 || a.Stage == 0 ? bounds.Ptr : null;
        int* pos = a.Stage >= 1 ? posIdx.Ptr : null; float* dp = a.Stage >= 1 ? dpos.Ptr : null;
        int* neg = a.Stage == 2 ? negIdx.Ptr : null;
        Parallel.For(0, a.Rows, row =>
        {
            int anc = an[row], hw = a.Hw;
            float* f = fd + (long)row * hw, l = ld + (long)row * hw;
            ulong posB = bo != null && a.Stage > 0 ? bo[2 * row] : None, negB = bo != null && a.Stage > 0 ? bo[2 * row + 1] : None;
            if (a.Stage == 0)
            {
                ulong pb = HostSelect(PosTopK, a, row, anc, f, l, None, None, 0f, a.K);
                bo[2 * row] = pb;
                bo[2 * row + 1] = HostSelect(NegTopK, a, row, anc, f, l, pb, None, 0f, a.K);
            }
            else if (a.Stage == 1)
            {
                ulong b = HostSelect(a.Mode == 0 ? PosHard : PosBasic, a, row, anc, f, l, posB, negB, 0f, 1);
                int pi = b == None ? -1 : (int)(uint)b;
                pos[row] = pi;
                dp[row] = pi < 0 ? 0f : f[pi];
            }
            else
            {
                int* o = neg + (long)row * a.K;
                int m = 0;
                if (pos[row] >= 0)
                {
                    int what = a.Mode == 0 ? NegSemiHard : NegBasic;
                    ulong b = HostSelect(what, a, row, anc, f, l, posB, negB, dp[row], a.K);
                    for (int i = 0; i < hw && m < a.K; i++)
                    {
                        ulong key = KeyOf(what, a.Metric, row, i, anc, l[i], f[i], posB, negB, dp[row], a.Seed);
                        if (key != None && key <= b) o[m++] = i;
                    }
                }
                for (int j = m; j < a.K; j++) o[j] = -1;
            }
        });
    }

    // The k-th smallest eligible key of a row through a bounded max-heap of the k smallest seen.
    static unsafe ulong HostSelect(int what, Args a, int row, int anc, float* f, float* l, ulong posB, ulong negB, float dpos, int k)
    {
        Span<ulong> heap = k <= 512 ? stackalloc ulong[k] : new ulong[k];
        int size = 0;
        for (int i = 0; i < a.Hw; i++)
        {
            ulong key = KeyOf(what, a.Metric, row, i, anc, l[i], f[i], posB, negB, dpos, a.Seed);
            if (key == None) continue;
            if (size < k)
            {
                int c = size++;
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
        return size < k ? None : heap[0];
    }
}
