//! system.xml: the Microkit-style system description that says which protection
//! domains exist, what memory each maps with which rights, and which channels and
//! irqs connect them. `parse` turns text into a [`model::System`], `check` applies
//! Microkit's rules; every error carries a [`Span`] and a hint.

pub mod model;

pub use model::*;
