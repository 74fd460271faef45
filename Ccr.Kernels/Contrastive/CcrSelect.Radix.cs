using Ccr.Kernels.Ops;
using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Contrastive;

/// <summary>The CUDA variant's group-wide radix select, shared by the mining and the anchor sampler.</summary>
internal static partial class CcrSelect
{
    /// <summary>Where a key of a row comes from (mining distances, anchor hashes); a struct, so the
    /// kernel is specialised per source without a virtual call.</summary>
    internal interface IRowKeys { ulong Key(int i); }

    internal const int Bins = 256;
    /// <summary>A range of at most this many keys is finished by collecting it (below).</summary>
    internal const int CollectMax = 256;

    /// <summary>Shared memory of one <see cref="GroupSelect{TKeys}"/>: three rotating count
    /// histograms, two alternating sets of per-warp (count, smallest, largest key), and the
    /// collected keys of the last range.</summary>
    internal struct SelectShared
    {
        public ArrayView<int> Count;     // (3 * Bins)
        public ArrayView<int> WarpCount; // (2 * MaxWarps)
        public ArrayView<ulong> WarpLo;  // (2 * MaxWarps)
        public ArrayView<ulong> WarpHi;  // (2 * MaxWarps)
        public ArrayView<ulong> Keys;    // (CollectMax)
        public ArrayView<int> Collected; // (1)
        public ArrayView<ulong> Found;   // (1)

        public static SelectShared Allocate() => new()
        {
            Count = SharedMemory.Allocate<int>(3 * Bins), WarpCount = SharedMemory.Allocate<int>(2 * BlockReduce.MaxWarps),
            WarpLo = SharedMemory.Allocate<ulong>(2 * BlockReduce.MaxWarps), WarpHi = SharedMemory.Allocate<ulong>(2 * BlockReduce.MaxWarps),
            Keys = SharedMemory.Allocate<ulong>(CollectMax), Collected = SharedMemory.Allocate<int>(1), Found = SharedMemory.Allocate<ulong>(1),
        };
    }

    /// <summary>Count, smallest and largest key of a set of keys.</summary>
    internal struct RangeStats
    {
        public int Count;
        public ulong Lo, Hi;
    }

    /// <summary>
    /// The group's (count, min, max) from each thread's: an XOR butterfly of warp shuffles, then lane 0
    /// of each warp writes its warp's triple into slot set <paramref name="set"/> (plain stores, no
    /// atomics), one barrier, and every thread folds the warps' triples in warp order. Exact integer
    /// operations, so the result does not depend on timing. Every thread must call it (barrier);
    /// consecutive calls alternate sets (a thread may write set s + 1 while another still reads s).
    /// </summary>
    internal static RangeStats GroupStats(SelectShared sh, int set, int c, ulong lo, ulong hi)
    {
        for (int m = Warp.WarpSize / 2; m > 0; m >>= 1)
        {
            c += Warp.ShuffleXor(c, m);
            ulong ol = Warp.ShuffleXor(lo, m), oh = Warp.ShuffleXor(hi, m);
            if (ol < lo) lo = ol;
            if (oh > hi) hi = oh;
        }
        int s = set * BlockReduce.MaxWarps, warps = Group.DimX / Warp.WarpSize;
        if (Warp.IsFirstLane) { sh.WarpCount[s + Warp.WarpIdx] = c; sh.WarpLo[s + Warp.WarpIdx] = lo; sh.WarpHi[s + Warp.WarpIdx] = hi; }
        Group.Barrier();
        var r = new RangeStats { Count = 0, Lo = None, Hi = 0 };
        for (int w = 0; w < warps; w++)
        {
            r.Count += sh.WarpCount[s + w];
            ulong l = sh.WarpLo[s + w], h = sh.WarpHi[s + w];
            if (l < r.Lo) r.Lo = l;
            if (h > r.Hi) r.Hi = h;
        }
        return r;
    }

    /// <summary>
    /// The k-th smallest eligible key of a row (None when fewer than k are eligible), by a radix
    /// select whose digits follow the keys' actual range, so that passes discriminate.
    ///
    /// Why: a fixed MSB-first schedule over the 64-bit composite key wastes passes whenever the keys
    /// share their leading bits, and CCR's keys do: unit-norm feature distances lie in [0, 2], so
    /// their order-preserving keys share the sign bit and most of the exponent (everything in
    /// [0.5, 2) has the same top byte), and the pixel index of a 120x160 map uses 15 of its 32 bits.
    /// A first pass finds the count, smallest and largest eligible key (k == 1 and k == count end
    /// here). A range of more than <see cref="CollectMax"/> keys then takes histogram passes: each
    /// counts the 8-bit digit that starts at the highest bit in which the range's lower and upper
    /// bound differ (all of the range shares the bits above it), and finds the bin holding the k-th
    /// key, which becomes the next range. The same pass also finds the range's own count, smallest
    /// and largest key; the next range's bounds are the bin's edges, tightened to that smallest
    /// (largest) key where the bin holds it, and the select ends there when the k-th is that key.
    /// A range of at most <see cref="CollectMax"/> keys (at the paper's scale usually the first
    /// bin: a top-128 of 19,200 distances has ~75 keys a bin) is finished in one more pass: its keys
    /// are collected into shared memory and the k-th is the one with k - 1 smaller keys.
    ///
    /// Atomics: the histogram's per-key increment (a 32-bit shared add, aggregated per warp by the
    /// hardware's ATOMS.POPC.INC) and the collection's slot counter; the (count, min, max) are
    /// warp-aggregated (<see cref="GroupStats"/>), so no 64-bit atomic (a compare-and-swap loop in
    /// SASS) is left. Results are exact: the k-th key does not depend on any order of execution.
    /// Histograms rotate through three buffers, so a pass needs one barrier (the buffer zeroed in
    /// pass p was last scanned before pass p's barrier).
    /// </summary>
    internal static ulong GroupSelect<TKeys>(SelectShared sh, TKeys keys, int n, int k) where TKeys : struct, IRowKeys
    {
        int t = Group.IdxX, g = Group.DimX;
        Group.Barrier(); // the previous selection has read its results
        for (int j = t; j < 3 * Bins; j += g) sh.Count[j] = 0;
        if (t == 0) sh.Collected[0] = 0;

        // pass 0: count, min and max of the eligible keys (the barrier in GroupStats also publishes the zeroing)
        int c0 = 0; ulong mn = None, mx = 0;
        for (int i = t; i < n; i += g)
        {
            ulong key = keys.Key(i);
            if (key == None) continue;
            c0++;
            if (key < mn) mn = key;
            if (key > mx) mx = key;
        }
        var r = GroupStats(sh, 0, c0, mn, mx);
        if (r.Count < k) return None;
        if (k == 1) return r.Lo;
        if (k == r.Count) return r.Hi;

        // the range: eligible keys whose bits selected by `above` equal `prefix`, with bounds lo <= hi
        int cnt = r.Count, kRem = k;
        ulong lo = r.Lo, hi = r.Hi, above = 0, prefix = 0;
        for (int step = 1; ; step++)
        {
            if (cnt <= CollectMax) return Collect(sh, keys, n, above, prefix, kRem);
            // lo < hi here (the range holds more than one key): the digit starts at their highest differing bit
            int top = 63 - IntrinsicMath.LeadingZeroCount(lo ^ hi);
            int shift = XMath.Max(top - 7, 0), bins = 1 << (top - shift + 1);
            ulong digitMask = (ulong)(bins - 1), binBase = lo & (top == 63 ? 0UL : ~0UL << (top + 1));
            int h = (step % 3) * Bins, c = 0;
            mn = None; mx = 0;
            for (int i = t; i < n; i += g)
            {
                ulong key = keys.Key(i);
                if (key == None || (key & above) != prefix) continue;
                Atomic.Add(ref sh.Count[h + (int)((key >> shift) & digitMask)], 1);
                c++;
                if (key < mn) mn = key;
                if (key > mx) mx = key;
            }
            r = GroupStats(sh, step & 1, c, mn, mx); // r.Count == cnt
            int below = 0, digit = 0;
            for (int b = 0; b < bins; b++)
            {
                int cb = sh.Count[h + b];
                if (below + cb >= kRem) { digit = b; break; }
                below += cb;
            }
            int z = ((step + 2) % 3) * Bins;
            for (int j = t; j < Bins; j += g) sh.Count[z + j] = 0;
            kRem -= below;
            cnt = sh.Count[h + digit];
            ulong binLo = binBase | ((ulong)digit << shift);
            if (shift == 0) return binLo; // a bin of one key value
            ulong binHi = binLo | ((1UL << shift) - 1);
            bool hasLo = (int)((r.Lo >> shift) & digitMask) == digit, hasHi = (int)((r.Hi >> shift) & digitMask) == digit;
            if (hasLo && kRem == 1) return r.Lo;
            if (hasHi && kRem == cnt) return r.Hi;
            lo = hasLo ? r.Lo : binLo;
            hi = hasHi ? r.Hi : binHi;
            above = ~0UL << shift;
            prefix = binLo;
        }
    }

    /// <summary>The kRem-th smallest key of a range of at most <see cref="CollectMax"/> keys: one pass
    /// collects them into shared memory (in any order), then thread j ranks key j against all of
    /// them; the key with fewer than kRem smaller keys and at least kRem smaller-or-equal ones is
    /// the answer (unique as a value, even if keys repeated).</summary>
    static ulong Collect<TKeys>(SelectShared sh, TKeys keys, int n, ulong above, ulong prefix, int kRem) where TKeys : struct, IRowKeys
    {
        int t = Group.IdxX, g = Group.DimX;
        for (int i = t; i < n; i += g)
        {
            ulong key = keys.Key(i);
            if (key == None || (key & above) != prefix) continue;
            int s = Atomic.Add(ref sh.Collected[0], 1);
            if (s < CollectMax) sh.Keys[s] = key;
        }
        Group.Barrier();
        int m = XMath.Min(sh.Collected[0], CollectMax);
        for (int j = t; j < m; j += g)
        {
            ulong x = sh.Keys[j];
            int less = 0, notMore = 0;
            for (int q = 0; q < m; q++)
            {
                ulong y = sh.Keys[q];
                less += y < x ? 1 : 0;
                notMore += y <= x ? 1 : 0;
            }
            if (less < kRem && notMore >= kRem) sh.Found[0] = x;
        }
        Group.Barrier();
        return sh.Found[0];
    }
}
