namespace Ccr.Nn.Optim;

public enum LrPolicy { Constant, Poly }

/// <summary>
/// The learning rate as a pure function of the iteration (0-based), so that a resumed run needs
/// only the iteration count. Linear warm-up over the first <see cref="WarmupIterations"/>
/// iterations multiplies the policy's rate by (it + 1) / warmup; the poly policy is
/// base * (1 - it / max)^power (power 0.9, the paper's setting with one warm-up epoch). Warm-up
/// multiplies rather than replaces, so the rate is continuous where warm-up ends.
/// </summary>
public sealed record LrSchedule(LrPolicy Policy, double BaseLr, long MaxIterations, long WarmupIterations = 0, double Power = 0.9)
{
    public static LrSchedule Constant(double lr, long warmup = 0) => new(LrPolicy.Constant, lr, long.MaxValue, warmup);
    public static LrSchedule Poly(double lr, long maxIterations, long warmup = 0, double power = 0.9) =>
        new(LrPolicy.Poly, lr, maxIterations, warmup, power);

    /// <summary>The learning rate of iteration <paramref name="it"/> (0-based).</summary>
    public double At(long it)
    {
        if (it < 0) throw new ArgumentOutOfRangeException(nameof(it), $"iteration {it}");
        if (MaxIterations <= 0) throw new InvalidOperationException($"LrSchedule: max iterations {MaxIterations}");
        double lr = Policy switch
        {
            LrPolicy.Constant => BaseLr,
            LrPolicy.Poly => BaseLr * Math.Pow(Math.Max(0.0, 1.0 - (double)Math.Min(it, MaxIterations) / MaxIterations), Power),
            _ => throw new InvalidOperationException($"LrSchedule: unknown policy {Policy}"),
        };
        if (WarmupIterations > 0 && it < WarmupIterations) lr *= (double)(it + 1) / WarmupIterations;
        return lr;
    }
}
