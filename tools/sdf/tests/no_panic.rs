//! Hostile input: random bytes and mutated valid descriptions never panic, every error
//! has a position inside the text, and whatever is accepted also passes the model check.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;

use proptest::prelude::*;

mod common;
use common::FULL;

/// Pieces that push the parser and checker into their corners.
const TOKENS: &[&str] = &[
    "<",
    ">",
    "/>",
    "\"",
    "=",
    "&",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "<!--",
    "-->",
    "<![CDATA[x]]>",
    "</system>",
    "<system>",
    "<map mr=\"ring\" vaddr=\"0\"/>",
    "<end pd=\"client\" id=\"0\"/>",
    "<protection_domain name=\"x\">",
    "</protection_domain>",
    "<channel>",
    "<virtual_machine name=\"g\">",
    "</virtual_machine>",
    "<vcpu id=\"0\"/>",
    " setvar_id=\"v\"",
    " perms=\"rwx\"",
    "</channel>",
    " pp=\"true\"",
    "<ioport id=\"0\" addr=\"0x3f8\" size=\"8\"/>",
    "<irq id=\"9\" pin=\"4\" vector=\"4\"/>",
    "<irq id=\"8\" pcidev=\"0:1f.2\" handle=\"0\" vector=\"40\"/>",
    "<cspace><cap_tcb slot=\"1\" pd=\"client\"/></cspace>",
    "<domains><domain name=\"d\"/><domain_schedule><schedule_entry domain=\"d\" duration=\"1 us\"/></domain_schedule></domains>",
    " domain=\"d\"",
    "<io_address_space name=\"n\" peripheral_id=\"0:3.0\" domain_id=\"1\"><iomap mr=\"ring\" iovaddr=\"0\"/></io_address_space>",
    "<memory_region name=\"p\" prefill_bootinfo=\"fdt\"/>",
    " setvar_size=\"s\"",
    " smc=\"true\"",
    " name=\"a@1/b\"",
    "0x",
    "_",
    "-1",
    "99999999999999999999999999",
    "18446744073709551615",
    "0xffff_ffff_ffff_ffff",
    "62",
    "255",
    "monitor",
    "ring",
    "client",
    " id=\"1\"",
    " extra=\"1\"",
    "text",
    "\u{feff}",
    "é",
    "\n",
    "<!DOCTYPE x>",
    "<?pi x?>",
    "xmlns:a=\"u\" a:b=\"c\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Edit::Delete(at, len)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), 1usize..200).prop_map(|(at, len)| Edit::Duplicate(at, len)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Delete(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            Edit::Insert(at, t) => {
                let at = at % (chars.len() + 1);
                let piece: Vec<char> = TOKENS[t].chars().collect();
                chars.splice(at..at, piece);
            }
            Edit::Duplicate(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                let piece: Vec<char> = chars.get(at..end).unwrap_or_default().to_vec();
                chars.splice(at..at, piece);
            }
        }
    }
    chars.into_iter().collect()
}

fn assert_well_behaved(text: &str) {
    let lines = text.split('\n').count() as u32;
    match sdf::parse_and_check(text, Path::new("fuzz.xml")) {
        Ok(system) => {
            // Accepted means the model check agrees.
            assert!(
                sdf::check(&system).is_ok(),
                "parse_and_check accepted what check rejects:\n{text}"
            );
            assert!(!system.all_pds().is_empty());
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            for d in diags.iter() {
                assert!(
                    d.span.line >= 1 && d.span.line <= lines,
                    "{d} outside the text"
                );
                assert!(d.span.col >= 1);
                let shown = d.to_string();
                let label = if d.kind.policy().is_some() {
                    ": error[policy "
                } else {
                    ": error: "
                };
                assert!(
                    shown.contains(label) && shown.contains("\n  hint: "),
                    "{shown}"
                );
            }
        }
    }
    // Microkit mode differs from strict mode exactly by the policy findings.
    let strict = sdf::parse_and_check(text, Path::new("fuzz.xml"));
    let microkit = sdf::parse_and_check_with(text, Path::new("fuzz.xml"), sdf::Mode::Microkit);
    match (strict, microkit) {
        (Ok(a), Ok(b)) => assert!(a == b.system && b.warnings.is_empty()),
        (Err(e), Ok(b)) => assert!(e.iter().all(|d| d.kind.policy().is_some()) && e == b.warnings),
        (Err(e), Err(f)) => {
            let hard: Vec<_> = e
                .into_iter()
                .filter(|d| d.kind.policy().is_none())
                .collect();
            assert_eq!(hard, f.0);
        }
        (Ok(_), Err(f)) => panic!("strict accepts what Microkit mode refuses: {f}"),
    }
}

#[test]
fn the_base_document_is_valid() {
    sdf::parse_and_check(FULL, Path::new("v.xml")).unwrap_or_else(|e| panic!("{e}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_valid_xml_never_panics(edits in prop::collection::vec(edit(), 1..8)) {
        assert_well_behaved(&apply(FULL, &edits));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        assert_well_behaved(&text);
    }

    #[test]
    fn random_token_soup_never_panics(tokens in prop::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        assert_well_behaved(&text);
        assert_well_behaved(&format!("<system>{text}</system>"));
    }

    #[test]
    fn number_attributes_never_overflow(value in "[0-9a-fx_+-]{0,30}", attr in 0usize..6) {
        let text = match attr {
            0 => format!(r#"<system><memory_region name="m" size="{value}"/>{PD}</system>"#),
            1 => format!(r#"<system><memory_region name="m" size="0x1000" phys_addr="{value}"/>{PD}</system>"#),
            2 => format!(r#"<system><protection_domain name="a" priority="{value}"><program_image path="a"/></protection_domain></system>"#),
            3 => format!(r#"<system><protection_domain name="a" budget="{value}" period="{value}"><program_image path="a"/></protection_domain></system>"#),
            4 => format!(r#"<system><memory_region name="m" size="0x1000"/><protection_domain name="a"><program_image path="a"/><map mr="m" vaddr="{value}"/></protection_domain></system>"#),
            _ => format!(r#"<system><protection_domain name="a"><program_image path="a"/><irq irq="{value}" id="{value}"/></protection_domain></system>"#),
        };
        assert_well_behaved(&text);
    }
}

const PD: &str = r#"<protection_domain name="a"><program_image path="a"/></protection_domain>"#;
