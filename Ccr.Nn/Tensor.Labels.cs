namespace Ccr.Nn;

public sealed partial class Tensor
{
    /// <summary>
    /// An int32 label tensor from host data, checked before it reaches the device: every value must
    /// be in [0, <paramref name="classes"/>) or equal <paramref name="ignoreIndex"/>. The error names
    /// the tensor, the value and where it is, and nothing is uploaded.
    /// </summary>
    public static Tensor FromLabels(Kernels.Device d, int[] labels, int classes, int[] shape,
                                    int ignoreIndex = 255, string name = "labels")
    {
        CheckLabels(labels, classes, shape, ignoreIndex, name);
        var t = FromArray(d, labels, shape);
        t.Name = name;
        return t;
    }

    /// <summary>The check of <see cref="FromLabels"/> alone (for labels copied into an existing tensor).</summary>
    public static void CheckLabels(int[] labels, int classes, int[] shape, int ignoreIndex = 255, string name = "labels")
    {
        long n = ShapeNumel(shape);
        if (labels.Length != n)
            throw new ArgumentException($"{name}: {labels.Length} values for shape {ShapeString(shape)} ({n} elements)");
        for (int i = 0; i < labels.Length; i++)
        {
            int v = labels[i];
            if ((v < 0 || v >= classes) && v != ignoreIndex)
                throw new ArgumentOutOfRangeException(name,
                    $"{name}{ShapeString(shape)}: label {v} at flat index {i} is outside [0, {classes}) and is not the ignore index {ignoreIndex}");
        }
    }
}
