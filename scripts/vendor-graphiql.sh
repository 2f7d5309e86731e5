#!/usr/bin/env bash
# Rebuilds api/assets/graphiql/ from the npm registry: GraphiQL's UMD bundle
# and stylesheet, React and ReactDOM 18's production UMD builds, each checked
# against the tarball's published integrity, then stored gzipped (-9 -n, so
# the bytes are reproducible) with SHA256SUMS of the unpacked files, which a
# unit test checks. The server embeds them: GraphiQL works with no network.
#
# usage: scripts/vendor-graphiql.sh [--help]
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/api/assets/graphiql"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# package@version integrity
pkgs=(
  "graphiql@3.9.0 sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
  "react@18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
  "react-dom@18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
)
cd "$tmp"
for p in "${pkgs[@]}"; do
  spec="${p% *}"
  want="${p#* }"
  name="${spec%@*}"
  file="$(npm pack --silent "$spec")"
  got="sha512-$(openssl dgst -sha512 -binary "$file" | base64 -w0)"
  if [[ "$got" != "$want" ]]; then
    echo "integrity mismatch for $spec: $got" >&2
    exit 1
  fi
  mkdir -p "$name"
  tar xzf "$file" -C "$name"
done
files=(
  "graphiql/package/graphiql.min.js"
  "graphiql/package/graphiql.min.css"
  "react/package/umd/react.production.min.js"
  "react-dom/package/umd/react-dom.production.min.js"
)
: > "$out/SHA256SUMS"
for f in "${files[@]}"; do
  base="$(basename "$f")"
  gzip -9 -n -c "$f" > "$out/$base.gz"
  (cd "$(dirname "$f")" && sha256sum "$base") >> "$out/SHA256SUMS"
done
{
  echo "# Licenses of the vendored files"
  echo
  for n in graphiql react react-dom; do
    echo "## $n ($(node -p "require('./$n/package/package.json').version"))"
    echo
    cat "$n/package/LICENSE"
    echo
  done
} > "$out/LICENSES.md"
ls -l "$out"
