namespace Ccr.Kernels;

/// <summary>Arithmetic of the CUDA variant's GEMMs and convolutions: plain fp32 on the CUDA cores, or
/// TF32 on the tensor cores (operands rounded to a 10-bit mantissa, products accumulated in fp32).
/// The CPU variant always computes in fp32.</summary>
public enum MathPrecision { Fp32, Tf32 }
