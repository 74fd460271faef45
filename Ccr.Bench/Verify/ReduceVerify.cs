using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>
/// The group reduction every kernel is built on (<see cref="BlockReduce"/>): each row runs groups of
/// every size the device allows (multiples of the warp size) and requires every thread's result to
/// equal, bit for bit, the float sum in the documented order (XOR butterfly in each warp, then the
/// warp sums in order), for one, two and four sums at once. Tolerance 0: the order is the contract.
/// </summary>
public sealed class ReduceVerify : IVerifySuite
{
    public string Family => "reduce";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        int warp = device.Accelerator.WarpSize;
        foreach (int mode in new[] { 1, 2, 4 })
            yield return new VerifyCase($"block_reduce.sum{(mode == 1 ? "" : mode.ToString())}",
                                       $"groups {warp}..{device.GroupSize} x {(small ? 2 : 64)}", 0, 0, d => Probe(d, mode, small ? 2 : 64));
    }

    static (double[], float[]) Probe(Device d, int mode, int groups)
    {
        int warp = d.Accelerator.WarpSize;
        var exp = new List<double>(); var got = new List<float>();
        var r = new Rng((ulong)(mode * 31 + warp));
        for (int group = warp; group <= d.GroupSize; group += warp)
        {
            var v = VerifyData.Floats(r, (long)groups * group);
            for (int i = 0; i < v.Length; i += 3) v[i] *= 1000f; // magnitudes that make the order visible
            using var scope = new TensorScope();
            var tv = Tensor.FromArray(d, v, v.Length);
            var o = Tensor.Empty(d, v.Length * mode);
            BlockReduce.Probe(d, o.Data, tv.Data, groups, group, mode);
            got.AddRange(o.ToArray());
            for (int g = 0; g < groups; g++)
            {
                var part = v.AsSpan(g * group, group).ToArray();
                float s = BlockReduce.ReferenceOrder(part, warp);
                float half = BlockReduce.ReferenceOrder(part.Select(x => x + 0.5f).ToArray(), warp);
                for (int t = 0; t < group; t++)
                {
                    exp.Add(s);
                    if (mode == 2) exp.Add(half);
                    if (mode == 4) { exp.Add(group); exp.Add(half); exp.Add(-s); }
                }
            }
        }
        return (exp.ToArray(), got.ToArray());
    }
}
