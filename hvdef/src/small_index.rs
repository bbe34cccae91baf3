//! `u8` newtypes that number a few things (VTLs, SynIC instances) and index
//! per-thing arrays. Their values arrive from guests and other PDs, so the only way
//! in is a constructor that refuses numbers past the count.

/// Gives the tuple struct `$name(u8)` its `COUNT`, a checked `new` (`None` at or
/// past `COUNT`), `get` (the number) and `index` (for arrays of `COUNT`).
#[macro_export]
macro_rules! small_index {
    ($(#[$count_doc:meta])* $name:ident: $count:expr) => {
        impl $name {
            $(#[$count_doc])*
            pub const COUNT: usize = $count;

            pub const fn new(raw: u8) -> Option<Self> {
                if (raw as usize) < Self::COUNT {
                    Some(Self(raw))
                } else {
                    None
                }
            }

            pub const fn get(self) -> u8 {
                self.0
            }

            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}
