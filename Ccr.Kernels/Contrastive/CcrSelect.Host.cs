using System.Numerics;
using System.Runtime.CompilerServices;

namespace Ccr.Kernels.Contrastive;

/// <summary>The CPU variant of the mining: host code on the CPU accelerator's memory.</summary>
internal static partial class CcrSelect
{
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
