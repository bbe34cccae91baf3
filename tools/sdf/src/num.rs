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

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal("0"), Ok(0));
        assert_eq!(parse_decimal("0061"), Ok(61));
        assert_eq!(parse_decimal("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_decimal("18446744073709551616"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(
            parse_decimal("99999999999999999999999999"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(parse_decimal(""), Err(NumberError::Empty));
        assert_eq!(parse_decimal("0x10"), Err(NumberError::HexNotAllowed));
        assert_eq!(parse_decimal("1_0"), Err(NumberError::SeparatorNotAllowed));
        assert_eq!(parse_decimal("+1"), Ok(1));
        assert_eq!(parse_decimal("+"), Err(NumberError::Empty));
        assert_eq!(parse_decimal("++1"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_decimal("-1"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_decimal(" 1"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_decimal("1a"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_decimal("١"), Err(NumberError::InvalidDigit));
    }

    #[test]
    fn quantity() {
        assert_eq!(parse_quantity("4096"), Ok(4096));
        assert_eq!(parse_quantity("0x1000"), Ok(4096));
        assert_eq!(parse_quantity("0X1000"), Ok(4096));
        assert_eq!(parse_quantity("0x20_0000"), Ok(0x20_0000));
        assert_eq!(parse_quantity("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_quantity("0xffff_ffff_ffff_ffff"), Ok(u64::MAX));
        assert_eq!(
            parse_quantity("0x1_0000_0000_0000_0000"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(parse_quantity("0x"), Err(NumberError::Empty));
        assert_eq!(parse_quantity("0x_"), Err(NumberError::Empty));
        assert_eq!(parse_quantity("_1"), Ok(1));
        assert_eq!(parse_quantity("0x_10_"), Ok(16));
        assert_eq!(parse_quantity("+0x10"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_quantity("0x+10"), Ok(16));
        assert_eq!(parse_quantity("___"), Err(NumberError::Empty));
        assert_eq!(parse_quantity(""), Err(NumberError::Empty));
        assert_eq!(parse_quantity("0xg"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_quantity("12k"), Err(NumberError::InvalidDigit));
        assert_eq!(parse_quantity("-4096"), Err(NumberError::InvalidDigit));
    }
}
