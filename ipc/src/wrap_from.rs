//! Error enums that carry a lower layer's error as one of their variants.

/// Implements `From<$inner> for $outer` for each `$variant($inner)`, wrapping the
/// lower layer's error in that variant, so `?` lifts it.
#[macro_export]
macro_rules! wrap_from {
    ($outer:ident { $($variant:ident($inner:ty)),+ $(,)? }) => {
        $(
            impl ::core::convert::From<$inner> for $outer {
                fn from(e: $inner) -> Self {
                    Self::$variant(e)
                }
            }
        )+
    };
}
