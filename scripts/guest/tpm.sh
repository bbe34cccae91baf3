# shellcheck shell=dash disable=SC3043
# (busybox ash: `local` exists there)
# The guest initrd's TPM checks through Debian's tpm2-tools (scripts/guests puts the
# tools and their libraries in the initrd). init.sh sources this file and calls
# tpm2_checks when /dev/tpmrm0 exists; it provides say and fail. Every check runs
# through the kernel's resource manager (TCTI device:/dev/tpmrm0) and prints one
# guest-tpm2: line; any failure ends the boot with `guest-verdict: FAIL tpm2: ...`;
# all of them passing gives one `guest-tpm: PASS` line.
#
# Keys are ECC P-256 throughout (an RSA primary would search for primes in a PD
# without SSE under TCG for minutes). PCR 23 (resettable from locality 0, unused by
# measured boot) carries the extend and the seal policy.

export TPM2TOOLS_TCTI=${TPM2TOOLS_TCTI:-device:/dev/tpmrm0}
TPM2_DIR=${TPM2_DIR:-/tmp/tpm2}
# The PCR that changes during the checks.
TPM2_PCR=23

# tpm2_run NAME TOOL ARGS...: TOOL's output in T2OUT, or FAIL with its last lines.
# TPM2_NO_RM=1 says no resource manager stands behind the TCTI (swtpm on the host):
# then transient objects and sessions are flushed after each tool, as /dev/tpmrm0
# does when a tool closes it.
tpm2_run() {
    local name=$1 out
    shift
    out=$("$@" 2>&1) || fail "tpm2: $name: $1 exited with status $?: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    T2OUT=$out
    tpm2_flush_if_no_rm
}

tpm2_flush_if_no_rm() {
    local f
    [ "${TPM2_NO_RM:-0}" = 0 ] || for f in -t -l -s; do tpm2_flushcontext $f; done >/dev/null 2>&1
}

# the value of KEY's `value:` (else `raw:`) field in tpm2_getcap's YAML ($T2OUT)
tpm2_cap() {
    echo "$T2OUT" | awk -v k="$1:" '$1 == k {f = 1; next}
        f && $1 == "value:" {gsub(/"/, "", $2); print $2; exit}
        f && $1 == "raw:" {r = $2} f && /^[A-Z]/ {print r; exit}'
}

# PCRV: PCR N's SHA-256 value in lower-case hex, read by tpm2_pcrread
tpm2_pcr() {
    tpm2_run "pcrread $1" tpm2_pcrread "sha256:$1"
    PCRV=$(echo "$T2OUT" | sed -n "s/^ *$1 *: 0x\([0-9A-Fa-f]*\)$/\1/p" | tr 'A-F' 'a-f')
}

hex() { od -An -tx1 -v | tr -d ' \n'; }

tpm2_checks() {
    local t0 fam rev man n p0 d want nonce out
    t0=$(now_us)
    rm -rf "$TPM2_DIR"
    mkdir -p "$TPM2_DIR"
    cd "$TPM2_DIR" || fail "tpm2: no $TPM2_DIR"

    tpm2_run getcap tpm2_getcap properties-fixed
    fam=$(tpm2_cap TPM2_PT_FAMILY_INDICATOR)
    rev=$(tpm2_cap TPM2_PT_REVISION)
    man=$(tpm2_cap TPM2_PT_MANUFACTURER)
    [ "$fam" = 2.0 ] || fail "tpm2: getcap: family indicator '$fam', not 2.0"
    [ -n "$man" ] && [ -n "$rev" ] ||
        fail "tpm2: getcap: no manufacturer or revision in: $(echo "$T2OUT" | head -n 12 | tr '\n' ' ')"
    say "guest-tpm2: PASS getcap properties-fixed: TPM $fam revision $rev, manufacturer $man"

    tpm2_run getrandom tpm2_getrandom --hex 16
    [ ${#T2OUT} = 32 ] || fail "tpm2: getrandom 16: '$T2OUT'"
    say "guest-tpm2: PASS getrandom 16 bytes ($T2OUT)"

    tpm2_run pcrread tpm2_pcrread sha256:0,1,2,3,4,5,6,7
    n=$(echo "$T2OUT" | grep -cE '^ *[0-7] *: 0x[0-9A-Fa-f]{64}$')
    [ "$n" = 8 ] || fail "tpm2: pcrread: $n of 8 SHA-256 PCRs in: $(echo "$T2OUT" | tr '\n' ' ')"
    p0=$(echo "$T2OUT" | sed -n 's/^ *0 *: 0x//p')
    say "guest-tpm2: PASS pcrread sha256:0-7 (PCR 0 = $p0)"

    # Extend a reset PCR by a random digest; the TPM must hold
    # SHA-256(zeros || digest), computed here by sha256sum.
    tpm2_run pcrreset tpm2_pcrreset "$TPM2_PCR"
    tpm2_pcr "$TPM2_PCR"
    [ "$PCRV" = "$(printf '%064d' 0)" ] || fail "tpm2: pcrreset: PCR $TPM2_PCR is $PCRV, not zero"
    d=$(head -c 32 /dev/urandom | hex)
    tpm2_run pcrextend tpm2_pcrextend "$TPM2_PCR:sha256=$d"
    want=$(printf '%064d%s' 0 "$d" | xxd -r -p | sha256sum | cut -c1-64)
    tpm2_pcr "$TPM2_PCR"
    [ "$PCRV" = "$want" ] || fail "tpm2: pcrextend: PCR $TPM2_PCR reads $PCRV, SHA-256(0 || $d) is $want"
    say "guest-tpm2: PASS pcrextend PCR $TPM2_PCR by $d read back as $PCRV = SHA-256(zeros || digest)"

    # Seal a random secret under a storage primary to PCR 23's present value; it must
    # unseal while the PCR holds that value and be refused once the PCR moves.
    tpm2_run createprimary tpm2_createprimary -C o -g sha256 -G ecc -c prim.ctx
    tpm2_run "pcrread (policy)" tpm2_pcrread -o pcr.bin "sha256:$TPM2_PCR"
    tpm2_run createpolicy tpm2_createpolicy --policy-pcr -l "sha256:$TPM2_PCR" -f pcr.bin -L pcr.policy
    head -c 32 /dev/urandom >secret.bin
    tpm2_run create tpm2_create -C prim.ctx -g sha256 -a 'fixedtpm|fixedparent' -L pcr.policy \
        -i secret.bin -u seal.pub -r seal.priv
    tpm2_run load tpm2_load -C prim.ctx -u seal.pub -r seal.priv -c seal.ctx
    tpm2_run unseal tpm2_unseal -c seal.ctx -p "pcr:sha256:$TPM2_PCR" -o unsealed.bin
    cmp -s secret.bin unsealed.bin || fail "tpm2: unseal returned $(hex <unsealed.bin), sealed $(hex <secret.bin)"
    tpm2_run "pcrextend (policy)" tpm2_pcrextend "$TPM2_PCR:sha256=$d"
    if out=$(tpm2_unseal -c seal.ctx -p "pcr:sha256:$TPM2_PCR" -o unsealed2.bin 2>&1); then
        fail "tpm2: unseal succeeded after PCR $TPM2_PCR changed"
    fi
    tpm2_flush_if_no_rm
    say "guest-tpm2: PASS seal/unseal: 32 random bytes sealed to PCR $TPM2_PCR under an ECC P-256 primary, unsealed equal; refused after the PCR moved ($(echo "$out" | sed -n 's/.*Esys_Unseal(\(0x[0-9A-Fa-f]*\)) - /\1 /p'))"

    # Quote PCRs 0 and 23 with an attestation key under the endorsement key, and check
    # the quote's signature, nonce and PCR digest in software (tpm2_checkquote:
    # OpenSSL); a wrong nonce must fail that check.
    tpm2_run createek tpm2_createek -c ek.ctx -G ecc -u ek.pub
    tpm2_run createak tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pem -f pem -n ak.name
    nonce=$(head -c 16 /dev/urandom | hex)
    tpm2_run quote tpm2_quote -c ak.ctx -l "sha256:0,$TPM2_PCR" -q "$nonce" -m quote.msg -s quote.sig -o quote.pcrs -g sha256
    tpm2_run checkquote tpm2_checkquote -u ak.pem -m quote.msg -s quote.sig -f quote.pcrs -g sha256 -q "$nonce"
    if out=$(tpm2_checkquote -u ak.pem -m quote.msg -s quote.sig -f quote.pcrs -g sha256 -q "00$nonce" 2>&1); then
        fail "tpm2: checkquote accepted the quote with another nonce"
    fi
    say "guest-tpm2: PASS quote sha256:0,$TPM2_PCR by an ECC P-256 AK (createek + createak), nonce $nonce: signature, nonce and PCR digest verified (tpm2_checkquote); another nonce refused"

    cd / || fail "tpm2: cd /"
    say "guest-tpm: PASS /dev/tpmrm0 via tpm2-tools ($(tpm2_getcap -v 2>&1 | sed -n 's/.*version="\([^"]*\)".*/\1/p')): getcap, getrandom, pcrread, pcrextend, seal/unseal, quote in $((($(now_us) - t0) / 1000)) ms"
}

# the median of its whitespace-separated numbers
median() {
    echo "$1" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# tpm2_timed NAME TOOL ARGS...: as tpm2_run, the tool's own wall time in T2US (us)
tpm2_timed() {
    local name=$1 out t
    shift
    t=$(now_us)
    out=$("$@" 2>&1) || fail "tpm2: $name: $1 exited with status $?: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    T2US=$(($(now_us) - t))
    tpm2_flush_if_no_rm
}

# tpm2_bench N: TPM2_PCR_Extend and TPM2_Quote latency through tpm2-tools, in
# microseconds per command, into T2BENCH ("extend US quote US"). Extend: a
# tpm2_pcrextend run of 50N extends of PCR 23 less a run of one, over 50N-1, so the
# tool's start-up and TCTI set-up cancel (each run's best of two). Quote: the median
# of N tpm2_quote runs (PCRs sha256:0,23, a restricted ECC P-256 signing primary) less
# the median of N tpm2_pcrread runs (start-up and one cheap command); medians, as a
# loaded machine delays some runs by whole scheduler slices. The same function runs
# in the guest and, against swtpm, on the host (scripts/guest-bench).
tpm2_bench() {
    local n=$1 i d specs="" one=0 many=0 q="" r=""
    [ "$n" -ge 2 ] || fail "tpm2: bench needs N >= 2, not $n"
    rm -rf "$TPM2_DIR/bench"
    mkdir -p "$TPM2_DIR/bench"
    cd "$TPM2_DIR/bench" || fail "tpm2: no $TPM2_DIR/bench"
    d=$(head -c 32 /dev/urandom | hex)
    i=0
    while [ $i -lt $((50 * n)) ]; do
        specs="$specs $TPM2_PCR:sha256=$d"
        i=$((i + 1))
    done
    for i in 1 2; do
        tpm2_timed "bench extend 1" tpm2_pcrextend "$TPM2_PCR:sha256=$d"
        [ $one != 0 ] && [ $one -le $T2US ] || one=$T2US
        # shellcheck disable=SC2086 # one argument per extend
        tpm2_timed "bench extend $((50 * n))" tpm2_pcrextend $specs
        [ $many != 0 ] && [ $many -le $T2US ] || many=$T2US
    done
    tpm2_run "bench key" tpm2_createprimary -C o -G ecc256:ecdsa-sha256:null -c ak.ctx \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'
    i=0
    while [ $i -lt "$n" ]; do
        tpm2_timed "bench quote" tpm2_quote -c ak.ctx -l "sha256:0,$TPM2_PCR" -q "$d" -m q.msg -s q.sig -g sha256
        q="$q $T2US"
        tpm2_timed "bench pcrread" tpm2_pcrread "sha256:$TPM2_PCR"
        r="$r $T2US"
        i=$((i + 1))
    done
    cd / || fail "tpm2: cd /"
    # shellcheck disable=SC2034 # the caller's result
    T2BENCH="extend $(((many - one) / (50 * n - 1))) quote $(($(median "$q") - $(median "$r")))"
}

# Measured boot: tpm2_eventlog replays the TCG2 event log the kernel found through the
# TPM2 table (LASA/LAML); every PCR the replay names must equal what tpm2_pcrread reads.
tpm2_eventlog_check() {
    local log=${TPM2_EVENTLOG:-/sys/kernel/security/tpm0/binary_bios_measurements} replay pcr want n=0 events
    [ -e "$log" ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
    [ -r "$log" ] || fail "tpm2: eventlog: no $log (no TPM2 table log area?)"
    tpm2_run eventlog tpm2_eventlog "$log"
    replay=$(echo "$T2OUT" | awk '/^pcrs:/ {p = 1; next} p && /^  [a-z0-9]+:$/ {bank = $1; next}
        p && bank == "sha256:" && / : 0x/ {gsub(/ /, ""); print}')
    [ -n "$replay" ] || fail "tpm2: eventlog: no sha256 PCR in the replay of $(wc -c <"$log")-byte $log"
    events=$(echo "$T2OUT" | grep -c '^- EventNum:')
    for pcr in $replay; do
        want=$(echo "${pcr#*:0x}" | tr 'A-F' 'a-f')
        tpm2_pcr "${pcr%%:*}"
        [ "$PCRV" = "$want" ] || fail "tpm2: eventlog: PCR ${pcr%%:*} reads $PCRV, the log replays to $want"
        n=$((n + 1))
    done
    say "guest-tpm2: PASS eventlog: tpm2_eventlog's replay of $events events ($(wc -c <"$log") bytes) equals tpm2_pcrread for $n PCR(s) ($(echo "$replay" | tr '\n' ' '| sed 's/ $//'))"
}

# Sealing across a reboot (guest.persist=write:N / check:N, scripts/boot-test): boot 1
# seals SHA-256("paravisor-tpm-persist N") to PCR 0 (the measured boot) under the
# owner's ECC primary and keeps the sealed object's public and private parts on sda at
# TPM2_SECTOR; boot 2 recreates the primary from the owner seed, loads them and must
# unseal that secret: only a TPM whose seeds and PCR 0 came back can.
TPM2_SECTOR=40960
TPM2_DISK=${TPM2_DISK:-/dev/sda}
tpm2_persist_secret() { printf 'paravisor-tpm-persist %s' "$1" | sha256sum | cut -c1-64 | xxd -r -p; }

tpm2_persist() {
    local mode=${1%%:*} n=${1#*:} out
    rm -rf "$TPM2_DIR/persist"
    mkdir -p "$TPM2_DIR/persist"
    cd "$TPM2_DIR/persist" || fail "tpm2: no $TPM2_DIR/persist"
    tpm2_persist_secret "$n" >secret.bin
    tpm2_run "persist createprimary" tpm2_createprimary -C o -g sha256 -G ecc -c prim.ctx
    case "$mode" in
    write)
        tpm2_run "persist pcrread" tpm2_pcrread -o pcr0.bin sha256:0
        tpm2_run "persist createpolicy" tpm2_createpolicy --policy-pcr -l sha256:0 -f pcr0.bin -L pcr0.policy
        tpm2_run "persist create" tpm2_create -C prim.ctx -g sha256 -a 'fixedtpm|fixedparent' -L pcr0.policy \
            -i secret.bin -u seal.pub -r seal.priv
        tar -cf seal.tar seal.pub seal.priv || fail "tpm2: persist: tar"
        out=$(dd if=seal.tar of="$TPM2_DISK" bs=512 seek=$TPM2_SECTOR conv=fsync oflag=direct 2>&1) ||
            fail "tpm2: persist: writing the sealed object: $(echo "$out" | tr '\n' ' ')"
        say "guest-tpm2: PASS persist: sealed SHA-256 of marker $n to PCR 0 under the owner's ECC primary; public and private parts at sda sector $TPM2_SECTOR"
        ;;
    check)
        out=$(dd if="$TPM2_DISK" of=seal.tar bs=512 skip=$TPM2_SECTOR count=20 iflag=direct 2>&1) ||
            fail "tpm2: persist: reading the sealed object: $(echo "$out" | tr '\n' ' ')"
        tar -xf seal.tar || fail "tpm2: persist: no sealed object at sda sector $TPM2_SECTOR"
        tpm2_run "persist load" tpm2_load -C prim.ctx -u seal.pub -r seal.priv -c seal.ctx
        tpm2_run "persist unseal" tpm2_unseal -c seal.ctx -p pcr:sha256:0 -o unsealed.bin
        cmp -s secret.bin unsealed.bin ||
            fail "tpm2: persist: unsealed $(hex <unsealed.bin), marker $n's secret is $(hex <secret.bin)"
        say "guest-tpm2: PASS persist: unsealed what the previous boot sealed to PCR 0: SHA-256 of marker $n ($(hex <unsealed.bin | cut -c1-16)...)"
        ;;
    esac
    cd / || fail "tpm2: cd /"
}
