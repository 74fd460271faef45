using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels;

/// <summary>The CUDA variant's group-wide radix select, shared by the mining and the anchor sampler.</summary>
public static partial class CcrSelect
{
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
}
