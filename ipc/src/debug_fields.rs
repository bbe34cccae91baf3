//! `Debug` for PDs and devices whose state is mostly queues, regions and buffers:
//! a log line wants the few fields that say where they are, not kilobytes of slots.

/// Implements `Debug` for the struct `$name` showing only the fields named. A
/// trailing `..` prints the struct as non-exhaustive (`Name { a: 1, .. }`), saying
/// that fields were left out. Generic parameters, if any, are `const usize` ones:
/// `debug_fields!(Pd<N>: a, ..)`.
#[macro_export]
macro_rules! debug_fields {
    ($name:ident $(<$($p:ident),*>)?: $($field:ident),* $(,)?) => {
        $crate::debug_fields!(@impl finish, $name $(<$($p),*>)?: $($field),*);
    };
    ($name:ident $(<$($p:ident),*>)?: $($field:ident,)* ..) => {
        $crate::debug_fields!(@impl finish_non_exhaustive, $name $(<$($p),*>)?: $($field),*);
    };
    (@impl $finish:ident, $name:ident $(<$($p:ident),*>)?: $($field:ident),*) => {
        impl $(<$(const $p: usize),*>)? ::core::fmt::Debug for $name $(<$($p),*>)? {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$field))*
                    .$finish()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::format;

    struct Plain {
        a: u8,
        b: &'static str,
        #[allow(dead_code)] // left out of Debug on purpose
        big: [u8; 64],
    }
    crate::debug_fields!(Plain: a, b);

    struct Sized<const N: usize> {
        n: usize,
        #[allow(dead_code)] // left out of Debug on purpose
        slots: [u8; N],
    }
    crate::debug_fields!(Sized<N>: n, ..);

    #[test]
    fn shows_the_named_fields_and_marks_left_out_ones_when_asked() {
        let p = Plain {
            a: 1,
            b: "x",
            big: [0; 64],
        };
        assert_eq!(format!("{p:?}"), r#"Plain { a: 1, b: "x" }"#);
        let s = Sized::<4> {
            n: 4,
            slots: [0; 4],
        };
        assert_eq!(format!("{s:?}"), "Sized { n: 4, .. }");
    }
}
