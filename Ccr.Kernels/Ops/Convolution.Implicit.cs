using ILGPU;

namespace Ccr.Kernels.Ops;

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
internal static partial class Convolution
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

        /// <summary>Output pixel j = (n, oh, ow): the input offset of its patch's top-left tap (possibly
        /// outside the image) and that tap's coordinates.</summary>
        public readonly Gather Pixel(int j)
        {
            int n = ByOHW.Div(j), p = j - n * OHW, oh = ByOW.Div(p), ow = p - oh * OW;
            int h0 = oh * S - P, w0 = ow * S - P;
            return new Gather { Off = n * Cin * HW + h0 * W + w0, H = h0, W = w0 };
        }

        /// <summary>Patch index r = (ci, kh, kw): its offset from the top-left tap, and its displacement.</summary>
        public readonly Gather Tap(int r)
        {
            int ci = ByKK.Div(r), t = r - ci * KK, kh = ByK.Div(t), kw = t - kh * K;
            return new Gather { Off = ci * HW + kh * D * W + kw * D, H = kh * D, W = kw * D };
        }

        /// <summary>X(r, j) from a pixel and a tap gather (either order): 0 outside the image.</summary>
        public readonly float Patch(ArrayView<float> x, Gather pixel, Gather tap)
        {
            int h = pixel.H + tap.H, w = pixel.W + tap.W;
            return ((uint)h < (uint)H) & ((uint)w < (uint)W) ? x[pixel.Off + tap.Off] : 0f;
        }
    }

    /// <summary>Forward A: w (Cout, Cin K K) row by row.</summary>
    public struct WeightRows : IGemmOperand
    {
        public int CKK;
        public readonly bool KFast => true;
        public readonly Gather Row(int z, int co) => new() { Off = co * CKK };
        public readonly Gather Col(int r) => new() { Off = r };
        public readonly float Load(ArrayView<float> w, Gather row, Gather col) => row.H + col.H >= 0 ? w[row.Off + col.Off] : 0f;
        public readonly float LoadAny(ArrayView<float> w, Gather row, Gather col) => w[row.Off + col.Off];
    }

    /// <summary>Forward B (read as (j, r)): input patches; consecutive output pixels are (mostly) adjacent.</summary>
    public struct InputPatches : IGemmOperand
    {
        public ConvIndex G;
        public readonly bool KFast => false;
        public readonly Gather Row(int z, int j) => G.Pixel(j);
        public readonly Gather Col(int r) => G.Tap(r);
        public readonly float Load(ArrayView<float> x, Gather row, Gather col) => G.Patch(x, row, col);
        public readonly float LoadAny(ArrayView<float> x, Gather row, Gather col) => G.Patch(x, row, col);
    }

    /// <summary>dx A: Wt(ci, q) = w[co, ci, kh, kw], q = (co, kh, kw): offset ci K K + co Cin K K + (kh K + kw).</summary>
    public struct WeightColumns : IGemmOperand
    {
        public ConvIndex G;
        public readonly bool KFast => true;
        public readonly Gather Row(int z, int ci) => new() { Off = ci * G.KK };
        public readonly Gather Col(int q)
        {
            int co = G.ByKK.Div(q);
            return new Gather { Off = co * G.Cin * G.KK + q - co * G.KK };
        }
        public readonly float Load(ArrayView<float> w, Gather row, Gather col) => row.H + col.H >= 0 ? w[row.Off + col.Off] : 0f;
        public readonly float LoadAny(ArrayView<float> w, Gather row, Gather col) => w[row.Off + col.Off];
    }

    /// <summary>
    /// dx B (read as ((n, h, w), q)): the output gradient each input pixel's taps reach,
    /// dy[n, co, (h + P - kh D) / S, (w + P - kw D) / S] where the division is exact. With h + P = a S + b
    /// (per pixel) and kh D = c S + d (per tap), h + P - kh D is a multiple of S exactly when b = d, and the
    /// quotient is then a - c: the pixel keeps (a, b), the tap (c, d), and the load compares and adds.
    /// </summary>
    public struct GradOutTaps : IGemmOperand
    {
        public ConvIndex G;
        public readonly bool KFast => false;
        public readonly Gather Row(int z, int j)
        {
            int n = G.ByHW.Div(j), hw = j - n * G.HW, h = G.ByW.Div(hw), w = hw - h * G.W;
            int ah = G.ByS.Div(h + G.P), aw = G.ByS.Div(w + G.P), bh = h + G.P - ah * G.S, bw = w + G.P - aw * G.S;
            return new Gather { Off = n * G.Cout * G.OHW + ah * G.OW + aw, H = ah, W = aw, R = bh * G.S + bw };
        }
        public readonly Gather Col(int q)
        {
            int co = G.ByKK.Div(q), t = q - co * G.KK, kh = G.ByK.Div(t), kw = t - kh * G.K;
            int ch = G.ByS.Div(kh * G.D), cw = G.ByS.Div(kw * G.D), dh = kh * G.D - ch * G.S, dw = kw * G.D - cw * G.S;
            return new Gather { Off = co * G.OHW - ch * G.OW - cw, H = -ch, W = -cw, R = dh * G.S + dw };
        }
        public readonly float Load(ArrayView<float> dy, Gather row, Gather col)
        {
            int oh = row.H + col.H, ow = row.W + col.W;
            return (row.R == col.R) & ((uint)oh < (uint)G.OH) & ((uint)ow < (uint)G.OW) ? dy[row.Off + col.Off] : 0f;
        }
        public readonly float LoadAny(ArrayView<float> dy, Gather row, Gather col) => Load(dy, row, col);
    }

    /// <summary>dw A: dy as (co, j), j = (n, oh, ow): offset co OH OW + (n Cout OH OW + oh OW + ow).</summary>
    public struct GradOutRows : IGemmOperand
    {
        public ConvIndex G;
        public readonly bool KFast => true;
        public readonly Gather Row(int z, int co) => new() { Off = co * G.OHW };
        public readonly Gather Col(int j)
        {
            int n = G.ByOHW.Div(j);
            return new Gather { Off = n * G.Cout * G.OHW + j - n * G.OHW };
        }
        public readonly float Load(ArrayView<float> dy, Gather row, Gather col) => row.H + col.H >= 0 ? dy[row.Off + col.Off] : 0f;
        public readonly float LoadAny(ArrayView<float> dy, Gather row, Gather col) => dy[row.Off + col.Off];
    }

    /// <summary>dw B (read as (r, j)): input patches, transposed; consecutive pixels j are (mostly) adjacent.</summary>
    public struct InputPatchesT : IGemmOperand
    {
        public ConvIndex G;
        public readonly bool KFast => true;
        public readonly Gather Row(int z, int r) => G.Tap(r);
        public readonly Gather Col(int j) => G.Pixel(j);
        public readonly float Load(ArrayView<float> x, Gather row, Gather col) => G.Patch(x, col, row);
        public readonly float LoadAny(ArrayView<float> x, Gather row, Gather col) => G.Patch(x, col, row);
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

    /// <summary>The tile the CUDA variant picks for <paramref name="pass"/> on <paramref name="d"/> at
    /// <paramref name="precision"/>.</summary>
    public static GemmTile Plan(Device d, ConvGeom g, Pass pass, MathPrecision precision = MathPrecision.Fp32)
    {
        var (m, n, k) = GemmShape(g, pass);
        return GemmTiles.Choose(m, n, k, 1, precision, d.Multiprocessors);
    }

    // every flat index the gathers form must fit int32 (they index with int arithmetic)
    static void CheckInt32(ConvGeom g)
    {
        long most = Math.Max(Math.Max((long)g.N * g.Cin * g.HW, (long)g.N * g.Cout * g.OHW), (long)g.Cout * g.CKK);
        if (most > int.MaxValue || (long)g.N * g.HW > int.MaxValue)
            throw new ArgumentException($"conv2d: {g} is too large for the CUDA variant's 32-bit indexing ({most} elements)");
    }

    static void ImplicitForward(Device d, Buf<float> y, Buf<float> x, Buf<float> w, Buf<float>? bias, ConvGeom g, GemmTile? tile,
                                MathPrecision precision)
    {
        CheckInt32(g);
        var ix = ConvIndex.From(g);
        var sc = new OutputStore { Cout = g.Cout, OHW = g.OHW, HasBias = bias != null ? 1 : 0, ByOHW = ix.ByOHW };
        ImplicitGemm.Run(d, y, w, x, bias, new WeightRows { CKK = g.CKK }, new InputPatches { G = ix }, sc,
            1, g.Cout, g.N * g.OHW, g.CKK, tile, precision);
    }

    static void ImplicitBackwardInput(Device d, Buf<float> dx, Buf<float> dy, Buf<float> w, ConvGeom g, GemmTile? tile,
                                      MathPrecision precision)
    {
        CheckInt32(g);
        var ix = ConvIndex.From(g);
        var sc = new PlanesStore { Channels = g.Cin, Plane = g.HW, ByPlane = ix.ByHW };
        ImplicitGemm.Run(d, dx, w, dy, null, new WeightColumns { G = ix }, new GradOutTaps { G = ix }, sc,
            1, g.Cin, g.N * g.HW, g.Cout * g.K * g.K, tile, precision);
    }

    static void ImplicitBackwardWeight(Device d, Buf<float> dw, Buf<float> dy, Buf<float> x, ConvGeom g, GemmTile? tile,
                                       MathPrecision precision)
    {
        CheckInt32(g);
        var ix = ConvIndex.From(g);
        ImplicitGemm.Run(d, dw, dy, x, null, new GradOutRows { G = ix }, new InputPatchesT { G = ix }, new RowsStore { N = g.CKK },
            1, g.Cout, g.CKK, g.N * g.OHW, tile, precision);
    }
}
