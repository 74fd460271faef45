namespace Ccr.Training.Data;

/// <summary>
/// SynthRooms semantic classes (0..9) and human parts (0..4). Stored on disk NYUD-style as
/// class + 1 with 0 = unlabelled (every synthetic pixel is labelled).
/// Saliency is 1 on the free-standing objects (box, sphere, cylinder, person), 0 on the room and
/// on the thin wall panels (picture, door, window), which belong to the room.
/// </summary>
public static class SynthClasses
{
    public const int Floor = 0, Wall = 1, Ceiling = 2, Cabinet = 3, Ball = 4, Pillar = 5,
        Picture = 6, Door = 7, Window = 8, Person = 9;
    public const int Count = 10;

    /// <summary>Human parts: 0 background (every non-person pixel), 1 head, 2 torso, 3 arms, 4 legs.</summary>
    public const int PartNone = 0, PartHead = 1, PartTorso = 2, PartArms = 3, PartLegs = 4;
    public const int PartsCount = 5;

    public static readonly string[] Names =
        ["floor", "wall", "ceiling", "cabinet", "ball", "pillar", "picture", "door", "window", "person"];

    public static bool IsSalient(int cls) => cls is Cabinet or Ball or Pillar or Person;

    /// <summary>Base albedo (linear RGB) per class.</summary>
    public static readonly double[][] Albedo =
    [
        [0.55, 0.42, 0.30], [0.80, 0.78, 0.72], [0.92, 0.92, 0.90], [0.45, 0.30, 0.18], [0.85, 0.25, 0.20],
        [0.35, 0.55, 0.75], [0.25, 0.45, 0.30], [0.60, 0.45, 0.35], [0.70, 0.85, 0.95], [0.75, 0.60, 0.50],
    ];
}

/// <summary>A double 3-vector; only +, -, *, / and sqrt, which IEEE 754 rounds identically everywhere.</summary>
public readonly record struct Vec3(double X, double Y, double Z)
{
    public static Vec3 operator +(Vec3 a, Vec3 b) => new(a.X + b.X, a.Y + b.Y, a.Z + b.Z);
    public static Vec3 operator -(Vec3 a, Vec3 b) => new(a.X - b.X, a.Y - b.Y, a.Z - b.Z);
    public static Vec3 operator *(Vec3 a, double s) => new(a.X * s, a.Y * s, a.Z * s);
    public static Vec3 operator -(Vec3 a) => new(-a.X, -a.Y, -a.Z);
    public double Dot(Vec3 b) => X * b.X + Y * b.Y + Z * b.Z;
    public Vec3 Cross(Vec3 b) => new(Y * b.Z - Z * b.Y, Z * b.X - X * b.Z, X * b.Y - Y * b.X);
    public double Length => Math.Sqrt(Dot(this));
    public Vec3 Normalized() { double l = Length; return l > 0 ? this * (1.0 / l) : this; }
}

/// <summary>
/// Sine and cosine from +, * only (range reduction and a Taylor series), so that scene geometry and
/// therefore every label is bit-identical across machines; Math.Sin may differ in the last bit
/// between C runtimes.
/// </summary>
public static class DetMath
{
    public static double Sin(double x)
    {
        const double twoPi = 2 * Math.PI;
        x -= twoPi * Math.Floor(x / twoPi + 0.5); // now in [-pi, pi]
        double x2 = x * x, term = x, sum = x;
        for (int k = 1; k < 14; k++)
        {
            term *= -x2 / ((2 * k) * (2 * k + 1));
            sum += term;
        }
        return sum;
    }

    public static double Cos(double x) => Sin(x + Math.PI / 2);

    public static double Radians(double deg) => deg * (Math.PI / 180.0);
}

public enum ShapeKind { Box, Sphere, Cylinder }

/// <summary>
/// One solid: a box (rotated about the vertical axis by its yaw), a sphere, or a vertical capped
/// cylinder. Labels come from the fields, so colour, class, depth, normals and parts agree.
/// </summary>
public sealed class Shape
{
    public ShapeKind Kind;
    public Vec3 Center;          // box / sphere centre; cylinder: centre of the axis
    public Vec3 Half;            // box half-sizes (local x, y, z); cylinder: (radius, half height, -)
    public double Radius;        // sphere
    public double CosYaw = 1, SinYaw;
    public int Class, Instance, Part;
    public Vec3 Albedo;
    private double _boundSq = -1; // squared radius of a sphere around Center that holds the solid

    /// <summary>Precomputes the bounding sphere; call once after the fields are set.</summary>
    public void Prepare()
    {
        double r = Kind switch
        {
            ShapeKind.Sphere => Radius,
            ShapeKind.Box => Half.Length,
            _ => Math.Sqrt(Half.X * Half.X + Half.Y * Half.Y),
        };
        _boundSq = r * r * 1.0001 + 1e-9;
    }

    /// <summary>Nearest hit with t in (tMin, tMax): returns t and the outward world normal.</summary>
    public bool Intersect(Vec3 o, Vec3 d, double tMin, double tMax, out double t, out Vec3 n)
    {
        t = 0; n = default;
        // Cheap rejection: the ray's closest approach to the bounding sphere's centre.
        Vec3 oc = Center - o;
        double proj = oc.Dot(d), dd = d.Dot(d);
        if (_boundSq >= 0 && oc.Dot(oc) - proj * proj / dd > _boundSq) return false;
        Vec3 lo = ToLocal(o - Center), ld = ToLocal(d);
        Vec3 ln;
        switch (Kind)
        {
            case ShapeKind.Sphere:
            {
                double a = ld.Dot(ld), b = lo.Dot(ld), c = lo.Dot(lo) - Radius * Radius;
                double disc = b * b - a * c;
                if (disc < 0) return false;
                double s = Math.Sqrt(disc);
                double t0 = (-b - s) / a;
                if (t0 <= tMin) t0 = (-b + s) / a;
                if (t0 <= tMin || t0 >= tMax) return false;
                t = t0;
                ln = (lo + ld * t0) * (1.0 / Radius);
                break;
            }
            case ShapeKind.Box:
            {
                if (!Slab(lo, ld, Half, tMin, tMax, out t, out ln)) return false;
                break;
            }
            default:
            {
                // Side: x^2 + z^2 = r^2 with |y| <= h; caps: y = +-h with x^2 + z^2 <= r^2.
                double r = Half.X, h = Half.Y, best = tMax;
                ln = default;
                double a = ld.X * ld.X + ld.Z * ld.Z, b = lo.X * ld.X + lo.Z * ld.Z, c = lo.X * lo.X + lo.Z * lo.Z - r * r;
                if (a > 1e-12)
                {
                    double disc = b * b - a * c;
                    if (disc >= 0)
                    {
                        double s = Math.Sqrt(disc);
                        for (int k = 0; k < 2; k++)
                        {
                            double tc = (-b + (k == 0 ? -s : s)) / a;
                            if (tc <= tMin || tc >= best) continue;
                            double y = lo.Y + ld.Y * tc;
                            if (y < -h || y > h) continue;
                            best = tc;
                            ln = new Vec3((lo.X + ld.X * tc) / r, 0, (lo.Z + ld.Z * tc) / r);
                        }
                    }
                }
                if (Math.Abs(ld.Y) > 1e-12)
                {
                    for (int k = 0; k < 2; k++)
                    {
                        double cy = k == 0 ? -h : h;
                        double tc = (cy - lo.Y) / ld.Y;
                        if (tc <= tMin || tc >= best) continue;
                        double x = lo.X + ld.X * tc, z = lo.Z + ld.Z * tc;
                        if (x * x + z * z > r * r) continue;
                        best = tc;
                        ln = new Vec3(0, cy > 0 ? 1 : -1, 0);
                    }
                }
                if (best >= tMax) return false;
                t = best;
                break;
            }
        }
        n = ToWorld(ln);
        return true;
    }

    /// <summary>Ray against an axis-aligned box |p| &lt;= half: the entering face, or the exit face from inside.</summary>
    public static bool Slab(Vec3 o, Vec3 d, Vec3 half, double tMin, double tMax, out double t, out Vec3 n)
    {
        double tNear = double.NegativeInfinity, tFar = double.PositiveInfinity;
        int nearAxis = 0, farAxis = 0;
        double nearSign = 0, farSign = 0;
        for (int axis = 0; axis < 3; axis++)
        {
            double oa = axis == 0 ? o.X : axis == 1 ? o.Y : o.Z;
            double da = axis == 0 ? d.X : axis == 1 ? d.Y : d.Z;
            double ha = axis == 0 ? half.X : axis == 1 ? half.Y : half.Z;
            if (Math.Abs(da) < 1e-300)
            {
                if (oa < -ha || oa > ha) { t = 0; n = default; return false; }
                continue;
            }
            double t1 = (-ha - oa) / da, t2 = (ha - oa) / da;
            double s1 = -1, s2 = 1;
            if (t1 > t2) { (t1, t2) = (t2, t1); (s1, s2) = (s2, s1); }
            if (t1 > tNear) { tNear = t1; nearAxis = axis; nearSign = s1; }
            if (t2 < tFar) { tFar = t2; farAxis = axis; farSign = s2; }
        }
        n = default;
        t = 0;
        if (tNear > tFar) return false;
        if (tNear > tMin && tNear < tMax) { t = tNear; n = Axis(nearAxis, nearSign); return true; }
        if (tFar > tMin && tFar < tMax) { t = tFar; n = Axis(farAxis, farSign); return true; }
        return false;
    }

    private static Vec3 Axis(int axis, double s) =>
        axis == 0 ? new Vec3(s, 0, 0) : axis == 1 ? new Vec3(0, s, 0) : new Vec3(0, 0, s);

    // Local frame = world rotated by -yaw about y.
    private Vec3 ToLocal(Vec3 v) => new(CosYaw * v.X - SinYaw * v.Z, v.Y, SinYaw * v.X + CosYaw * v.Z);
    private Vec3 ToWorld(Vec3 v) => new(CosYaw * v.X + SinYaw * v.Z, v.Y, -SinYaw * v.X + CosYaw * v.Z);
}
