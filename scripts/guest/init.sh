#!/bin/busybox sh
# shellcheck shell=dash disable=SC3028
# (busybox ash: `local` and EPOCHREALTIME exist there)
# /init of the guest test initrd that scripts/guests builds: load the disk drivers, write
# a known pattern over the first 8 MiB of the first SCSI disk, read it back past the page
# cache and print one verdict line. The same initrd serves plain QEMU (virtio-scsi) and
# the paravisor (hv_storvsc over VMBus), so it loads both stacks and lets whichever finds
# no device fail.
#
# Every line goes to /dev/kmsg before stdout: the kernel console writes kmsg by polling
# the UART, whereas the tty path needs the THRE interrupt, so a VMM whose UART interrupt
# is late or missing still shows the markers and the verdict ("guest-kmsg: " prefix).
# guest.tty=off on the kernel command line drops the stdout copy altogether, for a VMM
# whose tty path blocks.
#
# Lines: guest-init: (progress) guest-mod: (insmod) guest-disk: guest-io: (throughput)
#        guest-net: (eth0 on hv_netvsc, where VMBus offers a network device; with
#                    guest.tftp=FILE:SHA256 also a DHCP lease and FILE over TFTP from
#                    10.0.2.2 checked against SHA256: `guest-net: PASS dhcp ...`)
#        guest-persist: (guest.persist=write:N / check:N on the command line)
#        guest-verdict: PASS|FAIL ... (exactly one)
#
# guest.persist=write:N: after the pattern, also write marker N at 16 MiB (synced);
# guest.persist=check:N: before anything is written, the disk must still hold the
# pattern and marker N, as a previous boot left them (scripts/boot-test's reboot test).

export PATH=/bin
PATTERN_BYTES=8388608

/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
# Debian kernels automount devtmpfs only on the real root, never on the initramfs.
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Userspace kmsg writes are rate-limited to 10 lines per 5 s by default, which would drop
# the verdict; lift the limit unless the command line pinned printk.devkmsg.
echo on >/proc/sys/kernel/printk_devkmsg 2>/dev/null

TTY=1
grep -qw 'guest.tty=off' /proc/cmdline && TTY=0
PERSIST=$(sed -n 's/.*guest\.persist=\([a-z]*:[0-9a-f]*\).*/\1/p' /proc/cmdline)
# 16 MiB in, past the 8 MiB pattern: where the reboot marker goes.
MARKER_SECTOR=32768

say() {
    # Level 2 (crit) passes the console filter even with `quiet` (console_loglevel 4).
    [ -c /dev/kmsg ] && echo "<2>guest-kmsg: $*" >/dev/kmsg 2>/dev/null
    [ "$TTY" = 1 ] && echo "$*"
}

halt_now() {
    sync
    poweroff -f
    # poweroff -f returns only if the reboot syscall failed; sysrq is the last resort
    # before idling forever (init must never exit: that panics the kernel).
    echo o >/proc/sysrq-trigger 2>/dev/null
    while :; do sleep 3600; done
}

fail() {
    say "guest-verdict: FAIL $*"
    halt_now
}

# Microseconds of guest wall clock; busybox ash keeps EPOCHREALTIME as "s.us".
now_us() {
    local t=$EPOCHREALTIME
    echo "${t%.*}${t#*.}"
}

# rate BYTES USEC -> "X.Y MB/s" (MB = 10^6 bytes, as dd and fio print them)
rate() {
    local tenths=$(($1 * 10 / ($2 > 0 ? $2 : 1)))
    echo "$((tenths / 10)).$((tenths % 10)) MB/s"
}

say "guest-init: started (kernel $(uname -r))"
BOOT_US=$(now_us)
SEED=$(cat /pattern.seed)
WANT_SHA=$(cut -d' ' -f1 /pattern.sha256)

while read -r m; do
    if out=$(insmod "/lib/modules/$m.ko" 2>&1); then
        say "guest-mod: $m loaded"
    else
        # Expected under plain QEMU for the Hyper-V pieces (no VMBus: ENODEV) and under
        # the paravisor for virtio (no PCI device is fine, so that one should load).
        say "guest-mod: $m failed: $(echo "$out" | tail -n 1)"
    fi
done </lib/modules/order

# The vTPM (guest-tpm: lines). Where ACPI names a TPM (MSFT0101: the paravisor's CRB)
# and tpm_crb made /dev/tpm0, a raw TPM2_PCR_Read (SHA-256 PCR 0) on /dev/tpm0 itself,
# the device without the kernel's resource manager, must answer TPM_RC_SUCCESS with a
# response of its size (tpm_cmd: RESPONSE-BYTES, or - for the size the header gives),
# else FAIL; tpm2-tools (below) checks the rest through /dev/tpmrm0. Without /dev/tpm0
# (no TPM, or one in failure mode) this is only reported, unless guest.tpm=require is
# on the command line.
tpm_cmd() { # NAME COMMAND(printf octal escapes) RESPONSE-BYTES
    local out
    # The command is the format: its octal escapes are the bytes to send.
    # shellcheck disable=SC2059
    out=$({ printf "$2" >&3 && dd bs=4096 count=1 <&3 2>/dev/null; } 3<>/dev/tpm0 | od -An -tx1 -v) ||
        fail "tpm: $1: /dev/tpm0 write/read failed"
    # shellcheck disable=SC2086
    set -- "$1" "$3" $out
    [ $# -ge 12 ] || fail "tpm: $1: short response ($(($# - 2)) bytes)"
    [ "$9${10}${11}${12}" = 00000000 ] || fail "tpm: $1: response code 0x$9${10}${11}${12}"
    local want=$2
    [ "$want" = - ] && want=$((0x$5$6$7$8))
    [ $(($# - 2)) = "$want" ] || fail "tpm: $1: $(($# - 2)) response bytes, expected $want"
    TPM_RESP="$out"
    shift $(($# - 8))
    TPM_TAIL="$*"
}
if [ -c /dev/tpm0 ]; then
    tpm_cmd PCR_Read '\200\001\000\000\000\024\000\000\001\176\000\000\000\001\000\013\003\001\000\000' 62
    PCR0=$TPM_TAIL
    # All of PCR 0 (the response's last 32 bytes) for guest-tpm-log below.
    PCR0_FULL=$(echo "$TPM_RESP" | tr '\n' ' ' | awk '{ for (i = 31; i <= 62; i++) printf "%s", $i }')
    say "guest-tpm: /dev/tpm0 (TPM $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null || echo ?)) answers a raw PCR_Read: sha256 PCR 0 (... $PCR0)"
    # Measured boot: the TCG2 event log tpm_crb found at the TPM2 table's LASA, as
    # Linux re-serialises it, and PCR 0; scripts/boot-test compares both with the
    # manifest's measured_boot (the replay of the PD images in manifest order).
    mkdir -p /sys/kernel/security
    mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
    TPMLOG=/sys/kernel/security/tpm0/binary_bios_measurements
    if [ -r "$TPMLOG" ] && cat "$TPMLOG" >/tpm-log.bin; then
        say "guest-tpm-log: size $(wc -c </tpm-log.bin) sha256 $(sha256sum /tpm-log.bin | cut -d' ' -f1) pcr0 $PCR0_FULL"
    else
        say "guest-tpm-log: none ($TPMLOG missing) pcr0 $PCR0_FULL"
    fi
elif [ -e /sys/bus/acpi/devices/MSFT0101:00 ]; then
    grep -qw 'guest.tpm=require' /proc/cmdline && fail "tpm: ACPI has MSFT0101 but there is no /dev/tpm0"
    say "guest-tpm: ACPI has MSFT0101 but there is no /dev/tpm0 (TPM in failure mode?)"
fi

# guest.tpmnv=write:N defines TPM NV index 0x01500015 (8 bytes, owner read/write, empty
# owner password) and writes N into it (hex, zero-padded to 8 bytes); check:N reads it
# back and must find N: a later boot that does proves the TPM's NV outlived the reboot
# (guest-tpm-nv: lines; scripts/boot-test's sealed-state test).
TPMNV=$(sed -n 's/.*guest\.tpmnv=\([a-z]*:[0-9a-f]*\).*/\1/p' /proc/cmdline)
if [ -n "$TPMNV" ]; then
    [ -c /dev/tpm0 ] || fail "tpm-nv: no /dev/tpm0"
    [ ${#TPMNV} -le 22 ] || fail "tpm-nv: $TPMNV: at most 16 hex digits"
    NV=$(echo "0000000000000000${TPMNV#*:}" | tail -c 17)
    NVOCT=
    for x in $(echo "$NV" | sed 's/../& /g'); do NVOCT="$NVOCT$(printf '\\%03o' "0x$x")"; done
    case "$TPMNV" in
    write:*)
        tpm_cmd NV_DefineSpace '\200\002\000\000\000\055\000\000\001\052\100\000\000\001\000\000\000\011\100\000\000\011\000\000\000\000\000\000\000\000\016\001\120\000\025\000\013\002\002\000\002\000\000\000\010' 19
        tpm_cmd NV_Write "\200\002\000\000\000\053\000\000\001\067\100\000\000\001\001\120\000\025\000\000\000\011\100\000\000\011\000\000\000\000\000\000\010$NVOCT\000\000" 19
        say "guest-tpm-nv: PASS wrote $NV to NV index 0x01500015"
        ;;
    check:*)
        tpm_cmd NV_Read '\200\002\000\000\000\043\000\000\001\116\100\000\000\001\001\120\000\025\000\000\000\011\100\000\000\011\000\000\000\000\000\000\010\000\000' 29
        # shellcheck disable=SC2086
        set -- $TPM_RESP
        shift 16
        [ "$1$2$3$4$5$6$7$8" = "$NV" ] || fail "tpm-nv: NV index 0x01500015 holds $1$2$3$4$5$6$7$8, expected $NV"
        say "guest-tpm-nv: PASS NV index 0x01500015 holds $NV, written by an earlier boot"
        ;;
    esac
fi

# Debian's tpm2-tools against the TPM through the kernel's resource manager: getcap,
# getrandom, pcrread, pcrextend, seal/unseal under a PCR policy, quote checked in
# software (scripts/guest/tpm.sh, guest-tpm2: lines). guest.tpm=require (scripts/boot
# with the vTPM engine) makes a missing /dev/tpmrm0 a FAIL.
if [ -c /dev/tpmrm0 ] && [ -x /bin/tpm2 ]; then
    # shellcheck source=scripts/guest/tpm.sh
    . /tpm.sh
    tpm2_checks
    tpm2_eventlog_check
    # guest.tpmbench=N (scripts/boot --tpm-bench N): the latency line guest-bench reads.
    TPMBENCH=$(sed -n 's/.*guest\.tpmbench=\([0-9]*\).*/\1/p' /proc/cmdline)
    if [ -n "$TPMBENCH" ]; then
        T0=$(now_us)
        tpm2_bench "$TPMBENCH"
        say "guest-tpm2: bench $TPMBENCH quotes: $T2BENCH us per command, in $((($(now_us) - T0) / 1000)) ms"
    fi
elif grep -qw 'guest.tpm=require' /proc/cmdline; then
    fail "tpm: guest.tpm=require, but no /dev/tpmrm0 or no /bin/tpm2 (tpm devices: $(ls /sys/class/tpm 2>/dev/null))"
fi

i=0
while [ ! -b /dev/sda ]; do
    if [ $i -ge 600 ]; then
        fail "no /dev/sda after 60 s (scsi hosts: $(cd /sys/class/scsi_host 2>/dev/null && echo *))"
    fi
    usleep 100000
    i=$((i + 1))
done
WAIT_US=$(($(now_us) - BOOT_US))

DEVPATH=$(readlink -f /sys/block/sda/device)
DRIVER=$(basename "$(readlink -f /sys/block/sda/device/driver)")
HOST=$(echo "$DEVPATH" | sed -n 's,.*/\(host[0-9]*\)/.*,\1,p')
PROC=$(cat "/sys/class/scsi_host/$HOST/proc_name" 2>/dev/null)
SECTORS=$(cat /sys/block/sda/size)
MODEL=$(cat /sys/block/sda/device/vendor /sys/block/sda/device/model 2>/dev/null | tr -s ' \n' '  ')
say "guest-disk: sda after $((WAIT_US / 1000)) ms of module loading+probe: $((SECTORS / 2048)) MiB, driver $DRIVER, $HOST proc_name ${PROC:-?}, $MODEL, $DEVPATH"
[ "$SECTORS" -ge $((PATTERN_BYTES / 512)) ] || fail "sda has $SECTORS sectors, fewer than the 8 MiB pattern"
# The vTPM across the reboot: boot 1 seals to it, boot 2 unseals (tpm.sh, tpm2_persist).
if [ -n "$PERSIST" ] && command -v tpm2_persist >/dev/null; then
    tpm2_persist "$PERSIST"
fi

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# A disk that already holds this very pattern would pass without a single write reaching
# it; zero the region first in that case so the read-back proves the write.
PRE=$(dd if=/dev/sda bs=1M count=8 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
marker() { echo "paravisor-persist $1"; }
case "$PERSIST" in
check:*)
    GOT=$(dd if=/dev/sda bs=512 skip=$MARKER_SECTOR count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -n 1)
    [ "$GOT" = "$(marker "${PERSIST#check:}")" ] ||
        fail "persist: marker at sector $MARKER_SECTOR is '$GOT', not $(marker "${PERSIST#check:}")"
    [ "$PRE" = "$WANT_SHA" ] || fail "persist: the first 8 MiB hash to $PRE, not pattern $SEED's $WANT_SHA"
    say "guest-persist: PASS marker ${PERSIST#check:} and the 8 MiB pattern (seed $SEED) written by the previous boot read back"
    ;;
esac
if [ "$PRE" = "$WANT_SHA" ]; then
    say "guest-init: sda already holds pattern $SEED; zeroing it first"
    dd if=/dev/zero of=/dev/sda bs=1M count=8 conv=fsync oflag=direct 2>/dev/null ||
        fail "zeroing sda failed"
    drop_caches
fi

T0=$(now_us)
out=$(dd if=/pattern.bin of=/dev/sda bs=1M count=8 conv=fsync oflag=direct 2>&1) ||
    fail "write: $(echo "$out" | tr '\n' ' ')"
T1=$(now_us)
say "guest-io: write $PATTERN_BYTES bytes in $((T1 - T0)) us = $(rate $PATTERN_BYTES $((T1 - T0))) (dd: $(echo "$out" | tr '\n' ' '))"

drop_caches
T0=$(now_us)
out=$(dd if=/dev/sda of=/readback.bin bs=1M count=8 iflag=direct 2>&1) ||
    fail "read: $(echo "$out" | tr '\n' ' ')"
T1=$(now_us)
say "guest-io: read $PATTERN_BYTES bytes in $((T1 - T0)) us = $(rate $PATTERN_BYTES $((T1 - T0))) (dd: $(echo "$out" | tr '\n' ' '))"

GOT_SHA=$(sha256sum /readback.bin | cut -d' ' -f1)
if [ "$GOT_SHA" != "$WANT_SHA" ]; then
    fail "read-back sha256 $GOT_SHA != pattern $WANT_SHA (seed $SEED; first difference: $(cmp /pattern.bin /readback.bin 2>&1 | head -n 1))"
fi
# The network: where VMBus offers a network device (the paravisor's netvsp;
# class id f8615163-df3e-46c5-913f-f2d2f965ed0e), hv_netvsc must bind it as eth0 and
# bring it up. Plain QEMU offers none, and the check is skipped.
NET=""
if grep -qis f8615163-df3e-46c5-913f-f2d2f965ed0e /sys/bus/vmbus/devices/*/class_id 2>/dev/null; then
    i=0
    while [ ! -e /sys/class/net/eth0 ]; do
        [ $i -ge 100 ] && fail "VMBus offers a network device but no eth0 after 10 s (net: $(echo /sys/class/net/*))"
        usleep 100000
        i=$((i + 1))
    done
    NDRV=$(basename "$(readlink -f /sys/class/net/eth0/device/driver)")
    [ "$NDRV" = hv_netvsc ] || fail "eth0 is driven by $NDRV, not hv_netvsc"
    ip link set eth0 up 2>/dev/null || ifconfig eth0 up 2>/dev/null || fail "eth0 does not come up"
    i=0
    while [ "$(cat /sys/class/net/eth0/operstate 2>/dev/null)" != up ]; do
        [ $i -ge 50 ] && fail "eth0 operstate $(cat /sys/class/net/eth0/operstate) after 5 s, carrier $(cat /sys/class/net/eth0/carrier 2>/dev/null)"
        usleep 100000
        i=$((i + 1))
    done
    NET="; eth0 via hv_netvsc, MAC $(cat /sys/class/net/eth0/address), MTU $(cat /sys/class/net/eth0/mtu), link up"
    say "guest-net: eth0 via hv_netvsc: MAC $(cat /sys/class/net/eth0/address), MTU $(cat /sys/class/net/eth0/mtu), operstate up"
fi

# guest.tftp=FILE:SHA256 (scripts/boot --net virtio): QEMU's user-mode network is
# behind eth0; its DHCP server leases an address and its TFTP server at 10.0.2.2
# serves FILE, whose sha256 must match.
TFTP_ARG=$(sed -n 's/.*guest\.tftp=\([^ ]*:[0-9a-f]*\).*/\1/p' /proc/cmdline)
if [ -n "$TFTP_ARG" ]; then
    [ -n "$NET" ] || fail "net: guest.tftp is set but VMBus offers no network device"
    # The lease script's variables are udhcpc's, expanded when it runs it.
    # shellcheck disable=SC2016
    printf '%s\n' '#!/bin/busybox sh' \
        'case "$1" in bound | renew)' \
        '    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up' \
        '    [ -z "$router" ] || route add default gw "${router%% *}" dev "$interface"' \
        '    echo "$ip" >/dhcp-ip ;;' \
        'esac' >/udhcpc.sh
    chmod +x /udhcpc.sh
    out=$(udhcpc -i eth0 -n -q -t 10 -T 2 -s /udhcpc.sh 2>&1) ||
        fail "net: no DHCP lease on eth0: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    NIP=$(cat /dhcp-ip 2>/dev/null)
    NFILE=${TFTP_ARG%%:*}
    T0=$(now_us)
    out=$(tftp -g -r "$NFILE" -l /tftp.bin 10.0.2.2 2>&1) ||
        fail "net: tftp $NFILE from 10.0.2.2 (lease ${NIP:-?}): $(echo "$out" | tr '\n' ' ')"
    T1=$(now_us)
    NBYTES=$(wc -c </tftp.bin)
    NSHA=$(sha256sum /tftp.bin | cut -d' ' -f1)
    [ "$NSHA" = "${TFTP_ARG#*:}" ] || fail "net: $NFILE over tftp hashes to $NSHA, not ${TFTP_ARG#*:}"
    NET="$NET; dhcp $NIP, tftp $NFILE sha256 ok"
    say "guest-net: PASS dhcp $NIP tftp $NFILE $NBYTES bytes sha256 $NSHA in $((T1 - T0)) us = $(rate "$NBYTES" $((T1 - T0)))"
fi

case "$PERSIST" in
write:*)
    out=$(marker "${PERSIST#write:}" | dd of=/dev/sda bs=512 seek=$MARKER_SECTOR count=1 conv=sync,fsync oflag=direct 2>&1) ||
        fail "persist: writing the marker: $(echo "$out" | tr '\n' ' ')"
    say "guest-persist: wrote marker ${PERSIST#write:} at sector $MARKER_SECTOR (synced)"
    ;;
esac
say "guest-verdict: PASS sda via ${PROC:-?} (driver $DRIVER): 8 MiB pattern seed $SEED written and read back, sha256 $GOT_SHA$NET"
halt_now
