namespace Ccr.Nn;

/// <summary>
/// A small seeded generator (PCG-XSH-RR 64/32) whose sequence is the same on every machine and
/// runtime, unlike System.Random. Its whole state is two ulongs, so checkpoints can save it.
/// </summary>
public sealed class Rng
{
    public ulong State { get; private set; }
    public ulong Inc { get; }

    public Rng(ulong seed, ulong stream = 54)
    {
        Inc = (stream << 1) | 1;
        State = 0;
        NextUInt();
        State += seed;
        NextUInt();
    }

    public Rng(ulong state, ulong inc, bool raw) { State = state; Inc = inc | 1; }

    public uint NextUInt()
    {
        ulong old = State;
        State = old * 6364136223846793005UL + Inc;
        uint xorshifted = (uint)(((old >> 18) ^ old) >> 27);
        int rot = (int)(old >> 59);
        return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
    }

    /// <summary>Uniform in [0, 1) with 24 random bits (exact in float32).</summary>
    public float NextFloat() => (NextUInt() >> 8) * (1f / (1 << 24));
    public double NextDouble() => (((ulong)NextUInt() << 21) ^ (NextUInt() >> 11)) * (1.0 / (1UL << 53));
    public float Uniform(float lo, float hi) => lo + (hi - lo) * NextFloat();

    /// <summary>Uniform integer in [0, n), unbiased (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"NextInt({n})");
        ulong m = (ulong)NextUInt() * (ulong)n;
        uint l = (uint)m;
        if (l < (uint)n)
        {
            uint t = (uint)(-n) % (uint)n;
            while (l < t) { m = (ulong)NextUInt() * (ulong)n; l = (uint)m; }
        }
        return (int)(m >> 32);
    }

    /// <summary>Standard normal (Box-Muller).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
