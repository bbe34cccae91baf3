//! Splits a PD's output stream into lines. PD output is untrusted: a line is cut at
//! [`MAX_LINE`] bytes and decoded lossily, so a PD cannot make the supervisor buffer
//! without bound or choke on invalid UTF-8.

pub const MAX_LINE: usize = 4096;

#[derive(Default, Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes, calling `emit` for every complete (or overlong) line.
    pub fn feed(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(String)) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    self.pending.extend_from_slice(&window[..nl]);
                    emit(self.take());
                    bytes = &bytes[nl + 1..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.pending.len() == MAX_LINE {
                        emit(self.take());
                    }
                }
            }
        }
    }

    /// End of stream: whatever is left is a last, unterminated line.
    pub fn finish(&mut self, emit: &mut dyn FnMut(String)) {
        if !self.pending.is_empty() {
            emit(self.take());
        }
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |l| out.push(l));
        }
        s.finish(&mut |l| out.push(l));
        out
    }

    #[test]
    fn lines_join_across_chunks() {
        assert_eq!(
            split(&[b"ab", b"c\nd", b"\n\nrest"]),
            ["abc", "d", "", "rest"]
        );
    }

    #[test]
    fn overlong_lines_are_cut_and_bad_utf8_replaced() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let out = split(&[&long]);
        assert_eq!(
            out.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 5]
        );
        assert_eq!(split(&[b"\xff\n"]), ["\u{fffd}"]);
    }

    proptest! {
        #[test]
        fn no_byte_is_lost_and_no_line_is_overlong(
            data in proptest::collection::vec(any::<u8>().prop_map(|b| b % 4 + b'\n'), 0..20000),
            cut in 0usize..20000,
        ) {
            let cut = cut.min(data.len());
            let out = split(&[&data[..cut], &data[cut..]]);
            prop_assert!(out.iter().all(|l| l.len() <= MAX_LINE));
            let total: usize = out.iter().map(String::len).sum();
            let newlines = data.iter().filter(|&&b| b == b'\n').count();
            prop_assert_eq!(total + newlines, data.len());
        }
    }
}
