namespace Ccr.Training.Data;

/// <summary>
/// A small deterministic random generator (SplitMix64 stream) and integer hash. Same seed, same
/// numbers on every machine and runtime, unlike System.Random, whose algorithm is not specified.
/// Everything random in data generation, sample order and augmentation derives from
/// <see cref="Hash(ulong, ulong, ulong, ulong)"/> of (seed, epoch, index, purpose), so a run can be
/// resumed bit for bit from any batch. Unlike <see cref="Ccr.Nn.Rng"/> (one PCG stream whose state
/// a checkpoint carries), a KeyedRng is a value made on the spot from its keys, so no state needs
/// saving and worker threads never share one.
/// </summary>
public struct KeyedRng
{
    private ulong _state;

    public KeyedRng(ulong seed) { _state = seed; }

    public static KeyedRng From(params ulong[] keys)
    {
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (ulong k in keys) h = Mix(h ^ Mix(k + 0x632BE59BD9B4E019UL));
        return new KeyedRng(h);
    }

    public static ulong Hash(ulong a, ulong b, ulong c = 0, ulong d = 0) =>
        Mix(Mix(Mix(Mix(a + 0x9E3779B97F4A7C15UL) ^ b) ^ (c * 0xD1B54A32D192ED03UL)) ^ (d * 0xABC98388FB8FAC03UL));

    /// <summary>SplitMix64 finaliser: a bijective 64-bit mix.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextU64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 bits; exact, no platform math.</summary>
    public double NextDouble() => (NextU64() >> 11) * (1.0 / 9007199254740992.0);

    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n) (n &gt; 0).</summary>
    public int NextInt(int n) => (int)((NextU64() >> 33) % (ulong)n);

    public bool Chance(double p) => NextDouble() < p;

    /// <summary>Uniform in [0, 1) from a single hash value.</summary>
    public static double ToUnit(ulong h) => (h >> 11) * (1.0 / 9007199254740992.0);

    /// <summary>A Fisher-Yates permutation of 0..n-1.</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
