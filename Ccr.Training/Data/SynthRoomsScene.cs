namespace Ccr.Training.Data;

/// <summary>
/// One SynthRooms scene: a box room [0, Lx] x [0, Hr] x [0, Lz] (world y up, metres), a pinhole
/// camera inside it, a point light under the ceiling and a list of solids. A pure function of
/// (seed, index): <see cref="Sample(ulong, int)"/> draws everything from one <see cref="Rng"/>
/// stream and uses only deterministic arithmetic (see <see cref="DetMath"/>).
/// </summary>
public sealed class SynthScene
{
    // Room instances: floor 1, ceiling 2, walls 3..6; objects from FirstObjectInstance.
    public const int FloorInstance = 1, CeilingInstance = 2, FirstWallInstance = 3, FirstObjectInstance = 7;

    public double Lx, Lz, Hr;
    /// <summary>Camera centre and its basis in world coordinates (OpenCV frame: x right, y down, z forward).</summary>
    public Vec3 CamPos, Right, Down, Forward;
    /// <summary>Horizontal field of view in radians; focal length in pixels is set per resolution.</summary>
    public double FovX;
    public Vec3 Light;
    public Vec3[] WallAlbedo = new Vec3[6];
    public readonly List<Shape> Shapes = [];

    public static SynthScene Sample(ulong seed, int index)
    {
        var rng = KeyedRng.From(seed, (ulong)index, 0x5CE4E);
        var s = new SynthScene
        {
            Lx = rng.Uniform(4.0, 7.0),
            Lz = rng.Uniform(4.0, 7.0),
            Hr = rng.Uniform(2.5, 3.2),
        };
        s.CamPos = new Vec3(rng.Uniform(0.6, s.Lx - 0.6), rng.Uniform(1.1, 1.7), rng.Uniform(0.6, s.Lz - 0.6));
        double yaw = rng.Uniform(0, 2 * Math.PI), pitch = DetMath.Radians(rng.Uniform(-25, 2));
        double cy = DetMath.Cos(yaw), sy = DetMath.Sin(yaw), cp = DetMath.Cos(pitch), sp = DetMath.Sin(pitch);
        s.Forward = new Vec3(cp * sy, sp, cp * cy);
        s.Right = new Vec3(-cy, 0, sy);
        s.Down = s.Forward.Cross(s.Right);
        s.FovX = DetMath.Radians(rng.Uniform(60, 75));
        s.Light = new Vec3(rng.Uniform(1.0, s.Lx - 1.0), s.Hr - 0.1, rng.Uniform(1.0, s.Lz - 1.0));
        for (int i = 0; i < 6; i++) s.WallAlbedo[i] = Jitter(ref rng, SynthClasses.Albedo[i switch { 0 => 0, 1 => 2, _ => 1 }], 0.08);

        int instance = FirstObjectInstance;
        int nObjects = 2 + rng.NextInt(5);
        for (int k = 0; k < nObjects; k++)
        {
            // Objects go mostly in front of the camera so that most images show several of them.
            double dist = rng.Uniform(1.4, 4.0), ang = yaw + DetMath.Radians(rng.Uniform(-35, 35));
            double px = s.CamPos.X + dist * DetMath.Sin(ang), pz = s.CamPos.Z + dist * DetMath.Cos(ang);
            double objYaw = rng.Uniform(0, 2 * Math.PI);
            double u = rng.NextDouble();
            if (u < 0.35) s.AddBox(ref rng, px, pz, objYaw, instance++);
            else if (u < 0.55) s.AddSphere(ref rng, px, pz, instance++);
            else if (u < 0.75) s.AddCylinder(ref rng, px, pz, instance++);
            else s.AddPerson(ref rng, px, pz, objYaw, instance++);
        }
        int nPanels = 1 + rng.NextInt(3);
        for (int k = 0; k < nPanels; k++) s.AddPanel(ref rng, instance++);
        foreach (var shape in s.Shapes) shape.Prepare();
        return s;
    }

    private static Vec3 Jitter(ref KeyedRng rng, double[] c, double amount) => new(
        Math.Clamp(c[0] + rng.Uniform(-amount, amount), 0.02, 0.98),
        Math.Clamp(c[1] + rng.Uniform(-amount, amount), 0.02, 0.98),
        Math.Clamp(c[2] + rng.Uniform(-amount, amount), 0.02, 0.98));

    private (double X, double Z) Inside(double x, double z, double margin) =>
        (Math.Clamp(x, margin + 0.05, Lx - margin - 0.05), Math.Clamp(z, margin + 0.05, Lz - margin - 0.05));

    private void AddBox(ref KeyedRng rng, double x, double z, double yaw, int inst)
    {
        var half = new Vec3(rng.Uniform(0.2, 0.6), rng.Uniform(0.2, 0.9), rng.Uniform(0.2, 0.5));
        (x, z) = Inside(x, z, Math.Max(half.X, half.Z) * 1.5);
        Shapes.Add(new Shape
        {
            Kind = ShapeKind.Box, Center = new Vec3(x, half.Y, z), Half = half,
            CosYaw = DetMath.Cos(yaw), SinYaw = DetMath.Sin(yaw),
            Class = SynthClasses.Cabinet, Instance = inst, Albedo = Jitter(ref rng, SynthClasses.Albedo[SynthClasses.Cabinet], 0.15),
        });
    }

    private void AddSphere(ref KeyedRng rng, double x, double z, int inst)
    {
        double r = rng.Uniform(0.15, 0.45);
        (x, z) = Inside(x, z, r);
        Shapes.Add(new Shape
        {
            Kind = ShapeKind.Sphere, Center = new Vec3(x, r, z), Radius = r,
            Class = SynthClasses.Ball, Instance = inst, Albedo = Jitter(ref rng, SynthClasses.Albedo[SynthClasses.Ball], 0.2),
        });
    }

    private void AddCylinder(ref KeyedRng rng, double x, double z, int inst)
    {
        double r = rng.Uniform(0.1, 0.35), h = rng.Uniform(0.3, 1.1);
        (x, z) = Inside(x, z, r);
        Shapes.Add(new Shape
        {
            Kind = ShapeKind.Cylinder, Center = new Vec3(x, h, z), Half = new Vec3(r, h, 0),
            Class = SynthClasses.Pillar, Instance = inst, Albedo = Jitter(ref rng, SynthClasses.Albedo[SynthClasses.Pillar], 0.15),
        });
    }

    /// <summary>A standing figure of 2 legs, torso, 2 arms (boxes) and a head (sphere), all one instance.</summary>
    private void AddPerson(ref KeyedRng rng, double x, double z, double yaw, int inst)
    {
        double sc = rng.Uniform(0.9, 1.1);
        (x, z) = Inside(x, z, 0.35 * sc);
        double c = DetMath.Cos(yaw), s = DetMath.Sin(yaw);
        var skin = Jitter(ref rng, [0.80, 0.62, 0.50], 0.12);
        var shirt = Jitter(ref rng, [0.40, 0.40, 0.60], 0.3);
        var trousers = Jitter(ref rng, [0.20, 0.22, 0.35], 0.15);
        void Part(double ox, double y, double oz, Vec3 half, int part, Vec3 albedo)
        {
            // Local offset (ox, oz) rotated by the figure's yaw, as Shape.ToWorld does.
            var center = new Vec3(x + c * ox + s * oz, y, z - s * ox + c * oz);
            Shapes.Add(new Shape
            {
                Kind = ShapeKind.Box, Center = center, Half = half, CosYaw = c, SinYaw = s,
                Class = SynthClasses.Person, Instance = inst, Part = part, Albedo = albedo,
            });
        }
        Part(-0.10 * sc, 0.43 * sc, 0, new Vec3(0.07 * sc, 0.43 * sc, 0.08 * sc), SynthClasses.PartLegs, trousers);
        Part(0.10 * sc, 0.43 * sc, 0, new Vec3(0.07 * sc, 0.43 * sc, 0.08 * sc), SynthClasses.PartLegs, trousers);
        Part(0, 1.16 * sc, 0, new Vec3(0.19 * sc, 0.30 * sc, 0.11 * sc), SynthClasses.PartTorso, shirt);
        Part(-0.25 * sc, 1.13 * sc, 0, new Vec3(0.05 * sc, 0.30 * sc, 0.05 * sc), SynthClasses.PartArms, shirt);
        Part(0.25 * sc, 1.13 * sc, 0, new Vec3(0.05 * sc, 0.30 * sc, 0.05 * sc), SynthClasses.PartArms, shirt);
        Shapes.Add(new Shape
        {
            Kind = ShapeKind.Sphere, Center = new Vec3(x, 1.59 * sc, z), Radius = 0.12 * sc,
            Class = SynthClasses.Person, Instance = inst, Part = SynthClasses.PartHead, Albedo = skin,
        });
    }

    /// <summary>A thin panel 2 cm off a wall: a picture, a door (from the floor) or a window.</summary>
    private void AddPanel(ref KeyedRng rng, int inst)
    {
        int wall = rng.NextInt(4);
        double u = rng.NextDouble();
        int cls = u < 0.45 ? SynthClasses.Picture : u < 0.75 ? SynthClasses.Door : SynthClasses.Window;
        double hw = cls == SynthClasses.Door ? rng.Uniform(0.4, 0.5) : rng.Uniform(0.25, 0.7);
        double hh = cls == SynthClasses.Door ? 1.0 : rng.Uniform(0.2, 0.5);
        double yc = cls == SynthClasses.Door ? 1.0 : rng.Uniform(1.0 + hh, Math.Min(Hr - 0.2 - hh, 2.4));
        double along = wall < 2 ? Lz : Lx;
        double pos = rng.Uniform(hw + 0.2, along - hw - 0.2);
        const double off = 0.02, thick = 0.015;
        Vec3 center, half;
        switch (wall)
        {
            case 0: center = new Vec3(off + thick, yc, pos); half = new Vec3(thick, hh, hw); break;
            case 1: center = new Vec3(Lx - off - thick, yc, pos); half = new Vec3(thick, hh, hw); break;
            case 2: center = new Vec3(pos, yc, off + thick); half = new Vec3(hw, hh, thick); break;
            default: center = new Vec3(pos, yc, Lz - off - thick); half = new Vec3(hw, hh, thick); break;
        }
        Shapes.Add(new Shape
        {
            Kind = ShapeKind.Box, Center = center, Half = half,
            Class = cls, Instance = inst, Albedo = Jitter(ref rng, SynthClasses.Albedo[cls], 0.15),
        });
    }
}
