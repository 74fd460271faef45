using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>
/// What a GEMM kernel thread keeps about one side of an operand element: element (mn, k) of an operand is
/// <c>Load(src, Row(mn), Col(k))</c>. A thread's rows (the mn it loads) never change during a kernel, so
/// <see cref="IGemmOperand.Row"/> is called once per kernel; each stage calls <see cref="IGemmOperand.Col"/>
/// once per reduction index the thread loads. Whatever needs a division (a flat pixel to (n, h, w), a
/// patch index to (ci, kh, kw)) happens there, so <see cref="IGemmOperand.Load"/> is a few adds, one
/// bounds test and the load. Off: element offset; H, W: coordinates (or 0) whose sums the load bounds-checks;
/// R: a residue both sides must agree on (the stride test of a strided conv's input gradient), else 0.
/// </summary>
internal struct Gather
{
    public int Off, H, W, R;

    /// <summary>Marks a row or column out of range: H sums involving it are below -2^29, so every
    /// operand's bounds test fails (image coordinates stay below 2^29 in magnitude).</summary>
    public const int Invalid = -(1 << 30);
}

/// <summary>
/// One GEMM operand as the kernels see it: element (mn, k) of A (M x K) or of B transposed (N x K), for product
/// z of a batch, gathered straight from the tensors (a conv's input patches, a transposed matrix, ...), so no
/// operand is ever materialised.
/// Edges cost no test where they need none: rows past M (or N) are clamped to the last row, since a padded
/// row only feeds outputs that are never stored; A's columns past K are clamped too (<see cref="LoadAny"/>,
/// finite values), and B's are marked by H = <see cref="Gather.Invalid"/>, for which <see cref="Load"/> must
/// return 0 (<c>row.H + col.H &lt; 0</c>), so every product past K is a real value times 0. Operands with a
/// bounds test of their own (conv patches) get that zero from the test they make anyway. (The one
/// difference from a plain sum: an infinite A element at k = K - 1 meets B's zeros past K, so an output
/// that should be infinite is NaN; finite inputs are unaffected, and the finite check flags both.)
/// </summary>
internal interface IGemmOperand
{
    /// <summary>True when consecutive k are adjacent in memory (the kernel then gives consecutive lanes
    /// consecutive k, so loads coalesce); false when consecutive mn are. A constant per type.</summary>
    bool KFast { get; }
    Gather Row(int z, int mn);
    Gather Col(int k);
    /// <summary>The element, 0 outside the operand (conv padding) and 0 when <c>row.H + col.H &lt; 0</c>.</summary>
    float Load(ArrayView<float> src, Gather row, Gather col);
    /// <summary>The element of an in-range row and column (A's loads): no test where the operand has no padding.</summary>
    float LoadAny(ArrayView<float> src, Gather row, Gather col);
}

/// <summary>Where C (i, j) of product <paramref name="z"/> goes, with whatever epilogue (bias, alpha /
/// beta) the op needs. Called once per element of C, in range.</summary>
internal interface IGemmOutput
{
    void Store(ArrayView<float> dst, ArrayView<float> bias, int z, int i, int j, float v);
}

/// <summary>floor(n / d) for 0 &lt;= n &lt; 2^31 by a multiply and a shift (integer division is ~20
/// instructions on a GPU). With l = ceil(log2 d), k = 31 + l and m = ceil(2^k / d), the error
/// e = m d - 2^k &lt; d makes e n &lt; 2^k, hence floor(n m / 2^k) = floor(n / d); n m &lt; 2^63 fits a ulong.
/// The kernels call it only outside their main loops (per-thread set-up, per-stage column entries).</summary>
internal struct FastDiv
{
    public ulong Mul;
    public int Shift;

    public FastDiv(int d)
    {
        if (d < 1) throw new ArgumentOutOfRangeException(nameof(d), $"divisor {d} must be positive");
        int l = 0;
        while ((1L << l) < d) l++;
        Shift = 31 + l;
        Mul = ((1UL << Shift) + (ulong)d - 1) / (ulong)d;
    }

    public readonly int Div(int n) => (int)(((ulong)(uint)n * Mul) >> Shift);
}
