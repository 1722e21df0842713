#!/bin/sh
# Install a released shipit binary: pick the build for this OS and CPU, download
# it with its SHA-256 file, check the checksum, check that the binary runs and is
# the version asked for, and only then put it in place. Any failure leaves the
# install directory as it was.
#
# The action (action.yml), the CircleCI orb (orb/) and the one-line installer in
# the README all run this script. POSIX sh, so that `curl ... | sh` works on any
# Linux or macOS runner. (The orb inlines this file: keep it free of the
# two-character sequence CircleCI reads as a parameter, i.e. no heredocs.)
#
#   install.sh [--version vX.Y.Z|latest] [--base-url URL] [--to DIR] [--target TRIPLE]
#   install.sh --print-target          the release target for this machine
#   install.sh --tag-from-ref REF      REF's release tag (refs/tags/v1.2.3 -> v1.2.3),
#                                      exit 1 if REF is not a release tag
#
# Options, each also read from the environment (the option wins):
#   --version   SHIPIT_INSTALL_VERSION   release tag, e.g. v0.2.0; default latest
#   --base-url  SHIPIT_INSTALL_BASE_URL  where the release's files are: https://...,
#                                        file:///..., or http:// on loopback only (tests);
#                                        default https://github.com/<repo>/releases/download/<version>
#   --repo      SHIPIT_INSTALL_REPO      GitHub OWNER/NAME the releases come from
#   --to        SHIPIT_INSTALL_DIR       directory the binary goes in; default $HOME/.shipit/bin
#   --target    SHIPIT_INSTALL_TARGET    skip detection (one of the targets below)
#
# The files are the ones cargo-dist attaches to a release (dist-workspace.toml):
#   shipit-<target>.tar.gz           holding shipit-<target>/shipit
#   shipit-<target>.tar.gz.sha256    "<64 hex> *shipit-<target>.tar.gz"
#
# Exit: 0 installed (or already there), 1 download or verification failed,
# 2 bad input or a platform with no release build. Nothing is installed unless 0.
set -eu

# The GitHub repository the releases are published from (Cargo.toml's
# `repository`; a test keeps the two the same).
DEFAULT_REPO=OWNER/shipit
# What the release pipeline builds (dist-workspace.toml's `targets`; a test
# keeps the two the same).
TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin"

say() { printf 'shipit install: %s\n' "$*" >&2; }
# fail CODE MESSAGE HINT
fail() {
  printf 'error: %s\n' "$2" >&2
  if [ -n "${3:-}" ]; then printf 'hint: %s\n' "$3" >&2; fi
  exit "$1"
}

usage() {
  printf '%s\n' \
    'usage: install.sh [--version vX.Y.Z|latest] [--base-url URL] [--repo OWNER/NAME] [--to DIR] [--target TRIPLE]' \
    '       install.sh --print-target | --tag-from-ref REF' \
    '' \
    'Installs a released shipit after checking its SHA-256. Options can also be given as' \
    'SHIPIT_INSTALL_VERSION, SHIPIT_INSTALL_BASE_URL, SHIPIT_INSTALL_REPO, SHIPIT_INSTALL_DIR and SHIPIT_INSTALL_TARGET.' \
    "Default: the latest release of $DEFAULT_REPO into \$HOME/.shipit/bin."
}

version=${SHIPIT_INSTALL_VERSION:-}
base_url=${SHIPIT_INSTALL_BASE_URL:-}
repo=${SHIPIT_INSTALL_REPO:-$DEFAULT_REPO}
install_dir=${SHIPIT_INSTALL_DIR:-}
target=${SHIPIT_INSTALL_TARGET:-}
mode=install
ref=

need_value() { if [ "$2" -lt 2 ]; then fail 2 "$1 needs a value" "run with --help for the options"; fi; }
while [ $# -gt 0 ]; do
  case $1 in
    --version) need_value "$1" $#; version=$2; shift 2 ;;
    --version=*) version=${1#*=}; shift ;;
    --base-url) need_value "$1" $#; base_url=$2; shift 2 ;;
    --base-url=*) base_url=${1#*=}; shift ;;
    --repo) need_value "$1" $#; repo=$2; shift 2 ;;
    --repo=*) repo=${1#*=}; shift ;;
    --to) need_value "$1" $#; install_dir=$2; shift 2 ;;
    --to=*) install_dir=${1#*=}; shift ;;
    --target) need_value "$1" $#; target=$2; shift 2 ;;
    --target=*) target=${1#*=}; shift ;;
    --print-target) mode='print-target'; shift ;;
    --tag-from-ref) need_value "$1" $#; mode='tag-from-ref'; ref=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) fail 2 "unknown argument \`$1\`" "run with --help for the options" ;;
  esac
done

is_release_tag() {
  printf '%s\n' "$1" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$'
}

if [ "$mode" = tag-from-ref ]; then
  tag=${ref#refs/tags/}
  if is_release_tag "$tag"; then
    printf '%s\n' "$tag"
    exit 0
  fi
  exit 1
fi

# --- which build ---------------------------------------------------------
supported_hint="release builds exist for $(echo "$TARGETS" | sed 's/ /, /g'); elsewhere build from source: cargo install --locked --git https://github.com/$repo shipit"
detect_target() {
  os=$(uname -s)
  cpu=$(uname -m)
  case $os in
    Linux) os_part=unknown-linux-musl ;; # static: runs on glibc and musl distributions alike
    Darwin)
      os_part=apple-darwin
      # An x86_64 shell under Rosetta on Apple silicon: take the native build.
      if [ "$cpu" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
        cpu=arm64
      fi
      ;;
    *) fail 2 "no shipit release build for the operating system \`$os\`" "$supported_hint" ;;
  esac
  case $cpu in
    x86_64 | amd64) cpu_part=x86_64 ;;
    aarch64 | arm64) cpu_part=aarch64 ;;
    *) fail 2 "no shipit release build for the CPU architecture \`$cpu\` ($os)" "$supported_hint" ;;
  esac
  target=$cpu_part-$os_part
}

if [ -z "$target" ]; then
  detect_target
else
  case " $TARGETS " in
    *" $target "*) ;;
    *) fail 2 "no shipit release build for the target \`$target\`" "$supported_hint" ;;
  esac
fi

if [ "$mode" = print-target ]; then
  printf '%s\n' "$target"
  exit 0
fi

# --- which release -------------------------------------------------------
asked=$version
case $version in
  '' | latest) version=latest ;;
  v*) ;;
  *) version=v$version ;; # 0.2.0 means the tag v0.2.0
esac
if [ "$version" != latest ] && ! is_release_tag "$version"; then
  fail 2 "\`$asked\` is not a release version" "give a release tag such as v0.2.0, or latest"
fi

if [ -z "$base_url" ]; then
  if [ "$version" = latest ]; then
    base_url=https://github.com/$repo/releases/latest/download
  else
    base_url=https://github.com/$repo/releases/download/$version
  fi
fi
base_url=${base_url%/}
case $base_url in
  https://* | file:///*) ;;
  http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/* | 'http://[::1]:'* | 'http://[::1]/'*) ;;
  http://*) fail 2 "refusing to download over plain http: $base_url" "use https (plain http is accepted on loopback only, for tests)" ;;
  *) fail 2 "unsupported base URL \`$base_url\`" "give an https://, file:/// or loopback http:// URL" ;;
esac

install_dir=${install_dir:-${HOME:?HOME is not set; give --to DIR}/.shipit/bin}
# A literal ~/ (CircleCI passes parameters unexpanded).
# shellcheck disable=SC2088 # the literal tilde is what is matched
case $install_dir in "~/"*) install_dir=$HOME/${install_dir#"~/"} ;; esac
archive=shipit-$target.tar.gz
want=${version#v}

# Already there (a restored cache, a second run): nothing to do.
if [ "$version" != latest ] && [ -x "$install_dir/shipit" ] &&
  [ "$("$install_dir/shipit" --version 2>/dev/null || true)" = "shipit $want" ]; then
  say "shipit $want is already installed in $install_dir"
  exit 0
fi

# --- download ------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shipit-install.XXXXXX")
staged=
trap 'rm -rf "$tmp"; if [ -n "$staged" ]; then rm -f "$staged"; fi' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fetch_hint="is $version a published shipit release with a build for $target? Its files should be $base_url/$archive and $base_url/$archive.sha256"
# fetch URL FILE
fetch() {
  case $1 in
    file://*)
      if ! cp "${1#file://}" "$2" 2>"$tmp/fetch.err"; then
        fail 1 "could not read $1: $(cat "$tmp/fetch.err")" "$fetch_hint"
      fi
      ;;
    *)
      # https only, redirects included (GitHub redirects release downloads);
      # plain http reaches this point only for loopback.
      case $1 in https://*) proto='=https' ;; *) proto='=http' ;; esac
      if command -v curl >/dev/null 2>&1; then
        if ! curl --proto "$proto" --proto-redir "$proto" --tlsv1.2 -fsSL --retry 3 --connect-timeout 20 \
          -o "$2" "$1" 2>"$tmp/fetch.err"; then
          fail 1 "could not download $1: $(cat "$tmp/fetch.err")" "$fetch_hint"
        fi
      elif command -v wget >/dev/null 2>&1; then
        if [ "$proto" = '=https' ]; then only=--https-only; else only=; fi
        # shellcheck disable=SC2086 # $only is one flag or none
        if ! wget -q $only --tries=3 --timeout=20 -O "$2" "$1" 2>"$tmp/fetch.err"; then
          fail 1 "could not download $1: $(cat "$tmp/fetch.err")" "$fetch_hint"
        fi
      else
        fail 1 "neither curl nor wget is installed" "install curl, then run this again"
      fi
      ;;
  esac
}

if command -v sha256sum >/dev/null 2>&1; then
  sha256_of() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256_of() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256_of() { openssl dgst -sha256 "$1" | sed 's/.*= *//'; }
else
  fail 1 "no SHA-256 tool (sha256sum, shasum or openssl) to verify the download with" \
    "install coreutils or openssl; shipit is never installed unverified"
fi

say "downloading $archive ($version) from $base_url"
fetch "$base_url/$archive.sha256" "$tmp/$archive.sha256"
fetch "$base_url/$archive" "$tmp/$archive"

# --- verify --------------------------------------------------------------
# The checksum file is sha256sum's format: "<hex> *<file name>" (or two spaces).
expected=$(sed -n '1s/^\([0-9A-Fa-f]*\).*/\1/p' "$tmp/$archive.sha256" | tr 'A-F' 'a-f')
named=$(sed -n '1s/^[0-9A-Fa-f]*[ ][ *]\{0,1\}//p' "$tmp/$archive.sha256" | tr -d '\r')
if [ "${#expected}" -ne 64 ]; then
  fail 1 "$archive.sha256 does not hold a SHA-256 checksum: $(head -c 200 "$tmp/$archive.sha256")" "$fetch_hint"
fi
if [ -n "$named" ] && [ "$named" != "$archive" ]; then
  fail 1 "$archive.sha256 is the checksum of \`$named\`, not of $archive" "$fetch_hint"
fi
actual=$(sha256_of "$tmp/$archive")
if [ "$actual" != "$expected" ]; then
  fail 1 "checksum mismatch for $archive: expected sha256 $expected, got $actual; nothing was installed" \
    "the download is corrupt or is not the file the release published; run this again, and if it persists check the release's assets"
fi

mkdir "$tmp/unpacked"
if ! tar -xzf "$tmp/$archive" -C "$tmp/unpacked" 2>"$tmp/tar.err"; then
  fail 1 "could not unpack $archive: $(cat "$tmp/tar.err")" "$fetch_hint"
fi
bin=$tmp/unpacked/shipit-$target/shipit
if [ ! -f "$bin" ]; then bin=$tmp/unpacked/shipit; fi
if [ ! -f "$bin" ]; then
  fail 1 "$archive holds no shipit binary (looked for shipit-$target/shipit)" "$fetch_hint"
fi
chmod 755 "$bin"
if ! got=$("$bin" --version 2>"$tmp/run.err"); then
  fail 1 "the downloaded shipit does not run on this machine: $(cat "$tmp/run.err")" \
    "$target was detected from \`uname\`; give --target to choose another build"
fi
case $got in
  "shipit "*) ;;
  *) fail 1 "the downloaded binary is not shipit (its --version says \`$got\`)" "$fetch_hint" ;;
esac
if [ "$version" != latest ] && [ "$got" != "shipit $want" ]; then
  fail 1 "the release $version holds \`$got\`, not shipit $want; nothing was installed" "$fetch_hint"
fi

# --- install -------------------------------------------------------------
# Copy next to the destination, then rename: the old binary (if any) is
# replaced in one step, never left half-written.
mkdir -p "$install_dir"
staged=$install_dir/.shipit.new.$$
cp "$bin" "$staged"
chmod 755 "$staged"
mv -f "$staged" "$install_dir/shipit"
staged=
say "installed $got ($target, sha256 $actual) to $install_dir/shipit"
