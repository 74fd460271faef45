using Ccr.Training.Data;

namespace Ccr.Bench.Report;

/// <summary>
/// A few NYUD-v2-format samples made up on the spot (the GPU machine has no data set): what the
/// training-step benchmark feeds both our trainer (through <see cref="NyudDataset"/>, so the model
/// gets NYUD's 40 classes) and tools/torch_step_baseline.py (which reads the same files), so both
/// sides train on the same batch. Layout: images/ID.png (RGB), segmentation/ID.png (0 unlabelled,
/// else class + 1), depth/ID.npy (H, W) metres with 0 invalid, normals/ID.npy (H, W, 3) unit
/// vectors with 0 invalid, gt_sets/train.txt and val.txt. Labels are piecewise smooth (blocks of
/// classes, planes of depth), about 10% of pixels invalid, like real indoor scenes; the content
/// matters to the timing only through the CCR mining (how many pixels share a class).
/// </summary>
public static class SyntheticNyud
{
    public const int Classes = 40;

    /// <summary>Writes <paramref name="count"/> samples of <paramref name="height"/> x
    /// <paramref name="width"/> under <paramref name="root"/> (replacing what is there) and returns
    /// their ids.</summary>
    public static string[] Write(string root, int count, int height, int width, int seed = 1)
    {
        if (count < 1 || height < 8 || width < 8)
            throw new ArgumentException($"synthetic NYUD: {count} samples of {height}x{width}; need >= 1 of at least 8x8");
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        foreach (var sub in new[] { "images", "segmentation", "depth", "normals", "gt_sets" })
            Directory.CreateDirectory(Path.Combine(root, sub));
        var ids = Enumerable.Range(1, count).Select(i => i.ToString("D4")).ToArray();
        var rng = new Ccr.Nn.Rng((ulong)seed, 3);
        int block = Math.Max(4, Math.Min(height, width) / 12);
        int p = height * width;
        foreach (var id in ids)
        {
            var rgb = new byte[3 * p];
            var seg = new byte[p];
            var depth = new float[p];
            var normals = new float[3 * p];
            int shift = rng.NextInt(Classes);
            double tilt = rng.Uniform(-0.5f, 0.5f);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int i = y * width + x, by = y / block, bx = x / block;
                    bool invalid = (by * 7 + bx * 13 + shift) % 10 == 0; // ~10% of blocks
                    int cls = (by * 3 + bx * 5 + shift) % Classes;
                    seg[i] = invalid ? (byte)0 : (byte)(cls + 1);
                    depth[i] = invalid ? 0f : (float)(1.0 + 8.0 * y / height + tilt * x / width + 0.1 * (cls % 3));
                    // a plane's normal per block, unit length
                    double nx = Math.Sin(0.7 * cls), ny = Math.Cos(0.3 * cls), nz = 1.5;
                    double inv = invalid ? 0 : 1 / Math.Sqrt(nx * nx + ny * ny + nz * nz);
                    normals[3 * i] = (float)(nx * inv); normals[3 * i + 1] = (float)(ny * inv); normals[3 * i + 2] = (float)(nz * inv);
                    for (int c = 0; c < 3; c++)
                        rgb[3 * i + c] = (byte)((cls * 37 + c * 71 + (x + y) / 4 + rng.NextInt(16)) & 255);
                }
            ImageIo.SaveRgb(Path.Combine(root, "images", id + ".png"), rgb, height, width);
            ImageIo.SaveGray(Path.Combine(root, "segmentation", id + ".png"), seg, height, width);
            Npy.WriteFloat32(Path.Combine(root, "depth", id + ".npy"), depth, height, width);
            Npy.WriteFloat32(Path.Combine(root, "normals", id + ".npy"), normals, height, width, 3);
        }
        File.WriteAllLines(Path.Combine(root, "gt_sets", "train.txt"), ids);
        File.WriteAllLines(Path.Combine(root, "gt_sets", "val.txt"), ids);
        return ids;
    }
}
