//! `msg!`: a message that keeps its English text and its translation.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use crate::format::{FormatArgs, render_value};
use crate::template::{Argument, placeholders};

pub fn expand(input: &FormatArgs) -> syn::Result<TokenStream> {
    let template = &input.template;
    let found = placeholders(&template.value()).map_err(|e| syn::Error::new(template.span(), e))?;
    // Every argument is evaluated once, by reference, for both renderings.
    let positional: Vec<Ident> = (0..input.positional.len())
        .map(|i| format_ident!("__podsec_arg{}", i))
        .collect();
    let named: Vec<Ident> = input
        .named
        .iter()
        .map(|(name, _)| format_ident!("__podsec_named_{}", name))
        .collect();
    let expressions = input
        .positional
        .iter()
        .chain(input.named.iter().map(|(_, e)| e));
    let bindings = positional.iter().chain(named.iter());
    let format_named = input
        .named
        .iter()
        .zip(&named)
        .map(|((name, _), binding)| quote!(#name = #binding));

    let mut values = Vec::new();
    for placeholder in &found {
        let written = &placeholder.written;
        let value = match &placeholder.argument {
            Argument::Index(index) => {
                let binding = positional.get(*index).ok_or_else(|| {
                    syn::Error::new(template.span(), format!("no argument for {written}"))
                })?;
                quote!(#binding)
            }
            Argument::Name(name) => match input.named.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    let binding = &named[i];
                    quote!(#binding)
                }
                None => {
                    // A name captured from the caller's scope, as format! does.
                    let ident = Ident::new(name, Span::call_site());
                    quote!(&#ident)
                }
            },
        };
        values.push(render_value(written, &placeholder.spec, value));
    }
    Ok(quote! {
        match (#(&(#expressions),)*) {
            #[allow(non_snake_case)]
            (#(#bindings,)*) => ::podsec_common::i18n::Message::new(
                ::std::format!(#template, #(#positional,)* #(#format_named),*),
                #template,
                || ::std::vec![#(#values),*],
            ),
        }
    })
}
