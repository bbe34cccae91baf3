use proptest::prelude::*;

use crate::rmp::{code, npf, AccessKind, Fault, PageSize, Perms, PvalidateResult, Rmp, RmpAdjust};

const P: u64 = 0x5000;

fn rmp() -> Rmp<1024> {
    let mut r = Rmp::new(0);
    for i in 0..1024u64 {
        r.entry_mut(i * 0x1000).unwrap().assigned = true;
    }
    r
}

fn adj(target_vmpl: u8, perms: Perms, vmsa: bool) -> u64 {
    RmpAdjust {
        target_vmpl,
        perms,
        vmsa,
    }
    .to_rdx()
}

fn ok(no_update: bool) -> Result<PvalidateResult, Fault> {
    Ok(PvalidateResult {
        rax: code::SUCCESS,
        no_update,
    })
}

#[test]
fn pvalidate_twice_sets_cf_no_update() {
    let mut r = rmp();
    assert_eq!(r.pvalidate(0, P, PageSize::Size4K, true), ok(false));
    assert_eq!(r.pvalidate(0, P, PageSize::Size4K, true), ok(true));
    assert_eq!(r.pvalidate(0, P, PageSize::Size4K, false), ok(false));
    assert_eq!(r.pvalidate(0, P, PageSize::Size4K, false), ok(true));
}

#[test]
fn pvalidate_only_at_vmpl0() {
    let mut r = rmp();
    for vmpl in 1..=3 {
        assert_eq!(r.pvalidate(vmpl, P, PageSize::Size4K, true), Err(Fault::Gp));
    }
    assert!(!r.entry(P).unwrap().validated);
}

#[test]
fn pvalidate_fail_input_and_sizemismatch() {
    let mut r = rmp();
    let fail = |rax| {
        Ok(PvalidateResult {
            rax,
            no_update: false,
        })
    };
    assert_eq!(
        r.pvalidate(0, P + 8, PageSize::Size4K, true),
        fail(code::FAIL_INPUT)
    );
    assert_eq!(
        r.pvalidate(0, 1 << 40, PageSize::Size4K, true),
        fail(code::FAIL_INPUT)
    );
    assert_eq!(
        r.pvalidate(0, 0x20_0000, PageSize::Size2M, true),
        fail(code::FAIL_SIZEMISMATCH)
    );
    for i in 0..512u64 {
        r.entry_mut(0x20_0000 + i * 0x1000).unwrap().large = true;
    }
    assert_eq!(
        r.pvalidate(0, 0x20_1000, PageSize::Size4K, true),
        fail(code::FAIL_SIZEMISMATCH)
    );
    assert_eq!(r.pvalidate(0, 0x20_0000, PageSize::Size2M, true), ok(false));
    assert!(r.entry(0x3f_f000).unwrap().validated);
}

#[test]
fn pvalidate_of_hypervisor_page_is_rmp_npf() {
    let mut r = rmp();
    r.entry_mut(P).unwrap().assigned = false;
    assert!(matches!(
        r.pvalidate(0, P, PageSize::Size4K, true),
        Err(Fault::Npf { error_code }) if error_code & npf::RMP != 0
    ));
}

fn validated() -> Rmp<1024> {
    let mut r = rmp();
    r.pvalidate(0, P, PageSize::Size4K, true).unwrap();
    r
}

/// Page P validated, then VMPL0's RMPADJUST of it for `target_vmpl`.
fn adjusted(target_vmpl: u8, perms: Perms, vmsa: bool) -> Rmp<1024> {
    let mut r = validated();
    r.rmpadjust(0, P, PageSize::Size4K, adj(target_vmpl, perms, vmsa))
        .unwrap();
    r
}

#[test]
fn rmpadjust_cannot_grant_what_caller_lacks() {
    let mut r = validated();
    assert_eq!(
        r.rmpadjust(0, P, PageSize::Size4K, adj(1, Perms::READ, false)),
        Ok(code::SUCCESS)
    );
    let rw = Perms::READ.union(Perms::WRITE);
    assert_eq!(
        r.rmpadjust(1, P, PageSize::Size4K, adj(2, rw, false)),
        Ok(code::FAIL_PERMISSION)
    );
    assert_eq!(r.entry(P).unwrap().perms_of(2), Perms::NONE);
    assert_eq!(
        r.rmpadjust(1, P, PageSize::Size4K, adj(2, Perms::READ, false)),
        Ok(code::SUCCESS)
    );
    assert_eq!(r.entry(P).unwrap().perms_of(2), Perms::READ);
}

#[test]
fn rmpadjust_targets_only_less_privileged_vmpls() {
    let mut r = adjusted(1, Perms::ALL, false);
    for (caller, target) in [(0, 0), (1, 1), (1, 0), (2, 1), (3, 3)] {
        assert_eq!(
            r.rmpadjust(caller, P, PageSize::Size4K, adj(target, Perms::NONE, false)),
            Ok(code::FAIL_PERMISSION),
            "VMPL{caller} -> VMPL{target}"
        );
    }
    assert_eq!(r.entry(P).unwrap().perms_of(1), Perms::ALL);
}

#[test]
fn rmpadjust_vmsa_bit_only_from_vmpl0() {
    let mut r = adjusted(1, Perms::ALL, false);
    assert_eq!(
        r.rmpadjust(1, P, PageSize::Size4K, adj(2, Perms::NONE, true)),
        Ok(code::FAIL_PERMISSION)
    );
    assert!(!r.entry(P).unwrap().vmsa);
    assert_eq!(
        r.rmpadjust(0, P, PageSize::Size4K, adj(1, Perms::NONE, true)),
        Ok(code::SUCCESS)
    );
    assert!(r.entry(P).unwrap().vmsa);
}

#[test]
fn rmpadjust_input_checks() {
    use code::{FAIL_INPUT, FAIL_PERMISSION, FAIL_SIZEMISMATCH};
    use PageSize::{Size2M, Size4K};
    let cases: &[(&str, u64, PageSize, u64, u32)] = &[
        ("VMPL 4", P, Size4K, adj(4, Perms::NONE, false), FAIL_INPUT),
        ("bit 17", P, Size4K, 1 << 17 | 2, FAIL_INPUT),
        ("perms bit 4", P, Size4K, 0x10 << 8 | 2, FAIL_INPUT),
        ("unaligned", P + 1, Size4K, 2, FAIL_INPUT),
        ("2M on 4K", 0x20_0000, Size2M, 2, FAIL_SIZEMISMATCH),
        // Not validated yet: nothing of the guest's to share.
        ("not valid", P + 0x1000, Size4K, 2, FAIL_PERMISSION),
    ];
    let mut r = validated();
    for &(why, spa, size, rdx, want) in cases {
        assert_eq!(r.rmpadjust(0, spa, size, rdx), Ok(want), "{why}");
    }
}

#[test]
fn vmpl2_access_without_permission_faults_with_vmpl_bit() {
    let mut r = validated();
    let e = r.check_access(2, P, true, AccessKind::Write);
    assert_eq!(
        e,
        Err(Fault::Npf {
            error_code: npf::PRESENT | npf::WRITE | npf::RMP | npf::VMPL
        })
    );
    assert_eq!(r.check_access(0, P, true, AccessKind::Write), Ok(()));
    r.rmpadjust(0, P, PageSize::Size4K, adj(2, Perms::READ, false))
        .unwrap();
    assert_eq!(r.check_access(2, P, true, AccessKind::Read), Ok(()));
    assert!(r.check_access(2, P, true, AccessKind::Write).is_err());
    assert!(r.check_access(2, P, true, AccessKind::ExecSuper).is_err());
    assert!(r.check_access(3, P, true, AccessKind::Read).is_err());
}

#[test]
fn private_and_shared_access_rules() {
    let mut r = rmp();
    assert_eq!(
        r.check_access(0, P, true, AccessKind::Read),
        Err(Fault::VcNotValidated)
    );
    assert!(matches!(
        r.check_access(0, P, false, AccessKind::Read),
        Err(Fault::Npf { error_code }) if error_code & npf::RMP != 0
    ));
    r.entry_mut(P).unwrap().assigned = false;
    assert_eq!(r.check_access(2, P, false, AccessKind::Write), Ok(()));
    assert!(matches!(
        r.check_access(0, P, true, AccessKind::Read),
        Err(Fault::Npf { error_code }) if error_code & npf::RMP != 0
    ));
}

#[test]
fn vmsa_page_is_not_writable_through_a_mapping() {
    let r = adjusted(1, Perms::NONE, true);
    assert!(r.check_access(0, P, true, AccessKind::Write).is_err());
}

proptest! {
    /// Whatever VMPL1..3 issue, they never raise VMPL1 (only VMPL0 can), never set
    /// the VMSA bit, and a VMPL never ends up with a right its grantor lacked.
    #[test]
    fn lower_vmpls_cannot_escalate(ops in proptest::collection::vec((1u8..=3, 0u8..=5, 0u8..=0x1f, any::<bool>()), 0..40)) {
        let mut r = adjusted(1, Perms::READ, false);
        for (caller, target, perms, vmsa) in ops {
            let before = *r.entry(P).unwrap();
            let rc = r.rmpadjust(caller, P, PageSize::Size4K, adj(target, Perms(perms), vmsa));
            let after = *r.entry(P).unwrap();
            prop_assert_eq!(after.perms_of(1), Perms::READ);
            prop_assert!(!after.vmsa);
            if rc == Ok(code::SUCCESS) {
                prop_assert!(target > caller);
                prop_assert!(before.perms_of(caller).contains(Perms(perms)));
            } else {
                prop_assert_eq!(before, after);
            }
        }
    }
}
