using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Contrastive;

/// <summary>
/// CCR's anchors and random streams on the device, from a counter-based generator.
///
/// The regulariser keeps one int32 counter in device memory (a module buffer, so checkpoints save
/// it). Every random choice of a pair's evaluation is a pure hash of (seed, counter, ...), read by
/// the kernels themselves, and <see cref="Advance"/> increments the counter on the device after the
/// pair. Nothing random crosses from the host per step, so a captured CUDA graph that replays the
/// step draws new anchors each replay, and a resumed run continues the same sequence.
///
/// Anchors (N, C_A): per image, C_A pixels drawn uniformly without replacement among the valid
/// ones, written in pixel order, padded with -1 when fewer are valid. How: every valid pixel i of
/// image b gets the key (hash32(seed, counter, b, i), i) and the C_A smallest keys win. The hashes
/// are i.i.d. uniform, so every C_A-subset is equally likely (exactly so up to equal 32-bit hashes,
/// which go to the lower index: a bias of order C_A * HW / 2^32). CUDA variant: one group per
/// image, <see cref="CcrSelect.GroupSelect{TKeys}"/> for the C_A-th key, then an ordered compaction
/// (each thread owns a contiguous pixel range; a prefix sum of the per-thread counts places them).
/// CPU variant: Parallel.For over images with a bounded heap. Both give exactly
/// <see cref="Reference.Sample"/>'s anchors.
/// </summary>
internal static partial class CcrAnchors
{
    // ---------------------------------------------------------------- the counter-based hash

    /// <summary>SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijection of 64-bit words
    /// whose outputs pass BigCrush for consecutive inputs.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The stream of one pair evaluation: a hash of (seed, counter).</summary>
    public static ulong Stream(ulong seed, int counter) => Mix(seed ^ Mix((uint)counter + 0x9E3779B97F4A7C15UL));

    /// <summary>The 32-bit anchor key of pixel <paramref name="i"/> of image <paramref name="image"/>.</summary>
    public static uint AnchorKey(ulong stream, int image, int i) =>
        (uint)(Mix(stream + (((ulong)(uint)image << 32) | (uint)i) * 0x9E3779B97F4A7C15UL) >> 32);

    /// <summary>The seed of the Basic variant's mining hash for one pair evaluation (a stream
    /// separate from the anchors').</summary>
    public static uint MiningSeed(uint seed, int counter) => (uint)(Mix(Stream(seed, counter) ^ 0xD1B54A32D192ED03UL) >> 32);

    struct AnchorKeys : CcrSelect.IRowKeys
    {
        public ArrayView<int> Valid;
        public int Rb, Image;
        public ulong Stream;

        public ulong Key(int i) => Valid[Rb + i] != 0 ? CcrSelect.Compose(AnchorKey(Stream, Image, i), i) : CcrSelect.None;
    }

    // ---------------------------------------------------------------- kernels

    const int MaxGroup = 1024;

    // anchors (N, perImage); valid (N, HW); one group per image (grid-stride over images).
    static void SampleKernel(ArrayView<int> anchors, ArrayView<int> valid, ArrayView<int> counter, ulong seed,
                             int n, int hw, int perImage)
    {
        var sh = CcrSelect.SelectShared.Allocate();
        var counts = SharedMemory.Allocate<int>(MaxGroup);
        int t = Group.IdxX, g = Group.DimX;
        ulong stream = Stream(seed, counter[0]);
        for (int b = ILGPU.Grid.IdxX; b < n; b += ILGPU.Grid.DimX)
        {
            var keys = new AnchorKeys { Valid = valid, Rb = b * hw, Image = b, Stream = stream };
            ulong bound = CcrSelect.GroupSelect(sh, keys, hw, perImage);
            // ordered compaction: thread t owns pixels [i0, i1)
            int chunk = (hw + g - 1) / g, i0 = XMath.Min(t * chunk, hw), i1 = XMath.Min(i0 + chunk, hw);
            int mine = 0;
            for (int i = i0; i < i1; i++) { ulong k = keys.Key(i); if (k != CcrSelect.None && k <= bound) mine++; }
            Group.Barrier(); // the previous image's prefix sums are read
            counts[t] = mine;
            Group.Barrier();
            int before = 0, total = 0;
            for (int j = 0; j < g; j++) { int c = counts[j]; if (j < t) before += c; total += c; }
            int o = b * perImage + before;
            for (int i = i0; i < i1; i++) { ulong k = keys.Key(i); if (k != CcrSelect.None && k <= bound) anchors[o++] = i; }
            for (int j = total + t; j < perImage; j += g) anchors[b * perImage + j] = -1;
        }
    }

    static void AdvanceKernel(ArrayView<int> counter)
    {
        if (ILGPU.Grid.GlobalIndex.X == 0) counter[0] = counter[0] + 1;
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<int>, ArrayView<int>, ArrayView<int>, ulong, int, int, int> Sample;
        public readonly Action<KernelConfig, ArrayView<int>> Advance;

        public Kernels(Device d)
        {
            Sample = d.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, ulong, int, int, int>(SampleKernel);
            Advance = d.Load<ArrayView<int>>(AdvanceKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    /// <summary>anchors (N, perImage) = per image, perImage valid pixels (valid (N, HW) != 0) drawn
    /// uniformly without replacement with the stream of (seed, counter[0]), in pixel order, -1 padded.</summary>
    public static void SampleAnchors(Device d, Buf<int> anchors, Buf<int> valid, Buf<int> counter, ulong seed, int n, int hw, int perImage)
    {
        CcrDistances.CheckSizes("SampleAnchors", n, hw, perImage);
        if (perImage < 1) throw new ArgumentException($"SampleAnchors: {perImage} anchors per image");
        Launch.SameLength("SampleAnchors", anchors.Length, (long)n * perImage, "anchors and (N, anchors per image)");
        Launch.SameLength("SampleAnchors", valid.Length, (long)n * hw, "valid and (N, HW)");
        Launch.SameLength("SampleAnchors", counter.Length, 1, "counter and a scalar");
        if (d.GroupSize > MaxGroup) throw new InvalidOperationException($"SampleAnchors: group size {d.GroupSize} > {MaxGroup}");
        if (n == 0) return;
        if (CcrDistances.Host(d)) { SampleHost(anchors, valid, counter, seed, n, hw, perImage); return; }
        K(d).Sample(CcrSelect.RowGrid(d, n), anchors.View, valid.View, counter.View, seed, n, hw, perImage);
    }

    /// <summary>counter[0] += 1 on the device (after each pair evaluation).</summary>
    public static unsafe void Advance(Device d, Buf<int> counter)
    {
        Launch.SameLength("CcrAnchors.Advance", counter.Length, 1, "counter and a scalar");
        if (CcrDistances.Host(d)) { counter.Ptr[0]++; return; } // CPU-accelerator launches are synchronous
        K(d).Advance(new KernelConfig(1, d.Accelerator.WarpSize), counter.View);
    }

    // ---------------------------------------------------------------- CPU variant (host code)

    static unsafe void SampleHost(Buf<int> anchors, Buf<int> valid, Buf<int> counter, ulong seed, int n, int hw, int perImage)
    {
        int* an = anchors.Ptr, va = valid.Ptr;
        ulong stream = Stream(seed, counter.Ptr[0]);
        Parallel.For(0, n, b =>
        {
            int* v = va + (long)b * hw, o = an + (long)b * perImage;
            var heap = new CcrSelect.KSmallest(perImage);
            for (int i = 0; i < hw; i++) if (v[i] != 0) heap.Offer(CcrSelect.Compose(AnchorKey(stream, b, i), i));
            ulong bound = heap.Bound;
            int m = 0;
            for (int i = 0; i < hw && m < perImage; i++)
                if (v[i] != 0 && CcrSelect.Compose(AnchorKey(stream, b, i), i) <= bound) o[m++] = i;
            for (; m < perImage; m++) o[m] = -1;
        });
    }
}
