//! `#[derive(Localize)]`: a thiserror error's message in the user's language, from its fields.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Data, DeriveInput, Fields, Ident};

use crate::format::{FormatArgs, render_value};
use crate::template::{Argument, placeholders};

/// One `#[error(...)]` attribute.
enum ErrorAttribute {
    Transparent,
    Message(FormatArgs),
}

impl Parse for ErrorAttribute {
    fn parse(input: ParseStream) -> syn::Result<ErrorAttribute> {
        if input.peek(Ident) {
            let word: Ident = input.parse()?;
            if word == "transparent" {
                return Ok(ErrorAttribute::Transparent);
            }
            return Err(syn::Error::new(
                word.span(),
                "expected a string or `transparent`",
            ));
        }
        Ok(ErrorAttribute::Message(input.parse()?))
    }
}

fn error_attribute(attributes: &[Attribute], span: Span) -> syn::Result<ErrorAttribute> {
    attributes
        .iter()
        .find(|a| a.path().is_ident("error"))
        .ok_or_else(|| syn::Error::new(span, "Localize: no #[error(...)] here"))?
        .parse_args()
}

/// How a variant (or the struct) is matched: its pattern and the binding of each field.
struct Shape {
    pattern: TokenStream,
    /// `(field name or index, binding)` in declaration order.
    bindings: Vec<(String, Ident)>,
    /// The binding of thiserror's source: `#[source]`, `#[from]`, or a field named `source`.
    source: Option<Ident>,
}

fn shape(path: TokenStream, fields: &Fields) -> Shape {
    let mut bindings = Vec::new();
    let mut source = None;
    for (index, field) in fields.iter().enumerate() {
        let (key, binding) = match &field.ident {
            Some(ident) => (ident.to_string(), ident.clone()),
            None => (index.to_string(), format_ident!("__podsec_field{}", index)),
        };
        let marked = field
            .attrs
            .iter()
            .any(|a| a.path().is_ident("source") || a.path().is_ident("from"));
        if marked || (source.is_none() && key == "source") {
            source = Some(binding.clone());
        }
        bindings.push((key, binding));
    }
    let names = bindings.iter().map(|(_, b)| b);
    let pattern = match fields {
        Fields::Named(_) => quote!(#path { #(#names),* }),
        Fields::Unnamed(_) => quote!(#path ( #(#names),* )),
        Fields::Unit => quote!(#path),
    };
    Shape {
        pattern,
        bindings,
        source,
    }
}

/// The two match arms of one variant: its message and its cause.
fn arms(shape: &Shape, attribute: &ErrorAttribute) -> syn::Result<(TokenStream, TokenStream)> {
    let pattern = &shape.pattern;
    let wrap = quote!(::podsec_common::i18n::value::Wrap);
    let causes = quote! {
        #[allow(unused_imports)]
        use ::podsec_common::i18n::value::{ViaForeignCause as _, ViaOwnCause as _};
    };
    match attribute {
        ErrorAttribute::Transparent => {
            let (_, inner) = shape.bindings.first().ok_or_else(|| {
                syn::Error::new(Span::call_site(), "Localize: transparent needs one field")
            })?;
            let message = render_value("", "", quote!(#inner));
            Ok((
                quote!(#pattern => #message.1,),
                quote!(#pattern => { #causes (&&#wrap(#inner)).inner_cause() }),
            ))
        }
        ErrorAttribute::Message(FormatArgs {
            template,
            positional,
            named,
        }) => {
            let found =
                placeholders(&template.value()).map_err(|e| syn::Error::new(template.span(), e))?;
            let mut values = Vec::new();
            for placeholder in &found {
                let field = |key: &str| shape.bindings.iter().find(|(k, _)| k == key);
                let value = match &placeholder.argument {
                    Argument::Index(index) => {
                        match (field(&index.to_string()), positional.get(*index)) {
                            (Some((_, binding)), _) if positional.is_empty() => quote!(#binding),
                            (_, Some(expression)) => quote!(&(#expression)),
                            _ => {
                                return Err(syn::Error::new(
                                    template.span(),
                                    format!("no argument for {}", placeholder.written),
                                ));
                            }
                        }
                    }
                    Argument::Name(name) => {
                        match (named.iter().find(|(n, _)| n == name), field(name)) {
                            (Some((_, expression)), _) => quote!(&(#expression)),
                            (None, Some((_, binding))) => quote!(#binding),
                            (None, None) => {
                                // A constant in scope, as thiserror lets format! capture it.
                                let ident = Ident::new(name, template.span());
                                quote!(&#ident)
                            }
                        }
                    }
                };
                values.push(render_value(&placeholder.written, &placeholder.spec, value));
            }
            let cause = match &shape.source {
                Some(source) => {
                    quote!(#pattern => { #causes ::std::option::Option::Some((&&#wrap(#source)).as_cause()) })
                }
                None => quote!(#pattern => ::std::option::Option::None,),
            };
            Ok((
                quote! {
                    #pattern => ::podsec_common::i18n::render(self, #template, || ::std::vec![#(#values),*]),
                },
                cause,
            ))
        }
    }
}

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let mut messages = Vec::new();
    let mut causes = Vec::new();
    match &input.data {
        Data::Struct(data) => {
            let attribute = error_attribute(&input.attrs, name.span())?;
            let (message, cause) = arms(&shape(quote!(Self), &data.fields), &attribute)?;
            messages.push(message);
            causes.push(cause);
        }
        Data::Enum(data) => {
            for variant in &data.variants {
                let attribute = error_attribute(&variant.attrs, variant.ident.span())?;
                let ident = &variant.ident;
                let (message, cause) =
                    arms(&shape(quote!(Self::#ident), &variant.fields), &attribute)?;
                messages.push(message);
                causes.push(cause);
            }
        }
        Data::Union(_) => {
            return Err(syn::Error::new(
                name.span(),
                "Localize: unions are not errors",
            ));
        }
    }
    Ok(quote! {
        impl #impl_generics ::podsec_common::i18n::Localize for #name #type_generics #where_clause {
            #[allow(unused_variables, unreachable_code, clippy::match_single_binding)]
            fn localized(&self) -> ::std::string::String {
                match self { #(#messages)* }
            }
        }
        impl #impl_generics ::podsec_common::i18n::LocalizedError for #name #type_generics #where_clause {
            #[allow(unused_variables, unreachable_code, clippy::match_single_binding)]
            fn localized_cause(&self) -> ::std::option::Option<::podsec_common::i18n::Cause<'_>> {
                match self { #(#causes)* }
            }
        }
    })
}
