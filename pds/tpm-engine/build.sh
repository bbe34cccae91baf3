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
# Sources: `apt-get source --download-only` with a private apt state (deb-src
# entries derived from /etc/apt/sources.list.d/debian.sources, as
# .ci/install-qemu derives backports). If the libtpms orig tarball cannot be
# downloaded, LIBTPMS_GIT=<a libtpms git dir> supplies the same upstream tag
# (v$LIBTPMS_UPSTREAM) and Debian's patches are applied on top of it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/pds/tpm-engine
OUT=${OUT:-$ROOT/target/tpm-engine}
JOBS=${JOBS:-2}
OPENSSL_VERSION=3.0.20-1~deb12u2
LIBTPMS_VERSION=0.9.2-3.1+deb12u1
LIBTPMS_UPSTREAM=0.9.2

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
    if [ ! -f "libtpms_$LIBTPMS_VERSION.dsc" ] || [ ! -f "libtpms_$LIBTPMS_UPSTREAM.orig.tar.gz" ]; then
        say "downloading libtpms $LIBTPMS_VERSION"
        apt-get "${apt_opts[@]}" source --download-only "libtpms=$LIBTPMS_VERSION" ||
            say "libtpms source not (fully) downloadable; trying LIBTPMS_GIT"
    fi
    cd - >/dev/null
}

unpack() {
    if [ ! -f "$SRC/openssl/.unpacked" ]; then
        say "unpacking openssl (dpkg-source -x: Debian's patches applied)"
        rm -rf "$SRC/openssl"
        dpkg-source --no-check -x "$SRC/openssl_$OPENSSL_VERSION.dsc" "$SRC/openssl" >/dev/null
        # BIO's printf reads doubles for %f/%e/%g, which needs SSE registers: take
        # the path OpenSSL has for UEFI (those formats refused) when
        # OPENSSL_PD_NO_FPU is defined (openssl-pd.conf).
        sed -i 's/^#ifndef OPENSSL_SYS_UEFI$/#if !defined(OPENSSL_SYS_UEFI) \&\& !defined(OPENSSL_PD_NO_FPU)/' \
            "$SRC/openssl/crypto/bio/bio_print.c"
        touch "$SRC/openssl/.unpacked"
    fi
    if [ ! -f "$SRC/libtpms/.unpacked" ]; then
        rm -rf "$SRC/libtpms"
        if [ -f "$SRC/libtpms_$LIBTPMS_UPSTREAM.orig.tar.gz" ]; then
            say "unpacking libtpms (dpkg-source -x)"
            dpkg-source --no-check -x "$SRC/libtpms_$LIBTPMS_VERSION.dsc" "$SRC/libtpms" >/dev/null
        else
            [ -n "${LIBTPMS_GIT:-}" ] || die "libtpms_$LIBTPMS_UPSTREAM.orig.tar.gz missing and LIBTPMS_GIT unset"
            [ -f "$SRC/libtpms_$LIBTPMS_VERSION.debian.tar.xz" ] || die "libtpms Debian patches missing"
            say "unpacking libtpms v$LIBTPMS_UPSTREAM from $LIBTPMS_GIT + Debian $LIBTPMS_VERSION patches"
            mkdir -p "$SRC/libtpms"
            git --git-dir="$LIBTPMS_GIT" archive "v$LIBTPMS_UPSTREAM" | tar -x -C "$SRC/libtpms"
            tar -xJf "$SRC/libtpms_$LIBTPMS_VERSION.debian.tar.xz" -C "$SRC/libtpms"
            local p
            while read -r p; do
                case "$p" in '' | '#'*) continue ;; esac
                patch -s -p1 -d "$SRC/libtpms" <"$SRC/libtpms/debian/patches/$p"
            done <"$SRC/libtpms/debian/patches/series"
        fi
        touch "$SRC/libtpms/.unpacked"
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
    rm -f "$lib"
    {
        echo "CREATE $lib"
        echo "ADDLIB $OUT/libtpms-build/libtpms.a"
        echo "ADDLIB $OUT/openssl-build/libcrypto.a"
        echo "ADDMOD $OUT/shim-build/crt_variadic.o"
        echo "SAVE"
        echo "END"
    } | ar -M
    ls -l "$lib" >&2
}

start=$(date +%s)
# Downloads only until both trees are unpacked (apt asks the mirror every time).
if [ ! -f "$SRC/openssl/.unpacked" ] || [ ! -f "$SRC/libtpms/.unpacked" ]; then
    fetch_sources
fi
unpack
build_openssl
build_libtpms
build_shim
combine
say "done in $(($(date +%s) - start)) s"
