//! The kernel console's rule for PD output: every line a PD did not start with
//! its own name and a colon gets `name: ` in front, so no PD prints a line that
//! looks like the kernel's or another PD's. PD bytes are hostile: any bytes,
//! split anywhere across calls.

/// Writes `bytes` from the PD called `name` through `out`, prefixing each line
/// as above. `at_line_start` is the PD's state between calls (true at first):
/// whether its output so far ended a line.
pub fn write_prefixed(
    name: &[u8],
    at_line_start: &mut bool,
    bytes: &[u8],
    mut out: impl FnMut(&[u8]),
) {
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let own = line.starts_with(name) && line.get(name.len()) == Some(&b':');
        if *at_line_start && !own {
            out(name);
            out(b": ");
        }
        out(line);
        *at_line_start = line.last() == Some(&b'\n');
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut start = true;
        let mut out = Vec::new();
        for c in chunks {
            write_prefixed(b"vmm", &mut start, c, |b| out.extend_from_slice(b));
        }
        out
    }

    #[test]
    fn lines_get_the_pd_name_unless_they_carry_it() {
        let table: &[(&[&[u8]], &[u8])] = &[
            (&[b"vmm: up\n"], b"vmm: up\n"),
            (&[b"hello\n"], b"vmm: hello\n"),
            (
                &[b"kernel: halted by PD selftest\n"],
                b"vmm: kernel: halted by PD selftest\n",
            ),
            (&[b"a\nb\n"], b"vmm: a\nvmm: b\n"),
            // A line split across calls is prefixed once.
            (&[b"par", b"tial\n"], b"vmm: partial\n"),
            // Another PD's name, or ours without the colon, is not ours.
            (
                &[b"selftest: REPORT PASS\n"],
                b"vmm: selftest: REPORT PASS\n",
            ),
            (&[b"vmmx: y\n"], b"vmm: vmmx: y\n"),
            (&[b"", b"\n"], b"vmm: \n"),
        ];
        for (chunks, want) in table {
            assert_eq!(run(chunks), *want, "{chunks:?}");
        }
    }

    proptest! {
        #[test]
        fn every_line_starts_with_the_pd_name(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)
        ) {
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let out = run(&refs);
            let input: Vec<u8> = chunks.concat();
            let out_lines: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
            let in_lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
            prop_assert_eq!(out_lines.len(), in_lines.len());
            // Each line is the PD's own, or the PD's own with the name in front.
            for (o, i) in out_lines.iter().zip(&in_lines) {
                prop_assert!(o.starts_with(b"vmm:"), "{o:?}");
                prop_assert!(*o == *i || (o.starts_with(b"vmm: ") && &o[5..] == *i), "{o:?} {i:?}");
            }
        }
    }
}
