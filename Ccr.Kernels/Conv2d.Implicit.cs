using ILGPU;

namespace Ccr.Kernels;

/// <summary>
/// The CUDA variant of conv2d: forward and both gradients as implicit GEMMs (<see cref="ImplicitGemm"/>) whose
/// operands gather straight from the NCHW tensors into shared memory, with no column matrix. With
/// r = (ci, kh, kw) a patch index (K x K taps of Cin channels), j = (n, oh, ow) an output pixel and
/// q = (co, kh, kw):
///   forward  y (Cout x N OH OW)  = w (Cout x Cin K K)   . X (Cin K K x N OH OW),  X(r, j) = x[n, ci, oh S - P + kh D, ow S - P + kw D];
///   dx       dx (Cin x N H W)    = Wt (Cin x Cout K K)  . G (Cout K K x N H W),   G(q, (n, h, w)) = dy[n, co, (h + P - kh D) / S, (w + P - kw D) / S]
///            where the division is exact and in range, else 0 (a stride-2 conv's dx multiplies 3 zeros in 4);
///   dw       dw (Cout x Cin K K) = dy (Cout x N OH OW)  . X^T (N OH OW x Cin K K), K split over the batch and pixels
///            (a weight gradient is a small C with a long reduction: 18 x 162 outputs over 76,800 pixels).
/// Out-of-image taps read as 0. The forward adds the bias in its epilogue.
/// </summary>
public static partial class Conv2d
{
    /// <summary>ConvGeom plus the divisors the gathers need (flat pixel / patch index to coordinates).</summary>
    public struct ConvIndex
    {
        public int Cin, H, W, Cout, K, S, P, D, OH, OW, KK, CKK, HW, OHW;
        public FastDiv ByOHW, ByOW, ByHW, ByW, ByKK, ByK, ByS;

        public static ConvIndex From(ConvGeom g) => new()
        {
            Cin = g.Cin, H = g.H, W = g.W, Cout = g.Cout, K = g.K, S = g.S, P = g.P, D = g.D, OH = g.OH, OW = g.OW,
            KK = g.K * g.K, CKK = g.CKK, HW = g.HW, OHW = g.OHW,
            ByOHW = new(g.OHW), ByOW = new(g.OW), ByHW = new(g.HW), ByW = new(g.W), ByKK = new(g.K * g.K), ByK = new(g.K), ByS = new(g.S),
        };

        /// <summary>X(r, j): the input value tap r of output pixel j reads (0 outside the image).</summary>
        public readonly float Patch(ArrayView<float> x, int j, int r)
        {
            int n = ByOHW.Div(j), p = j - n * OHW, oh = ByOW.Div(p), ow = p - oh * OW;
            int ci = ByKK.Div(r), t = r - ci * KK, kh = ByK.Div(t), kw = t - kh * K;
            int h = oh * S - P + kh * D, w = ow * S - P + kw * D;
            return h >= 0 && h < H && w >= 0 && w < W ? x[((n * Cin + ci) * H + h) * W + w] : 0f;
        }
    }

    /// <summary>Forward A: w (Cout, Cin K K) row by row.</summary>
    public struct WeightRows : IGemmOperand
    {
        public int CKK;
        public readonly float Load(ArrayView<float> w, int z, int co, int r) => w[co * CKK + r];
    }

    /// <summary>Forward B (read as (j, r)): input patches.</summary>
    public struct InputPatches : IGemmOperand
    {
        public ConvIndex G;
        public readonly float Load(ArrayView<float> x, int z, int j, int r) => G.Patch(x, j, r);
    }

    /// <summary>dx A: Wt(ci, q) = w[co, ci, kh, kw], q = (co, kh, kw).</summary>
    public struct WeightColumns : IGemmOperand
    {
        public ConvIndex G;
        public readonly float Load(ArrayView<float> w, int z, int ci, int q)
        {
            int co = G.ByKK.Div(q);
            return w[(co * G.Cin + ci) * G.KK + q - co * G.KK];
        }
    }

    /// <summary>dx B (read as ((n, h, w), q)): the output gradient each input pixel's taps reach.</summary>
    public struct GradOutTaps : IGemmOperand
    {
        public ConvIndex G;
        public readonly float Load(ArrayView<float> dy, int z, int j, int q)
        {
            int n = G.ByHW.Div(j), hw = j - n * G.HW, h = G.ByW.Div(hw), w = hw - h * G.W;
            int co = G.ByKK.Div(q), t = q - co * G.KK, kh = G.ByK.Div(t), kw = t - kh * G.K;
            int th = h + G.P - kh * G.D, tw = w + G.P - kw * G.D;
            if (th < 0 || tw < 0) return 0f;
            int oh = th, ow = tw;
            if (G.S > 1)
            {
                oh = G.ByS.Div(th); ow = G.ByS.Div(tw);
                if (oh * G.S != th || ow * G.S != tw) return 0f;
            }
            return oh < G.OH && ow < G.OW ? dy[((n * G.Cout + co) * G.OH + oh) * G.OW + ow] : 0f;
        }
    }

    /// <summary>dw A: dy as (co, j), j = (n, oh, ow).</summary>
    public struct GradOutRows : IGemmOperand
    {
        public ConvIndex G;
        public readonly float Load(ArrayView<float> dy, int z, int co, int j)
        {
            int n = G.ByOHW.Div(j);
            return dy[(n * G.Cout + co) * G.OHW + j - n * G.OHW];
        }
    }

    /// <summary>dw B (read as (r, j)): input patches, transposed.</summary>
    public struct InputPatchesT : IGemmOperand
    {
        public ConvIndex G;
        public readonly float Load(ArrayView<float> x, int z, int r, int j) => G.Patch(x, j, r);
    }

    /// <summary>y[n, co, oh, ow] = v + bias[co] for C (co, j = (n, oh, ow)).</summary>
    public struct OutputStore : IGemmOutput
    {
        public int Cout, OHW, HasBias;
        public FastDiv ByOHW;
        public readonly void Store(ArrayView<float> y, ArrayView<float> bias, int z, int co, int j, float v)
        {
            int n = ByOHW.Div(j);
            y[(n * Cout + co) * OHW + j - n * OHW] = HasBias != 0 ? v + bias[co] : v;
        }
    }

    /// <summary>dx[n, ci, h, w] = v for C (ci, j = (n, h, w)).</summary>
    public struct PlanesStore : IGemmOutput
    {
        public int Channels, Plane;
        public FastDiv ByPlane;
        public readonly void Store(ArrayView<float> dst, ArrayView<float> bias, int z, int c, int j, float v)
        {
            int n = ByPlane.Div(j);
            dst[(n * Channels + c) * Plane + j - n * Plane] = v;
        }
    }

    /// <summary>dw (Cout, Cin K K), row-major.</summary>
    public struct RowsStore : IGemmOutput
    {
        public int N;
        public readonly void Store(ArrayView<float> dw, ArrayView<float> bias, int z, int i, int j, float v) => dw[i * N + j] = v;
    }

    /// <summary>The three GEMMs of a conv: their sizes (M, N, K) for tile choice and reports.</summary>
    public enum Pass { Forward, InputGrad, WeightGrad }

    /// <summary>(M, N, K) of <paramref name="pass"/>'s implicit GEMM.</summary>
    public static (int M, int N, int K) GemmShape(ConvGeom g, Pass pass) => pass switch
    {
        Pass.Forward => (g.Cout, g.N * g.OHW, g.CKK),
        Pass.InputGrad => (g.Cin, g.N * g.HW, g.Cout * g.K * g.K),
        _ => (g.Cout, g.CKK, g.N * g.OHW),
    };

    /// <summary>The tile the CUDA variant picks for <paramref name="pass"/> on <paramref name="d"/> (at the device's
    /// precision unless <paramref name="precision"/> is given).</summary>
    public static GemmTile Plan(Device d, ConvGeom g, Pass pass, MathPrecision? precision = null)
    {
        var (m, n, k) = GemmShape(g, pass);
        return GemmTiles.Choose(m, n, k, 1, precision ?? d.Precision, d.Accelerator.NumMultiprocessors);
    }

    // every flat index the gathers form must fit int32 (they index with int arithmetic)
    static void CheckInt32(ConvGeom g)
    {
        long most = Math.Max(Math.Max((long)g.N * g.Cin * g.HW, (long)g.N * g.Cout * g.OHW), (long)g.Cout * g.CKK);
        if (most > int.MaxValue || (long)g.N * g.HW > int.MaxValue)
            throw new ArgumentException($"conv2d: {g} is too large for the CUDA variant's 32-bit indexing ({most} elements)");
    }

    static void ImplicitForward(Device d, Buf<float> y, Buf<float> x, Buf<float> w, Buf<float>? bias, ConvGeom g, GemmTile? tile)
    {
        CheckInt32(g);
        var ix = ConvIndex.From(g);
        var sc = new OutputStore { Cout = g.Cout, OHW = g.OHW, HasBias = bias != null ? 1 : 0, ByOHW = ix.ByOHW };
        ImplicitGemm.Run(d, y, w, x, bias, new WeightRows { CKK = g.CKK }, new InputPatches { G = ix }, sc,
            1, g.Cout, g.N * g.OHW, g.CKK, kFastA: true, kFastB: false, tile);
    }

    static void ImplicitBackwardInput(Device d, Buf<float> dx, Buf<float> dy, Buf<float> w, ConvGeom g, GemmTile? tile)
    {
        CheckInt32(g);
        var ix = ConvIndex.From(g);
        var sc = new PlanesStore { Channels = g.Cin, Plane = g.HW, ByPlane = ix.ByHW };
        // A's k runs along (kh, kw) in memory: contiguous when the kernel has more than one tap
        ImplicitGemm.Run(d, dx, w, dy, null, new WeightColumns { G = ix }, new GradOutTaps { G = ix }, sc,
            1, g.Cin, g.N * g.HW, g.Cout * g.K * g.K, kFastA: g.K > 1, kFastB: false, tile);
    }

    static void ImplicitBackwardWeight(Device d, Buf<float> dw, Buf<float> dy, Buf<float> x, ConvGeom g, GemmTile? tile)
    {
        CheckInt32(g);
        var ix = ConvIndex.From(g);
        ImplicitGemm.Run(d, dw, dy, x, null, new GradOutRows { G = ix }, new InputPatchesT { G = ix }, new RowsStore { N = g.CKK },
            1, g.Cout, g.CKK, g.N * g.OHW, kFastA: true, kFastB: true, tile);
    }
}
