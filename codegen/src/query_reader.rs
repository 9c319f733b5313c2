//! The `FromQuery` impl of each method's `Params`: the query string read straight into the
//! struct, every value checked against its lexicon schema. It answers `None` for anything it
//! does not accept, and the runtime then asks the lexicon interpreter, which names the error; so
//! this code has to accept no more than the interpreter and build the same value, nothing else.

use aurora_atproto::lexicon::Field;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::emit::ty;
use crate::ir::{DefaultValue, FieldIr, Presence, QueryReader, Struct, Ty};

/// The impl for `s`, or nothing if it is not a `Params` struct.
pub fn tokens(s: &Struct) -> TokenStream {
    let name = format_ident!("{}", s.name);
    match &s.query {
        QueryReader::NotParams => quote! {},
        QueryReader::Interpreted => quote! { impl rt::FromQuery for #name {} },
        QueryReader::Direct(rules) if rules.is_empty() => quote! {
            impl rt::FromQuery for #name {
                fn from_query(_query: &str) -> Option<Self> {
                    Some(Self {})
                }
            }
        },
        QueryReader::Direct(rules) => {
            let fields: Vec<_> = s.fields.iter().zip(rules).collect();
            let slots = fields.iter().map(|(f, _)| {
                let (local, t) = (local(f), ty(&f.ty));
                quote! { let mut #local: Option<#t> = None; }
            });
            let arms = fields.iter().map(|(f, rule)| arm(f, rule));
            let counts = fields.iter().filter_map(|(f, rule)| count_check(f, rule));
            let values = fields.iter().map(|(f, _)| value(f));
            quote! {
                impl rt::FromQuery for #name {
                    fn from_query(query: &str) -> Option<Self> {
                        #(#slots)*
                        for (key, value) in rt::query::pairs(query) {
                            match &*key {
                                #(#arms)*
                                // Undeclared parameters are ignored, as by the interpreter.
                                _ => {}
                            }
                        }
                        #(#counts)*
                        Some(Self { #(#values)* })
                    }
                }
            }
        }
    }
}

fn local(f: &FieldIr) -> proc_macro2::Ident {
    format_ident!("p_{}", f.rust.trim_start_matches("r#"))
}

/// The match arm storing one occurrence of the parameter.
fn arm(f: &FieldIr, rule: &Field) -> TokenStream {
    let (json, local) = (&f.json, local(f));
    match (rule, &f.ty) {
        (Field::Array(array), Ty::Vec(item)) => {
            let read = scalar(&array.items, item);
            quote! { #json => #local.get_or_insert_with(Vec::new).push(#read), }
        }
        _ => {
            let read = scalar(rule, &f.ty);
            quote! { #json => rt::query::once(&mut #local, #read)?, }
        }
    }
}

/// An expression reading `value` (the decoded text) as one scalar of type `t`, returning `None`
/// from the function if the schema refuses it.
fn scalar(rule: &Field, t: &Ty) -> TokenStream {
    match rule {
        Field::Integer(i) => {
            let mut refused = Vec::new();
            if let Some(c) = i.const_ {
                let c = Literal::i64_unsuffixed(c);
                refused.push(quote!(n != #c));
            }
            if let Some(values) = &i.enum_ {
                let values = values.iter().map(|v| Literal::i64_unsuffixed(*v));
                refused.push(quote!(![#(#values),*].contains(&n)));
            }
            if let Some(max) = i.maximum {
                let max = Literal::i64_unsuffixed(max);
                refused.push(quote!(n > #max));
            }
            if let Some(min) = i.minimum {
                let min = Literal::i64_unsuffixed(min);
                refused.push(quote!(n < #min));
            }
            checked(quote!(rt::query::integer(&value)?), quote!(n), &refused)
        }
        Field::Boolean(b) => {
            let refused: Vec<_> = b.const_.iter().map(|c| quote!(b != #c)).collect();
            checked(quote!(rt::query::boolean(&value)?), quote!(b), &refused)
        }
        Field::String(s) => {
            let mut refused = Vec::new();
            if let Some(c) = &s.const_ {
                refused.push(quote!(s != #c));
            }
            if let Some(values) = &s.enum_ {
                refused.push(quote!(![#(#values),*].contains(&s)));
            }
            // Lengths count UTF-8 bytes, as the interpreter counts them.
            if let Some(max) = s.max_length {
                let max = Literal::u64_unsuffixed(max);
                refused.push(quote!(s.len() > #max));
            }
            if let Some(min) = s.min_length {
                let min = Literal::u64_unsuffixed(min);
                refused.push(quote!(s.len() < #min));
            }
            if s.max_graphemes.is_some() || s.min_graphemes.is_some() {
                let bound = |m: u64| {
                    let m = Literal::u64_unsuffixed(m);
                    quote!(#m)
                };
                let max = s.max_graphemes.map_or(quote!(u64::MAX), bound);
                let min = s.min_graphemes.map_or(quote!(0), bound);
                refused.push(quote!(!(#min..=#max).contains(&rt::query::graphemes(s))));
            }
            // A format is checked by its type's parser, the one the interpreter's check uses.
            let convert = match t {
                Ty::Format(_) => {
                    let t = ty(t);
                    quote!(value.parse::<#t>().ok()?)
                }
                Ty::Named { .. } => {
                    let t = ty(t);
                    quote!(rt::query::named::<#t>(&value)?)
                }
                _ => quote!(value.into_owned()),
            };
            if refused.is_empty() {
                return convert;
            }
            quote! {{
                let s: &str = &value;
                if #(#refused)||* {
                    return None;
                }
                #convert
            }}
        }
        other => unreachable!("the IR gives a direct reader only scalars, not {other:?}"),
    }
}

fn checked(read: TokenStream, name: TokenStream, refused: &[TokenStream]) -> TokenStream {
    if refused.is_empty() {
        return read;
    }
    quote! {{
        let #name = #read;
        if #(#refused)||* {
            return None;
        }
        #name
    }}
}

/// The check of an array's element count, run once every occurrence is in.
fn count_check(f: &FieldIr, rule: &Field) -> Option<TokenStream> {
    let Field::Array(array) = rule else { return None };
    let mut refused = Vec::new();
    if let Some(max) = array.max_length {
        let max = Literal::u64_unsuffixed(max);
        refused.push(quote!(items.len() > #max));
    }
    if let Some(min) = array.min_length {
        let min = Literal::u64_unsuffixed(min);
        refused.push(quote!(items.len() < #min));
    }
    if refused.is_empty() {
        return None;
    }
    let local = local(f);
    Some(quote! {
        if let Some(items) = &#local {
            if #(#refused)||* {
                return None;
            }
        }
    })
}

/// The struct field's value once every pair is read.
fn value(f: &FieldIr) -> TokenStream {
    let (field, local) = (crate::emit::ident(&f.rust), local(f));
    match f.presence {
        Presence::Required => quote! { #field: #local?, },
        Presence::Defaulted(DefaultValue::Int(n)) => {
            let n = Literal::i64_unsuffixed(n);
            quote! { #field: #local.unwrap_or(#n), }
        }
        Presence::Defaulted(DefaultValue::Bool(b)) => quote! { #field: #local.unwrap_or(#b), },
        _ => quote! { #field: #local, },
    }
}
