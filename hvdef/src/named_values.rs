//! Open enums: a `u16`/`u32` newtype whose named values are associated consts, and
//! whose other values are still carried through (guests and hosts send them).

/// Declares the named values of the newtype `$ty` from one table: each row becomes
/// an associated const, and `name()` maps a value back to its row, to the name
/// after `=>` or else the const's own (`None` for values without a row). One table,
/// so a value cannot have a const and no name, or a name that drifted from it.
///
/// With `debug(named, unnamed)` after the type, `Debug` prints a named value with
/// the format `named` (its one argument the name) and any other with `unnamed` (its
/// one argument the raw value). The formats are string literals or `concat!`s of
/// them, so a macro wrapping this one can build them from the type's name.
#[macro_export]
macro_rules! named_values {
    ($ty:ident debug($named:expr, $unnamed:expr) { $($rows:tt)* }) => {
        $crate::named_values! { $ty { $($rows)* } }

        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => write!(f, $named, name),
                    None => write!(f, $unnamed, self.0),
                }
            }
        }
    };
    ($ty:ident { $($(#[$doc:meta])* $konst:ident = $value:expr $(=> $shown:literal)?,)* }) => {
        impl $ty {
            $($(#[$doc])* pub const $konst: Self = Self($value);)*

            /// The name of a value this crate knows; `None` for the others.
            pub const fn name(self) -> Option<&'static str> {
                $(
                    if self.0 == $value {
                        return Some($crate::__first!($($shown,)? stringify!($konst)));
                    }
                )*
                None
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __first {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}

#[cfg(test)]
mod tests {
    use std::format;

    #[derive(Clone, Copy, PartialEq, Eq)]
    struct Code(u8);

    /// As a crate's own open-enum macro would wrap it: formats from the type name.
    macro_rules! wrapped {
        ($ty:ident { $($rows:tt)* }) => {
            crate::named_values! {
                $ty debug("{}", concat!(stringify!($ty), "({})")) { $($rows)* }
            }
        };
    }

    wrapped! {
        Code {
            ONE = 1,
            TWO = 2 => "two",
        }
    }

    #[test]
    fn debug_prints_the_row_name_or_the_unnamed_format() {
        assert_eq!(format!("{:?}", Code::ONE), "ONE");
        assert_eq!(format!("{:?}", Code::TWO), "two");
        assert_eq!(format!("{:?}", Code(7)), "Code(7)");
        assert_eq!(Code(7).name(), None);
    }
}
