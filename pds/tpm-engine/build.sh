#!/usr/bin/env bash
# Cross-builds the bare-metal vTPM engine for the PDs (x86_64-unknown-none): OpenSSL's
# libcrypto and libtpms's TPM 2.0 part, both from Debian bookworm's source packages,
# compiled freestanding (no libc linked: the PD's C runtime is pds/tpm-engine's
# Rust `crt`), into one archive:
#
#     $OUT/lib/libtpm_engine.a        (OUT defaults to target/tpm-engine)
#
# Link it by building kernel/metal-pds with TPM_ENGINE_LIB=$OUT/lib in the
# environment (pds/tpm-engine/build.rs). Everything is cached under $OUT; a rerun
# only redoes what is missing. Compiles under `nice -n 10` with JOBS (default 2).
#
# Sources: OpenSSL through `apt-get source --download-only` with a private apt
# state (deb-src entries derived from /etc/apt/sources.list.d/debian.sources, as
# .ci/install-qemu derives backports). libtpms is vendored in vendor/, because
# Debian's archive no longer serves its orig tarball (404 in every suite): upstream
# tag v0.9.2 (commit below) as `git archive --format=tar --prefix=libtpms-0.9.2/
# v0.9.2 ':!tests' ':!src/tpm12' | xz -9` (git 2.47, xz 5.4; the test suite and
# the TPM 1.2 sources are left out: this build compiles neither, see libtpms.mk),
# and Debian's debian.tar.xz of the version below, whose patches are applied on
# top. Both are checked against the SHA-256s below before anything is unpacked.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/pds/tpm-engine
OUT=${OUT:-$ROOT/target/tpm-engine}
JOBS=${JOBS:-2}
OPENSSL_VERSION=3.0.20-1~deb12u2
LIBTPMS_VERSION=0.9.2-3.1+deb12u1
LIBTPMS_UPSTREAM=0.9.2
LIBTPMS_COMMIT=e81d634c27e09c186816bca73f2adff7f853b762
LIBTPMS_TARBALL=$HERE/vendor/libtpms-$LIBTPMS_UPSTREAM.tar.xz
LIBTPMS_TARBALL_SHA256=66e2db59d68441028a0508fc4d172b8a47155c6799a7b4632b67fa4c53743fe9
LIBTPMS_DEBIAN=$HERE/vendor/libtpms_$LIBTPMS_VERSION.debian.tar.xz
# As Debian's .dsc of that version lists it.
LIBTPMS_DEBIAN_SHA256=62a50a3586e15c2bd969a779734f2b127c825d30cf236f812be32efbc0e70f83

# The PDs keep no FPU/SSE state (CR0.EM is set in ring 3): general registers only,
# no stack protector or fortify (no libc to provide them), static code at the
# PD link address (kernel/metal-pds/link.ld: 0x400000, non-PIE).
ARCH_CFLAGS="-m64 -mno-sse -mno-sse2 -mno-mmx -mno-avx -mno-3dnow -mno-red-zone \
 -fno-pic -fno-pie -mcmodel=small -fno-stack-protector -fno-stack-clash-protection \
 -fcf-protection=none -fno-asynchronous-unwind-tables -U_FORTIFY_SOURCE \
 -ffunction-sections -fdata-sections"

say() { printf 'tpm-engine: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
run() { nice -n 10 "$@"; }

# check_sha256 FILE WANT: a vendored file that is not the one recorded stops the build.
check_sha256() {
    [ -f "$1" ] || die "$1 is missing (vendored in the tree)"
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$got" = "$2" ] || die "$1 has SHA-256 $got, not the recorded $2: refusing to build from it"
}

APT=$OUT/apt
SRC=$OUT/src
apt_opts=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$APT/sources.list.d"
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Debug::NoLocking=1)

fetch_sources() {
    mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial" "$SRC"
    local debsrc=/etc/apt/sources.list.d/debian.sources
    [ -f "$debsrc" ] || die "no $debsrc to derive deb-src entries from"
    sed 's/^Types: deb$/Types: deb-src/' "$debsrc" >"$APT/sources.list.d/deb-src.sources"
    if [ ! -f "$APT/updated" ]; then
        say "apt-get update (deb-src, private state in $APT)"
        apt-get "${apt_opts[@]}" update
        touch "$APT/updated"
    fi
    cd "$SRC"
    if [ ! -f "openssl_$OPENSSL_VERSION.dsc" ]; then
        say "downloading openssl $OPENSSL_VERSION"
        apt-get "${apt_opts[@]}" source --download-only "openssl=$OPENSSL_VERSION"
    fi
    cd - >/dev/null
}

unpack() {
    # The stamp names the source and our edits, so changed edits rebuild libcrypto.
    local ossl_stamp="$OPENSSL_VERSION pd-no-fpu-2"
    if [ "$(cat "$SRC/openssl/.unpacked" 2>/dev/null)" != "$ossl_stamp" ]; then
        say "unpacking openssl (dpkg-source -x: Debian's patches applied)"
        rm -rf "$SRC/openssl" "$OUT/openssl-build"
        dpkg-source --no-check -x "$SRC/openssl_$OPENSSL_VERSION.dsc" "$SRC/openssl" >/dev/null
        # No floating point may run in a PD (CR0.EM: x87 and SSE fault), with
        # OPENSSL_PD_NO_FPU defined (openssl-pd.conf): BIO's printf takes the path
        # OpenSSL has for UEFI (%f/%e/%g refused), and OSSL_PARAM's conversions
        # between integers and doubles (x87 code even with SSE off) treat a real
        # parameter as a type they do not convert (an error, never a fault).
        sed -i 's/^#ifndef OPENSSL_SYS_UEFI$/#if !defined(OPENSSL_SYS_UEFI) \&\& !defined(OPENSSL_PD_NO_FPU)/' \
            "$SRC/openssl/crypto/bio/bio_print.c"
        sed -i -e 's/p->data_type == OSSL_PARAM_REAL/(PD_PARAM_REAL \&\& &)/' \
            -e 's|^#include "internal/endian.h"$|&\n#ifdef OPENSSL_PD_NO_FPU\n# define PD_PARAM_REAL 0\n#else\n# define PD_PARAM_REAL 1\n#endif|' \
            "$SRC/openssl/crypto/params.c"
        grep -q '^# define PD_PARAM_REAL 0$' "$SRC/openssl/crypto/params.c" ||
            die "crypto/params.c: the no-FPU edit found no anchor"
        echo "$ossl_stamp" >"$SRC/openssl/.unpacked"
    fi
    # The stamp names what was unpacked, so changed vendored sources rebuild libtpms.
    local stamp="$LIBTPMS_TARBALL_SHA256 $LIBTPMS_DEBIAN_SHA256"
    if [ "$(cat "$SRC/libtpms/.unpacked" 2>/dev/null)" != "$stamp" ]; then
        check_sha256 "$LIBTPMS_TARBALL" "$LIBTPMS_TARBALL_SHA256"
        check_sha256 "$LIBTPMS_DEBIAN" "$LIBTPMS_DEBIAN_SHA256"
        say "unpacking libtpms v$LIBTPMS_UPSTREAM ($LIBTPMS_COMMIT, vendored) + Debian $LIBTPMS_VERSION patches"
        rm -rf "$SRC/libtpms" "$OUT/libtpms-build"
        mkdir -p "$SRC/libtpms"
        tar -xJf "$LIBTPMS_TARBALL" -C "$SRC/libtpms" --strip-components=1
        tar -xJf "$LIBTPMS_DEBIAN" -C "$SRC/libtpms"
        local p
        while read -r p; do
            case "$p" in '' | '#'*) continue ;; esac
            patch -s -p1 -d "$SRC/libtpms" <"$SRC/libtpms/debian/patches/$p" || die "Debian patch $p does not apply"
        done <"$SRC/libtpms/debian/patches/series"
        echo "$stamp" >"$SRC/libtpms/.unpacked"
    fi
}

build_openssl() {
    local b=$OUT/openssl-build
    [ -f "$b/libcrypto.a" ] && return 0
    mkdir -p "$b"
    if [ ! -f "$b/Makefile" ]; then
        say "configuring openssl (target paravisor-pd, $HERE/openssl-pd.conf)"
        # What a TPM needs stays (RSA, EC over prime curves, AES, TDES, Camellia,
        # SHA-1/2, HMAC, the DRBG); OS-facing parts and unused algorithms go.
        (cd "$b" && run perl "$SRC/openssl/Configure" --config="$HERE/openssl-pd.conf" \
            paravisor-pd no-asm no-threads no-sock no-stdio no-dso no-shared no-engine \
            no-dynamic-engine no-afalgeng no-async no-autoload-config no-ui-console \
            no-posix-io no-ktls no-dgram no-ocsp no-cmp no-cms no-ct no-ts \
            no-srp no-srtp no-ssl no-tls no-dtls no-tests no-legacy \
            no-aria no-bf no-blake2 no-cast no-chacha no-poly1305 no-dh no-dsa no-ec2m \
            no-gost no-idea no-md4 no-mdc2 no-rc2 no-rc4 no-rc5 no-rmd160 no-scrypt \
            no-seed no-siphash no-siv no-sm2 no-sm3 no-sm4 no-whirlpool no-comp \
            no-filenames no-err no-autoerrinit no-makedepend \
            --with-rand-seed=getrandom >"$b/configure.log")
    fi
    say "building libcrypto.a (nice -n 10, -j$JOBS; several minutes)"
    run make -C "$b" -j"$JOBS" build_generated >"$b/make.log" 2>&1 || { tail -30 "$b/make.log"; die "openssl build_generated failed"; }
    run make -C "$b" -j"$JOBS" libcrypto.a >>"$b/make.log" 2>&1 || { tail -30 "$b/make.log"; die "openssl libcrypto.a failed"; }
}

build_libtpms() {
    local b=$OUT/libtpms-build
    [ -f "$b/libtpms.a" ] && return 0
    say "building libtpms (TPM 2.0 only; nice -n 10, -j$JOBS)"
    run make -f "$HERE/libtpms.mk" -j"$JOBS" SRC="$SRC/libtpms" OUT="$b" AR=ar \
        CFLAGS="-O2 $ARCH_CFLAGS -I$OUT/openssl-build/include -I$SRC/openssl/include" \
        "$b/libtpms.a"
}

build_shim() {
    local b=$OUT/shim-build
    mkdir -p "$b"
    say "building the C-variadic shim (crt_variadic.c)"
    # shellcheck disable=SC2086 # the flags are words
    gcc -O2 $ARCH_CFLAGS -ffreestanding -Wall -Werror -c "$HERE/c/crt_variadic.c" -o "$b/crt_variadic.o"
}

combine() {
    mkdir -p "$OUT/lib"
    local lib=$OUT/lib/libtpm_engine.a
    say "combining into $lib"
    # Built aside and renamed, so a link reading the archive never sees half of one.
    rm -f "$lib.tmp"
    {
        echo "CREATE $lib.tmp"
        echo "ADDLIB $OUT/libtpms-build/libtpms.a"
        echo "ADDLIB $OUT/openssl-build/libcrypto.a"
        echo "ADDMOD $OUT/shim-build/crt_variadic.o"
        echo "SAVE"
        echo "END"
    } | ar -M
    mv "$lib.tmp" "$lib"
    ls -l "$lib" >&2
}

start=$(date +%s)
# One build per OUT at a time (several scripts/boot may start at once); the second
# finds the first's results cached.
mkdir -p "$OUT"
exec {lock}>"$OUT/.lock"
if ! flock -n "$lock"; then
    say "waiting for another build.sh in $OUT"
    flock "$lock"
fi
# Downloads only until OpenSSL's sources are here (apt asks the mirror every time).
if [ ! -f "$SRC/openssl_$OPENSSL_VERSION.dsc" ]; then
    fetch_sources
fi
unpack
build_openssl
build_libtpms
build_shim
combine
say "done in $(($(date +%s) - start)) s"
