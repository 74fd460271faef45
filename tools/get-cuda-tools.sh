#!/usr/bin/env bash
# tools/get-cuda-tools.sh [DEST]   (DEST defaults to .cuda-tools)
#
# Puts NVIDIA's offline CUDA 11.8 tools (ptxas, nvdisasm, cuobjdump) under DEST without a GPU, a driver
# or root: Debian ships them in the non-free package nvidia-cuda-toolkit. apt downloads that one .deb
# through a throw-away configuration (the machine's own Debian source with the non-free component
# added; nothing in /etc or /var is changed), and dpkg-deb unpacks it into DEST; nothing is installed.
# `Ccr.Bench sass` then assembles ILGPU's PTX for sm_90 / sm_80 and reads the machine code.
#
# Prints DEST/usr/bin (the folder with ptxas) on stdout, everything else on stderr. Running it again
# with the tools already there only prints the folder.
set -euo pipefail
dest=$(realpath -m "${1:-.cuda-tools}")
bin="$dest/usr/bin"
if [ -x "$bin/ptxas" ] && [ -x "$bin/nvdisasm" ]; then echo "$bin"; exit 0; fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  { echo "get-cuda-tools: needs apt-get and dpkg-deb (a Debian machine)" >&2; exit 1; }
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] ||
  { echo "get-cuda-tools: no $sources; download nvidia-cuda-toolkit (non-free) by hand and unpack it with dpkg-deb -x into $dest" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sources" "$work/lists/partial" "$work/cache/archives/partial"
# every "Components: main ..." line of the machine's deb822 source also gets non-free
sed -E '/^Components:/{/non-free( |$)/!s/$/ non-free/}' "$sources" > "$work/sources/debian.sources"
apt_opts=(-qq
  -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/sources"
  -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o Dir::Cache::Archives="$work/cache/archives"
  -o APT::Sandbox::User=root)
echo "get-cuda-tools: fetching the non-free package index" >&2
apt-get "${apt_opts[@]}" update >&2
echo "get-cuda-tools: downloading nvidia-cuda-toolkit" >&2
(cd "$work" && apt-get "${apt_opts[@]}" download nvidia-cuda-toolkit >&2)
deb=$(ls "$work"/nvidia-cuda-toolkit_*.deb)
mkdir -p "$dest"
dpkg-deb -x "$deb" "$dest"
for tool in ptxas nvdisasm cuobjdump; do
  [ -x "$bin/$tool" ] || { echo "get-cuda-tools: $(basename "$deb") has no usr/bin/$tool" >&2; exit 1; }
done
"$bin/ptxas" --version | tail -n 1 >&2
echo "$bin"
