//! Translations at the source (podsec_common::i18n): `#[derive(Localize)]` renders a thiserror
//! error's message in the user's language from its fields, and `msg!` builds a message that keeps
//! its English text beside its translation. Both look the English template up as the msgid and
//! fill the translation's placeholders with the values themselves, so nothing is ever matched
//! back out of rendered text.

mod derive;
mod format;
mod message;
mod template;

use proc_macro::TokenStream;

/// Implements `podsec_common::i18n::Localize` and `LocalizedError` for a type deriving
/// `thiserror::Error`, from its `#[error(...)]` attributes and source fields.
#[proc_macro_derive(Localize)]
pub fn derive_localize(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// `msg!("template", args...)`, with `format!`'s syntax: a `podsec_common::i18n::Message`, its
/// English text rendered by `format!` (checked at compile time) and its translation, when the
/// user's language has one, filled from the same arguments.
#[proc_macro]
pub fn msg(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as format::FormatArgs);
    message::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
