using System.Numerics;
using ILGPU;

namespace Ccr.Kernels;

/// <summary>
/// The training step's "all finite" flag, kept on the device so that no step has to wait for the
/// host: each step checks its loss terms and the flat gradient arena, and the fused optimiser
/// kernels (<see cref="Optimizers"/>) skip their update while the flag is set. The host reads the
/// state only when it wants to (log steps, before a checkpoint) and then knows the first bad step
/// and which term was non-finite. State layout (int32, <see cref="StateLength"/> entries):
/// <list type="bullet">
/// <item>[<see cref="Tripped"/>] 1 once any checked value was NaN or infinite; sticky until the host re-arms it.</item>
/// <item>[<see cref="Counter"/>] the index of the next step to be checked (the host sets it when arming).</item>
/// <item>[<see cref="FirstStep"/>] the step at which the flag was first set (-1 before).</item>
/// <item>[<see cref="FirstTerm"/>] the first non-finite term of that step: an index into the terms,
/// or the term count for "the checked values" (the gradients).</item>
/// <item>[<see cref="Scratch"/>] this step's scan result, cleared by the commit.</item>
/// </list>
/// A value is non-finite when its exponent bits are all ones (infinity or NaN), tested on the bits so
/// that no compiler may fold x - x to zero. CUDA variant: a grid-stride scan (each thread that saw a
/// bad value stores 1, a benign race of equal stores) and a one-thread commit kernel, two launches
/// with no host synchronisation and no scalar that changes between steps (so a CUDA graph can
/// capture them). CPU variant: SIMD host code over the CPU accelerator's memory.
/// The reference is <see cref="double.IsFinite"/> itself.
/// </summary>
internal static class FiniteCheck
{
    public const int Tripped = 0, Counter = 1, FirstStep = 2, FirstTerm = 3, Scratch = 4, StateLength = 5;
    const int ExponentMask = 0x7F800000;

    // ---------------------------------------------------------------- kernels

    static bool NonFinite(float v) => (Interop.FloatAsInt(v) & ExponentMask) == ExponentMask;

    // Grid-stride scan of values (P): a thread that saw a non-finite value stores 1 into state[Scratch].
    static void ScanKernel(ArrayView<float> values, ArrayView<int> state)
    {
        int bad = 0;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < values.IntLength; i += Launch.Stride)
            bad |= NonFinite(values[i]) ? 1 : 0;
        if (bad != 0) state[Scratch] = 1;
    }

    // One thread: the step's verdict from the terms (T) and the scan, recorded if it is the first bad step.
    static void CommitKernel(ArrayView<float> terms, ArrayView<int> state)
    {
        if (ILGPU.Grid.GlobalIndex.X != 0) return;
        int first = -1;
        for (int i = terms.IntLength - 1; i >= 0; i--)
            if (NonFinite(terms[i])) first = i;
        if (first < 0 && state[Scratch] != 0) first = terms.IntLength;
        int step = state[Counter];
        state[Scratch] = 0;
        state[Counter] = step + 1;
        if (first >= 0 && state[Tripped] == 0)
        {
            state[Tripped] = 1;
            state[FirstStep] = step;
            state[FirstTerm] = first;
        }
    }

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>> Scan, Commit;

        public Kernels(Device d)
        {
            Scan = d.Load<ArrayView<float>, ArrayView<int>>(ScanKernel);
            Commit = d.Load<ArrayView<float>, ArrayView<int>>(CommitKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    // ---------------------------------------------------------------- launchers

    /// <summary>
    /// Checks one step: <paramref name="terms"/> (T, the step's loss terms, in the order their
    /// names are reported) and <paramref name="values"/> (P, the gradient arena), then advances the
    /// step counter in <paramref name="state"/> (<see cref="StateLength"/>). Nothing is read back.
    /// </summary>
    public static unsafe void Check(Device d, Buf<int> state, Buf<float> terms, Buf<float> values)
    {
        if (state.Length != StateLength)
            throw new ArgumentException($"FiniteCheck: state has {state.Length} entries, expected {StateLength}");
        if (Host(d))
        {
            d.Synchronize();
            int* s = state.Ptr;
            float* pv = values.Ptr;
            int bad = 0;
            HostChunks(values.Length, (lo, hi) => { if (AnyNonFinite(pv, lo, hi)) Volatile.Write(ref bad, 1); });
            if (bad != 0) s[Scratch] = 1;
            var t = terms.Length == 0 ? ReadOnlySpan<float>.Empty : terms.Span;
            int first = -1;
            for (int i = 0; i < t.Length && first < 0; i++) if (!float.IsFinite(t[i])) first = i;
            if (first < 0 && s[Scratch] != 0) first = t.Length;
            int step = s[Counter];
            s[Scratch] = 0;
            s[Counter] = step + 1;
            if (first >= 0 && s[Tripped] == 0) { s[Tripped] = 1; s[FirstStep] = step; s[FirstTerm] = first; }
            return;
        }
        var k = K(d);
        if (values.Length > 0) { checked { _ = (int)values.Length; } k.Scan(d.Grid(values.Length), values.View, state.View); }
        // the commit needs a view even with no terms: an empty window of the state's block is not a float view,
        // so pass the values (never read: the loop runs over terms.IntLength = 0)
        k.Commit(new KernelConfig(1, d.GroupSize), terms.Length > 0 ? terms.View : values.View.SubView(0, 0), state.View);
    }

    /// <summary>A fresh state for a run whose next step is <paramref name="step"/> (host values to copy in).</summary>
    public static int[] Armed(long step) =>
        [0, checked((int)step), -1, -1, 0];

    static unsafe bool AnyNonFinite(float* p, long lo, long hi)
    {
        long i = lo;
        var bits = (int*)p;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<int>.Count;
            var mask = new Vector<int>(ExponentMask);
            var acc = Vector<int>.Zero;
            for (; i + w <= hi; i += w)
                acc |= Vector.Equals(Vector.Load(bits + i) & mask, mask);
            if (acc != Vector<int>.Zero) return true;
        }
        for (; i < hi; i++)
            if ((bits[i] & ExponentMask) == ExponentMask) return true;
        return false;
    }

    /// <summary>Parallel.For over chunks of 64K elements.</summary>
    static void HostChunks(long count, Action<long, long> chunk)
    {
        const long Chunk = 1 << 16;
        long chunks = (count + Chunk - 1) / Chunk;
        if (chunks <= 1) { if (count > 0) chunk(0, count); return; }
        Parallel.For(0, chunks, k => chunk(k * Chunk, Math.Min(count, (k + 1) * Chunk)));
    }
}
