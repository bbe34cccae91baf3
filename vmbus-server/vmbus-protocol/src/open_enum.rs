//! Open enums: a newtype over a wire integer whose named values are associated
//! consts. The peer may send any value, so the others are values too, and print as
//! `Type(n)`.

/// Declares the named values of the newtype `$ty` from one table, as
/// [`hvdef::named_values!`] does (consts and `name()`), with a `Debug` that prints
/// the name, or `Type(n)` for a value without one.
#[macro_export]
macro_rules! open_enum {
    ($ty:ident { $($rows:tt)* }) => {
        $crate::__hvdef::named_values! {
            $ty debug("{}", concat!(stringify!($ty), "({})")) { $($rows)* }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::messages::MessageType;
    use std::format;

    /// Logs and errors print message types this way; a guest's unknown type must
    /// still show its value.
    #[test]
    fn debug_prints_the_name_or_the_type_and_value() {
        assert_eq!(format!("{:?}", MessageType::OPENCHANNEL), "OPENCHANNEL");
        assert_eq!(format!("{:?}", MessageType(99)), "MessageType(99)");
    }
}
