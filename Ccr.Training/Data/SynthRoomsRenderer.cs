namespace Ccr.Training.Data;

/// <summary>
/// Renders a <see cref="SynthScene"/> by casting one ray per pixel centre, rows in parallel. All
/// labels come from the same hit: semantic class and part from the solid, depth = the hit's z in
/// the camera frame (the ray direction has camera-z 1, so the ray parameter is the depth), the
/// normal in the camera frame turned towards the camera, edges where the instance id of a pixel
/// differs from its right or lower neighbour (one pixel thin), saliency from the class.
/// The RGB image is quantised to 8 bits so that the in-memory sample equals the cached PNG.
/// </summary>
public static class SynthRoomsRenderer
{
    public static Sample Render(ulong seed, int index, int height, int width, string? id = null)
    {
        var scene = SynthScene.Sample(seed, index);
        int n = height * width;
        var image = new float[3 * n];
        var semseg = new int[n];
        var depth = new float[n];
        var normals = new float[3 * n];
        var parts = new int[n];
        var sal = new int[n];
        var inst = new int[n];
        // Focal length from the horizontal field of view; tan = sin / cos keeps it deterministic.
        double half = scene.FovX / 2;
        double fx = (width / 2.0) * DetMath.Cos(half) / DetMath.Sin(half);
        double cx = width / 2.0, cy = height / 2.0;
        Parallel.For(0, height, y =>
        {
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                double u = (x + 0.5 - cx) / fx, v = (y + 0.5 - cy) / fx;
                Vec3 d = scene.Right * u + scene.Down * v + scene.Forward;
                var hit = Cast(scene, d);
                Vec3 nw = hit.Normal;
                if (nw.Dot(d) > 0) nw = -nw;
                Vec3 p = scene.CamPos + d * hit.T;
                semseg[i] = hit.Class;
                parts[i] = hit.Part;
                sal[i] = SynthClasses.IsSalient(hit.Class) ? 1 : 0;
                inst[i] = hit.Instance;
                depth[i] = (float)hit.T;
                normals[i] = (float)nw.Dot(scene.Right);
                normals[n + i] = (float)nw.Dot(scene.Down);
                normals[2 * n + i] = (float)nw.Dot(scene.Forward);
                Vec3 rgb = Shade(scene, hit, p, nw, seed, index, i);
                image[i] = ImageIo.ToByte((float)(rgb.X * 255)) / 255f;
                image[n + i] = ImageIo.ToByte((float)(rgb.Y * 255)) / 255f;
                image[2 * n + i] = ImageIo.ToByte((float)(rgb.Z * 255)) / 255f;
            }
        });
        return new Sample
        {
            Id = id ?? $"{index:D6}", Height = height, Width = width, Image = image, Semseg = semseg,
            Depth = depth, Normals = normals, Edge = InstanceEdges(inst, height, width), Saliency = sal, Parts = parts,
        };
    }

    /// <summary>1 where the instance differs from the right or lower neighbour: one pixel thin.</summary>
    public static float[] InstanceEdges(int[] inst, int height, int width)
    {
        var e = new float[height * width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                if ((x + 1 < width && inst[i] != inst[i + 1]) || (y + 1 < height && inst[i] != inst[i + width])) e[i] = 1;
            }
        return e;
    }

    private struct Hit
    {
        public double T;
        public Vec3 Normal, Albedo;
        public int Class, Instance, Part, Texture; // Texture: 0 none, 1 floor tiles, 2 wall stripes
    }

    private static Hit Cast(SynthScene s, Vec3 d)
    {
        var hit = new Hit();
        // The room: from inside, the slab test returns the exit face.
        var roomHalf = new Vec3(s.Lx / 2, s.Hr / 2, s.Lz / 2);
        var roomCenter = new Vec3(s.Lx / 2, s.Hr / 2, s.Lz / 2);
        if (!Shape.Slab(s.CamPos - roomCenter, d, roomHalf, 1e-9, double.PositiveInfinity, out double tr, out Vec3 nr))
            throw new InvalidOperationException("SynthRooms: camera ray left the room (camera outside?)");
        hit.T = tr;
        hit.Normal = nr;
        if (nr.Y < -0.5) { hit.Class = SynthClasses.Floor; hit.Instance = SynthScene.FloorInstance; hit.Texture = 1; hit.Albedo = s.WallAlbedo[0]; }
        else if (nr.Y > 0.5) { hit.Class = SynthClasses.Ceiling; hit.Instance = SynthScene.CeilingInstance; hit.Albedo = s.WallAlbedo[1]; }
        else
        {
            int w = nr.X < -0.5 ? 0 : nr.X > 0.5 ? 1 : nr.Z < -0.5 ? 2 : 3;
            hit.Class = SynthClasses.Wall; hit.Instance = SynthScene.FirstWallInstance + w; hit.Texture = 2; hit.Albedo = s.WallAlbedo[2 + w];
        }
        foreach (var shape in s.Shapes)
        {
            if (!shape.Intersect(s.CamPos, d, 1e-9, hit.T, out double t, out Vec3 n)) continue;
            hit.T = t; hit.Normal = n; hit.Class = shape.Class; hit.Instance = shape.Instance;
            hit.Part = shape.Part; hit.Albedo = shape.Albedo; hit.Texture = 0;
        }
        return hit;
    }

    /// <summary>Albedo x procedural texture x (ambient + Lambert from the point light) + sensor noise.</summary>
    private static Vec3 Shade(SynthScene s, Hit hit, Vec3 p, Vec3 n, ulong seed, int index, int pixel)
    {
        double tex = 1.0;
        if (hit.Texture == 1)
            tex = ((long)Math.Floor(p.X / 0.5) + (long)Math.Floor(p.Z / 0.5)) % 2 == 0 ? 1.0 : 0.82;
        else if (hit.Texture == 2)
            tex = ((long)Math.Floor((p.X + p.Z) / 0.3) & 1) == 0 ? 1.0 : 0.94;
        else
        {
            // Blotchy 10 cm cells hashed from the position: texture that moves with the surface.
            ulong cell = KeyedRng.Hash((ulong)(long)Math.Floor(p.X * 10), (ulong)(long)Math.Floor(p.Y * 10), (ulong)(long)Math.Floor(p.Z * 10), (ulong)hit.Instance);
            tex = 0.88 + 0.12 * KeyedRng.ToUnit(cell);
        }
        Vec3 l = s.Light - p;
        double dist = l.Length;
        double lambert = Math.Max(0, n.Dot(l) / dist);
        double shade = 0.3 + 0.75 * lambert / (1 + 0.04 * dist * dist);
        double noise = (KeyedRng.ToUnit(KeyedRng.Hash(seed, (ulong)index, (ulong)pixel, 0x701CE)) - 0.5) * 0.04;
        return new Vec3(
            Math.Clamp(hit.Albedo.X * tex * shade + noise, 0, 1),
            Math.Clamp(hit.Albedo.Y * tex * shade + noise, 0, 1),
            Math.Clamp(hit.Albedo.Z * tex * shade + noise, 0, 1));
    }
}
