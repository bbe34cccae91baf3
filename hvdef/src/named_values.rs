//! Open enums: a `u16`/`u32` newtype whose named values are associated consts, and
//! whose other values are still carried through (guests and hosts send them).

/// Declares the named values of the newtype `$ty` from one table: each row becomes
/// an associated const, and `name()` maps a value back to its row, to the name
/// after `=>` or else the const's own (`None` for values without a row). One table,
/// so a value cannot have a const and no name, or a name that drifted from it.
///
/// With `debug(named, unnamed)` after the type, `Debug` prints a named value with
/// the format `named` (its one argument the name) and any other with `unnamed` (its
/// one argument the raw value).
#[macro_export]
macro_rules! named_values {
    ($ty:ident debug($named:literal, $unnamed:literal) { $($rows:tt)* }) => {
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
