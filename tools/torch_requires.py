"""Checks, before anything is timed, that a PyTorch baseline has what it imports, and says what is missing
in one line (exit 2) instead of a traceback halfway through a GPU session. Standard library only: it runs
before `import torch`.

The GPU machines this project is lent have Python 3.12, PyTorch 2.11 (CUDA 13), timm, numpy,
scikit-image, safetensors and onnxruntime; a CPU machine can run the wiring checks with Debian's
python3-torch and python3-numpy.
"""
import importlib
import sys

# module -> what to install
INSTALL = {"torch": "torch", "numpy": "numpy", "timm": "timm", "skimage": "scikit-image"}
CUDNN_OFF = ".cudnn_off"  # id suffix of a row timed with torch.backends.cudnn.benchmark off


def missing(modules):
    """The modules of `modules` that do not import, each as 'name' or 'name (the error)'."""
    out = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ModuleNotFoundError as e:
            out.append(m if e.name == m else f"{m} (needs {e.name})")
        except Exception as e:  # installed but broken (a missing shared library, an ABI mismatch)
            first = (str(e).splitlines() or [""])[0][:120]
            out.append(f"{m} ({type(e).__name__}: {first})")
    return out


def require(script, modules):
    """Exits 2 with one line on stderr when any of `modules` does not import."""
    miss = missing(modules)
    if miss:
        names = " ".join(INSTALL.get(m.split()[0], m.split()[0]) for m in miss)
        print(f"{script}: missing Python modules: {', '.join(miss)}; nothing was timed (pip install {names})",
              file=sys.stderr, flush=True)
        sys.exit(2)


def require_device(script, device):
    """Exits 2 with one line when `device` is cuda and this torch sees no CUDA device, or is neither."""
    import torch
    if device not in ("cpu", "cuda"):
        print(f"{script}: --device must be cpu or cuda, got {device!r}", file=sys.stderr, flush=True)
        sys.exit(2)
    if device == "cuda" and not torch.cuda.is_available():
        print(f"{script}: --device cuda, but torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device; "
              "nothing was timed", file=sys.stderr, flush=True)
        sys.exit(2)


def cudnn_settings(device):
    """The cudnn.benchmark settings to time: on (as PyTorch's users run convolutions), then off
    (PyTorch's default). On the CPU the flag changes nothing, but both rows are written so the
    wiring is the same."""
    return [True, False]
