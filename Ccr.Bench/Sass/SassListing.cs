using System.Text.RegularExpressions;

namespace Ccr.Bench.Sass;

/// <summary>The classes the main-loop mix is counted in (see <see cref="SassListing.Classify"/>).</summary>
public enum InstrClass { Hmma, Ffma, FloatOther, Lds, Ldg, Sts, Integer, Control, Other }

/// <summary>One SASS instruction: its index in the listing, mnemonic with modifiers (<c>IMAD.WIDE.U32</c>),
/// the opcode alone (<c>IMAD</c>), and the branch target label when it has one.</summary>
public sealed record SassInstr(int Index, string Mnemonic, string Opcode, InstrClass Class, string? Target, string Text);

/// <summary>
/// A disassembled kernel (<c>nvdisasm -c</c> output) as a list of instructions and labels, and the
/// classification the main-loop counter uses. Every instruction line (<c>/*0a10*/ @!P0 BRA `(.L_x_4) ;</c>)
/// counts as one issued warp instruction, predicated or not; labels (<c>.L_x_4:</c>) name the index of the
/// next instruction.
/// </summary>
public sealed class SassListing
{
    public List<SassInstr> Instrs { get; } = [];
    public Dictionary<string, int> Labels { get; } = [];

    static readonly Regex Line = new(@"^\s*/\*[0-9a-fA-F]+\*/\s+(?<body>[^;]*);", RegexOptions.Compiled);
    static readonly Regex Label = new(@"^\s*(?<name>\.L[\w$.]*):", RegexOptions.Compiled);
    static readonly Regex Target = new(@"`\((?<name>[^)]+)\)", RegexOptions.Compiled);

    public static SassListing Parse(string sass)
    {
        var l = new SassListing();
        foreach (var raw in sass.Split('\n'))
        {
            var lab = Label.Match(raw);
            if (lab.Success) { l.Labels[lab.Groups["name"].Value] = l.Instrs.Count; continue; }
            var m = Line.Match(raw);
            if (!m.Success) continue;
            string body = m.Groups["body"].Value.Trim();
            if (body.StartsWith('@')) body = body[(body.IndexOf(' ') + 1)..].TrimStart(); // the guard predicate
            string mnemonic = body.Split(' ', 2)[0], opcode = mnemonic.Split('.')[0];
            var t = Target.Match(body);
            l.Instrs.Add(new SassInstr(l.Instrs.Count, mnemonic, opcode, Classify(opcode), t.Success ? t.Groups["name"].Value : null, body));
        }
        return l;
    }

    // integer / predicate ALU and moves; the uniform datapath's U-prefixed forms count here too
    static readonly HashSet<string> Int =
    [
        "IMAD", "IADD3", "IADD", "IMUL", "IMNMX", "VIMNMX", "IABS", "ISETP", "ISCADD", "LEA", "SHF", "SHL", "SHR", "LOP3", "LOP",
        "SEL", "MOV", "PRMT", "POPC", "FLO", "BREV", "BMSK", "SGXT", "PLOP3", "P2R", "R2P", "VIADD", "IDP", "VABSDIFF", "R2UR",
    ];
    static readonly HashSet<string> FloatOther =
        ["FADD", "FMUL", "FMNMX", "FSETP", "FSEL", "FSET", "MUFU", "FCHK", "FRND", "FSWZADD", "HFMA2", "HADD2", "HMUL2", "F2F", "F2FP"];
    static readonly HashSet<string> Control =
    [
        "BRA", "BRX", "JMP", "JMX", "CALL", "RET", "EXIT", "BAR", "BSSY", "BSYNC", "WARPSYNC", "BREAK", "BMOV", "YIELD", "DEPBAR",
        "LDGDEPBAR", "MEMBAR", "ERRBAR", "NANOSLEEP", "KILL", "BPT", "NOP",
    ];

    /// <summary>HMMA; FFMA; other float math (FADD, FMUL, MUFU, min/max, compares, half-precision ops);
    /// LDS (and LDSM); LDG (and LDGSTS, generic LD); STS; integer (IMAD, IADD3, LEA, SHF, LOP3, ISETP, SEL,
    /// MOV, PRMT, ... and their uniform U* forms); control (BRA, BAR, BSSY, BSYNC, WARPSYNC, EXIT, CALL, RET,
    /// DEPBAR, NOP, ...); other (constant loads LDC/ULDC, S2R, STG, atomics, shuffles, conversions, LDL/STL, ...).</summary>
    public static InstrClass Classify(string opcode) => opcode switch
    {
        "HMMA" => InstrClass.Hmma,
        "FFMA" => InstrClass.Ffma,
        "LDS" or "LDSM" => InstrClass.Lds,
        "LDG" or "LDGSTS" or "LD" => InstrClass.Ldg,
        "STS" => InstrClass.Sts,
        _ when FloatOther.Contains(opcode) => InstrClass.FloatOther,
        _ when Control.Contains(opcode) => InstrClass.Control,
        _ when Int.Contains(opcode) || (opcode.Length > 1 && opcode[0] == 'U' && Int.Contains(opcode[1..])) => InstrClass.Integer,
        _ => InstrClass.Other,
    };

    /// <summary>Flops one warp instruction does: FFMA 32 lanes x 2 = 64; HMMA.MNK (<c>HMMA.1688.F32.TF32</c>:
    /// m16 n8 k8) 2 m n k = 2048 for the whole warp; 0 for everything else (FADD / FMUL are not GEMM work).</summary>
    public static double Flops(SassInstr i)
    {
        if (i.Class == InstrClass.Ffma) return 64;
        if (i.Class != InstrClass.Hmma) return 0;
        var parts = i.Mnemonic.Split('.');
        if (parts.Length < 2) return 0;
        string s = parts[1]; // 1688 = 16 x 8 x 8, 16816 = 16 x 8 x 16, 884 = 8 x 8 x 4
        int m = s.StartsWith("16") ? 16 : 8;
        string rest = s[(m == 16 ? 2 : 1)..];
        if (rest.Length < 2 || !int.TryParse(rest[..1], out int n) || !int.TryParse(rest[1..], out int k)) return 0;
        return 2.0 * m * n * k;
    }

    /// <summary>Local-memory instructions (LDL / STL): a spill or a stack array.</summary>
    public int LocalAccesses => Instrs.Count(i => i.Opcode is "LDL" or "STL");
}
