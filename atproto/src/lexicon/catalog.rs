//! A set of lexicon documents with references resolved between them.

use std::collections::BTreeMap;

use super::schema::{Def, LexiconDoc};
use crate::syntax::Nsid;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("lexicon document is malformed: {0}")]
    Malformed(String),
    #[error("lexicon id {0:?} is not a valid NSID")]
    InvalidId(String),
    #[error("{nsid}#{name}: a {kind} definition may only be named main")]
    PrimaryNotMain { nsid: String, name: String, kind: &'static str },
    #[error("lexicon {0} is defined twice")]
    Duplicate(String),
    #[error("reference {0:?} does not name a known definition")]
    UnresolvedRef(String),
}

/// A resolved reference: the document, the definition's name and the definition.
#[derive(Clone, Copy, Debug)]
pub struct DefRef<'a> {
    pub nsid: &'a str,
    pub name: &'a str,
    pub def: &'a Def,
}

impl DefRef<'_> {
    /// The canonical `$type` form: `nsid` for `main`, `nsid#name` otherwise.
    pub fn type_name(&self) -> String {
        type_name(self.nsid, self.name)
    }
}

/// The canonical `$type` string for a definition.
pub fn type_name(nsid: &str, name: &str) -> String {
    if name == "main" {
        nsid.to_owned()
    } else {
        format!("{nsid}#{name}")
    }
}

/// Lexicon documents by NSID.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    docs: BTreeMap<String, LexiconDoc>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one lexicon document from JSON, checking the rules serde alone cannot express.
    pub fn parse_doc(json: &str) -> Result<LexiconDoc, CatalogError> {
        let doc: LexiconDoc = serde_json::from_str(json).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        check_doc(&doc)?;
        Ok(doc)
    }

    /// Checks a document parsed from a JSON value (as the interop vectors carry them).
    pub fn parse_value(value: serde_json::Value) -> Result<LexiconDoc, CatalogError> {
        let doc: LexiconDoc = serde_json::from_value(value).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        check_doc(&doc)?;
        Ok(doc)
    }

    pub fn add(&mut self, doc: LexiconDoc) -> Result<(), CatalogError> {
        check_doc(&doc)?;
        if self.docs.contains_key(&doc.id) {
            return Err(CatalogError::Duplicate(doc.id));
        }
        self.docs.insert(doc.id.clone(), doc);
        Ok(())
    }

    pub fn get(&self, nsid: &str) -> Option<&LexiconDoc> {
        self.docs.get(nsid)
    }

    pub fn docs(&self) -> impl Iterator<Item = &LexiconDoc> {
        self.docs.values()
    }

    /// The `main` definition of a document.
    pub fn main(&self, nsid: &str) -> Option<&Def> {
        self.docs.get(nsid)?.defs.get("main")
    }

    /// Resolves a reference written inside document `context`: `#name`, `nsid#name` or `nsid`.
    pub fn resolve<'a>(&'a self, reference: &str, context: &str) -> Result<DefRef<'a>, CatalogError> {
        let (nsid, name) = split_ref(reference, context);
        let (nsid, doc) =
            self.docs.get_key_value(nsid).ok_or_else(|| CatalogError::UnresolvedRef(reference.to_owned()))?;
        let (name, def) =
            doc.defs.get_key_value(name).ok_or_else(|| CatalogError::UnresolvedRef(reference.to_owned()))?;
        Ok(DefRef { nsid, name, def })
    }

    /// Checks that every reference in every document resolves.
    pub fn check_refs(&self) -> Result<(), CatalogError> {
        for doc in self.docs.values() {
            let mut refs = Vec::new();
            for def in doc.defs.values() {
                collect_def_refs(def, &mut refs);
            }
            for reference in refs {
                self.resolve(&reference, &doc.id)?;
            }
        }
        Ok(())
    }
}

/// Splits a reference into (nsid, definition name), relative to the document it appears in.
pub fn split_ref<'a>(reference: &'a str, context: &'a str) -> (&'a str, &'a str) {
    match reference.split_once('#') {
        Some(("", name)) => (context, name),
        Some((nsid, name)) => (nsid, name),
        None => (reference, "main"),
    }
}

fn check_doc(doc: &LexiconDoc) -> Result<(), CatalogError> {
    if doc.id.parse::<Nsid>().is_err() {
        return Err(CatalogError::InvalidId(doc.id.clone()));
    }
    for (name, def) in &doc.defs {
        if def.is_primary() && name != "main" {
            return Err(CatalogError::PrimaryNotMain { nsid: doc.id.clone(), name: name.clone(), kind: def.kind() });
        }
    }
    Ok(())
}

fn collect_def_refs(def: &Def, out: &mut Vec<String>) {
    use super::schema::Field;
    fn field(f: &Field, out: &mut Vec<String>) {
        match f {
            Field::Ref(r) => out.push(r.target.clone()),
            Field::Union(u) => out.extend(u.refs.iter().cloned()),
            Field::Array(a) => field(&a.items, out),
            Field::Object(o) => o.properties.values().for_each(|p| field(p, out)),
            _ => {}
        }
    }
    let body = |b: &Option<super::schema::Body>, out: &mut Vec<String>| {
        if let Some(schema) = b.as_ref().and_then(|b| b.schema.as_ref()) {
            field(schema, out);
        }
    };
    match def {
        Def::Record(r) => r.record.object().properties.values().for_each(|p| field(p, out)),
        Def::Query(q) => body(&q.output, out),
        Def::Procedure(p) => {
            body(&p.input, out);
            body(&p.output, out);
        }
        Def::Subscription(s) => {
            if let Some(m) = &s.message {
                field(&m.schema, out);
            }
        }
        Def::Object(o) => o.properties.values().for_each(|p| field(p, out)),
        Def::Array(a) => field(&a.items, out),
        _ => {}
    }
}
