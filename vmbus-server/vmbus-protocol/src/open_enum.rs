//! Open enums: a newtype over a wire integer whose named values are associated
//! consts. The peer may send any value, so the others are values too, and print as
//! `Type(n)`.

/// Declares the named values of the newtype `$ty` from one table, as
/// [`hvdef::named_values!`] does (consts and `name()`), and a `Debug` that prints
/// the name, or `Type(n)` for a value without one.
#[macro_export]
macro_rules! open_enum {
    ($ty:ident { $($rows:tt)* }) => {
        $crate::__hvdef::named_values! { $ty { $($rows)* } }

        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, concat!(stringify!($ty), "({})"), self.0),
                }
            }
        }
    };
}
