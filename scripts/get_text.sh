#!/usr/bin/env bash
# Puts public-domain English text for calibration and evaluation in data/:
# Jane Austen's six completed novels (1811-1818, public domain), as Debian's
# package r-cran-janeaustenr ships them (the package itself is MIT licensed).
# The package is fetched with `apt-get download` and unpacked with dpkg-deb;
# nothing is installed, R is not needed: the novels sit in R's lazy-load
# database (data/Rdata.rdx + Rdata.rdb), which the reader below decodes.
#
# Writes (git-ignored):
#   data/austen/<book>.txt  one file per novel, one line per line of the book
#   data/calibration.txt    Sense and Sensibility, Northanger Abbey, Mansfield Park
#   data/eval.txt           Pride and Prejudice, Emma, Persuasion
# The two parts share no book, so calibration never sees evaluation text.
# Running it again when the files are present and intact does nothing.
#
# Environment:
#   DSO_DEB_DIR  a folder that already holds r-cran-janeaustenr_1.0.0-1_all.deb
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
package="r-cran-janeaustenr"
version="1.0.0-1"
deb_name="${package}_${version}_all.deb"
data="$root/data"
calibration_books=(sensesensibility northangerabbey mansfieldpark)
eval_books=(prideprejudice emma persuasion)
# SHA-256 of what this script writes, so that every run evaluates the same text.
calibration_sha256="76f02d88c0f416cb38a5471f4d3a75104c40759ace816d929d43897e6eb50703"
eval_sha256="45bf4a2a7c43b1b35f44ac5add96ffbaf0232c5829d424a5794394f61241870a"

die() {
  echo "get_text.sh: $*" >&2
  exit 1
}

sha() { sha256sum "$1" | cut -d ' ' -f 1; }

if [[ -s "$data/calibration.txt" && -s "$data/eval.txt" ]] &&
  [[ "$(sha "$data/calibration.txt")" == "$calibration_sha256" && "$(sha "$data/eval.txt")" == "$eval_sha256" ]]; then
  echo "$data/calibration.txt and $data/eval.txt already present"
  exit 0
fi

command -v python3 >/dev/null || die "python3 is needed to read the package's data"
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to unpack $deb_name"
mkdir -p "$data/austen"

deb_dir="${DSO_DEB_DIR:-$data/.deb}"
deb="$deb_dir/$deb_name"
# apt's own output goes to a log: its success is judged by the file it leaves,
# and only its last error is shown when there is none.
apt_log="$(mktemp)"
trap 'rm -f "$apt_log"' EXIT
download() { (cd "$deb_dir" && apt-get download -q "$package=$version") >>"$apt_log" 2>&1; }
if [[ ! -s "$deb" ]]; then
  command -v apt-get >/dev/null ||
    die "apt-get is needed to download $deb_name; without it, put the file in a folder and set DSO_DEB_DIR to it"
  mkdir -p "$deb_dir"
  echo "downloading $package $version into $deb_dir"
  # A fresh machine may never have fetched apt's package lists: as root they
  # are fetched once and the download tried again.
  if ! download && [[ "$(id -u)" == 0 ]]; then
    echo "fetching apt's package lists (apt-get update) and trying again"
    { apt-get update -q >>"$apt_log" 2>&1 && download; } || true
  fi
  if [[ ! -s "$deb" ]]; then
    hint="put $deb_name in a folder and set DSO_DEB_DIR to it"
    [[ "$(id -u)" == 0 ]] || hint="run 'sudo apt-get update' first, or $hint"
    reason="$(grep '^E:' "$apt_log" | tail -n 1 || true)"
    [[ -n "$reason" ]] || reason="$(grep -v '^ *$' "$apt_log" | tail -n 1 || true)"
    die "apt-get download $package=$version left no $deb_name in $deb_dir (${reason:-apt printed nothing}): $hint"
  fi
fi

unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked" "$apt_log"' EXIT
dpkg-deb -x "$deb" "$unpacked" || die "could not unpack $deb"
lazy_db="$unpacked/usr/lib/R/site-library/janeaustenr/data/Rdata"
[[ -s "$lazy_db.rdx" && -s "$lazy_db.rdb" ]] || die "$deb holds no janeaustenr/data/Rdata.rdx and .rdb"

python3 - "$lazy_db" "$data/austen" "${calibration_books[@]}" "${eval_books[@]}" <<'PY' || die "could not read the novels from $deb"
# R's lazy-load database: the .rdx is a gzip'd serialized list whose
# "variables" entry maps each object's name to (offset, length) in the .rdb;
# each .rdb record is a 4-byte big-endian size and a zlib stream of one
# serialized object (R's XDR serialization, format 2 or 3). A novel is a
# character vector, one element per line of the book.
import gzip, os, struct, sys, zlib

NIL, REF, SYMBOL, PAIRLIST, LANGUAGE, CHARS = 254, 255, 1, 2, 6, 9
LOGICALS, INTEGERS, STRINGS, LIST, EXPRESSIONS = 10, 13, 16, 19, 20
LATIN1 = 1 << 2  # CHARSXP encoding flag, in the flags' "levels" bits


class Vector(list):
    attributes = {}


class Reader:
    def __init__(self, data):
        self.data, self.at, self.symbols = data, 0, []

    def int32(self):
        (value,) = struct.unpack_from(">i", self.data, self.at)
        self.at += 4
        return value

    def length(self):
        n = self.int32()
        return n if n != -1 else (self.int32() << 32) + self.int32()

    def item(self):
        flags = self.int32()
        kind, has_attributes, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == NIL:
            return None
        if kind == REF:
            index = flags >> 8 or self.int32()
            return self.symbols[index - 1]
        if kind == SYMBOL:
            symbol = self.item()
            self.symbols.append(symbol)
            return symbol
        if kind in (PAIRLIST, LANGUAGE):
            attributes = self.item() if has_attributes else None
            tag = self.item() if has_tag else None
            head = self.item()
            return [(tag, head)] + (self.item() or [])
        if kind == CHARS:
            n = self.int32()
            if n == -1:
                return None
            raw = self.data[self.at : self.at + n]
            self.at += n
            return raw.decode("latin-1" if (flags >> 12) & LATIN1 else "utf-8")
        if kind in (LOGICALS, INTEGERS):
            n = self.length()
            value = Vector(struct.unpack_from(">%di" % n, self.data, self.at))
            self.at += 4 * n
        elif kind in (STRINGS, LIST, EXPRESSIONS):
            value = Vector(self.item() for _ in range(self.length()))
        else:
            sys.exit("unexpected R object type %d at byte %d" % (kind, self.at))
        if has_attributes:
            value.attributes = dict(self.item())
        return value

    def top(self):
        if self.data[:2] != b"X\n":
            sys.exit("not R's XDR serialization")
        self.at = 2
        version = self.int32()
        self.int32(), self.int32()  # writer and minimal reader versions
        if version == 3:
            name_length = self.int32()  # then the native encoding's name
            self.at += name_length
        return self.item()


def named(vector):
    return dict(zip(vector.attributes["names"], vector))


lazy_db, out_dir, books = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(lazy_db + ".rdx", "rb") as f:
    index = named(Reader(gzip.decompress(f.read())).top())
where = named(index["variables"])
with open(lazy_db + ".rdb", "rb") as f:
    database = f.read()
for book in books:
    if book not in where:
        sys.exit("the package has no novel '%s' (it has %s)" % (book, ", ".join(where)))
    offset, size = where[book]
    record = database[offset : offset + size]
    (expected,) = struct.unpack(">I", record[:4])
    body = zlib.decompress(record[4:])
    if len(body) != expected:
        sys.exit("%s: record holds %d bytes, its header says %d" % (book, len(body), expected))
    lines = Reader(body).top()
    with open(os.path.join(out_dir, book + ".txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(line or "" for line in lines) + "\n")
PY

join_books() {
  local out="$1"
  shift
  : >"$out.part"
  for book in "$@"; do cat "$data/austen/$book.txt" >>"$out.part"; done
  mv "$out.part" "$out"
}
join_books "$data/calibration.txt" "${calibration_books[@]}"
join_books "$data/eval.txt" "${eval_books[@]}"

for part in calibration eval; do
  want="${part}_sha256"
  got="$(sha "$data/$part.txt")"
  [[ "$got" == "${!want}" ]] || die "$data/$part.txt has SHA-256 $got, expected ${!want}"
done
echo "wrote $data/calibration.txt (${calibration_books[*]}, $(wc -c <"$data/calibration.txt") bytes)"
echo "wrote $data/eval.txt (${eval_books[*]}, $(wc -c <"$data/eval.txt") bytes)"
