//! What `msg!` and `#[error(...)]` share: their arguments in format!'s syntax, and how one
//! placeholder's value is rendered in the user's language.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitStr, Token};

/// `"template", positional..., name = value...`
pub struct FormatArgs {
    pub template: LitStr,
    pub positional: Vec<Expr>,
    pub named: Vec<(Ident, Expr)>,
}

impl Parse for FormatArgs {
    fn parse(input: ParseStream) -> syn::Result<FormatArgs> {
        let template: LitStr = input.parse()?;
        let mut positional = Vec::new();
        let mut named = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            if input.peek(Token![.]) {
                return Err(input.error(
                    "name the field in the template instead of thiserror's `.field` arguments",
                ));
            }
            if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                named.push((name, input.parse()?));
            } else {
                positional.push(input.parse()?);
            }
        }
        Ok(FormatArgs {
            template,
            positional,
            named,
        })
    }
}

/// `(placeholder as written, its value in the user's language)`; `value` is a reference.
pub fn render_value(written: &str, spec: &str, value: TokenStream) -> TokenStream {
    if spec.is_empty() {
        quote!((#written, {
            #[allow(unused_imports)]
            use ::podsec_common::i18n::value::{ViaDisplay as _, ViaLocalize as _, ViaPath as _};
            (&&::podsec_common::i18n::value::Wrap(#value)).localized_text()
        }))
    } else {
        // Debug, octal and the like are the same in every language.
        let format = format!("{{:{spec}}}");
        quote!((#written, ::std::format!(#format, #value)))
    }
}
