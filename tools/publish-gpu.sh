#!/usr/bin/env bash
# A self-contained single-file linux-x64 build of one project (default Ccr.Bench, which reaches every kernel,
# the trainer and the GPU report) into .gpu/<Project>/, for a GPU machine that has the NVIDIA driver and no
# .NET SDK. ONNX Runtime's natives stay out (-p:CcrGpuPublish=true, Directory.Build.targets) so .gpu/ plus
# the tracked files keep under the device tool's 64 MiB. Run from anywhere; prints the size.
set -euo pipefail
cd "$(dirname "$0")/.."
proj=${1:-Ccr.Bench}
[ -d "$proj" ] || { echo "no project folder $proj" >&2; exit 2; }
grep -qxF '.gpu/' .gitignore 2>/dev/null || echo '.gpu/' >> .gitignore
rm -rf ".gpu/$proj"
dotnet publish "$proj" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true \
  -p:IncludeNativeLibrariesForSelfExtract=true -p:DebugType=none -p:CcrGpuPublish=true -o ".gpu/$proj" >/dev/null
du -sh ".gpu/$proj"
echo "carry: [\".gpu\"]   run: .gpu/$proj/$proj ..."
