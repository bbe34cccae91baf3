//! Number attributes. Two grammars, as in Microkit: ids, priorities, irq numbers and
//! cpu are plain decimal; sizes, addresses, budgets and periods also take `0x` hex and
//! `_` digit separators. Neither accepts signs or whitespace, and anything past u64 is
//! an error, never a wrap.

use crate::diag::NumberError;

/// Plain decimal digits only (Microkit reads these with `str::parse`, which also
/// takes one leading `+`).
pub fn parse_decimal(s: &str) -> Result<u64, NumberError> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return Err(NumberError::Empty);
    }
    if s.starts_with("0x") || s.starts_with("0X") {
        return Err(NumberError::HexNotAllowed);
    }
    if s.contains('_') {
        return Err(NumberError::SeparatorNotAllowed);
    }
    accumulate(s.bytes(), 10)
}

/// Microkit's `sdf_parse_number`: every `_` is dropped first (so `_1` and `0x_10`
/// are numbers), then an optional `0x` selects hex, then one optional `+`. `0X` is
/// accepted too, as before.
pub fn parse_quantity(s: &str) -> Result<u64, NumberError> {
    let kept: String = s.chars().filter(|&c| c != '_').collect();
    let (digits, radix) = match kept.strip_prefix("0x").or_else(|| kept.strip_prefix("0X")) {
        Some(rest) => (rest, 16),
        None => (kept.as_str(), 10),
    };
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    accumulate(digits.bytes(), radix)
}

fn accumulate(digits: impl Iterator<Item = u8>, radix: u32) -> Result<u64, NumberError> {
    let mut value: u64 = 0;
    let mut any = false;
    for b in digits {
        let d = (b as char)
            .to_digit(radix)
            .ok_or(NumberError::InvalidDigit)?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(NumberError::TooLarge)?;
        any = true;
    }
    if any {
        Ok(value)
    } else {
        Err(NumberError::Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumberError::*;

    fn table(
        parse: fn(&str) -> Result<u64, NumberError>,
        cases: &[(&str, Result<u64, NumberError>)],
    ) {
        for (input, expected) in cases {
            assert_eq!(parse(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn decimal() {
        table(
            parse_decimal,
            &[
                ("0", Ok(0)),
                ("0061", Ok(61)),
                ("18446744073709551615", Ok(u64::MAX)),
                ("18446744073709551616", Err(TooLarge)),
                ("99999999999999999999999999", Err(TooLarge)),
                ("", Err(Empty)),
                ("0x10", Err(HexNotAllowed)),
                ("1_0", Err(SeparatorNotAllowed)),
                ("+1", Ok(1)),
                ("+", Err(Empty)),
                ("++1", Err(InvalidDigit)),
                ("-1", Err(InvalidDigit)),
                (" 1", Err(InvalidDigit)),
                ("1a", Err(InvalidDigit)),
                ("١", Err(InvalidDigit)),
            ],
        );
    }

    #[test]
    fn quantity() {
        table(
            parse_quantity,
            &[
                ("4096", Ok(4096)),
                ("0x1000", Ok(4096)),
                ("0X1000", Ok(4096)),
                ("0x20_0000", Ok(0x20_0000)),
                ("1_000_000", Ok(1_000_000)),
                ("0xffff_ffff_ffff_ffff", Ok(u64::MAX)),
                ("0x1_0000_0000_0000_0000", Err(TooLarge)),
                ("0x", Err(Empty)),
                ("0x_", Err(Empty)),
                ("_1", Ok(1)),
                ("0x_10_", Ok(16)),
                ("+0x10", Err(InvalidDigit)),
                ("0x+10", Ok(16)),
                ("___", Err(Empty)),
                ("", Err(Empty)),
                ("0xg", Err(InvalidDigit)),
                ("12k", Err(InvalidDigit)),
                ("-4096", Err(InvalidDigit)),
            ],
        );
    }
}
